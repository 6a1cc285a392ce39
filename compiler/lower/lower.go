// Package lower turns an evaluated policy into the IR: one named address set per
// agents group, provider, relay and rule side (IPv4 and IPv6 apart, aggregated to
// the minimal prefix cover), one service set per purpose, and the stateful rules
// every WebRTC flow of the policy needs.
package lower

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/ir"
)

// ReturnMediaPorts are the agent ports a relay's allocations may send to: the
// unprivileged range browsers take host candidates from.
var ReturnMediaPorts = ir.PortRange{First: 1024, Last: 65535}

type lowerer struct {
	pol   *eval.Policy
	prog  *ir.Program
	diags hcl.Diagnostics

	agentSets    map[string]*ir.AddressSet
	providerSets map[string]*ir.AddressSet
	relaySets    map[string]*ir.AddressSet
	endpoints    map[string]endpoint // "kind.name" of agents, providers, relays
	setByName    map[string]*ir.AddressSet
	zones        map[string]bool
	services     map[string]bool
}

// Lower builds the IR. Names in the IR are stable: they derive from block
// names and purposes only, never from order or content, so a diff between two
// versions of a policy shows only what changed.
func Lower(pol *eval.Policy) (*ir.Program, hcl.Diagnostics) {
	l := &lowerer{
		pol:          pol,
		prog:         &ir.Program{},
		agentSets:    map[string]*ir.AddressSet{},
		providerSets: map[string]*ir.AddressSet{},
		relaySets:    map[string]*ir.AddressSet{},
		endpoints:    map[string]endpoint{},
		setByName:    map[string]*ir.AddressSet{},
		zones:        map[string]bool{},
		services:     map[string]bool{},
	}
	l.prog.Policy = ir.Policy{
		Name:          pol.Name,
		Description:   pol.Description,
		DefaultAction: pol.DefaultAction,
		LogDefault:    pol.LogDefault,
		Source:        l.source(pol.DeclRange),

		DefaultAllowAcknowledged: pol.AckDefaultAllow,
		ActionSource:             l.source(pol.ActionRange),
	}
	for _, z := range pol.Zones {
		l.zones[z.Name] = true
		l.prog.Zones = append(l.prog.Zones, ir.Zone{Name: z.Name, Interfaces: z.Interfaces, Source: l.source(z.DeclRange)})
	}
	var sets []*ir.AddressSet
	for _, a := range pol.Agents {
		s := l.addrSet("agents."+a.Name, l.origin("agents", &a.Block), a.Subnets)
		l.agentSets[a.Name] = s
		l.endpoints["agents."+a.Name] = endpoint{zone: a.Zone, addrs: a.Subnets, set: s.Name}
		sets = append(sets, s)
		l.prog.Agents = append(l.prog.Agents, ir.AgentGroup{Name: a.Name, Zone: a.Zone, Addresses: s.Name, WebRTCOnly: a.WebRTCOnly, Origin: s.Origin})
	}
	for _, p := range pol.Providers {
		info := ir.Provider{Name: p.Name, Zone: p.Zone, Origin: l.origin("provider", &p.Block)}
		if len(p.Ranges) > 0 {
			s := l.addrSet("provider."+p.Name, info.Origin, p.Ranges)
			l.providerSets[p.Name] = s
			sets = append(sets, s)
			info.Addresses = s.Name
		}
		l.endpoints["provider."+p.Name] = endpoint{zone: p.Zone, addrs: p.Ranges, set: info.Addresses}
		if len(p.STUNFQDNs) > 0 || len(p.STUNAddresses) > 0 {
			s := l.addrSet("provider."+p.Name+".stun", info.Origin, p.STUNAddresses)
			s.FQDNs = append([]string(nil), p.STUNFQDNs...)
			sort.Strings(s.FQDNs)
			s.FQDNs = slices.Compact(s.FQDNs)
			sets = append(sets, s)
			info.STUN = s.Name
		}
		l.prog.Providers = append(l.prog.Providers, info)
	}
	for _, r := range pol.Relays {
		s := l.addrSet("relay."+r.Name, l.origin("relay", &r.Block), r.Addresses)
		l.relaySets[r.Name] = s
		l.endpoints["relay."+r.Name] = endpoint{zone: r.Zone, addrs: r.Addresses, set: s.Name}
		sets = append(sets, s)
	}
	l.checkAgentOverlap()

	var rules []ir.Rule
	for _, p := range pol.Providers {
		rules = append(rules, l.providerRules(p)...)
	}
	for _, r := range pol.Relays {
		relayRules, peerSets := l.relayRules(r)
		rules = append(rules, relayRules...)
		sets = append(sets, peerSets...)
	}
	for _, r := range pol.Rules {
		rule, ruleSets := l.explicitRule(r)
		if rule != nil {
			rules = append(rules, *rule)
			sets = append(sets, ruleSets...)
		}
	}
	for _, pl := range pol.Platforms {
		l.prog.Platforms = append(l.prog.Platforms, ir.Platform{
			Name: pl.Name, UseTURN: pl.UseTURN, PreferredTransport: pl.PreferredTransport,
			ICECheckPriority: pl.ICECheckPriority, TCPFallback: pl.TCPFallback,
			TURNServerOverride: pl.TURNServerOverride, TenantRealm: pl.TenantRealm,
			Origin: l.origin("platform", &pl.Block),
		})
	}

	for _, d := range pol.Devices {
		settings := make(map[string]string, len(d.Settings))
		for k, v := range d.Settings {
			settings[k] = v
		}
		l.prog.Devices = append(l.prog.Devices, ir.Device{Target: d.Target, Settings: settings, Origin: l.origin("device", &d.Block)})
	}
	sort.Slice(l.prog.Devices, func(i, j int) bool { return l.prog.Devices[i].Target < l.prog.Devices[j].Target })

	// Everything is ordered by name, never by where a block was declared, so
	// moving blocks between files changes nothing but source references.
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	sort.Slice(l.prog.Zones, func(i, j int) bool { return l.prog.Zones[i].Name < l.prog.Zones[j].Name })
	sort.Slice(l.prog.Agents, func(i, j int) bool { return l.prog.Agents[i].Name < l.prog.Agents[j].Name })
	sort.Slice(l.prog.Providers, func(i, j int) bool { return l.prog.Providers[i].Name < l.prog.Providers[j].Name })
	sort.Slice(l.prog.Relays, func(i, j int) bool { return l.prog.Relays[i].Name < l.prog.Relays[j].Name })
	sort.Slice(l.prog.Platforms, func(i, j int) bool { return l.prog.Platforms[i].Name < l.prog.Platforms[j].Name })
	for _, s := range sets {
		l.prog.AddressSets = append(l.prog.AddressSets, *s)
	}
	sort.Slice(l.prog.Services, func(i, j int) bool { return l.prog.Services[i].Name < l.prog.Services[j].Name })
	// Deny rules come first, so an explicit deny always wins whatever the file
	// or block order; within each action rules are sorted by their stable name.
	sort.SliceStable(rules, func(i, j int) bool {
		if rules[i].Action != rules[j].Action {
			return rules[i].Action == ir.Deny
		}
		return rules[i].Name < rules[j].Name
	})
	l.prog.Rules = rules
	l.prog.QoS = l.qos()
	l.prog.Index()
	return l.prog, l.diags
}

func (l *lowerer) source(r hcl.Range) ir.Source {
	file := r.Filename
	if rel, err := filepath.Rel(l.pol.Root, file); err == nil && !strings.HasPrefix(rel, "..") {
		file = filepath.ToSlash(rel)
	}
	return ir.Source{File: file, Line: r.Start.Line, Col: r.Start.Column, Byte: r.Start.Byte,
		EndByte: r.End.Byte, EndLine: r.End.Line, EndCol: r.End.Column}
}

func (l *lowerer) origin(kind string, b *eval.Block) ir.Origin {
	o := ir.Origin{Kind: kind, Name: b.Name, Source: l.source(b.DeclRange), Attrs: map[string]ir.Source{}}
	for k, r := range b.AttrRanges {
		o.Attrs[k] = l.source(r)
	}
	return o
}

// addrSet aggregates address entries into the exact minimal prefix cover.
func (l *lowerer) addrSet(name string, origin ir.Origin, entries []eval.AddrEntry) *ir.AddressSet {
	s := setFrom(name, origin, appendEntries(nil, entries))
	l.setByName[name] = s
	return s
}

// appendEntries appends the entries' prefixes to ps; with one entry and no ps
// it returns the entry's own slice (setFrom only reads it).
func appendEntries(ps []netip.Prefix, entries []eval.AddrEntry) []netip.Prefix {
	if len(ps) == 0 && len(entries) == 1 {
		return entries[0].Prefixes
	}
	n := len(ps)
	for _, e := range entries {
		n += len(e.Prefixes)
	}
	ps = slices.Grow(ps, n-len(ps))
	for _, e := range entries {
		ps = append(ps, e.Prefixes...)
	}
	return ps
}

// appendSet appends an aggregated set's prefixes to ps.
func appendSet(ps []netip.Prefix, s *ir.AddressSet) []netip.Prefix {
	ps = slices.Grow(ps, len(s.V4)+len(s.V6))
	return append(append(ps, s.V4...), s.V6...)
}

// setFrom makes the set of the prefixes' addresses: their minimal cover, in
// one pass when they come sorted (ir.AddressSet.SetPrefixes).
func setFrom(name string, origin ir.Origin, ps []netip.Prefix) *ir.AddressSet {
	s := &ir.AddressSet{Name: name, Origin: origin}
	s.SetPrefixes(ps)
	return s
}

func (l *lowerer) checkAgentOverlap() {
	type other struct {
		what string
		set  *ir.AddressSet
	}
	var others []other
	for _, p := range l.pol.Providers {
		if s, ok := l.providerSets[p.Name]; ok {
			others = append(others, other{fmt.Sprintf("provider %q", p.Name), s})
		}
	}
	for _, r := range l.pol.Relays {
		others = append(others, other{fmt.Sprintf("relay %q", r.Name), l.relaySets[r.Name]})
	}
	for _, a := range l.pol.Agents {
		for _, e := range a.Subnets {
			for _, p := range e.Prefixes {
				for _, o := range others {
					if o.set.OverlapsPrefix(p) {
						l.diags = append(l.diags, diag.Errorf(diag.AgentOverlap, e.Range, "Agent subnet overlaps "+o.what,
							"%s of agents %q overlaps the addresses of %s. Rules would treat the same hosts as agents and as platform; correct the ranges.", p, a.Name, o.what))
					}
				}
			}
		}
	}
}

// service registers a service set once and returns its name; nil when empty.
func (l *lowerer) service(name string, entries []ir.ServiceEntry) string {
	entries = mergeEntries(entries)
	if len(entries) == 0 {
		return ""
	}
	if !l.services[name] {
		l.services[name] = true
		l.prog.Services = append(l.prog.Services, ir.ServiceSet{Name: name, Entries: entries})
	}
	return name
}

// mergeEntries merges entries of the same protocol and source ports and their
// port ranges; entries are sorted by protocol then source ports.
func mergeEntries(entries []ir.ServiceEntry) []ir.ServiceEntry {
	type key struct {
		proto ir.Proto
		sport string
	}
	byKey := map[key]*ir.ServiceEntry{}
	var keys []key
	for _, e := range entries {
		if len(e.Ports) == 0 && len(e.SrcPorts) == 0 && e.Proto == "" {
			continue
		}
		k := key{e.Proto, ir.PortRanges(MergePorts(e.SrcPorts))}
		if cur, ok := byKey[k]; ok {
			cur.Ports = append(cur.Ports, e.Ports...)
			continue
		}
		c := ir.ServiceEntry{Proto: e.Proto, Ports: append([]ir.PortRange(nil), e.Ports...), SrcPorts: MergePorts(e.SrcPorts)}
		byKey[k] = &c
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].proto != keys[j].proto {
			return keys[i].proto == ir.UDP // udp first: media before fallback
		}
		return keys[i].sport < keys[j].sport
	})
	out := make([]ir.ServiceEntry, 0, len(keys))
	for _, k := range keys {
		e := byKey[k]
		e.Ports = MergePorts(e.Ports)
		out = append(out, *e)
	}
	return out
}

// MergePorts sorts ranges and merges overlapping and adjacent ones.
func MergePorts(rs []ir.PortRange) []ir.PortRange {
	if len(rs) == 0 {
		return nil
	}
	s := append([]ir.PortRange(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].First < s[j].First })
	out := []ir.PortRange{s[0]}
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if uint32(r.First) <= uint32(last.Last)+1 {
			if r.Last > last.Last {
				last.Last = r.Last
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func ranges(entries []eval.PortEntry) []ir.PortRange {
	out := make([]ir.PortRange, len(entries))
	for i, e := range entries {
		out[i] = e.Ports
	}
	return out
}

func single(p uint16) []ir.PortRange { return []ir.PortRange{{First: p, Last: p}} }

// servedAgents returns the agents groups a provider or relay serves: the named
// ones, or every group when the attribute was absent.
func (l *lowerer) servedAgents(names []string) []*eval.Agents {
	if names == nil {
		return l.pol.Agents
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*eval.Agents
	for _, a := range l.pol.Agents {
		if want[a.Name] {
			out = append(out, a)
		}
	}
	return out
}
