package verify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/probe"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// Services are the servers the lab's hosts run for a WebRTC call, and what
// each agents group's browsers are told about them:
//
//   - On each relay host, the bundled relay configured from the policy's
//     relay block (relay.FromIR): its realm, relay_ports, peers and
//     listeners, on the addresses the lab gave the host (its first IPv4 and
//     IPv6 address). TLS listeners use a leaf certificate of the lab's own
//     CA (RootCAs), never the policy's certificate and key.
//   - On each provider host whose provider has STUN/TURN ports (turn = {...}
//     in the policy), a bundled relay standing in for the provider's TURN
//     service: those ports on the host's addresses, realm ProviderRealm, REST
//     credentials, relayed ports in 49152-65535 (within the provider's media
//     range when it declares one), any lab host as peer. It answers STUN
//     Binding requests too.
//   - For each provider with public STUN (stun_addresses, stun_fqdns), a
//     STUN Binding responder on its ports: on the set's first IPv4 and IPv6
//     address, put on the provider's host (or another host of its zone) and
//     routed there by the gateway; for names, on an address the lab resolves
//     them to (see StartServices).
//
// Start them after Lab.Apply and after Lab.Run: the flow matrix binds bare
// sockets on the same addresses and ports, and Apply replaces the table whose
// FQDN sets the lab fills.
type Services struct {
	// RootCAs holds the lab CA that issued every TLS listener's certificate;
	// clients of the lab trust it as browsers trust a real relay's CA.
	RootCAs *x509.CertPool
	// Secret is the TURN REST API shared secret of every server.
	Secret string
	// Notes say what the lab could not serve as the policy describes, in
	// plain words (a relay without a host, an FQDN set the gateway lacks).
	Notes []string

	lab       *Lab
	table     string
	ca        *labCA
	log       *slog.Logger
	restUser  string
	restPass  string
	relays    []*relay.Server
	coturns   []*coturnProc
	coturn    bool
	stuns     []*stunResponder
	listening map[string]bool // "udp/addr:port", "tcp/addr:port"
	placed    []netip.Addr    // addresses the services added to hosts
	groups    map[string][]ICEServer
	mu        sync.Mutex
}

// ServiceOptions tune StartServices.
type ServiceOptions struct {
	Secret string // TURN REST API shared secret; random when empty
	// Table is the gateway's nftables table, whose FQDN sets the lab fills
	// with the addresses it resolves names to; "turnwall" when empty.
	Table  string
	Logger *slog.Logger // the relays' logs; discarded when nil
	// Coturn runs Debian's turnserver on the relay hosts, with the
	// configuration the coturn target emits, instead of the bundled relay.
	Coturn bool
}

// ICEServer is one entry of the ICE server list an agents group's browsers
// are given, with where the lab serves it.
type ICEServer struct {
	URL        string
	Username   string
	Credential string
	Host       *Host // the host serving it
	Proto      ir.Proto
	Addr       netip.AddrPort
	Kind       string // "stun", "turn" or "turns"
	Owner      string // `relay "dmz"` or `provider "genesys"`
	// FQDN is the name a browser would resolve to reach a public STUN server
	// given by name; the lab resolved it to Addr itself.
	FQDN string
	// Realm is a TURN server's realm ("" for STUN).
	Realm string
	// CredentialRealm is the realm the platform provisioned the static user
	// in (its tenant_realm), or "" for TURN REST credentials.
	CredentialRealm string
}

// ServerCheck is the outcome of reaching one ICE server from an agents host.
type ServerCheck struct {
	Server   ICEServer `json:"-"`
	URL      string    `json:"url"`
	Owner    string    `json:"owner"`
	Expected string    `json:"expected"` // pass or fail
	Got      string    `json:"got"`      // pass or fail
	Reason   string    `json:"reason"`   // what happened, in plain words
	Rule     string    `json:"rule"`     // the IR rule deciding the first packet, or "default deny"
	Line     string    `json:"line"`     // its policy line
	OK       bool      `json:"ok"`
}

// ProviderRealm is the realm of the lab's stand-ins for providers' TURN
// services.
const ProviderRealm = "lab.invalid"

// Agents get these credentials: the user part of REST usernames, and the
// static user a platform provisions in its tenant realm.
const agentUser = "agent"

// Limits of every relay of the lab: room for a few calls and the checks.
var labLimits = relay.Limits{UserQuota: 64, TotalQuota: relay.DefaultTotalQuota, MaxLifetime: time.Hour, MaxBPS: relay.DefaultMaxBPS, MaxTCPConns: 256}

// Bounds of one check.
const (
	checkTimeout    = 1500 * time.Millisecond
	checkParallel   = 8
	checkSourcePort = 40000 // the source port expectations assume
)

// StartServices starts the lab's services (see Services). Credentials:
// TURN REST API credentials from opt.Secret, user "agent", valid for an hour;
// but where a platform block sets tenant_realm, the platform provisions a
// static user "agent" in that realm for the relays it sends agents to, as
// a real platform would, so a relay whose realm differs refuses it (401):
// the real consequence of a realm mismatch.
//
// Names: the lab has no DNS. For a provider's STUN servers given by name
// (stun_fqdns), the lab plays the resolver: it gives the provider's host an
// address outside every address set of the policy (IPv4, and IPv6), routes
// it from the gateway, adds it to the gateway's FQDN sets of that address set
// (nft add element inet TABLE SET), the way a resolver hook does on a real
// gateway, and lists the server as stun:ADDRESS:PORT with ICEServer.FQDN the
// first name. TURN/TLS URLs likewise carry the relay's address, not its FQDN;
// the FQDN is in the certificate.
//
// On error, everything started is stopped.
func (l *Lab) StartServices(ctx context.Context, opt ServiceOptions) (_ *Services, err error) {
	s := &Services{lab: l, table: opt.Table, log: opt.Logger, coturn: opt.Coturn, listening: map[string]bool{}, groups: map[string][]ICEServer{}}
	if s.table == "" {
		s.table = "turnwall"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Secret = opt.Secret; s.Secret == "" {
		if s.Secret, err = randomString(24); err != nil {
			return nil, err
		}
	}
	if s.ca, err = newLabCA(); err != nil {
		return nil, fmt.Errorf("lab CA: %w", err)
	}
	s.RootCAs = s.ca.pool
	s.restUser, s.restPass = creds.Generate(s.Secret, agentUser, time.Now().Add(time.Hour))
	if err = s.startRelays(ctx); err != nil {
		return nil, err
	}
	if err = s.startProviderTURN(); err != nil {
		return nil, err
	}
	if err = s.startSTUN(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops every relay and responder; call it before Lab.Close.
// Addresses, routes and set elements the services added stay: Lab.Close
// removes them with the namespaces.
func (s *Services) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	relays, stuns, coturns := s.relays, s.stuns, s.coturns
	s.relays, s.stuns, s.coturns = nil, nil, nil
	s.mu.Unlock()
	var errs []error
	for _, r := range relays {
		errs = append(errs, r.Close())
	}
	for _, p := range coturns {
		errs = append(errs, p.stop())
	}
	for _, r := range stuns {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// ICEServers returns what agents group `group`'s browsers are given: the
// relays serving the group, the providers' TURN services, then public STUN,
// each in IPv4 and then IPv6 where the agents host and the server both
// have that family.
//
// The platform's WebRTC settings apply, as the platform hands the list to
// the browsers: with use_turn = false agents get no TURN server, with
// tcp_fallback = false none reached over TCP or TLS (the first platform block
// decides; without one agents get every server).
func (s *Services) ICEServers(group string) []ICEServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	useTURN, tcp := true, true
	if len(s.lab.Prog.Platforms) > 0 {
		pl := s.lab.Prog.Platforms[0]
		useTURN, tcp = pl.UseTURN, pl.TCPFallback
	}
	var out []ICEServer
	for _, srv := range s.groups[group] {
		switch {
		case srv.Kind != "stun" && !useTURN:
		case srv.Kind != "stun" && srv.Proto == ir.TCP && !tcp:
		default:
			out = append(out, srv)
		}
	}
	return out
}

func (s *Services) addServer(group string, srv ICEServer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[group] = append(s.groups[group], srv)
}

func (s *Services) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

func (s *Services) addRelay(r *relay.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relays = append(s.relays, r)
	s.markListening(r.Listeners())
}

func (s *Services) addCoturn(p *coturnProc, lns []relay.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.coturns = append(s.coturns, p)
	s.markListening(lns)
}

// markListening records the listeners' ports as served; with s.mu held.
func (s *Services) markListening(lns []relay.Listener) {
	for _, ln := range lns {
		nw := "tcp"
		if ln.Transport == relay.UDP {
			nw = "udp"
		}
		s.listening[nw+"/"+ln.Addr.String()] = true
	}
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// host returns the lab host of a block, or nil.
func (l *Lab) host(kind, block string) *Host {
	for _, h := range l.Hosts {
		if h.Kind == kind && h.Block == block {
			return h
		}
	}
	return nil
}

// addrs returns a host's policy addresses: IPv4 first.
func (h *Host) addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{h.V4, h.V6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// source is the host's policy address of dst's family, or the zero Addr.
func (h *Host) source(dst netip.Addr) netip.Addr {
	if dst.Is4() {
		return h.V4
	}
	return h.V6
}

func urlHost(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

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
		} else {
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
func turnOverride(p *ir.Program) string {
	for _, pl := range p.Platforms {
		if pl.TURNServerOverride != "" {
			return pl.TURNServerOverride
		}
	}
	return ""
}

// stunPorts returns the public STUN ports the IR opens to a STUN set.
func stunPorts(p *ir.Program, set string) (udp, tcp []uint16) {
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Dst != set || r.Action != ir.Allow || r.Purpose != ir.PurposeSTUN {
			continue
		}
		svc := p.Service(r.Service)
		if svc == nil {
			continue
		}
		for _, e := range svc.Entries {
			for _, pr := range e.Ports {
				key := string(e.Proto) + strconv.Itoa(int(pr.First))
				if pr.First == 0 || seen[key] {
					continue
				}
				seen[key] = true
				if e.Proto == ir.UDP {
					udp = append(udp, pr.First)
				} else {
					tcp = append(tcp, pr.First)
				}
			}
		}
	}
	return udp, tcp
}

// stunHost is where a provider's public STUN servers run: its own host, or
// else another host of its zone (a provider with only STUN names has none).
func (l *Lab) stunHost(p *ir.Provider) *Host {
	if h := l.host("provider", p.Name); h != nil {
		return h
	}
	var other *Host
	for _, h := range l.Hosts {
		if h.Zone != p.Zone {
			continue
		}
		if h.Kind == "provider" {
			return h
		}
		if other == nil {
			other = h
		}
	}
	return other
}

// place puts address a on host h and routes it there from the gateway,
// unless a lab host already has it; it returns the host that has it.
func (s *Services) place(h *Host, a netip.Addr) (*Host, error) {
	for _, o := range s.lab.Hosts {
		if o.V4 == a || o.V6 == a || o.Outside == a {
			return o, nil
		}
	}
	s.mu.Lock()
	for _, p := range s.placed {
		if p == a {
			s.mu.Unlock()
			return h, nil
		}
	}
	s.mu.Unlock()
	cidr := netip.PrefixFrom(a, a.BitLen()).String()
	fam, via := "-4", h.transfer4
	args := []string{"addr", "replace", cidr, "dev", "eth0"}
	if a.Is6() {
		fam, via = "-6", h.transfer6
		args = append(args, "nodad")
	}
	if err := h.NS.IP(args...); err != nil {
		return nil, err
	}
	if err := s.lab.GW.IP(fam, "route", "replace", cidr, "via", via.String(), "dev", h.dev); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.placed = append(s.placed, a)
	s.mu.Unlock()
	return h, nil
}

// resolvedAddr chooses the address the lab resolves a set's names to: in
// no address set of the policy (or no range but wide ones), on no host,
// not yet used.
func (s *Services) resolvedAddr(v6 bool) netip.Addr {
	bases := []string{"192.0.2.177", "198.51.100.77", "203.0.113.77", "100.127.254.77"}
	if v6 {
		bases = []string{"2001:db8:7e57::77", "3fff:7e57::77", "fd7e:7a1f::77"}
	}
	used := map[netip.Addr]bool{}
	for _, h := range s.lab.Hosts {
		used[h.V4], used[h.V6], used[h.Outside] = true, true, true
	}
	s.mu.Lock()
	for _, a := range s.placed {
		used[a] = true
	}
	s.mu.Unlock()
	return spareAddr(s.lab.Prog, bases, func(a netip.Addr) bool { return used[a] })
}

// fqdnSets returns the gateway's nftables sets that hold the resolved
// addresses of each IR address set with names: [0] IPv4, [1] IPv6. They
// are the sets of the ruleset Lab.Apply loaded (each records the IR set it
// renders), or of the program's own ruleset when none was applied.
func (l *Lab) fqdnSets(table string) (map[string][2]string, error) {
	rs := l.applied
	if rs == nil {
		var err error
		if rs, err = nftables.Build(l.Prog, table); err != nil {
			return nil, err
		}
	}
	out := map[string][2]string{}
	for _, set := range rs.Sets {
		if len(set.FQDNs) == 0 {
			continue
		}
		names := out[set.IRSet]
		if set.V6 {
			names[1] = set.Name
		} else {
			names[0] = set.Name
		}
		out[set.IRSet] = names
	}
	return out, nil
}

// startSTUN runs each provider's public STUN servers.
func (s *Services) startSTUN(ctx context.Context) error {
	l := s.lab
	var sets map[string][2]string
	for i := range l.Prog.Providers {
		p := &l.Prog.Providers[i]
		set := l.Prog.AddressSet(p.STUN)
		if p.STUN == "" || set == nil {
			continue
		}
		udp, tcp := stunPorts(l.Prog, p.STUN)
		if len(udp)+len(tcp) == 0 {
			continue
		}
		h := l.stunHost(p)
		if h == nil {
			s.note("provider %q: no lab host in zone %q for its STUN servers", p.Name, p.Zone)
			continue
		}
		type target struct {
			addr netip.Addr
			fqdn string
			host *Host
		}
		var targets []target
		for _, pfx := range [][]netip.Prefix{set.V4, set.V6} {
			if len(pfx) == 0 {
				continue
			}
			th, err := s.place(h, pick(pfx[0]))
			if err != nil {
				return fmt.Errorf("provider %q STUN address: %w", p.Name, err)
			}
			targets = append(targets, target{addr: pick(pfx[0]), host: th})
		}
		if len(set.FQDNs) > 0 {
			if sets == nil {
				var err error
				if sets, err = l.fqdnSets(s.table); err != nil {
					return err
				}
			}
			names, ok := sets[set.Name]
			if !ok {
				s.note("provider %q: the ruleset has no set for the STUN names %s (no rule uses them); not served", p.Name, strings.Join(set.FQDNs, ", "))
			}
			for fam, nftSet := range names {
				if nftSet == "" {
					continue
				}
				a := s.resolvedAddr(fam == 1)
				if !a.IsValid() {
					s.note("provider %q: no free address to resolve %s to", p.Name, set.FQDNs[0])
					continue
				}
				th, err := s.place(h, a)
				if err != nil {
					return fmt.Errorf("provider %q STUN address: %w", p.Name, err)
				}
				if _, err := l.GW.Exec(ctx, "nft", "add", "element", "inet", s.table, nftSet, "{ "+a.String()+" }"); err != nil {
					s.note("provider %q: cannot add %s (resolved %s) to the gateway's set %s: %v", p.Name, a, set.FQDNs[0], nftSet, err)
				}
				targets = append(targets, target{addr: a, fqdn: set.FQDNs[0], host: th})
			}
		}
		owner := fmt.Sprintf("provider %q", p.Name)
		for _, t := range targets {
			ports := append([]uint16(nil), udp...)
			for _, port := range tcp {
				if !containsPort(ports, port) {
					ports = append(ports, port)
				}
			}
			for _, port := range ports {
				ap := netip.AddrPortFrom(t.addr, port)
				s.mu.Lock()
				wantUDP := containsPort(udp, port) && !s.listening["udp/"+ap.String()]
				wantTCP := containsPort(tcp, port) && !s.listening["tcp/"+ap.String()]
				s.mu.Unlock()
				if !wantUDP && !wantTCP {
					continue // a TURN service there answers Binding requests itself
				}
				r, err := startSTUN(t.host.NS, ap, wantUDP, wantTCP)
				if err != nil {
					return fmt.Errorf("provider %q: %w", p.Name, err)
				}
				s.mu.Lock()
				s.stuns = append(s.stuns, r)
				if wantUDP {
					s.listening["udp/"+ap.String()] = true
				}
				if wantTCP {
					s.listening["tcp/"+ap.String()] = true
				}
				s.mu.Unlock()
			}
			// Browsers use STUN over UDP only (stun: URIs have no transport).
			for _, ah := range l.AgentHosts() {
				if ah.Zone == t.host.Zone || !ah.source(t.addr).IsValid() {
					continue
				}
				for _, port := range udp {
					s.addServer(ah.Block, ICEServer{
						URL: fmt.Sprintf("stun:%s:%d", urlHost(t.addr), port), Host: t.host, Proto: ir.UDP,
						Addr: netip.AddrPortFrom(t.addr, port), Kind: "stun", Owner: owner, FQDN: t.fqdn,
					})
				}
			}
		}
	}
	return nil
}

func containsPort(list []uint16, port uint16) bool {
	for _, p := range list {
		if p == port {
			return true
		}
	}
	return false
}

// Expect says whether agents group `group` should reach srv: the IR allows
// the first packet (from the group's address, source port 40000), and the
// credentials are valid in the server's realm. rule and line are the
// deciding IR rule and its policy line; why says what fails, if anything.
func (s *Services) Expect(group string, srv ICEServer) (pass bool, rule, line, why string) {
	e := s.expect(group, srv)
	return e.pass, e.rule, e.line, e.why
}

type expectation struct {
	pass, allowed bool // allowed: by the firewall
	rule, line    string
	why           string
}

func (s *Services) expect(group string, srv ICEServer) expectation {
	ah := s.lab.host("agents", group)
	if ah == nil || srv.Host == nil {
		return expectation{why: "no such agents group in the lab"}
	}
	v := s.lab.Prog.Allows(ir.Packet{FromZone: ah.Zone, ToZone: srv.Host.Zone, Src: ah.source(srv.Addr.Addr()), Dst: srv.Addr.Addr(),
		DstHost: srv.FQDN, Proto: srv.Proto, SrcPort: checkSourcePort, DstPort: srv.Addr.Port()})
	e := expectation{allowed: v.Allowed(), rule: "default " + string(v.Action), line: s.lab.Prog.Policy.Source.String()}
	if v.Rule != nil {
		e.rule, e.line = v.Rule.Name, v.Rule.Origin.Source.String()
	}
	switch {
	case !e.allowed:
		e.why = fmt.Sprintf("the firewall drops %s %d", strings.ToUpper(string(srv.Proto)), srv.Addr.Port())
	case srv.CredentialRealm != "" && srv.CredentialRealm != srv.Realm:
		e.why = realmMismatch(srv.Realm, srv.CredentialRealm)
	default:
		e.pass = true
	}
	return e
}

func realmMismatch(realm, tenant string) string {
	return fmt.Sprintf("401 Unauthorized: the relay's realm is %q but the platform provisioned the user in tenant_realm %q", realm, tenant)
}

// Check reaches every ICE server of agents group `group` from that group's
// host, from its policy address: a STUN Binding request for stun:, a TURN
// Allocate with the group's credentials for turn: and turns: (over the URL's
// transport; TLS trusts RootCAs and checks the URL's host). Checks run
// concurrently, each bounded to a few seconds; allocations are deleted
// again.
func (s *Services) Check(ctx context.Context, group string) []ServerCheck {
	servers := s.ICEServers(group)
	ah := s.lab.host("agents", group)
	out := make([]ServerCheck, len(servers))
	sem := make(chan struct{}, checkParallel)
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = s.check(ctx, ah, group, srv)
		}()
	}
	wg.Wait()
	return out
}

func (s *Services) check(ctx context.Context, ah *Host, group string, srv ICEServer) (c ServerCheck) {
	e := s.expect(group, srv)
	c = ServerCheck{Server: srv, URL: srv.URL, Owner: srv.Owner, Expected: "fail", Got: "fail", Rule: e.rule, Line: e.line}
	if e.pass {
		c.Expected = "pass"
	}
	defer func() { c.OK = c.Expected == c.Got }()
	src := ah.source(srv.Addr.Addr())
	if !src.IsValid() {
		c.Reason = "the agents host has no address of the server's family"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, 2*checkTimeout+time.Second)
	defer cancel()
	var detail, realm string
	var err error
	if srv.Kind == "stun" {
		detail, err = s.checkSTUN(ctx, ah, src, srv)
	} else {
		detail, realm, err = s.checkTURN(ctx, ah, src, srv)
	}
	if err == nil {
		c.Got, c.Reason = "pass", detail
	} else {
		c.Reason = explain(srv, e.allowed, e.rule, realm, err)
	}
	return c
}

// dialFrom opens connections in ns from address src.
func dialFrom(ns *netns.NS, src netip.Addr, timeout time.Duration) func(network, address string) (net.Conn, error) {
	return func(network, address string) (c net.Conn, err error) {
		derr := ns.Do(func() error {
			var la net.Addr = &net.UDPAddr{IP: src.AsSlice()}
			if strings.HasPrefix(network, "tcp") {
				la = &net.TCPAddr{IP: src.AsSlice()}
			}
			d := net.Dialer{LocalAddr: la, Timeout: timeout}
			c, err = d.Dial(network, address)
			return nil
		})
		if derr != nil {
			return nil, derr
		}
		return c, err
	}
}

func (s *Services) checkSTUN(ctx context.Context, ah *Host, src netip.Addr, srv ICEServer) (string, error) {
	var pc net.PacketConn
	if err := ah.NS.Do(func() (err error) {
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		return err
	}); err != nil {
		return "", err
	}
	defer pc.Close()
	mapped, _, _, err := probe.Binding(ctx, pc, srv.Addr, checkTimeout)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Binding answered: mapped address %s", mapped), nil
}

func (s *Services) checkTURN(ctx context.Context, ah *Host, src netip.Addr, srv ICEServer) (detail, realm string, err error) {
	transport := "udp"
	switch {
	case srv.Kind == "turns":
		transport = "tls"
	case srv.Proto == ir.TCP:
		transport = "tcp"
	}
	c, err := turnclient.Dial(turnclient.Config{
		Transport: transport, Server: srv.Addr, Username: srv.Username, Password: srv.Credential,
		TLS:  &tls.Config{RootCAs: s.RootCAs, ServerName: srv.Addr.Addr().String(), MinVersion: tls.VersionTLS12},
		Dial: dialFrom(ah.NS, src, checkTimeout), RTO: 200 * time.Millisecond, Timeout: checkTimeout,
	})
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	relayed, _, err := c.Allocate(ctx, turnclient.AllocateOptions{IPv6: srv.Addr.Addr().Is6()})
	if err != nil {
		return "", c.Realm(), err
	}
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	c.Refresh(rctx, 0) // delete the allocation; errors do not matter
	cancel()
	return fmt.Sprintf("allocated relayed address %s (realm %q)", relayed, c.Realm()), c.Realm(), nil
}

// explain turns a failed check's error into plain words.
func explain(srv ICEServer, allowed bool, rule, realm string, err error) string {
	port := fmt.Sprintf("%s %d", strings.ToUpper(string(srv.Proto)), srv.Addr.Port())
	if realm == "" {
		realm = srv.Realm
	}
	var cve *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch code := turnclient.Code(err); {
	case code == 401 && srv.CredentialRealm != "" && srv.CredentialRealm != realm:
		return realmMismatch(realm, srv.CredentialRealm)
	case code == 401:
		return fmt.Sprintf("401 Unauthorized: the server (realm %q) refused the credentials", realm)
	case code != 0:
		var te *turnclient.Error
		errors.As(err, &te)
		return fmt.Sprintf("%d %s", code, te.Reason)
	case errors.Is(err, context.Canceled):
		return "cancelled before an answer"
	case errors.As(err, &unknownCA):
		return "TLS: the certificate is not issued by a trusted CA"
	case errors.As(err, &hostErr):
		return fmt.Sprintf("TLS: the certificate does not name %s", hostErr.Host)
	case errors.As(err, &invalid):
		return "TLS: invalid certificate: " + invalid.Error()
	case errors.As(err, &cve):
		return "TLS: certificate verification failed: " + cve.Err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		if !allowed {
			return fmt.Sprintf("connection refused (the firewall rejects %s)", port)
		}
		return fmt.Sprintf("connection refused (nothing listens on %s at %s)", port, srv.Addr.Addr())
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if srv.Kind == "turns" {
			return "TLS: the connection was closed during the handshake"
		}
		return "the connection was closed by the server"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		if !allowed {
			return fmt.Sprintf("timed out (the firewall drops %s)", port)
		}
		return fmt.Sprintf("timed out (no answer, although the policy allows %s by rule %s)", port, rule)
	}
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		return "TLS: the server did not answer with TLS"
	}
	return err.Error()
}
