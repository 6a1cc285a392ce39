package fortios

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// plan is everything the output holds, named and checked, in output order.
type plan struct {
	s         settings
	addr4     []address // config firewall address
	addr6     []address // config firewall address6
	groups4   []group   // config firewall addrgrp
	groups6   []group   // config firewall addrgrp6
	customs   []custom  // config firewall service custom
	svcGroups []group   // config firewall service group
	feeds     []feed    // config system external-resource (feeds.go)
	policies  []policy  // config firewall policy, rules then the default
	qos       *qosPlan  // traffic shapers and shaping policies (qos.go)
}

type address struct {
	name   string
	prefix netip.Prefix // a subnet object when valid
	fqdn   string       // an fqdn object otherwise
}

type group struct {
	name    string
	members []string
	comment string
	set     string // the IR set of an address group
}

type custom struct {
	name  string
	proto ir.Proto
	items []string // "dlo-dhi:slo-shi"
}

// policy is one `edit ID` block. An empty address name means `unset`.
type policy struct {
	id                 uint64
	name               string
	srcintf, dstintf   []string
	srcaddr, dstaddr   string
	srcaddr6, dstaddr6 string
	action             string
	enabled            bool
	service            string
	log                bool
	sslProfile         string // set with utm-status enable when not empty
	comment            string
}

// FortiOS built-in objects the output refers to.
const (
	anyInterface = "any"    // every interface
	allAddress   = "all"    // 0.0.0.0/0 in address, ::/0 in address6
	noneAddress  = "none"   // matches no address: https://community.fortinet.com/t5/FortiGate/Technical-Tip-Behavior-of-the-firewall-policy-if-Source-is-set/ta-p/406462
	allService   = "ALL"    // every protocol
	alwaysSched  = "always" // the built-in always-on schedule
)

// Interface names as the compiler accepts them (compiler/eval/decode.go), at
// most 35 characters: a policy's srcintf/dstintf holds an interface or a
// FortiOS zone name of up to 35
// (https://docs.fortinet.com/document/fortigate/6.4.9/cli-reference/319620).
// They are device names, so they are checked, never rewritten.
var interfaceName = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._/:-]{0,34}$`)

// FQDN objects: host names of at most 255 characters (firewall address fqdn
// size[255], https://docs.fortinet.com/document/fortigate/6.0.0/cli-reference/969597/firewall-address-address6).
// A '*' would need FortiOS's wildcard-fqdn type, and the IR matches names
// exactly, so it is refused.
var fqdnName = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

func buildPlan(p *ir.Program, s settings) (*plan, error) {
	out := &plan{s: s}
	zoneIfs := s.zoneInterfaces(p)

	// Names. v4 and v6 objects live in separate FortiOS tables; their names
	// differ anyway ("tw-" and "tw6-") so that a reader of the policy list
	// always sees the family.
	v4 := newNamespace("tw-", objectNameMax)
	v6 := newNamespace("tw6-", objectNameMax)
	svc := newNamespace("tw-", objectNameMax)
	pol := newNamespace("tw-", policyNameMax)

	// Address groups first, so that they keep the plain names; then the
	// member objects, deduplicated across sets.
	grp4 := map[string]string{} // IR set -> addrgrp name, "" when it has no v4 member
	grp6 := map[string]string{}
	var prefixes4, prefixes6 []netip.Prefix // masked; sorted and made distinct below
	fqdns := map[string]bool{}
	for i := range p.AddressSets {
		set := &p.AddressSets[i]
		if s.feeds.isFeed(set) {
			for _, fam := range []struct {
				v4  bool
				ns  *namespace
				grp map[string]string
			}{{true, v4, grp4}, {false, v6, grp6}} {
				prs := aggregated(set, fam.v4)
				if len(prs) == 0 {
					continue
				}
				name := fam.ns.Name("feed", set.Name)
				out.feeds = append(out.feeds, feed{name: name, set: set.Name, file: name + ".txt", url: s.feeds.url + name + ".txt", prefixes: prs})
				fam.grp[set.Name] = name
			}
			continue
		}
		for _, f := range set.FQDNs {
			if !fqdnName.MatchString(f) {
				return nil, fmt.Errorf("address set %q (%s): %q is not a host name FortiOS can resolve", set.Name, set.Origin.Source, f)
			}
			fqdns[f] = true
		}
		prefixes4 = appendMasked(prefixes4, set.V4)
		prefixes6 = appendMasked(prefixes6, set.V6)
		comment := cliText(fmt.Sprintf("turnwall %s %s (%s)", set.Origin.Kind, set.Origin.Name, set.Origin.Source), groupCommentMax)
		if len(set.V4) > 0 || len(set.FQDNs) > 0 {
			grp4[set.Name] = v4.Name("group", set.Name)
			out.groups4 = append(out.groups4, group{name: grp4[set.Name], comment: comment, set: set.Name})
		}
		if len(set.V6) > 0 || len(set.FQDNs) > 0 {
			grp6[set.Name] = v6.Name("group", set.Name)
			out.groups6 = append(out.groups6, group{name: grp6[set.Name], comment: comment, set: set.Name})
		}
	}
	prefixes4, prefixes6 = sortedPrefixes(prefixes4), sortedPrefixes(prefixes6)
	out.addr4 = make([]address, 0, len(prefixes4)+len(fqdns))
	out.addr6 = make([]address, 0, len(prefixes6)+len(fqdns))
	for i, name := range v4.NameValues("subnet", prefixes4) {
		out.addr4 = append(out.addr4, address{name: name, prefix: prefixes4[i]})
	}
	for i, name := range v6.NameValues("subnet", prefixes6) {
		out.addr6 = append(out.addr6, address{name: name, prefix: prefixes6[i]})
	}
	// The object of a member prefix: out.addrN[i] is prefixesN[i]; a set's
	// prefixes come in that order, so each is found at the cursor.
	cursor := 0
	objectOf := func(addrs []address, prefixes []netip.Prefix, pr netip.Prefix) string {
		pr = pr.Masked()
		i := cursor
		if i >= len(prefixes) || prefixes[i] != pr {
			i, _ = slices.BinarySearchFunc(prefixes, pr, comparePrefixes)
		}
		cursor = i + 1
		return addrs[i].name
	}
	fqdn4, fqdn6 := map[string]string{}, map[string]string{}
	for _, f := range sortedKeys(fqdns) {
		// An FQDN member matches a name in either family, so it is an object
		// in both tables (address6 has type fqdn since FortiOS 6.0).
		fqdn4[f], fqdn6[f] = v4.Name("fqdn", f), v6.Name("fqdn", f)
		out.addr4 = append(out.addr4, address{name: fqdn4[f], fqdn: f})
		out.addr6 = append(out.addr6, address{name: fqdn6[f], fqdn: f})
	}
	g4, g6 := 0, 0
	for i := range p.AddressSets {
		set := &p.AddressSets[i]
		if s.feeds.isFeed(set) {
			continue
		}
		if grp4[set.Name] != "" {
			out.groups4[g4].members = make([]string, 0, len(set.V4)+len(set.FQDNs))
			cursor = 0
			for _, pr := range set.V4 {
				out.groups4[g4].members = append(out.groups4[g4].members, objectOf(out.addr4, prefixes4, pr))
			}
			for _, f := range set.FQDNs {
				out.groups4[g4].members = append(out.groups4[g4].members, fqdn4[f])
			}
			g4++
		}
		if grp6[set.Name] != "" {
			out.groups6[g6].members = make([]string, 0, len(set.V6)+len(set.FQDNs))
			cursor = 0
			for _, pr := range set.V6 {
				out.groups6[g6].members = append(out.groups6[g6].members, objectOf(out.addr6, prefixes6, pr))
			}
			for _, f := range set.FQDNs {
				out.groups6[g6].members = append(out.groups6[g6].members, fqdn6[f])
			}
			g6++
		}
	}
	nestGroups(out.groups4)
	nestGroups(out.groups6)

	// Services: one custom service per IR service set and protocol, in one
	// service group per set. A custom service holds only its protocol's
	// ranges, so a protocol dropped from a set leaves the group on the next
	// run, with nothing stale left in an object the group still uses.
	svcGroup := map[string]string{} // IR service -> group name, "" when it has no entry
	for _, set := range p.Services {
		byProto := map[ir.Proto][]ir.ServiceEntry{}
		for _, e := range set.Entries {
			if e.Proto != ir.UDP && e.Proto != ir.TCP {
				return nil, fmt.Errorf("service %q: protocol %q is not udp or tcp", set.Name, e.Proto)
			}
			byProto[e.Proto] = append(byProto[e.Proto], e)
		}
		if len(byProto) == 0 {
			continue
		}
		g := group{name: svc.Name("group", set.Name)}
		svcGroup[set.Name] = g.name
		for _, proto := range []ir.Proto{ir.TCP, ir.UDP} {
			entries := byProto[proto]
			if len(entries) == 0 {
				continue
			}
			items, err := portItems(entries)
			if err != nil {
				return nil, fmt.Errorf("service %q: %v", set.Name, err)
			}
			c := custom{name: svc.Name("custom", set.Name+"-"+string(proto)), proto: proto, items: items}
			out.customs = append(out.customs, c)
			g.members = append(g.members, c.name)
		}
		out.svcGroups = append(out.svcGroups, g)
	}

	// Policies: each rule takes an id from its name (allocateIDs), the
	// default, when emitted, takes lastID (Check made sure the range holds
	// them all).
	// A rule called "default" would clean to tw-default, which is reserved.
	// Policy names must be unique, so a repeated rule name gets a key of its
	// own (with '#', which the namer replaces and hashes).
	usedKeys := map[string]bool{}
	names := make([]string, len(p.Rules))
	for i := range p.Rules {
		r := &p.Rules[i]
		key := r.Name
		for n := 2; usedKeys[key]; n++ {
			key = fmt.Sprintf("%s#%d", r.Name, n)
		}
		usedKeys[key] = true
		names[i] = pol.Name("rule", key)
	}
	ids := allocateIDs(names, s.firstID, s.lastID)
	for i := range p.Rules {
		r := &p.Rules[i]
		pp, err := rulePolicy(p, r, zoneIfs, grp4, grp6, svcGroup)
		if err != nil {
			return nil, err
		}
		pp.id, pp.name = ids[names[i]], names[i]
		if r.Action == ir.Allow && (r.Purpose == ir.PurposeTURNTLS || r.Purpose == ir.PurposeSignalling) {
			pp.sslProfile = s.sslProfile
		}
		out.policies = append(out.policies, pp)
	}
	if s.place.defaultRule {
		def, err := defaultPolicy(p, s)
		if err != nil {
			return nil, err
		}
		out.policies = append(out.policies, def)
	}
	var err error
	if out.qos, err = buildQoS(p, out); err != nil {
		return nil, err
	}
	return out, nil
}

// zoneConstraints: every zone needs interfaces FortiOS can name, and no
// interface may be in two zones: FortiOS matches a policy on the interface a
// packet uses, so two zones sharing one could not be told apart.
func zoneConstraints(p *ir.Program, ifmap map[string][]string) []backends.Constraint {
	var out []backends.Constraint
	zoneOf := map[string]string{}
	for _, z := range p.Zones {
		ifs := z.Interfaces
		if ifmap != nil {
			// The interfaces map gives the box's names (placementConstraints
			// reports a zone it lacks).
			var ok bool
			if ifs, ok = ifmap[z.Name]; !ok {
				continue
			}
		}
		if len(ifs) == 0 {
			out = append(out, backends.Constraint{At: z.Source, Summary: "zone without interfaces",
				Detail: fmt.Sprintf("Zone %q has no interface; a FortiOS policy matches interfaces. Give the zone its interfaces.", z.Name)})
		}
		for _, name := range ifs {
			if !interfaceName.MatchString(name) || strings.EqualFold(name, anyInterface) {
				out = append(out, backends.Constraint{At: z.Source, Summary: "interface name",
					Detail: fmt.Sprintf("Zone %q: %q is not a FortiOS interface name (1-35 letters, digits and . _ / : -, not \"any\").", z.Name, name)})
			}
			if other, dup := zoneOf[name]; dup && other != z.Name {
				out = append(out, backends.Constraint{At: z.Source, Summary: "interface in two zones",
					Detail: fmt.Sprintf("Interface %q is in zones %q and %q; FortiOS matches policies on interfaces and could not tell the zones apart. Put it in one zone.", name, other, z.Name)})
			}
			zoneOf[name] = z.Name
		}
	}
	return out
}

func rulePolicy(p *ir.Program, r *ir.Rule, zoneIfs map[string][]string, grp4, grp6, svcGroup map[string]string) (policy, error) {
	pp := policy{enabled: true, log: r.Log}
	var err error
	if pp.srcintf, err = interfaces(zoneIfs, r.FromZone, r); err != nil {
		return pp, err
	}
	if pp.dstintf, err = interfaces(zoneIfs, r.ToZone, r); err != nil {
		return pp, err
	}
	sets, err := p.RuleSets(r)
	if err != nil {
		return pp, err
	}
	src, dst := sets.Src, sets.Dst
	// Since FortiOS 6.4 one policy holds IPv4 and IPv6 addresses, and "the IP
	// version of the sources and destinations in a policy must match"
	// (https://docs.fortinet.com/document/fortigate/6.4.0/new-features/815846/consolidated-ipv4-and-ipv6-policy-configuration):
	// srcaddr goes with dstaddr, srcaddr6 with dstaddr6. A family only one
	// side has cannot match a packet (a packet has one family), so it is
	// unset; when no family is on both sides the rule matches nothing, and
	// the pair is the built-in "none", which never matches
	// (https://community.fortinet.com/t5/FortiGate/Technical-Tip-Behavior-of-the-firewall-policy-if-Source-is-set/ta-p/406462).
	if s4, d4 := grp4[src.Name], grp4[dst.Name]; s4 != "" && d4 != "" {
		pp.srcaddr, pp.dstaddr = s4, d4
	}
	if s6, d6 := grp6[src.Name], grp6[dst.Name]; s6 != "" && d6 != "" {
		pp.srcaddr6, pp.dstaddr6 = s6, d6
	}
	if pp.srcaddr == "" && pp.srcaddr6 == "" {
		pp.srcaddr, pp.dstaddr = noneAddress, noneAddress
	}
	pp.service = svcGroup[r.Service]
	if pp.service == "" {
		// An empty service matches nothing; FortiOS wants a service, so the
		// policy is kept (its id stays turnwall's) but disabled.
		pp.service, pp.enabled = allService, false
	}
	switch r.Action {
	case ir.Allow:
		pp.action = "accept"
	case ir.Deny:
		pp.action = "deny"
	default:
		return pp, fmt.Errorf("rule %q (%s): unknown action %q", r.Name, r.Origin.Source, r.Action)
	}
	pp.comment, err = ruleComment(r)
	return pp, err
}

func interfaces(zoneIfs map[string][]string, zone string, r *ir.Rule) ([]string, error) {
	if zone == "" {
		return []string{anyInterface}, nil
	}
	ifs, ok := zoneIfs[zone]
	if !ok {
		return nil, fmt.Errorf("rule %q (%s) refers to an unknown zone %q", r.Name, r.Origin.Source, zone)
	}
	return ifs, nil
}

// ruleComment traces a policy to its rule:
//
//	turnwall SOURCE FROM->TO: TEXT
//
// SOURCE is Origin.Source.String() and FROM/TO the IR zone names ("*" for any
// zone), written with encodeToken so that they come back exactly whatever
// they hold; TEXT is the rule's comment made safe with cliText.
func ruleComment(r *ir.Rule) (string, error) {
	head := "turnwall " + encodeToken(r.Origin.Source.String(), sourceSafe) + " " +
		zoneToken(r.FromZone) + "->" + zoneToken(r.ToZone) + ":"
	room := policyCommentMax - len(head) - 1
	if room < 0 {
		return "", fmt.Errorf("rule %q: its source %q is too long for a FortiOS policy comment", r.Name, r.Origin.Source)
	}
	if text := cliText(r.Comment, room); text != "" {
		return head + " " + text, nil
	}
	return head, nil
}

func zoneToken(zone string) string {
	if zone == "" {
		return "*"
	}
	return encodeToken(zone, zoneSafe)
}

// defaultPolicy is the IR's default action as a catch-all policy on the last
// id of the range: any interface, any address of both families, any service.
func defaultPolicy(p *ir.Program, s settings) (policy, error) {
	pp := policy{
		id: s.lastID, name: defaultPolicyName, enabled: true, log: p.Policy.LogDefault,
		srcintf: []string{anyInterface}, dstintf: []string{anyInterface},
		srcaddr: allAddress, dstaddr: allAddress, srcaddr6: allAddress, dstaddr6: allAddress,
		service: allService,
	}
	switch p.Policy.DefaultAction {
	case ir.Allow:
		pp.action = "accept"
	case ir.Deny:
		pp.action = "deny"
	default:
		return pp, fmt.Errorf("policy %q: unknown default action %q", p.Policy.Name, p.Policy.DefaultAction)
	}
	head := "turnwall default:"
	text := fmt.Sprintf("policy %s, default %s (%s)", p.Policy.Name, p.Policy.DefaultAction, p.Policy.Source)
	if p.Policy.Description != "" {
		text = fmt.Sprintf("policy %s (%s), default %s (%s)", p.Policy.Name, p.Policy.Description, p.Policy.DefaultAction, p.Policy.Source)
	}
	pp.comment = head + " " + cliText(text, policyCommentMax-len(head)-1)
	return pp, nil
}

// portItems renders entries of one protocol as FortiOS port range items,
// "dlo-dhi:slo-shi" (https://docs.fortinet.com/document/fortigate/7.4.8/cli-reference/198499981):
// every destination range with every source range. FortiOS ports run from 1
// (Aerleon's generator, which targets the same syntax, rejects 0 too), so a
// range from 0 starts at 1 and "any" is 1-65535.
func portItems(entries []ir.ServiceEntry) ([]string, error) {
	var items []string
	for _, e := range entries {
		dports, err := fortiRanges(e.Ports)
		if err != nil {
			return nil, err
		}
		sports, err := fortiRanges(e.SrcPorts)
		if err != nil {
			return nil, err
		}
		if len(dports) == 0 {
			dports = []ir.PortRange{{First: 1, Last: 65535}}
		}
		for _, d := range dports {
			if len(sports) == 0 {
				items = append(items, d.String())
				continue
			}
			for _, sp := range sports {
				items = append(items, d.String()+":"+sp.String())
			}
		}
	}
	return items, nil
}

func fortiRanges(rs []ir.PortRange) ([]ir.PortRange, error) {
	var out []ir.PortRange
	for _, r := range rs {
		if r.First > r.Last {
			return nil, fmt.Errorf("port range %d-%d is reversed", r.First, r.Last)
		}
		if r.Last == 0 {
			return nil, fmt.Errorf("port 0 cannot be matched on FortiOS")
		}
		if r.First == 0 {
			r.First = 1
		}
		out = append(out, r)
	}
	return out, nil
}

// appendMasked appends the prefixes, masked.
func appendMasked(dst, prs []netip.Prefix) []netip.Prefix {
	dst = slices.Grow(dst, len(prs))
	for _, pr := range prs {
		dst = append(dst, pr.Masked())
	}
	return dst
}

// sortedPrefixes sorts the prefixes and drops repeats.
func sortedPrefixes(prs []netip.Prefix) []netip.Prefix {
	slices.SortFunc(prs, comparePrefixes)
	return slices.Compact(prs)
}

// comparePrefixes orders by address (IPv4 first), then shorter first.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
