package panos

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// plan is the PAN-OS configuration turnwall emits, with every name already a
// valid PAN-OS name and every text already safe. Both renderings (set, xml)
// are a straight walk over it.
type plan struct {
	vsys      string
	place     place
	addresses []address
	groups    []memberList // address groups
	services  []service
	svcGroups []memberList
	rules     []securityRule // policy rules in IR order, then the default rule
	decrypt   *decryptionRule
	feeds     []feed   // external dynamic lists standing for big address sets
	qos       *qosPlan // the qos block (qos.go); nil without one
}

type address struct {
	name  string
	kind  string // "ip-netmask" or "fqdn"
	value string
}

type memberList struct {
	name    string
	members []string
	set     string // the IR set of an address group
}

type service struct {
	name       string
	proto      string // "tcp" or "udp"
	port       string // "443,5349" or "16384-65535"; PAN-OS requires one
	sourcePort string // empty: any source port
}

type securityRule struct {
	name        string
	from, to    string // zone or "any"
	source      string // address group or "any"
	destination string
	service     string // service group or "any"
	action      string // "allow" or "deny"
	logEnd      bool
	description string
	irRule      string // the IR rule; empty for the default rule
	dscp        string // QoS marking (qos.go); empty for none
}

type decryptionRule struct {
	name         string
	destinations []string // address groups
	description  string
}

// maxPortList is PAN-OS's limit on a service's port string (pan-os-codegen
// specs/objects/service.yaml: port and source-port up to 1023 characters).
// Longer port lists are split over several service objects of one group.
const maxPortList = 1023

// fqdnPattern is what turnwall accepts as a PAN-OS fqdn value: DNS labels of
// letters, digits, '-' and '_', separated by dots, 255 characters at most. A
// final dot is accepted in the IR and left out of the object.
var fqdnPattern = lazyre.New(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?$`)

func buildPlan(p *ir.Program, where place) (*plan, error) {
	pl := &plan{vsys: where.vsys, place: where}

	zones := map[string]string{} // lower-cased PAN-OS zone -> IR zone
	zone := func(z string) (string, error) {
		if z == "" {
			return "any", nil
		}
		t, ok := where.zone(z)
		if !ok {
			return "", fmt.Errorf("zone %q is missing from the zone map (--param panos.zones): add %s=PANZONE", z, z)
		}
		if other, ok := zones[strings.ToLower(t)]; ok && other != z {
			return "", fmt.Errorf("zones %q and %q both map to the PAN-OS zone name %q; rename one", other, z, t)
		}
		zones[strings.ToLower(t)] = z
		return t, nil
	}
	if where.zones == nil {
		for _, z := range p.Zones {
			if _, err := zone(z.Name); err != nil {
				return nil, err
			}
		}
	}

	// Which rules can match at all, and which sets they need. A rule whose
	// address or service set is empty never matches (ir.Allows), and PAN-OS
	// rejects an empty group, so such a rule is left out: the verdicts stay
	// the same.
	type keptRule struct {
		r        *ir.Rule
		from, to string
	}
	var kept []keptRule
	usedAddr := map[string]bool{}
	usedSvc := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		where := fmt.Sprintf("rule %q (%s)", r.Name, r.Origin.Source)
		if r.Action != ir.Allow && r.Action != ir.Deny {
			return nil, fmt.Errorf("%s: unknown action %q", where, r.Action)
		}
		sets, err := p.RuleSets(r)
		if err != nil {
			return nil, err
		}
		from, err := zone(r.FromZone)
		if err != nil {
			return nil, err
		}
		to, err := zone(r.ToZone)
		if err != nil {
			return nil, err
		}
		if !sets.CanMatch() {
			continue
		}
		kept = append(kept, keptRule{r, from, to})
		usedAddr[r.Src], usedAddr[r.Dst], usedSvc[r.Service] = true, true, true
	}

	// Address objects: one per distinct prefix or FQDN, shared by the groups,
	// named after their value so that the name says what the object holds.
	addrNS := newNamespace(prefixed(objectRules(), where.objectPrefix))
	var all []netip.Prefix // every used set's prefixes, masked, sorted, distinct
	var fqdns []string
	seenFQDN := map[string]bool{}
	fed := map[string]bool{}
	for i := range p.AddressSets {
		s := &p.AddressSets[i]
		if !usedAddr[s.Name] {
			continue
		}
		if where.feeds(s) {
			fed[s.Name] = true
			continue
		}
		all = slices.Grow(all, len(s.V4)+len(s.V6))
		for _, list := range [2][]netip.Prefix{s.V4, s.V6} {
			for _, pf := range list {
				all = append(all, pf.Masked())
			}
		}
		for _, f := range s.FQDNs {
			if len(f) > 255 || !fqdnPattern.MatchString(f) {
				return nil, fmt.Errorf("address set %q (%s): %q is not a domain name PAN-OS accepts as an fqdn address", s.Name, s.Origin.Source, f)
			}
			if f = strings.TrimSuffix(f, "."); !seenFQDN[f] {
				seenFQDN[f] = true
				fqdns = append(fqdns, f)
			}
		}
	}
	sortPrefixes(all) // IPv4 sorts before IPv6
	all = slices.Compact(all)
	sort.Strings(fqdns)
	pl.addresses = make([]address, 0, len(all)+len(fqdns))
	prefixNames := addrNS.NameValues("object", all) // the object of all[i]
	for i, pf := range all {
		// ip-netmask takes IPv4 and IPv6 prefixes alike (Objects > Addresses:
		// "IP Netmask: the IPv4 or IPv6 address ... ip_address/mask").
		pl.addresses = append(pl.addresses, address{name: prefixNames[i], kind: "ip-netmask", value: pf.String()})
	}
	fqdnName := map[string]string{}
	for _, f := range fqdns {
		name := addrNS.Name("object", "fqdn-"+f)
		fqdnName[f] = name
		pl.addresses = append(pl.addresses, address{name: name, kind: "fqdn", value: f})
	}

	// Address groups: one static group per IR set, both families together.
	groupName := map[string]string{}
	inGroup := make([]int, len(all)) // 1 + the last group all[i] was added to
	for i := range p.AddressSets {
		s := &p.AddressSets[i]
		if !usedAddr[s.Name] {
			continue
		}
		if fed[s.Name] {
			f, err := newFeed(s, addrNS.Name("feed", "feed-"+s.Name), where)
			if err != nil {
				return nil, err
			}
			groupName[s.Name] = f.name
			pl.feeds = append(pl.feeds, f)
			continue
		}
		g := memberList{name: addrNS.Name("group", s.Name), set: s.Name}
		g.members = make([]string, 0, len(s.V4)+len(s.V6)+len(s.FQDNs))
		// Members are distinct by construction (IR prefixes are a minimal
		// cover; FQDNs are deduplicated); the marks and the map only guard
		// against two spellings of one member. A set's prefixes come in
		// all's order, so each is found at the cursor.
		cursor := 0
		for _, list := range [2][]netip.Prefix{s.V4, s.V6} {
			for _, pf := range list {
				pf = pf.Masked()
				j := cursor
				if j >= len(all) || all[j] != pf {
					j, _ = slices.BinarySearchFunc(all, pf, comparePrefixes)
				}
				cursor = j + 1
				if inGroup[j] != i+1 {
					inGroup[j] = i + 1
					g.members = append(g.members, prefixNames[j])
				}
			}
		}
		seen := map[string]bool{}
		for _, f := range s.FQDNs {
			if m := fqdnName[strings.TrimSuffix(f, ".")]; !seen[m] {
				seen[m] = true
				g.members = append(g.members, m)
			}
		}
		groupName[s.Name] = g.name
		pl.groups = append(pl.groups, g)
	}

	// Services: one object per protocol entry (and per 1023-character chunk of
	// ports), gathered in one service group per IR service set.
	svcNS := newNamespace(prefixed(objectRules("application-default", "service-http", "service-https"), where.objectPrefix))
	svcGroupName := map[string]string{}
	for _, s := range p.Services {
		if !usedSvc[s.Name] {
			continue
		}
		g := memberList{}
		count := map[ir.Proto]int{}
		for _, e := range s.Entries {
			if e.Proto != ir.UDP && e.Proto != ir.TCP {
				return nil, fmt.Errorf("service set %q: protocol %q is neither tcp nor udp", s.Name, e.Proto)
			}
			ports, err := portChunks(e.Ports)
			if err != nil {
				return nil, fmt.Errorf("service set %q: %v", s.Name, err)
			}
			var sourcePort string
			if len(e.SrcPorts) > 0 {
				chunks, err := portChunks(e.SrcPorts)
				if err != nil {
					return nil, fmt.Errorf("service set %q: %v", s.Name, err)
				}
				if len(chunks) > 1 {
					return nil, fmt.Errorf("service set %q: the source ports do not fit in one PAN-OS service (%d characters at most)", s.Name, maxPortList)
				}
				sourcePort = chunks[0]
			}
			for _, port := range ports {
				count[e.Proto]++
				key := s.Name + "-" + string(e.Proto)
				if n := count[e.Proto]; n > 1 {
					key += "-" + strconv.Itoa(n)
				}
				svc := service{name: svcNS.Name("service", key), proto: string(e.Proto), port: port, sourcePort: sourcePort}
				pl.services = append(pl.services, svc)
				g.members = append(g.members, svc.name)
			}
		}
		g.name = svcNS.Name("group", s.Name)
		svcGroupName[s.Name] = g.name
		pl.svcGroups = append(pl.svcGroups, g)
	}

	// Security rules in IR order. Every rule is universal (intrazone and
	// interzone alike, as the IR's zone match), uses explicit services with
	// application any (application-default would pin ssl to tcp/443 and deny
	// TURN/TLS on 5349), and logs at session end when the policy rule asks
	// for logging (log-end no otherwise, so the log flag means the same on
	// every target).
	ruleNS := newNamespace(ruleRules(where.rulePrefix))
	for _, k := range kept {
		r := k.r
		pl.rules = append(pl.rules, securityRule{
			name:        ruleNS.Name("rule", r.Name),
			from:        k.from,
			to:          k.to,
			source:      groupName[r.Src],
			destination: groupName[r.Dst],
			service:     svcGroupName[r.Service],
			action:      string(r.Action),
			logEnd:      r.Log,
			description: ruleDescription(*r),
			irRule:      r.Name,
		})
	}

	// The default rule. PAN-OS ends every rulebase with intrazone-default
	// (allow) and interzone-default (deny) (PAN-OS web interface help,
	// Security Policy Overview: "predefined to allow all intrazone traffic
	// ... and deny all interzone traffic",
	// https://docs.paloaltonetworks.com/pan-os/9-0/pan-os-web-interface-help/policies/policies-security/security-policy-overview).
	// The policy's default applies within a zone too, so an explicit
	// universal any-to-any rule closes the rulebase, when asked for
	// (default-rule=emit): on a box with a rulebase of its own it would
	// override what the box already allows, so by default the packets no
	// turnwall rule matches are left to the box.
	action := p.Policy.DefaultAction
	if action != ir.Allow && action != ir.Deny {
		return nil, fmt.Errorf("policy %q: unknown default action %q", p.Policy.Name, action)
	}
	if where.defaultRule {
		pl.rules = append(pl.rules, securityRule{
			name: ruleNS.Name("default", "default-"+string(action)),
			from: "any", to: "any", source: "any", destination: "any", service: "any",
			action: string(action),
			logEnd: p.Policy.LogDefault,
			description: fmt.Sprintf("turnwall default of policy %s: %s every connection no rule above matches, within a zone too (%s)",
				cleanText(p.Policy.Name, 200), action, sourceTag(p.Policy.Source)),
		})
	}

	// TURN/TLS must not be decrypted: SSL forward proxy re-signs the relay's
	// certificate and expects HTTP inside, which breaks TURN over TLS, and
	// WebRTC clients fall back to TURN/TLS on TCP 443 to the signalling
	// endpoints. A no-decrypt rule on top of the decryption rulebase keeps
	// every decrypt rule from touching them ("make sure that a decryption
	// exclusion rule is listed first in your decryption policy",
	// https://docs.paloaltonetworks.com/pan-os/7-1/pan-os-admin/decryption/configure-decryption-exceptions.html).
	var exempt []string
	for _, k := range kept {
		r := k.r
		if r.Action == ir.Allow && (r.Purpose == ir.PurposeTURNTLS || r.Purpose == ir.PurposeSignalling) {
			exempt = appendNew(exempt, groupName[r.Dst])
		}
	}
	if len(exempt) > 0 {
		pl.decrypt = &decryptionRule{
			name:         ruleNS.Name("default", "no-decrypt-turn-tls"),
			destinations: exempt,
			description: fmt.Sprintf("turnwall policy %s: never decrypt TURN/TLS and WebRTC signalling; TLS inspection breaks TURN/TLS, which also falls back to TCP 443 (%s)",
				cleanText(p.Policy.Name, 200), sourceTag(p.Policy.Source)),
		}
	}
	if err := buildQoS(p, pl, where.rulePrefix); err != nil {
		return nil, err
	}
	return pl, nil
}

// prefixed sets the ownership prefix of a namespace's names.
func prefixed(r naming.Rules, prefix string) naming.Rules {
	r.Prefix = prefix
	return r
}

// ruleRules: rule names are unique per vsys, and PAN-OS reserves the names of
// its two predefined rules (pan-os-codegen specs/policies/security-policy-rule.yaml).
func ruleRules(prefix string) naming.Rules {
	r := objectRules("intrazone-default", "interzone-default")
	r.Prefix = prefix
	return r
}

// prefixObjectKey names an address object after its value: net-10.20.0.0_16,
// host-198.51.100.10, net6-fd00-20--_48, host6-2001-db8--10 (':' and '/' are
// not name characters; the mapping is one-to-one).
func prefixObjectKey(pf netip.Prefix) string {
	return string(appendPrefixObjectKey(nil, pf))
}

// appendPrefixObjectKey appends prefixObjectKey(pf) to b.
func appendPrefixObjectKey(b []byte, pf netip.Prefix) []byte {
	single := pf.IsSingleIP()
	switch {
	case single && pf.Addr().Is4():
		b = append(b, "host-"...)
	case single:
		b = append(b, "host6-"...)
	case pf.Addr().Is4():
		b = append(b, "net-"...)
	default:
		b = append(b, "net6-"...)
	}
	start := len(b)
	b = pf.Addr().AppendTo(b)
	for i := start; i < len(b); i++ {
		if b[i] == ':' {
			b[i] = '-'
		}
	}
	if !single {
		b = append(b, '_')
		b = strconv.AppendInt(b, int64(pf.Bits()), 10)
	}
	return b
}

func sortPrefixes(ps []netip.Prefix) { slices.SortFunc(ps, comparePrefixes) }

// comparePrefixes orders by address (IPv4 first), then shorter first.
func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// portChunks renders port ranges as PAN-OS port strings ("443,3478-3481"),
// split where one string would pass the length limit. No ranges means every
// port: PAN-OS requires a destination port, and takes 0 to 65535 (Objects >
// Services: "Enter the destination port number (0 to 65535) or range of port
// numbers (port1-port2) ... Multiple ports or ranges must be separated by
// commas. The destination port is required",
// https://docs.paloaltonetworks.com/pan-os/10-0/pan-os-web-interface-help/objects/objects-services).
func portChunks(rs []ir.PortRange) ([]string, error) {
	if len(rs) == 0 {
		return []string{"0-65535"}, nil
	}
	var out []string
	var cur strings.Builder
	for _, r := range rs {
		if r.First > r.Last {
			return nil, fmt.Errorf("port range %d-%d is backwards", r.First, r.Last)
		}
		s := r.String()
		if cur.Len() > 0 && cur.Len()+1+len(s) > maxPortList {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(',')
		}
		cur.WriteString(s)
	}
	return append(out, cur.String()), nil
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// parsePrefixObjectKey reverses prefixObjectKey.
func parsePrefixObjectKey(key string) (netip.Prefix, bool) {
	kind, rest, ok := strings.Cut(key, "-")
	if !ok {
		return netip.Prefix{}, false
	}
	addr, bits, hasBits := strings.Cut(rest, "_")
	if strings.HasSuffix(kind, "6") {
		addr = strings.ReplaceAll(addr, "-", ":")
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false
	}
	n := a.BitLen()
	if hasBits {
		if n, err = strconv.Atoi(bits); err != nil {
			return netip.Prefix{}, false
		}
	}
	p := netip.PrefixFrom(a, n)
	return p, p.IsValid()
}
