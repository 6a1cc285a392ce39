package lint

import (
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

// qos finds classes that prioritise TCP 443 by port alone: a marked rule
// whose service holds TCP 443 and whose destination is any address (or
// wider than /8, /16 for IPv6). TCP 443 is every agent's browsing too; the
// guide's fix is to prioritise it only towards the provider's or relay's
// addresses.
func (c *checker) qos() {
	for ci := range c.p.QoS {
		cl := &c.p.QoS[ci]
		for _, r := range c.p.QoSRules(cl) {
			svc := c.p.Service(r.Service)
			if svc == nil || !svc.Matches(ir.TCP, 1024, 443) && !matchesAnySrc(svc, 443) {
				continue
			}
			dst := c.p.AddressSet(r.Dst)
			if dst == nil || !wideSet(dst) {
				continue
			}
			c.warn(diag.QoSTCP443ByPort, cl.Origin.At("flows"), "QoS class prioritises TCP 443 to any destination",
				"Class %q marks rule %s: TCP 443 to %s, which is every agent's web browsing too. Prioritise TCP 443 only towards the provider's or relay's addresses (name provider.NAME or relay.NAME in flows), not by port alone.",
				cl.Name, r.Name, r.Dst)
		}
	}
}

func matchesAnySrc(svc *ir.ServiceSet, port uint16) bool {
	for _, e := range svc.Entries {
		if e.Proto == ir.TCP && ir.ContainsPort(e.Ports, port) {
			return true
		}
	}
	return false
}

// wideSet reports whether a set holds a prefix wider than /8 (IPv4) or /16
// (IPv6): "any destination" for practical purposes.
func wideSet(s *ir.AddressSet) bool {
	for _, p := range s.V4 {
		if p.Bits() < 8 {
			return true
		}
	}
	for _, p := range s.V6 {
		if p.Bits() < 16 {
			return true
		}
	}
	return false
}
