package lint

import (
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

func hasDefault(s *ir.AddressSet) bool {
	for _, p := range s.V4 {
		if p.Bits() == 0 {
			return true
		}
	}
	for _, p := range s.V6 {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
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
		if !c.setCovers(d.Src, r.Src) || !c.setCovers(d.Dst, r.Dst) {
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
	return c.setCovers(a.Src, b.Src) && c.setCovers(a.Dst, b.Dst)
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
