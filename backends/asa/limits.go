package asa

// Limits: the ASA expands every ACE that names object groups into one
// element per combination of service entry, source member and destination
// member, and those expanded elements are what a platform's memory holds
// (show access-list ACL prints "elements"). Cisco's guides document the
// expansion and the system-wide rule limit (for example the Catalyst 6500
// Firewall Services Module guide, "Maximum Number of ACEs": 80K rules in
// single mode, "If you use object groups in ACEs, ... the number of expanded
// ACEs is the same as without object groups, and expanded ACEs count towards
// the system limit"), but no per-model table for the ASA 5500-X or Firepower
// appliances was found, so the limit is a parameter: the figure from the
// model's data sheet or from show access-list on the box. The ASA has no
// external address feed: a large provider stays a group (turnwall never
// splits a set), and "object-group-search access-control" (ASA 8.3 and later)
// keeps groups unexpanded where memory is short.

import (
	"fmt"
	"strconv"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// paramModel names a model for its limits. No per-model table with a Cisco
// source was found (see above), so every model name is refused with the way
// to give the limit instead; the parameter exists so that a device block
// naming a model fails clearly rather than passing unchecked.
var paramModel = backends.Param{
	Name: "model",
	Help: "ASA model for its limits: turnwall has no sourced per-model table for the ASA yet, so any value is refused; give max-elements",
}

var paramMaxElements = backends.Param{
	Name: "max-elements",
	Help: "largest number of expanded ACL elements (service entries x sources x destinations per ACE) " +
		"one zone's entries may add; from the model's data sheet or show access-list; empty: no check",
}

// elements is what one rule's ACE expands to on the ASA.
func elements(p *ir.Program, r *ir.Rule) int {
	members := func(name string) int {
		s := p.AddressSet(name)
		if s == nil {
			return 0
		}
		return len(s.V4) + len(s.V6) + 2*len(s.FQDNs) // an FQDN is a v4 and a v6 object
	}
	svc := 0
	if s := p.Service(r.Service); s != nil {
		for _, e := range s.Entries {
			svc += len(portArgs("source", e.SrcPorts)) * len(portArgs("destination", e.Ports))
		}
	}
	return svc * members(r.Src) * members(r.Dst)
}

// checkLimits returns a constraint for each zone whose entries expand to more
// than max-elements, at the rule that crosses the limit.
func checkLimits(p *ir.Program, opts backends.Options) []backends.Constraint {
	if m := opts.Get(paramModel); m != "" {
		return []backends.Constraint{{At: p.Policy.Source, Summary: "unknown ASA model",
			Detail: fmt.Sprintf("model %s: turnwall has no per-model limit table for the ASA with a Cisco source; "+
				"give the model's limit as max-elements=N (expanded ACL elements, from its data sheet or show access-list) instead.", quote(m))}}
	}
	v := opts.Get(paramMaxElements)
	if v == "" {
		return nil
	}
	max, err := strconv.Atoi(v)
	if err != nil || max < 1 {
		return []backends.Constraint{{At: p.Policy.Source, Summary: "max-elements parameter",
			Detail: fmt.Sprintf("max-elements %q: give a positive number of ACL elements.", v)}}
	}
	var out []backends.Constraint
	for _, z := range p.Zones {
		total, reported := 0, false
		for i := range p.Rules {
			r := &p.Rules[i]
			if r.FromZone != "" && r.FromZone != z.Name {
				continue
			}
			if sets, err := p.RuleSets(r); err != nil || !sets.CanMatch() {
				continue
			}
			n := elements(p, r)
			total += n
			if total > max && !reported {
				reported = true
				out = append(out, backends.Constraint{At: r.Origin.Source, Summary: "ACL elements above the model's limit",
					Detail: fmt.Sprintf("Zone %q: with rule %q (%d elements) turnwall's entries expand to %d ACL elements, above max-elements %d. "+
						"Enable object-group-search access-control on the ASA, narrow the rule's sets, or raise max-elements if the model holds more.",
						z.Name, r.Name, n, total, max)})
			}
		}
	}
	return out
}
