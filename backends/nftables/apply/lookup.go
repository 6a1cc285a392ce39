package apply

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"go4.org/netipx"
	"golang.org/x/sys/unix"
)

// largeSetElems: after a delta, a changed set of more elements than this is
// verified by looking up the changed elements rather than by dumping the
// set again. The kernel walks an interval set from its first element again
// for every 32 KiB dump message (the most a netlink dump message holds), so
// dumping n elements costs about n²/3000 steps: seconds at 200,000 elements
// and growing fourfold with every doubling. A lookup costs log n.
const largeSetElems = 8192

// hugeSetElems: after a replacement, a set of more elements than this is
// verified by looking its intervals up (lookupIntervals) rather than by
// dumping it. A lookup answers each interval with a message of its own
// (about 2.5 µs an interval on the benchmark machine, on two sockets), so
// below this size the dump, quadratic as it is, is as fast or faster when
// the machine is idle (10,000 intervals: 17 ms dumped, 21 ms looked up;
// 25,000: 72 and 60 ms; 50,000: 288 and 126 ms).
const hugeSetElems = 40_000

// adjacentRanges reports whether an interval ends where the next starts.
func adjacentRanges(rs []netipx.IPRange) bool {
	for i := 1; i < len(rs); i++ {
		if rs[i-1].To().Next() == rs[i].From() {
			return true
		}
	}
	return false
}

// lookupChunk is how many elements one lookup request names; the kernel
// answers each with a message of its own, which must all fit in the
// receive buffer.
const lookupChunk = 1024

// batchElements decodes, from a batch's own bytes, the elements that its
// messages of type nftMsg add to or delete from set: what the kernel parsed,
// since it uses the same attribute layout.
func batchElements(msgs []byte, nftMsg int, set string) ([]element, error) {
	var out []element
	for b := msgs; len(b) >= nlmsgHeaderLen; {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHeaderLen+nfgenHeaderLen || l > len(b) {
			return nil, fmt.Errorf("malformed batch message (length %d of %d)", l, len(b))
		}
		typ := binary.NativeEndian.Uint16(b[4:])
		body := b[nlmsgHeaderLen+nfgenHeaderLen : l]
		b = b[(l+3)&^3:]
		if typ != msgType(nftMsg) {
			continue
		}
		a, err := attrMap(body)
		if err != nil {
			return nil, err
		}
		if cstr(a[unix.NFTA_SET_ELEM_LIST_SET]) != set {
			continue
		}
		err = walkAttrs(a[unix.NFTA_SET_ELEM_LIST_ELEMENTS], func(_ uint16, item []byte) error {
			var el element
			err := walkAttrs(item, func(typ uint16, v []byte) error {
				switch typ {
				case unix.NFTA_SET_ELEM_KEY:
					return walkAttrs(v, func(typ uint16, v []byte) error {
						if typ == unix.NFTA_DATA_VALUE {
							el.key = v
						}
						return nil
					})
				case unix.NFTA_SET_ELEM_FLAGS:
					el.end = be32(v)&unix.NFT_SET_ELEM_INTERVAL_END != 0
				case unix.NFTA_SET_ELEM_USERDATA:
					el.open = true
				default:
					return fmt.Errorf("an element of set %s carries attribute %d", set, typ)
				}
				return nil
			})
			if err != nil {
				return err
			}
			out = append(out, el)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sameElements compares the elements a batch carries with those meant.
func sameElements(set string, got, want []element) error {
	if len(got) != len(want) {
		return fmt.Errorf("set %s: the batch carries %d elements, meant %d", set, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !bytes.Equal(g.key, w.key) || g.end != w.end || g.open != w.open {
			return fmt.Errorf("set %s: element %d of the batch differs from the one meant", set, i+1)
		}
	}
	return nil
}

// lookupElements asks the kernel for every element of a set (but nft's end
// marker at the zero key, which the kernel does not answer for): each must
// come back with its key and kind. Missing ones fail.
func lookupElements(s *sock, table, set string, elems []element) error {
	if len(elems) > 0 && elems[0].end && isZero(elems[0].key) {
		elems = elems[1:]
	}
	return lookupPart(s, table, set, elems, elems)
}

// lookupIntervals proves that a set the kernel holds a subset of elems of
// (a set created by the batch that carried elems, in the transaction that
// was the only one since: nothing else can be in it) holds all of them,
// with one lookup an interval instead of one an element. Looked up with
// the end flag, a key inside an interval is answered with the end of that
// interval, and a key in no interval is not answered. So each interval's
// start is looked up with the end flag and must be answered with that
// interval's own end: were its start missing, the start is in a gap (no
// answer) or in an earlier interval whose own end is missing, and that
// interval's lookup is answered with a later end; were its end missing,
// it is answered with a later end. An interval running to the top of the
// address space (no end element) is looked up by its start, as
// lookupElements does. nft's end marker at the zero key is not answered
// for and not looked up. Intervals must not be adjacent (an end key that is
// the next start's key answers for either): the caller reads such sets.
func lookupIntervals(s *sock, table, set string, elems []element) error {
	if len(elems) > 0 && elems[0].end && isZero(elems[0].key) {
		elems = elems[1:]
	}
	queries := make([]element, 0, len(elems)/2+1)
	expects := make([]element, 0, len(elems)/2+1)
	for i := 0; i < len(elems); i++ {
		el := elems[i]
		switch {
		case el.end:
			return fmt.Errorf("set %s: %s follows no interval start", set, elemString(el))
		case i > 0 && bytes.Equal(elems[i-1].key, el.key):
			return fmt.Errorf("set %s: %s is adjacent to the interval before; lookups cannot tell the two apart", set, elemString(el))
		case i+1 < len(elems) && elems[i+1].end:
			queries = append(queries, element{key: el.key, end: true})
			expects = append(expects, elems[i+1])
			i++
		default:
			queries = append(queries, el)
			expects = append(expects, el)
		}
	}
	return lookupPart(s, table, set, queries, expects)
}

// lookupWorkers bounds how many sockets look up one set's elements at
// once. The kernel answers a lookup in the sending thread, one message per
// element, under RCU (no lock shared with other readers), so lookups on
// several sockets run on several CPUs; the read-back of a huge set is most
// of a fresh load's time.
const lookupWorkers = 4

// lookupPart looks up queries, each of which the kernel must answer with
// the element in expects at the same index, spread over up to
// lookupWorkers sockets (s and others opened in s's network namespace,
// checked by its cookie) when there is more than one CPU and enough work
// for each. The first failing chunk in the queries' order decides the
// error, whichever socket ran it.
func lookupPart(s *sock, table, set string, queries, expects []element) error {
	chunks := (len(queries) + lookupChunk - 1) / lookupChunk
	workers := min(runtime.GOMAXPROCS(0), lookupWorkers, chunks/4)
	if err := s.setBuffers(0, 32<<20); err != nil {
		return err
	}
	socks := []*sock{s}
	if workers > 1 {
		cookie, err := netnsCookie(s)
		if err != nil {
			return err
		}
		for len(socks) < workers {
			o, err := openSock(s.nsPath, s.timeout)
			if err != nil {
				break // fewer workers; s alone always works
			}
			defer o.close()
			if c, err := netnsCookie(o); err != nil || c != cookie {
				break // the path names another namespace now
			}
			if o.setBuffers(0, 32<<20) != nil {
				break
			}
			socks = append(socks, o)
		}
	}
	errs := make([]error, chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, ws := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return
				}
				from, to := c*lookupChunk, min((c+1)*lookupChunk, len(queries))
				if errs[c] = lookupChunkOn(ws, table, set, queries[from:to], expects[from:to]); errs[c] != nil {
					next.Store(int64(chunks)) // no more chunks for anyone
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lookupChunkOn looks up one chunk of queries on one socket.
func lookupChunkOn(s *sock, table, set string, part, expect []element) error {
	body := lookupRequest(table, set, part)
	n := 0
	var bad error
	err := s.each(msgType(unix.NFT_MSG_GETSETELEM), 0, unix.NFPROTO_INET, body, func(m message) error {
		if n >= len(part) {
			bad = fmt.Errorf("set %s: more answers than elements asked for", set)
			return nil
		}
		q, want := part[n], expect[n]
		n++
		if len(m.data) < nfgenHeaderLen {
			bad = fmt.Errorf("set %s: a short answer", set)
			return nil
		}
		if !answers(m.data[nfgenHeaderLen:], want) && bad == nil {
			bad = fmt.Errorf("set %s: %s", set, wrongAnswer(q, want))
		}
		return nil
	})
	if errors.Is(err, unix.ENOENT) && len(part) > 1 {
		// The kernel refuses the whole request for one element it does
		// not hold: name that element.
		for i := range part {
			if e := lookupChunkOn(s, table, set, part[i:i+1], expect[i:i+1]); e != nil {
				return e
			}
		}
	}
	if errors.Is(err, unix.ENOENT) && len(part) == 1 {
		return fmt.Errorf("set %s: %s", set, notHeld(part[0], expect[0]))
	}
	if err != nil {
		return fmt.Errorf("set %s: looking up %d elements from %s: %w", set, len(part), elemString(part[0]), err)
	}
	if bad != nil {
		return bad
	}
	if n != len(part) {
		return fmt.Errorf("set %s: %d answers for %d elements", set, n, len(part))
	}
	return nil
}

// interval reports whether a query stands for an interval (its start,
// looked up with the end flag, answered with its end).
func interval(q, want element) bool { return q.end && !bytes.Equal(q.key, want.key) }

// notHeld says what the kernel lacks when it does not answer a query.
func notHeld(q, want element) string {
	if interval(q, want) {
		return "the kernel holds no interval from " + addrString(q.key) + " (to " + addrString(want.key) + ")"
	}
	return "the kernel does not hold " + elemString(q)
}

// wrongAnswer says what is wrong when the kernel answers a query with
// another element than want.
func wrongAnswer(q, want element) string {
	if interval(q, want) {
		return "the interval from " + addrString(q.key) + " does not end at " + addrString(want.key) + " in the kernel"
	}
	return "the kernel answers for " + elemString(q) + " with another element"
}

func addrString(key []byte) string {
	a, _ := netip.AddrFromSlice(key)
	return a.String()
}

func elemString(e element) string {
	a, _ := netip.AddrFromSlice(e.key)
	if e.end {
		return "the interval end " + a.String()
	}
	return "the interval start " + a.String()
}

func lookupRequest(table, set string, elems []element) []byte {
	var a attrs
	a.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	a.str(unix.NFTA_SET_ELEM_LIST_SET, set)
	list := a.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for _, el := range elems {
		item := a.nest(unix.NFTA_LIST_ELEM)
		if el.end {
			a.u32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
		}
		key := a.nest(unix.NFTA_SET_ELEM_KEY)
		a.put(unix.NFTA_DATA_VALUE, el.key)
		a.end(key)
		a.end(item)
	}
	a.end(list)
	return a.b
}

// answers reports whether a lookup answer is the element want itself (for
// a key inside an interval the kernel answers with the interval's start).
func answers(b []byte, want element) bool {
	found := false
	walkAttrs(b, func(typ uint16, v []byte) error {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return nil
		}
		return walkAttrs(v, func(_ uint16, item []byte) error {
			var key []byte
			end := false
			walkAttrs(item, func(typ uint16, v []byte) error {
				switch typ {
				case unix.NFTA_SET_ELEM_KEY:
					walkAttrs(v, func(typ uint16, v []byte) error {
						if typ == unix.NFTA_DATA_VALUE {
							key = v
						}
						return nil
					})
				case unix.NFTA_SET_ELEM_FLAGS:
					end = be32(v)&unix.NFT_SET_ELEM_INTERVAL_END != 0
				}
				return nil
			})
			found = found || (bytes.Equal(key, want.key) && end == want.end)
			return nil
		})
	})
	return found
}

// lookupAbsent checks that the kernel holds none of the elements: each
// lookup must fail or answer with another element. The kernel stops a
// request at its first missing element, so each goes alone.
func lookupAbsent(s *sock, table, set string, elems []element) error {
	for _, el := range elems {
		present := false
		err := s.each(msgType(unix.NFT_MSG_GETSETELEM), 0, unix.NFPROTO_INET, lookupRequest(table, set, []element{el}), func(m message) error {
			if len(m.data) >= nfgenHeaderLen && answers(m.data[nfgenHeaderLen:], el) {
				present = true
			}
			return nil
		})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("set %s: looking up %s: %w", set, elemString(el), err)
		}
		if present {
			return fmt.Errorf("set %s still holds %s", set, elemString(el))
		}
	}
	return nil
}

// maxAbsentLookups bounds the one-by-one lookups of a delta's deletions;
// a larger delta is verified by reading its sets again.
const maxAbsentLookups = 256

// verifyDelta verifies a delta whose commit the kernel acknowledged and
// which is the only change since the plan's read, without reading the
// changed sets again: the batch's own bytes must carry exactly the planned
// deletions and additions, every addition must be in the kernel and no
// deletion (that is not added back) may be. ok is false when this does not
// apply: a changed set is small (reading it is cheap), nft's zero end
// marker changes (the kernel does not answer lookups for it), or there are
// too many deletions to look up one by one.
func verifyDelta(s *sock, live *Snapshot, p *Plan, b *batch) (ok bool, err error) {
	table := live.Table
	for _, d := range p.Deltas {
		if d.addMarker || d.delMarker || 2*len(p.wantRanges[d.Set]) <= largeSetElems {
			return false, nil
		}
		del, _ := d.elements()
		if len(del) > maxAbsentLookups {
			return false, nil
		}
	}
	for _, d := range p.Deltas {
		del, add := d.elements()
		// The kernel's lookup cannot tell an interval end from the start of
		// the next interval at the same key (adjacent intervals): such
		// elements are read back instead.
		if adjacent(p.wantRanges[d.Set], del, add) {
			return false, nil
		}
	}
	for _, d := range p.Deltas {
		del, add := d.elements()
		for i := range del {
			del[i].open = false // only additions carry the open flag
		}
		for _, m := range []struct {
			msg  int
			want []element
		}{{unix.NFT_MSG_DELSETELEM, del}, {unix.NFT_MSG_NEWSETELEM, add}} {
			got, err := batchElements(b.msgs, m.msg, d.Set)
			if err != nil {
				return true, err
			}
			if err := sameElements(d.Set, got, m.want); err != nil {
				return true, err
			}
		}
		if err := lookupElements(s, table, d.Set, add); err != nil {
			return true, err
		}
		added := map[string]bool{}
		for _, e := range add {
			added[fmt.Sprintf("%x/%v", e.key, e.end)] = true
		}
		var gone []element
		for _, e := range del {
			if !added[fmt.Sprintf("%x/%v", e.key, e.end)] {
				gone = append(gone, e)
			}
		}
		if err := lookupAbsent(s, table, d.Set, gone); err != nil {
			return true, err
		}
	}
	return true, nil
}

// adjacent reports whether an element of del or add shares its key with an
// element of the other kind (an interval end and the start of the next
// interval) in the set's new ranges, which the kernel holds when the
// lookups are made.
func adjacent(want []netipx.IPRange, del, add []element) bool {
	for _, list := range [][]element{del, add} {
		for _, e := range list {
			k, ok := netip.AddrFromSlice(e.key)
			if !ok {
				return true
			}
			i := sort.Search(len(want), func(i int) bool { return !want[i].From().Less(k) })
			starts := i < len(want) && want[i].From() == k
			ends := i > 0 && want[i-1].To().Next() == k
			if (e.end && starts) || (!e.end && ends) {
				return true
			}
		}
	}
	return false
}
