package lower

import (
	"fmt"
	"strings"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/ir"
)

// qos selects, for each class, the allow rules of the blocks its flows name
// (a provider's or relay's own rules; an agents group's rules from or to its
// subnets), narrowed to its purposes. A rule belongs to the first class that
// selects it. Runs after the rules are ordered.
func (l *lowerer) qos() []ir.QoSClass {
	if len(l.pol.QoS) == 0 {
		return nil
	}
	owner := map[string]string{} // rule -> class
	var out []ir.QoSClass
	for _, c := range l.pol.QoS {
		ic := ir.QoSClass{Name: c.Name, DSCP: c.DSCP, Replies: c.Replies, Rules: []string{}, Description: c.Description,
			Origin: l.origin("qos", &c.Block)}
		want := map[ir.Purpose]bool{}
		for _, p := range c.Purposes {
			want[p] = true
		}
		usedPurpose := map[ir.Purpose]bool{}
		taken := map[string]bool{}
		for _, f := range c.Flows {
			selected, shared := 0, []string{}
			for i := range l.prog.Rules {
				r := &l.prog.Rules[i]
				if r.Action != ir.Allow || !l.flowSelects(f, r) {
					continue
				}
				if c.Purposes != nil && !want[r.Purpose] {
					continue
				}
				usedPurpose[r.Purpose] = true
				selected++
				if prev, ok := owner[r.Name]; ok && prev != c.Name {
					shared = append(shared, r.Name+" (class "+prev+")")
					continue
				}
				owner[r.Name] = c.Name
				taken[r.Name] = true
			}
			what := f.Kind + "." + f.Name
			if selected == 0 {
				detail := "no allow rule"
				if c.Purposes != nil {
					detail = "no allow rule with the purposes " + purposeList(c.Purposes)
				}
				l.diags = append(l.diags, diag.Warnf(diag.QoSNotAllowed, f.Range, "QoS class on traffic the policy does not allow",
					"Class %q names %s, but the policy has %s for it, so the class marks nothing there. Name a block whose flows the policy allows, or fix purposes.", c.Name, what, detail))
			}
			if len(shared) > 0 {
				l.diags = append(l.diags, diag.Warnf(diag.QoSOverlap, f.Range, "Flows already in an earlier QoS class",
					"Class %q selects %s through %s; a flow takes the first class that names it, so this class does not mark them. Narrow the purposes of one class.", c.Name, strings.Join(shared, ", "), what))
			}
		}
		for _, p := range c.Purposes {
			if !usedPurpose[p] && len(c.Flows) > 0 {
				l.diags = append(l.diags, diag.Warnf(diag.QoSNotAllowed, c.AttrRanges["purposes"], "QoS class on traffic the policy does not allow",
					"Class %q lists purpose %q, but none of its flows has an allow rule with it.", c.Name, p))
			}
		}
		for _, r := range l.prog.Rules {
			if taken[r.Name] {
				ic.Rules = append(ic.Rules, r.Name)
			}
		}
		out = append(out, ic)
	}
	return out
}

// flowSelects reports whether a class's flow reference selects rule r.
func (l *lowerer) flowSelects(f eval.Endpoint, r *ir.Rule) bool {
	switch f.Kind {
	case "agents":
		s, ok := l.agentSets[f.Name]
		return ok && (r.Src == s.Name || r.Dst == s.Name)
	default:
		return r.Origin.Kind == f.Kind && r.Origin.Name == f.Name
	}
}

func purposeList(ps []ir.Purpose) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%q", p)
	}
	return strings.Join(s, ", ")
}
