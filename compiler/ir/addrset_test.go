package ir

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"go4.org/netipx"
)

// randomPrefixes draws prefixes from a small corner of each family, so that
// they overlap, touch, nest and repeat often; some carry host bits, some are
// invalid.
func randomPrefixes(r *rand.Rand, n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	for range n {
		switch r.IntN(10) {
		case 0:
			out = append(out, netip.Prefix{})
		case 1, 2:
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(256))})
			out = append(out, netip.PrefixFrom(a, 120+r.IntN(9)))
		default:
			a := netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))})
			p := netip.PrefixFrom(a, 20+r.IntN(13))
			if r.IntN(2) == 0 {
				p = p.Masked()
			}
			out = append(out, p)
		}
	}
	return out
}

// SetPrefixes gives what the IPSet builder gives (SetIPSet), for sorted
// and unsorted input, and the set's own lookups answer as the IPSet does.
func TestSetPrefixesAgreesWithIPSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		ps := randomPrefixes(r, r.IntN(40))
		if i%4 == 0 {
			// IPv4 only (SetPrefixes takes them in 32-bit arithmetic).
			ps = slices.DeleteFunc(ps, func(p netip.Prefix) bool { return !p.Addr().Is4() })
		}
		if i%2 == 0 {
			ps = slices.DeleteFunc(ps, func(p netip.Prefix) bool { return !p.IsValid() })
			for j := range ps {
				ps[j] = ps[j].Masked()
			}
			slices.SortFunc(ps, comparePrefixes)
		}
		var b netipx.IPSetBuilder
		for _, p := range ps {
			b.AddPrefix(p)
		}
		set, _ := b.IPSet()
		var want, got AddressSet
		want.SetIPSet(set)
		in := slices.Clone(ps)
		got.SetPrefixes(ps)
		if !slices.Equal(ps, in) {
			t.Fatalf("SetPrefixes changed its input")
		}
		if !slices.Equal(got.V4, want.V4) || !slices.Equal(got.V6, want.V6) {
			t.Fatalf("input %v:\nSetPrefixes %v %v\nIPSet       %v %v", ps, got.V4, got.V6, want.V4, want.V6)
		}
		if !got.sortedCover() {
			t.Fatal("SetPrefixes: not marked as a sorted cover")
		}
		other := randomPrefixes(r, 1+r.IntN(6))
		var o AddressSet
		o.SetPrefixes(other)
		oset := o.IPSet()
		if g, w := got.Overlaps(&o), set.Overlaps(oset); g != w {
			t.Fatalf("%v overlaps %v: got %v, want %v", ps, other, g, w)
		}
		for _, p := range other {
			if g, w := got.OverlapsPrefix(p), set.OverlapsPrefix(p); g != w {
				t.Fatalf("%v overlaps prefix %v: got %v, want %v", ps, p, g, w)
			}
			if !p.IsValid() {
				continue
			}
			for _, a := range []netip.Addr{p.Addr(), netipx.PrefixLastIP(p.Masked()), p.Masked().Addr().Prev()} {
				if g, w := got.Contains(a), set.Contains(a); g != w {
					t.Fatalf("%v contains %v: got %v, want %v", ps, a, g, w)
				}
			}
		}
		if !got.IPSet().Equal(set) {
			t.Fatalf("IPSet of SetPrefixes: %v, want %v", got.IPSet(), set)
		}
	}
}

// A set whose prefixes are replaced after SetPrefixes answers from the new
// prefixes, and Index readies an IPSet of them.
func TestSetPrefixesReplaced(t *testing.T) {
	var s AddressSet
	s.SetPrefixes([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")})
	s.V4 = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.0/8")} // unsorted
	if s.sortedCover() {
		t.Fatal("replaced prefixes still taken as the sorted cover")
	}
	if !s.Contains(netip.MustParseAddr("10.9.9.9")) || !s.OverlapsPrefix(netip.MustParsePrefix("10.200.0.0/16")) {
		t.Fatal("lookups do not see the replaced prefixes")
	}
	p := &Program{AddressSets: []AddressSet{s}}
	p.AddressSets[0].V4 = p.AddressSets[0].V4[:1]
	p.Index()
	if p.AddressSet(s.Name).IPSet().Contains(netip.MustParseAddr("10.9.9.9")) {
		t.Fatal("Index kept an IPSet of prefixes the set no longer has")
	}
}
