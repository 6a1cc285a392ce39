package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/peerfilter"
)

// Transports a relay listens on.
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// Listener is one address the relay serves clients on.
type Listener struct {
	Transport string // udp, tcp or tls
	Addr      netip.AddrPort
}

func (l Listener) String() string { return l.Transport + "://" + l.Addr.String() }

// Config is everything a relay needs; FromIR builds most of it from a
// compiled policy.
type Config struct {
	Name      string // the policy's relay name, for logs
	Realm     string
	Listeners []Listener
	// RelayIPs are the addresses allocations are made on, at most one per
	// family is used (the first). Empty: the listeners' addresses.
	RelayIPs   []netip.Addr
	RelayPorts ir.PortRange
	TCPRelay   bool // RFC 6062 TCP allocations
	LabOnly    bool // a self-signed certificate is accepted (and made when none is given)
	FQDN       string

	// TLS: CertFile and KeyFile (PEM), or Certificate.
	CertFile, KeyFile string
	Certificate       *tls.Certificate

	// Peers the policy allows (nil: none).
	Peers *netipx.IPSet

	Auth   *Auth
	Limits Limits

	// Fleet hooks (docs/relay.md, "Fleet"). All optional.
	//
	// CapacityThreshold is the share of Limits.TotalQuota (0 < t <= 1) at
	// which the relay reports not ready (/readyz 503) and redirects new
	// allocations to an alternate; 0: DefaultCapacityThreshold.
	CapacityThreshold float64
	// Alternates chooses where to redirect new allocations while draining
	// or above the capacity threshold (300 Try Alternate); nil: none, a
	// draining relay refuses them (486).
	Alternates Alternates
	// Quota is consulted on every Allocate after the relay's own limits
	// (a fleet-wide quota); nil: the relay's own limits only.
	Quota Quota
	// PeerBound narrows the peers the policy allows: a peer the filter
	// allows is refused when PeerBound returns false (an external deny
	// list, or an allow list). It can never allow a peer the filter
	// refuses. It is asked on CreatePermission, ChannelBind and Connect.
	PeerBound func(netip.Addr) bool
	// Events is told of allocations created, refreshed and deleted (the
	// store's statsdb events); nil: none.
	Events AllocationEvents

	// UDPSockets is the number of SO_REUSEPORT sockets per UDP listener
	// (default: one per CPU), each with its own reader.
	UDPSockets int

	// NoDataplane reads relayed sockets with one goroutine each (pion/turn's
	// own reader) instead of the epoll data plane.
	NoDataplane bool

	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	Net        Net                   // default: StdNet
}

// Server is a running relay.
type Server struct {
	cfg         Config
	log         *slog.Logger
	filter      *peerfilter.Filter
	metrics     *metrics
	quota       *quota
	relayV4     netip.Addr
	relayV6     netip.Addr
	maxLifetime time.Duration
	idleTimeout time.Duration
	gen         *relayGen
	turn        *turn.Server
	packetConns []*guardedPacketConn
	groups      []*socketGroup
	listeners   []*guardedListener
	bound       []Listener
	tcpConns    atomic.Int64
	connMu      sync.Mutex
	tcpBySource map[netip.Addr]int
	tcpByUser   map[string]int
	tcpByTuple  map[string]*guardedConn
	unallocated time.Duration
	throttle    *authThrottle
	draining    atomic.Bool
	stopping    atomic.Bool // Shutdown or Close: draining for good
	closed      atomic.Bool
	capacity    float64 // CapacityThreshold, defaulted
	allocSeq    atomic.Uint64
	allocEvents allocEvents
	self        []netip.Addr // the relay's own addresses, unmapped
	dp          *dataplane   // nil: relayed sockets are read by goroutines
	relayMu     sync.Mutex
	relays      map[netip.AddrPort]*relayConn // UDP relayed sockets by address
	tcpMu       sync.Mutex
	tcpAllocs   map[netip.AddrPort]*relayListener
	logLimit    logLimiter
	closeOnce   sync.Once
	closeErr    error

	// maxQueueDelay: Limits.MaxQueueDelay, defaulted; 0: no shedding.
	maxQueueDelay time.Duration
}

// New validates cfg, opens every listener and starts serving.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Net == nil {
		cfg.Net = StdNet{}
	}
	if cfg.UDPSockets <= 0 {
		cfg.UDPSockets = runtime.NumCPU()
	}
	if cfg.Auth == nil {
		return nil, errors.New("no authentication configured")
	}
	if cfg.Realm == "" || cfg.Realm != cfg.Auth.Realm() {
		return nil, fmt.Errorf("realm %q: empty, or not the authenticator's realm", cfg.Realm)
	}
	if len(cfg.Listeners) == 0 {
		return nil, errors.New("no listeners")
	}
	if cfg.RelayPorts.First == 0 || cfg.RelayPorts.First > cfg.RelayPorts.Last {
		return nil, fmt.Errorf("relay port range %s is empty or starts at 0", cfg.RelayPorts)
	}
	if l := cfg.Limits; l.UserQuota < 0 || l.TotalQuota < 0 || l.MaxBPS < 0 || l.MaxTCPConns < 0 || l.MaxLifetime < 0 ||
		l.MaxTCPConnsPerSource < 0 || l.MaxTCPConnsPerUser < 0 || l.UnallocatedTimeout < 0 || l.AuthFailRate < 0 || l.AuthFailBurst < 0 ||
		(l.MaxQueueDelay < 0 && l.MaxQueueDelay != NoQueueDelayBound) {
		return nil, errors.New("limits must not be negative")
	}
	if t := cfg.CapacityThreshold; !(t >= 0 && t <= 1) {
		return nil, fmt.Errorf("capacity threshold %v: give a share of the total quota above 0, at most 1", t)
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("relay", cfg.Name), metrics: newMetrics(),
		quota:       newQuota(cfg.Limits.UserQuota, cfg.Limits.TotalQuota),
		tcpAllocs:   map[netip.AddrPort]*relayListener{},
		relays:      map[netip.AddrPort]*relayConn{},
		tcpBySource: map[netip.Addr]int{},
		tcpByUser:   map[string]int{},
		tcpByTuple:  map[string]*guardedConn{},
		unallocated: cfg.Limits.UnallocatedTimeout,
		throttle:    newAuthThrottle(cfg.Limits),
	}
	if s.unallocated == 0 {
		s.unallocated = DefaultUnallocatedTimeout
	}
	s.capacity = cfg.CapacityThreshold
	if s.capacity == 0 {
		s.capacity = DefaultCapacityThreshold
	}
	s.metrics.drainingFunc(s.draining.Load)
	s.logLimit.init()
	s.gen = &relayGen{s: s, tcpPorts: map[netip.AddrPort]bool{}}
	s.allocEvents = allocEvents{lifetimes: map[string]time.Duration{}, ids: map[string]allocRef{}}
	s.maxLifetime = cfg.Limits.MaxLifetime
	if s.maxLifetime == 0 || s.maxLifetime > maxLifetimeCeiling {
		s.maxLifetime = maxLifetimeCeiling
	}
	if s.maxLifetime < time.Minute {
		return nil, fmt.Errorf("allocation lifetime cap %s is below one minute", s.maxLifetime)
	}
	s.idleTimeout = s.maxLifetime + time.Minute
	switch s.maxQueueDelay = cfg.Limits.MaxQueueDelay; s.maxQueueDelay {
	case 0:
		s.maxQueueDelay = DefaultMaxQueueDelay
	case NoQueueDelayBound:
		s.maxQueueDelay = 0 // no shedding, no stamps
	}

	relayIPs := cfg.RelayIPs
	if len(relayIPs) == 0 {
		for _, l := range cfg.Listeners {
			relayIPs = append(relayIPs, l.Addr.Addr())
		}
	}
	var self []netip.Addr
	for _, ip := range relayIPs {
		ip = ip.Unmap()
		if ip.IsUnspecified() || !ip.IsValid() {
			return nil, fmt.Errorf("relay address %s: give the relay's own address", ip)
		}
		if ip.Is4() && !s.relayV4.IsValid() {
			s.relayV4 = ip
		}
		if ip.Is6() && !s.relayV6.IsValid() {
			s.relayV6 = ip
		}
		self = append(self, ip)
	}
	for _, l := range cfg.Listeners {
		self = append(self, l.Addr.Addr())
	}
	for _, l := range cfg.Listeners {
		if cfg.RelayPorts.Contains(l.Addr.Port()) {
			return nil, fmt.Errorf("listener %s is inside the relay port range %s: peers could reach it through an allocation", l, cfg.RelayPorts)
		}
	}
	s.self = self
	s.filter = peerfilter.New(cfg.Peers, self)
	if !s.filter.HasPeers() {
		s.log.Warn("the policy names no peers for this relay: every peer will be refused")
	}

	var tlsConfig *tls.Config
	for _, l := range cfg.Listeners {
		if l.Transport == TLS && tlsConfig == nil {
			cert, err := loadCertificate(cfg)
			if err != nil {
				return nil, err
			}
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tls12Suites, Certificates: []tls.Certificate{*cert}}
		}
	}

	s.metrics.setup(cfg.Limits, tlsConfig)
	if err := s.open(tlsConfig); err != nil {
		s.closeSockets()
		return nil, err
	}
	if !cfg.NoDataplane {
		dp, err := newDataplane(cfg.UDPSockets, s.maxQueueDelay, s.metrics)
		if err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("data plane: %w", err)
		}
		s.dp = dp
	}

	lifetime := 10 * time.Minute // RFC 8656 default
	if lifetime > s.maxLifetime {
		lifetime = s.maxLifetime
	}
	tc := turn.ServerConfig{
		Realm:              cfg.Realm,
		AuthHandler:        cfg.Auth.Handler,
		QuotaHandler:       s.quotaHandler,
		EventHandler:       s.events(),
		AllocationLifetime: lifetime,
		LoggerFactory:      pionLoggerFactory{s},
	}
	for _, pc := range s.packetConns {
		tc.PacketConnConfigs = append(tc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: pc, RelayAddressGenerator: s.gen, PermissionHandler: s.permissionHandler})
	}
	for _, l := range s.listeners {
		tc.ListenerConfigs = append(tc.ListenerConfigs, turn.ListenerConfig{
			Listener: l, RelayAddressGenerator: s.gen, PermissionHandler: s.permissionHandler})
	}
	t, err := turn.NewServer(tc)
	if err != nil {
		s.closeSockets()
		if s.dp != nil {
			s.dp.close()
		}
		return nil, err
	}
	s.turn = t
	if cfg.Registerer != nil {
		if err := s.metrics.register(cfg.Registerer); err != nil {
			s.Close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	users, secrets := cfg.Auth.Counts()
	s.log.Info("relay started", "listeners", fmt.Sprint(s.bound), "relay_v4", s.relayV4.String(), "relay_v6", s.relayV6.String(),
		"relay_ports", cfg.RelayPorts.String(), "tcp_relay", cfg.TCPRelay, "udp_sockets", cfg.UDPSockets,
		"static_users", users, "secrets", secrets, "user_quota", cfg.Limits.UserQuota, "total_quota", cfg.Limits.TotalQuota,
		"max_lifetime", s.maxLifetime.String(), "max_bps", cfg.Limits.MaxBPS, "max_tcp_connections", cfg.Limits.MaxTCPConns,
		"max_tcp_connections_per_source", cfg.Limits.MaxTCPConnsPerSource, "max_tcp_connections_per_user", cfg.Limits.MaxTCPConnsPerUser,
		"unallocated_timeout", s.unallocated.String(), "auth_fail_rate", cfg.Limits.AuthFailRate,
		"max_queue_delay", s.maxQueueDelay.String(), "capacity_threshold", s.threshold(), "alternates", cfg.Alternates != nil, "fleet_quota", cfg.Quota != nil, "peer_bound", cfg.PeerBound != nil)
	return s, nil
}

// tls12Suites are the TLS 1.2 cipher suites served: ECDHE key exchange with
// AEAD ciphers only (no CBC, no SHA-1 MACs, no RSA key exchange). TLS 1.3
// suites are not configurable and all AEAD.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func network(transport string, a netip.Addr) string {
	n := "udp"
	if transport != UDP {
		n = "tcp"
	}
	if a.Unmap().Is4() {
		return n + "4"
	}
	return n + "6"
}

// open binds every listener.
func (s *Server) open(tlsConfig *tls.Config) error {
	for _, l := range s.cfg.Listeners {
		nw := network(l.Transport, l.Addr.Addr())
		switch l.Transport {
		case UDP:
			addr := l.Addr
			group := &socketGroup{idx: len(s.groups)}
			s.groups = append(s.groups, group)
			for i := range s.cfg.UDPSockets {
				pc, err := s.cfg.Net.ListenPacket(nw, addr, true)
				if err != nil {
					return fmt.Errorf("listen %s: %w", l, err)
				}
				s.packetConns = append(s.packetConns, newGuardedPacketConn(s, pc, group))
				if i == 0 {
					addr = unmapAP(pc.LocalAddr().(*net.UDPAddr).AddrPort()) // port 0: the others join the same port
					s.bound = append(s.bound, Listener{Transport: UDP, Addr: addr})
					group.local = addr
					group.fast, _ = pc.(udpConn)
					if sc, ok := pc.(syscall.Conn); ok && group.fast != nil {
						group.raw, _ = sc.SyscallConn()
					}
				}
			}
		case TCP, TLS:
			ln, err := s.cfg.Net.Listen(nw, l.Addr, false)
			if err != nil {
				return fmt.Errorf("listen %s: %w", l, err)
			}
			g := &guardedListener{Listener: ln, s: s, transport: l.Transport, conns: map[*guardedConn]struct{}{}}
			if l.Transport == TLS {
				g.tls = tlsConfig
			}
			s.listeners = append(s.listeners, g)
			ap := ln.Addr().(*net.TCPAddr).AddrPort()
			s.bound = append(s.bound, Listener{Transport: l.Transport, Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())})
		default:
			return fmt.Errorf("unknown transport %q", l.Transport)
		}
	}
	return nil
}

func (s *Server) closeSockets() {
	for _, pc := range s.packetConns {
		pc.Close()
	}
	for _, l := range s.listeners {
		l.Close()
	}
}

// Listeners returns the bound listener addresses (ports chosen by the
// system where the configuration said 0).
func (s *Server) Listeners() []Listener { return append([]Listener(nil), s.bound...) }

// Listener returns the first bound listener of a transport.
func (s *Server) Listener(transport string) (netip.AddrPort, bool) {
	for _, l := range s.bound {
		if l.Transport == transport {
			return l.Addr, true
		}
	}
	return netip.AddrPort{}, false
}

// AllocationCount returns the current number of allocations.
func (s *Server) AllocationCount() int { return s.turn.AllocationCount() }

// Close stops the relay at once: listeners, client connections and
// allocations are closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopping.Store(true)
		s.draining.Store(true)
		s.closed.Store(true)
		s.closeErr = s.turn.Close()
		s.quota.releaseAll()
		s.gen.closeHeld()
		for _, l := range s.listeners {
			l.Close()
		}
		if s.dp != nil {
			// The engine closes allocations as its readers stop; wait for
			// that before stopping the loops that read their sockets.
			deadline := time.Now().Add(2 * time.Second)
			for s.liveRelays() > 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			s.dp.close()
		}
		s.log.Info("relay stopped")
	})
	return s.closeErr
}

// Shutdown refuses new allocations (486, or 300 Try Alternate with
// Alternates), waits until the existing ones end
// or ctx is done, then closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.draining.Store(true)
	n := s.AllocationCount()
	if n > 0 {
		s.log.Info("draining", "allocations", n)
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for s.AllocationCount() > 0 {
		select {
		case <-ctx.Done():
			s.log.Info("drain timeout", "allocations", s.AllocationCount())
			return s.Close()
		case <-t.C:
		}
	}
	return s.Close()
}

// OutOfBound is the denied-peer reason of a peer the filter allows but
// Config.PeerBound refuses.
const OutOfBound peerfilter.Reason = "out-of-bound"

// permit decides a peer for an allocation, counting and logging refusals.
func (s *Server) permit(client net.Addr, peer net.IP, method, user string) bool {
	r := s.filter.CheckIP(peer)
	if r == peerfilter.Allowed || r == peerfilter.RelayAddress { // the relay itself: relayed ports only, checked per packet
		if s.cfg.PeerBound == nil {
			return true
		}
		if a, ok := netip.AddrFromSlice(peer); ok && s.cfg.PeerBound(a.Unmap()) {
			return true
		}
		r = OutOfBound
	}
	s.metrics.deniedPeers.WithLabelValues(string(r)).Inc()
	args := []any{"reason", string(r), "peer", peer.String(), "client", addrString(client)}
	if method != "" {
		args = append(args, "method", method)
	}
	if user != "" {
		args = append(args, "user", user)
	}
	s.limited(slog.LevelWarn, client, "peer refused", args...)
	return false
}

func (s *Server) liveRelays() int {
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	return len(s.relays)
}

// toSelfAP is toSelf for a netip.AddrPort.
func (s *Server) toSelfAP(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	for _, x := range s.self {
		if x == a {
			return ap.Port() < s.cfg.RelayPorts.First || ap.Port() > s.cfg.RelayPorts.Last
		}
	}
	return false
}

// toSelf reports whether a relayed packet or connection goes to the relay's
// own address outside its relayed port range (its listeners, or any other
// service on the host), which is refused.
func (s *Server) toSelf(ip net.IP, port int) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, x := range s.self {
		if x == a {
			return port < int(s.cfg.RelayPorts.First) || port > int(s.cfg.RelayPorts.Last)
		}
	}
	return false
}

func udpAddr(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		return unmapAP(u.AddrPort())
	}
	return netip.AddrPort{}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// permissionHandler is pion/turn's hook for CreatePermission, ChannelBind
// and Connect.
func (s *Server) permissionHandler(client net.Addr, peer net.IP) bool {
	return s.permit(client, peer, "", "")
}

// quotaHandler is pion/turn's hook before creating an allocation.
func (s *Server) quotaHandler(user, realm string, src net.Addr) bool {
	if s.draining.Load() {
		s.metrics.quotaRejections.WithLabelValues("draining").Inc()
		return false
	}
	if full := s.quota.reserve(user, src, time.Now()); full != "" {
		s.metrics.quotaRejections.WithLabelValues(full).Inc()
		s.limited(slog.LevelWarn, src, "allocation quota reached", "quota", full, "user", user, "client", addrString(src))
		return false
	}
	if s.cfg.Quota != nil {
		id := fmt.Sprintf("%s/%s/%d", s.cfg.Name, addrKey(src), s.allocSeq.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), QuotaTimeout)
		release, err := s.cfg.Quota.Acquire(ctx, user, id)
		cancel()
		if err != nil {
			s.quota.unreserve(src)
			s.metrics.quotaRejections.WithLabelValues("fleet").Inc()
			s.limited(slog.LevelWarn, src, "allocation quota reached", "quota", "fleet", "user", user, "client", addrString(src), "err", err.Error())
			return false
		}
		s.quota.attach(src, release)
	}
	return true
}

func (s *Server) events() turn.EventHandler {
	return turn.EventHandler{
		OnAllocationCreated: func(src, dst net.Addr, _, user, _ string, relayAddr net.Addr, _ int) {
			s.quota.created(src, dst, user)
			s.eventCreated(src, dst, user)
			s.holding(src, dst, true)
			if u, ok := src.(*net.UDPAddr); ok {
				if g, rc := s.groupFor(dst), s.relayByAddr(relayAddr); g != nil && rc != nil {
					route := &clientRoute{addr: unmapAP(u.AddrPort()), group: g}
					rc.client.Store(route)
					g.clients.Store(route.addr, rc)
				}
			}
			s.metrics.allocations.Inc()
			s.metrics.allocationsTotal.Inc()
			s.log.Info("allocation created", "user", user, "client", addrString(src), "listener", addrString(dst), "relayed", addrString(relayAddr))
		},
		OnAllocationDeleted: func(src, dst net.Addr, _, user, _ string) {
			s.quota.deleted(src, dst)
			s.eventDeleted(src, dst)
			s.holding(src, dst, false)
			for _, g := range s.groups {
				g.forget(src)
			}
			s.metrics.allocations.Dec()
			s.log.Info("allocation deleted", "user", user, "client", addrString(src), "listener", addrString(dst))
		},
		OnPermissionCreated: func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ net.IP) { s.metrics.permissions.Inc() },
		OnPermissionDeleted: func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ net.IP) { s.metrics.permissions.Dec() },
		OnChannelCreated: func(_, _ net.Addr, _, _, _ string, relayAddr, peer net.Addr, num uint16) {
			s.metrics.channels.Inc()
			if rc, u := s.relayByAddr(relayAddr), udpAddr(peer); rc != nil && u.IsValid() {
				rc.setChannel(num, u, true)
			}
		},
		OnChannelDeleted: func(_, _ net.Addr, _, _, _ string, relayAddr, peer net.Addr, num uint16) {
			s.metrics.channels.Dec()
			if rc, u := s.relayByAddr(relayAddr), udpAddr(peer); rc != nil && u.IsValid() {
				rc.setChannel(num, u, false)
			}
		},
	}
}
