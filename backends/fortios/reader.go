package fortios

// The reader parses FortiOS CLI text on its own: it shares no code with the
// emitter (plan.go, write.go, names.go), so that a mistake in one is caught by
// the other. It accepts the statements turnwall writes and rejects anything
// else with the file and line.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Reader implements backends.Traceable.
func (Backend) Reader() backends.Reader { return cliReader{} }

type cliReader struct{}

// fgtAddr is one entry of an address table: a subnet, an FQDN, or a group.
type fgtAddr struct {
	kind     string // "ipmask", "ipprefix", "fqdn", "group", "feed"
	prefix   netip.Prefix
	fqdn     string
	members  []string
	prefixes []netip.Prefix // a feed's, from its file
	line     int
}

// fgtPortRange is one tcp-portrange/udp-portrange item.
type fgtPortRange struct{ dlo, dhi, slo, shi int }

type fgtService struct {
	group   bool
	members []string
	tcp     []fgtPortRange
	udp     []fgtPortRange
	line    int
}

type fgtPolicy struct {
	id                 uint64
	fields             map[string][]string // set fields; unset ones are absent
	enabled            bool
	isDefault          bool
	source             string
	fromZone, toZone   string // "" = any
	srcintf, dstintf   []string
	srcaddr, dstaddr   []string
	srcaddr6, dstaddr6 []string
	service            []string
	accept             bool
	line               int
}

// fgtConfig is the re-read configuration.
type fgtConfig struct {
	addr     map[string]*fgtAddr // config firewall address + addrgrp
	addr6    map[string]*fgtAddr // config firewall address6 + addrgrp6
	services map[string]*fgtService
	policies map[uint64]*fgtPolicy
	order    []uint64
	zoneIfs  map[string]map[string]bool // IR zone -> its interfaces, from the policy comments
	qos      fgtQoS                     // qos.go
}

// tables turnwall writes, and the fields each accepts in an edit block.
var tableFields = map[string]map[string]bool{
	"address":        {"type": true, "subnet": true, "fqdn": true},
	"address6":       {"type": true, "ip6": true, "fqdn": true},
	"addrgrp":        {"member": true, "comment": true},
	"addrgrp6":       {"member": true, "comment": true},
	"service custom": {"protocol": true, "tcp-portrange": true, "udp-portrange": true},
	"service group":  {"member": true, "comment": true},
	// config system external-resource: threat feeds of type address.
	"external-resource": {"type": true, "resource": true, "refresh-rate": true},
	"policy": {"name": true, "srcintf": true, "dstintf": true, "action": true, "srcaddr": true, "dstaddr": true,
		"srcaddr6": true, "dstaddr6": true, "status": true, "schedule": true, "service": true,
		"utm-status": true, "ssl-ssh-profile": true, "logtraffic": true, "comments": true},
	"shaper traffic-shaper": shaperFields,  // qos.go
	"shaping-policy":        shapingFields, // qos.go
}

// Fields `unset` may name.
var unsettable = map[string]bool{"srcaddr": true, "dstaddr": true, "srcaddr6": true, "dstaddr6": true}

type parser struct {
	feeds map[string][]netip.Prefix // feed file name -> its prefixes
	file  string
	cfg   *fgtConfig
	table string // "" at top level
	entry string // edit key, "" outside an edit
	line  int
	set   map[string][]string // fields of the open edit
	names map[string]string   // policy name -> "file:line" of its first use
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.line, fmt.Sprintf(format, args...))
}

func (cliReader) Read(files []backends.File) (backends.Config, error) {
	if len(files) == 0 || files[0].Name != "fortios.conf" {
		return nil, fmt.Errorf("expected fortios.conf first, then feeds/*.txt")
	}
	feeds := map[string][]netip.Prefix{}
	for _, f := range files[1:] {
		name, ok := strings.CutPrefix(f.Name, "feeds/")
		if !ok || strings.Contains(name, "/") {
			return nil, fmt.Errorf("%s: not a feed file (feeds/NAME.txt)", f.Name)
		}
		for i, line := range strings.Split(strings.TrimSuffix(string(f.Data), "\n"), "\n") {
			pr, err := netip.ParsePrefix(line)
			if err != nil || pr != pr.Masked() {
				return nil, fmt.Errorf("%s:%d: %q is not a prefix", f.Name, i+1, line)
			}
			feeds[name] = append(feeds[name], pr)
		}
	}
	cfg := &fgtConfig{
		addr: map[string]*fgtAddr{
			"all":  {kind: "all"},
			"none": {kind: "none"},
		},
		addr6: map[string]*fgtAddr{
			"all":  {kind: "all"},
			"none": {kind: "none"},
		},
		services: map[string]*fgtService{"ALL": {group: false}},
		policies: map[uint64]*fgtPolicy{},
		zoneIfs:  map[string]map[string]bool{},
	}
	p := &parser{file: files[0].Name, cfg: cfg, names: map[string]string{}, feeds: feeds}
	lines := strings.Split(string(files[0].Data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var stmts []int // indexes of non-empty lines
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			stmts = append(stmts, i)
		}
	}
	transaction := false
	for k, i := range stmts {
		p.line = i + 1
		words, err := p.tokens(lines[i])
		if err != nil {
			return nil, err
		}
		if len(words) >= 2 && words[0] == "execute" && words[1] == "config-transaction" {
			switch {
			case len(words) == 3 && words[2] == "start" && k == 0:
				transaction = true
			case len(words) == 3 && words[2] == "commit" && k == len(stmts)-1 && transaction && p.table == "":
				transaction = false
			default:
				return nil, p.errf("unexpected %q: a workspace transaction starts on the first line and commits on the last", strings.Join(words, " "))
			}
			continue
		}
		if err := p.statement(words); err != nil {
			return nil, err
		}
	}
	if p.table != "" {
		return nil, p.errf("config firewall %s is not closed with end", p.table)
	}
	if transaction {
		return nil, p.errf("execute config-transaction start has no commit")
	}
	if err := cfg.checkQoS(); err != nil {
		return nil, fmt.Errorf("%s: %v", p.file, err)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("%s: %v", p.file, err)
	}
	return cfg, nil
}

// tokens splits a line into words and double-quoted strings. turnwall never
// writes a backslash, '?', a single quote or a tab: on a FortiGate they would
// escape, ask for help, quote or complete, so the reader refuses them.
func (p *parser) tokens(line string) ([]string, error) {
	if strings.ContainsAny(line, "\\?'\t\r") {
		return nil, p.errf("character the FortiOS CLI would interpret (\\ ? ' tab or CR) in %q", line)
	}
	var out []string
	rest := strings.TrimLeft(line, " ")
	for rest != "" {
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, p.errf("unterminated string in %q", line)
			}
			out = append(out, rest[1:1+end])
			rest = rest[2+end:]
			if rest != "" && rest[0] != ' ' {
				return nil, p.errf("string not followed by a space in %q", line)
			}
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			word := rest[:end]
			if strings.ContainsRune(word, '"') {
				return nil, p.errf("stray quote in %q", line)
			}
			out = append(out, word)
			rest = rest[end:]
		}
		rest = strings.TrimLeft(rest, " ")
	}
	return out, nil
}

func (p *parser) statement(w []string) error {
	switch {
	case p.table == "":
		if len(w) == 3 && w[0] == "config" && w[1] == "system" && w[2] == "external-resource" {
			p.table = "external-resource"
			return nil
		}
		if len(w) >= 3 && w[0] == "config" && w[1] == "firewall" && w[2] != "external-resource" {
			table := strings.Join(w[2:], " ")
			if _, ok := tableFields[table]; ok {
				p.table = table
				return nil
			}
		}
		return p.errf("unknown statement %q", strings.Join(w, " "))
	case p.entry == "":
		switch {
		case len(w) == 2 && w[0] == "edit":
			p.entry = w[1]
			p.set = map[string][]string{}
			if p.table == "policy" {
				if _, err := strconv.ParseUint(w[1], 10, 32); err != nil || w[1] == "0" {
					return p.errf("policy id %q is not a fixed id", w[1])
				}
			}
			return nil
		case len(w) == 1 && w[0] == "end":
			p.table = ""
			return nil
		case len(w) == 4 && w[0] == "move" && p.table == "policy":
			return p.move(w)
		case len(w) == 4 && w[0] == "move" && p.table == "shaping-policy":
			return p.moveShaping(w)
		}
		return p.errf("unknown statement %q in config firewall %s", strings.Join(w, " "), p.table)
	}
	switch {
	case len(w) >= 3 && w[0] == "set" && tableFields[p.table][w[1]]:
		p.set[w[1]] = w[2:]
		return nil
	case len(w) >= 3 && w[0] == "append" && w[1] == "member" && len(p.set["member"]) > 0:
		p.set["member"] = append(p.set["member"], w[2:]...)
		return nil
	case len(w) == 2 && w[0] == "unset" && (p.table == "policy" || p.table == "shaping-policy") && unsettable[w[1]],
		len(w) == 2 && w[0] == "unset" && p.table == "shaping-policy" && w[1] == "traffic-shaper-reverse":
		delete(p.set, w[1])
		return nil
	case len(w) == 1 && w[0] == "next":
		err := p.finish()
		p.entry, p.set = "", nil
		return err
	}
	return p.errf("unknown statement %q in edit %q of config firewall %s", strings.Join(w, " "), p.entry, p.table)
}

// one returns a field that takes exactly one value.
func (p *parser) one(field string) (string, bool, error) {
	v, ok := p.set[field]
	if !ok {
		return "", false, nil
	}
	if len(v) != 1 {
		return "", true, p.errf("set %s takes one value, got %d", field, len(v))
	}
	return v[0], true, nil
}

func (p *parser) need(field string) (string, error) {
	v, ok, err := p.one(field)
	if err == nil && !ok {
		err = p.errf("edit %q of config firewall %s has no %s", p.entry, p.table, field)
	}
	return v, err
}

// finish builds the object of the edit block closed by `next`.
func (p *parser) finish() error {
	name := p.entry
	switch p.table {
	case "address", "address6":
		tbl := p.cfg.addr
		want := "ipmask"
		if p.table == "address6" {
			tbl, want = p.cfg.addr6, "ipprefix"
		}
		if _, dup := tbl[name]; dup {
			return p.errf("%s %q defined twice", p.table, name)
		}
		// The type defaults to ipmask (address) and ipprefix (address6).
		typ, hasType, err := p.one("type")
		if err != nil {
			return err
		}
		fieldsBut := len(p.set)
		if !hasType {
			typ = want
			fieldsBut++
		}
		a := &fgtAddr{kind: typ, line: p.line}
		switch typ {
		case "fqdn":
			if a.fqdn, err = p.need("fqdn"); err != nil {
				return err
			}
			if fieldsBut != 2 {
				return p.errf("fqdn address %q has fields of another type", name)
			}
		case want:
			if want == "ipmask" {
				v := p.set["subnet"]
				if len(v) < 1 || len(v) > 2 || fieldsBut != 2 {
					return p.errf("address %q: expected set subnet ADDRESS MASK or ADDRESS/BITS", name)
				}
				if len(v) == 1 {
					pr, perr := netip.ParsePrefix(v[0])
					if perr != nil || !pr.Addr().Is4() {
						return p.errf("address %q: %q is not an IPv4 prefix", name, v[0])
					}
					a.prefix = pr.Masked()
				} else if a.prefix, err = parseSubnet(v[0], v[1]); err != nil {
					return p.errf("address %q: %v", name, err)
				}
			} else {
				v, err := p.need("ip6")
				if err != nil {
					return err
				}
				pr, perr := netip.ParsePrefix(v)
				if perr != nil || !pr.Addr().Is6() || pr.Addr().Is4In6() || fieldsBut != 2 {
					return p.errf("address6 %q: %q is not an IPv6 prefix", name, v)
				}
				a.prefix = pr.Masked()
			}
		default:
			return p.errf("%s %q: type %q is not one turnwall writes", p.table, name, typ)
		}
		tbl[name] = a
	case "addrgrp", "addrgrp6":
		tbl := p.cfg.addr
		if p.table == "addrgrp6" {
			tbl = p.cfg.addr6
		}
		if _, dup := tbl[name]; dup {
			return p.errf("%s %q: the name is taken", p.table, name)
		}
		members, ok := p.set["member"]
		if !ok {
			return p.errf("%s %q has no member", p.table, name)
		}
		tbl[name] = &fgtAddr{kind: "group", members: members, line: p.line}
	case "service custom":
		if _, dup := p.cfg.services[name]; dup {
			return p.errf("service %q: the name is taken", name)
		}
		if proto, err := p.need("protocol"); err != nil || proto != "TCP/UDP/SCTP" {
			return p.errf("service %q: expected set protocol TCP/UDP/SCTP", name)
		}
		s := &fgtService{line: p.line}
		for field, dst := range map[string]*[]fgtPortRange{"tcp-portrange": &s.tcp, "udp-portrange": &s.udp} {
			for _, item := range p.set[field] {
				r, err := parsePortItem(item)
				if err != nil {
					return p.errf("service %q: %s %q: %v", name, field, item, err)
				}
				*dst = append(*dst, r)
			}
		}
		if len(s.tcp) == 0 && len(s.udp) == 0 {
			return p.errf("service %q has no port range", name)
		}
		p.cfg.services[name] = s
	case "service group":
		if _, dup := p.cfg.services[name]; dup {
			return p.errf("service group %q: the name is taken", name)
		}
		members, ok := p.set["member"]
		if !ok {
			return p.errf("service group %q has no member", name)
		}
		p.cfg.services[name] = &fgtService{group: true, members: members, line: p.line}
	case "external-resource":
		return p.finishFeed(name)
	case "policy":
		return p.finishPolicy()
	case "shaper traffic-shaper":
		return p.finishShaper()
	case "shaping-policy":
		return p.finishShaping()
	}
	return nil
}

// finishFeed reads a threat feed of type address: its URL names its file,
// whose prefixes it matches (in either family's policy fields).
func (p *parser) finishFeed(name string) error {
	if _, dup := p.cfg.addr[name]; dup {
		return p.errf("external-resource %q: the name is taken", name)
	}
	if typ, err := p.need("type"); err != nil || typ != "address" {
		return p.errf("external-resource %q: expected set type address", name)
	}
	url, err := p.need("resource")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(url, "https://") {
		return p.errf("external-resource %q: resource %q is not https", name, url)
	}
	file := url[strings.LastIndexByte(url, '/')+1:]
	prs, ok := p.feeds[file]
	if !ok {
		return p.errf("external-resource %q: no feed file feeds/%s beside the configuration", name, file)
	}
	a := &fgtAddr{kind: "feed", prefixes: prs, line: p.line}
	p.cfg.addr[name], p.cfg.addr6[name] = a, a
	return nil
}

func (p *parser) finishPolicy() error {
	id, _ := strconv.ParseUint(p.entry, 10, 32)
	if _, dup := p.cfg.policies[id]; dup {
		return p.errf("policy %d edited twice", id)
	}
	pol := &fgtPolicy{id: id, fields: p.set, line: p.line}
	name, err := p.need("name")
	if err != nil {
		return err
	}
	if prev, dup := p.names[strings.ToLower(name)]; dup {
		return p.errf("policy name %q is already used at %s; FortiOS names are unique", name, prev)
	}
	p.names[strings.ToLower(name)] = fmt.Sprintf("%s:%d", p.file, p.line)
	for _, f := range []string{"srcintf", "dstintf", "service"} {
		if len(p.set[f]) == 0 {
			return p.errf("policy %d has no %s", id, f)
		}
	}
	pol.srcintf, pol.dstintf, pol.service = p.set["srcintf"], p.set["dstintf"], p.set["service"]
	pol.srcaddr, pol.dstaddr = p.set["srcaddr"], p.set["dstaddr"]
	pol.srcaddr6, pol.dstaddr6 = p.set["srcaddr6"], p.set["dstaddr6"]
	// FortiOS: sources and destinations of one IP version go together.
	if (len(pol.srcaddr) == 0) != (len(pol.dstaddr) == 0) || (len(pol.srcaddr6) == 0) != (len(pol.dstaddr6) == 0) {
		return p.errf("policy %d: srcaddr/dstaddr and srcaddr6/dstaddr6 must be set in pairs", id)
	}
	if len(pol.srcaddr) == 0 && len(pol.srcaddr6) == 0 {
		return p.errf("policy %d has no address", id)
	}
	action, err := p.need("action")
	if err != nil {
		return err
	}
	switch action {
	case "accept":
		pol.accept = true
	case "deny":
	default:
		return p.errf("policy %d: action %q", id, action)
	}
	status, err := p.need("status")
	if err != nil {
		return err
	}
	switch status {
	case "enable":
		pol.enabled = true
	case "disable":
	default:
		return p.errf("policy %d: status %q", id, status)
	}
	if sched, err := p.need("schedule"); err != nil || sched != "always" {
		return p.errf("policy %d: expected set schedule \"always\"", id)
	}
	if log, err := p.need("logtraffic"); err != nil || (log != "all" && log != "disable") {
		return p.errf("policy %d: expected set logtraffic all or disable", id)
	}
	if prof, ok, err := p.one("ssl-ssh-profile"); err != nil {
		return err
	} else if ok {
		if utm, _, _ := p.one("utm-status"); utm != "enable" || prof == "" {
			return p.errf("policy %d: ssl-ssh-profile needs utm-status enable", id)
		}
	} else if _, ok := p.set["utm-status"]; ok {
		return p.errf("policy %d: utm-status without a profile", id)
	}
	comment, err := p.need("comments")
	if err != nil {
		return err
	}
	if err := pol.parseComment(comment); err != nil {
		return p.errf("policy %d: %v", id, err)
	}
	p.cfg.policies[id] = pol
	p.cfg.order = append(p.cfg.order, id)
	return nil
}

// parseComment reads "turnwall SOURCE FROM->TO: TEXT" or "turnwall default: TEXT".
func (pol *fgtPolicy) parseComment(c string) error {
	words := strings.SplitN(c, " ", 4)
	if len(words) < 2 || words[0] != "turnwall" {
		return fmt.Errorf("comment %q does not trace to the policy", c)
	}
	if words[1] == "default:" {
		pol.isDefault = true
		return nil
	}
	if len(words) < 3 || !strings.HasSuffix(words[2], ":") {
		return fmt.Errorf("comment %q has no zones", c)
	}
	var err error
	if pol.source, err = unescape(words[1]); err != nil {
		return err
	}
	zones := strings.TrimSuffix(words[2], ":")
	gt := strings.IndexByte(zones, '>')
	if gt < 1 || zones[gt-1] != '-' || strings.IndexByte(zones[gt+1:], '>') >= 0 {
		return fmt.Errorf("comment %q: zones are not FROM->TO", c)
	}
	if pol.fromZone, err = zoneOf(zones[:gt-1]); err != nil {
		return err
	}
	pol.toZone, err = zoneOf(zones[gt+1:])
	return err
}

func zoneOf(tok string) (string, error) {
	if tok == "*" {
		return "", nil
	}
	z, err := unescape(tok)
	if err == nil && z == "" {
		err = fmt.Errorf("empty zone name")
	}
	return z, err
}

// unescape reverses %XX escapes.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

func (p *parser) move(w []string) error {
	a, err1 := strconv.ParseUint(w[1], 10, 32)
	b, err2 := strconv.ParseUint(w[3], 10, 32)
	if err1 != nil || err2 != nil || (w[2] != "after" && w[2] != "before") {
		return p.errf("expected move ID after|before ID")
	}
	order := p.cfg.order
	ia, ib := -1, -1
	for i, id := range order {
		if id == a {
			ia = i
		}
		if id == b {
			ib = i
		}
	}
	if ia < 0 || ib < 0 || a == b {
		return p.errf("move %d %s %d: no such policy", a, w[2], b)
	}
	order = append(order[:ia], order[ia+1:]...)
	for i, id := range order {
		if id == b {
			ib = i
		}
	}
	if w[2] == "after" {
		ib++
	}
	order = append(order[:ib], append([]uint64{a}, order[ib:]...)...)
	p.cfg.order = order
	return nil
}

// parseSubnet reads "10.20.0.0 255.255.0.0".
func parseSubnet(addr, mask string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(addr)
	m, err2 := netip.ParseAddr(mask)
	if err != nil || err2 != nil || !a.Is4() || !m.Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %s is not an IPv4 address and mask", addr, mask)
	}
	mb := m.As4()
	bits := 0
	v := uint32(mb[0])<<24 | uint32(mb[1])<<16 | uint32(mb[2])<<8 | uint32(mb[3])
	for v&(1<<31) != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return netip.Prefix{}, fmt.Errorf("mask %s is not contiguous", mask)
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parsePortItem reads "dlo[-dhi][:slo[-shi]]".
func parsePortItem(item string) (fgtPortRange, error) {
	dst, src, hasSrc := strings.Cut(item, ":")
	var r fgtPortRange
	var err error
	if r.dlo, r.dhi, err = parsePorts(dst); err != nil {
		return r, err
	}
	r.slo, r.shi = 0, 65535
	if hasSrc {
		if r.slo, r.shi, err = parsePorts(src); err != nil {
			return r, err
		}
	}
	return r, nil
}

func parsePorts(s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	b := a
	if err == nil && isRange {
		b, err = strconv.Atoi(hi)
	}
	if err != nil || a < 0 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("%q is not a port range", s)
	}
	return a, b, nil
}

// check resolves every reference and learns the zones' interfaces from the
// rule policies: each names its IR zones in the comment and lists the zones'
// interfaces in srcintf/dstintf.
func (c *fgtConfig) check() error {
	for _, tbl := range []map[string]*fgtAddr{c.addr, c.addr6} {
		for name, a := range tbl {
			for _, m := range a.members {
				if tbl[m] == nil {
					return fmt.Errorf("line %d: group %q: member %q is not an address of its family", a.line, name, m)
				}
				if tbl[m].kind == "group" {
					// One level of nesting: the member group holds addresses.
					for _, mm := range tbl[m].members {
						if tbl[mm] == nil || tbl[mm].kind == "group" {
							return fmt.Errorf("line %d: group %q: member group %q holds %q, which is not an address", a.line, name, m, mm)
						}
					}
				}
			}
		}
	}
	for name, s := range c.services {
		for _, m := range s.members {
			if c.services[m] == nil || c.services[m].group || m == "ALL" {
				return fmt.Errorf("line %d: service group %q: member %q is not a custom service", s.line, name, m)
			}
		}
	}
	for _, id := range c.order {
		pol := c.policies[id]
		for _, ref := range []struct {
			tbl   map[string]*fgtAddr
			names []string
		}{{c.addr, pol.srcaddr}, {c.addr, pol.dstaddr}, {c.addr6, pol.srcaddr6}, {c.addr6, pol.dstaddr6}} {
			for _, n := range ref.names {
				if ref.tbl[n] == nil {
					return fmt.Errorf("line %d: policy %d: unknown address %q", pol.line, id, n)
				}
			}
		}
		for _, n := range pol.service {
			if c.services[n] == nil {
				return fmt.Errorf("line %d: policy %d: unknown service %q", pol.line, id, n)
			}
		}
		if pol.isDefault {
			continue
		}
		for _, side := range []struct {
			zone string
			ifs  []string
		}{{pol.fromZone, pol.srcintf}, {pol.toZone, pol.dstintf}} {
			any := len(side.ifs) == 1 && side.ifs[0] == "any"
			if side.zone == "" {
				if !any {
					return fmt.Errorf("line %d: policy %d: any zone but interfaces %v", pol.line, id, side.ifs)
				}
				continue
			}
			set := map[string]bool{}
			for _, i := range side.ifs {
				if i == "any" {
					return fmt.Errorf("line %d: policy %d: zone %q on interface any", pol.line, id, side.zone)
				}
				set[i] = true
			}
			if known, ok := c.zoneIfs[side.zone]; ok && !sameSet(known, set) {
				return fmt.Errorf("line %d: policy %d: zone %q has interfaces %v here and others elsewhere", pol.line, id, side.zone, side.ifs)
			}
			c.zoneIfs[side.zone] = set
		}
	}
	return nil
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// Decide walks the policies in list order and returns the first enabled one
// that matches; with none, FortiOS's implicit deny (policy 0) applies.
//
// As on a FortiGate, the packet's IP version picks the address fields:
// srcaddr/dstaddr for IPv4, srcaddr6/dstaddr6 for IPv6. The version is the
// source's: a packet whose destination has the other version cannot exist,
// and it can then match only "all" or an FQDN by name, which is also the
// IR's answer (it matches no rule unless it names an FQDN).
func (c *fgtConfig) Decide(pkt ir.Packet) backends.Decision {
	for _, id := range c.order {
		pol := c.policies[id]
		if !pol.enabled || !c.matches(pol, pkt) {
			continue
		}
		d := backends.Decision{Action: ir.Deny}
		if pol.accept {
			d.Action = ir.Allow
		}
		if !pol.isDefault {
			d.Rule, d.Source = pol.fields["name"][0], pol.source
		}
		return d
	}
	return backends.Decision{Action: ir.Deny}
}

func (c *fgtConfig) matches(pol *fgtPolicy, pkt ir.Packet) bool {
	if !c.onInterface(pol.srcintf, pkt.FromZone) || !c.onInterface(pol.dstintf, pkt.ToZone) {
		return false
	}
	tbl, srcList, dstList := c.addr, pol.srcaddr, pol.dstaddr
	if !pkt.Src.Is4() {
		tbl, srcList, dstList = c.addr6, pol.srcaddr6, pol.dstaddr6
	}
	if !addrMatch(tbl, srcList, pkt.Src, "") || !addrMatch(tbl, dstList, pkt.Dst, pkt.DstHost) {
		return false
	}
	for _, s := range pol.service {
		if c.serviceMatch(s, pkt) {
			return true
		}
	}
	return false
}

// onInterface: "any" takes every interface; a packet whose zone is not known
// ("" in the packet) is not checked, as in the IR; otherwise the packet
// arrives on one of its zone's interfaces. A zone no rule policy names has no
// interface here, and only "any" policies take its packets.
func (c *fgtConfig) onInterface(ifs []string, zone string) bool {
	if zone == "" {
		return true
	}
	for _, i := range ifs {
		if i == "any" || c.zoneIfs[zone][i] {
			return true
		}
	}
	return false
}

func addrMatch(tbl map[string]*fgtAddr, names []string, a netip.Addr, host string) bool {
	for _, n := range names {
		e := tbl[n]
		switch e.kind {
		case "all":
			return true
		case "group":
			if addrMatch(tbl, e.members, a, host) {
				return true
			}
		case "fqdn":
			// A FortiGate resolves the name; the IR matches a destination whose
			// client-side name is the FQDN.
			if host != "" && host == e.fqdn {
				return true
			}
		case "ipmask", "ipprefix":
			if e.prefix.Contains(a) {
				return true
			}
		case "feed":
			for _, pr := range e.prefixes {
				if pr.Contains(a) {
					return true
				}
			}
		}
		// "none" matches no address (Fortinet: a policy with it never matches,
		// https://community.fortinet.com/t5/FortiGate/Technical-Tip-Behavior-of-the-firewall-policy-if-Source-is-set/ta-p/406462).
	}
	return false
}

func (c *fgtConfig) serviceMatch(name string, pkt ir.Packet) bool {
	if name == "ALL" {
		return true
	}
	s := c.services[name]
	if s.group {
		for _, m := range s.members {
			if c.serviceMatch(m, pkt) {
				return true
			}
		}
		return false
	}
	ranges := s.udp
	if pkt.Proto == ir.TCP {
		ranges = s.tcp
	} else if pkt.Proto != ir.UDP {
		return false
	}
	d, sp := int(pkt.DstPort), int(pkt.SrcPort)
	for _, r := range ranges {
		if d >= r.dlo && d <= r.dhi && sp >= r.slo && sp <= r.shi {
			return true
		}
	}
	return false
}
