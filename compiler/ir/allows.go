package ir

import "net/netip"

// Packet is the first packet of a connection as a gateway sees it. An empty zone
// means "not known": zone conditions of rules are then not checked. DstHost, when
// set, is the name the client resolved to reach Dst; it lets FQDN members of an
// address set match.
type Packet struct {
	FromZone string
	ToZone   string
	Src      netip.Addr
	Dst      netip.Addr
	DstHost  string
	Proto    Proto
	SrcPort  uint16
	DstPort  uint16
}

// Verdict is what the policy does with a packet. Rule is the deciding rule, or nil
// when no rule matched and the policy's default action applied.
type Verdict struct {
	Action Action
	Rule   *Rule
}

// Allowed reports whether the verdict lets the connection through.
func (v Verdict) Allowed() bool { return v.Action == Allow }

// Allows evaluates the rules in order and returns the first match's action, or
// the policy default. A packet whose source and destination are of different
// address families cannot exist and matches no rule. It is the reference semantics every backend is tested
// against: a backend's re-read output must give the same verdict for every packet.
func (p *Program) Allows(pkt Packet) Verdict {
	if pkt.Src.Is4() != pkt.Dst.Is4() && pkt.DstHost == "" {
		return Verdict{Action: p.Policy.DefaultAction}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if p.Matches(r, pkt) {
			return Verdict{Action: r.Action, Rule: r}
		}
	}
	return Verdict{Action: p.Policy.DefaultAction}
}

// Matches reports whether rule r matches pkt.
func (p *Program) Matches(r *Rule, pkt Packet) bool {
	if pkt.FromZone != "" && r.FromZone != "" && r.FromZone != pkt.FromZone {
		return false
	}
	if pkt.ToZone != "" && r.ToZone != "" && r.ToZone != pkt.ToZone {
		return false
	}
	svc := p.Service(r.Service)
	if svc == nil || !svc.Matches(pkt.Proto, pkt.SrcPort, pkt.DstPort) {
		return false
	}
	src := p.AddressSet(r.Src)
	if src == nil || !src.Contains(pkt.Src) {
		return false
	}
	dst := p.AddressSet(r.Dst)
	if dst == nil {
		return false
	}
	return dst.Contains(pkt.Dst) || (pkt.DstHost != "" && dst.hasFQDN(pkt.DstHost))
}

func (s *AddressSet) hasFQDN(host string) bool {
	for _, f := range s.FQDNs {
		if f == host {
			return true
		}
	}
	return false
}

// Matches reports whether the service set matches a packet's protocol and ports.
func (s *ServiceSet) Matches(proto Proto, sport, dport uint16) bool {
	for _, e := range s.Entries {
		if e.Proto == proto && ContainsPort(e.Ports, dport) && ContainsPort(e.SrcPorts, sport) {
			return true
		}
	}
	return false
}

// ContainsPort reports whether port lies in one of the ranges; an empty list
// means any port.
func ContainsPort(ranges []PortRange, port uint16) bool {
	if len(ranges) == 0 {
		return true
	}
	for _, r := range ranges {
		if r.Contains(port) {
			return true
		}
	}
	return false
}

// ZoneOf returns the zone of the agents, provider or relay block whose
// addresses contain a, or "" when none does or blocks in different zones do.
func (p *Program) ZoneOf(a netip.Addr) string {
	zone := ""
	check := func(set, z string) bool {
		s := p.AddressSet(set)
		if s == nil || !s.Contains(a) {
			return true
		}
		if zone != "" && zone != z {
			return false
		}
		zone = z
		return true
	}
	for _, g := range p.Agents {
		if !check(g.Addresses, g.Zone) {
			return ""
		}
	}
	for _, pr := range p.Providers {
		if !check(pr.Addresses, pr.Zone) {
			return ""
		}
	}
	for _, r := range p.Relays {
		if !check(r.Addresses, r.Zone) {
			return ""
		}
	}
	return zone
}
