package verify

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
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
	pool      int         // nodes per relay (RelayPool)
	redis     *labRedis   // the relay pools' store
	poolNodes []*PoolNode // the relay pools' nodes
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
	// RelayPool, when 2, runs each bundled relay whose block lists a
	// second address of a family as a pool of two nodes sharing a store
	// (see startPool); 0 or 1: one node.
	RelayPool int
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

// ProviderRealm is the realm of the lab's stand-ins for providers' TURN
// services.
const ProviderRealm = "lab.invalid"

// Agents get these credentials: the user part of REST usernames, and the
// static user a platform provisions in its tenant realm.
const agentUser = "agent"

// Limits of every relay of the lab: room for a few calls and the checks.
var labLimits = relay.Limits{UserQuota: 64, TotalQuota: relay.DefaultTotalQuota, MaxLifetime: time.Hour, MaxBPS: relay.DefaultMaxBPS, MaxTCPConns: 256}

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
	s := &Services{lab: l, table: opt.Table, log: opt.Logger, coturn: opt.Coturn, pool: opt.RelayPool, listening: map[string]bool{}, groups: map[string][]ICEServer{}}
	switch {
	case opt.RelayPool < 0 || opt.RelayPool > 2:
		return nil, fmt.Errorf("relay pool of %d nodes: the lab runs 1 or 2", opt.RelayPool)
	case opt.RelayPool > 1 && opt.Coturn:
		return nil, errors.New("a relay pool runs the bundled relay, not coturn")
	}
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
	relays, stuns, coturns, nodes, rd := s.relays, s.stuns, s.coturns, s.poolNodes, s.redis
	s.relays, s.stuns, s.coturns, s.poolNodes, s.redis = nil, nil, nil, nil, nil
	s.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		errs = append(errs, n.stop(false))
	}
	errs = append(errs, rd.stop())
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
// tcp_fallback = false none reached over TCP or TLS (ir.Program.AgentICE:
// the same reading the readiness page uses).
func (s *Services) ICEServers(group string) []ICEServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	ice := s.lab.Prog.AgentICE()
	useTURN, tcp := ice.UseTURN, ice.TCPFallback
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
