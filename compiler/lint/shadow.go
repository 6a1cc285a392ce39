package lint

import (
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

func hasDefault(s *ir.AddressSet) bool {
	v4, v6 := defaultRoutes(s)
	return v4 || v6
}

// shadowed reports rules that an earlier rule covers completely: everything
// they match was already decided, so they never match.
func (c *checker) shadowed() {
	for i := range c.p.Rules {
		later := &c.p.Rules[i]
		for j := 0; j < i; j++ {
			earlier := &c.p.Rules[j]
			if !c.ruleCovers(earlier, later) {
				continue
			}
			what := "is redundant: rule " + earlier.Name + " already allows everything it matches"
			if earlier.Action != later.Action {
				what = "never matches: rule " + earlier.Name + " (" + string(earlier.Action) + ") decides everything it matches first"
			}
			c.warn(diag.ShadowedRule, later.Origin.Source, "Rule "+later.Name+" is shadowed",
				"Rule %s %s (%s). Deny rules are evaluated before allow rules. Remove rule %s, or narrow rule %s.",
				later.Name, what, earlier.Origin.Source, later.Name, earlier.Name)
			break
		}
	}
}

// deniedEntry reports whether a deny rule decides everything entry e of
// allow rule r matches (deny rules are evaluated first).
func (c *checker) deniedEntry(r *ir.Rule, e ir.ServiceEntry) bool {
	for i := range c.p.Rules {
		d := &c.p.Rules[i]
		if d.Action != ir.Deny || (d.FromZone != "" && d.FromZone != r.FromZone) || (d.ToZone != "" && d.ToZone != r.ToZone) {
			continue
		}
		if !c.setCovers(d.Src, r.Src) || !c.dstCovers(d.Dst, r.Dst, r.Src) {
			continue
		}
		if c.serviceCovers(c.p.Service(d.Service), &ir.ServiceSet{Entries: []ir.ServiceEntry{e}}) {
			return true
		}
	}
	return false
}

func (c *checker) ruleCovers(a, b *ir.Rule) bool {
	if a.FromZone != "" && a.FromZone != b.FromZone {
		return false
	}
	if a.ToZone != "" && a.ToZone != b.ToZone {
		return false
	}
	if !c.serviceCovers(c.p.Service(a.Service), c.p.Service(b.Service)) {
		return false
	}
	return c.setCovers(a.Src, b.Src) && c.dstCovers(a.Dst, b.Dst, b.Src)
}

// dstCovers reports whether destination set outer covers destination set
// inner for traffic from src. Names (FQDN members) resolve to addresses of
// either family, so a set holding the whole address space of every family
// src sends from covers any name: a deny to 0.0.0.0/0 decides a STUN rule to
// stun.l.google.com for IPv4-only agents, and 0.0.0.0/0 with ::/0 for all.
func (c *checker) dstCovers(outer, inner, src string) bool {
	if c.setCovers(outer, inner) {
		return true
	}
	a, b, s := c.p.AddressSet(outer), c.p.AddressSet(inner), c.p.AddressSet(src)
	if a == nil || b == nil || s == nil || len(b.FQDNs) == 0 {
		return false
	}
	v4, v6 := defaultRoutes(a)
	if (len(s.V4) > 0 && !v4) || (len(s.V6) > 0 && !v6) {
		return false
	}
	// The names are covered; the literal members must be too.
	for _, r := range b.IPSet().Ranges() {
		if !a.IPSet().ContainsRange(r) {
			return false
		}
	}
	return true
}

// defaultRoutes reports whether a set holds 0.0.0.0/0 and ::/0.
func defaultRoutes(s *ir.AddressSet) (v4, v6 bool) {
	for _, p := range s.V4 {
		v4 = v4 || p.Bits() == 0
	}
	for _, p := range s.V6 {
		v6 = v6 || p.Bits() == 0
	}
	return v4, v6
}

func (c *checker) serviceCovers(a, b *ir.ServiceSet) bool {
	if a == nil || b == nil {
		return false
	}
	for _, eb := range b.Entries {
		ok := false
		for _, ea := range a.Entries {
			if ea.Proto == eb.Proto && rangesCover(ea.Ports, eb.Ports) && rangesCover(ea.SrcPorts, eb.SrcPorts) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// rangesCover reports whether outer covers inner; an empty list is every port.
func rangesCover(outer, inner []ir.PortRange) bool {
	if len(outer) == 0 {
		return true
	}
	if len(inner) == 0 {
		inner = []ir.PortRange{ir.AnyPort}
	}
	for _, in := range inner {
		ok := false
		for _, out := range outer {
			if out.First <= in.First && in.Last <= out.Last {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *checker) setCovers(outer, inner string) bool {
	if outer == inner {
		return true
	}
	key := [2]string{outer, inner}
	if v, ok := c.subset[key]; ok {
		return v
	}
	a, b := c.p.AddressSet(outer), c.p.AddressSet(inner)
	v := a != nil && b != nil && fqdnsCover(a.FQDNs, b.FQDNs)
	if v {
		for _, r := range b.IPSet().Ranges() {
			if !a.IPSet().ContainsRange(r) {
				v = false
				break
			}
		}
	}
	c.subset[key] = v
	return v
}

func fqdnsCover(outer, inner []string) bool {
	have := map[string]bool{}
	for _, f := range outer {
		have[f] = true
	}
	for _, f := range inner {
		if !have[f] {
			return false
		}
	}
	return true
}
