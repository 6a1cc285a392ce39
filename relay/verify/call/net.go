package call

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/turnwall/turnwall/relay/netns"
)

// errFamily: the endpoint has no address of the family pion asked for (it
// tries every configured network type against every server).
var errFamily = errors.New("no local address of this family")

// nsNet is pion's network for one endpoint: the interfaces of its namespace
// (read once, inside the namespace), sockets created inside the namespace
// and bound to the endpoint's addresses, dials bounded by the call's
// context.
type nsNet struct {
	*stdnet.Net
	ns          *netns.NS
	addrs       []netip.Addr
	ctx         context.Context
	dialTimeout time.Duration

	// turns: servers by "host:port" as pion writes it, with their TLS
	// settings.
	tlsServers map[string]*tls.Config

	mu      sync.Mutex
	origins map[string]string // "udp|tcp local-addr:port" -> server "host:port" the socket talks to
	notes   []string          // connection and TLS failures, for reports
}

func newNSNet(ctx context.Context, ep Endpoint, dialTimeout time.Duration) (*nsNet, error) {
	n := &nsNet{ns: ep.NS, ctx: ctx, dialTimeout: dialTimeout, origins: map[string]string{}, tlsServers: map[string]*tls.Config{}}
	for _, a := range ep.Addrs {
		n.addrs = append(n.addrs, a.Unmap())
	}
	if err := ep.NS.Do(func() (err error) {
		n.Net, err = stdnet.NewNet()
		return err
	}); err != nil {
		return nil, fmt.Errorf("interfaces of %s: %w", ep.NS.Name, err)
	}
	for _, s := range ep.Servers {
		u, err := stun.ParseURI(s.URL)
		if err != nil || u.Scheme != stun.SchemeTypeTURNS || u.Proto == stun.ProtoTypeUDP {
			continue
		}
		name := u.Host
		if s.TLSName != "" {
			name = s.TLSName
		}
		n.tlsServers[net.JoinHostPort(u.Host, strconv.Itoa(u.Port))] = &tls.Config{
			ServerName:         name,
			RootCAs:            ep.RootCAs,
			InsecureSkipVerify: ep.InsecureTLS, //nolint:gosec // lab relays with throwaway certificates, by request
			MinVersion:         tls.VersionTLS12,
		}
	}
	return n, nil
}

var _ transport.Net = (*nsNet)(nil)

// allowed reports whether ip is one of the endpoint's addresses.
func (n *nsNet) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, a := range n.addrs {
		if a == ip {
			return true
		}
	}
	return false
}

// source returns the endpoint's first address of the family network
// ("udp4", "tcp6", ...) names, or of remote's family, or the first address.
func (n *nsNet) source(network string, remote netip.Addr) (netip.Addr, error) {
	want := 0
	switch {
	case strings.HasSuffix(network, "4"):
		want = 4
	case strings.HasSuffix(network, "6"):
		want = 6
	case remote.IsValid() && remote.Unmap().Is4():
		want = 4
	case remote.IsValid():
		want = 6
	}
	for _, a := range n.addrs {
		if want == 0 || (want == 4) == a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, errFamily
}

// local fixes the address a socket binds: an unspecified address becomes
// the endpoint's address of the family, and an address that is not the
// endpoint's is refused (as unavailable, so pion does not try other ports).
func (n *nsNet) local(network string, ip net.IP, zone string, remote netip.Addr) (netip.Addr, error) {
	if len(ip) == 0 || ip.IsUnspecified() {
		return n.source(network, remote)
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, fmt.Errorf("bad local address %v", ip)
	}
	if !n.allowed(a) {
		return netip.Addr{}, fmt.Errorf("local address %s is not the endpoint's: %w", a, syscall.EADDRNOTAVAIL)
	}
	return a.Unmap().WithZone(zone), nil
}

func (n *nsNet) remember(kind string, local net.Addr, server string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.origins) < 256 {
		n.origins[kind+" "+local.String()] = server
	}
}

// origin returns the server a local socket talked to first.
func (n *nsNet) origin(kind, local string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.origins[kind+" "+local]
}

func (n *nsNet) note(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.notes) < 16 {
		n.notes = append(n.notes, fmt.Sprintf(format, args...))
	}
}

func (n *nsNet) takeNotes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.notes...)
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// ListenPacket opens a UDP socket (pion uses it for TURN over UDP); the
// socket remembers the first server it writes to.
func (n *nsNet) ListenPacket(network, address string) (net.PacketConn, error) {
	if !strings.HasPrefix(network, "udp") {
		return nil, fmt.Errorf("%s sockets are not supported", network)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var ip net.IP
	zone := ""
	if host != "" {
		h, z, _ := strings.Cut(host, "%")
		if ip = net.ParseIP(h); ip == nil {
			return nil, fmt.Errorf("local address %q is not an IP address", host)
		}
		zone = z
	}
	src, err := n.local(network, ip, zone, netip.Addr{})
	if err != nil {
		return nil, err
	}
	var pc net.PacketConn
	if derr := n.ns.Do(func() error {
		pc, err = net.ListenPacket(network, net.JoinHostPort(src.String(), port))
		return nil
	}); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	return &originConn{PacketConn: pc, n: n}, nil
}

// originConn notes the first address a TURN client's socket writes to: its
// server.
type originConn struct {
	net.PacketConn
	n    *nsNet
	once sync.Once
}

func (c *originConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.once.Do(func() { c.n.remember("udp", c.LocalAddr(), addr.String()) })
	return c.PacketConn.WriteTo(p, addr)
}

// ListenUDP opens a UDP socket (host candidates, STUN).
func (n *nsNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	if laddr == nil {
		laddr = &net.UDPAddr{}
	}
	src, err := n.local(network, laddr.IP, laddr.Zone, netip.Addr{})
	if err != nil {
		return nil, err
	}
	var c *net.UDPConn
	if derr := n.ns.Do(func() error {
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(laddr.Port))))
		return nil
	}); derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenTCP opens a TCP listener (ICE-TCP, which calls do not use).
func (n *nsNet) ListenTCP(network string, laddr *net.TCPAddr) (transport.TCPListener, error) {
	if laddr == nil {
		laddr = &net.TCPAddr{}
	}
	src, err := n.local(network, laddr.IP, laddr.Zone, netip.Addr{})
	if err != nil {
		return nil, err
	}
	var l transport.TCPListener
	if derr := n.ns.Do(func() error {
		l, err = n.Net.ListenTCP(network, net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(laddr.Port))))
		return nil
	}); derr != nil {
		return nil, derr
	}
	return l, err
}

// dial connects from local (unspecified: the endpoint's address of the
// family) to remote, an IP literal, inside the namespace, bounded by the
// call's context and the dial timeout.
func (n *nsNet) dial(network string, local net.Addr, remote netip.AddrPort, d net.Dialer) (net.Conn, error) {
	var lip net.IP
	zone := ""
	switch la := local.(type) {
	case *net.TCPAddr:
		if la != nil {
			lip, zone = la.IP, la.Zone
		}
	case *net.UDPAddr:
		if la != nil {
			lip, zone = la.IP, la.Zone
		}
	}
	src, err := n.local(network, lip, zone, remote.Addr())
	if err != nil {
		return nil, err
	}
	if src.Is4() != remote.Addr().Unmap().Is4() {
		return nil, errFamily
	}
	port := 0
	if strings.HasPrefix(network, "tcp") {
		if la, ok := local.(*net.TCPAddr); ok && la != nil {
			port = la.Port
		}
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(port)))
	} else {
		if la, ok := local.(*net.UDPAddr); ok && la != nil {
			port = la.Port
		}
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(port)))
	}
	if d.Timeout == 0 || d.Timeout > n.dialTimeout {
		d.Timeout = n.dialTimeout
	}
	var c net.Conn
	if derr := n.ns.Do(func() error {
		// An IP literal: one address, dialled on this goroutine, so the
		// socket is created on the namespace's thread.
		c, err = d.DialContext(n.ctx, network, remote.String())
		return nil
	}); derr != nil {
		return nil, derr
	}
	return c, err
}

// resolve turns "host:port" into an address with the process's resolver;
// IP literals need none.
func (n *nsNet) resolve(network, address string) (netip.AddrPort, error) {
	if strings.HasPrefix(network, "tcp") {
		a, err := n.Net.ResolveTCPAddr(network, address)
		if err != nil {
			return netip.AddrPort{}, err
		}
		return netip.AddrPortFrom(addrOf(a.IP), uint16(a.Port)), nil
	}
	a, err := n.Net.ResolveUDPAddr(network, address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addrOf(a.IP), uint16(a.Port)), nil
}

// Dial connects to address (TCP or UDP).
func (n *nsNet) Dial(network, address string) (net.Conn, error) {
	remote, err := n.resolve(network, address)
	if err != nil {
		return nil, err
	}
	return n.dial(network, nil, remote, net.Dialer{})
}

// DialUDP connects a UDP socket (pion uses it for TURN over DTLS).
func (n *nsNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (transport.UDPConn, error) {
	if raddr == nil {
		return nil, errors.New("no remote address")
	}
	var local net.Addr
	if laddr != nil {
		local = laddr
	}
	c, err := n.dial(network, local, raddr.AddrPort(), net.Dialer{})
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// DialTCP connects a TCP socket (pion uses it for TURN over TCP and TLS
// when no proxy dialer is set).
func (n *nsNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (transport.TCPConn, error) {
	if raddr == nil {
		return nil, errors.New("no remote address")
	}
	var local net.Addr
	if laddr != nil {
		local = laddr
	}
	c, err := n.dial(network, local, raddr.AddrPort(), net.Dialer{})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// CreateDialer returns a dialer that dials inside the namespace.
func (n *nsNet) CreateDialer(d *net.Dialer) transport.Dialer {
	return nsDialer{n: n, d: d}
}

type nsDialer struct {
	n *nsNet
	d *net.Dialer
}

func (d nsDialer) Dial(network, address string) (net.Conn, error) {
	remote, err := d.n.resolve(network, address)
	if err != nil {
		return nil, err
	}
	var cfg net.Dialer
	if d.d != nil {
		cfg = *d.d
	}
	return d.n.dial(network, cfg.LocalAddr, remote, cfg)
}

// CreateListenConfig returns a listen config that listens inside the
// namespace, on the endpoint's addresses only.
func (n *nsNet) CreateListenConfig(lc *net.ListenConfig) transport.ListenConfig {
	return nsListenConfig{n: n, lc: lc}
}

type nsListenConfig struct {
	n  *nsNet
	lc *net.ListenConfig
}

func (l nsListenConfig) fix(network, address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", err
	}
	var ip net.IP
	if host != "" {
		if ip = net.ParseIP(host); ip == nil {
			return "", fmt.Errorf("local address %q is not an IP address", host)
		}
	}
	src, err := l.n.local(network, ip, "", netip.Addr{})
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(src.String(), port), nil
}

func (l nsListenConfig) Listen(ctx context.Context, network, address string) (ln net.Listener, err error) {
	if address, err = l.fix(network, address); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	if l.lc != nil {
		lc = *l.lc
	}
	if derr := l.n.ns.Do(func() error { ln, err = lc.Listen(ctx, network, address); return nil }); derr != nil {
		return nil, derr
	}
	return ln, err
}

func (l nsListenConfig) ListenPacket(ctx context.Context, network, address string) (pc net.PacketConn, err error) {
	if address, err = l.fix(network, address); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	if l.lc != nil {
		lc = *l.lc
	}
	if derr := l.n.ns.Do(func() error { pc, err = lc.ListenPacket(ctx, network, address); return nil }); derr != nil {
		return nil, derr
	}
	return pc, err
}

// turnDialer is pion's proxy dialer, which it uses for every TURN server
// reached over TCP: the connection is made inside the namespace from the
// endpoint's address, and for turns: servers the TLS handshake is done here
// with the endpoint's roots (pion's own TLS client cannot be given any).
type turnDialer struct{ n *nsNet }

func (d turnDialer) Dial(network, address string) (net.Conn, error) {
	n := d.n
	remote, err := n.resolve(network, address)
	if err != nil {
		return nil, err
	}
	if _, err := n.source(network, remote.Addr()); err != nil {
		return nil, err // pion tries tcp4 and tcp6 for every server
	}
	conn, err := n.dial(network, nil, remote, net.Dialer{})
	if err != nil {
		if !errors.Is(err, errFamily) {
			n.note("TCP connection to %s: %v", address, err)
		}
		return nil, err
	}
	n.remember("tcp", conn.LocalAddr(), address)
	cfg, ok := n.tlsServers[address]
	if !ok {
		return conn, nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.dialTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg.Clone())
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		n.note("TLS with %s: %v", address, tlsReason(err))
		return nil, err
	}
	return tc, nil
}

// tlsReason shortens certificate errors to their point.
func tlsReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return "certificate signed by an authority the endpoint does not trust"
	case errors.As(err, &host):
		return "certificate is not valid for " + host.Host
	case errors.As(err, &invalid):
		return "certificate invalid: " + invalid.Error()
	}
	return err.Error()
}
