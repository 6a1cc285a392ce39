package asa

// The reader re-reads asa.cfg as an ASA would take it, line by line, without
// any code from the emitter: it rebuilds objects, groups and ACLs, follows the
// access-group lines, and decides a packet by the ACL bound to an interface of
// the packet's ingress zone. It accepts the subset of ASA syntax turnwall
// writes and rejects anything else with the line number. It also enforces the
// rules that make the change safe on a live device: an object, group or ACL
// is never modified once something uses it, and an ACL that is bound is never
// cleared.

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// Reader implements backends.Traceable.
func (Backend) Reader() backends.Reader { return cfgReader{} }

type cfgReader struct{}

// Read implements backends.Reader.
func (cfgReader) Read(files []backends.File) (backends.Config, error) {
	if len(files) != 1 {
		return nil, fmt.Errorf("expected one file, got %d", len(files))
	}
	if bytes.HasPrefix(files[0].Data, []byte(changeHeader)) {
		return readPlacement(files[0])
	}
	rd := &parser{
		file:    files[0].Name,
		kinds:   map[string]string{},
		objs:    map[string]*addrSet{},
		svcs:    map[string]*svcSet{},
		inUse:   map[string]int{},
		acls:    map[string]*accessList{},
		binding: map[string]string{},
		zones:   map[string][]string{},
	}
	for i, line := range strings.Split(string(files[0].Data), "\n") {
		if err := rd.line(i+1, strings.TrimRight(line, "\r")); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", rd.file, i+1, err)
		}
	}
	if err := rd.finish(); err != nil {
		return nil, fmt.Errorf("%s: %v", rd.file, err)
	}
	if err := rd.finishQoS(); err != nil {
		return nil, fmt.Errorf("%s: %v", rd.file, err)
	}
	return &device{zones: rd.zones, binding: rd.binding, acls: rd.acls, qos: rd.qos}, nil
}

// addrSet is a network object or group flattened to what it matches.
type addrSet struct {
	prefixes []netip.Prefix
	ranges   [][2]netip.Addr
	hosts    []fqdnName
	any4     bool
	any6     bool
	members  int
}

type fqdnName struct {
	name string
	v6   bool
}

func (s *addrSet) add(o *addrSet) {
	s.prefixes = append(s.prefixes, o.prefixes...)
	s.ranges = append(s.ranges, o.ranges...)
	s.hosts = append(s.hosts, o.hosts...)
	s.any4 = s.any4 || o.any4
	s.any6 = s.any6 || o.any6
	s.members++
}

// match: a literal address matches by value; an FQDN object matches the
// name the client resolved (only as a destination: a packet carries no name
// for its source), in the object's address family.
func (s *addrSet) match(a netip.Addr, host string, dst bool) bool {
	if (s.any4 && a.Is4()) || (s.any6 && a.Is6()) {
		return true
	}
	for _, p := range s.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	for _, r := range s.ranges {
		if r[0].BitLen() == a.BitLen() && a.Compare(r[0]) >= 0 && a.Compare(r[1]) <= 0 {
			return true
		}
	}
	if dst && host != "" {
		for _, h := range s.hosts {
			if strings.EqualFold(h.name, host) && h.v6 == a.Is6() {
				return true
			}
		}
	}
	return false
}

// portOp is one operator of an ACE or service-object; op "" matches any port.
type portOp struct {
	op   string
	a, b uint16
}

func (o portOp) match(port uint16) bool {
	switch o.op {
	case "eq":
		return port == o.a
	case "neq":
		return port != o.a
	case "lt":
		return port < o.a
	case "gt":
		return port > o.a
	case "range":
		return port >= o.a && port <= o.b
	}
	return true
}

// svcEntry is one service-object (or an ACE's own protocol and ports).
type svcEntry struct {
	proto    string // ip, tcp, udp, tcp-udp
	src, dst portOp
}

func (e svcEntry) match(proto ir.Proto, sport, dport uint16) bool {
	switch e.proto {
	case "ip":
		return true
	case "tcp-udp":
		if proto != ir.TCP && proto != ir.UDP {
			return false
		}
	default:
		if e.proto != string(proto) {
			return false
		}
	}
	return e.src.match(sport) && e.dst.match(dport)
}

type svcSet struct{ entries []svcEntry }

type ace struct {
	permit   bool
	svc      []svcEntry
	src, dst *addrSet
	log      bool
}

// aclLine is a remark or an ACE; ASA numbers both as lines of the ACL.
type aclLine struct {
	remark *string
	ace    *ace
	at     int // line in the file
}

type accessList struct {
	name  string
	lines []aclLine
	bound int // interfaces it is bound to now
}

type parser struct {
	file string
	cur  int // line being read
	// mode is the object being defined by indented lines, if any.
	mode     string // "object network", "object-group network", "object-group service"
	modeName string

	kinds   map[string]string   // object/group name -> kind (one namespace)
	objs    map[string]*addrSet // network objects and groups
	svcs    map[string]*svcSet
	inUse   map[string]int // object/group name -> line of its first use
	acls    map[string]*accessList
	binding map[string]string   // lower-cased nameif -> ACL name
	bindAt  map[string]int      // lower-cased nameif -> line
	zones   map[string][]string // zone name -> nameifs, from the zone map comments
	zoneAt  map[string]int
	qos     *asaQoS // class-maps, policy-maps, priority queues (qos.go)
}

var (
	objectNameRE = lazyre.New(`^[A-Za-z0-9.!@#$%^&()\-_{}]{1,64}$`)
	aclNameRE    = lazyre.New(`^[\x21-\x3e\x40-\x7e]{1,241}$`) // printable, no space, no '?'
	nameifRE     = lazyre.New(`^[A-Za-z0-9._-]{1,48}$`)
	hostRE       = lazyre.New(`^[A-Za-z0-9._-]{1,253}$`)
	keywords     = map[string]bool{"any": true, "any4": true, "any6": true, "host": true, "object": true,
		"object-group": true, "interface": true, "range": true, "eq": true, "log": true}
)

func (rd *parser) line(n int, l string) error {
	rd.cur = n
	if strings.TrimSpace(l) == "" {
		return nil
	}
	if strings.HasPrefix(l, " ") {
		if rd.mode == "" {
			return fmt.Errorf("indented line %q outside an object definition", strings.TrimSpace(l))
		}
		return rd.sub(n, strings.Fields(l))
	}
	rd.mode, rd.modeName = "", ""
	if strings.HasPrefix(l, ":") {
		return rd.comment(n, l)
	}
	f := strings.Fields(l)
	switch {
	case len(f) == 3 && f[0] == "object" && f[1] == "network":
		return rd.define(n, "object network", f[2])
	case len(f) == 3 && f[0] == "object-group" && (f[1] == "network" || f[1] == "service"):
		return rd.define(n, "object-group "+f[1], f[2])
	case len(f) >= 3 && f[0] == "access-list" && f[2] == "remark":
		a, err := rd.editACL(n, f[1])
		if err != nil {
			return err
		}
		// The remark is the text after "remark " (ASA ignores trailing spaces).
		_, text, _ := strings.Cut(l, " remark")
		text = strings.TrimSpace(text)
		if len(text) > 100 {
			return fmt.Errorf("remark of %d characters; the ASA takes at most 100", len(text))
		}
		a.lines = append(a.lines, aclLine{remark: &text, at: n})
		return nil
	case len(f) >= 4 && f[0] == "access-list" && f[2] == "extended":
		a, err := rd.editACL(n, f[1])
		if err != nil {
			return err
		}
		e, err := rd.ace(n, f[3:])
		if err != nil {
			return err
		}
		a.lines = append(a.lines, aclLine{ace: e, at: n})
		return nil
	case len(f) == 5 && f[0] == "access-group" && f[2] == "in" && f[3] == "interface":
		return rd.bind(n, f[1], f[4])
	case len(f) == 4 && f[0] == "clear" && f[1] == "configure" && f[2] == "access-list":
		return rd.clear(f[3])
	case len(f) >= 2 && qosStatements[f[0]]:
		return rd.qosLine(n, f)
	}
	return fmt.Errorf("unknown statement %q", l)
}

// comment reads the zone map (": turnwall zone "NAME" interfaces IF...") and
// ignores every other comment line.
func (rd *parser) comment(n int, l string) error {
	rest, ok := strings.CutPrefix(l, ": turnwall zone ")
	if !ok {
		return nil
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return fmt.Errorf("zone map: zone name is not a quoted string: %v", err)
	}
	zone, _ := strconv.Unquote(q)
	ifs, ok := strings.CutPrefix(rest[len(q):], " interfaces ")
	if !ok {
		return fmt.Errorf("zone map: expected interfaces after the zone name")
	}
	if _, dup := rd.zones[zone]; dup {
		return fmt.Errorf("zone map: zone %q listed twice (line %d)", zone, rd.zoneAt[zone])
	}
	names := strings.Fields(ifs)
	if len(names) == 0 {
		return fmt.Errorf("zone map: zone %q has no interfaces", zone)
	}
	for _, i := range names {
		if !nameifRE.MatchString(i) {
			return fmt.Errorf("zone map: %q is not an interface name", i)
		}
	}
	if rd.zoneAt == nil {
		rd.zoneAt = map[string]int{}
	}
	rd.zones[zone], rd.zoneAt[zone] = names, n
	return nil
}

func checkObjectName(name string) error {
	if !objectNameRE.MatchString(name) {
		return fmt.Errorf("%q is not an ASA object name (64 characters: letters, digits, .!@#$%%^&()-_{})", name)
	}
	if keywords[strings.ToLower(name)] {
		return fmt.Errorf("%q is a keyword, not a usable object name", name)
	}
	return nil
}

// define opens an object or group for its indented lines.
func (rd *parser) define(n int, kind, name string) error {
	if err := checkObjectName(name); err != nil {
		return err
	}
	if k, ok := rd.kinds[name]; ok && k != kind {
		return fmt.Errorf("%s %s: the name is already a %s (objects and groups share one namespace)", kind, name, k)
	}
	if at, used := rd.inUse[name]; used {
		return fmt.Errorf("%s %s is in use since line %d; turnwall never edits a live object", kind, name, at)
	}
	if _, ok := rd.kinds[name]; !ok {
		rd.kinds[name] = kind
		if kind == "object-group service" {
			rd.svcs[name] = &svcSet{}
		} else {
			rd.objs[name] = &addrSet{}
		}
	}
	rd.mode, rd.modeName = kind, name
	return nil
}

// sub reads one indented line of the open object or group.
func (rd *parser) sub(n int, f []string) error {
	switch rd.mode {
	case "object network":
		o, err := rd.networkObject(f)
		if err != nil {
			return err
		}
		// An object holds one definition; a new one replaces it.
		rd.objs[rd.modeName] = o
		return nil
	case "object-group network":
		if len(f) < 2 || f[0] != "network-object" {
			return fmt.Errorf("object-group network %s: expected network-object, got %q", rd.modeName, strings.Join(f, " "))
		}
		m, err := rd.networkMember(f[1:])
		if err != nil {
			return err
		}
		rd.objs[rd.modeName].add(m)
		return nil
	case "object-group service":
		if len(f) < 2 || f[0] != "service-object" {
			return fmt.Errorf("object-group service %s: expected service-object, got %q", rd.modeName, strings.Join(f, " "))
		}
		e, err := serviceObject(f[1:])
		if err != nil {
			return err
		}
		rd.svcs[rd.modeName].entries = append(rd.svcs[rd.modeName].entries, e)
		return nil
	case "class-map", "policy-map":
		return rd.qosSub(n, f)
	}
	return fmt.Errorf("unexpected indented line")
}

// networkObject reads host A | subnet A M | subnet P/len | range A B | fqdn [v4|v6] NAME.
func (rd *parser) networkObject(f []string) (*addrSet, error) {
	o := &addrSet{members: 1}
	switch {
	case len(f) == 2 && f[0] == "host":
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, err
		}
		o.prefixes = []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}
	case len(f) == 3 && f[0] == "subnet":
		p, err := maskedPrefix(f[1], f[2])
		if err != nil {
			return nil, err
		}
		o.prefixes = []netip.Prefix{p}
	case len(f) == 2 && f[0] == "subnet":
		p, err := v6Prefix(f[1])
		if err != nil {
			return nil, err
		}
		o.prefixes = []netip.Prefix{p}
	case len(f) == 3 && f[0] == "range":
		lo, err1 := netip.ParseAddr(f[1])
		hi, err2 := netip.ParseAddr(f[2])
		if err1 != nil || err2 != nil || lo.BitLen() != hi.BitLen() || hi.Less(lo) {
			return nil, fmt.Errorf("bad range %s %s", f[1], f[2])
		}
		o.ranges = [][2]netip.Addr{{lo, hi}}
	case (len(f) == 2 || len(f) == 3) && f[0] == "fqdn":
		name, v6 := f[len(f)-1], false
		if len(f) == 3 {
			switch f[1] {
			case "v4":
			case "v6":
				v6 = true
			default:
				return nil, fmt.Errorf("fqdn: expected v4 or v6, got %q", f[1])
			}
		} // without v4/v6 the ASA assumes IPv4
		if !hostRE.MatchString(name) {
			return nil, fmt.Errorf("fqdn: %q is not a host name", name)
		}
		o.hosts = []fqdnName{{name: name, v6: v6}}
	default:
		return nil, fmt.Errorf("object network: unknown definition %q", strings.Join(f, " "))
	}
	return o, nil
}

// networkMember reads the arguments of network-object.
func (rd *parser) networkMember(f []string) (*addrSet, error) {
	switch {
	case len(f) == 2 && f[0] == "host":
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, err
		}
		return &addrSet{prefixes: []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}}, nil
	case len(f) == 2 && f[0] == "object":
		return rd.use(f[1], "object network")
	case len(f) == 2:
		p, err := maskedPrefix(f[0], f[1])
		if err != nil {
			return nil, err
		}
		return &addrSet{prefixes: []netip.Prefix{p}}, nil
	case len(f) == 1:
		p, err := v6Prefix(f[0])
		if err != nil {
			return nil, err
		}
		return &addrSet{prefixes: []netip.Prefix{p}}, nil
	}
	return nil, fmt.Errorf("network-object: unknown member %q", strings.Join(f, " "))
}

// use looks up an object or group for a reference and marks it in use: from
// now on it may not change.
func (rd *parser) use(name, kind string) (*addrSet, error) {
	if rd.kinds[name] != kind {
		if k := rd.kinds[name]; k != "" {
			return nil, fmt.Errorf("%s is a %s, not a %s", name, k, kind)
		}
		return nil, fmt.Errorf("%s %s is not defined before this line", kind, name)
	}
	o := rd.objs[name]
	if o.members == 0 {
		return nil, fmt.Errorf("%s %s is empty", kind, name)
	}
	rd.markUsed(name)
	return o, nil
}

func (rd *parser) markUsed(name string) {
	if _, ok := rd.inUse[name]; !ok {
		rd.inUse[name] = rd.cur
	}
}

// maskedPrefix reads an IPv4 address and a dotted mask.
func maskedPrefix(addr, mask string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address", addr)
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not a netmask", mask)
	}
	b := m.As4()
	bits := 0
	for i := 0; i < 32; i++ {
		if b[i/8]&(0x80>>(i%8)) == 0 {
			break
		}
		bits++
	}
	for i := bits; i < 32; i++ {
		if b[i/8]&(0x80>>(i%8)) != 0 {
			return netip.Prefix{}, fmt.Errorf("%q is not a contiguous netmask", mask)
		}
	}
	p := netip.PrefixFrom(a, bits)
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s %s has host bits set", addr, mask)
	}
	return p, nil
}

func v6Prefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv6 prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set", s)
	}
	return p, nil
}

// serviceObject reads PROTO [source OP] [destination OP].
func serviceObject(f []string) (svcEntry, error) {
	e := svcEntry{proto: f[0]}
	if e.proto != "tcp" && e.proto != "udp" && e.proto != "tcp-udp" {
		return e, fmt.Errorf("service-object: protocol %q is not tcp, udp or tcp-udp", f[0])
	}
	f = f[1:]
	var err error
	if len(f) > 0 && f[0] == "source" {
		if e.src, f, err = portOperator(f[1:]); err != nil {
			return e, err
		}
	}
	if len(f) > 0 && f[0] == "destination" {
		if e.dst, f, err = portOperator(f[1:]); err != nil {
			return e, err
		}
	}
	if len(f) > 0 {
		return e, fmt.Errorf("service-object: unexpected %q", strings.Join(f, " "))
	}
	return e, nil
}

// portOperator reads eq|neq|lt|gt N or range A B. Ports must be numbers:
// turnwall never writes port names.
func portOperator(f []string) (portOp, []string, error) {
	if len(f) < 2 {
		return portOp{}, nil, fmt.Errorf("missing port operator")
	}
	num := func(s string) (uint16, error) {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
		}
		return uint16(v), nil
	}
	op := portOp{op: f[0]}
	switch f[0] {
	case "eq", "neq", "lt", "gt":
		a, err := num(f[1])
		if err != nil {
			return op, nil, err
		}
		op.a = a
		return op, f[2:], nil
	case "range":
		if len(f) < 3 {
			return op, nil, fmt.Errorf("range needs two ports")
		}
		a, err := num(f[1])
		if err != nil {
			return op, nil, err
		}
		b, err := num(f[2])
		if err != nil {
			return op, nil, err
		}
		if b < a {
			return op, nil, fmt.Errorf("range %d %d is empty", a, b)
		}
		op.a, op.b = a, b
		return op, f[3:], nil
	}
	return op, nil, fmt.Errorf("unknown port operator %q", f[0])
}

// editACL returns the ACL to append to, refusing one that is bound: an ACL
// is complete before it is bound and is never edited while live.
func (rd *parser) editACL(n int, name string) (*accessList, error) {
	if !aclNameRE.MatchString(name) {
		return nil, fmt.Errorf("%q is not an ACL name", name)
	}
	a, ok := rd.acls[name]
	if !ok {
		a = &accessList{name: name}
		rd.acls[name] = a
	}
	if a.bound > 0 {
		return nil, fmt.Errorf("access-list %s is edited while bound to an interface: not a gapless swap", name)
	}
	return a, nil
}

// ace reads ACTION PROTOCOL SRC [PORT] DST [PORT] [log].
func (rd *parser) ace(n int, f []string) (*ace, error) {
	e := &ace{}
	switch f[0] {
	case "permit":
		e.permit = true
	case "deny":
	default:
		return nil, fmt.Errorf("expected permit or deny, got %q", f[0])
	}
	f = f[1:]
	if len(f) == 0 {
		return nil, fmt.Errorf("ACE without protocol")
	}
	simple := ""
	switch f[0] {
	case "ip", "tcp", "udp":
		simple = f[0]
		f = f[1:]
	case "object-group":
		if len(f) < 2 {
			return nil, fmt.Errorf("object-group without a name")
		}
		if rd.kinds[f[1]] != "object-group service" {
			return nil, fmt.Errorf("object-group %s is not a service group defined before this line", f[1])
		}
		s := rd.svcs[f[1]]
		if len(s.entries) == 0 {
			return nil, fmt.Errorf("object-group service %s is empty", f[1])
		}
		rd.markUsed(f[1])
		e.svc = s.entries
		f = f[2:]
	default:
		return nil, fmt.Errorf("unknown protocol argument %q", f[0])
	}
	var err error
	var sport, dport portOp
	if e.src, f, err = rd.addrArg(f); err != nil {
		return nil, err
	}
	if simple == "tcp" || simple == "udp" {
		if len(f) > 0 && isPortOperator(f[0]) {
			if sport, f, err = portOperator(f); err != nil {
				return nil, err
			}
		}
	}
	if e.dst, f, err = rd.addrArg(f); err != nil {
		return nil, err
	}
	if simple == "tcp" || simple == "udp" {
		if len(f) > 0 && isPortOperator(f[0]) {
			if dport, f, err = portOperator(f); err != nil {
				return nil, err
			}
		}
	}
	if simple != "" {
		e.svc = []svcEntry{{proto: simple, src: sport, dst: dport}}
	}
	if len(f) > 0 && f[0] == "log" {
		e.log = true
		f = f[1:]
	}
	if len(f) > 0 {
		return nil, fmt.Errorf("unexpected %q at the end of the ACE", strings.Join(f, " "))
	}
	return e, nil
}

func isPortOperator(s string) bool {
	return s == "eq" || s == "neq" || s == "lt" || s == "gt" || s == "range"
}

// addrArg reads any|any4|any6|host A|A M|P/len|object N|object-group G.
func (rd *parser) addrArg(f []string) (*addrSet, []string, error) {
	if len(f) == 0 {
		return nil, nil, fmt.Errorf("missing address")
	}
	switch f[0] {
	case "any":
		return &addrSet{any4: true, any6: true}, f[1:], nil
	case "any4":
		return &addrSet{any4: true}, f[1:], nil
	case "any6":
		return &addrSet{any6: true}, f[1:], nil
	case "host", "object", "object-group":
		if len(f) < 2 {
			return nil, nil, fmt.Errorf("%s without an argument", f[0])
		}
		switch f[0] {
		case "host":
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return nil, nil, err
			}
			return &addrSet{prefixes: []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}}, f[2:], nil
		case "object":
			o, err := rd.use(f[1], "object network")
			return o, f[2:], err
		default:
			o, err := rd.use(f[1], "object-group network")
			return o, f[2:], err
		}
	}
	if strings.Contains(f[0], "/") {
		p, err := v6Prefix(f[0])
		return &addrSet{prefixes: []netip.Prefix{p}}, f[1:], err
	}
	if len(f) < 2 {
		return nil, nil, fmt.Errorf("address %q without a mask", f[0])
	}
	p, err := maskedPrefix(f[0], f[1])
	return &addrSet{prefixes: []netip.Prefix{p}}, f[2:], err
}

// bind reads access-group: from here on the interface uses the ACL.
func (rd *parser) bind(n int, name, nameif string) error {
	a, ok := rd.acls[name]
	if !ok {
		return fmt.Errorf("access-group binds %s, which this file does not define "+
			"(an unchanged ACL kept on the device is not re-read; emit without replaces= to trace it)", name)
	}
	if len(a.lines) == 0 {
		return fmt.Errorf("access-group binds the empty ACL %s", name)
	}
	if !nameifRE.MatchString(nameif) {
		return fmt.Errorf("%q is not an interface name", nameif)
	}
	key := strings.ToLower(nameif) // nameifs are not case-sensitive
	if old, ok := rd.binding[key]; ok {
		rd.acls[old].bound--
	}
	rd.binding[key] = name
	if rd.bindAt == nil {
		rd.bindAt = map[string]int{}
	}
	rd.bindAt[key] = n
	a.bound++
	return nil
}

// clear reads clear configure access-list: an ACL that is still bound would
// leave its interfaces without one, so that is an error; an ACL this file does
// not know is one of the device's old ACLs.
func (rd *parser) clear(name string) error {
	if !aclNameRE.MatchString(name) {
		return fmt.Errorf("%q is not an ACL name", name)
	}
	if a, ok := rd.acls[name]; ok {
		if a.bound > 0 {
			return fmt.Errorf("clear configure access-list %s while it is bound: its interfaces would be left without an ACL", name)
		}
		delete(rd.acls, name)
	}
	return nil
}

// finish checks that every zone's interfaces are bound, all to one ACL.
func (rd *parser) finish() error {
	if len(rd.zones) == 0 {
		return fmt.Errorf("no zone map (\": turnwall zone ...\" lines): cannot tell which interfaces a zone has")
	}
	inZone := map[string]string{}
	for z, ifs := range rd.zones {
		var acl string
		for _, i := range ifs {
			key := strings.ToLower(i)
			if other, dup := inZone[key]; dup {
				return fmt.Errorf("interface %s is in zones %q and %q", i, other, z)
			}
			inZone[key] = z
			name, ok := rd.binding[key]
			if !ok {
				return fmt.Errorf("zone %q: interface %s has no access-group", z, i)
			}
			if acl != "" && name != acl {
				return fmt.Errorf("zone %q: interfaces are bound to different ACLs (%s, %s)", z, acl, name)
			}
			acl = name
		}
	}
	for key := range rd.binding {
		if _, ok := inZone[key]; !ok {
			return fmt.Errorf("line %d: access-group on interface %s, which no zone lists", rd.bindAt[key], key)
		}
	}
	return nil
}

// device is the re-read configuration.
type device struct {
	zones   map[string][]string
	binding map[string]string
	acls    map[string]*accessList
	qos     *asaQoS
}

var sourceRE = lazyre.New(`^(\S+:\d+|generated)$`)

// Decide implements backends.Config: the ACL bound to the zone's interfaces,
// first matching ACE, implicit deny at the end. The deciding rule is named as
// the ASA names it ("ACL line N", remarks count as lines); its source is the
// first word of the remark block above the ACE. The remark block of the
// policy default starts with "default": that ACE reports no rule.
func (d *device) Decide(pkt ir.Packet) backends.Decision {
	ifs, ok := d.zones[pkt.FromZone]
	if !ok {
		return backends.Decision{Action: ir.Deny} // no interface, no ACL: nothing passes
	}
	acl := d.acls[d.binding[strings.ToLower(ifs[0])]]
	var block []string
	afterACE := true
	for i, l := range acl.lines {
		if l.remark != nil {
			if afterACE {
				block = block[:0]
			}
			block = append(block, *l.remark)
			afterACE = false
			continue
		}
		afterACE = true
		e := l.ace
		if !e.src.match(pkt.Src, "", false) || !e.dst.match(pkt.Dst, pkt.DstHost, true) {
			continue
		}
		svcOK := false
		for _, s := range e.svc {
			svcOK = svcOK || s.match(pkt.Proto, pkt.SrcPort, pkt.DstPort)
		}
		if !svcOK {
			continue
		}
		dec := backends.Decision{Action: ir.Deny}
		if e.permit {
			dec.Action = ir.Allow
		}
		first := ""
		if len(block) > 0 {
			head := block[0]
			for _, r := range block {
				// In a box's ACL, turnwall's block starts at its first remark.
				if strings.HasPrefix(r, ownMark) {
					head = r
					break
				}
			}
			first, _, _ = strings.Cut(strings.TrimPrefix(head, ownMark), " ")
		}
		if first == "default" {
			return dec
		}
		dec.Rule = fmt.Sprintf("%s line %d", acl.name, i+1)
		if sourceRE.MatchString(first) {
			dec.Source = first
		}
		return dec
	}
	return backends.Decision{Action: ir.Deny}
}
