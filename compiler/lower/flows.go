package lower

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/ir"
)

// flow is one generated rule before it becomes an ir.Rule.
type flow struct {
	src, dst         string // block names for the rule name
	purpose          ir.Purpose
	suffix           string // rule name suffix; the purpose when empty
	fromZone, toZone string
	srcSet, dstSet   string
	service          string
	comment          string
	origin           ir.Origin
}

func (f flow) rule() ir.Rule {
	suffix := f.suffix
	if suffix == "" {
		suffix = string(f.purpose)
	}
	return ir.Rule{
		Name:     f.src + "." + f.dst + "." + suffix,
		Purpose:  f.purpose,
		Action:   ir.Allow,
		FromZone: f.fromZone,
		ToZone:   f.toZone,
		Src:      f.srcSet,
		Dst:      f.dstSet,
		Service:  f.service,
		Comment:  f.comment,
		Origin:   f.origin,
	}
}

func (l *lowerer) providerRules(p *eval.Provider) []ir.Rule {
	origin := l.origin("provider", &p.Block)
	prefix := "provider." + p.Name + "."
	type purposeSvc struct {
		purpose ir.Purpose
		service string
		dst     string
		what    string
	}
	var svcs []purposeSvc
	if set, ok := l.providerSets[p.Name]; ok {
		if p.HTTPS {
			svcs = append(svcs, purposeSvc{ir.PurposeSignalling, l.service(prefix+"https", []ir.ServiceEntry{{Proto: ir.TCP, Ports: single(443)}}), set.Name, "HTTPS/WSS signalling and TURN/TLS fallback"})
		}
		turn := []ir.ServiceEntry{
			{Proto: ir.UDP, Ports: ranges(p.TURN.UDP)},
			{Proto: ir.TCP, Ports: ranges(p.TURN.TCP)},
		}
		if s := l.service(prefix+"stun-turn", nonEmpty(turn)); s != "" {
			svcs = append(svcs, purposeSvc{ir.PurposeSTUNTURN, s, set.Name, "STUN/TURN"})
		}
		// TURN over TLS keeps its own rule: targets exempt it from TLS
		// inspection, which breaks TURN/TLS. Port 443 is already the
		// signalling rule's (exempt too) when https is on.
		var tlsPorts []ir.PortRange
		for _, r := range ranges(p.TURN.TLS) {
			if !(p.HTTPS && r.First == 443 && r.Last == 443) {
				tlsPorts = append(tlsPorts, r)
			}
		}
		turnTLS := []ir.ServiceEntry{{Proto: ir.TCP, Ports: tlsPorts}}
		if s := l.service(prefix+"turn-tls", nonEmpty(turnTLS)); s != "" {
			svcs = append(svcs, purposeSvc{ir.PurposeTURNTLS, s, set.Name, "TURN/TLS"})
		}
		media := []ir.ServiceEntry{{Proto: ir.UDP, Ports: ranges(p.Media.UDP)}, {Proto: ir.TCP, Ports: ranges(p.Media.TCP)}}
		if s := l.service(prefix+"media", nonEmpty(media)); s != "" {
			svcs = append(svcs, purposeSvc{ir.PurposeMedia, s, set.Name, "SRTP media"})
		}
		sip := []ir.ServiceEntry{{Proto: ir.UDP, Ports: ranges(p.SIP.UDP)}, {Proto: ir.TCP, Ports: ranges(p.SIP.TCP)}}
		if s := l.service(prefix+"sip", nonEmpty(sip)); s != "" {
			svcs = append(svcs, purposeSvc{ir.PurposeSIP, s, set.Name, "SIP signalling"})
		}
	}
	if len(p.STUNFQDNs) > 0 || len(p.STUNAddresses) > 0 {
		stun := []ir.ServiceEntry{{Proto: ir.UDP, Ports: ranges(p.STUN.UDP)}, {Proto: ir.TCP, Ports: ranges(p.STUN.TCP)}}
		if s := l.service(prefix+"stun", nonEmpty(stun)); s != "" {
			svcs = append(svcs, purposeSvc{ir.PurposeSTUN, s, "provider." + p.Name + ".stun", "public STUN"})
		}
	}
	var out []ir.Rule
	for _, a := range l.servedAgents(p.Agents) {
		for _, ps := range svcs {
			out = append(out, flow{
				src: a.Name, dst: p.Name, purpose: ps.purpose,
				fromZone: a.Zone, toZone: p.Zone,
				srcSet: l.agentSets[a.Name].Name, dstSet: ps.dst, service: ps.service,
				comment: fmt.Sprintf("%s: agents %s to provider %s", ps.what, a.Name, p.Name),
				origin:  origin,
			}.rule())
		}
	}
	return out
}

func nonEmpty(entries []ir.ServiceEntry) []ir.ServiceEntry {
	var out []ir.ServiceEntry
	for _, e := range entries {
		if len(e.Ports) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// relayRules opens a relay's listeners to its clients and its relay port range
// to and from its peers. It also returns the relay's peer address set, the list
// the relay itself enforces on CreatePermission.
func (l *lowerer) relayRules(r *eval.Relay) ([]ir.Rule, []*ir.AddressSet) {
	origin := l.origin("relay", &r.Block)
	relaySet := l.relaySets[r.Name].Name
	prefix := "relay." + r.Name + "."
	var out []ir.Rule

	turn := l.service(prefix+"turn", nonEmpty([]ir.ServiceEntry{
		{Proto: ir.UDP, Ports: ranges(r.Listen.UDP)},
		{Proto: ir.TCP, Ports: ranges(r.Listen.TCP)},
	}))
	turnTLS := l.service(prefix+"turn-tls", nonEmpty([]ir.ServiceEntry{{Proto: ir.TCP, Ports: ranges(r.Listen.TLS)}}))
	clients := l.servedAgents(r.Clients)
	var clientNames []string
	for _, a := range clients {
		clientNames = append(clientNames, a.Name)
		if turn != "" {
			out = append(out, flow{src: a.Name, dst: r.Name, purpose: ir.PurposeTURN, fromZone: a.Zone, toZone: r.Zone,
				srcSet: l.agentSets[a.Name].Name, dstSet: relaySet, service: turn,
				comment: fmt.Sprintf("TURN: agents %s to relay %s", a.Name, r.Name), origin: origin}.rule())
		}
		if turnTLS != "" {
			out = append(out, flow{src: a.Name, dst: r.Name, purpose: ir.PurposeTURNTLS, fromZone: a.Zone, toZone: r.Zone,
				srcSet: l.agentSets[a.Name].Name, dstSet: relaySet, service: turnTLS,
				comment: fmt.Sprintf("TURN/TLS: agents %s to relay %s", a.Name, r.Name), origin: origin}.rule())
		}
	}

	relayRange := []ir.PortRange{r.RelayPorts}
	// Relay to peer: from the relay range to any port of the peer.
	outEntries := []ir.ServiceEntry{{Proto: ir.UDP, SrcPorts: relayRange}}
	inEntries := []ir.ServiceEntry{{Proto: ir.UDP, Ports: relayRange}}
	returnEntries := []ir.ServiceEntry{{Proto: ir.UDP, SrcPorts: relayRange, Ports: []ir.PortRange{ReturnMediaPorts}}}
	if r.TCPRelay {
		// RFC 6062: the relay connects to peers from its relayed addresses, and
		// peers connect to those addresses.
		outEntries = append(outEntries, ir.ServiceEntry{Proto: ir.TCP, SrcPorts: relayRange})
		inEntries = append(inEntries, ir.ServiceEntry{Proto: ir.TCP, Ports: relayRange})
		returnEntries = append(returnEntries, ir.ServiceEntry{Proto: ir.TCP, SrcPorts: relayRange, Ports: []ir.PortRange{ReturnMediaPorts}})
	}
	var peerSets []*ir.AddressSet
	var literal []eval.AddrEntry
	// The relay's own peer list: built from the peers' aggregated sets, not
	// their raw entries, so a 100,000-prefix provider is aggregated once.
	var union []netip.Prefix
	havePeers := false
	for _, p := range r.Peers {
		if p.Kind == "" {
			literal = append(literal, p.Addrs...)
			union = appendEntries(union[:len(union):len(union)], p.Addrs)
			havePeers = true
			continue
		}
		ep, ok := l.lookup(p.Kind, p.Name)
		if !ok || ep.set == "" {
			continue
		}
		if set := l.setByName[ep.set]; set != nil {
			union = appendSet(union[:len(union):len(union)], set)
			havePeers = true
		}
		if p.Kind != "agents" {
			out = append(out, l.peerFlows(r, relaySet, p.Name, ep.set, ep.zone, prefix, outEntries, inEntries, origin)...)
			continue
		}
		ret := l.service(prefix+"relay-return", returnEntries)
		in := l.service(prefix+"relay-in", inEntries)
		out = append(out,
			flow{src: r.Name, dst: p.Name, purpose: ir.PurposeRelayReturn, fromZone: r.Zone, toZone: ep.zone,
				srcSet: relaySet, dstSet: ep.set, service: ret,
				comment: fmt.Sprintf("relayed media: relay %s to agents %s", r.Name, p.Name), origin: origin}.rule(),
			flow{src: p.Name, dst: r.Name, purpose: ir.PurposeRelayMedia, suffix: "relay-in", fromZone: ep.zone, toZone: r.Zone,
				srcSet: ep.set, dstSet: relaySet, service: in,
				comment: fmt.Sprintf("relayed media: agents %s to relay %s allocations", p.Name, r.Name), origin: origin}.rule())
	}
	if len(literal) > 0 {
		s := l.addrSet(prefix+"peer-addresses", origin, literal)
		peerSets = append(peerSets, s)
		out = append(out, l.peerFlows(r, relaySet, "peer-addresses", s.Name, "", prefix, outEntries, inEntries, origin)...)
	}
	peers := ""
	if havePeers {
		s := setFrom(prefix+"peers", origin, union)
		peerSets = append(peerSets, s)
		peers = s.Name
	}

	info := ir.Relay{
		Name: r.Name, Zone: r.Zone, Addresses: relaySet, FQDN: r.FQDN, Realm: r.Realm,
		RelayPorts: r.RelayPorts,
		Listen:     ir.Listen{UDP: singles(r.Listen.UDP), TCP: singles(r.Listen.TCP), TLS: singles(r.Listen.TLS)},
		TLS:        ir.TLS{Cert: r.TLSCert, Key: r.TLSKey, SelfSigned: r.CertSelfSigned, CertError: r.CertError},
		Peers:      peers, Clients: clientNames, TCPRelay: r.TCPRelay, LabOnly: r.LabOnly, Origin: origin,
		Store: r.Store, Alternates: r.Alternates,
	}
	if info.Clients == nil {
		info.Clients = []string{}
	}
	sort.Strings(info.Clients)
	// The firewall rules open the relay's addresses only: every node a
	// client may be sent to must be one of them.
	if rs := l.setByName[relaySet]; rs != nil {
		for _, alt := range r.Alternates {
			if !rs.Contains(alt.Addr()) {
				l.diags = append(l.diags, diag.Errorf(diag.InvalidValue, r.AttrRanges["alternates"], "Alternate server outside the relay's addresses",
					"Relay %q sends clients to %s, which is not one of its addresses: the firewall rules open only those, so the redirected client would be dropped. Add %s to addresses (every node of the pool).", r.Name, alt, alt.Addr()))
			}
		}
	}
	l.prog.Relays = append(l.prog.Relays, info)
	return out, peerSets
}

func (l *lowerer) peerFlows(r *eval.Relay, relaySet, peerName, peerSet, peerZone, prefix string, outEntries, inEntries []ir.ServiceEntry, origin ir.Origin) []ir.Rule {
	outSvc := l.service(prefix+"relay-out", outEntries)
	inSvc := l.service(prefix+"relay-in", inEntries)
	return []ir.Rule{
		flow{src: r.Name, dst: peerName, purpose: ir.PurposeRelayMedia, suffix: "relay-out", fromZone: r.Zone, toZone: peerZone,
			srcSet: relaySet, dstSet: peerSet, service: outSvc,
			comment: fmt.Sprintf("relayed media: relay %s to peer %s", r.Name, peerName), origin: origin}.rule(),
		flow{src: peerName, dst: r.Name, purpose: ir.PurposeRelayMedia, suffix: "relay-in", fromZone: peerZone, toZone: r.Zone,
			srcSet: peerSet, dstSet: relaySet, service: inSvc,
			comment: fmt.Sprintf("relayed media: peer %s to relay %s allocations", peerName, r.Name), origin: origin}.rule(),
	}
}

func singles(entries []eval.PortEntry) []uint16 {
	var out []uint16
	seen := map[uint16]bool{}
	for _, e := range entries {
		if !seen[e.Ports.First] {
			seen[e.Ports.First] = true
			out = append(out, e.Ports.First)
		}
	}
	return out
}

// endpoint is what a reference to an agents, provider or relay block stands
// for in a rule: its zone, its addresses and its address set.
type endpoint struct {
	zone  string
	addrs []eval.AddrEntry
	set   string // "" when the block has no addresses (a provider with STUN only)
}

func (l *lowerer) lookup(kind, name string) (endpoint, bool) {
	ep, ok := l.endpoints[kind+"."+name]
	return ep, ok
}

// explicitRule lowers a rule block. A side that is exactly one reference uses
// that block's address set; anything else gets a set of its own.
func (l *lowerer) explicitRule(r *eval.Rule) (*ir.Rule, []*ir.AddressSet) {
	origin := l.origin("rule", &r.Block)
	var sets []*ir.AddressSet
	side := func(eps []eval.Endpoint, suffix, explicitZone string) (string, string, bool) {
		if len(eps) == 0 {
			return "", "", false
		}
		zone := explicitZone
		if zone == "" {
			zone = l.commonZone(eps)
		}
		if len(eps) == 1 && eps[0].Kind != "" {
			if ep, ok := l.lookup(eps[0].Kind, eps[0].Name); ok && ep.set != "" {
				return ep.set, zone, true
			}
			return "", "", false
		}
		// Referenced blocks add their aggregated sets, not their entries
		// again.
		var ps []netip.Prefix
		for _, e := range eps {
			if e.Kind == "" {
				ps = appendEntries(ps[:len(ps):len(ps)], e.Addrs)
			} else if ep, ok := l.lookup(e.Kind, e.Name); ok {
				if set := l.setByName[ep.set]; set != nil {
					ps = appendSet(ps[:len(ps):len(ps)], set)
				} else {
					ps = appendEntries(ps[:len(ps):len(ps)], ep.addrs)
				}
			}
		}
		s := setFrom("rule."+r.Name+"."+suffix, origin, ps)
		l.setByName[s.Name] = s
		sets = append(sets, s)
		return s.Name, zone, true
	}
	src, fromZone, ok1 := side(r.From, "src", r.FromZone)
	dst, toZone, ok2 := side(r.To, "dst", r.ToZone)
	if !ok1 || !ok2 {
		return nil, nil
	}
	svc := l.service("rule."+r.Name, nonEmpty([]ir.ServiceEntry{
		{Proto: ir.UDP, Ports: ranges(r.UDP)},
		{Proto: ir.TCP, Ports: ranges(r.TCP)},
	}))
	if svc == "" {
		return nil, nil
	}
	comment := r.Description
	if comment == "" {
		comment = "rule " + r.Name
	}
	return &ir.Rule{
		Name: r.Name, Purpose: purposeOf(r), Action: r.Action, FromZone: fromZone, ToZone: toZone,
		Src: src, Dst: dst, Service: svc, Log: r.Log, Comment: comment, Origin: origin,
	}, sets
}

// purposeOf classifies an explicit rule: SIP ports make it a SIP rule, so the
// SIP lint sees it.
func purposeOf(r *eval.Rule) ir.Purpose {
	for _, e := range append(append([]eval.PortEntry(nil), r.UDP...), r.TCP...) {
		if e.Ports.Contains(5060) || e.Ports.Contains(5061) {
			if e.Ports.Last-e.Ports.First < 16 {
				return ir.PurposeSIP
			}
		}
	}
	return ir.PurposeCustom
}

// commonZone is the zone all referenced endpoints share, or "" (any zone) when
// they differ or include literal addresses.
func (l *lowerer) commonZone(eps []eval.Endpoint) string {
	zone := ""
	for i, e := range eps {
		var z string
		if ep, ok := l.lookup(e.Kind, e.Name); ok {
			z = ep.zone
		}
		if z == "" || (i > 0 && z != zone) {
			return ""
		}
		zone = z
	}
	return zone
}
