package panos

// The reader rebuilds a PAN-OS configuration from emitted text, set commands
// or XML, and decides packets the way the firewall's security policy would.
// It shares nothing with the emitter but ZoneName (the zone naming contract):
// it parses the text, checks every reference as a commit would, and models
// the rulebase's first-match evaluation with the predefined intrazone-default
// and interzone-default rules at the end.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Reader implements backends.Traceable.
func (Backend) Reader() backends.Reader { return reader{} }

type reader struct{}

func (reader) Read(files []backends.File) (backends.Config, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("expected panos.set or panos.xml (and its feed files), got no file")
	}
	f := files[0]
	feeds := map[string][]netip.Prefix{}
	for _, ff := range files[1:] {
		if !strings.HasPrefix(ff.Name, "panos-feed-") || !strings.HasSuffix(ff.Name, ".txt") {
			return nil, fmt.Errorf("%s: expected one configuration and feed files panos-feed-NAME.txt", ff.Name)
		}
		pfs, err := parseFeedFile(ff.Name, ff.Data)
		if err != nil {
			return nil, err
		}
		feeds[ff.Name] = pfs
	}
	var dev *device
	var err error
	if strings.HasSuffix(f.Name, ".xml") || (!strings.HasSuffix(f.Name, ".set") && strings.HasPrefix(strings.TrimSpace(string(f.Data)), "<")) {
		dev, err = parseXML(f.Name, f.Data)
	} else {
		dev, err = parseSet(f.Name, f.Data)
	}
	if err != nil {
		return nil, err
	}
	dev.feedData = feeds
	return dev.resolve(f.Name)
}

// device is the configuration as read, before references are resolved.
type device struct {
	vsys       string
	addresses  map[string]*rAddress
	groups     map[string]*rGroup
	services   map[string]*rService
	svcGroups  map[string]*rGroup
	security   rulebase
	decryption rulebase
	edls       map[string]*rEDL
	feedData   map[string][]netip.Prefix // feed file name -> its prefixes
	qos        *rQoS                     // QoS profile, QoS rules and markings (qos.go)
}

type rAddress struct {
	line   int
	prefix netip.Prefix // ip-netmask
	fqdn   string
}

type rGroup struct {
	line    int
	members []string
}

type rService struct {
	line       int
	proto      string
	port       string
	sourcePort string
}

// rRule is a security or decryption rule. Lists hold from, to, source,
// destination, application, service, source-user, category; flags hold yes/no
// settings (log-end, disabled, negate-source, ...).
type rRule struct {
	name        string
	line        int
	lists       map[string][]string
	action      string
	ruleType    string
	decryptType string
	description string
	flags       map[string]bool
}

// rulebase keeps rules in evaluation order. A new rule goes to the bottom, as
// on PAN-OS; move reorders.
type rulebase struct {
	order  []*rRule
	byName map[string]*rRule
}

func newDevice() *device {
	return &device{
		addresses:  map[string]*rAddress{},
		groups:     map[string]*rGroup{},
		services:   map[string]*rService{},
		svcGroups:  map[string]*rGroup{},
		edls:       map[string]*rEDL{},
		security:   rulebase{byName: map[string]*rRule{}},
		decryption: rulebase{byName: map[string]*rRule{}},
	}
}

func (rb *rulebase) rule(name string, line int) *rRule {
	if r, ok := rb.byName[name]; ok {
		return r
	}
	r := &rRule{name: name, line: line, lists: map[string][]string{}, flags: map[string]bool{}}
	rb.byName[name] = r
	rb.order = append(rb.order, r)
	return r
}

func (rb *rulebase) index(name string) int {
	for i, r := range rb.order {
		if r.name == name {
			return i
		}
	}
	return -1
}

// move implements `move ... rules NAME top|bottom|before REF|after REF`.
func (rb *rulebase) move(name, where, ref string) error {
	i := rb.index(name)
	if i < 0 {
		return fmt.Errorf("move of rule %q, which does not exist", name)
	}
	r := rb.order[i]
	rb.order = append(rb.order[:i:i], rb.order[i+1:]...)
	at := 0
	switch where {
	case "top":
	case "bottom":
		at = len(rb.order)
	case "before", "after":
		j := rb.index(ref)
		if j < 0 || ref == name {
			return fmt.Errorf("move %s rule %q, which does not exist", where, ref)
		}
		at = j
		if where == "after" {
			at = j + 1
		}
	default:
		return fmt.Errorf("move to %q: expected top, bottom, before or after", where)
	}
	rb.order = append(rb.order[:at], append([]*rRule{r}, rb.order[at:]...)...)
	return nil
}

// addList adds members to a rule's list, as a repeated `set` does on PAN-OS.
func (r *rRule) addList(key string, members []string) {
	for _, m := range members {
		if !contains(r.lists[key], m) {
			r.lists[key] = append(r.lists[key], m)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// config is a resolved configuration that decides packets.
type config struct {
	vsys       string
	zoneOf     func(irZone string) string // nil: ZoneName
	rules      []rule
	decryption []decryption
	qos        *cQoS // qos.go
}

type rule struct {
	name           string
	from, to       []string // nil: any zone
	ruleType       string
	src, dst       addrMatch
	negSrc, negDst bool
	svc            svcMatch
	action         ir.Action
	disabled       bool
	logEnd         bool
	source         string // policy location from the description
}

type decryption struct {
	name         string
	action       string
	decryptType  string
	destinations []string
	dst          addrMatch
	description  string
}

type addrMatch struct {
	any   bool
	set   *netipx.IPSet
	fqdns []string
}

type svcMatch struct {
	any     bool
	entries []svcEntry
}

type svcEntry struct {
	proto         ir.Proto
	ports, source []ir.PortRange // source nil: any
}

// resolve checks every reference as a commit would and builds the matchers.
func (d *device) resolve(file string) (*config, error) {
	errAt := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
	}
	for name, g := range d.groups {
		if _, clash := d.addresses[name]; clash {
			return nil, errAt(g.line, "address group %q has the name of an address object", name)
		}
		if len(g.members) == 0 {
			return nil, errAt(g.line, "address group %q has no members", name)
		}
	}
	for name, g := range d.svcGroups {
		if _, clash := d.services[name]; clash {
			return nil, errAt(g.line, "service group %q has the name of a service object", name)
		}
		if len(g.members) == 0 {
			return nil, errAt(g.line, "service group %q has no members", name)
		}
	}
	for name, e := range d.edls {
		if _, clash := d.addresses[name]; clash || d.groups[name] != nil {
			return nil, errAt(e.line, "external list %q has the name of an address or group", name)
		}
		if e.url == "" || e.refresh == "" {
			return nil, errAt(e.line, "external list %q needs a url and a recurring refresh", name)
		}
	}
	for name, a := range d.addresses {
		if !a.prefix.IsValid() && a.fqdn == "" {
			return nil, errAt(a.line, "address %q has neither ip-netmask nor fqdn", name)
		}
	}
	for name, s := range d.services {
		if s.proto == "" || s.port == "" {
			return nil, errAt(s.line, "service %q needs a protocol and a destination port", name)
		}
	}

	c := &config{vsys: d.vsys}
	for _, r := range d.security.order {
		rr, err := d.resolveSecurity(r)
		if err != nil {
			return nil, errAt(r.line, "security rule %q: %v", r.name, err)
		}
		c.rules = append(c.rules, rr)
	}
	for _, r := range d.decryption.order {
		dr, err := d.resolveDecryption(r)
		if err != nil {
			return nil, errAt(r.line, "decryption rule %q: %v", r.name, err)
		}
		c.decryption = append(c.decryption, dr)
	}
	if err := d.resolveQoS(c, errAt); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *device) resolveSecurity(r *rRule) (rule, error) {
	out := rule{name: r.name, disabled: r.flags["disabled"], logEnd: r.flags["log-end"],
		negSrc: r.flags["negate-source"], negDst: r.flags["negate-destination"]}
	for _, key := range []string{"from", "to", "source", "destination", "application", "service"} {
		if len(r.lists[key]) == 0 {
			return out, fmt.Errorf("%s is missing", key)
		}
	}
	for key, list := range r.lists {
		if len(list) > 1 && contains(list, "any") {
			return out, fmt.Errorf("%s mixes any with other members", key)
		}
	}
	if app := r.lists["application"]; len(app) != 1 || app[0] != "any" {
		return out, fmt.Errorf("application %v: the reader models application any only", app)
	}
	for _, key := range []string{"source-user", "category"} {
		if l := r.lists[key]; len(l) > 0 && (len(l) != 1 || l[0] != "any") {
			return out, fmt.Errorf("%s %v: the reader models any only", key, l)
		}
	}
	out.from, out.to = zoneList(r.lists["from"]), zoneList(r.lists["to"])
	switch r.ruleType {
	case "", "universal":
		out.ruleType = "universal"
	case "intrazone", "interzone":
		out.ruleType = r.ruleType
	default:
		return out, fmt.Errorf("unknown rule-type %q", r.ruleType)
	}
	switch r.action {
	case "allow":
		out.action = ir.Allow
	case "deny", "drop", "reset-client", "reset-server", "reset-both":
		out.action = ir.Deny
	case "":
		return out, fmt.Errorf("action is missing")
	default:
		return out, fmt.Errorf("unknown action %q", r.action)
	}
	var err error
	if out.src, err = d.addrMatch(r.lists["source"]); err != nil {
		return out, fmt.Errorf("source: %v", err)
	}
	if out.dst, err = d.addrMatch(r.lists["destination"]); err != nil {
		return out, fmt.Errorf("destination: %v", err)
	}
	if out.svc, err = d.svcMatch(r.lists["service"]); err != nil {
		return out, fmt.Errorf("service: %v", err)
	}
	out.source = descriptionSource(r.description)
	return out, nil
}

func (d *device) resolveDecryption(r *rRule) (decryption, error) {
	out := decryption{name: r.name, action: r.action, decryptType: r.decryptType,
		destinations: r.lists["destination"], description: r.description}
	switch r.action {
	case "no-decrypt", "decrypt", "decrypt-and-forward":
	default:
		return out, fmt.Errorf("unknown action %q", r.action)
	}
	if r.decryptType == "" {
		return out, fmt.Errorf("type is missing")
	}
	for _, key := range []string{"from", "to", "source", "destination"} {
		if len(r.lists[key]) == 0 {
			return out, fmt.Errorf("%s is missing", key)
		}
	}
	if _, err := d.addrMatch(r.lists["source"]); err != nil {
		return out, fmt.Errorf("source: %v", err)
	}
	var err error
	if out.dst, err = d.addrMatch(r.lists["destination"]); err != nil {
		return out, fmt.Errorf("destination: %v", err)
	}
	if svc := r.lists["service"]; len(svc) > 0 {
		if _, err := d.svcMatch(svc); err != nil {
			return out, fmt.Errorf("service: %v", err)
		}
	}
	return out, nil
}

func zoneList(list []string) []string {
	if len(list) == 1 && list[0] == "any" {
		return nil
	}
	return list
}

// addrMatch resolves address objects, groups (nested), literal addresses and
// prefixes, or any.
func (d *device) addrMatch(members []string) (addrMatch, error) {
	if len(members) == 1 && members[0] == "any" {
		return addrMatch{any: true}, nil
	}
	var b netipx.IPSetBuilder
	var m addrMatch
	var walk func(name string, depth int) error
	walk = func(name string, depth int) error {
		if depth > 32 {
			return fmt.Errorf("address groups nest too deep (a cycle?) at %q", name)
		}
		if a, ok := d.addresses[name]; ok {
			if a.fqdn != "" {
				m.fqdns = append(m.fqdns, a.fqdn)
			} else {
				b.AddPrefix(a.prefix)
			}
			return nil
		}
		if g, ok := d.groups[name]; ok {
			for _, member := range g.members {
				if err := walk(member, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if e, ok := d.edls[name]; ok && depth == 0 {
			pfs, err := d.feedPrefixes(name, e)
			if err != nil {
				return err
			}
			for _, pf := range pfs {
				b.AddPrefix(pf)
			}
			return nil
		}
		if pf, err := netip.ParsePrefix(name); err == nil {
			b.AddPrefix(pf.Masked())
			return nil
		}
		if a, err := netip.ParseAddr(name); err == nil {
			b.Add(a)
			return nil
		}
		return fmt.Errorf("%q is not an address, address group or IP address", name)
	}
	for _, name := range members {
		if err := walk(name, 0); err != nil {
			return m, err
		}
	}
	set, err := b.IPSet()
	if err != nil {
		return m, err
	}
	m.set = set
	return m, nil
}

func (d *device) svcMatch(members []string) (svcMatch, error) {
	if len(members) == 1 && members[0] == "any" {
		return svcMatch{any: true}, nil
	}
	var m svcMatch
	var walk func(name string, depth int) error
	walk = func(name string, depth int) error {
		if depth > 32 {
			return fmt.Errorf("service groups nest too deep (a cycle?) at %q", name)
		}
		if s, ok := d.services[name]; ok {
			e := svcEntry{proto: ir.Proto(s.proto)}
			var err error
			if e.ports, err = parsePorts(s.port); err != nil {
				return fmt.Errorf("service %q port: %v", name, err)
			}
			if s.sourcePort != "" {
				if e.source, err = parsePorts(s.sourcePort); err != nil {
					return fmt.Errorf("service %q source-port: %v", name, err)
				}
			}
			m.entries = append(m.entries, e)
			return nil
		}
		if g, ok := d.svcGroups[name]; ok {
			for _, member := range g.members {
				if err := walk(member, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if name == "application-default" {
			return fmt.Errorf("application-default depends on App-ID; the reader models explicit services only")
		}
		return fmt.Errorf("%q is not a service or service group", name)
	}
	for _, name := range members {
		if err := walk(name, 0); err != nil {
			return m, err
		}
	}
	return m, nil
}

// parsePorts reads "443,3478-3481".
func parsePorts(s string) ([]ir.PortRange, error) {
	var out []ir.PortRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q is not a port", part)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
				return nil, fmt.Errorf("%q is not a port range", part)
			}
		}
		out = append(out, ir.PortRange{First: uint16(first), Last: uint16(last)})
	}
	return out, nil
}

// descriptionSource recovers "policy.hcl:12" from "[policy.hcl:12] comment".
func descriptionSource(desc string) string {
	if !strings.HasPrefix(desc, "[") {
		return ""
	}
	end := strings.IndexByte(desc, ']')
	if end < 0 {
		return ""
	}
	return desc[1:end]
}

// Decide implements backends.Config: the first enabled rule that matches, in
// rulebase order; then PAN-OS's predefined rules, intrazone-default (allow)
// and interzone-default (deny). A closing any-to-any rule with no policy
// source is the policy's default and is reported with an empty Rule. The packet's zones are IR zone names and are
// mapped with ZoneName; an empty zone is unknown and matches any zone.
func (c *config) Decide(pkt ir.Packet) backends.Decision {
	from, to := pkt.FromZone, pkt.ToZone
	zoneOf := c.zoneOf
	if zoneOf == nil {
		zoneOf = ZoneName
	}
	if from != "" {
		from = zoneOf(from)
	}
	if to != "" {
		to = zoneOf(to)
	}
	for i := range c.rules {
		r := &c.rules[i]
		if r.disabled || !r.zonesMatch(from, to) || !r.svc.matches(pkt) {
			continue
		}
		if r.src.matchesSource(pkt.Src) == r.negSrc || r.dst.matchesDestination(pkt.Dst, pkt.DstHost) == r.negDst {
			continue
		}
		if r.source == "" && r.catchAll() {
			// The closing any-to-any rule stands for the policy's default
			// action: report it as the default, as ir.Allows does.
			return backends.Decision{Action: r.action}
		}
		return backends.Decision{Action: r.action, Rule: r.name, Source: r.source}
	}
	if from != "" && from == to {
		return backends.Decision{Action: ir.Allow} // intrazone-default
	}
	return backends.Decision{Action: ir.Deny} // interzone-default
}

// catchAll reports whether the rule matches every packet.
func (r *rule) catchAll() bool {
	return r.ruleType == "universal" && r.from == nil && r.to == nil && r.src.any && r.dst.any &&
		!r.negSrc && !r.negDst && r.svc.any
}

// zonesMatch applies the rule type: universal matches from/to as listed,
// intrazone only within one zone, interzone only between two
// (https://knowledgebase.paloaltonetworks.com/KCSArticleDetail?id=kA10g000000ClomCAC).
func (r *rule) zonesMatch(from, to string) bool {
	switch r.ruleType {
	case "intrazone":
		if from != "" && to != "" && from != to {
			return false
		}
		return zoneIn(from, r.from)
	case "interzone":
		if from != "" && from == to {
			return false
		}
	}
	return zoneIn(from, r.from) && zoneIn(to, r.to)
}

func zoneIn(zone string, list []string) bool {
	return zone == "" || list == nil || contains(list, zone)
}

func (m addrMatch) matchesSource(a netip.Addr) bool {
	return m.any || m.set.Contains(a)
}

// matchesDestination: an fqdn object matches the addresses its name resolves
// to, modelled by the name the client resolved (DNS names are case-blind).
func (m addrMatch) matchesDestination(a netip.Addr, host string) bool {
	if m.any || m.set.Contains(a) {
		return true
	}
	if host == "" {
		return false
	}
	for _, f := range m.fqdns {
		if strings.EqualFold(strings.TrimSuffix(f, "."), strings.TrimSuffix(host, ".")) {
			return true
		}
	}
	return false
}

func (m svcMatch) matches(pkt ir.Packet) bool {
	if m.any {
		return true
	}
	for _, e := range m.entries {
		if e.proto == pkt.Proto && inPorts(e.ports, pkt.DstPort) && (e.source == nil || inPorts(e.source, pkt.SrcPort)) {
			return true
		}
	}
	return false
}

func inPorts(rs []ir.PortRange, port uint16) bool {
	for _, r := range rs {
		if port >= r.First && port <= r.Last {
			return true
		}
	}
	return false
}
