package fortios

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// qosPlan is the qos block on FortiOS: one shared traffic shaper per class
// (its queue priority; no bandwidth limit is set, so nothing is throttled)
// and one shaping policy per marked rule, in class order, matching the
// rule's interfaces, addresses and service as its firewall policy does.
// Shaping policies are first-match per session, like the IR's classes; the
// DSCP is written per direction by the shaping policy's diffserv-forward
// and, for classes that mark replies, diffserv-reverse (config firewall
// shaping-policy,
// https://docs.fortinet.com/document/fortigate/7.4.8/cli-reference/116620/config-firewall-shaping-policy;
// config firewall shaper traffic-shaper,
// https://docs.fortinet.com/document/fortigate/7.4.8/cli-reference/115620/config-firewall-shaper-traffic-shaper).
type qosPlan struct {
	shapers []shaper
	rules   []shapingPolicy
}

type shaper struct {
	name     string
	priority string
}

type shapingPolicy struct {
	id                 uint64
	name               string
	srcintf, dstintf   []string
	srcaddr, dstaddr   string
	srcaddr6, dstaddr6 string
	service            string
	shaper             string
	reverse            bool // shape and mark replies too
	dscp               uint8
	comment            string
}

// shaperPriority maps a DSCP to a traffic shaper priority: EF, VA and CS5
// and above high, AF3x-AF4x and CS3-CS4 medium, the rest low.
func shaperPriority(v uint8) string {
	switch {
	case v >= 40:
		return "high"
	case v >= 24:
		return "medium"
	}
	return "low"
}

func dscpBits(v uint8) string { return fmt.Sprintf("%06b", v) }

func buildQoS(p *ir.Program, pl *plan) (*qosPlan, error) {
	if len(p.QoS) == 0 {
		return nil, nil
	}
	q := &qosPlan{}
	byRule := map[string]*policy{}
	for i := range p.Rules {
		if i < len(pl.policies) {
			byRule[p.Rules[i].Name] = &pl.policies[i]
		}
	}
	shNS := newNamespace("tw-qos-", objectNameMax)
	polNS := newNamespace("tw-q-", policyNameMax)
	// Shaping policies have a table of their own; each takes an id of the
	// reserved range from its name, as the firewall policies do
	// (allocateIDs), so that adding, removing or reordering rules and
	// classes keeps every other shaping policy's id and a change script
	// edits only the shaping policies that change.
	for ci := range p.QoS {
		c := &p.QoS[ci]
		sh := shaper{name: shNS.Name("shaper", c.Name), priority: shaperPriority(c.DSCP)}
		q.shapers = append(q.shapers, sh)
		for _, name := range c.Rules {
			fp := byRule[name]
			if fp == nil || !fp.enabled {
				continue // a rule that matches nothing
			}
			head := "turnwall qos " + encodeToken(c.Origin.Source.String(), sourceSafe) + " " + encodeToken(c.Name, zoneSafe) + ":"
			sp := shapingPolicy{
				name:    polNS.Name("qos", c.Name+"-"+name),
				srcintf: fp.srcintf, dstintf: fp.dstintf,
				srcaddr: fp.srcaddr, dstaddr: fp.dstaddr, srcaddr6: fp.srcaddr6, dstaddr6: fp.dstaddr6,
				service: fp.service, shaper: sh.name, reverse: c.Replies, dscp: c.DSCP,
				comment: head + " " + cliText("rule "+name, 255-len(head)-1),
			}
			q.rules = append(q.rules, sp)
		}
	}
	if uint64(len(q.rules)) > pl.s.lastID-pl.s.firstID {
		return nil, fmt.Errorf("fortios: the qos block needs %d shaping policy ids, more than policy-ids %d-%d holds; widen the range", len(q.rules), pl.s.firstID, pl.s.lastID)
	}
	names := make([]string, len(q.rules))
	for i := range q.rules {
		names[i] = q.rules[i].name
	}
	ids := allocateIDs(names, pl.s.firstID, pl.s.lastID)
	for i := range q.rules {
		q.rules[i].id = ids[q.rules[i].name]
	}
	return q, nil
}

func writeQoS(w *backends.Writer, q *qosPlan) {
	if q == nil {
		return
	}
	w.Line("config firewall shaper traffic-shaper")
	for _, s := range q.shapers {
		w.Line("    edit %s", quote(s.name))
		w.Line("        set priority %s", s.priority)
		w.Line("        set per-policy disable")
		w.Line("    next")
	}
	w.Line("end")
	w.Line("config firewall shaping-policy")
	for _, r := range q.rules {
		w.Line("    edit %d", r.id)
		w.Line("        set name %s", quote(r.name))
		w.Line("        set comment %s", quote(r.comment))
		w.Line("        set status enable")
		w.Line("        set srcintf %s", quoteAll(r.srcintf))
		w.Line("        set dstintf %s", quoteAll(r.dstintf))
		for _, f := range []struct{ field, name string }{{"srcaddr", r.srcaddr}, {"dstaddr", r.dstaddr}, {"srcaddr6", r.srcaddr6}, {"dstaddr6", r.dstaddr6}} {
			if f.name == "" {
				w.Line("        unset %s", f.field)
			} else {
				w.Line("        set %s %s", f.field, quote(f.name))
			}
		}
		w.Line("        set service %s", quote(r.service))
		w.Line("        set traffic-shaper %s", quote(r.shaper))
		w.Line("        set diffserv-forward enable")
		w.Line("        set diffservcode-forward %s", dscpBits(r.dscp))
		if r.reverse {
			w.Line("        set traffic-shaper-reverse %s", quote(r.shaper))
			w.Line("        set diffserv-reverse enable")
			w.Line("        set diffservcode-rev %s", dscpBits(r.dscp))
		} else {
			w.Line("        unset traffic-shaper-reverse")
			w.Line("        set diffserv-reverse disable")
		}
		w.Line("    next")
	}
	for i := 1; i < len(q.rules); i++ {
		w.Line("    move %d after %d", q.rules[i].id, q.rules[i-1].id)
	}
	w.Line("end")
}

// --- reader ---------------------------------------------------------------

var shaperFields = map[string]bool{"priority": true, "per-policy": true}

var shapingFields = map[string]bool{"name": true, "comment": true, "status": true, "srcintf": true, "dstintf": true,
	"srcaddr": true, "dstaddr": true, "srcaddr6": true, "dstaddr6": true, "service": true,
	"traffic-shaper": true, "traffic-shaper-reverse": true, "diffserv-forward": true, "diffservcode-forward": true,
	"diffserv-reverse": true, "diffservcode-rev": true}

type fgtQoS struct {
	shapers map[string]string // name -> priority
	rules   map[uint64]*fgtShaping
	order   []uint64
}

type fgtShaping struct {
	pol      fgtPolicy // the match, read as a firewall policy's
	shaper   string
	reverse  string
	fwd, rev int // DSCP per direction, -1 none
	class    string
	source   string
	line     int
}

func (p *parser) finishShaper() error {
	q := &p.cfg.qos
	if q.shapers == nil {
		q.shapers = map[string]string{}
	}
	if _, dup := q.shapers[p.entry]; dup {
		return p.errf("traffic shaper %q defined twice", p.entry)
	}
	prio, err := p.need("priority")
	if err != nil {
		return err
	}
	switch prio {
	case "high", "medium", "low":
	default:
		return p.errf("traffic shaper %q: priority %q", p.entry, prio)
	}
	q.shapers[p.entry] = prio
	return nil
}

func (p *parser) finishShaping() error {
	q := &p.cfg.qos
	if q.rules == nil {
		q.rules = map[uint64]*fgtShaping{}
	}
	id, err := strconv.ParseUint(p.entry, 10, 32)
	if err != nil || id == 0 {
		return p.errf("shaping policy id %q is not a fixed id", p.entry)
	}
	if _, dup := q.rules[id]; dup {
		return p.errf("shaping policy %d edited twice", id)
	}
	sp := &fgtShaping{line: p.line, fwd: -1, rev: -1}
	sp.pol = fgtPolicy{id: id, fields: p.set, line: p.line, enabled: true, accept: true}
	if st, err := p.need("status"); err != nil || st != "enable" {
		return p.errf("shaping policy %d: expected set status enable", id)
	}
	for _, f := range []string{"srcintf", "dstintf", "service"} {
		if len(p.set[f]) == 0 {
			return p.errf("shaping policy %d has no %s", id, f)
		}
	}
	sp.pol.srcintf, sp.pol.dstintf, sp.pol.service = p.set["srcintf"], p.set["dstintf"], p.set["service"]
	sp.pol.srcaddr, sp.pol.dstaddr = p.set["srcaddr"], p.set["dstaddr"]
	sp.pol.srcaddr6, sp.pol.dstaddr6 = p.set["srcaddr6"], p.set["dstaddr6"]
	if (len(sp.pol.srcaddr) == 0) != (len(sp.pol.dstaddr) == 0) || (len(sp.pol.srcaddr6) == 0) != (len(sp.pol.dstaddr6) == 0) {
		return p.errf("shaping policy %d: srcaddr/dstaddr and srcaddr6/dstaddr6 must be set in pairs", id)
	}
	if sp.shaper, err = p.need("traffic-shaper"); err != nil {
		return err
	}
	sp.reverse, _, _ = p.one("traffic-shaper-reverse")
	for _, d := range []struct {
		on, code string
		dst      *int
	}{{"diffserv-forward", "diffservcode-forward", &sp.fwd}, {"diffserv-reverse", "diffservcode-rev", &sp.rev}} {
		on, _, err := p.one(d.on)
		if err != nil {
			return err
		}
		switch on {
		case "enable":
			code, err := p.need(d.code)
			if err != nil {
				return err
			}
			v, perr := strconv.ParseUint(code, 2, 8)
			if perr != nil || len(code) != 6 {
				return p.errf("shaping policy %d: %s %q is not six bits", id, d.code, code)
			}
			*d.dst = int(v)
		case "disable", "":
		default:
			return p.errf("shaping policy %d: %s %q", id, d.on, on)
		}
	}
	comment, err := p.need("comment")
	if err != nil {
		return err
	}
	// "turnwall qos SOURCE CLASS: TEXT"
	words := strings.SplitN(comment, " ", 5)
	if len(words) < 4 || words[0] != "turnwall" || words[1] != "qos" || !strings.HasSuffix(words[3], ":") {
		return p.errf("shaping policy %d: comment %q does not trace to the policy", id, comment)
	}
	if sp.source, err = unescape(words[2]); err != nil {
		return p.errf("shaping policy %d: %v", id, err)
	}
	if sp.class, err = unescape(strings.TrimSuffix(words[3], ":")); err != nil {
		return p.errf("shaping policy %d: %v", id, err)
	}
	q.rules[id] = sp
	q.order = append(q.order, id)
	return nil
}

func (p *parser) moveShaping(w []string) error {
	a, err1 := strconv.ParseUint(w[1], 10, 32)
	b, err2 := strconv.ParseUint(w[3], 10, 32)
	q := &p.cfg.qos
	if err1 != nil || err2 != nil || w[2] != "after" && w[2] != "before" || q.rules[a] == nil || q.rules[b] == nil || a == b {
		return p.errf("expected move ID after|before ID of two shaping policies")
	}
	order := make([]uint64, 0, len(q.order))
	for _, id := range q.order {
		if id != a {
			order = append(order, id)
		}
	}
	for i, id := range order {
		if id == b {
			at := i
			if w[2] == "after" {
				at++
			}
			order = append(order[:at], append([]uint64{a}, order[at:]...)...)
			break
		}
	}
	q.order = order
	return nil
}

// checkQoS resolves the shaping policies' references.
func (c *fgtConfig) checkQoS() error {
	for _, id := range c.qos.order {
		sp := c.qos.rules[id]
		for _, s := range []string{sp.shaper, sp.reverse} {
			if _, ok := c.qos.shapers[s]; s != "" && !ok {
				return fmt.Errorf("line %d: shaping policy %d: unknown traffic shaper %q", sp.line, id, s)
			}
		}
		if sp.rev >= 0 && sp.reverse == "" {
			return fmt.Errorf("line %d: shaping policy %d marks replies without shaping them", sp.line, id)
		}
		for _, ref := range []struct {
			tbl   map[string]*fgtAddr
			names []string
		}{{c.addr, sp.pol.srcaddr}, {c.addr, sp.pol.dstaddr}, {c.addr6, sp.pol.srcaddr6}, {c.addr6, sp.pol.dstaddr6}} {
			for _, n := range ref.names {
				if ref.tbl[n] == nil {
					return fmt.Errorf("line %d: shaping policy %d: unknown address %q", sp.line, id, n)
				}
			}
		}
		for _, n := range sp.pol.service {
			if c.services[n] == nil {
				return fmt.Errorf("line %d: shaping policy %d: unknown service %q", sp.line, id, n)
			}
		}
	}
	return nil
}

// QoS: the session (the reverse of a reply) takes the first shaping policy
// that matches it; its packets get diffservcode-forward, its replies
// diffservcode-rev when diffserv-reverse is on.
func (c *fgtConfig) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	out := backends.QoSDecision{DSCP: -1}
	s := pkt
	if reply {
		s = pkt.Reverse()
	}
	s.DstHost = ""
	for _, id := range c.qos.order {
		sp := c.qos.rules[id]
		if !c.matches(&sp.pol, s) {
			continue
		}
		v := sp.fwd
		if reply {
			v = sp.rev
		}
		if v < 0 {
			return out
		}
		return backends.QoSDecision{Class: sp.class, DSCP: v, Source: sp.source}
	}
	return out
}
