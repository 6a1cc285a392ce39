package panos

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
)

// QoS in change scripts. turnwall owns, of the box's QoS configuration:
// the QoS profile turnwall-qos (qosProfile), the QoS interface entries
// that use it, the QoS policy rules named with its rule prefix, and the
// `qos marking` of its own security rules. Nothing else is named.
//
// The QoS steps wrap the security change (changeSteps):
//
//  1. before it, the profile's classes that are new or change priority
//     (a QoS rule's class then exists before the rule uses it), and the
//     deletion of turnwall's QoS rules that go, change their match, or
//     name an object or group the security change deletes (a swap deletes
//     a changed group before its copy takes the name);
//  2. after it, the marking of the security rules that gain, change or
//     lose one (a rule rebuilt by a swap has none), the interfaces that
//     gain the profile, the QoS rules created (and moved after the one
//     before them in class order, so they stay together) or given their
//     new class, description or place;
//  3. last, the interfaces that lose the profile, then the classes no
//     longer used, or the whole profile when the new version has no qos
//     block.
//
// A DSCP change of one class is its profile class's priority (when the
// priority changes) and one `qos marking` line per security rule of the
// class.

// qosRuleArgs is a whole QoS rule after its name.
func qosRuleArgs(r qosRule) []string {
	return []string{"from", r.from, "to", r.to, "source", r.source, "destination", r.destination,
		"source-user", "any", "application", "any", "service", r.service, "action", "class", strconv.Itoa(r.class),
		"description", quote(r.description)}
}

func qosProfileClasses(q *qosPlan) map[int]string {
	out := map[int]string{}
	if q != nil {
		for _, c := range q.classes {
			out[c.number] = c.priority
		}
	}
	return out
}

func qosRulesOf(q *qosPlan) []qosRule {
	if q == nil {
		return nil
	}
	return q.rules
}

func qosInterfacesOf(q *qosPlan) []string {
	if q == nil {
		return nil
	}
	return q.interfaces
}

// withQoS adds the QoS steps to the security change main (the steps of
// changeSteps(old, new)); swapped: main rebuilds every security rule.
func withQoS(old, new *plan, main []step, swapped bool) []step {
	if old.qos == nil && new.qos == nil {
		return main
	}
	var pre, post, last []step
	rb := new.place.rulebase()
	if new.qos == nil {
		rb = old.place.rulebase()
	}
	qosPath := func(name string) []string { return []string{rb, "qos", "rules", name} }
	secPath := func(name string) []string { return []string{rb, "security", "rules", name} }
	classPath := func(n int) []string {
		return []string{"network", "qos", "profile", qosProfile, "class", "class" + strconv.Itoa(n)}
	}
	ifacePath := func(i string) []string { return []string{"network", "qos", "interface", quote(cleanText(i, 31))} }

	// 1. classes, and the QoS rules that go first.
	oldC, newC := qosProfileClasses(old.qos), qosProfileClasses(new.qos)
	if new.qos != nil {
		for _, c := range new.qos.classes {
			if oldC[c.number] != c.priority {
				pre = append(pre, step{verb: "set", path: classPath(c.number), args: []string{"priority", c.priority}})
			}
		}
	}
	deleted := map[string]bool{} // objects, groups and services main deletes
	for _, s := range main {
		if s.verb == "delete" && len(s.path) == 2 && len(s.args) == 0 {
			deleted[s.path[1]] = true
		}
	}
	newRules := map[string]qosRule{}
	for _, r := range qosRulesOf(new.qos) {
		newRules[r.name] = r
	}
	box := &ruleOrder{} // turnwall's QoS rules in the box's order
	for _, o := range qosRulesOf(old.qos) {
		r, kept := newRules[o.name]
		if !kept || r.from != o.from || r.to != o.to || r.source != o.source || r.destination != o.destination ||
			r.service != o.service || deleted[o.source] || deleted[o.destination] || deleted[o.service] {
			pre = append(pre, step{verb: "delete", path: qosPath(o.name)})
			continue
		}
		box.names = append(box.names, o.name)
	}
	oldKept := map[string]qosRule{}
	for _, o := range qosRulesOf(old.qos) {
		if contains(box.names, o.name) {
			oldKept[o.name] = o
		}
	}

	// 2. markings, interfaces, QoS rules.
	marked := map[string]string{}
	if !swapped {
		for _, r := range old.rules {
			marked[r.name] = r.dscp
		}
	}
	for _, r := range new.rules {
		if cur := marked[r.name]; cur != r.dscp {
			if r.dscp == "" {
				post = append(post, step{verb: "delete", path: append(secPath(r.name), "qos")})
			} else {
				post = append(post, step{verb: "set", path: append(secPath(r.name), "qos", "marking"), args: []string{"ip-dscp", r.dscp}})
			}
		}
	}
	oldIf := setOf(qosInterfacesOf(old.qos))
	for _, i := range qosInterfacesOf(new.qos) {
		if !oldIf[i] {
			post = append(post, step{verb: "set", path: ifacePath(i),
				args: []string{"enabled", "yes", "regular-traffic", "default-group", "qos-profile", qosProfile}})
		}
	}
	index, moveTo := box.index, box.moveTo
	rules := qosRulesOf(new.qos)
	// The kept rules that stay where they are: the longest run of them
	// in the new order that is in the box's order too; the others move.
	var keptPos []int
	var keptName []string
	for _, r := range rules {
		if _, ok := oldKept[r.name]; ok {
			keptPos = append(keptPos, index(r.name))
			keptName = append(keptName, r.name)
		}
	}
	stays := map[string]bool{}
	for _, i := range backends.LongestIncreasing(keptPos) {
		stays[keptName[i]] = true
	}
	for i, r := range rules {
		o, kept := oldKept[r.name]
		if !kept {
			post = append(post, step{verb: "set", path: qosPath(r.name), args: qosRuleArgs(r)})
			box.names = append(box.names, r.name)
			switch {
			case i > 0:
				post = append(post, step{verb: "move", path: qosPath(r.name), args: []string{"after", rules[i-1].name}})
				moveTo(r.name, index(rules[i-1].name)+1)
			case len(box.names) > 1:
				post = append(post, step{verb: "move", path: qosPath(r.name), args: []string{"before", box.names[0]}})
				moveTo(r.name, 0)
			default:
				post = append(post, step{verb: "move", path: qosPath(r.name), args: []string{"bottom"}})
			}
			continue
		}
		if r.class != o.class {
			post = append(post, step{verb: "set", path: qosPath(r.name), args: []string{"action", "class", strconv.Itoa(r.class)}})
		}
		if r.description != o.description {
			post = append(post, step{verb: "set", path: qosPath(r.name), args: []string{"description", quote(r.description)}})
		}
		switch {
		case i == 0 && !stays[r.name] && box.names[0] != r.name:
			post = append(post, step{verb: "move", path: qosPath(r.name), args: []string{"before", box.names[0]}})
			moveTo(r.name, 0)
		case i > 0 && (!stays[r.name] || index(r.name) < index(rules[i-1].name)) && index(r.name) != index(rules[i-1].name)+1:
			post = append(post, step{verb: "move", path: qosPath(r.name), args: []string{"after", rules[i-1].name}})
			moveTo(r.name, index(rules[i-1].name)+1)
		}
	}

	// 3. interfaces, classes, profile.
	newIf := setOf(qosInterfacesOf(new.qos))
	for _, i := range qosInterfacesOf(old.qos) {
		if !newIf[i] {
			last = append(last, step{verb: "delete", path: ifacePath(i)})
		}
	}
	if new.qos == nil {
		last = append(last, step{verb: "delete", path: []string{"network", "qos", "profile", qosProfile}})
	} else {
		var gone []int
		for n := range oldC {
			if _, ok := newC[n]; !ok {
				gone = append(gone, n)
			}
		}
		sort.Ints(gone)
		for _, n := range gone {
			last = append(last, step{verb: "delete", path: classPath(n)})
		}
	}
	out := append(pre, main...)
	out = append(out, post...)
	return append(out, last...)
}

// --- box model --------------------------------------------------------------

// rulebases are the device's rulebases whose rules name objects.
func (d *device) rulebases() []*rulebase {
	out := []*rulebase{&d.security, &d.decryption}
	if d.qos != nil {
		out = append(out, &d.qos.rules)
	}
	return out
}

func (d *device) qosMarking(rule string) (string, bool) {
	if d.qos == nil {
		return "", false
	}
	v, ok := d.qos.marking[rule]
	return v, ok
}

// deleteNetworkQoS implements `delete network qos profile P [class classN]`
// and `delete network qos interface I`. A profile an interface uses cannot
// be deleted; a class a QoS rule uses cannot lose its last priority.
func (p *setParser) deleteNetworkQoS() error {
	if _, err := p.keyword("qos"); err != nil {
		return err
	}
	what, err := p.keyword("profile", "interface")
	if err != nil {
		return err
	}
	q := p.dev.qosState()
	if what == "interface" {
		iface, err := p.name("interface")
		if err != nil {
			return err
		}
		if _, ok := q.interfaces[iface]; !ok {
			return fmt.Errorf("delete of QoS interface %q, which does not exist", iface)
		}
		delete(q.interfaces, iface)
		return nil
	}
	prof, err := p.name("qos profile")
	if err != nil {
		return err
	}
	cs := q.profiles[prof]
	if cs == nil {
		return fmt.Errorf("delete of QoS profile %q, which does not exist", prof)
	}
	if !p.more() {
		for _, i := range sortedKeys(q.interfaces) {
			if q.interfaces[i] == prof {
				return fmt.Errorf("QoS profile %q cannot be deleted: interface %s uses it", prof, i)
			}
		}
		delete(q.profiles, prof)
		return q.classesUsed()
	}
	n, cls, err := p.qosClass()
	if err != nil {
		return err
	}
	if _, ok := cs[n]; n < 0 || !ok {
		return fmt.Errorf("delete of QoS profile %q class %q, which does not exist", prof, cls)
	}
	delete(cs, n)
	return q.classesUsed()
}

// classesUsed refuses a configuration where a QoS rule's class has no
// priority in any profile.
func (q *rQoS) classesUsed() error {
	for _, r := range q.rules.order {
		if n, _ := strconv.Atoi(r.action); !q.hasClass(n) {
			return fmt.Errorf("QoS rule %q uses class %s, which would have no priority", r.name, r.action)
		}
	}
	return nil
}

// deleteMarking implements `delete rulebase security rules R qos`.
func (p *setParser) deleteMarking(name string) error {
	p.pos++ // qos
	if _, ok := p.dev.qosMarking(name); !ok {
		return fmt.Errorf("security rule %q has no qos marking to delete", name)
	}
	delete(p.dev.qos.marking, name)
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// qosCanonical writes the QoS part of the model's configuration, owned or
// foreign: profiles and their classes, interfaces with the profile they
// use, QoS rules in their order (turnwall's with the foreign rule they
// follow).
func (m *Model) qosCanonical(b *strings.Builder, owned bool) {
	q := m.dev.qos
	if q == nil {
		return
	}
	var profs []string
	for p := range q.profiles {
		profs = append(profs, p)
	}
	sort.Strings(profs)
	for _, p := range profs {
		if (p == qosProfile) != owned {
			continue
		}
		var ns []int
		for n := range q.profiles[p] {
			ns = append(ns, n)
		}
		sort.Ints(ns)
		fmt.Fprintf(b, "qos profile %s", p)
		for _, n := range ns {
			fmt.Fprintf(b, " class%d %s", n, q.profiles[p][n])
		}
		b.WriteString("\n")
	}
	for _, i := range sortedKeys(q.interfaces) {
		if (q.interfaces[i] == qosProfile) == owned {
			fmt.Fprintf(b, "qos interface %s profile %s\n", i, q.interfaces[i])
		}
	}
	prev := "^"
	for _, r := range q.rules.order {
		mine := m.where.owns(r.name)
		if mine == owned {
			fmt.Fprintf(b, "qos rule %s", r.name)
			if owned {
				fmt.Fprintf(b, " after %s", prev)
			}
			b.WriteString(ruleCanonical(r) + "\n")
		}
		if !mine {
			prev = r.name
		}
	}
}
