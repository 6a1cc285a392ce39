package panos

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// qosPlan is the qos block on PAN-OS. PAN-OS splits QoS in two: a QoS
// policy rule puts a session in one of eight classes, which a QoS profile
// on the egress interface queues by priority; DSCP marking is an option of
// the security rule that allows the session ("QoS Marking: IP DSCP",
// Policies > Security > Actions,
// https://docs.paloaltonetworks.com/pan-os/10-1/pan-os-web-interface-help/policies/policies-security/building-blocks-in-a-security-policy-rule).
// Both act on sessions: a session's packets in both directions take its
// class and marking, so a class with replies = false marks replies too on
// PAN-OS (said in the output).
type qosPlan struct {
	profile    string
	classes    []qosClass
	interfaces []string
	rules      []qosRule
}

type qosClass struct {
	number   int
	priority string // real-time, high, medium, low
	name     string // the policy's class
	dscp     uint8
	replies  bool
}

type qosRule struct {
	name                string
	from, to            string
	source, destination string
	service             string
	class               int
	description         string
}

// qosProfile is the QoS profile turnwall defines for the egress interfaces.
const qosProfile = "turnwall-qos"

// panosClasses are the class numbers a policy's classes take, in order:
// class4 is where PAN-OS puts traffic no QoS rule matches, so it is left to
// that traffic (browsing).
var panosClasses = []int{1, 2, 3, 5, 6, 7, 8}

// qosPriority maps a DSCP to a PAN-OS queue priority: EF and VA real-time,
// CS4-CS5 and AF4x high, the rest of CS1-CS3, AF1x-AF3x medium, below low.
func qosPriority(v uint8) string {
	switch {
	case v == 46 || v == 44 || v >= 48:
		return "real-time"
	case v >= 32:
		return "high"
	case v >= 8:
		return "medium"
	}
	return "low"
}

// panosDSCP is the codepoint PAN-OS takes for ip-dscp: ef, af11-af43,
// cs0-cs7, or a 6-bit binary codepoint.
func panosDSCP(v uint8) string {
	n := ir.DSCPName(v)
	if n == "EF" || strings.HasPrefix(n, "AF") || strings.HasPrefix(n, "CS") {
		return strings.ToLower(n)
	}
	return fmt.Sprintf("%06b", v)
}

func parsePanosDSCP(s string) (uint8, bool) {
	for v := 0; v < 64; v++ {
		if panosDSCP(uint8(v)) == s {
			return uint8(v), true
		}
	}
	return 0, false
}

func buildQoS(p *ir.Program, pl *plan, prefix string) error {
	if len(p.QoS) == 0 {
		return nil
	}
	if len(p.QoS) > len(panosClasses) {
		return fmt.Errorf("panos: the qos block has %d classes; PAN-OS has %d classes besides class4 (the default)", len(p.QoS), len(panosClasses))
	}
	q := &qosPlan{profile: qosProfile}
	byIR := map[string]*securityRule{}
	for i := range pl.rules {
		if pl.rules[i].irRule != "" {
			byIR[pl.rules[i].irRule] = &pl.rules[i]
		}
	}
	ns := newNamespace(ruleRules(prefix))
	zones := map[string]bool{}
	for ci := range p.QoS {
		c := &p.QoS[ci]
		qc := qosClass{number: panosClasses[ci], priority: qosPriority(c.DSCP), name: cleanText(c.Name, 31), dscp: c.DSCP, replies: c.Replies}
		q.classes = append(q.classes, qc)
		for _, name := range c.Rules {
			sr := byIR[name]
			if sr == nil {
				continue // a rule that matches nothing is not emitted
			}
			if sr.dscp == "" {
				sr.dscp = panosDSCP(c.DSCP)
			}
			tag := "[" + sourceTag(c.Origin.Source) + "] "
			q.rules = append(q.rules, qosRule{
				name: ns.Name("qos", "qos-"+c.Name+"-"+name),
				from: sr.from, to: sr.to, source: sr.source, destination: sr.destination, service: sr.service,
				class:       qc.number,
				description: strings.TrimSpace(tag + cleanText("qos class "+c.Name+": "+name, maxDescription-len(tag))),
			})
			for _, z := range []string{sr.from, sr.to} {
				zones[z] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, z := range p.Zones {
		if !zones[ZoneName(z.Name)] && !zones["any"] {
			continue
		}
		for _, i := range z.Interfaces {
			if !seen[i] {
				seen[i] = true
				q.interfaces = append(q.interfaces, i)
			}
		}
	}
	pl.qos = q
	return nil
}

// renderQoSSet writes the QoS profile, its interfaces, the QoS policy rules
// in class order and the security rules' DSCP marking (Network > Network
// Profiles > QoS Profile, Network > QoS, Policies > QoS:
// https://docs.paloaltonetworks.com/pan-os/10-1/pan-os-admin/quality-of-service/configure-qos).
// A class's queue priority follows its DSCP; no class gets a bandwidth
// limit, so media and the TCP 443 fallback are prioritised, never
// throttled.
func renderQoSSet(w *backends.Writer, pl *plan, scope string) {
	q := pl.qos
	if q == nil {
		return
	}
	for _, c := range q.classes {
		w.Line("set network qos profile %s class class%d priority %s", q.profile, c.number, c.priority)
	}
	for _, i := range q.interfaces {
		w.Line("set network qos interface %s enabled yes regular-traffic default-group qos-profile %s", quote(cleanText(i, 31)), q.profile)
	}
	for _, r := range q.rules {
		w.Line("set %srulebase qos rules %s from %s to %s source %s destination %s source-user any application any service %s action class %d description %s",
			scope, r.name, r.from, r.to, r.source, r.destination, r.service, r.class, quote(r.description))
	}
	for _, r := range q.rules {
		w.Line("move %srulebase qos rules %s bottom", scope, r.name)
	}
	for _, r := range pl.rules {
		if r.dscp != "" {
			w.Line("set %srulebase security rules %s qos marking ip-dscp %s", scope, r.name, r.dscp)
		}
	}
}

// --- reader ---------------------------------------------------------------

// rQoS is what the reader keeps of the QoS statements.
type rQoS struct {
	profiles   map[string]map[int]string // profile -> class number -> priority
	interfaces map[string]string         // interface -> its QoS profile
	rules      rulebase                  // QoS policy rules
	marking    map[string]string         // security rule -> DSCP codepoint
}

func (d *device) qosState() *rQoS {
	if d.qos == nil {
		d.qos = &rQoS{profiles: map[string]map[int]string{}, interfaces: map[string]string{},
			rules: rulebase{byName: map[string]*rRule{}}, marking: map[string]string{}}
	}
	return d.qos
}

// setClass gives a profile's class a priority, creating the profile.
func (q *rQoS) setClass(profile string, n int, prio string) {
	if q.profiles[profile] == nil {
		q.profiles[profile] = map[int]string{}
	}
	q.profiles[profile][n] = prio
}

// hasClass reports whether some QoS profile gives class n a priority.
func (q *rQoS) hasClass(n int) bool {
	for _, cs := range q.profiles {
		if _, ok := cs[n]; ok {
			return true
		}
	}
	return false
}

var qosKeys = ruleKeys{
	lists:   []string{"from", "to", "source", "destination", "application", "service", "source-user"},
	singles: []string{"description"},
}

// setNetworkQoS reads `set network qos profile P class classN priority X`
// and `set network qos interface I enabled yes regular-traffic
// default-group qos-profile P`.
func (p *setParser) setNetworkQoS() error {
	if _, err := p.keyword("qos"); err != nil {
		return err
	}
	q := p.dev.qosState()
	what, err := p.keyword("profile", "interface")
	if err != nil {
		return err
	}
	if what == "interface" {
		iface, err := p.name("interface")
		if err != nil {
			return err
		}
		for _, k := range []string{"enabled", "yes", "regular-traffic", "default-group", "qos-profile"} {
			if _, err := p.keyword(k); err != nil {
				return err
			}
		}
		prof, err := p.name("qos profile")
		if err != nil {
			return err
		}
		q.interfaces[iface] = prof
		return nil
	}
	prof, err := p.name("qos profile")
	if err != nil {
		return err
	}
	n, cls, err := p.qosClass()
	if err != nil {
		return err
	}
	if n < 1 || n > 8 {
		return fmt.Errorf("unknown QoS class %q", cls)
	}
	if _, err := p.keyword("priority"); err != nil {
		return err
	}
	prio, err := p.keyword("real-time", "high", "medium", "low")
	if err != nil {
		return err
	}
	q.setClass(prof, n, prio)
	return nil
}

// setQoSRule reads a QoS policy rule; `action class N` is its verdict.
func (p *setParser) setQoSRule(name string) error {
	q := p.dev.qosState()
	r := q.rules.rule(name, p.line)
	for p.more() {
		if t := p.toks[p.pos]; !t.quoted && t.s == "action" {
			p.pos++
			if _, err := p.keyword("class"); err != nil {
				return err
			}
			v, err := p.word("class number")
			if err != nil {
				return err
			}
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 8 {
				return fmt.Errorf("QoS rule %q: class %q is not 1-8", name, v)
			}
			r.action = v
			continue
		}
		// The rest is read as a security rule's keys, one at a time.
		save := p.toks
		end := p.pos + 1
		for end < len(p.toks) && !(p.toks[end].s == "action" && !p.toks[end].quoted) {
			end++
		}
		p.toks = p.toks[:end]
		err := p.setRule(r, qosKeys)
		p.toks = save
		if err != nil {
			return err
		}
	}
	return nil
}

// setMarking reads `set rulebase security rules N qos marking ip-dscp V`.
func (p *setParser) setMarking(name string) error {
	for _, k := range []string{"qos", "marking", "ip-dscp"} {
		if _, err := p.keyword(k); err != nil {
			return err
		}
	}
	v, err := p.word("DSCP codepoint")
	if err != nil {
		return err
	}
	if _, ok := parsePanosDSCP(v); !ok {
		return fmt.Errorf("security rule %q: unknown DSCP codepoint %q", name, v)
	}
	p.dev.qosState().marking[name] = v
	return nil
}

// cQoS is the resolved QoS configuration.
type cQoS struct {
	rules   []qosMatch
	marking map[string]uint8 // security rule -> DSCP
}

type qosMatch struct {
	rule  rule // matcher (action unused)
	class int
	desc  string
}

func (d *device) resolveQoS(c *config, errAt func(int, string, ...any) error) error {
	if d.qos == nil {
		return nil
	}
	c.qos = &cQoS{marking: map[string]uint8{}}
	for _, r := range d.qos.rules.order {
		n, _ := strconv.Atoi(r.action)
		if !d.qos.hasClass(n) {
			return errAt(r.line, "QoS rule %q: class %q has no priority in the QoS profile", r.name, r.action)
		}
		r2 := *r
		r2.action = "allow"
		rr, err := d.resolveSecurity(&r2)
		if err != nil {
			return errAt(r.line, "QoS rule %q: %v", r.name, err)
		}
		c.qos.rules = append(c.qos.rules, qosMatch{rule: rr, class: n, desc: r.description})
	}
	for iface, prof := range d.qos.interfaces {
		if d.qos.profiles[prof] == nil {
			return fmt.Errorf("QoS interface %q uses QoS profile %q, which does not exist", iface, prof)
		}
	}
	for name, v := range d.qos.marking {
		if d.security.byName[name] == nil {
			return fmt.Errorf("QoS marking for security rule %q, which does not exist", name)
		}
		c.qos.marking[name], _ = parsePanosDSCP(v)
	}
	return nil
}

// QoS implements backends.QoSConfig the way PAN-OS acts on sessions: the
// session (its client-to-server tuple, the reverse of a reply) takes the
// class of the first QoS rule that matches it, and the DSCP marking of the
// security rule that allows it.
func (c *config) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	out := backends.QoSDecision{DSCP: -1}
	if c.qos == nil {
		return out
	}
	s := pkt
	if reply {
		s = pkt.Reverse()
	}
	s.DstHost = ""
	from, to := s.FromZone, s.ToZone
	if from != "" {
		from = ZoneName(from)
	}
	if to != "" {
		to = ZoneName(to)
	}
	for i := range c.qos.rules {
		m := &c.qos.rules[i]
		r := &m.rule
		if r.disabled || !r.zonesMatch(from, to) || !r.svc.matches(s) || !r.src.matchesSource(s.Src) || !r.dst.matchesDestination(s.Dst, "") {
			continue
		}
		out.Source = descriptionSource(m.desc)
		if _, rest, ok := strings.Cut(m.desc, "qos class "); ok {
			out.Class, _, _ = strings.Cut(rest, ":")
		}
		break
	}
	if d := c.Decide(s); d.Action == ir.Allow && d.Rule != "" {
		if v, ok := c.qos.marking[d.Rule]; ok {
			out.DSCP = int(v)
		}
	}
	return out
}

// --- XML ------------------------------------------------------------------

type xNetwork struct {
	QoS xNetQoS `xml:"qos"`
}

type xNetQoS struct {
	Profile   []xQoSProfile `xml:"profile>entry"`
	Interface []xQoSIface   `xml:"interface>entry"`
}

type xQoSProfile struct {
	Name  string      `xml:"name,attr"`
	Class []xQoSClass `xml:"class>entry"`
}

type xQoSClass struct {
	Name     string `xml:"name,attr"`
	Priority string `xml:"priority"`
}

type xQoSIface struct {
	Name    string `xml:"name,attr"`
	Enabled string `xml:"enabled"`
	Profile string `xml:"regular-traffic>default-group>qos-profile"`
}

type xQoSRules struct {
	Rules []xQoSRule `xml:"rules>entry"`
}

type xQoSRule struct {
	Name        string   `xml:"name,attr"`
	From        []string `xml:"from>member"`
	To          []string `xml:"to>member"`
	Source      []string `xml:"source>member"`
	Destination []string `xml:"destination>member"`
	SourceUser  []string `xml:"source-user>member"`
	Application []string `xml:"application>member"`
	Service     []string `xml:"service>member"`
	Class       string   `xml:"action>class"`
	Description string   `xml:"description"`
}

type xRuleQoS struct {
	IPDSCP string `xml:"marking>ip-dscp"`
}

func ruleQoSXML(r securityRule) *xRuleQoS {
	if r.dscp == "" {
		return nil
	}
	return &xRuleQoS{IPDSCP: r.dscp}
}

// renderQoSXML adds the QoS profile and interfaces under the device's
// network node and the QoS rules to the vsys rulebase (the nodes of the set
// commands above).
func renderQoSXML(pl *plan, dev *xDevice, rb *xRulebase) {
	q := pl.qos
	if q == nil {
		return
	}
	prof := xQoSProfile{Name: q.profile}
	for _, c := range q.classes {
		prof.Class = append(prof.Class, xQoSClass{Name: "class" + strconv.Itoa(c.number), Priority: c.priority})
	}
	nw := &xNetwork{QoS: xNetQoS{Profile: []xQoSProfile{prof}}}
	for _, i := range q.interfaces {
		nw.QoS.Interface = append(nw.QoS.Interface, xQoSIface{Name: cleanText(i, 31), Enabled: "yes", Profile: q.profile})
	}
	dev.Network = nw
	rb.QoS = &xQoSRules{}
	for _, r := range q.rules {
		rb.QoS.Rules = append(rb.QoS.Rules, xQoSRule{Name: r.name, From: []string{r.from}, To: []string{r.to},
			Source: []string{r.source}, Destination: []string{r.destination}, SourceUser: []string{"any"},
			Application: []string{"any"}, Service: []string{r.service}, Class: strconv.Itoa(r.class), Description: r.description})
	}
}

// networkQoS reads <network><qos><profile>/<interface>.
func (x *xmlReader) networkQoS(n *node) error {
	if err := x.container(n, nil, "qos"); err != nil {
		return err
	}
	qn := only(n, "qos")
	if qn == nil {
		return nil
	}
	if err := x.container(qn, nil, "profile", "interface"); err != nil {
		return err
	}
	q := x.dev.qosState()
	if pn := only(qn, "profile"); pn != nil {
		profs, names0, err := x.entries(pn)
		if err != nil {
			return err
		}
		for pi, pe := range profs {
			if err := x.container(pe, []string{"name"}, "class"); err != nil {
				return err
			}
			cn := only(pe, "class")
			if cn == nil {
				continue
			}
			classes, names, err := x.entries(cn)
			if err != nil {
				return err
			}
			for i, ce := range classes {
				if err := x.container(ce, []string{"name"}, "priority"); err != nil {
					return err
				}
				num, err := strconv.Atoi(strings.TrimPrefix(names[i], "class"))
				if err != nil || num < 1 || num > 8 {
					return x.errAt(ce, "unknown QoS class %q", names[i])
				}
				pr := only(ce, "priority")
				if pr == nil {
					return x.errAt(ce, "class %s has no priority", names[i])
				}
				v, err := x.leaf(pr)
				if err != nil {
					return err
				}
				switch v {
				case "real-time", "high", "medium", "low":
				default:
					return x.errAt(pr, "unknown priority %q", v)
				}
				q.setClass(names0[pi], num, v)
			}
		}
	}
	if in := only(qn, "interface"); in != nil {
		ifs, inames, err := x.entries(in)
		if err != nil {
			return err
		}
		for ii, ie := range ifs {
			if err := x.container(ie, []string{"name"}, "enabled", "regular-traffic"); err != nil {
				return err
			}
			prof := ""
			if rt := only(ie, "regular-traffic"); rt != nil {
				if dg := only(rt, "default-group"); dg != nil {
					if qp := only(dg, "qos-profile"); qp != nil {
						if prof, err = x.leaf(qp); err != nil {
							return err
						}
					}
				}
			}
			if prof == "" {
				return x.errAt(ie, "QoS interface %q names no qos-profile", inames[ii])
			}
			q.interfaces[inames[ii]] = prof
		}
	}
	return nil
}

// qosRule reads a QoS rule entry: a security rule's match keys and
// <action><class>N</class></action>.
func (x *xmlReader) qosRule(e *node, name string) error {
	r := x.dev.qosState().rules.rule(name, e.line)
	rest := *e
	rest.children = nil
	for _, c := range e.children {
		if c.name != "action" {
			rest.children = append(rest.children, c)
			continue
		}
		if err := x.container(c, nil, "class"); err != nil {
			return err
		}
		cl := only(c, "class")
		if cl == nil {
			return x.errAt(c, "QoS rule %q: <action> has no <class>", name)
		}
		v, err := x.leaf(cl)
		if err != nil {
			return err
		}
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 8 {
			return x.errAt(cl, "QoS rule %q: class %q is not 1-8", name, v)
		}
		r.action = v
	}
	return x.rule(&rest, r, qosKeys)
}

// marking takes a security rule's <qos><marking><ip-dscp> out of the entry
// and returns the rest for the security rule reader.
func (x *xmlReader) marking(e *node, name string) (*node, error) {
	q := only(e, "qos")
	if q == nil {
		return e, nil
	}
	if err := x.container(q, nil, "marking"); err != nil {
		return nil, err
	}
	m := only(q, "marking")
	if m == nil {
		return nil, x.errAt(q, "<qos> without <marking>")
	}
	if err := x.container(m, nil, "ip-dscp"); err != nil {
		return nil, err
	}
	d := only(m, "ip-dscp")
	if d == nil {
		return nil, x.errAt(m, "<marking> without <ip-dscp>")
	}
	v, err := x.leaf(d)
	if err != nil {
		return nil, err
	}
	if _, ok := parsePanosDSCP(v); !ok {
		return nil, x.errAt(d, "security rule %q: unknown DSCP codepoint %q", name, v)
	}
	x.dev.qosState().marking[name] = v
	rest := *e
	rest.children = nil
	for _, c := range e.children {
		if c != q {
			rest.children = append(rest.children, c)
		}
	}
	return &rest, nil
}

// qosClass reads "class classN" in a QoS profile path: N, the word as
// written, and N -1 when the word is not "class" and a number.
func (p *setParser) qosClass() (int, string, error) {
	if _, err := p.keyword("class"); err != nil {
		return 0, "", err
	}
	cls, err := p.word("class")
	if err != nil {
		return 0, "", err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(cls, "class"))
	if err != nil || !strings.HasPrefix(cls, "class") {
		n = -1
	}
	return n, cls, nil
}
