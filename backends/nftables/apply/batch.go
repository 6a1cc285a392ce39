package apply

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// batch is one nftables transaction: BATCH_BEGIN, the messages, BATCH_END,
// sent with one sendmsg so that the kernel applies all of it or none of it.
type batch struct {
	family uint8
	msgs   []byte
	what   map[uint32]string // sequence number -> what the message does, for errors
	seqs   []uint32
	s      *sock
}

func newBatch(s *sock) *batch {
	return &batch{family: unix.NFPROTO_INET, what: map[uint32]string{}, s: s}
}

// add appends a message; every message asks for an acknowledgement so that
// each one is accounted for.
func (b *batch) add(nftMsg int, flags uint16, what string, body []byte) {
	seq := b.s.nextSeq()
	b.msgs = appendMsg(b.msgs, msgType(nftMsg), unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags, seq, b.family, 0, body)
	b.what[seq] = what
	b.seqs = append(b.seqs, seq)
}

func (b *batch) len() int { return len(b.seqs) }

func (b *batch) size() int { return len(b.msgs) }

// errUncertain means the kernel's answer was lost (the acknowledgements
// overflowed the socket): whether the batch was committed is only known by
// reading the ruleset back.
var errUncertain = errors.New("the kernel's answer to the batch was lost")

// errStale means the ruleset generation changed after it was read: another
// program changed the ruleset, and the batch was not applied.
var errStale = errors.New("the ruleset changed since it was read")

// send submits the batch. genID, when not zero, makes the kernel refuse the
// whole batch if the ruleset changed since that generation was read. A nil
// error means the kernel committed every message.
func (b *batch) send(genID uint32) error {
	if len(b.seqs) == 0 {
		return nil
	}
	var gen attrs
	if genID != 0 {
		gen.u32(unix.NFNL_BATCH_GENID, genID)
	}
	beginSeq := b.s.nextSeq()
	buf := make([]byte, 0, len(b.msgs)+128)
	buf = appendMsg(buf, unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, beginSeq, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, gen.b)
	buf = append(buf, b.msgs...)
	buf = appendMsg(buf, unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, b.s.nextSeq(), unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, nil)
	// Room for the whole batch in one sendmsg and for one acknowledgement
	// per message (an skb of about a kilobyte each).
	if err := b.s.setBuffers(len(buf)+(1<<20), len(b.seqs)*2048+(1<<20)); err != nil {
		return err
	}
	if _, err := unix.Write(b.s.fd, buf); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			return fmt.Errorf("the batch of %d bytes is larger than the netlink send buffer allows (raising it needs CAP_NET_ADMIN): %w", len(buf), err)
		}
		return permission(err)
	}
	// The kernel processes a batch inside sendmsg, so every answer is queued
	// by now: a message's acknowledgement or error, and an error for the
	// batch itself when it fails as a whole (stale generation, commit error).
	pending := make(map[uint32]bool, len(b.seqs))
	for _, s := range b.seqs {
		pending[s] = true
	}
	var firstErr error
	for len(pending) > 0 {
		msgs, err := b.s.recv(0)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				return errUncertain
			}
			if firstErr != nil {
				return firstErr
			}
			return fmt.Errorf("%w: %v", errUncertain, err)
		}
		for _, m := range msgs {
			if m.typ != unix.NLMSG_ERROR {
				continue
			}
			seq, err := parseError(m)
			if seq == beginSeq {
				if errors.Is(err, unix.ERESTART) {
					return errStale
				}
				if err != nil {
					return fmt.Errorf("the kernel refused the batch: %w", permission(err))
				}
				continue
			}
			if !pending[seq] {
				continue
			}
			delete(pending, seq)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", b.what[seq], permission(err))
			}
		}
		// After a failing message the kernel still answers the others, but
		// a batch-level error (already returned) ends the answers early.
	}
	if firstErr != nil {
		return fmt.Errorf("the kernel rejected the batch, nothing was changed: %w", firstErr)
	}
	// A commit failure is reported against BATCH_BEGIN before the
	// per-message answers: catch one that arrived in the same read.
	for {
		msgs, err := b.s.recv(unix.MSG_DONTWAIT)
		if err != nil {
			break
		}
		for _, m := range msgs {
			if m.typ == unix.NLMSG_ERROR {
				if seq, err := parseError(m); seq == beginSeq && err != nil {
					return fmt.Errorf("the kernel refused the batch: %w", permission(err))
				}
			}
		}
	}
	return nil
}
