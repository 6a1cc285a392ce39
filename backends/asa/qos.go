package asa

import (
	"fmt"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// qosPlan is the qos block on the ASA, through the Modular Policy Framework:
// per egress zone, one ACL per class (the class's flows leaving through the
// zone: their first direction when the zone is the rule's destination, and
// their replies when it is the source and the class marks replies), a
// class-map matching it, and one policy-map of those classes, each with
// `priority`; the policy-map is bound with service-policy to the zone's
// interfaces, each with a priority-queue (Cisco ASA Series Firewall CLI
// Configuration Guide 9.x, "Quality of Service":
// https://www.cisco.com/c/en/us/td/docs/security/asa/asa916/configuration/firewall/asa-916-firewall-config/conns-qos.html).
//
// The platform's restrictions, also written into the output: the ASA cannot
// set DSCP (it keeps the marking packets arrive with, so marks must come
// from the agents or a switch); it has one low-latency queue per interface,
// so every class goes into it whatever its DSCP; priority queuing works on
// physical interfaces, not on a bridge group or a port-channel member's
// subinterface; and a class matches packets, not connections.
type qosPlan struct {
	zones   []qosZone
	revSvcs []*groupPlan // reversed service groups for the replies' ACEs
	revSvc  map[string]*groupPlan
}

type qosZone struct {
	zone    ir.Zone
	policy  string // policy-map name
	classes []qosZoneClass
}

type qosZoneClass struct {
	class    string // the policy's class
	classMap string
	acl      string
	items    []string // ACL lines after "access-list NAME "
}

func (e *emitter) planQoS() error {
	p := e.p
	if len(p.QoS) == 0 {
		return nil
	}
	q := &qosPlan{revSvc: map[string]*groupPlan{}}
	reverse := func(svc string) *groupPlan {
		if g, ok := q.revSvc[svc]; ok {
			return g
		}
		s := p.Service(svc)
		g := &groupPlan{}
		for _, en := range s.Entries {
			for _, sp := range portArgs("source", en.Ports) {
				for _, dp := range portArgs("destination", en.SrcPorts) {
					g.lines = append(g.lines, strings.TrimSpace("service-object "+string(en.Proto)+sp+dp))
				}
			}
		}
		g.name = e.prefix + e.objNames.Name("svcrev-"+svc) + e.version(g.lines)
		q.revSvc[svc] = g
		q.revSvcs = append(q.revSvcs, g)
		return g
	}
	for _, z := range e.zones {
		qz := qosZone{zone: z}
		for ci := range p.QoS {
			c := &p.QoS[ci]
			qc := qosZoneClass{class: c.Name}
			qc.items = append(qc.items, "remark "+cut(sourceToken(c.Origin.Source)+" qos "+text(c.Name, 60)+" dscp "+ir.DSCPName(c.DSCP), maxRemark))
			n := 0
			seen := map[string]bool{}
			ace := func(it string) {
				// The ASA refuses a duplicate entry: two rules of the class
				// with the same groups are one entry.
				if !seen[it] {
					seen[it] = true
					qc.items = append(qc.items, it)
					n++
				}
			}
			for _, r := range p.QoSRules(c) {
				src, dst, svc := p.AddressSet(r.Src), p.AddressSet(r.Dst), p.Service(r.Service)
				if src == nil || dst == nil || svc == nil || src.Empty() || dst.Empty() || len(svc.Entries) == 0 {
					continue
				}
				if r.ToZone == "" || r.ToZone == z.Name {
					ace("extended permit object-group " + e.svcGroups[r.Service].name +
						" object-group " + e.netGroups[r.Src].name + " object-group " + e.netGroups[r.Dst].name)
				}
				if c.Replies && (r.FromZone == "" || r.FromZone == z.Name) {
					ace("extended permit object-group " + reverse(r.Service).name +
						" object-group " + e.netGroups[r.Dst].name + " object-group " + e.netGroups[r.Src].name)
				}
			}
			if n == 0 {
				continue
			}
			base := e.prefix + e.objNames.Name("qos-"+c.Name+"-"+z.Name) + e.version(qc.items)
			qc.acl, qc.classMap = base, base
			qz.classes = append(qz.classes, qc)
		}
		if len(qz.classes) == 0 {
			continue
		}
		var all []string
		for _, c := range qz.classes {
			all = append(all, c.classMap)
		}
		qz.policy = e.prefix + e.objNames.Name("qospm-"+z.Name) + e.version(all)
		q.zones = append(q.zones, qz)
	}
	e.qos = q
	return nil
}

func (e *emitter) writeQoS(w *backends.Writer) {
	q := e.qos
	if q == nil {
		return
	}
	w.Line(":")
	w.Line(": QoS (the policy's qos block), Modular Policy Framework. Restrictions of the platform:")
	w.Line(": the ASA cannot set DSCP; it forwards the marking packets arrive with, so the")
	w.Line(": policy's DSCP values must be set by the agents or a switch. It has one")
	w.Line(": low-latency queue per interface: every class below goes into it, whatever its")
	w.Line(": DSCP, and nothing is policed or shaped (no flow is throttled). priority-queue")
	w.Line(": works on physical interfaces only, and an interface takes one service-policy: this")
	w.Line(": one replaces any other. Classes match packets (an ACL per egress zone, replies")
	w.Line(": reversed), not connections.")
	for _, g := range q.revSvcs {
		w.Line("object-group service %s", g.name)
		for _, l := range g.lines {
			w.Line(" %s", l)
		}
	}
	for _, z := range q.zones {
		w.Line(": zone %s: QoS of traffic leaving through %s", quote(z.zone.Name), strings.Join(z.zone.Interfaces, ", "))
		for _, c := range z.classes {
			for _, it := range c.items {
				w.Line("access-list %s %s", c.acl, it)
			}
			w.Line("class-map %s", c.classMap)
			w.Line(" match access-list %s", c.acl)
		}
		w.Line("policy-map %s", z.policy)
		for _, c := range z.classes {
			w.Line(" class %s", c.classMap)
			w.Line("  priority")
		}
		for _, i := range z.zone.Interfaces {
			w.Line("priority-queue %s", i)
			w.Line("service-policy %s interface %s", z.policy, i)
		}
	}
}

// --- reader ---------------------------------------------------------------

var qosStatements = map[string]bool{"class-map": true, "policy-map": true, "priority-queue": true, "service-policy": true}

type asaQoS struct {
	classMaps map[string]string // class-map -> ACL
	policies  map[string][]asaPolicyClass
	queues    map[string]bool   // lower-cased nameif with a priority-queue
	service   map[string]string // lower-cased nameif -> policy-map
	curPolicy string
}

type asaPolicyClass struct {
	classMap string
	priority bool
}

func (rd *parser) qosState() *asaQoS {
	if rd.qos == nil {
		rd.qos = &asaQoS{classMaps: map[string]string{}, policies: map[string][]asaPolicyClass{},
			queues: map[string]bool{}, service: map[string]string{}}
	}
	return rd.qos
}

func (rd *parser) qosLine(n int, f []string) error {
	q := rd.qosState()
	switch {
	case f[0] == "class-map" && len(f) == 2:
		if err := checkObjectName(f[1]); err != nil {
			return err
		}
		if _, dup := q.classMaps[f[1]]; dup {
			return fmt.Errorf("class-map %s defined twice", f[1])
		}
		q.classMaps[f[1]] = ""
		rd.mode, rd.modeName = "class-map", f[1]
		return nil
	case f[0] == "policy-map" && len(f) == 2:
		if err := checkObjectName(f[1]); err != nil {
			return err
		}
		if _, dup := q.policies[f[1]]; dup {
			return fmt.Errorf("policy-map %s defined twice", f[1])
		}
		q.policies[f[1]] = nil
		rd.mode, rd.modeName = "policy-map", f[1]
		return nil
	case f[0] == "priority-queue" && len(f) == 2 && nameifRE.MatchString(f[1]):
		q.queues[strings.ToLower(f[1])] = true
		return nil
	case f[0] == "service-policy" && len(f) == 4 && f[2] == "interface" && nameifRE.MatchString(f[3]):
		if _, ok := q.policies[f[1]]; !ok {
			return fmt.Errorf("service-policy names policy-map %s, which is not defined", f[1])
		}
		for _, c := range q.policies[f[1]] {
			if c.priority && !q.queues[strings.ToLower(f[3])] {
				return fmt.Errorf("service-policy %s on %s uses priority, but the interface has no priority-queue", f[1], f[3])
			}
		}
		q.service[strings.ToLower(f[3])] = f[1]
		return nil
	}
	return fmt.Errorf("unknown statement %q", strings.Join(f, " "))
}

func (rd *parser) qosSub(n int, f []string) error {
	q := rd.qosState()
	switch rd.mode {
	case "class-map":
		if len(f) != 3 || f[0] != "match" || f[1] != "access-list" {
			return fmt.Errorf("class-map %s: expected match access-list ACL, got %q", rd.modeName, strings.Join(f, " "))
		}
		a, ok := rd.acls[f[2]]
		if !ok || len(a.lines) == 0 {
			return fmt.Errorf("class-map %s matches access-list %s, which is not defined", rd.modeName, f[2])
		}
		if q.classMaps[rd.modeName] != "" {
			return fmt.Errorf("class-map %s has two matches", rd.modeName)
		}
		q.classMaps[rd.modeName] = f[2]
		return nil
	case "policy-map":
		list := q.policies[rd.modeName]
		switch {
		case len(f) == 2 && f[0] == "class":
			if q.classMaps[f[1]] == "" {
				return fmt.Errorf("policy-map %s: class %s is not a defined class-map", rd.modeName, f[1])
			}
			q.policies[rd.modeName] = append(list, asaPolicyClass{classMap: f[1]})
			return nil
		case len(f) == 1 && f[0] == "priority" && len(list) > 0:
			list[len(list)-1].priority = true
			return nil
		}
		return fmt.Errorf("policy-map %s: unexpected %q", rd.modeName, strings.Join(f, " "))
	}
	return fmt.Errorf("unexpected indented line")
}

// finishQoS checks that every service-policy is on a zone's interface.
func (rd *parser) finishQoS() error {
	if rd.qos == nil {
		return nil
	}
	for key := range rd.qos.service {
		found := false
		for _, ifs := range rd.zones {
			for _, i := range ifs {
				found = found || strings.ToLower(i) == key
			}
		}
		if !found {
			return fmt.Errorf("service-policy on interface %s, which no zone lists", key)
		}
	}
	return nil
}

// QoS: the policy-map bound to the interface the packet leaves through
// (the first of its zone's); its first class whose ACL permits the packet
// decides, and a class with priority queues it. The ASA sets no DSCP, and a
// class matches the packet whatever its direction, so reply is not used.
func (d *device) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	out := backends.QoSDecision{DSCP: -1}
	ifs, ok := d.zones[pkt.ToZone]
	if !ok || d.qos == nil {
		return out
	}
	pm, ok := d.qos.service[strings.ToLower(ifs[0])]
	if !ok {
		return out
	}
	for _, c := range d.qos.policies[pm] {
		acl := d.acls[d.qos.classMaps[c.classMap]]
		var remark string
		matched := false
		for _, l := range acl.lines {
			if l.remark != nil {
				if remark == "" {
					remark = *l.remark
				}
				continue
			}
			e := l.ace
			if !e.permit || !e.src.match(pkt.Src, "", false) || !e.dst.match(pkt.Dst, "", true) {
				continue
			}
			for _, s := range e.svc {
				matched = matched || s.match(pkt.Proto, pkt.SrcPort, pkt.DstPort)
			}
			if matched {
				break
			}
		}
		if !matched {
			continue
		}
		if !c.priority {
			return out
		}
		// The ACL's remark: "SOURCE qos CLASS dscp NAME".
		w := strings.Fields(remark)
		if len(w) >= 3 && w[1] == "qos" {
			out.Source, out.Class = w[0], w[2]
		}
		return out
	}
	return out
}
