package fortios

// The box model is a FortiGate's running configuration as the CLI changes
// it, written apart from the emitter (it shares no code with plan.go,
// write.go or change.go) so that change scripts are proved against FortiOS's
// own merge semantics, not against the intent of the code that wrote them:
//
//   - `edit KEY` opens an entry (a new one when KEY is not in the table) and
//     nothing it sets applies before `next` or `end`, as on the box (`abort`
//     would discard it); a new policy joins the bottom of the policy list;
//   - `set F V...` replaces the field's values, `append F V...` adds values
//     not yet there, `unselect F V...` removes values (an error when one is
//     not there, or when it would leave an address or service list empty),
//     `unset F` returns the field to its default;
//   - `delete KEY` removes an entry, refused while another entry refers to
//     it ("entry is used"); a reference to a missing entry is refused when
//     the edit closes ("entry not found in datasource");
//   - `move ID before|after ID` reorders the policy list;
//   - between `execute config-transaction start` and `commit` (workspace
//     mode) nothing applies until the commit.
//
// turnwall owns the entries named with its prefixes and the policies in its
// id range; the model refuses a script that edits or deletes anything else.

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Box is a model of a FortiGate's configuration (backends.BoxModel).
type Box struct {
	first, last uint64              // turnwall's policy ids
	zones       map[string][]string // policy zone -> interfaces a packet of it uses
	feeds       map[string][]netip.Prefix
	tables      map[string]map[string]map[string][]string // table -> key -> field -> values
	order       []string                                  // policy ids, top first
	qosOrder    []string                                  // shaping policy ids, first match first
	foreignOK   bool                                      // loading the box's own configuration

	// parse state
	table   string
	key     string
	work    map[string][]string
	isNew   bool
	tx      bool
	line    int
	pending func(backends.Config)
}

// NewBox returns a box holding its own configuration (foreign, FortiOS CLI
// text; may be empty), with turnwall's policy ids first..last. zones maps each
// policy zone to the interfaces a packet of that zone arrives on or leaves
// by; feeds maps external-resource URLs to the prefixes their files hold.
func NewBox(foreign []byte, first, last uint64, zones map[string][]string, feeds map[string][]netip.Prefix) (*Box, error) {
	b := &Box{first: first, last: last, zones: zones, feeds: feeds, tables: map[string]map[string]map[string][]string{}}
	b.foreignOK = true
	err := b.Apply(foreign, nil)
	b.foreignOK = false
	return b, err
}

// Apply implements backends.BoxModel.
func (b *Box) Apply(commands []byte, step func(backends.Config)) error {
	b.pending = step
	b.table, b.work, b.tx = "", nil, false // a new session
	for i, raw := range strings.Split(string(commands), "\n") {
		b.line = i + 1
		w, err := splitCLI(raw)
		if err != nil {
			return b.errf("%v", err)
		}
		if len(w) == 0 || strings.HasPrefix(w[0], "#") {
			continue
		}
		if err := b.exec(w); err != nil {
			return err
		}
	}
	if b.table != "" || b.tx {
		return b.errf("script ends inside config %s or a transaction", b.table)
	}
	return nil
}

func (b *Box) errf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", b.line, fmt.Sprintf(format, args...))
}

func (b *Box) stepped() {
	if b.pending != nil && !b.tx {
		b.pending(b.Config())
	}
}

func (b *Box) exec(w []string) error {
	switch {
	case len(w) == 3 && w[0] == "execute" && w[1] == "config-transaction":
		switch {
		case w[2] == "start" && !b.tx && b.table == "":
			b.tx = true
		case w[2] == "commit" && b.tx && b.table == "":
			b.tx = false
			b.stepped()
		default:
			return b.errf("unexpected execute config-transaction %s", w[2])
		}
		return nil
	case w[0] == "config" && b.table == "":
		if len(w) < 2 {
			return b.errf("config without a path")
		}
		b.table = strings.Join(w[1:], " ")
		if b.tables[b.table] == nil {
			b.tables[b.table] = map[string]map[string][]string{}
		}
		return nil
	case b.table == "":
		return b.errf("%q outside config", strings.Join(w, " "))
	case b.work == nil:
		switch {
		case len(w) == 2 && w[0] == "edit":
			if err := b.owns(w[1]); err != nil {
				return err
			}
			b.key, b.work, b.isNew = w[1], map[string][]string{}, true
			if old, ok := b.tables[b.table][w[1]]; ok {
				b.isNew = false
				for f, v := range old {
					b.work[f] = append([]string(nil), v...)
				}
			}
			return nil
		case len(w) == 2 && w[0] == "delete":
			return b.delete(w[1])
		case len(w) == 4 && w[0] == "move" && (b.table == "firewall policy" || b.table == "firewall shaping-policy"):
			return b.move(w[1], w[2], w[3])
		case len(w) == 1 && w[0] == "end":
			b.table = ""
			return nil
		}
		return b.errf("unknown statement %q in config %s", strings.Join(w, " "), b.table)
	}
	switch {
	case len(w) >= 3 && w[0] == "set":
		b.work[w[1]] = append([]string(nil), w[2:]...)
	case len(w) >= 3 && w[0] == "append":
		for _, v := range w[2:] {
			if !contains(b.work[w[1]], v) {
				b.work[w[1]] = append(b.work[w[1]], v)
			}
		}
	case len(w) >= 3 && w[0] == "unselect":
		for _, v := range w[2:] {
			i := index(b.work[w[1]], v)
			if i < 0 {
				return b.errf("unselect %s %q: not selected", w[1], v)
			}
			b.work[w[1]] = append(b.work[w[1]][:i], b.work[w[1]][i+1:]...)
		}
		if len(b.work[w[1]]) == 0 {
			return b.errf("unselect %s would leave it empty", w[1])
		}
	case len(w) == 2 && w[0] == "unset":
		delete(b.work, w[1])
	case len(w) == 1 && (w[0] == "next" || w[0] == "end"):
		if err := b.commit(); err != nil {
			return err
		}
		if w[0] == "end" {
			b.table = ""
		}
	default:
		return b.errf("unknown statement %q in edit %s", strings.Join(w, " "), b.key)
	}
	return nil
}

// owns refuses a change to an entry turnwall does not own, unless the box's
// own configuration is being loaded.
func (b *Box) owns(key string) error {
	if b.foreignOK || b.owned(b.table, key) {
		return nil
	}
	return b.errf("the script changes %s %q, which turnwall does not own", b.table, key)
}

func (b *Box) owned(table, key string) bool {
	if table == "firewall policy" || table == "firewall shaping-policy" {
		id, err := strconv.ParseUint(key, 10, 32)
		return err == nil && id >= b.first && id <= b.last
	}
	return strings.HasPrefix(key, "tw-") || strings.HasPrefix(key, "tw6-")
}

func (b *Box) commit() error {
	if err := b.references(b.table, b.work); err != nil {
		return err
	}
	b.tables[b.table][b.key] = b.work
	if b.isNew && b.table == "firewall policy" {
		b.order = append(b.order, b.key)
	}
	if b.isNew && b.table == "firewall shaping-policy" {
		b.qosOrder = append(b.qosOrder, b.key)
	}
	b.work = nil
	b.stepped()
	return nil
}

// refs are the fields that name other entries, and where those live.
func refTables(table, field string) []string {
	if table == "firewall shaping-policy" {
		// A shaping policy names addresses and services as a policy does.
		if field == "traffic-shaper" || field == "traffic-shaper-reverse" {
			return []string{"firewall shaper traffic-shaper"}
		}
		table = "firewall policy"
	}
	switch table + "|" + field {
	case "firewall addrgrp|member", "firewall policy|srcaddr", "firewall policy|dstaddr":
		return []string{"firewall address", "firewall addrgrp", "system external-resource"}
	case "firewall addrgrp6|member", "firewall policy|srcaddr6", "firewall policy|dstaddr6":
		return []string{"firewall address6", "firewall addrgrp6", "system external-resource"}
	case "firewall service group|member", "firewall policy|service":
		return []string{"firewall service custom", "firewall service group"}
	}
	return nil
}

var builtins = map[string]bool{"all": true, "none": true, "ALL": true, "HTTPS": true, "HTTP": true, "DNS": true}

func (b *Box) references(table string, fields map[string][]string) error {
	for f, vals := range fields {
		tbls := refTables(table, f)
		for _, v := range vals {
			if len(tbls) == 0 || builtins[v] {
				continue
			}
			found := false
			for _, t := range tbls {
				if _, ok := b.tables[t][v]; ok {
					found = true
				}
			}
			if !found {
				return b.errf("%s %s: %q: entry not found in datasource", table, f, v)
			}
		}
	}
	return nil
}

func (b *Box) delete(key string) error {
	if err := b.owns(key); err != nil {
		return err
	}
	if _, ok := b.tables[b.table][key]; !ok {
		return b.errf("delete %s %q: no such entry", b.table, key)
	}
	for t, entries := range b.tables {
		for k, fields := range entries {
			for f, vals := range fields {
				for _, tt := range refTables(t, f) {
					if tt == b.table && contains(vals, key) {
						return b.errf("delete %s %q: entry is used by %s %q", b.table, key, t, k)
					}
				}
			}
		}
	}
	delete(b.tables[b.table], key)
	if b.table == "firewall policy" {
		b.order = remove(b.order, key)
	}
	if b.table == "firewall shaping-policy" {
		b.qosOrder = remove(b.qosOrder, key)
	}
	b.stepped()
	return nil
}

func (b *Box) move(a, where, c string) error {
	if err := b.owns(a); err != nil {
		return err
	}
	order := &b.order
	if b.table == "firewall shaping-policy" {
		order = &b.qosOrder
	}
	if (where != "before" && where != "after") || a == c || index(*order, a) < 0 || index(*order, c) < 0 {
		return b.errf("move %s %s %s: no such policy", a, where, c)
	}
	*order = remove(*order, a)
	i := index(*order, c)
	if where == "after" {
		i++
	}
	*order = append((*order)[:i], append([]string{a}, (*order)[i:]...)...)
	b.stepped()
	return nil
}

// Owned implements backends.BoxModel: turnwall's entries, and the policy
// list with the box's own policies as anchors.
func (b *Box) Owned() string { return b.canonical(true) }

// Foreign implements backends.BoxModel.
func (b *Box) Foreign() string { return b.canonical(false) }

// Fields whose values are a set (their order means nothing to FortiOS).
var setFields = map[string]bool{"member": true, "srcintf": true, "dstintf": true, "srcaddr": true, "dstaddr": true,
	"srcaddr6": true, "dstaddr6": true, "service": true, "tcp-portrange": true, "udp-portrange": true}

func (b *Box) canonical(owned bool) string {
	var sb strings.Builder
	tables := make([]string, 0, len(b.tables))
	for t := range b.tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		keys := make([]string, 0, len(b.tables[t]))
		for k := range b.tables[t] {
			if b.owned(t, k) == owned {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fields := b.tables[t][k]
			names := make([]string, 0, len(fields))
			for f := range fields {
				names = append(names, f)
			}
			sort.Strings(names)
			for _, f := range names {
				v := append([]string(nil), fields[f]...)
				if setFields[f] {
					sort.Strings(v)
				}
				fmt.Fprintf(&sb, "%s | %s | %s = %q\n", t, k, f, v)
			}
		}
	}
	// The policy lists: the box's own policies in order, and (for the
	// owned view) turnwall's with the box policy each follows.
	for _, l := range []struct {
		table, label string
		order        []string
	}{{"firewall policy", "order", b.order}, {"firewall shaping-policy", "shaping order", b.qosOrder}} {
		anchor := "top"
		for _, id := range l.order {
			if b.owned(l.table, id) {
				if owned {
					fmt.Fprintf(&sb, "%s %s after %s\n", l.label, id, anchor)
				}
				anchor = id
				continue
			}
			if !owned {
				fmt.Fprintf(&sb, "%s %s\n", l.label, id)
			}
			anchor = "box " + id
		}
	}
	return sb.String()
}

// Config implements backends.BoxModel: a snapshot that decides packets.
func (b *Box) Config() backends.Config {
	c := &boxConfig{b: b, order: append([]string(nil), b.order...), qosOrder: append([]string(nil), b.qosOrder...),
		tables: map[string]map[string]map[string][]string{}}
	for t, entries := range b.tables {
		c.tables[t] = map[string]map[string][]string{}
		for k, f := range entries {
			c.tables[t][k] = f // entries are replaced, never changed in place
		}
	}
	return c
}

type boxConfig struct {
	b        *Box
	order    []string
	qosOrder []string
	tables   map[string]map[string]map[string][]string
}

// QoS implements backends.QoSConfig as FortiOS applies shaping policies:
// the session (the reverse of a reply) takes the first enabled shaping
// policy that matches it; its packets get diffservcode-forward when
// diffserv-forward is on, its replies diffservcode-rev when
// diffserv-reverse is on. The class and source are those turnwall's
// comment names ("turnwall qos SOURCE CLASS: ...").
func (c *boxConfig) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	out := backends.QoSDecision{DSCP: -1}
	s := pkt
	if reply {
		s = pkt.Reverse()
	}
	s.DstHost = ""
	for _, id := range c.qosOrder {
		p := c.tables["firewall shaping-policy"][id]
		if one(p, "status") == "disable" || !c.matches(p, s) {
			continue
		}
		on, code := "diffserv-forward", "diffservcode-forward"
		if reply {
			on, code = "diffserv-reverse", "diffservcode-rev"
		}
		if one(p, on) != "enable" {
			return out
		}
		v, err := strconv.ParseUint(one(p, code), 2, 8)
		if err != nil {
			return out
		}
		out.DSCP = int(v)
		if w := strings.SplitN(one(p, "comment"), " ", 5); len(w) >= 4 && w[0] == "turnwall" && w[1] == "qos" {
			out.Source, _ = unescape(w[2])
			out.Class, _ = unescape(strings.TrimSuffix(w[3], ":"))
		}
		return out
	}
	return out
}

// Decide walks the policy list and takes the first enabled policy that
// matches; with none, FortiOS's implicit deny.
func (c *boxConfig) Decide(pkt ir.Packet) backends.Decision {
	for _, id := range c.order {
		p := c.tables["firewall policy"][id]
		if one(p, "status") == "disable" || !c.matches(p, pkt) {
			continue
		}
		d := backends.Decision{Action: ir.Deny, Rule: one(p, "name")}
		if one(p, "action") == "accept" {
			d.Action = ir.Allow
		}
		if cm := one(p, "comments"); strings.HasPrefix(cm, "turnwall ") {
			src, _, _ := strings.Cut(strings.TrimPrefix(cm, "turnwall "), " ")
			if s, err := unescape(src); err == nil && src != "default:" {
				d.Source = s
			}
		}
		return d
	}
	return backends.Decision{Action: ir.Deny}
}

func one(f map[string][]string, name string) string {
	if v := f[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c *boxConfig) matches(p map[string][]string, pkt ir.Packet) bool {
	if !c.onIntf(p["srcintf"], pkt.FromZone) || !c.onIntf(p["dstintf"], pkt.ToZone) {
		return false
	}
	src, dst, v := p["srcaddr"], p["dstaddr"], "4"
	if !pkt.Src.Is4() {
		src, dst, v = p["srcaddr6"], p["dstaddr6"], "6"
	}
	if !c.addrIn(v, src, pkt.Src, "", 0) || !c.addrIn(v, dst, pkt.Dst, pkt.DstHost, 0) {
		return false
	}
	for _, s := range p["service"] {
		if c.svcIn(s, pkt, 0) {
			return true
		}
	}
	return false
}

func (c *boxConfig) onIntf(ifs []string, zone string) bool {
	if zone == "" {
		return true
	}
	for _, i := range ifs {
		if i == "any" || contains(c.b.zones[zone], i) {
			return true
		}
	}
	return false
}

func (c *boxConfig) addrIn(v string, names []string, a netip.Addr, host string, depth int) bool {
	if depth > 4 {
		return false
	}
	suffix := ""
	if v == "6" {
		suffix = "6"
	}
	for _, n := range names {
		switch n {
		case "all":
			return true
		case "none":
			continue
		}
		if e, ok := c.tables["firewall address"+suffix][n]; ok {
			switch {
			case one(e, "type") == "fqdn":
				if host != "" && host == one(e, "fqdn") {
					return true
				}
			case v == "4":
				if pr, ok := boxSubnet(e["subnet"]); ok && pr.Contains(a) {
					return true
				}
			default:
				if pr, err := netip.ParsePrefix(one(e, "ip6")); err == nil && pr.Contains(a) {
					return true
				}
			}
			continue
		}
		if e, ok := c.tables["firewall addrgrp"+suffix][n]; ok {
			if c.addrIn(v, e["member"], a, host, depth+1) {
				return true
			}
			continue
		}
		if e, ok := c.tables["system external-resource"][n]; ok && one(e, "type") == "address" {
			for _, pr := range c.b.feeds[one(e, "resource")] {
				if pr.Contains(a) {
					return true
				}
			}
		}
	}
	return false
}

// subnets caches parsed "ADDRESS MASK" pairs: a box with tens of
// thousands of addresses decides many packets.
var subnets sync.Map

func subnetOf(addr, mask string) (netip.Prefix, bool) {
	k := addr + " " + mask
	if v, ok := subnets.Load(k); ok {
		pr := v.(netip.Prefix)
		return pr, pr.IsValid()
	}
	pr, err := parseSubnet(addr, mask)
	if err != nil {
		pr = netip.Prefix{}
	}
	subnets.Store(k, pr)
	return pr, pr.IsValid()
}

// boxSubnet reads `set subnet ADDRESS MASK` or `set subnet ADDRESS/BITS`.
func boxSubnet(s []string) (netip.Prefix, bool) {
	switch len(s) {
	case 2:
		return subnetOf(s[0], s[1])
	case 1:
		pr, err := netip.ParsePrefix(s[0])
		return pr.Masked(), err == nil && pr.Addr().Is4()
	}
	return netip.Prefix{}, false
}

var builtinServices = map[string][]string{
	"HTTPS": {"tcp-portrange", "443"},
	"HTTP":  {"tcp-portrange", "80"},
	"DNS":   {"tcp-portrange", "53", "udp-portrange", "53"},
}

func (c *boxConfig) svcIn(name string, pkt ir.Packet, depth int) bool {
	if name == "ALL" {
		return true
	}
	if depth > 4 {
		return false
	}
	if g, ok := c.tables["firewall service group"][name]; ok {
		for _, m := range g["member"] {
			if c.svcIn(m, pkt, depth+1) {
				return true
			}
		}
		return false
	}
	e, ok := c.tables["firewall service custom"][name]
	if b, builtin := builtinServices[name]; builtin {
		e, ok = map[string][]string{}, true
		for i := 0; i < len(b); i += 2 {
			e[b[i]] = []string{b[i+1]}
		}
	}
	if !ok {
		return false
	}
	field := "udp-portrange"
	switch pkt.Proto {
	case ir.TCP:
		field = "tcp-portrange"
	case ir.UDP:
	default:
		return false
	}
	for _, item := range e[field] {
		r, err := parsePortItem(item)
		if err == nil && int(pkt.DstPort) >= r.dlo && int(pkt.DstPort) <= r.dhi && int(pkt.SrcPort) >= r.slo && int(pkt.SrcPort) <= r.shi {
			return true
		}
	}
	return false
}

// splitCLI splits a CLI line into words and double-quoted strings.
func splitCLI(line string) ([]string, error) {
	if strings.ContainsAny(line, "\\?'\t\r") {
		return nil, fmt.Errorf("character the CLI would interpret in %q", line)
	}
	var out []string
	rest := strings.TrimSpace(line)
	for rest != "" {
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated string in %q", line)
			}
			out = append(out, rest[1:1+end])
			rest = rest[2+end:]
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			out = append(out, rest[:end])
			rest = rest[end:]
		}
		rest = strings.TrimLeft(rest, " ")
	}
	return out, nil
}

func contains(list []string, v string) bool { return index(list, v) >= 0 }

func index(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

func remove(list []string, v string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
