package verify

import (
	"context"
	"fmt"
	"net/netip"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
)

// turnServer describes a TURN listener as an ICE server.
func turnServer(ln relay.Listener, h *Host, owner string) ICEServer {
	srv := ICEServer{Host: h, Addr: ln.Addr, Kind: "turn", Proto: ir.TCP, Owner: owner}
	switch ln.Transport {
	case relay.UDP:
		srv.Proto = ir.UDP
		srv.URL = fmt.Sprintf("turn:%s:%d?transport=udp", urlHost(ln.Addr.Addr()), ln.Addr.Port())
	case relay.TCP:
		srv.URL = fmt.Sprintf("turn:%s:%d?transport=tcp", urlHost(ln.Addr.Addr()), ln.Addr.Port())
	case relay.TLS:
		srv.Kind = "turns"
		srv.URL = fmt.Sprintf("turns:%s:%d?transport=tcp", urlHost(ln.Addr.Addr()), ln.Addr.Port())
	}
	return srv
}

// tenantRealm is the realm a platform provisions agents' TURN users in for
// relay r ("" when no platform sets tenant_realm): the platform whose
// turn_server_override names r's FQDN, or that names no relay.
func tenantRealm(p *ir.Program, r *ir.Relay) string {
	for _, pl := range p.Platforms {
		if pl.TenantRealm == "" {
			continue
		}
		if pl.TURNServerOverride == "" || pl.TURNServerOverride == r.FQDN {
			return pl.TenantRealm
		}
		named := false
		for _, o := range p.Relays {
			named = named || (o.FQDN != "" && o.FQDN == pl.TURNServerOverride)
		}
		if !named {
			return pl.TenantRealm
		}
	}
	return ""
}

// startRelays runs the bundled relay on every relay host, as the policy
// configures it.
func (s *Services) startRelays(ctx context.Context) error {
	l := s.lab
	var confs map[string][]byte
	if s.coturn {
		var err error
		if confs, err = coturnConfs(l.Prog); err != nil {
			return fmt.Errorf("coturn configuration: %w", err)
		}
	}
	for i := range l.Prog.Relays {
		r := &l.Prog.Relays[i]
		h := l.host("relay", r.Name)
		if h == nil {
			s.note("relay %q has no host in the lab (no address); it is not served", r.Name)
			continue
		}
		cfg, err := relay.FromIR(l.Prog, r.Name, "")
		if err != nil {
			s.note("relay %q cannot run in the lab: %v", r.Name, err)
			continue
		}
		ips := h.addrs()
		cfg.RelayIPs = ips
		cfg.Listeners = relay.Listen(ips, r.Listen)
		cfg.Net = relay.InNamespace(h.NS)
		cfg.CertFile, cfg.KeyFile = "", ""
		cfg.Certificate = nil
		if len(r.Listen.TLS) > 0 {
			var names []string
			if r.FQDN != "" {
				names = []string{r.FQDN}
			}
			if cfg.Certificate, err = s.ca.leaf(names, ips); err != nil {
				return fmt.Errorf("relay %q: certificate: %w", r.Name, err)
			}
		}
		user, pass, credRealm := s.restUser, s.restPass, ""
		var users []creds.User
		if tr := tenantRealm(l.Prog, r); tr != "" {
			if pass, err = randomString(12); err != nil {
				return err
			}
			user, credRealm = agentUser, tr
			users = []creds.User{{Name: agentUser, Key: creds.Key(agentUser, tr, pass)}}
		}
		if s.coturn && len(users) > 0 {
			// The coturn target emits TURN REST auth (use-auth-secret), and
			// coturn then ignores every static user: the platform has to
			// mint REST credentials for this relay.
			s.note("relay %q runs coturn with the coturn target's TURN REST configuration, which accepts no user provisioned in tenant_realm %q: agents get REST credentials", r.Name, credRealm)
			users, user, pass, credRealm = nil, s.restUser, s.restPass, ""
		}
		var listeners []relay.Listener
		if s.coturn {
			p, lns, err := s.startCoturn(ctx, r, h, confs[r.Name], cfg.Certificate)
			if err != nil {
				return fmt.Errorf("relay %q in the lab: %w", r.Name, err)
			}
			s.addCoturn(p, lns)
			listeners = lns
		} else if s.pool > 1 {
			if listeners, err = s.startPool(ctx, r, h, cfg, users); err != nil {
				return fmt.Errorf("relay %q in the lab: %w", r.Name, err)
			}
		}
		if !s.coturn && listeners == nil {
			cfg.Auth = relay.NewAuth(cfg.Realm, users, []string{s.Secret})
			cfg.Limits = labLimits
			cfg.UDPSockets = 1
			cfg.Logger = s.log
			srv, err := relay.New(cfg)
			if err != nil {
				return fmt.Errorf("relay %q in the lab: %w", r.Name, err)
			}
			s.addRelay(srv)
			listeners = srv.Listeners()
		}
		owner := fmt.Sprintf("relay %q", r.Name)
		for _, g := range r.Clients {
			ah := l.host("agents", g)
			if ah == nil {
				continue
			}
			for _, ln := range listeners {
				if !ah.source(ln.Addr.Addr()).IsValid() {
					continue
				}
				is := turnServer(ln, h, owner)
				is.Username, is.Credential, is.Realm, is.CredentialRealm = user, pass, cfg.Realm, credRealm
				s.addServer(g, is)
			}
		}
	}
	return nil
}

// providerPorts returns the STUN/TURN ports the IR opens to a provider's
// address set: the first port of each range, per transport.
func providerPorts(p *ir.Program, set string) (udp, tcp, tlsPorts []uint16) {
	add := func(list []uint16, ranges []ir.PortRange) []uint16 {
	next:
		for _, r := range ranges {
			if r.First == 0 {
				continue
			}
			for _, x := range list {
				if x == r.First {
					continue next
				}
			}
			list = append(list, r.First)
		}
		return list
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Dst != set || r.Action != ir.Allow || (r.Purpose != ir.PurposeSTUNTURN && r.Purpose != ir.PurposeTURNTLS) {
			continue
		}
		svc := p.Service(r.Service)
		if svc == nil {
			continue
		}
		for _, e := range svc.Entries {
			switch {
			case r.Purpose == ir.PurposeTURNTLS && e.Proto == ir.TCP:
				tlsPorts = add(tlsPorts, e.Ports)
			case r.Purpose == ir.PurposeSTUNTURN && e.Proto == ir.UDP:
				udp = add(udp, e.Ports)
			case r.Purpose == ir.PurposeSTUNTURN && e.Proto == ir.TCP:
				tcp = add(tcp, e.Ports)
			}
		}
	}
	return udp, tcp, tlsPorts
}

// providerRelayPorts is 49152-65535, narrowed to the provider's UDP media
// range where the two overlap: agents reach relayed addresses through the
// media rule.
func providerRelayPorts(p *ir.Program, set string) ir.PortRange {
	dyn := ir.PortRange{First: 49152, Last: 65535}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Dst != set || r.Action != ir.Allow || r.Purpose != ir.PurposeMedia {
			continue
		}
		svc := p.Service(r.Service)
		if svc == nil {
			continue
		}
		for _, e := range svc.Entries {
			if e.Proto != ir.UDP {
				continue
			}
			for _, pr := range e.Ports {
				first, last := max(pr.First, dyn.First), min(pr.Last, dyn.Last)
				if first <= last {
					return ir.PortRange{First: first, Last: last}
				}
			}
		}
	}
	return dyn
}

// labPeers is every address of every lab host: a provider's TURN service
// relays to anything in the lab.
func (l *Lab) labPeers() (*netipx.IPSet, error) {
	var b netipx.IPSetBuilder
	for _, h := range l.Hosts {
		for _, a := range []netip.Addr{h.V4, h.V6, h.Outside, h.Media4, h.Media6} {
			if a.IsValid() {
				b.Add(a)
			}
		}
	}
	return b.IPSet()
}

// startProviderTURN runs a stand-in for each provider's TURN service.
func (s *Services) startProviderTURN() error {
	l := s.lab
	peers, err := l.labPeers()
	if err != nil {
		return err
	}
	for i := range l.Prog.Providers {
		p := &l.Prog.Providers[i]
		if p.Addresses == "" {
			continue
		}
		udp, tcp, tlsPorts := providerPorts(l.Prog, p.Addresses)
		if len(udp)+len(tcp)+len(tlsPorts) == 0 {
			continue
		}
		// A provider that runs TURN and is reached on TCP 443 offers
		// TURN/TLS there too: the signalling rule's TURN/TLS fallback.
		if signalling443(l.Prog, p.Addresses) && !containsPort(tlsPorts, 443) && !containsPort(tcp, 443) {
			tlsPorts = append(tlsPorts, 443)
		}
		h := l.host("provider", p.Name)
		if h == nil {
			s.note("provider %q has no host in the lab; its TURN service is not served", p.Name)
			continue
		}
		ips := h.addrs()
		rp := providerRelayPorts(l.Prog, p.Addresses)
		var listeners []relay.Listener
		for _, ln := range relay.Listen(ips, ir.Listen{UDP: udp, TCP: tcp, TLS: tlsPorts}) {
			if rp.Contains(ln.Addr.Port()) {
				s.note("provider %q: TURN port %d lies in the relayed port range %s; not served", p.Name, ln.Addr.Port(), rp)
				continue
			}
			listeners = append(listeners, ln)
		}
		if len(listeners) == 0 {
			continue
		}
		cfg := relay.Config{
			Name: "provider " + p.Name, Realm: ProviderRealm, Listeners: listeners, RelayIPs: ips, RelayPorts: rp,
			Peers: peers, Auth: relay.NewAuth(ProviderRealm, nil, []string{s.Secret}), Limits: labLimits,
			UDPSockets: 1, Net: relay.InNamespace(h.NS), Logger: s.log,
		}
		if len(tlsPorts) > 0 {
			if cfg.Certificate, err = s.ca.leaf(nil, ips); err != nil {
				return fmt.Errorf("provider %q: certificate: %w", p.Name, err)
			}
		}
		srv, err := relay.New(cfg)
		if err != nil {
			return fmt.Errorf("TURN service of provider %q in the lab: %w", p.Name, err)
		}
		s.addRelay(srv)
		owner := fmt.Sprintf("provider %q", p.Name)
		if o := turnOverride(l.Prog); o != "" {
			s.note("provider %q: its TURN service runs but agents are not given it: the platform's turn_server_override names %s", p.Name, o)
			continue
		}
		for _, ah := range l.AgentHosts() {
			if ah.Zone == h.Zone {
				continue
			}
			for _, ln := range srv.Listeners() {
				if !ah.source(ln.Addr.Addr()).IsValid() {
					continue
				}
				is := turnServer(ln, h, owner)
				is.Username, is.Credential, is.Realm = s.restUser, s.restPass, ProviderRealm
				s.addServer(ah.Block, is)
			}
		}
	}
	return nil
}

// signalling443 reports whether an allow rule opens TCP 443 to set for
// signalling (HTTPS/WSS and the TURN/TLS fallback).
func signalling443(p *ir.Program, set string) bool {
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Dst != set || r.Action != ir.Allow || r.Purpose != ir.PurposeSignalling {
			continue
		}
		if svc := p.Service(r.Service); svc != nil {
			for _, e := range svc.Entries {
				if e.Proto == ir.TCP && ir.ContainsPort(e.Ports, 443) {
					return true
				}
			}
		}
	}
	return false
}

// turnOverride is the first platform's turn_server_override: the platform
// then gives agents that TURN server only, not its own.
func turnOverride(p *ir.Program) string { return p.AgentICE().Override }
