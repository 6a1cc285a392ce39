package diff

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Summary is the semantic difference between two compiled policies: what a
// reviewer reads before the rule-set text.
type Summary struct {
	RulesAdded   []RuleRef    `json:"rules_added"`
	RulesRemoved []RuleRef    `json:"rules_removed"`
	RulesChanged []RuleChange `json:"rules_changed"`
	Sets         []SetChange  `json:"address_sets"`
	Services     []SvcChange  `json:"services"`
	Policy       []string     `json:"policy"` // default action, logging
	Findings     FindingDelta `json:"findings"`
}

// RuleRef names a rule with what it allows.
type RuleRef struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	What   string `json:"what"` // "agents -> internet, agents.floor3 -> provider.genesys, udp 3478"
	Source string `json:"source"`
}

// RuleChange lists the fields of a rule that changed, "field: old -> new".
type RuleChange struct {
	Name    string   `json:"name"`
	Changes []string `json:"changes"`
	Source  string   `json:"source"`
}

// SetChange is an address set's change, aggregated.
type SetChange struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"` // added, removed, changed
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// SvcChange is a service set's ports, before and after.
type SvcChange struct {
	Name string `json:"name"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// Finding is a lint finding without its position, which moves with edits.
type Finding struct {
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
}

// FindingDelta lists findings that appeared and disappeared.
type FindingDelta struct {
	Appeared    []Finding `json:"appeared"`
	Disappeared []Finding `json:"disappeared"`
}

// Empty reports whether nothing changed.
func (s *Summary) Empty() bool {
	return len(s.RulesAdded)+len(s.RulesRemoved)+len(s.RulesChanged)+len(s.Sets)+len(s.Services)+
		len(s.Policy)+len(s.Findings.Appeared)+len(s.Findings.Disappeared) == 0
}

// Summarize compares two programs and their diagnostics.
func Summarize(oldP, newP *ir.Program, oldD, newD hcl.Diagnostics) *Summary {
	s := &Summary{}
	if oldP.Policy.DefaultAction != newP.Policy.DefaultAction {
		s.Policy = append(s.Policy, fmt.Sprintf("default_action: %s -> %s", oldP.Policy.DefaultAction, newP.Policy.DefaultAction))
	}
	if oldP.Policy.LogDefault != newP.Policy.LogDefault {
		s.Policy = append(s.Policy, fmt.Sprintf("log_default: %t -> %t", oldP.Policy.LogDefault, newP.Policy.LogDefault))
	}
	s.Policy = append(s.Policy, qosChanges(oldP, newP)...) // qos.go

	oldRules, newRules := map[string]*ir.Rule{}, map[string]*ir.Rule{}
	for i := range oldP.Rules {
		oldRules[oldP.Rules[i].Name] = &oldP.Rules[i]
	}
	for i := range newP.Rules {
		r := &newP.Rules[i]
		newRules[r.Name] = r
		o, ok := oldRules[r.Name]
		if !ok {
			s.RulesAdded = append(s.RulesAdded, ruleRef(newP, r))
			continue
		}
		if ch := ruleChanges(oldP, newP, o, r); len(ch) > 0 {
			s.RulesChanged = append(s.RulesChanged, RuleChange{Name: r.Name, Changes: ch, Source: r.Origin.Source.String()})
		}
	}
	for i := range oldP.Rules {
		if _, ok := newRules[oldP.Rules[i].Name]; !ok {
			s.RulesRemoved = append(s.RulesRemoved, ruleRef(oldP, &oldP.Rules[i]))
		}
	}

	for _, name := range unionNames(setNames(oldP), setNames(newP)) {
		o, n := oldP.AddressSet(name), newP.AddressSet(name)
		switch {
		case o == nil:
			s.Sets = append(s.Sets, SetChange{Name: name, Status: "added", Added: members(n.IPSet(), n.FQDNs)})
		case n == nil:
			s.Sets = append(s.Sets, SetChange{Name: name, Status: "removed", Removed: members(o.IPSet(), o.FQDNs)})
		default:
			added := difference(n.IPSet(), o.IPSet())
			removed := difference(o.IPSet(), n.IPSet())
			a := members(added, minus(n.FQDNs, o.FQDNs))
			r := members(removed, minus(o.FQDNs, n.FQDNs))
			if len(a)+len(r) > 0 {
				s.Sets = append(s.Sets, SetChange{Name: name, Status: "changed", Added: a, Removed: r})
			}
		}
	}

	for _, name := range unionNames(svcNames(oldP), svcNames(newP)) {
		o, n := svcText(oldP.Service(name)), svcText(newP.Service(name))
		if o != n {
			s.Services = append(s.Services, SvcChange{Name: name, Old: o, New: n})
		}
	}

	of, nf := findings(oldD), findings(newD)
	s.Findings.Appeared = minusFindings(nf, of)
	s.Findings.Disappeared = minusFindings(of, nf)
	return s
}

func ruleRef(p *ir.Program, r *ir.Rule) RuleRef {
	return RuleRef{Name: r.Name, Action: string(r.Action), What: ruleWhat(p, r), Source: r.Origin.Source.String()}
}

func ruleWhat(p *ir.Program, r *ir.Rule) string {
	return fmt.Sprintf("%s -> %s, %s -> %s, %s", zone(r.FromZone), zone(r.ToZone), r.Src, r.Dst, svcText(p.Service(r.Service)))
}

func zone(z string) string {
	if z == "" {
		return "any"
	}
	return z
}

func ruleChanges(op, np *ir.Program, o, n *ir.Rule) []string {
	var out []string
	field := func(name, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: %s -> %s", name, a, b))
		}
	}
	field("action", string(o.Action), string(n.Action))
	field("from zone", zone(o.FromZone), zone(n.FromZone))
	field("to zone", zone(o.ToZone), zone(n.ToZone))
	field("source set", o.Src, n.Src)
	field("destination set", o.Dst, n.Dst)
	field("service", svcText(op.Service(o.Service)), svcText(np.Service(n.Service)))
	field("log", fmt.Sprint(o.Log), fmt.Sprint(n.Log))
	field("comment", o.Comment, n.Comment)
	return out
}

func svcText(s *ir.ServiceSet) string {
	if s == nil {
		return ""
	}
	parts := make([]string, len(s.Entries))
	for i, e := range s.Entries {
		parts[i] = e.String()
	}
	return strings.Join(parts, "; ")
}

func setNames(p *ir.Program) []string {
	out := make([]string, len(p.AddressSets))
	for i := range p.AddressSets {
		out[i] = p.AddressSets[i].Name
	}
	return out
}

func svcNames(p *ir.Program) []string {
	out := make([]string, len(p.Services))
	for i := range p.Services {
		out[i] = p.Services[i].Name
	}
	return out
}

func unionNames(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string(nil), a...), b...) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func difference(a, b *netipx.IPSet) *netipx.IPSet {
	var bld netipx.IPSetBuilder
	bld.AddSet(a)
	bld.RemoveSet(b)
	s, _ := bld.IPSet()
	return s
}

// members lists a set's prefixes (aggregated, IPv4 first) and FQDNs.
func members(s *netipx.IPSet, fqdns []string) []string {
	var out []string
	var v6 []string
	for _, p := range s.Prefixes() {
		if p.Addr().Is4() {
			out = append(out, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	out = append(out, v6...)
	for _, f := range fqdns {
		out = append(out, "fqdn "+f)
	}
	return out
}

func minus(a, b []string) []string {
	have := map[string]bool{}
	for _, x := range b {
		have[x] = true
	}
	var out []string
	for _, x := range a {
		if !have[x] {
			out = append(out, x)
		}
	}
	return out
}

func findings(diags hcl.Diagnostics) []Finding {
	var out []Finding
	for _, d := range diags {
		sev := "warning"
		if d.Severity == hcl.DiagError {
			sev = "error"
		}
		out = append(out, Finding{Severity: sev, Code: string(diag.CodeOf(d)), Summary: d.Summary, Detail: d.Detail})
	}
	return out
}

// minusFindings returns findings of a not in b, counting duplicates.
func minusFindings(a, b []Finding) []Finding {
	count := map[Finding]int{}
	for _, f := range b {
		count[f]++
	}
	var out []Finding
	for _, f := range a {
		if count[f] > 0 {
			count[f]--
			continue
		}
		out = append(out, f)
	}
	return out
}
