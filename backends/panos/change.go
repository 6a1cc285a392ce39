package panos

import (
	"fmt"
	"slices"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

var _ backends.Changer = Backend{}

// Change implements backends.Changer: the configure-mode commands that take
// a firewall holding old's part (nil: none) to holding new's part (nil:
// none), touching only names that carry turnwall's prefixes. The script is
// panos-change.set; with Format xml it is panos-change.xml, the same steps
// as XML API requests (see renderChangeXML).
func (Backend) Change(old, new *ir.Program, opts backends.Options) ([]backends.File, error) {
	format := opts.Format
	if format == "" {
		format = FormatSet
	}
	if format != FormatSet && format != FormatXML {
		return nil, fmt.Errorf("panos target has no format %q (set, xml)", opts.Format)
	}
	where, err := parsePlace(opts)
	if err != nil {
		return nil, err
	}
	if where.rulePrefix == "" || where.objectPrefix == "" {
		return nil, fmt.Errorf("a change script needs turnwall's ownership marks: set --param panos.rule-prefix and panos.object-prefix to non-empty prefixes (default tw-)")
	}
	plans := [2]*plan{}
	for i, p := range []*ir.Program{old, new} {
		if p == nil {
			plans[i] = &plan{vsys: where.vsys, place: where}
			continue
		}
		if err := backends.FirstConstraint(Backend{}.Check(p, opts)); err != nil {
			return nil, err
		}
		if plans[i], err = buildPlan(p, where); err != nil {
			return nil, err
		}
	}
	steps, swapped := securitySteps(plans[0], plans[1])
	steps = withQoS(plans[0], plans[1], steps, swapped)
	if format == FormatXML {
		if where.deviceGroup != "" {
			return nil, fmt.Errorf("--param panos.device-group=%q: the xml change form is written for a firewall's vsys; use the set form for a Panorama device group", where.deviceGroup)
		}
		data, err := renderChangeXML(steps, where)
		if err != nil {
			return nil, err
		}
		return append([]backends.File{{Name: "panos-change.xml", Data: data}}, feedFiles(plans[1])...), nil
	}
	data, err := renderSteps(steps, where)
	if err != nil {
		return nil, err
	}
	return append([]backends.File{{Name: "panos-change.set", Data: data}}, feedFiles(plans[1])...), nil
}

// step is one configure-mode command in structured form, rendered as a set
// line or an XML API request.
type step struct {
	verb string   // set, delete, move
	path []string // after the scope: "address", NAME, ... (the object or rule)
	args []string // the rest of the line, already rendered ("ip-netmask", "10.0.0.0/8")
}

// renderSet writes the first install of a plan (old nil) or the change from
// old: configure-mode commands, one per line, to be pasted (or loaded) into
// a candidate configuration and reviewed with `show config diff` before
// `commit`. Every name is a single token of [A-Za-z0-9._-] and every
// description a double-quoted string with no quote, backslash or control
// character, so no policy text can end a command early or start another.
//
// Syntax: `set address N ip-netmask P|fqdn F`, `set address-group N static
// [ ... ]`, `set service N protocol tcp|udp port P source-port S`,
// `set service-group N members [ ... ]`, `set rulebase security rules N from
// Z to Z source A destination A source-user any application any service S
// action A`, `move rulebase security rules N top|bottom|before R|after R`
// and `delete` of the same paths, down to one list member (PAN-OS CLI, as in
// ../shared/reference/vendors.md). `set` of a list adds members to it (a
// merge), so a member is removed only by its own `delete`. A vsys other
// than vsys1 is addressed as `set vsys NAME ...`, a Panorama device group as
// `set device-group NAME ...` with the rules in its pre-rulebase.
func renderSet(old, new *plan) ([]byte, error) {
	if old == nil {
		old = &plan{vsys: new.vsys, place: new.place}
	}
	return renderSteps(changeSteps(old, new), new.place)
}

func renderSteps(steps []step, where place) ([]byte, error) {
	scope := where.scope()
	// stepScope is the scope a step is written in: the device's own
	// (network qos) is outside every vsys.
	stepScope := func(s step) string {
		if s.path[0] == "network" {
			return ""
		}
		return scope
	}
	n := 0
	for _, s := range steps {
		n += len(s.verb) + 2 + len(stepScope(s))
		for _, f := range s.path {
			n += len(f) + 1
		}
		for _, f := range s.args {
			n += len(f) + 1
		}
	}
	buf := make([]byte, 0, n)
	for _, s := range steps {
		buf = append(append(append(buf, s.verb...), ' '), stepScope(s)...)
		sep := false
		for _, list := range [2][]string{s.path, s.args} {
			for _, f := range list {
				if sep {
					buf = append(buf, ' ')
				}
				buf = append(buf, f...)
				sep = true
			}
		}
		buf = append(buf, '\n')
	}
	return buf, nil
}

// changeSteps orders the commands so that no flow both versions decide alike
// is decided otherwise at any step:
//
//  1. new address objects and services, and changed service ports;
//  2. group members added (new groups whole), groups in the order of the
//     first rule that uses them;
//  3. rules top to bottom in the new order: a new rule is created and moved
//     into place at once; a changed rule gets its new values (list fields
//     take the new member beside the old one, so it matches what either
//     version matches); rules out of order are moved;
//  4. rules bottom to top in the old order: removed rules deleted, the old
//     members of changed list fields deleted;
//  5. group members removed, then removed groups, services and objects,
//     when nothing refers to them any more.
func changeSteps(old, new *plan) []step {
	steps, _ := securitySteps(old, new)
	return steps
}

// securitySteps is changeSteps, and whether it builds the new rules beside
// the old ones (swapSteps).
func securitySteps(old, new *plan) ([]step, bool) {
	steps := inPlaceSteps(old, new)
	if len(old.rules) > 0 && len(new.rules) > 0 && !inPlaceSafe(old, new) && decisive(steps, old) > 1 {
		return swapSteps(old, new), true
	}
	return steps, false
}

// decisive counts the steps that can change how a packet is decided: not
// the creation of an object or service nothing refers to yet, the deletion
// of one nothing refers to any more, the decryption rule, or a rule's
// description or logging. A change of one decisive step is atomic, safe
// whatever it touches (a range added to or removed from one group).
func decisive(steps []step, old *plan) int {
	oldSvc := map[string]bool{}
	for _, s := range old.services {
		oldSvc[s.name] = true
	}
	n := 0
	for _, s := range steps {
		switch {
		case s.path[0] == "address", s.path[0] == "external-list":
		case s.path[0] == "service" && s.verb == "delete" && len(s.path) == 2:
		case s.path[0] == "service" && s.verb == "set" && !oldSvc[s.path[1]]:
		case len(s.path) > 1 && s.path[1] == "decryption":
		case len(s.path) > 1 && s.path[1] == "security" && s.verb == "set" && len(s.args) > 0 && (s.args[0] == "description" || s.args[0] == "log-end"):
		default:
			n++
		}
	}
	return n
}

// inPlaceSteps changes objects, groups and rules where they are. With
// inPlaceSafe (or with no rules on one side) no packet both versions decide
// alike is decided otherwise at any step: every rule whose match changes
// grows to the union of its old and new match first (objects, groups and
// rules top to bottom), then shrinks to the new (rules bottom to top,
// groups), and all such rules share one action.
func inPlaceSteps(old, new *plan) []step {
	var out []step
	where := new.place
	rb := where.rulebase()
	add := func(verb string, path []string, args ...string) {
		out = append(out, step{verb: verb, path: path, args: args})
	}

	// 1. objects and services.
	out = make([]step, 0, len(new.addresses)+len(new.services)+len(new.groups)+len(new.svcGroups)+2*len(new.rules)+8)
	oldAddr := make(map[string]address, len(old.addresses))
	for _, a := range old.addresses {
		oldAddr[a.name] = a
	}
	for _, a := range new.addresses {
		if o, ok := oldAddr[a.name]; !ok || o != a {
			add("set", []string{"address", a.name}, a.kind, a.value)
		}
	}
	oldSvc := map[string]service{}
	for _, s := range old.services {
		oldSvc[s.name] = s
	}
	setService := func(s service) {
		o, ok := oldSvc[s.name]
		args := []string{"protocol", s.proto, "port", s.port}
		if s.sourcePort != "" {
			args = append(args, "source-port", s.sourcePort)
		}
		add("set", []string{"service", s.name}, args...)
		if ok && o.sourcePort != "" && s.sourcePort == "" {
			add("delete", []string{"service", s.name, "protocol", s.proto, "source-port"})
		}
	}
	var narrowed []service
	for _, s := range new.services {
		o, ok := oldSvc[s.name]
		switch {
		case ok && o == s:
		case ok && serviceWithin(s, o):
			narrowed = append(narrowed, s) // set when it shrinks, below
		default:
			setService(s)
		}
	}

	feedSteps(old, new, add)

	// 2. groups grow.
	groupOrder := func(pl *plan, groups []memberList, fields func(r securityRule) []string) []memberList {
		rank := map[string]int{}
		for i, r := range pl.rules {
			for _, f := range fields(r) {
				if _, ok := rank[f]; !ok {
					rank[f] = i
				}
			}
		}
		out := append([]memberList(nil), groups...)
		stableSort(out, func(a, b memberList) bool { return rankOf(rank, a.name) < rankOf(rank, b.name) })
		return out
	}
	addrFields := func(r securityRule) []string { return []string{r.source, r.destination} }
	svcFields := func(r securityRule) []string { return []string{r.service} }
	grow := func(kind, listKey string, oldGs, newGs []memberList) {
		olds := map[string][]string{}
		for _, g := range oldGs {
			olds[g.name] = g.members
		}
		for _, g := range newGs {
			o, ok := olds[g.name]
			added := g.members // a new group: all of them
			if ok {
				in := setOf(o)
				added = nil
				for _, m := range g.members {
					if !in[m] {
						added = append(added, m)
					}
				}
			}
			if len(added) > 0 {
				add("set", []string{kind, g.name}, listKey, list(added, true))
			}
		}
	}
	grow("address-group", "static", old.groups, groupOrder(new, new.groups, addrFields))
	grow("service-group", "members", old.svcGroups, groupOrder(new, new.svcGroups, svcFields))

	// 3. rules top to bottom.
	oldRules := map[string]securityRule{}
	box := &ruleOrder{} // turnwall's rules in the box's order, as the script leaves them
	for _, r := range old.rules {
		oldRules[r.name] = r
		box.names = append(box.names, r.name)
	}
	index, moveTo := box.index, box.moveTo
	rulePath := func(name string) []string { return []string{rb, "security", "rules", name} }
	for i, r := range new.rules {
		o, existed := oldRules[r.name]
		if !existed {
			add("set", rulePath(r.name), ruleArgs(r)...)
			box.names = append(box.names, r.name)
			switch {
			case i > 0:
				add("move", rulePath(r.name), "after", new.rules[i-1].name)
				moveTo(r.name, index(new.rules[i-1].name)+1)
			case len(box.names) > 1:
				add("move", rulePath(r.name), "before", box.names[0])
				moveTo(r.name, 0)
			case where.where == "before" || where.where == "after":
				add("move", rulePath(r.name), where.where, where.ref)
			default:
				add("move", rulePath(r.name), where.where)
			}
			continue
		}
		for _, f := range listFields(r, o) {
			if f.new != f.old {
				add("set", rulePath(r.name), f.key, f.new)
			}
		}
		if r.action != o.action {
			add("set", rulePath(r.name), "action", r.action)
		}
		if r.logEnd != o.logEnd {
			add("set", rulePath(r.name), "log-end", yesNo(r.logEnd))
		}
		if r.description != o.description {
			add("set", rulePath(r.name), "description", quote(r.description))
		}
		if i > 0 && index(r.name) < index(new.rules[i-1].name) {
			add("move", rulePath(r.name), "after", new.rules[i-1].name)
			moveTo(r.name, index(new.rules[i-1].name)+1)
		}
	}
	decPath := func(name string) []string { return []string{rb, "decryption", "rules", name} }
	if d := new.decrypt; d != nil {
		if o := old.decrypt; o == nil || o.name != d.name {
			add("set", decPath(d.name), "from", "any", "to", "any", "source", "any", "destination", list(d.destinations, false),
				"service", "any", "category", "any", "action", "no-decrypt", "type", "ssl-forward-proxy", "description", quote(d.description))
			// Decryption rule: from/to/source/destination/service/category,
			// action no-decrypt, type ssl-forward-proxy (pan-os-codegen
			// specs/policies/decryption-policy.yaml), moved above every
			// other decryption rule.
			add("move", decPath(d.name), "top")
		} else {
			var added []string
			for _, m := range d.destinations {
				if !contains(o.destinations, m) {
					added = append(added, m)
				}
			}
			if len(added) > 0 {
				add("set", decPath(d.name), "destination", list(added, true))
			}
			if d.description != o.description {
				add("set", decPath(d.name), "description", quote(d.description))
			}
		}
	}

	// 4. rules bottom to top.
	newRules := map[string]securityRule{}
	for _, r := range new.rules {
		newRules[r.name] = r
	}
	if o := old.decrypt; o != nil {
		if d := new.decrypt; d == nil || d.name != o.name {
			add("delete", decPath(o.name))
		} else {
			for _, m := range o.destinations {
				if !contains(d.destinations, m) {
					add("delete", decPath(o.name), "destination", m)
				}
			}
		}
	}
	for i := len(old.rules) - 1; i >= 0; i-- {
		o := old.rules[i]
		r, kept := newRules[o.name]
		if !kept {
			add("delete", rulePath(o.name))
			continue
		}
		for _, f := range listFields(r, o) {
			if f.new != f.old {
				add("delete", rulePath(o.name), f.key, f.old)
			}
		}
	}

	// 5. groups shrink, then what nothing refers to goes.
	shrink := func(kind, listKey string, oldGs, newGs []memberList) {
		news := map[string][]string{}
		for _, g := range newGs {
			news[g.name] = g.members
		}
		for i := len(oldGs) - 1; i >= 0; i-- {
			g := oldGs[i]
			n, ok := news[g.name]
			if !ok {
				continue
			}
			in := setOf(n)
			for _, m := range g.members {
				if !in[m] {
					add("delete", []string{kind, g.name, listKey, m})
				}
			}
		}
		for _, g := range oldGs {
			if _, ok := news[g.name]; !ok {
				add("delete", []string{kind, g.name})
			}
		}
	}
	for _, s := range narrowed {
		setService(s)
	}
	shrink("address-group", "static", groupOrder(old, old.groups, addrFields), new.groups)
	shrink("service-group", "members", groupOrder(old, old.svcGroups, svcFields), new.svcGroups)
	for _, name := range gone(old.services, new.services, func(s service) string { return s.name }) {
		add("delete", []string{"service", name})
	}
	for _, name := range gone(old.addresses, new.addresses, func(a address) string { return a.name }) {
		add("delete", []string{"address", name})
	}
	feedDeletes(old, new, add)
	return out
}

// feedSteps creates or updates the External Dynamic Lists of new.
func feedSteps(old, new *plan, add func(verb string, path []string, args ...string)) {
	olds := map[string]feed{}
	for _, f := range old.feeds {
		olds[f.name] = f
	}
	for _, f := range new.feeds {
		if o, ok := olds[f.name]; !ok || o.url != f.url || o.refresh != f.refresh {
			add("set", []string{"external-list", f.name}, feedArgs(f)...)
		}
	}
}

// feedDeletes deletes the External Dynamic Lists new no longer has.
func feedDeletes(old, new *plan, add func(verb string, path []string, args ...string)) {
	for _, name := range gone(old.feeds, new.feeds, func(f feed) string { return f.name }) {
		add("delete", []string{"external-list", name})
	}
}

// ruleArgs is a whole security rule after its name.
func ruleArgs(r securityRule) []string {
	return []string{"from", r.from, "to", r.to, "source", r.source, "destination", r.destination,
		"source-user", "any", "application", "any", "service", r.service, "action", r.action,
		"log-end", yesNo(r.logEnd), "rule-type", "universal", "description", quote(r.description)}
}

type fieldChange struct{ key, new, old string }

// listFields pairs a rule's one-member list fields in two versions.
func listFields(r, o securityRule) []fieldChange {
	return []fieldChange{
		{"from", r.from, o.from}, {"to", r.to, o.to}, {"source", r.source, o.source},
		{"destination", r.destination, o.destination}, {"service", r.service, o.service},
	}
}

func rankOf(rank map[string]int, name string) int {
	if r, ok := rank[name]; ok {
		return r
	}
	return 1 << 30
}

// stableSort is an insertion sort (stable, and the lists are short).
func stableSort(s []memberList, less func(a, b memberList) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// setOf indexes a list, so that big groups are compared in linear time.
func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, x := range list {
		m[x] = true
	}
	return m
}

// ruleOrder is turnwall's rules (or QoS rules) in the box's order, as a
// change script leaves them step by step.
type ruleOrder struct{ names []string }

// index is name's position, or -1.
func (o *ruleOrder) index(name string) int { return slices.Index(o.names, name) }

// moveTo moves name to position at (counted before the move), as `move`
// does on the box.
func (o *ruleOrder) moveTo(name string, at int) {
	i := o.index(name)
	o.names = append(o.names[:i:i], o.names[i+1:]...)
	if at > i {
		at--
	}
	o.names = slices.Insert(o.names, at, name)
}

// gone is the names of old's items that new has not, in old's order.
func gone[T any](old, new []T, name func(T) string) []string {
	if len(old) == 0 {
		return nil
	}
	kept := make(map[string]bool, len(new))
	for _, x := range new {
		kept[name(x)] = true
	}
	var out []string
	for _, x := range old {
		if !kept[name(x)] {
			out = append(out, name(x))
		}
	}
	return out
}
