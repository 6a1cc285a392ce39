package ir

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"

	"go4.org/netipx"
)

// lazySet builds a set's netipx.IPSet on first use, once, for any number of
// goroutines (Index hands one to every set that has none yet).
type lazySet struct {
	once   sync.Once
	v4, v6 []netip.Prefix
	set    *netipx.IPSet
}

func (l *lazySet) get() *netipx.IPSet {
	l.once.Do(func() { l.set = buildIPSet(l.v4, l.v6) })
	return l.set
}

func buildIPSet(v4, v6 []netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range v4 {
		b.AddPrefix(p)
	}
	for _, p := range v6 {
		b.AddPrefix(p)
	}
	set, _ := b.IPSet() // prefixes are valid by construction
	return set
}

// SetPrefixes makes s hold exactly the addresses of ps (in any order,
// overlapping or not, host bits set or not; invalid prefixes are skipped):
// V4 and V6 become their minimal prefix cover, sorted, the same as SetIPSet
// of the set ps make. It takes one pass over ps when they are sorted, as
// published lists and the IR's own sets are, and builds no netipx.IPSet:
// IPSet builds it when something asks for it, and the set's own Contains,
// OverlapsPrefix and Overlaps answer from the sorted cover.
func (s *AddressSet) SetPrefixes(ps []netip.Prefix) {
	if all, ok := coverSorted4(ps); ok {
		s.setCover(all)
		return
	}
	sorted := true
	for i, p := range ps {
		if !p.IsValid() || p.Masked() != p || (i > 0 && comparePrefixes(ps[i-1], p) > 0) {
			sorted = false
			break
		}
	}
	if !sorted {
		c := make([]netip.Prefix, 0, len(ps))
		for _, p := range ps {
			if p.IsValid() {
				c = append(c, p.Masked())
			}
		}
		slices.SortFunc(c, comparePrefixes)
		ps = c
	}
	all := make([]netip.Prefix, 0, len(ps))
	// The range being gathered: from..to, and the prefix it is exactly, if
	// it is one (single >= 0).
	var from, to netip.Addr
	single := -1
	open := false
	flush := func() {
		if !open {
			return
		}
		if single >= 0 {
			all = append(all, ps[single])
		} else {
			all = netipx.IPRangeFrom(from, to).AppendPrefixes(all)
		}
	}
	for i, p := range ps {
		first, last := p.Addr(), netipx.PrefixLastIP(p)
		switch {
		case !open || first.Is4() != to.Is4() || (to.Less(first) && to.Next() != first):
			flush()
			from, to, single, open = first, last, i, true
		case !last.Less(to) && last != to:
			// Touches or overlaps the range and reaches beyond it.
			to, single = last, -1
			if first == from {
				// Sorted by address, then by length: it starts where the
				// range does, so covers it all.
				single = i
			}
		}
		// Otherwise p lies within the range.
	}
	flush()
	s.setCover(all)
}

// setCover makes all, a sorted minimal cover, the set's V4 and V6.
func (s *AddressSet) setCover(all []netip.Prefix) {
	v4 := len(all)
	for i, p := range all {
		if !p.Addr().Is4() {
			v4 = i
			break
		}
	}
	s.V4, s.V6 = nil, nil
	if v4 > 0 {
		s.V4 = all[:v4:v4]
	}
	if v4 < len(all) {
		s.V6 = all[v4:]
	}
	s.set = nil
	s.lazy = nil
	s.setOf = [2]prefixesID{idOf(s.V4), idOf(s.V6)}
	s.cover = true
}

// coverSorted4 is SetPrefixes' cover of IPv4 prefixes that come sorted and
// masked, in 32-bit arithmetic; ok is false for any other input.
func coverSorted4(ps []netip.Prefix) (all []netip.Prefix, ok bool) {
	all = make([]netip.Prefix, 0, len(ps))
	var from, to uint32
	single := -1
	open := false
	flush := func() {
		if !open {
			return
		}
		if single >= 0 {
			all = append(all, ps[single])
		} else {
			all = netipx.IPRangeFrom(addr4(from), addr4(to)).AppendPrefixes(all)
		}
	}
	var prevFirst uint32
	prevBits := -1
	for i, p := range ps {
		a := p.Addr()
		if !a.Is4() || !p.IsValid() {
			return nil, false
		}
		b := a.As4()
		first := binary.BigEndian.Uint32(b[:])
		bits := p.Bits()
		host := uint32(uint64(1)<<(32-bits) - 1)
		if first&host != 0 || first < prevFirst || (first == prevFirst && bits <= prevBits) {
			return nil, false // host bits set, out of order or repeated
		}
		prevFirst, prevBits = first, bits
		last := first | host
		switch {
		case !open || (to < first && to+1 != first):
			flush()
			from, to, single, open = first, last, i, true
		case last > to:
			to, single = last, -1
		}
	}
	flush()
	return all, true
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// comparePrefixes orders by address (IPv4 before IPv6), then shorter
// prefixes first.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// sortedCover reports whether V4 and V6 are still the sorted minimal cover
// SetPrefixes or SetIPSet made them.
func (s *AddressSet) sortedCover() bool {
	return s.cover && s.setOf == [2]prefixesID{idOf(s.V4), idOf(s.V6)}
}

// Contains reports whether the set holds the address (its prefixes; names
// are not resolved), as IPSet().Contains.
func (s *AddressSet) Contains(a netip.Addr) bool {
	if !s.sortedCover() {
		return s.IPSet().Contains(a)
	}
	list := s.V6
	if a.Is4() {
		list = s.V4
	}
	// The last prefix that starts at or below a.
	i, _ := slices.BinarySearchFunc(list, a, func(p netip.Prefix, a netip.Addr) int {
		if p.Addr().Compare(a) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && list[i-1].Contains(a)
}

// OverlapsPrefix reports whether the set holds any address of p, as
// IPSet().OverlapsPrefix.
func (s *AddressSet) OverlapsPrefix(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	if !s.sortedCover() {
		return s.IPSet().OverlapsPrefix(p)
	}
	p = p.Masked()
	list := s.V6
	if p.Addr().Is4() {
		list = s.V4
	}
	last := netipx.PrefixLastIP(p)
	// The last prefix that starts at or below p's last address overlaps p
	// if it reaches p's first; the ones before it end before it starts.
	i, _ := slices.BinarySearchFunc(list, last, func(q netip.Prefix, a netip.Addr) int {
		if q.Addr().Compare(a) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && !netipx.PrefixLastIP(list[i-1]).Less(p.Addr())
}

// Overlaps reports whether the two sets share an address, as
// IPSet().Overlaps.
func (s *AddressSet) Overlaps(o *AddressSet) bool {
	if !s.sortedCover() || !o.sortedCover() {
		return s.IPSet().Overlaps(o.IPSet())
	}
	small, big := s, o
	if len(small.V4)+len(small.V6) > len(big.V4)+len(big.V6) {
		small, big = big, small
	}
	for _, list := range [2][]netip.Prefix{small.V4, small.V6} {
		for _, p := range list {
			if big.OverlapsPrefix(p) {
				return true
			}
		}
	}
	return false
}
