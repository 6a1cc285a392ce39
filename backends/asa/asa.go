// Package asa emits a Cisco ASA 9.x configuration (CLI text) from the IR:
// network and service object groups, one extended ACL per ingress zone, and
// the access-group lines that bind them to the zone's interfaces (nameifs).
//
// The ASA has no commit: every line takes effect as it is entered. So the
// output never edits anything that is live. Group and ACL names end in a hash
// of their content (an FQDN object is named after its host name), so a
// changed policy creates new groups and a new ACL next to the old ones; each
// new ACL is complete before one access-group line per interface swaps it
// in, and only then are the ACLs named by the replaces parameter cleared.
// There is no moment without an ACL. (Re-entering a group that exists would
// add to it, not replace it, and an object in use cannot be emptied: hence
// new names rather than edits.)
//
// With the acl parameter the target instead places its entries in the box's
// existing interface ACLs (placement.go): one block per ACL inserted at a
// line, marked as turnwall's, with stable group names, and Change
// (change.go) writes the commands from one version to the next; Model
// (model.go) is the box's running configuration that proves them.
//
// Services are extended service groups, "object-group service NAME" with
// "service-object udp|tcp [source OP] [destination OP]", named in the ACE in
// place of the protocol: one group carries both protocols and source ports,
// so each IR rule is one ACE. The protocol-typed form ("object-group service
// NAME udp" with port-object) holds ports of one protocol, so a rule with UDP
// and TCP entries, or with source ports on one entry only, would need an ACE
// per entry.
//
// Syntax references (Cisco ASA Series Firewall CLI Configuration Guide, 9.x):
//   - Objects: object network host/subnet/range/fqdn ("fqdn [v4 | v6] NAME";
//     without v4/v6 IPv4 is assumed, so turnwall writes a v4 and a v6 object
//     per name), object-group network (network-object host A, A MASK, P/len,
//     object N), object-group service with service-object; object names are
//     at most 64 characters of letters, digits and .!@#$%^&()-_{},
//     case-sensitive, one namespace for objects and groups; an object in use
//     cannot be removed or emptied:
//     https://www.cisco.com/c/en/us/td/docs/security/asa/asa917/configuration/firewall/asa-917-firewall-config/access-objects.html
//     (same text in the 9.4 guide, .../asa94/config-guides/cli/firewall/asa-94-firewall-config/access-objects.html)
//   - Extended ACEs: protocol_argument may be "object-group service_grp_id";
//     any matches IPv4 and IPv6; log; remarks of up to 100 characters, ACL
//     lines numbered with the remarks (show access-list "line N"):
//     https://www.cisco.com/c/en/us/td/docs/security/asa/asa94/config-guides/cli/firewall/asa-94-firewall-config/access-acls.html
//   - access-group ACL in interface NAMEIF, one ACL per interface and direction:
//     https://www.cisco.com/c/en/us/td/docs/security/asa/asa919/configuration/firewall/asa-919-firewall-config/access-rules.html
//   - Comment lines start with a colon ("Adding Comments"):
//     https://www.cisco.com/c/en/us/td/docs/security/asa/asa72/configuration/guide/conf_gd/cli.html
//
// Nothing here was loaded on a real ASA; the reader in this package checks
// the text against the documented grammar and the reference semantics.
package asa

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/version"
)

// FileName is the one file the target writes.
const FileName = "asa.cfg"

// Backend is the asa target.
type Backend struct{}

var (
	paramReplaces = backends.Param{
		Name: "replaces",
		Help: "comma-separated names of the ACLs bound now (show running-config access-group); " +
			"cleared after the new ACLs are bound",
	}
	paramPrefix = backends.Param{
		Name:    "prefix",
		Default: "TW-",
		Help:    "prefix of every object, group and ACL name turnwall creates (letters, digits, . _ -; at most 16)",
	}
)

// Name implements backends.Backend.
func (Backend) Name() string { return "asa" }

// Description implements backends.Backend.
func (Backend) Description() string {
	return "Cisco ASA 9.x CLI: object groups and versioned interface ACLs, swapped in with access-group, or (acl=) a block in the box's own ACLs"
}

// Formats implements backends.Backend.
func (Backend) Formats() []string { return []string{"cli"} }

// Params implements backends.Backend.
func (Backend) Params() []backends.Param {
	return []backends.Param{paramReplaces, paramPrefix, paramACL, paramPosition, paramDefaultRule, paramMaxElements, paramModel}
}

// Limits from the ASA documentation (see the package comment).
const (
	maxObjectName = 64  // object and object-group names
	maxACLName    = 241 // access-list names
	maxNameif     = 48  // interface names (nameif)
	maxRemark     = 100 // access-list remark text
	maxPrefix     = 16
	hashLen       = 8
)

// Object names: the ASA allows letters, digits and .!@#$%^&()-_{}; the
// namer uses only letters, digits and "._-", which keeps names readable and
// safe in every tool that handles the config. The reader accepts the full
// documented set.

// reserved are words an object name must not be (they are ACE keywords).
var reserved = []string{"any", "any4", "any6", "host", "object", "object-group", "interface", "range", "eq", "log"}

// Emit implements backends.Backend.
func (Backend) Emit(p *ir.Program, opts backends.Options) ([]backends.File, error) {
	if opts.Format != "" && opts.Format != "cli" {
		return nil, fmt.Errorf("asa target has no format %q (cli)", opts.Format)
	}
	prefix := opts.Get(paramPrefix)
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	replaces, err := splitReplaces(opts.Get(paramReplaces))
	if err != nil {
		return nil, err
	}
	if err := backends.FirstConstraint(Backend{}.Check(p, opts)); err != nil {
		return nil, err
	}
	if placed(opts) {
		// Placement in the box's own ACLs: the snapshot is the first install.
		return Backend{}.Change(nil, p, opts)
	}
	e := &emitter{p: p, prefix: prefix, noDefault: opts.Get(paramDefaultRule) == "none"}
	if err := e.plan(); err != nil {
		return nil, err
	}
	// Sized up front by make, not Grow: a new large buffer needs no clearing,
	// its pages are touched as the output is written.
	buf := bytes.NewBuffer(make([]byte, 0, e.sizeHint()))
	if err := e.write(buf, replaces); err != nil {
		return nil, err
	}
	return []backends.File{{Name: FileName, Data: buf.Bytes()}}, nil
}

func checkPrefix(prefix string) error {
	if len(prefix) > maxPrefix {
		return fmt.Errorf("prefix %q is longer than %d characters", prefix, maxPrefix)
	}
	for i, r := range prefix {
		if !(naming.AlphaNum(r) || strings.ContainsRune("._-", r)) || (i == 0 && !naming.Letter(r)) {
			return fmt.Errorf("prefix %q: use letters, digits, '.', '_' and '-', starting with a letter", prefix)
		}
	}
	return nil
}

// splitReplaces parses the replaces parameter. The names are written into
// clear configure lines, so anything but a plain ACL name is refused.
func splitReplaces(v string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if len(n) > maxACLName {
			return nil, fmt.Errorf("replaces: ACL name %.40q... is longer than %d characters", n, maxACLName)
		}
		for _, r := range n {
			if r <= ' ' || r >= 0x7f || r == '?' {
				return nil, fmt.Errorf("replaces: %q is not an ACL name (printable ASCII without spaces)", n)
			}
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// validNameif reports whether s can be an interface name. Interfaces are
// references to the device, so a name that could not be a nameif is an
// error, never silently rewritten.
func validNameif(s string) bool {
	if s == "" || len(s) > maxNameif {
		return false
	}
	for _, r := range s {
		if !(naming.AlphaNum(r) || strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}

// validFQDN reports whether s is a host name the fqdn command can take.
func validFQDN(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(naming.AlphaNum(r) || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// text makes user text safe for a remark or a comment line: ASCII only (other
// characters become '_'), no control characters, no '?' (typed or pasted at
// the ASA prompt it opens the context help instead of entering the line).
func text(s string, max int) string {
	mapped := []rune(s)
	for i, r := range mapped {
		if r >= 0x7f {
			mapped[i] = '_'
		}
	}
	return strings.Join(strings.Fields(naming.Comment(string(mapped), "?", max)), " ")
}

// sourceToken renders a policy location as one word: the reader takes the
// first word of a rule's remark as its source.
func sourceToken(s ir.Source) string {
	return strings.ReplaceAll(text(s.String(), 60), " ", "_")
}

// quote renders a zone name for the zone map comment: Go syntax, ASCII only,
// with '?' escaped too, so that any name round-trips on one line.
func quote(s string) string {
	return strings.ReplaceAll(strconv.QuoteToASCII(s), "?", `\x3f`)
}

func hash8(lines []string) string {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	buf := make([]byte, 0, n)
	for _, l := range lines {
		buf = append(append(buf, l...), '\n')
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])[:hashLen]
}

// emitter holds the planned output.
type emitter struct {
	p      *ir.Program
	prefix string
	// stable: names without content hashes (placement mode: groups are
	// edited in place by change scripts).
	stable bool
	// noDefault: no final any-any ACE for a deny default (the ASA's implicit
	// deny does the same).
	noDefault bool

	zones []ir.Zone
	acls  []*aclPlan

	objNames  *naming.Namer
	netGroups map[string]*groupPlan // IR address set name -> group
	svcGroups map[string]*groupPlan // IR service name -> group
	fqdnObjs  map[string]*groupPlan // "v4 name" -> object
	qos       *qosPlan              // the qos block (qos.go)
}

// groupPlan is an object or object group: its ASA name and definition lines.
type groupPlan struct {
	name  string
	lines []string
	fqdns []string // keys into fqdnObjs used by a network group
}

// aclPlan is one zone's ACL. Items are the lines after "access-list NAME ";
// comment items (starting with ":") are written as comment lines.
type aclPlan struct {
	zone  ir.Zone
	name  string
	items []string
	nets  []string // IR address sets used
	svcs  []string // IR services used
}

func (e *emitter) plan() error {
	p := e.p
	zoneNames := map[string]bool{}
	for _, z := range p.Zones {
		zoneNames[z.Name] = true
	}
	for _, r := range p.Rules {
		if r.FromZone != "" && !zoneNames[r.FromZone] {
			return fmt.Errorf("rule %q: unknown zone %q", r.Name, r.FromZone)
		}
		if r.Action != ir.Allow && r.Action != ir.Deny {
			return fmt.Errorf("rule %q: unknown action %q", r.Name, r.Action)
		}
	}
	if a := p.Policy.DefaultAction; a != ir.Allow && a != ir.Deny {
		return fmt.Errorf("unknown default action %q", a)
	}
	e.zones = append([]ir.Zone(nil), p.Zones...)
	sort.Slice(e.zones, func(i, j int) bool { return e.zones[i].Name < e.zones[j].Name })

	if err := e.planObjects(); err != nil {
		return err
	}
	zoneNamer := naming.New(naming.Rules{
		MaxLen: maxObjectName - len(e.prefix) - 1 - hashLen, Allowed: naming.ASCIIWord("._-"),
		First: e.first(), Replace: '_', Reserved: reserved,
	})
	for _, z := range e.zones {
		a := e.planACL(z)
		a.name = e.prefix + zoneNamer.Name(z.Name) + "-" + hash8(aclContent(a.items))
		e.acls = append(e.acls, a)
	}
	return e.planQoS()
}

// first is the namer's rule for a name's first character: a letter when the
// name has no prefix.
func (e *emitter) first() func(rune) bool {
	if e.prefix == "" {
		return naming.Letter
	}
	return nil
}

// planObjects names and defines a group for every address set and service
// and an object for every FQDN. Names are taken in IR order for all of them,
// used or not, so that one set's name never depends on which others a rule
// happens to use. A group's name ends in a hash of its members: the ASA adds
// to a group that exists instead of replacing it, and an object in use cannot
// be changed without changing live ACLs, so a changed set gets a new group.
func (e *emitter) planObjects() error {
	e.objNames = naming.New(naming.Rules{
		MaxLen: maxObjectName - len(e.prefix) - 1 - hashLen, Allowed: naming.ASCIIWord("._-"),
		First: e.first(), Replace: '_', Reserved: reserved,
	})
	e.netGroups = map[string]*groupPlan{}
	e.svcGroups = map[string]*groupPlan{}
	e.fqdnObjs = map[string]*groupPlan{}
	for _, s := range e.p.AddressSets {
		// The group's lines are written into one text, each ended by a
		// newline, and cut out of it (one allocation for the lot); the
		// hash of the text is version's hash of the lines.
		var text strings.Builder
		text.Grow(48*len(s.V4) + 64*len(s.V6) + 96*len(s.FQDNs))
		ends := make([]int, 0, len(s.V4)+len(s.V6)+2*len(s.FQDNs))
		sum := sha256.New()
		var line []byte
		add := func() {
			line = append(line, '\n')
			text.Write(line)
			sum.Write(line)
			ends = append(ends, text.Len()-1)
		}
		for _, pf := range s.V4 {
			if pf.IsSingleIP() {
				line = pf.Addr().AppendTo(append(line[:0], "network-object host "...))
			} else {
				line = pf.Masked().Addr().AppendTo(append(line[:0], "network-object "...))
				line = append(append(line, ' '), mask4(pf.Bits())...)
			}
			add()
		}
		for _, pf := range s.V6 {
			if pf.IsSingleIP() {
				line = pf.Addr().AppendTo(append(line[:0], "network-object host "...))
			} else {
				line = pf.Masked().AppendTo(append(line[:0], "network-object "...))
			}
			add()
		}
		g := &groupPlan{}
		for _, f := range s.FQDNs {
			if !validFQDN(f) {
				return fmt.Errorf("address set %q: %q is not a host name the ASA fqdn command takes", s.Name, f)
			}
			// fqdn without v4/v6 resolves IPv4 only ("If you do not specify an
			// address type, IPv4 is assumed", access-objects page); the IR
			// matches the name in both families, so both objects go in.
			for _, fam := range []string{"v4", "v6"} {
				key := fam + " " + f
				o, ok := e.fqdnObjs[key]
				if !ok {
					o = &groupPlan{name: e.prefix + e.objNames.Name("fqdn"+fam[1:]+"-"+f), lines: []string{"fqdn " + key}}
					e.fqdnObjs[key] = o
				}
				line = append(append(line[:0], "network-object object "...), o.name...)
				add()
				g.fqdns = append(g.fqdns, key)
			}
		}
		all := text.String()
		g.lines = make([]string, len(ends))
		start := 0
		for i, end := range ends {
			g.lines[i] = all[start:end]
			start = end + 1
		}
		version := ""
		if !e.stable {
			version = "-" + hex.EncodeToString(sum.Sum(nil))[:hashLen]
		}
		g.name = e.prefix + e.objNames.Name("net-"+s.Name) + version
		e.netGroups[s.Name] = g
	}
	for _, s := range e.p.Services {
		g := &groupPlan{}
		for _, en := range s.Entries {
			if en.Proto != ir.UDP && en.Proto != ir.TCP {
				return fmt.Errorf("service %q: unknown protocol %q", s.Name, en.Proto)
			}
			for _, sp := range portArgs("source", en.SrcPorts) {
				for _, dp := range portArgs("destination", en.Ports) {
					g.lines = append(g.lines, strings.TrimSpace("service-object "+string(en.Proto)+sp+dp))
				}
			}
		}
		g.name = e.prefix + e.objNames.Name("svc-"+s.Name) + e.version(g.lines)
		e.svcGroups[s.Name] = g
	}
	return nil
}

// sizeHint is about the size of the snapshot: its groups' lines, each
// indented and ended, and room for the rest.
func (e *emitter) sizeHint() int {
	n := 64 << 10
	for _, m := range []map[string]*groupPlan{e.netGroups, e.svcGroups, e.fqdnObjs} {
		for _, g := range m {
			for _, l := range g.lines {
				n += len(l) + 2
			}
		}
	}
	for _, a := range e.acls {
		for _, it := range a.items {
			n += len(a.name) + len(it) + 14
		}
	}
	return n
}

// writeIndented writes each line after one space, as an object's lines go.
func writeIndented(b *bytes.Buffer, lines []string) {
	for _, l := range lines {
		b.WriteByte(' ')
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

// version is a group name's suffix: a hash of its lines in a snapshot, none
// in placement mode (planObjects hashes network groups' lines as it writes
// them, to the same hash).
func (e *emitter) version(lines []string) string {
	if e.stable {
		return ""
	}
	return "-" + hash8(lines)
}

// portArgs renders a port list as service-object arguments, one per range:
// " destination eq 443", " destination range 16384 65535", or "" for any
// port. Ports are always numbers, never names (see the header comment).
func portArgs(dir string, rs []ir.PortRange) []string {
	if len(rs) == 0 {
		return []string{""}
	}
	var out []string
	for _, r := range rs {
		switch {
		case r.First == 0 && r.Last == 65535:
			return []string{""}
		case r.First == r.Last:
			out = append(out, fmt.Sprintf(" %s eq %d", dir, r.First))
		default:
			out = append(out, fmt.Sprintf(" %s range %d %d", dir, r.First, r.Last))
		}
	}
	return out
}

// masks4[n] is the dotted IPv4 netmask of a /n.
var masks4 = func() (m [33]string) {
	for bits := range m {
		var b [4]byte
		for i := 0; i < bits; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		m[bits] = netip.AddrFrom4(b).String()
	}
	return m
}()

func mask4(bits int) string { return masks4[bits] }

// planACL builds one zone's ACL: the policy's rules in order (those of the
// zone and those of any zone), each after a remark tracing it to the policy,
// then the policy default as the last ACE.
func (e *emitter) planACL(z ir.Zone) *aclPlan {
	p := e.p
	a := &aclPlan{zone: z}
	usedNet, usedSvc := map[string]bool{}, map[string]bool{}
	for _, r := range p.Rules {
		if r.FromZone != "" && r.FromZone != z.Name {
			continue
		}
		if sets, err := p.RuleSets(&r); err != nil || !sets.CanMatch() {
			// The IR rule matches no packet; an ASA ACE cannot use an
			// empty group, so the rule is only noted.
			a.items = append(a.items, ": rule "+text(r.Name, 60)+" ("+sourceToken(r.Origin.Source)+") matches nothing (empty set or service): no ACE")
			continue
		}
		head := sourceToken(r.Origin.Source) + " " + text(r.Name, maxRemark)
		if pu := text(string(r.Purpose), 20); pu != "" {
			head += " (" + pu + ")"
		}
		a.items = append(a.items, "remark "+cut(head, maxRemark))
		if c := text(r.Comment, maxRemark); c != "" {
			a.items = append(a.items, "remark "+c)
		}
		action := "permit"
		if r.Action == ir.Deny {
			action = "deny"
		}
		ace := "extended " + action +
			" object-group " + e.svcGroups[r.Service].name +
			" object-group " + e.netGroups[r.Src].name +
			" object-group " + e.netGroups[r.Dst].name
		if r.Log {
			ace += " log"
		}
		a.items = append(a.items, ace)
		for _, n := range []string{r.Src, r.Dst} {
			if !usedNet[n] {
				usedNet[n] = true
				a.nets = append(a.nets, n)
			}
		}
		if !usedSvc[r.Service] {
			usedSvc[r.Service] = true
			a.svcs = append(a.svcs, r.Service)
		}
	}
	hasACE := false
	for _, it := range a.items {
		hasACE = hasACE || strings.HasPrefix(it, "extended ")
	}
	if e.noDefault && p.Policy.DefaultAction == ir.Deny && hasACE {
		// default-rule=none: the ASA denies what no ACE permits (an ACL
		// without any ACE cannot be bound, so it keeps the explicit deny).
		a.items = append(a.items, ": default deny: the ASA's implicit deny at the end of the ACL (default-rule=emit writes deny ip any any)")
		return a
	}
	def := "deny"
	if p.Policy.DefaultAction == ir.Allow {
		def = "permit"
	}
	head := "default " + string(p.Policy.DefaultAction) + ": policy " + text(p.Policy.Name, 60) + " (" + sourceToken(p.Policy.Source) + ")"
	a.items = append(a.items, "remark "+cut(head, maxRemark))
	ace := "extended " + def + " ip any any"
	if p.Policy.LogDefault {
		ace += " log"
	}
	a.items = append(a.items, ace)
	return a
}

// cut shortens ASCII text to max bytes.
func cut(s string, max int) string {
	if len(s) > max {
		return strings.TrimSpace(s[:max])
	}
	return s
}

// aclContent is what an ACL's version hash covers: every remark and ACE, not
// the comment lines (they are not part of the device's ACL).
func aclContent(items []string) []string {
	var out []string
	for _, it := range items {
		if !strings.HasPrefix(it, ":") {
			out = append(out, it)
		}
	}
	return out
}

func (e *emitter) write(buf *bytes.Buffer, replaces []string) error {
	p := e.p
	w := &backends.Writer{W: buf}
	clearing := map[string]bool{}
	for _, n := range replaces {
		clearing[n] = true
	}

	w.Line(": turnwall %s for Cisco ASA 9.x: policy %s (%s)", FileName, text(p.Policy.Name, 80), sourceToken(p.Policy.Source))
	w.Line(": written by turnwall %s", text(version.String(), 60))
	if d := text(p.Policy.Description, 120); d != "" {
		w.Line(": %s", d)
	}
	w.Line(":")
	w.Line(": Enter in global configuration mode (or copy to running-config). Every line takes")
	w.Line(": effect as it is entered, so nothing live is edited: group and ACL names end in a")
	w.Line(": hash of their content (a changed set or ACL is a new name), each ACL is complete")
	w.Line(": before one access-group line per interface swaps it in, and the ACLs it replaces")
	w.Line(": are cleared only after that.")
	w.Line(": Ports are numbers here; show running-config prints well-known ones as names")
	w.Line(": (443 as https, 5060 as sip): the same ACE. The egress zone is left to routing:")
	w.Line(": an ASA interface ACL sees the ingress interface only. Interfaces of equal")
	w.Line(": security-level exchange traffic only with same-security-traffic permit")
	w.Line(": inter-interface (intra-interface for hairpin), whatever an ACL permits.")
	w.Line(": A group that exists already (same name, same hash) gets the same members again:")
	w.Line(": nothing changes, the ASA may warn that a member exists. Groups of earlier")
	w.Line(": versions stay defined after their ACL is cleared; remove them once unused.")
	w.Line(":")
	w.Line(": Zones and their interfaces (nameifs), read back by turnwall trace:")
	for _, z := range e.zones {
		w.Line(": turnwall zone %s interfaces %s", quote(z.Name), strings.Join(z.Interfaces, " "))
	}

	// The ACLs to define: those whose name is not already bound (a name in
	// replaces that equals a new name means that zone did not change).
	var define []*aclPlan
	for _, a := range e.acls {
		if !clearing[a.name] {
			define = append(define, a)
		}
	}

	// Objects used by the ACLs to define, in IR order.
	usedNet, usedSvc := map[string]bool{}, map[string]bool{}
	for _, a := range define {
		for _, n := range a.nets {
			usedNet[n] = true
		}
		for _, s := range a.svcs {
			usedSvc[s] = true
		}
	}
	var fqdns []string
	seenFQDN := map[string]bool{}
	for _, s := range p.AddressSets {
		if !usedNet[s.Name] {
			continue
		}
		for _, k := range e.netGroups[s.Name].fqdns {
			if !seenFQDN[k] {
				seenFQDN[k] = true
				fqdns = append(fqdns, k)
			}
		}
	}
	if len(fqdns) > 0 {
		w.Line(":")
		w.Line(": FQDN objects: the ASA resolves them itself and needs DNS, for example")
		w.Line(": dns domain-lookup INSIDE-NAMEIF / dns server-group DefaultDNS / name-server ADDRESS.")
		for _, k := range fqdns {
			o := e.fqdnObjs[k]
			w.Line("object network %s", o.name)
			writeIndented(buf, o.lines)
		}
	}
	if len(usedNet) > 0 {
		w.Line(":")
		w.Line(": Address sets")
		for _, s := range p.AddressSets {
			if !usedNet[s.Name] {
				continue
			}
			g := e.netGroups[s.Name]
			w.Line(": %s (%s)", text(s.Name, 80), sourceToken(s.Origin.Source))
			w.Line("object-group network %s", g.name)
			writeIndented(buf, g.lines)
		}
	}
	if len(usedSvc) > 0 {
		w.Line(":")
		w.Line(": Services: extended service groups (service-object PROTO [source OP] [destination OP]),")
		w.Line(": which carry source ports and both protocols in one group; an ACE names the group")
		w.Line(": in place of the protocol (access-list ... extended permit object-group SVC SRC DST).")
		for _, s := range p.Services {
			if !usedSvc[s.Name] {
				continue
			}
			g := e.svcGroups[s.Name]
			w.Line(": %s", text(s.Name, 80))
			w.Line("object-group service %s", g.name)
			writeIndented(buf, g.lines)
		}
	}
	for _, a := range e.acls {
		w.Line(":")
		if clearing[a.name] {
			w.Line(": zone %s: ACL %s is unchanged and stays bound; not redefined.", quote(a.zone.Name), a.name)
			continue
		}
		w.Line(": zone %s: inbound ACL of %s", quote(a.zone.Name), strings.Join(a.zone.Interfaces, ", "))
		for _, it := range a.items {
			if strings.HasPrefix(it, ":") {
				w.Line("%s", it)
				continue
			}
			w.Line("access-list %s %s", a.name, it)
		}
	}
	w.Line(":")
	w.Line(": Swap: bind each complete ACL, one line per interface (each replaces that interface's ACL at once).")
	for _, a := range e.acls {
		for _, i := range a.zone.Interfaces {
			w.Line("access-group %s in interface %s", a.name, i)
		}
	}
	var clear []string
	for _, n := range replaces {
		bound := false
		for _, a := range e.acls {
			bound = bound || a.name == n
		}
		if !bound {
			clear = append(clear, n)
		}
	}
	if len(clear) > 0 {
		w.Line(":")
		w.Line(": Only now, remove the ACLs that were bound before (replaces parameter).")
		for _, n := range clear {
			w.Line("clear configure access-list %s", n)
		}
	}
	e.writeQoS(w)
	return w.Err
}

// Check implements backends.Checker: an ASA ACL is bound to interfaces, so
// every zone needs nameifs of its own (case-insensitive, one inbound ACL
// each).
func (Backend) Check(p *ir.Program, opts backends.Options) []backends.Constraint {
	if len(p.Zones) == 0 {
		return []backends.Constraint{{At: p.Policy.Source, Summary: "no zones",
			Detail: "The policy has no zones; an ASA ACL is bound to interfaces. Declare the zones and their interfaces."}}
	}
	var out []backends.Constraint
	owner := map[string]string{} // lower-cased nameif -> zone (nameifs are not case-sensitive)
	for _, z := range p.Zones {
		if len(z.Interfaces) == 0 {
			out = append(out, backends.Constraint{At: z.Source, Summary: "zone without interfaces",
				Detail: fmt.Sprintf("Zone %q has no interfaces; an ASA ACL is bound to interfaces (nameifs). Give the zone its interfaces.", z.Name)})
		}
		for _, i := range z.Interfaces {
			if !validNameif(i) {
				out = append(out, backends.Constraint{At: z.Source, Summary: "interface name",
					Detail: fmt.Sprintf("Zone %q: interface %q is not an ASA interface name (nameif: up to %d letters, digits, . _ -).", z.Name, i, maxNameif)})
			}
			if other, dup := owner[strings.ToLower(i)]; dup && other != z.Name {
				out = append(out, backends.Constraint{At: z.Source, Summary: "interface in two zones",
					Detail: fmt.Sprintf("Interface %q is in zones %q and %q; an interface has one inbound ACL. Put it in one zone.", i, other, z.Name)})
			}
			owner[strings.ToLower(i)] = z.Name
		}
	}
	out = append(out, checkPlacement(p, opts)...)
	return append(out, checkLimits(p, opts)...)
}
