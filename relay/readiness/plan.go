package readiness

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Target is one ICE server over one transport that an agent's browser is
// given: the policy's relays (TURN over UDP, TCP and TLS, with credentials
// the readiness server mints) and the providers' public STUN servers.
type Target struct {
	ID        string   `json:"id"`        // stable: relay-dmz-udp-3478
	Owner     string   `json:"owner"`     // relay "dmz", provider "genesys"
	Relay     string   `json:"relay"`     // relay name when the server mints credentials for it
	Kind      string   `json:"kind"`      // stun, turn or turns
	Transport string   `json:"transport"` // udp, tcp or tls
	URL       string   `json:"url"`       // as given to RTCPeerConnection
	Port      uint16   `json:"port"`
	Proto     ir.Proto `json:"proto"` // on the wire: TLS is TCP
	// Addrs are the addresses the URL's host stands for in the policy (a
	// relay's addresses; empty for a STUN server given by name).
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// FQDN is the name in the URL, when the policy gives one.
	FQDN string `json:"fqdn,omitempty"`
	// Realm is a relay's realm.
	Realm string `json:"realm,omitempty"`
	// Username and Credential are fixed credentials for this server (a
	// lab's); without them a relay's are minted per test session.
	Username   string `json:"-"`
	Credential string `json:"-"`
	// NoCall is set by the server for a relay it cannot place a test call
	// through: every address of the relay is of a family the media peer
	// has no address of.
	NoCall bool `json:"no_call,omitempty"`
}

// Plan lists the targets the agents' browsers are given under the policy's
// platform settings: use_turn = false gives no TURN server, tcp_fallback =
// false no TCP or TLS one, and turn_server_override only the relay it names.
// Providers' TURN servers are not listed: the platform hands out their
// credentials at call time. The list is sorted by ID.
func Plan(p *ir.Program) []Target {
	ice := p.AgentICE()
	useTURN, tcpFallback, override := ice.UseTURN, ice.TCPFallback, ice.Override
	var out []Target
	if useTURN {
		named := false
		for _, r := range p.Relays {
			named = named || (override != "" && r.FQDN == override)
		}
		for i := range p.Relays {
			r := &p.Relays[i]
			if named && r.FQDN != override {
				continue
			}
			out = append(out, relayTargets(p, r, tcpFallback)...)
		}
	}
	for i := range p.Providers {
		out = append(out, stunTargets(p, &p.Providers[i])...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func relayTargets(p *ir.Program, r *ir.Relay, tcpFallback bool) []Target {
	var addrs []netip.Addr
	if s := p.AddressSet(r.Addresses); s != nil {
		for _, pf := range append(append([]netip.Prefix(nil), s.V4...), s.V6...) {
			if pf.IsSingleIP() {
				addrs = append(addrs, pf.Addr())
			}
		}
	}
	host := r.FQDN
	if host == "" {
		if len(addrs) == 0 {
			return nil
		}
		host = urlHost(addrs[0])
	}
	owner := fmt.Sprintf("relay %q", r.Name)
	var out []Target
	add := func(kind, transport string, proto ir.Proto, ports []uint16) {
		for _, port := range ports {
			t := Target{
				ID: fmt.Sprintf("relay-%s-%s-%d", r.Name, transport, port), Owner: owner, Relay: r.Name,
				Kind: kind, Transport: transport, Port: port, Proto: proto, Addrs: addrs, FQDN: r.FQDN, Realm: r.Realm,
			}
			q := "udp"
			if transport != "udp" {
				q = "tcp"
			}
			t.URL = fmt.Sprintf("%s:%s:%d?transport=%s", kind, host, port, q)
			out = append(out, t)
		}
	}
	add("turn", "udp", ir.UDP, r.Listen.UDP)
	if tcpFallback {
		add("turn", "tcp", ir.TCP, r.Listen.TCP)
		add("turns", "tls", ir.TCP, r.Listen.TLS)
	}
	return out
}

// stunTargets lists a provider's public STUN servers (UDP: browsers send
// STUN Binding requests over UDP only).
func stunTargets(p *ir.Program, pr *ir.Provider) []Target {
	if pr.STUN == "" {
		return nil
	}
	s := p.AddressSet(pr.STUN)
	if s == nil {
		return nil
	}
	var ports []uint16
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Dst != pr.STUN || r.Action != ir.Allow || r.Purpose != ir.PurposeSTUN {
			continue
		}
		if svc := p.Service(r.Service); svc != nil {
			for _, e := range svc.Entries {
				for _, pr := range e.Ports {
					if e.Proto == ir.UDP && pr.First != 0 {
						ports = append(ports, pr.First)
					}
				}
			}
		}
	}
	if len(ports) == 0 {
		ports = []uint16{19302}
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	owner := fmt.Sprintf("provider %q", pr.Name)
	var out []Target
	seen := map[string]bool{}
	addT := func(host, fqdn string, addr netip.Addr, port uint16) {
		id := fmt.Sprintf("stun-%s-%s-%d", pr.Name, strings.NewReplacer(".", "-", ":", "-", "[", "", "]", "").Replace(host), port)
		if seen[id] {
			return
		}
		seen[id] = true
		t := Target{ID: id, Owner: owner, Kind: "stun", Transport: "udp", Proto: ir.UDP, Port: port, FQDN: fqdn,
			URL: fmt.Sprintf("stun:%s:%d", host, port)}
		if addr.IsValid() {
			t.Addrs = []netip.Addr{addr}
		}
		out = append(out, t)
	}
	for _, port := range ports {
		for _, f := range s.FQDNs {
			addT(f, f, netip.Addr{}, port)
		}
		for _, pf := range append(append([]netip.Prefix(nil), s.V4...), s.V6...) {
			if pf.IsSingleIP() {
				addT(urlHost(pf.Addr()), "", pf.Addr(), port)
			}
		}
	}
	return out
}

func urlHost(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// GroupOf returns the agents group whose subnets hold addr, or "".
func GroupOf(p *ir.Program, addr netip.Addr) string {
	addr = addr.Unmap()
	for _, g := range p.Agents {
		if s := p.AddressSet(g.Addresses); s != nil && s.IPSet().Contains(addr) {
			return g.Name
		}
	}
	return ""
}

// Decision is what the policy says of the first packet from an agent to a
// target: the deciding rule and its policy line.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Rule    string `json:"rule"` // rule name, or "default deny"/"default allow"
	Line    string `json:"line"` // policy file:line of the rule (or the policy block)
}

// Decide evaluates the first packet of a check from src (an agent of group)
// to target t. A target given by name only is decided with its name, as the
// gateway matches it through the FQDN sets a resolver fills.
func Decide(p *ir.Program, group string, src netip.Addr, t Target) Decision {
	src = src.Unmap()
	fromZone := ""
	for _, g := range p.Agents {
		if g.Name == group {
			fromZone = g.Zone
		}
	}
	dst := netip.Addr{}
	for _, a := range t.Addrs {
		if a.Is4() == src.Is4() {
			dst = a
			break
		}
	}
	if !dst.IsValid() && len(t.Addrs) > 0 {
		dst = t.Addrs[0]
	}
	toZone := ""
	if dst.IsValid() {
		toZone = p.ZoneOf(dst)
	}
	pkt := ir.Packet{FromZone: fromZone, ToZone: toZone, Src: src, Dst: dst, DstHost: t.FQDN, Proto: t.Proto, SrcPort: 40000, DstPort: t.Port}
	v := p.Allows(pkt)
	d := Decision{Allowed: v.Allowed(), Rule: "default " + string(v.Action), Line: p.Policy.Source.String()}
	if v.Rule != nil {
		d.Rule, d.Line = v.Rule.Name, v.Rule.Origin.Source.String()
	}
	return d
}

// label is how a report names a target: "TURN over UDP to relay "dmz" (port 3478)".
func (t Target) label() string {
	what := "STUN"
	switch {
	case t.Kind == "turns":
		what = "TURN over TLS"
	case t.Kind == "turn":
		what = "TURN over " + strings.ToUpper(t.Transport)
	}
	return what + " to " + t.Owner + " (port " + strconv.Itoa(int(t.Port)) + ")"
}
