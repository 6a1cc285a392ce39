package peerfilter

import (
	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/ir"
)

// PolicyPeers returns the peers relay r of a compiled policy enforces:
// Effective of its peer set, with the policy's agents and provider ranges as
// the ranges it names. nil means no peer at all. The coturn target and the
// bundled relay both use it, so both refuse the same addresses.
func PolicyPeers(p *ir.Program, r *ir.Relay) (*netipx.IPSet, error) {
	if r.Peers == "" {
		return nil, nil
	}
	peers, err := p.LookupAddressSet(r.Peers)
	if err != nil {
		return nil, err
	}
	return Effective(peers.IPSet(), OwnRanges(p)), nil
}

// OwnRanges is the union of the policy's agents and provider ranges: the
// special-purpose addresses a relay's peers may name.
func OwnRanges(p *ir.Program) *netipx.IPSet {
	var b netipx.IPSetBuilder
	add := func(name string) {
		if s := p.AddressSet(name); s != nil {
			b.AddSet(s.IPSet())
		}
	}
	for _, g := range p.Agents {
		add(g.Addresses)
	}
	for _, pr := range p.Providers {
		add(pr.Addresses)
	}
	return mustSet(&b)
}
