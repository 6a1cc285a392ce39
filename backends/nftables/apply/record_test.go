package apply

import (
	"os"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns"
)

// recordApply applies through a state directory (as the CLI does) and counts
// the address sets whose elements were read.
func recordApply(t *testing.T, st State, ns *netns.NS, rs *nftables.Ruleset) (*Result, int64) {
	t.Helper()
	before := setReads.Load()
	res, err := st.Apply(Target{Table: rs.Table, NetNS: ns.Name}, rs)
	if err != nil {
		t.Fatal(err)
	}
	return res, setReads.Load() - before
}

// generation reads a namespace's ruleset generation.
func generation(t *testing.T, ns *netns.NS) uint32 {
	t.Helper()
	s, err := Target{Table: "x", NetNS: ns.Name}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	g, err := genID(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// bump commits empty changes in a namespace until its generation is at
// least g (bounded).
func bump(t *testing.T, ns *netns.NS, g uint32) {
	t.Helper()
	for i := 0; generation(t, ns) < g; i++ {
		if i > 200 {
			t.Fatalf("generation of %s stays below %d", ns.Name, g)
		}
		verb := "add"
		if i%2 == 1 {
			verb = "delete"
		}
		nft(t, ns, verb, "table", "inet", "bump")
	}
}

// sameAsRead fails unless a full read of the kernel plans no change for rs.
func sameAsRead(t *testing.T, ns *netns.NS, rs *nftables.Ruleset) {
	t.Helper()
	p, err := PlanFor(Target{Table: rs.Table, NetNS: ns.Name}, rs)
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != NoChange {
		t.Fatalf("the kernel does not hold the ruleset: %s\n%s", p.Summary(), p.Diff("kernel", "meant"))
	}
}

// TestRecordSkipsRead: after a verified apply, applying again while the
// generation has not moved plans from the record without reading any set,
// and finds the same as a full read; a delta planned from the record is
// applied and verified as one planned from a read.
func TestRecordSkipsRead(t *testing.T) {
	needKernel(t)
	st := State{Dir: t.TempDir()}
	ns := newNS(t, "record")
	rs := synthetic("turnwall", 3000, 2000, 0)
	res, reads := recordApply(t, st, ns, rs)
	if res.Plan.Action != Create || res.FromRecord {
		t.Fatalf("first apply: %s, from record %v", res.Plan.Action, res.FromRecord)
	}
	if _, err := os.Stat(st.recordPath(Target{Table: rs.Table, NetNS: ns.Name})); err != nil {
		t.Fatalf("no record after a verified apply: %v", err)
	}

	full, err := Read(Target{Table: rs.Table, NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	res, reads = recordApply(t, st, ns, rs)
	if res.Plan.Action != NoChange || !res.FromRecord || reads != 0 {
		t.Fatalf("re-apply: %s, from record %v, %d sets read", res.Plan.Action, res.FromRecord, reads)
	}
	if res.Generation != full.Generation() {
		t.Fatalf("re-apply at generation %d, the kernel is at %d", res.Generation, full.Generation())
	}
	if err := sameSnapshot(full, res.Previous); err != nil {
		t.Fatalf("the table planned from the record differs from a full read: %v", err)
	}
	if !reflect.DeepEqual(full.markers, res.Previous.markers) {
		t.Fatalf("end markers from the record %v, from the kernel %v", res.Previous.markers, full.markers)
	}
	stateless, err := Apply(Target{Table: rs.Table, NetNS: ns.Name}, rs)
	if err != nil {
		t.Fatal(err)
	}
	if stateless.Plan.Summary() != res.Plan.Summary() {
		t.Fatalf("plan from the record %q, from a read %q", res.Plan.Summary(), stateless.Plan.Summary())
	}

	// A plan (turnwall plan) from the record is the plan from a read.
	v := withPrefix(rs, "big_v6", "2001:db8::/64")
	before := setReads.Load()
	fromRec, err := st.PlanFor(Target{Table: rs.Table, NetNS: ns.Name}, v)
	if err != nil {
		t.Fatal(err)
	}
	if n := setReads.Load() - before; n != 0 {
		t.Fatalf("a plan read %d sets", n)
	}
	read, err := PlanFor(Target{Table: rs.Table, NetNS: ns.Name}, v)
	if err != nil {
		t.Fatal(err)
	}
	if fromRec.Summary() != read.Summary() || fromRec.Diff("a", "b") != read.Diff("a", "b") {
		t.Fatalf("plan from the record %q, from a read %q", fromRec.Summary(), read.Summary())
	}

	// Deltas, small and large sets, planned from the record each time.
	versions := []*nftables.Ruleset{
		withPrefix(rs, "big_v4", "2.0.0.0/32"),
		withPrefix(withPrefix(rs, "big_v4", "-20.0.0.0/32"), "big_v6", "2001:db8::/64"),
		withPrefix(rs, "agents_v4", "10.30.0.0/16"),
		rs,
	}
	for i, v := range versions {
		res, reads = recordApply(t, st, ns, v)
		if res.Plan.Action != Delta || !res.FromRecord || res.Attempts != 1 {
			t.Fatalf("version %d: %s, from record %v, %d attempts", i, res.Plan.Action, res.FromRecord, res.Attempts)
		}
		sameAsRead(t, ns, v)
	}
	// A change of rules replaces the table, planned from the record too.
	v = synthetic("turnwall", 3000, 2000, 1)
	res, _ = recordApply(t, st, ns, v)
	if res.Plan.Action != Replace || !res.FromRecord {
		t.Fatalf("rule change: %s, from record %v", res.Plan.Action, res.FromRecord)
	}
	sameAsRead(t, ns, v)
	res, reads = recordApply(t, st, ns, v)
	if res.Plan.Action != NoChange || !res.FromRecord || reads != 0 {
		t.Fatalf("re-apply after the replacement: %s, from record %v, %d sets read", res.Plan.Action, res.FromRecord, reads)
	}
}

// TestRecordBehindTheBack: an element added with nft after a verified apply
// moves the generation, so the next apply reads the sets (as without a
// record), plans the same as a stateless plan and removes the element.
func TestRecordBehindTheBack(t *testing.T) {
	needKernel(t)
	st := State{Dir: t.TempDir()}
	ns := newNS(t, "record")
	rs := synthetic("turnwall", 3000, 2000, 0)
	target := Target{Table: rs.Table, NetNS: ns.Name}
	recordApply(t, st, ns, rs)
	nft(t, ns, "add", "element", "inet", "turnwall", "big_v4", "{ 2.0.0.1 }")
	want, err := PlanFor(target, rs)
	if err != nil {
		t.Fatal(err)
	}
	res, reads := recordApply(t, st, ns, rs)
	if res.FromRecord || reads == 0 {
		t.Fatalf("an apply after a change behind turnwall's back used the record (%d sets read)", reads)
	}
	if res.Plan.Action != Delta || res.Plan.Summary() != want.Summary() {
		t.Fatalf("plan %q, a stateless plan %q", res.Plan.Summary(), want.Summary())
	}
	sameAsRead(t, ns, rs)

	// A rule added behind turnwall's back is noticed the same way.
	nft(t, ns, "add", "rule", "inet", "turnwall", "policy_rules", "udp", "dport", "9", "accept")
	res, _ = recordApply(t, st, ns, rs)
	if res.FromRecord || res.Plan.Action != Replace {
		t.Fatalf("after a foreign rule: %s, from record %v", res.Plan.Action, res.FromRecord)
	}
	sameAsRead(t, ns, rs)
}

// TestRecordRace: a change committed after an apply planned from the record
// but before its batch makes the kernel refuse the batch (it carries the
// recorded generation); the apply plans again from a full read and ends
// with exactly the ruleset meant.
func TestRecordRace(t *testing.T) {
	needKernel(t)
	st := State{Dir: t.TempDir()}
	ns := newNS(t, "record")
	rs := synthetic("turnwall", 3000, 2000, 0)
	recordApply(t, st, ns, rs)
	batches := 0
	beforeSend = func(attempt int) {
		batches++
		if attempt == 1 {
			nft(t, ns, "add", "element", "inet", "turnwall", "big_v4", "{ 2.0.0.1 }")
		}
	}
	defer func() { beforeSend = nil }()
	v := withPrefix(rs, "big_v4", "3.0.0.0/32")
	res, _ := recordApply(t, st, ns, v)
	if res.Attempts != 2 || res.FromRecord || res.Plan.Action != Delta || batches != 2 {
		t.Fatalf("%d attempts (%d batches), from record %v, %s", res.Attempts, batches, res.FromRecord, res.Plan.Summary())
	}
	beforeSend = nil
	sameAsRead(t, ns, v)
	res, reads := recordApply(t, st, ns, v)
	if !res.FromRecord || reads != 0 || res.Plan.Action != NoChange {
		t.Fatalf("after the race: %s, from record %v, %d sets read", res.Plan.Action, res.FromRecord, reads)
	}
}

// TestRecordOtherNamespace: a record is only used in the namespace it was
// made in, even when another namespace has the same name later (the file is
// keyed by name) and the same generation.
func TestRecordOtherNamespace(t *testing.T) {
	needKernel(t)
	st := State{Dir: t.TempDir()}
	a, b := newNS(t, "record-a"), newNS(t, "record-b")
	rs := synthetic("turnwall", 3000, 0, 0)
	// b holds the ruleset with one more element, loaded by nft.
	nftFile(t, b, withPrefix(rs, "big_v4", "2.0.0.1/32").Text())
	gb := generation(t, b)
	bump(t, a, gb)
	recordApply(t, st, a, rs)
	ga := generation(t, a)
	bump(t, b, ga)
	if g := generation(t, b); g != ga {
		t.Fatalf("generations %d and %d", ga, g)
	}
	ta, tb := Target{Table: rs.Table, NetNS: a.Name}, Target{Table: rs.Table, NetNS: b.Name}
	if err := os.Rename(st.recordPath(ta), st.recordPath(tb)); err != nil {
		t.Fatal(err)
	}
	res, reads := recordApply(t, st, b, rs)
	if res.FromRecord || reads == 0 || res.Plan.Action != Delta {
		t.Fatalf("apply in another namespace of the same generation: %s, from record %v, %d sets read", res.Plan.Action, res.FromRecord, reads)
	}
	sameAsRead(t, b, rs)
}

// TestRecordEncoding: a record survives encoding; a damaged one is refused.
func TestRecordEncoding(t *testing.T) {
	rs := synthetic("turnwall", 50, 40, 0)
	p, err := NewPlan(&Snapshot{Table: rs.Table}, rs)
	if err != nil {
		t.Fatal(err)
	}
	r := &record{BootID: "b", Cookie: 7, Generation: 9, Table: rs.Table, Schema: schemaDigest(rs), ranges: p.wantRanges}
	for _, s := range rs.Sets {
		r.Sets = append(r.Sets, recordSet{Name: s.Name, V6: s.V6, Intervals: len(p.wantRanges[s.Name])})
	}
	b := r.encode()
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("decoded %+v, encoded %+v", got, r)
	}
	for _, i := range []int{0, len(recordMagic) + 2, len(b) / 2, len(b) - 1} {
		bad := append([]byte(nil), b...)
		bad[i] ^= 1
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("a record with byte %d altered was accepted", i)
		}
	}
	for _, n := range []int{0, 10, len(b) - 1} {
		if _, err := decodeRecord(b[:n]); err == nil {
			t.Errorf("a record cut at %d bytes was accepted", n)
		}
	}
}

// TestRecordConfirmWindow: a confirm window opened by an apply planned from
// the record saves the previous table (its intervals from the record) and
// its rollback restores it exactly; the rollback moves the generation, so
// the next apply reads the sets.
func TestRecordConfirmWindow(t *testing.T) {
	needKernel(t)
	st := State{Dir: t.TempDir()}
	ns := newNS(t, "record")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	rs := synthetic("turnwall", 3000, 2000, 0)
	recordApply(t, st, ns, rs)
	opts := ConfirmOptions{Window: time.Minute, Watcher: func(id string) *exec.Cmd {
		return child("watch", "TW_STATE="+st.Dir, "TW_NETNS="+ns.Name, "TW_TABLE=turnwall", "TW_ID="+id)
	}}
	v := withPrefix(rs, "big_v4", "2.0.0.0/32")
	unlock, err := st.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, p, err := st.ApplyConfirmed(target, v, opts)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || !res.FromRecord || res.Plan.Action != Delta {
		t.Fatalf("confirmed apply: window %v, from record %v, %s", p != nil, res.FromRecord, res.Plan.Action)
	}
	sameAsRead(t, ns, v)
	if _, _, err := st.Rollback(target, RollbackOptions{}); err != nil {
		t.Fatal(err)
	}
	sameAsRead(t, ns, rs)
	res, reads := recordApply(t, st, ns, rs)
	if res.FromRecord || reads == 0 || res.Plan.Action != NoChange {
		t.Fatalf("after the rollback: %s, from record %v, %d sets read", res.Plan.Action, res.FromRecord, reads)
	}
}
