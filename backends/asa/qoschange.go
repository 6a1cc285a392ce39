package asa

import (
	"fmt"
	"sort"
	"strings"
)

// QoS in change scripts. turnwall owns, of the box's Modular Policy
// Framework: its class ACLs, class-maps and policy-maps (named with its
// prefix: PREFIXqos-CLASS-ZONE, PREFIXqospm-ZONE, stable across versions),
// the service-policy lines binding its policy-maps and the priority-queue
// of those interfaces; reversed service groups (PREFIXsvcrev-...) are
// groups like the others. The QoS commands run after the group members
// changed (steps 3 and 4), before the old ACL entries and the unused groups
// go (steps 5 and 6):
//
//  1. class ACL entries: moved entries out first (the ASA refuses a
//     duplicate), new ones in at their line, old ones out bottom-up (an ACL
//     a class-map matches never empties); a new ACL is written whole;
//  2. new class-maps;
//  3. policy-maps: a new one whole; in one that stays, the ASA appends a
//     class at the end and cannot insert one, so the classes that keep
//     their place are the longest head of the new order found in the old
//     one, the others are removed (`no class`) and appended in order: a
//     class order change is the policy-map edited in place, which an
//     interface's one service-policy keeps using throughout;
//  4. bindings: `no service-policy` (and `no priority-queue`) where the
//     interface loses turnwall's policy-map or gets another one, then
//     `priority-queue` and `service-policy` where it gains one;
//  5. policy-maps, class-maps and class ACLs that go (`clear configure
//     access-list` of turnwall's own class ACL).
//
// The ASA sets no DSCP: a class's DSCP is only in its ACL's remark, so a
// DSCP change is that remark replaced (two lines per zone of the class).

// qosState is the qos block's part of the box for one program.
type qosState struct {
	acls      map[string][]string // class ACL -> entries ("remark ...", "extended ...")
	aclOrder  []string
	classMaps map[string]string // class-map -> the ACL it matches
	cmOrder   []string
	policies  map[string][]string // policy-map -> its class-maps in order (each with priority)
	pmOrder   []string
	bindings  map[string]string // interface -> policy-map
	ifOrder   []string
}

// qosDesired is turnwall's QoS part for the emitter's plan; nil without a
// qos block.
func qosDesired(e *emitter) *qosState {
	if e.qos == nil || len(e.qos.zones) == 0 {
		return nil
	}
	q := &qosState{acls: map[string][]string{}, classMaps: map[string]string{},
		policies: map[string][]string{}, bindings: map[string]string{}}
	for _, z := range e.qos.zones {
		var cms []string
		for _, c := range z.classes {
			if _, ok := q.acls[c.acl]; !ok {
				q.acls[c.acl] = c.items
				q.aclOrder = append(q.aclOrder, c.acl)
			}
			if _, ok := q.classMaps[c.classMap]; !ok {
				q.classMaps[c.classMap] = c.acl
				q.cmOrder = append(q.cmOrder, c.classMap)
			}
			cms = append(cms, c.classMap)
		}
		q.policies[z.policy] = cms
		q.pmOrder = append(q.pmOrder, z.policy)
		for _, i := range z.zone.Interfaces {
			q.bindings[i] = z.policy
			q.ifOrder = append(q.ifOrder, i)
		}
	}
	return q
}

func emptyQoS() *qosState {
	return &qosState{acls: map[string][]string{}, classMaps: map[string]string{},
		policies: map[string][]string{}, bindings: map[string]string{}}
}

// qosCommands writes the QoS part of a change (see above).
func qosCommands(s *scriptBuf, so, sn *qosState) {
	if so == nil && sn == nil {
		return
	}
	if so == nil {
		so = emptyQoS()
	}
	if sn == nil {
		sn = emptyQoS()
	}
	// 1. class ACL entries.
	for _, a := range sn.aclOrder {
		old, existed := so.acls[a]
		if !existed {
			for _, it := range sn.acls[a] {
				s.top("access-list " + a + " " + it)
			}
			continue
		}
		ms := merge(old, sn.acls[a])
		for _, it := range ms {
			if it.kind != 'i' {
				continue
			}
			for _, d := range ms {
				if d.kind == 'd' && d.present && d.text == it.text {
					s.top("no access-list " + a + " " + d.text)
					d.present = false
				}
			}
		}
		for k, it := range ms {
			if it.kind != 'i' {
				continue
			}
			at := 1
			for _, x := range ms[:k] {
				if x.present {
					at++
				}
			}
			s.top(fmt.Sprintf("access-list %s line %d %s", a, at, it.text))
			it.present = true
		}
		for k := len(ms) - 1; k >= 0; k-- {
			if it := ms[k]; it.kind == 'd' && it.present {
				s.top("no access-list " + a + " " + it.text)
				it.present = false
			}
		}
	}
	// 2. class-maps.
	for _, cm := range sn.cmOrder {
		if so.classMaps[cm] != sn.classMaps[cm] {
			s.sub("class-map "+cm, "match access-list "+sn.classMaps[cm])
		}
	}
	// 3. policy-maps.
	for _, pm := range sn.pmOrder {
		news := sn.policies[pm]
		olds, existed := so.policies[pm]
		k := 0
		if existed {
			for _, c := range olds {
				if k < len(news) && news[k] == c {
					k++
				}
			}
			keep := map[string]bool{}
			for _, c := range news[:k] {
				keep[c] = true
			}
			for _, c := range olds {
				if !keep[c] {
					s.sub("policy-map "+pm, "no class "+c)
				}
			}
		}
		for _, c := range news[k:] {
			s.sub("policy-map "+pm, "class "+c)
			s.sub("policy-map "+pm, " priority")
		}
	}
	// 4. bindings.
	queued := map[string]bool{}
	for _, i := range so.ifOrder {
		queued[i] = true
		if pm := so.bindings[i]; sn.bindings[i] != pm {
			s.top("no service-policy " + pm + " interface " + i)
			if _, keeps := sn.bindings[i]; !keeps {
				s.top("no priority-queue " + i)
				queued[i] = false
			}
		}
	}
	for _, i := range sn.ifOrder {
		if pm := sn.bindings[i]; so.bindings[i] != pm {
			if !queued[i] {
				s.top("priority-queue " + i)
			}
			s.top("service-policy " + pm + " interface " + i)
		}
	}
	// 5. what goes.
	for _, pm := range so.pmOrder {
		if _, ok := sn.policies[pm]; !ok {
			s.top("no policy-map " + pm)
		}
	}
	for _, cm := range so.cmOrder {
		if _, ok := sn.classMaps[cm]; !ok {
			s.top("no class-map " + cm)
		}
	}
	for _, a := range so.aclOrder {
		if _, ok := sn.acls[a]; !ok {
			s.top("clear configure access-list " + a)
		}
	}
}

// --- box model --------------------------------------------------------------

// modelQoS is the Modular Policy Framework part of the model.
type modelQoS struct {
	classMaps map[string]string // class-map -> its match ("access-list ACL", "default-inspection-traffic")
	policies  map[string][]*modelClass
	queues    map[string]bool   // lower-cased nameif with a priority-queue
	services  map[string]string // lower-cased nameif (or "global") -> policy-map
	curClass  *modelClass
}

type modelClass struct {
	classMap string
	lines    []string // "priority", "inspect dns", ...
}

func (m *Model) qosState() *modelQoS {
	if m.qos == nil {
		m.qos = &modelQoS{classMaps: map[string]string{}, policies: map[string][]*modelClass{},
			queues: map[string]bool{}, services: map[string]string{}}
	}
	return m.qos
}

func (c *modelClass) priority() bool {
	for _, l := range c.lines {
		if l == "priority" {
			return true
		}
	}
	return false
}

// qosTop runs a top-level MPF command; ok false: not one.
func (m *Model) qosTop(f []string) (bool, error) {
	q := m.qosState()
	no := f[0] == "no"
	g := f
	if no {
		g = f[1:]
	}
	switch {
	case len(g) == 2 && g[0] == "class-map":
		if err := checkObjectName(g[1]); err != nil {
			return true, err
		}
		if !no {
			if _, ok := q.classMaps[g[1]]; !ok {
				q.classMaps[g[1]] = ""
			}
			m.mode, m.modeOf = "class-map", g[1]
			return true, nil
		}
		if _, ok := q.classMaps[g[1]]; !ok {
			return true, fmt.Errorf("class-map %s does not exist", g[1])
		}
		for _, pm := range sortedKeys(q.policies) {
			for _, c := range q.policies[pm] {
				if c.classMap == g[1] {
					return true, fmt.Errorf("class-map %s is in use by policy-map %s", g[1], pm)
				}
			}
		}
		delete(q.classMaps, g[1])
		return true, nil
	case len(g) == 2 && g[0] == "policy-map":
		if err := checkObjectName(g[1]); err != nil {
			return true, err
		}
		if !no {
			if _, ok := q.policies[g[1]]; !ok {
				q.policies[g[1]] = nil
			}
			m.mode, m.modeOf, q.curClass = "policy-map", g[1], nil
			return true, nil
		}
		if _, ok := q.policies[g[1]]; !ok {
			return true, fmt.Errorf("policy-map %s does not exist", g[1])
		}
		for _, i := range sortedKeys(q.services) {
			if q.services[i] == g[1] {
				return true, fmt.Errorf("policy-map %s is in use by the service-policy of %s", g[1], i)
			}
		}
		delete(q.policies, g[1])
		return true, nil
	case len(g) == 2 && g[0] == "priority-queue":
		if !nameifRE.MatchString(g[1]) {
			return true, fmt.Errorf("%q is not an interface name", g[1])
		}
		i := strings.ToLower(g[1])
		if !no {
			q.queues[i] = true
			return true, nil
		}
		if !q.queues[i] {
			return true, fmt.Errorf("interface %s has no priority-queue", g[1])
		}
		if pm, ok := q.services[i]; ok && q.hasPriority(pm) {
			return true, fmt.Errorf("the service-policy %s of %s uses priority", pm, g[1])
		}
		delete(q.queues, i)
		return true, nil
	case (len(g) == 4 && g[0] == "service-policy" && g[2] == "interface" && nameifRE.MatchString(g[3])) ||
		(len(g) == 3 && g[0] == "service-policy" && g[2] == "global"):
		key := "global"
		if len(g) == 4 {
			key = strings.ToLower(g[3])
		}
		if _, ok := q.policies[g[1]]; !ok {
			return true, fmt.Errorf("policy-map %s does not exist", g[1])
		}
		if no {
			if q.services[key] != g[1] {
				return true, fmt.Errorf("service-policy %s is not on %s", g[1], key)
			}
			delete(q.services, key)
			return true, nil
		}
		if cur, ok := q.services[key]; ok && cur != g[1] {
			return true, fmt.Errorf("%s already has service-policy %s (one per interface)", key, cur)
		}
		if key != "global" && q.hasPriority(g[1]) && !q.queues[key] {
			return true, fmt.Errorf("policy-map %s uses priority, but %s has no priority-queue", g[1], key)
		}
		q.services[key] = g[1]
		return true, nil
	case !no && len(f) == 4 && f[0] == "clear" && f[1] == "configure" && f[2] == "access-list":
		if _, ok := m.acls[f[3]]; !ok {
			return true, fmt.Errorf("ACL %s does not exist", f[3])
		}
		if by := m.aclUser(f[3]); by != "" {
			return true, fmt.Errorf("ACL %s is in use by %s", f[3], by)
		}
		delete(m.acls, f[3])
		return true, nil
	}
	return false, nil
}

func (q *modelQoS) hasPriority(pm string) bool {
	for _, c := range q.policies[pm] {
		if c.priority() {
			return true
		}
	}
	return false
}

// aclUser names what uses an ACL: a class-map matching it, an access-group.
func (m *Model) aclUser(acl string) string {
	if m.qos != nil {
		for _, cm := range sortedKeys(m.qos.classMaps) {
			if m.qos.classMaps[cm] == "access-list "+acl {
				return "class-map " + cm
			}
		}
	}
	for _, i := range sortedKeys(m.binding) {
		if m.binding[i] == acl {
			return "access-group of " + i
		}
	}
	return ""
}

// qosSub runs a line of an open class-map or policy-map.
func (m *Model) qosSub(f []string) error {
	q := m.qosState()
	name := m.modeOf
	if m.mode == "class-map" {
		if len(f) < 2 || f[0] != "match" {
			return fmt.Errorf("class-map %s: expected match, got %q", name, strings.Join(f, " "))
		}
		match := strings.Join(f[1:], " ")
		if f[1] == "access-list" {
			if len(f) != 3 {
				return fmt.Errorf("class-map %s: expected match access-list ACL", name)
			}
			if _, ok := m.acls[f[2]]; !ok {
				return fmt.Errorf("class-map %s: ACL %s does not exist", name, f[2])
			}
		}
		if cur := q.classMaps[name]; cur != "" && cur != match {
			return fmt.Errorf("class-map %s already matches %s", name, cur)
		}
		q.classMaps[name] = match
		return nil
	}
	// policy-map
	switch {
	case len(f) == 2 && f[0] == "class":
		if _, ok := q.classMaps[f[1]]; !ok {
			return fmt.Errorf("policy-map %s: class-map %s does not exist", name, f[1])
		}
		for _, c := range q.policies[name] {
			if c.classMap == f[1] {
				q.curClass = c
				return nil
			}
		}
		q.curClass = &modelClass{classMap: f[1]}
		q.policies[name] = append(q.policies[name], q.curClass)
		return nil
	case len(f) == 3 && f[0] == "no" && f[1] == "class":
		list := q.policies[name]
		for i, c := range list {
			if c.classMap == f[2] {
				q.policies[name] = append(list[:i:i], list[i+1:]...)
				q.curClass = nil
				return nil
			}
		}
		return fmt.Errorf("policy-map %s has no class %s", name, f[2])
	case q.curClass != nil && len(f) > 0:
		l := strings.Join(f, " ")
		if l == "priority" {
			for _, i := range sortedKeys(q.services) {
				if q.services[i] == name && i != "global" && !q.queues[i] {
					return fmt.Errorf("policy-map %s: priority on %s, which has no priority-queue", name, i)
				}
			}
		}
		for _, x := range q.curClass.lines {
			if x == l {
				return nil
			}
		}
		q.curClass.lines = append(q.curClass.lines, l)
		return nil
	}
	return fmt.Errorf("policy-map %s: unexpected %q", name, strings.Join(f, " "))
}

// qosDevice is the model's QoS as the reader's decision structures: the
// interfaces' policy-maps, their classes that match an ACL.
func (m *Model) qosDevice(d *device) {
	if m.qos == nil {
		return
	}
	q := &asaQoS{classMaps: map[string]string{}, policies: map[string][]asaPolicyClass{},
		queues: map[string]bool{}, service: map[string]string{}}
	for cm, match := range m.qos.classMaps {
		if a, ok := strings.CutPrefix(match, "access-list "); ok && d.acls[a] != nil {
			q.classMaps[cm] = a
		}
	}
	for pm, cs := range m.qos.policies {
		var list []asaPolicyClass
		for _, c := range cs {
			if q.classMaps[c.classMap] != "" {
				list = append(list, asaPolicyClass{classMap: c.classMap, priority: c.priority()})
			}
		}
		q.policies[pm] = list
	}
	for i := range m.qos.queues {
		q.queues[i] = true
	}
	for i, pm := range m.qos.services {
		if i != "global" {
			q.service[i] = pm
		}
	}
	d.qos = q
}

// qosCanonical writes the MPF part, owned or foreign: class-maps,
// policy-maps with their classes in order, service-policies, and the
// priority-queues (turnwall's where its policy-map is bound).
func (m *Model) qosCanonical(b *strings.Builder, owned bool) {
	q := m.qos
	if q == nil {
		return
	}
	for _, cm := range sortedKeys(q.classMaps) {
		if m.ownedName(cm) == owned {
			fmt.Fprintf(b, "class-map %s match %s\n", cm, q.classMaps[cm])
		}
	}
	var pms []string
	for pm := range q.policies {
		pms = append(pms, pm)
	}
	sort.Strings(pms)
	for _, pm := range pms {
		if m.ownedName(pm) != owned {
			continue
		}
		fmt.Fprintf(b, "policy-map %s\n", pm)
		for _, c := range q.policies[pm] {
			fmt.Fprintf(b, " class %s: %s\n", c.classMap, strings.Join(c.lines, "; "))
		}
	}
	for _, i := range sortedKeys(q.services) {
		if m.ownedName(q.services[i]) == owned {
			fmt.Fprintf(b, "service-policy %s on %s\n", q.services[i], i)
		}
	}
	var qs []string
	for i := range q.queues {
		qs = append(qs, i)
	}
	sort.Strings(qs)
	for _, i := range qs {
		pm, bound := q.services[i]
		if (bound && m.ownedName(pm)) == owned {
			fmt.Fprintf(b, "priority-queue %s\n", i)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
