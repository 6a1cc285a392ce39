// Package apply loads the nftables model straight into the kernel through
// netlink, without the nft command: the same Ruleset the text backend
// renders for `nft -f`, written as the same kernel objects.
//
// Every change is one netlink batch, which the kernel commits whole or not
// at all, and which touches only the owned table. The batch carries the
// ruleset generation it was planned against, so a concurrent change makes
// the kernel refuse it (it is then planned again). When only set elements
// differ, the batch adds and deletes elements instead of replacing the
// table, so rule handles and counters survive. Set elements go in messages
// small enough for the 16-bit attribute length that google/nftables v0.3.0
// overflows silently, and after every change the table is read back and
// compared with what was meant: any difference restores the previous table.
// State.Apply also records what a verified apply left in the kernel, and
// plans the next apply from that record instead of reading the sets while
// the kernel's ruleset generation shows that nothing was committed since.
package apply

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
)

// Target names the owned table and where it lives.
type Target struct {
	Table string
	// NetNS is a network namespace name (under /var/run/netns) or path;
	// empty for the caller's namespace.
	NetNS string
	// Timeout bounds each wait for the kernel (default one minute).
	Timeout time.Duration
}

func (t Target) nsPath() string {
	if t.NetNS == "" || strings.ContainsRune(t.NetNS, '/') {
		return t.NetNS
	}
	return filepath.Join("/var/run/netns", t.NetNS)
}

// String names the target for messages.
func (t Target) String() string {
	s := "table inet " + t.Table
	if t.NetNS != "" {
		s += " in network namespace " + t.NetNS
	}
	return s
}

func (t Target) open() (*sock, error) {
	if t.Table == "" {
		return nil, errors.New("no table named")
	}
	s, err := openSock(t.nsPath(), t.Timeout)
	if err != nil {
		return nil, permission(err)
	}
	return s, nil
}

// Read reads the live table back through netlink.
func Read(t Target) (*Snapshot, error) {
	s, err := t.open()
	if err != nil {
		return nil, err
	}
	defer s.close()
	return read(s, t.Table)
}

// PlanFor reads the live table and plans applying want to it.
func PlanFor(t Target, want *nftables.Ruleset) (*Plan, error) {
	live, err := Read(t)
	if err != nil {
		return nil, err
	}
	return NewPlan(live, want)
}

// Result reports an apply.
type Result struct {
	Plan *Plan
	// Previous is the table before the apply, as read at the start.
	Previous *Snapshot
	// Messages and Bytes describe the batch sent (0 when nothing was sent).
	Messages, Bytes int
	// Intervals is how many set intervals were read back and verified.
	Intervals int
	// Generation is the ruleset generation after the apply.
	Generation uint32
	// FromRecord: the plan started from the record of the last verified
	// apply (the generation had not moved), not from reading the sets.
	FromRecord bool
	// Attempts counts plans made: more than one when another program
	// changed the ruleset in between.
	Attempts int
	// Read, Send and Verify time the read and plan, the batch, and the
	// read-back of the last attempt.
	Read, Send, Verify time.Duration
	// Uncertain: the kernel's answer to the batch was lost, and the
	// read-back decided.
	Uncertain bool
	// RolledBack: the read-back differed and the previous table was
	// restored.
	RolledBack bool
	// Warnings are things the caller should tell the operator (a confirm
	// window without its systemd timer).
	Warnings []string
}

// maxAttempts bounds re-planning when other programs keep changing the
// ruleset between our read and our batch.
const maxAttempts = 5

// Apply makes the kernel hold want: nothing when it already does, a delta of
// set elements when only they differ, else a replacement of the table, each
// in one batch. Afterwards the table is read back; if it is not exactly what
// was meant, the previous table is restored and an error returned.
func Apply(t Target, want *nftables.Ruleset) (*Result, error) {
	res, _, err := apply(t, want, nil)
	return res, err
}

// Apply applies want as the package's Apply does, and keeps a record of what
// the kernel holds afterwards in the state directory. The next apply of the
// target plans from that record instead of reading the sets' elements when
// the kernel's ruleset generation shows that nothing was committed since
// (see record.go); otherwise it reads the live table as Apply does.
func (st State) Apply(t Target, want *nftables.Ruleset) (*Result, error) {
	rec := st.readRecord(t)
	res, held, err := apply(t, want, rec)
	st.keepRecord(t, res, held, err)
	return res, err
}

// keepRecord saves the record of a verified apply, or removes the old one.
// A record that was used and found nothing to change stays as it is.
func (st State) keepRecord(t Target, res *Result, held *record, err error) {
	if err != nil {
		held = nil
	}
	if held != nil && res.FromRecord && res.Plan.Action == NoChange {
		return
	}
	if werr := st.writeRecord(t, held); werr != nil && res != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the record of the applied table was not saved (%v); the next apply reads the table in full", werr))
	}
}

// apply is Apply, planning from rec when it still describes the kernel. It
// returns the record of what the kernel holds afterwards (nil when unknown).
func apply(t Target, want *nftables.Ruleset, rec *record) (*Result, *record, error) {
	if want.Table != t.Table {
		return nil, nil, fmt.Errorf("the ruleset is for table %s, not %s", want.Table, t.Table)
	}
	s, err := t.open()
	if err != nil {
		return nil, nil, err
	}
	defer s.close()
	res := &Result{}
	for res.Attempts < maxAttempts {
		res.Attempts++
		start := time.Now()
		var live *Snapshot
		res.FromRecord = false
		if res.Attempts == 1 {
			if live, err = fromRecord(s, t.Table, rec); err != nil {
				return res, nil, err
			}
			res.FromRecord = live != nil
		}
		if live == nil {
			if live, err = read(s, t.Table); err != nil {
				return res, nil, err
			}
		}
		res.Previous = live
		plan, err := NewPlan(live, want)
		if err != nil {
			return res, nil, err
		}
		res.Plan = plan
		res.Read = time.Since(start)
		if plan.Action == NoChange {
			res.Generation = live.genID
			return res, newRecord(s, plan, live.genID), nil
		}
		b := newBatch(s)
		e := newEncoder(b, t.Table)
		if plan.Action == Delta {
			for _, d := range plan.Deltas {
				del, add := d.elements()
				e.elements(unix.NFT_MSG_DELSETELEM, 0, d.Set, 0, del)
				e.elements(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE|unix.NLM_F_EXCL, d.Set, 0, add)
			}
		} else if err := e.replace(want, plan.wantRanges); err != nil {
			return res, nil, err
		}
		res.Messages, res.Bytes = b.len(), b.size()
		if beforeSend != nil {
			beforeSend(res.Attempts)
		}
		start = time.Now()
		err = b.send(live.genID)
		res.Send = time.Since(start)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil && !errors.Is(err, errUncertain) {
			return res, nil, err
		}
		res.Uncertain = err != nil
		start = time.Now()
		gen, verr := verify(s, live, plan, b, err == nil)
		res.Verify = time.Since(start)
		if verr == nil {
			res.Generation = gen
			for _, r := range plan.wantRanges {
				res.Intervals += len(r)
			}
			return res, newRecord(s, plan, gen), nil
		}
		if res.Uncertain && errors.Is(verr, errUnchanged) {
			return res, nil, fmt.Errorf("the kernel's answer was lost and %s is unchanged: %w", t, err)
		}
		// The kernel does not hold what was meant: put the previous table back.
		res.RolledBack = true
		if err := restore(s, live, maxAttempts); err != nil {
			return res, nil, fmt.Errorf("verification after the apply failed (%v) and restoring the previous table failed too: %w", verr, err)
		}
		return res, nil, fmt.Errorf("verification after the apply failed, the previous table was restored: %w", verr)
	}
	return res, nil, fmt.Errorf("another program kept changing the ruleset; %s was not changed (tried %d times)", t, maxAttempts)
}

// beforeSend, when set (by tests), runs after planning and before the batch
// is sent, with the attempt's number.
var beforeSend func(attempt int)

// errUnchanged: after a batch the kernel still holds the previous table.
var errUnchanged = errors.New("the table is unchanged")

// verify reads the table back after a batch and compares it with the plan.
// For a delta whose commit is the only change since the plan's read (the
// ruleset generation moved by exactly one), the sets it did not touch are
// as that read found them, so only the changed sets are checked: large ones
// by looking up what changed (verifyDelta), others by reading them again.
// A replacement with huge sets is checked by verifyReplaced. Otherwise the
// whole table is read.
func verify(s *sock, live *Snapshot, p *Plan, b *batch, acked bool) (uint32, error) {
	if p.Action != Delta && acked {
		if gen, ok, err := verifyReplaced(s, live, p, b); ok || err != nil {
			return gen, err
		}
	}
	if p.Action == Delta {
		g1, err := genID(s)
		if err != nil {
			return 0, err
		}
		if g1 == live.genID {
			return 0, errUnchanged
		}
		if g1 == nextGen(live.genID) && acked {
			ok, err := verifyDelta(s, live, p, b)
			if err != nil {
				return 0, err
			}
			g2, err := genID(s)
			if err != nil {
				return 0, err
			}
			if ok && g2 == g1 {
				return g1, nil
			}
		}
		if g1 == nextGen(live.genID) {
			var changed []liveSet
			for _, d := range p.Deltas {
				ls := liveSet{name: d.Set, keyLen: 4}
				if d.V6 {
					ls.keyLen = 16
				}
				changed = append(changed, ls)
			}
			results, err := readAddrSets(s, live.Table, changed)
			if err != nil {
				return 0, err
			}
			g2, err := genID(s)
			if err != nil {
				return 0, err
			}
			if g2 == g1 {
				for i, d := range p.Deltas {
					if err := sameRanges(d.Set, results[i].ranges, p.wantRanges[d.Set]); err != nil {
						return 0, err
					}
				}
				return g1, nil
			}
		}
	}
	after, err := read(s, live.Table)
	if err != nil {
		return 0, err
	}
	if err := p.matches(after); err != nil {
		if sameSnapshot(live, after) == nil {
			return 0, fmt.Errorf("%w: %v", errUnchanged, err)
		}
		return 0, err
	}
	return after.genID, nil
}

// verifyReplaced verifies a table replacement whose commit the kernel
// acknowledged and which is the only change since the plan's read (the
// generation moved by exactly one). The table is read back whole except the
// elements of huge sets (see hugeSetElems) without adjacent intervals (which
// the kernel's lookup cannot tell apart): the batch deleted the table
// and created those sets in the same transaction, so each holds exactly the
// elements the batch carries. The batch's own bytes are decoded and compared
// with the elements meant, and every element is looked up in the kernel.
// ok is false when this does not apply; the caller then reads everything.
func verifyReplaced(s *sock, live *Snapshot, p *Plan, b *batch) (gen uint32, ok bool, err error) {
	large := map[string]bool{}
	for _, set := range p.want.Sets {
		r := p.wantRanges[set.Name]
		if !p.fqdn[set.Name] && 2*len(r) > hugeSetElems && !adjacentRanges(r) {
			large[set.Name] = true
		}
	}
	if len(large) == 0 {
		return 0, false, nil
	}
	g1, err := genID(s)
	if err != nil || g1 != nextGen(live.genID) {
		return 0, false, err
	}
	after, err := readExcept(s, live.Table, large)
	if err != nil {
		return 0, true, err
	}
	if after.genID != g1 {
		return 0, false, nil
	}
	for _, set := range p.want.Sets {
		if !large[set.Name] {
			continue
		}
		want, err := addrElements(set, p.wantRanges[set.Name])
		if err != nil {
			return 0, true, err
		}
		got, err := batchElements(b.msgs, unix.NFT_MSG_NEWSETELEM, set.Name)
		if err != nil {
			return 0, true, err
		}
		if err := sameElements(set.Name, got, want); err != nil {
			return 0, true, err
		}
		if err := lookupIntervals(s, live.Table, set.Name, want); err != nil {
			return 0, true, err
		}
		after.Ranges[set.Name] = p.wantRanges[set.Name]
	}
	if g2, err := genID(s); err != nil || g2 != g1 {
		return 0, false, err
	}
	if err := p.matches(after); err != nil {
		return 0, true, err
	}
	return g1, true, nil
}

// nextGen is the generation after one commit (the kernel skips zero).
func nextGen(g uint32) uint32 {
	if g+1 == 0 {
		return 1
	}
	return g + 1
}

// Restore makes the kernel hold a saved snapshot again: the table as it was,
// or no table when it did not exist. It reads back and verifies.
func Restore(t Target, snap *Snapshot) error {
	if snap.Table != t.Table {
		return fmt.Errorf("the snapshot is of table %s, not %s", snap.Table, t.Table)
	}
	s, err := t.open()
	if err != nil {
		return err
	}
	defer s.close()
	return restore(s, snap, maxAttempts)
}

func restore(s *sock, snap *Snapshot, attempts int) error {
	for i := 0; i < attempts; i++ {
		cur, err := read(s, snap.Table)
		if err != nil {
			var no *NotOwnedError
			if !errors.As(err, &no) {
				return err
			}
			cur = &Snapshot{Table: snap.Table}
		} else if sameSnapshot(snap, cur) == nil {
			return nil
		}
		b := newBatch(s)
		e := newEncoder(b, snap.Table)
		if snap.Exists {
			if err := e.replace(snap.Ruleset, snap.Ranges); err != nil {
				return err
			}
		} else {
			e.remove()
		}
		err = b.send(cur.genID)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil && !errors.Is(err, errUncertain) {
			return err
		}
		after, err := read(s, snap.Table)
		if err != nil {
			return err
		}
		return sameSnapshot(snap, after)
	}
	return errors.New("another program kept changing the ruleset")
}
