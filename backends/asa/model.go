package asa

// Model is a model of an ASA's running configuration with the device's own
// semantics, independent of the emitter: it holds objects, object groups,
// ACLs and access-group bindings, and takes the commands of a change script
// (or of a hand-written site configuration) one at a time as the ASA does:
//
//   - "object-group network|service NAME" opens a group, creating it when
//     absent; each network-object/service-object line adds a member (one
//     present already is kept once); "no network-object ..." removes one, and
//     a group an ACL uses cannot lose its last member;
//   - "object network NAME" with one definition line (host, subnet, range,
//     fqdn) replaces the object's definition;
//   - "no object-group ..." / "no object network ..." removes one nothing
//     uses (an ACE or a group member);
//   - "access-list ACL line N ..." inserts an entry (remark or ACE) at line N
//     (remarks count as lines, N at most one past the end); without "line"
//     it appends; a duplicate ACE is refused;
//   - "no access-list ACL extended ..." removes the ACE with that text;
//     "no access-list ACL remark TEXT" removes the first remark with that
//     text; an ACL whose last entry goes is removed;
//   - "access-group ACL in interface NAMEIF" binds an ACL.
//
// Decisions follow the reader: the ACL bound to the ingress zone's first
// interface, first matching ACE, implicit deny.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Model implements backends.BoxModel.
type Model struct {
	prefix  string
	zones   map[string][]string
	objs    map[string]*ownedObj // kind and lines, members in insertion order
	acls    map[string][]string  // "remark TEXT" or "extended ..."
	binding map[string]string    // lower-cased nameif -> ACL
	mode    string               // kind of the object open for sub-commands
	modeOf  string               // its name
	qos     *modelQoS            // class-maps, policy-maps, service-policies (qoschange.go)
}

var _ backends.BoxModel = (*Model)(nil)

// NewModel returns an empty box whose zones have the given interfaces;
// prefix is turnwall's name prefix (what Owned and Foreign tell apart).
func NewModel(zones []ir.Zone, prefix string) *Model {
	m := &Model{prefix: prefix, zones: map[string][]string{}, objs: map[string]*ownedObj{},
		acls: map[string][]string{}, binding: map[string]string{}}
	for _, z := range zones {
		m.zones[z.Name] = z.Interfaces
	}
	return m
}

// Apply implements backends.BoxModel.
func (m *Model) Apply(commands []byte, step func(backends.Config)) error {
	for i, l := range strings.Split(string(commands), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, ":") {
			continue
		}
		var err error
		if strings.HasPrefix(l, " ") {
			err = m.sub(strings.Fields(l))
		} else {
			m.mode = ""
			err = m.top(l, strings.Fields(l))
		}
		if err != nil {
			return fmt.Errorf("line %d: %q: %v", i+1, l, err)
		}
		if step != nil {
			cfg, err := m.compile()
			if err != nil {
				return fmt.Errorf("line %d: %q: %v", i+1, l, err)
			}
			step(cfg)
		}
	}
	return nil
}

func (m *Model) top(l string, f []string) error {
	switch {
	case len(f) == 3 && f[0] == "object" && f[1] == "network",
		len(f) == 3 && f[0] == "object-group" && (f[1] == "network" || f[1] == "service"):
		kind := f[0] + " " + f[1]
		if err := checkObjectName(f[2]); err != nil {
			return err
		}
		if o, ok := m.objs[f[2]]; ok && o.kind != kind {
			return fmt.Errorf("%s is a %s (objects and groups share one namespace)", f[2], o.kind)
		} else if !ok {
			m.objs[f[2]] = &ownedObj{kind: kind}
		}
		m.mode, m.modeOf = kind, f[2]
		return nil
	case len(f) == 4 && f[0] == "no" && (f[1] == "object" && f[2] == "network" || f[1] == "object-group" && (f[2] == "network" || f[2] == "service")):
		kind := f[1] + " " + f[2]
		o, ok := m.objs[f[3]]
		if !ok || o.kind != kind {
			return fmt.Errorf("no %s %s exists", kind, f[3])
		}
		if by := m.usedBy(f[3]); by != "" {
			return fmt.Errorf("%s is in use by %s", f[3], by)
		}
		delete(m.objs, f[3])
		return nil
	case len(f) >= 4 && f[0] == "access-list":
		return m.aclAdd(l, f)
	case len(f) >= 4 && f[0] == "no" && f[1] == "access-list":
		return m.aclRemove(l, f)
	case len(f) == 5 && f[0] == "access-group" && f[2] == "in" && f[3] == "interface":
		if _, ok := m.acls[f[1]]; !ok {
			return fmt.Errorf("ACL %s does not exist", f[1])
		}
		if !nameifRE.MatchString(f[4]) {
			return fmt.Errorf("%q is not an interface name", f[4])
		}
		m.binding[strings.ToLower(f[4])] = f[1]
		return nil
	}
	if ok, err := m.qosTop(f); ok {
		return err
	}
	return fmt.Errorf("unknown command")
}

// sub runs a line of the open object or group.
func (m *Model) sub(f []string) error {
	if m.mode == "" {
		return fmt.Errorf("indented line outside an object definition")
	}
	if m.mode == "class-map" || m.mode == "policy-map" {
		return m.qosSub(f)
	}
	kind, name := m.mode, m.modeOf
	o := m.objs[name]
	scratch := m.parserFor(refs(f))
	if kind == "object network" {
		if _, err := scratch.networkObject(f); err != nil {
			return err
		}
		o.lines = []string{strings.Join(f, " ")}
		return nil
	}
	remove := len(f) > 0 && f[0] == "no"
	if remove {
		f = f[1:]
	}
	word := "network-object"
	if kind == "object-group service" {
		word = "service-object"
	}
	if len(f) == 2 && f[0] == "group-object" && word == "network-object" {
		if g, ok := m.objs[f[1]]; !ok || g.kind != "object-group network" || f[1] == name {
			return fmt.Errorf("group-object %s: no such network group", f[1])
		}
	} else if len(f) < 2 || f[0] != word {
		return fmt.Errorf("%s %s: expected [no] %s", kind, name, word)
	}
	if f[0] == "network-object" {
		if _, err := scratch.networkMember(f[1:]); err != nil {
			return err
		}
	} else if f[0] == "service-object" {
		if _, err := serviceObject(f[1:]); err != nil {
			return err
		}
	}
	line := strings.Join(f, " ")
	at := -1
	if o.index == nil {
		o.index = map[string]bool{}
		for _, l := range o.lines {
			o.index[l] = true
		}
	}
	if o.index[line] {
		for i, l := range o.lines {
			if l == line {
				at = i
			}
		}
	}
	switch {
	case !remove && at < 0:
		o.lines = append(o.lines, line)
		o.index[line] = true
	case remove && at < 0:
		return fmt.Errorf("%s has no member %q", name, line)
	case remove:
		if len(o.lines) == 1 && m.usedBy(name) != "" {
			return fmt.Errorf("cannot remove the last member of %s, which %s uses", name, m.usedBy(name))
		}
		o.lines = append(o.lines[:at:at], o.lines[at+1:]...)
		delete(o.index, line)
	}
	return nil
}

// refs returns the object names an ACE or a group member line names.
func refs(f []string) []string {
	var out []string
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "object" || f[i] == "object-group" || f[i] == "group-object" {
			out = append(out, f[i+1])
		}
	}
	return out
}

// usedBy names what uses an object, or "".
func (m *Model) usedBy(name string) string {
	var acls []string
	for a := range m.acls {
		acls = append(acls, a)
	}
	sort.Strings(acls)
	for _, a := range acls {
		for _, e := range m.acls[a] {
			if strings.HasPrefix(e, "remark ") {
				continue
			}
			for _, r := range refs(strings.Fields(e)) {
				if r == name {
					return "access-list " + a
				}
			}
		}
	}
	for _, n := range m.sortedObjs() {
		for _, l := range m.objs[n].lines {
			for _, r := range refs(strings.Fields(l)) {
				if r == name {
					return "group " + n
				}
			}
		}
	}
	return ""
}

func (m *Model) sortedObjs() []string {
	names := make([]string, 0, len(m.objs))
	for n := range m.objs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// afterFields returns l after its first k fields.
func afterFields(l string, k int) string {
	for ; k > 0; k-- {
		l = strings.TrimLeft(l, " ")
		i := strings.IndexByte(l, ' ')
		if i < 0 {
			return ""
		}
		l = l[i:]
	}
	return strings.TrimSpace(l)
}

// entry reads the part of an access-list command from "remark" or
// "extended" on (f, the fields of rest): "remark TEXT" or "extended ...",
// normalised.
func entry(rest string, f []string) (string, error) {
	switch f[0] {
	case "remark":
		t := afterFields(rest, 1)
		if t == "" || len(t) > maxRemark {
			return "", fmt.Errorf("remark of %d characters (1 to %d)", len(t), maxRemark)
		}
		return "remark " + t, nil
	case "extended":
		return strings.Join(f, " "), nil
	}
	return "", fmt.Errorf("expected remark or extended")
}

func (m *Model) aclAdd(l string, f []string) error {
	name := f[1]
	if !aclNameRE.MatchString(name) {
		return fmt.Errorf("%q is not an ACL name", name)
	}
	rest := f[2:]
	entries := m.acls[name]
	at := len(entries)
	skip := 2
	if rest[0] == "line" && len(rest) > 2 {
		n, err := strconv.Atoi(rest[1])
		if err != nil || n < 1 {
			return fmt.Errorf("line %q is not a line number", rest[1])
		}
		if n > len(entries)+1 {
			return fmt.Errorf("line %d: ACL %s has %d lines", n, name, len(entries))
		}
		at = n - 1
		rest = rest[2:]
		skip = 4
	}
	e, err := entry(afterFields(l, skip), rest)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(e, "remark ") {
		for _, x := range entries {
			if x == e {
				return fmt.Errorf("duplicate of an existing entry of %s", name)
			}
		}
		// The ACE must compile against the objects as they are now.
		scratch := m.parserFor(refs(rest))
		if _, err := scratch.ace(0, rest[1:]); err != nil {
			return err
		}
	}
	entries = append(entries[:at:at], append([]string{e}, entries[at:]...)...)
	m.acls[name] = entries
	return nil
}

func (m *Model) aclRemove(l string, f []string) error {
	name := f[2]
	entries, ok := m.acls[name]
	if !ok {
		return fmt.Errorf("ACL %s does not exist", name)
	}
	e, err := entry(afterFields(l, 3), f[3:])
	if err != nil {
		return err
	}
	for i, x := range entries {
		if x == e {
			entries = append(entries[:i:i], entries[i+1:]...)
			if by := m.aclUser(name); len(entries) == 0 && strings.HasPrefix(by, "class-map ") {
				return fmt.Errorf("the last entry of ACL %s, which %s matches", name, by)
			}
			if len(entries) == 0 {
				for k, a := range m.binding {
					if a == name {
						delete(m.binding, k)
					}
				}
				delete(m.acls, name)
			} else {
				m.acls[name] = entries
			}
			return nil
		}
	}
	return fmt.Errorf("ACL %s has no entry %q", name, e)
}

// parser returns a reader parser holding the model's objects, to read a
// member or an ACE against them.
func (m *Model) parser() *parser { return m.parserFor(m.sortedObjs()) }

// parserFor returns a parser holding the named objects and the objects they
// name.
func (m *Model) parserFor(names []string) *parser {
	rd := &parser{kinds: map[string]string{}, objs: map[string]*addrSet{}, svcs: map[string]*svcSet{},
		inUse: map[string]int{}, acls: map[string]*accessList{}, binding: map[string]string{}, zones: map[string][]string{}}
	{
		seen := map[string]bool{}
		var all []string
		var walk func(n string)
		walk = func(n string) {
			o, ok := m.objs[n]
			if !ok || seen[n] {
				return
			}
			seen[n] = true
			all = append(all, n)
			if o.kind == "object-group network" {
				for _, l := range o.lines {
					if f := strings.Fields(l); f[0] == "group-object" || (len(f) == 3 && f[1] == "object") {
						walk(f[len(f)-1])
					}
				}
			}
		}
		for _, n := range names {
			walk(n)
		}
		sort.Strings(all)
		names = all
	}
	nested := func(o *ownedObj) bool {
		for _, l := range o.lines {
			if strings.HasPrefix(l, "group-object ") {
				return true
			}
		}
		return false
	}
	// Objects first, then groups (which may name objects), then groups
	// holding groups (one level, as turnwall writes).
	for pass := 0; pass < 3; pass++ {
		for _, n := range names {
			o := m.objs[n]
			if want := map[bool]int{true: 0, false: 1}[o.kind == "object network"]; nested(o) {
				if pass != 2 {
					continue
				}
			} else if want != pass {
				continue
			}
			rd.kinds[n] = o.kind
			switch o.kind {
			case "object network":
				s := &addrSet{}
				if len(o.lines) == 1 {
					if got, err := rd.networkObject(strings.Fields(o.lines[0])); err == nil {
						s = got
					}
				}
				rd.objs[n] = s
			case "object-group network":
				s := &addrSet{}
				for _, l := range o.lines {
					f := strings.Fields(l)
					if f[0] == "group-object" {
						if g, ok := rd.objs[f[1]]; ok && rd.kinds[f[1]] == "object-group network" {
							s.add(g)
						}
						continue
					}
					if mem, err := rd.networkMember(f[1:]); err == nil {
						s.add(mem)
					}
				}
				rd.objs[n] = s
			default:
				s := &svcSet{}
				for _, l := range o.lines {
					if e, err := serviceObject(strings.Fields(l)[1:]); err == nil {
						s.entries = append(s.entries, e)
					}
				}
				rd.svcs[n] = s
			}
		}
	}
	return rd
}

// compile builds the decision structures of the configuration now.
func (m *Model) compile() (*device, error) {
	rd := m.parser()
	d := &device{zones: m.zones, binding: map[string]string{}, acls: map[string]*accessList{}}
	for k, v := range m.binding {
		d.binding[k] = v
	}
	for name, entries := range m.acls {
		a := &accessList{name: name}
		for _, e := range entries {
			if t, ok := strings.CutPrefix(e, "remark "); ok {
				a.lines = append(a.lines, aclLine{remark: &t})
				continue
			}
			ace, err := rd.ace(0, strings.Fields(e)[1:])
			if err != nil {
				return nil, fmt.Errorf("access-list %s %s: %v", name, e, err)
			}
			a.lines = append(a.lines, aclLine{ace: ace})
		}
		d.acls[name] = a
	}
	m.qosDevice(d)
	return d, nil
}

// Config implements backends.BoxModel. A zone without a bound ACL denies.
func (m *Model) Config() backends.Config {
	d, err := m.compile()
	if err != nil {
		return &device{zones: map[string][]string{}}
	}
	return modelDevice{d}
}

// modelDevice decides as the device does, and denies for a zone whose
// interface has no ACL in the model.
type modelDevice struct{ d *device }

func (md modelDevice) Decide(pkt ir.Packet) backends.Decision {
	ifs, ok := md.d.zones[pkt.FromZone]
	if !ok || len(ifs) == 0 {
		return backends.Decision{Action: ir.Deny}
	}
	if _, ok := md.d.acls[md.d.binding[strings.ToLower(ifs[0])]]; !ok {
		return backends.Decision{Action: ir.Deny}
	}
	return md.d.Decide(pkt)
}

// QoS implements backends.QoSConfig as the reader does (device.QoS).
func (md modelDevice) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	return md.d.QoS(pkt, reply)
}

// owned reports whether an object or ACL entry is turnwall's.
func (m *Model) ownedName(n string) bool { return strings.HasPrefix(n, m.prefix) }

func (m *Model) ownedEntry(e string) bool {
	if t, ok := strings.CutPrefix(e, "remark "); ok {
		return strings.HasPrefix(t, ownMark)
	}
	for _, r := range refs(strings.Fields(e)) {
		if m.ownedName(r) {
			return true
		}
	}
	return false
}

func (m *Model) aclNames() []string {
	names := make([]string, 0, len(m.acls))
	for n := range m.acls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Owned implements backends.BoxModel: turnwall's objects (members sorted:
// the order of a group's members decides nothing) and, per ACL, its entries
// in order, each with the number of the box's own lines above it.
func (m *Model) Owned() string {
	var b strings.Builder
	for _, n := range m.sortedObjs() {
		if !m.ownedName(n) {
			continue
		}
		o := m.objs[n]
		fmt.Fprintf(&b, "%s %s\n", o.kind, n)
		lines := append([]string(nil), o.lines...)
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Fprintf(&b, " %s\n", l)
		}
	}
	m.qosCanonical(&b, true)
	for _, a := range m.aclNames() {
		foreign := 0
		for _, e := range m.acls[a] {
			if m.ownedName(a) || m.ownedEntry(e) {
				fmt.Fprintf(&b, "access-list %s after %d: %s\n", a, foreign, e)
			} else {
				foreign++
			}
		}
	}
	return b.String()
}

// Foreign implements backends.BoxModel: everything else, in the box's order.
func (m *Model) Foreign() string {
	var b strings.Builder
	for _, n := range m.sortedObjs() {
		if m.ownedName(n) {
			continue
		}
		o := m.objs[n]
		fmt.Fprintf(&b, "%s %s\n", o.kind, n)
		for _, l := range o.lines {
			fmt.Fprintf(&b, " %s\n", l)
		}
	}
	m.qosCanonical(&b, false)
	for _, a := range m.aclNames() {
		for _, e := range m.acls[a] {
			if !m.ownedName(a) && !m.ownedEntry(e) {
				fmt.Fprintf(&b, "access-list %s %s\n", a, e)
			}
		}
	}
	var ifs []string
	for k := range m.binding {
		ifs = append(ifs, k)
	}
	sort.Strings(ifs)
	for _, k := range ifs {
		fmt.Fprintf(&b, "access-group %s in interface %s\n", m.binding[k], k)
	}
	return b.String()
}

// readPlacement re-reads a placement install (Change(nil, p)) for turnwall
// trace: each zone's ACL starts with as many stand-in remarks as the box's
// own lines above turnwall's block, the script is applied, and a packet
// turnwall's entries do not match meets the ASA's implicit deny (the box's
// own entries below the block are not in the file).
func readPlacement(f backends.File) (backends.Config, error) {
	var zones []ir.Zone
	acls := map[string]string{}
	line := 0
	for i, l := range strings.Split(string(f.Data), "\n") {
		if rest, ok := strings.CutPrefix(l, ": turnwall placement zone "); ok {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: zone name is not a quoted string", f.Name, i+1)
			}
			zone, _ := strconv.Unquote(q)
			fs := strings.Fields(rest[len(q):])
			if len(fs) < 4 || fs[0] != "acl" || fs[2] != "interfaces" || !aclNameRE.MatchString(fs[1]) {
				return nil, fmt.Errorf("%s:%d: expected acl ACL interfaces IF...", f.Name, i+1)
			}
			zones = append(zones, ir.Zone{Name: zone, Interfaces: fs[3:]})
			acls[zone] = fs[1]
		}
		if rest, ok := strings.CutPrefix(l, ": starts at line "); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(rest, "."))
			if err != nil || n < 1 || n > maxLine {
				return nil, fmt.Errorf("%s:%d: bad first line", f.Name, i+1)
			}
			line = n
		}
	}
	if len(zones) == 0 || line == 0 {
		return nil, fmt.Errorf("%s: a change script without the zones' ACLs (only a first install can be traced)", f.Name)
	}
	m := NewModel(zones, "\x00") // every line is the box's: nothing to tell apart here
	for _, z := range zones {
		standIns := make([]string, 0, line)
		for k := 1; k < line; k++ {
			standIns = append(standIns, fmt.Sprintf("remark (the box's own line %d)", k))
		}
		if line == 1 {
			standIns = append(standIns, "remark (the box's own entries)")
		}
		m.acls[acls[z.Name]] = standIns
		for _, i := range z.Interfaces {
			m.binding[strings.ToLower(i)] = acls[z.Name]
		}
	}
	if err := m.Apply(f.Data, nil); err != nil {
		return nil, fmt.Errorf("%s: %v", f.Name, err)
	}
	return m.Config(), nil
}
