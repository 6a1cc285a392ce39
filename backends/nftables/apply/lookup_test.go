package apply

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns"
)

func setRanges(t testing.TB, s nftables.Set) []netipx.IPRange {
	t.Helper()
	r, err := prefixRanges(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBatchElements: the elements decoded from a batch's bytes are those
// encoded, over many messages, and a changed byte is found.
func TestBatchElements(t *testing.T) {
	rs := synthetic("turnwall", 20_000, 5_000, 0)
	b := newBatch(&sock{fd: -1})
	e := newEncoder(b, rs.Table)
	ranges := map[string][]netipx.IPRange{}
	for _, s := range rs.Sets {
		ranges[s.Name] = setRanges(t, s)
	}
	if err := e.replace(rs, ranges); err != nil {
		t.Fatal(err)
	}
	for _, s := range rs.Sets {
		want, err := addrElements(s, ranges[s.Name])
		if err != nil {
			t.Fatal(err)
		}
		got, err := batchElements(b.msgs, unix.NFT_MSG_NEWSETELEM, s.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameElements(s.Name, got, want); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := addrElements(rs.Sets[2], ranges["big_v4"])
	got, _ := batchElements(b.msgs, unix.NFT_MSG_NEWSETELEM, "big_v4")
	got[1234].key = netip.MustParseAddr("20.0.99.99").AsSlice()
	if err := sameElements("big_v4", got, want); err == nil || !strings.Contains(err.Error(), "element 1235") {
		t.Fatalf("a changed element: %v", err)
	}
	if err := sameElements("big_v4", got[1:], want); err == nil {
		t.Fatal("a missing element went unnoticed")
	}
}

// lookupLab applies two sets of 10,000 single addresses (IPv4 and IPv6) in
// a new namespace and opens a socket there, closed when the test ends.
func lookupLab(t *testing.T, name string) (*netns.NS, *nftables.Ruleset, *sock) {
	t.Helper()
	needKernel(t)
	ns := newNS(t, name)
	rs := synthetic("turnwall", 10_000, 10_000, 0)
	mustApply(t, ns, rs)
	s, err := Target{Table: rs.Table, NetNS: ns.Name}.open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return ns, rs, s
}

// TestLookupElements: lookups find every element of a large set the kernel
// holds, and notice one element taken away (or left in) behind turnwall's
// back.
func TestLookupElements(t *testing.T) {
	ns, rs, s := lookupLab(t, "lookup")
	for _, set := range rs.Sets[2:] {
		elems, err := addrElements(set, setRanges(t, set))
		if err != nil {
			t.Fatal(err)
		}
		if err := lookupElements(s, rs.Table, set.Name, elems); err != nil {
			t.Fatalf("%s: %v", set.Name, err)
		}
		if err := lookupAbsent(s, rs.Table, set.Name, elems[5000:5001]); err == nil {
			t.Fatalf("%s: a present element looked absent", set.Name)
		}
		gone := set.Prefixes[2500]
		nft(t, ns, "delete", "element", "inet", rs.Table, set.Name, fmt.Sprintf("{ %s }", gone))
		// The lookups run on several sockets at once (20 chunks); the error
		// is still the one of the element deleted.
		if err := lookupElements(s, rs.Table, set.Name, elems); err == nil || !strings.Contains(err.Error(), gone.Addr().String()) {
			t.Fatalf("%s: deleting %v: %v", set.Name, gone, err)
		}
		start, _ := addrElements(set, []netipx.IPRange{netipx.RangeOfPrefix(gone)})
		if err := lookupAbsent(s, rs.Table, set.Name, start[1:]); err != nil {
			t.Fatalf("%s: %v", set.Name, err)
		}
	}
}

// TestLookupIntervals: one lookup an interval proves a large set the kernel
// holds, and finds an interval deleted behind turnwall's back (its start and
// end gone), an interval that ends elsewhere, one that is not there at all
// and two that the kernel holds apart where one was meant.
func TestLookupIntervals(t *testing.T) {
	ns, rs, s := lookupLab(t, "intervals")
	for _, set := range rs.Sets[2:] {
		ranges := setRanges(t, set)
		elems, err := addrElements(set, ranges)
		if err != nil {
			t.Fatal(err)
		}
		if err := lookupIntervals(s, rs.Table, set.Name, elems); err != nil {
			t.Fatalf("%s: %v", set.Name, err)
		}
		claim := func(rs []netipx.IPRange) []element {
			e, err := addrElements(set, rs)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		// Interval 700 one address longer (the next interval, which would
		// then touch it, left out of the claim).
		longer := append(append([]netipx.IPRange(nil), ranges[:700]...), netipx.IPRangeFrom(ranges[700].From(), ranges[700].To().Next()))
		longer = append(longer, ranges[702:]...)
		// The prefixes are single addresses two apart: the only gap that is
		// not an interval's end is after the last one.
		after := ranges[len(ranges)-1].To()
		for range 10 {
			after = after.Next()
		}
		extra := append(append([]netipx.IPRange(nil), ranges...), netipx.IPRangeFrom(after, after))
		merged := append(append([]netipx.IPRange(nil), ranges[:1200]...), netipx.IPRangeFrom(ranges[1200].From(), ranges[1201].To()))
		merged = append(merged, ranges[1202:]...)
		touching := append([]netipx.IPRange(nil), ranges...)
		touching[700] = netipx.IPRangeFrom(ranges[700].From(), ranges[700].To().Next())
		for name, c := range map[string]struct {
			elems []element
			want  string
		}{
			"an interval that ends elsewhere": {claim(longer), "does not end at"},
			"an interval in a gap":            {claim(extra), "holds no interval from"},
			"two intervals as one":            {claim(merged), "does not end at"},
			"adjacent intervals":              {claim(touching), "is adjacent to the interval before"},
		} {
			if err := lookupIntervals(s, rs.Table, set.Name, c.elems); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s, %s: %v", set.Name, name, err)
			}
		}
		gone := set.Prefixes[2500]
		nft(t, ns, "delete", "element", "inet", rs.Table, set.Name, fmt.Sprintf("{ %s }", gone))
		if err := lookupIntervals(s, rs.Table, set.Name, elems); err == nil || !strings.Contains(err.Error(), "holds no interval from "+gone.Addr().String()) {
			t.Fatalf("%s: deleting %v: %v", set.Name, gone, err)
		}
	}
}

// TestAdjacent: elements whose key an interval of the other kind shares
// (an end and the next start) are not checked by lookups.
func TestAdjacent(t *testing.T) {
	r := func(from, to string) netipx.IPRange {
		return netipx.IPRangeFrom(netip.MustParseAddr(from), netip.MustParseAddr(to))
	}
	want := []netipx.IPRange{r("10.0.0.0", "10.0.0.255"), r("10.0.1.0", "10.0.1.255"), r("10.0.3.0", "10.0.3.255")}
	el := func(a string, end bool) []element {
		return []element{{key: netip.MustParseAddr(a).AsSlice(), end: end}}
	}
	for _, c := range []struct {
		el   []element
		want bool
	}{
		{el("10.0.1.0", true), true},   // the end of the first interval, the start of the second
		{el("10.0.1.0", false), true},  // and the other way round
		{el("10.0.0.0", false), false}, // a start alone
		{el("10.0.2.0", true), false},  // an end alone
		{el("10.0.3.0", false), false},
		{el("10.0.4.0", true), false},
	} {
		if got := adjacent(want, nil, c.el); got != c.want {
			t.Errorf("%v end=%v: adjacent %v, want %v", netip.AddrFrom4([4]byte(c.el[0].key)), c.el[0].end, got, c.want)
		}
		if got := adjacent(want, c.el, nil); got != c.want {
			t.Errorf("deleting %v: adjacent %v, want %v", c.el[0].key, got, c.want)
		}
	}
}

func TestAdjacentRanges(t *testing.T) {
	r := func(from, to string) netipx.IPRange {
		return netipx.IPRangeFrom(netip.MustParseAddr(from), netip.MustParseAddr(to))
	}
	if adjacentRanges([]netipx.IPRange{r("10.0.0.0", "10.0.0.255"), r("10.0.2.0", "10.0.2.255")}) {
		t.Error("a gap counted as adjacent")
	}
	if !adjacentRanges([]netipx.IPRange{r("10.0.0.0", "10.0.0.255"), r("10.0.1.0", "10.0.1.255")}) {
		t.Error("adjacent intervals not seen")
	}
}
