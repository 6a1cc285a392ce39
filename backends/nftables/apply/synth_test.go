package apply

import (
	"encoding/binary"
	"net/netip"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
)

// spaced returns n single-address prefixes two addresses apart (so no two
// are adjacent and each is its own interval), from base.
func spaced(base netip.Addr, n int, step uint64) []netip.Prefix {
	out := make([]netip.Prefix, n)
	b := base.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for i := range out {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], hi)
		binary.BigEndian.PutUint64(a[8:], lo+uint64(i)*step)
		addr := netip.AddrFrom16(a)
		if base.Is4() {
			addr = addr.Unmap()
		}
		out[i] = netip.PrefixFrom(addr, addr.BitLen())
	}
	return out
}

// synthetic is a ruleset with two large sets and rules using them; variant
// changes the rules (so that two variants need a table replacement).
func synthetic(table string, n4, n6 int, variant int) *nftables.Ruleset {
	rs := &nftables.Ruleset{Table: table}
	rs.Sets = []nftables.Set{
		{Name: "agents_v4", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}, Comment: "agents"},
		{Name: "agents_v6", V6: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("fd00:20::/48")}, Comment: "agents"},
		{Name: "big_v4", Prefixes: spaced(netip.MustParseAddr("20.0.0.0"), n4, 2), Comment: "provider big (large.hcl:1)"},
		{Name: "big_v6", V6: true, Prefixes: spaced(netip.MustParseAddr("2600::"), n6, 2), Comment: "provider big (large.hcl:1)"},
	}
	verdict := "accept"
	if variant%2 == 1 {
		verdict = "drop"
	}
	pc := nftables.Chain{Name: "policy_rules", Rules: []nftables.Rule{
		{CtState: []string{"established", "related"}, Verdict: "accept", Comment: "replies"},
		{IIF: []string{"vlan20"}, OIF: []string{"wan0"}, Family: 4, SrcSet: "agents_v4", DstSet: "big_v4", Proto: ir.UDP,
			DPorts: []ir.PortRange{{First: 3478, Last: 3478}, {First: 16384, Last: 65535}}, Counter: true, Verdict: verdict, Comment: "floor.big.media large.hcl:1", IRRule: "floor.big.media"},
		{IIF: []string{"vlan20"}, OIF: []string{"wan0"}, Family: 6, SrcSet: "agents_v6", DstSet: "big_v6", Proto: ir.TCP,
			DPorts: []ir.PortRange{{First: 443, Last: 443}}, Counter: true, Verdict: verdict, Comment: "floor.big.signalling large.hcl:1", IRRule: "floor.big.signalling"},
		{Counter: true, Verdict: "drop", Comment: "default_action deny"},
	}}
	rs.Chains = []nftables.Chain{
		{Name: "forward", Hook: "forward", Policy: "accept", Rules: []nftables.Rule{
			{IIF: []string{"vlan20", "wan0"}, Verdict: "jump policy_rules", Comment: "traffic entering a policy zone"},
		}},
		pc,
	}
	return rs
}
