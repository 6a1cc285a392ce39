package relay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"

	"github.com/turnwall/turnwall/relay/peerfilter"
)

// relayGen hands out relayed transport addresses: the relay's address of the
// requested family and a port from the policy's relay range (RFC 8656 section
// 7.2), with the bandwidth cap and traffic counters around every socket.
type relayGen struct {
	s *Server

	mu       sync.Mutex
	tcpPorts map[netip.AddrPort]bool // TCP relayed ports in use (listeners share them with SO_REUSEPORT)
	held     map[netip.AddrPort]heldPort
}

// heldPort is the odd port next to an EVEN-PORT allocation, bound while its
// RESERVATION-TOKEN is valid. pion/turn only remembers the number, so any
// other socket on the host could take the port and the reserving client
// would get 508 (RFC 8656 section 7.2 says the reservation holds it).
type heldPort struct {
	pc    net.PacketConn
	until time.Time
}

var errNoFamily = errors.New("the relay has no address of the requested family")

// errOddPort: a port that cannot start an even pair (odd, the range's last,
// or its next port taken).
var errOddPort = errors.New("not an even port with a free next port")

// connectTimeout bounds an RFC 6062 Connect to a peer (at least 30 s).
const connectTimeout = 30 * time.Second

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) ip(network string) (netip.Addr, error) {
	var ip netip.Addr
	switch network {
	case "udp4", "tcp4":
		ip = g.s.relayV4
	case "udp6", "tcp6":
		ip = g.s.relayV6
	}
	if !ip.IsValid() {
		return ip, errNoFamily
	}
	return ip, nil
}

// ports yields the ports to try: the requested one (when in range), or
// random ports of the range, then a scan from a random start.
func (g *relayGen) ports(requested int, try func(port uint16) error) error {
	first, last := int(g.s.cfg.RelayPorts.First), int(g.s.cfg.RelayPorts.Last)
	if requested != 0 {
		if requested < first || requested > last {
			return fmt.Errorf("requested port %d is outside the relay range %d-%d", requested, first, last)
		}
		return try(uint16(requested))
	}
	n := last - first + 1
	var err error
	for range 16 {
		if err = try(uint16(first + rand.IntN(n))); err == nil {
			return nil
		}
	}
	start := rand.IntN(n)
	for i := range min(n, 4096) {
		if err = try(uint16(first + (start+i)%n)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no free port in the relay range: %w", err)
}

// AllocatePacketConn implements turn.RelayAddressGenerator.
func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	ip, err := g.ip(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	var pc net.PacketConn
	if conf.RequestedPort != 0 {
		pc = g.takeHeld(netip.AddrPortFrom(ip, uint16(conf.RequestedPort)))
	}
	if pc == nil {
		err = g.ports(conf.RequestedPort, func(port uint16) error {
			var err error
			pc, err = g.s.cfg.Net.ListenPacket(conf.Network, netip.AddrPortFrom(ip, port), false)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if p := conf.RequestedPort; p != 0 && p%2 == 0 && uint16(p) < g.s.cfg.RelayPorts.Last {
		// An EVEN-PORT allocation: pion reserves the next port (of the port
		// this returns) for the RTCP allocation; hold it. pion chose p
		// without asking whether p+1 is free; when another socket on the
		// host has it, another even port whose next port is free is taken
		// instead, so the reservation can be honoured (RFC 8656 section
		// 7.2: the server reserves the next higher port).
		if !g.hold(conf.Network, netip.AddrPortFrom(ip, uint16(p+1))) {
			pc.Close()
			pc = nil
			err = g.ports(0, func(port uint16) error {
				if port%2 != 0 || port >= g.s.cfg.RelayPorts.Last {
					return errOddPort
				}
				c, err := g.s.cfg.Net.ListenPacket(conf.Network, netip.AddrPortFrom(ip, port), false)
				if err != nil {
					return err
				}
				if !g.hold(conf.Network, netip.AddrPortFrom(ip, port+1)) {
					c.Close()
					return errOddPort
				}
				pc = c
				return nil
			})
			if err != nil {
				return nil, nil, fmt.Errorf("no even port with a free next port: %w", err)
			}
		}
	}
	rc := g.s.newRelayConn(pc)
	return rc, net.UDPAddrFromAddrPort(rc.local), nil
}

// AllocateListener implements turn.RelayAddressGenerator (RFC 6062).
func (g *relayGen) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	if !g.s.cfg.TCPRelay {
		return nil, nil, errors.New("TCP allocations are off (tcp_relay)")
	}
	ip, err := g.ip(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	var ln net.Listener
	var ap netip.AddrPort
	err = g.ports(conf.RequestedPort, func(port uint16) error {
		ap = netip.AddrPortFrom(ip, port)
		g.mu.Lock()
		used := g.tcpPorts[ap]
		if !used {
			g.tcpPorts[ap] = true
		}
		g.mu.Unlock()
		if used {
			return errors.New("port in use")
		}
		var err error
		// SO_REUSEPORT: Connect dials peers from this same address. The
		// port set above keeps two allocations off one port.
		if ln, err = g.s.cfg.Net.Listen(conf.Network, ap, true); err != nil {
			g.release(ap)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	stats := &trafficStats{}
	g.s.metrics.track(stats)
	rl := &relayListener{Listener: ln, g: g, ap: ap, stats: stats, in: newBucket(g.s.cfg.Limits.MaxBPS), out: newBucket(g.s.cfg.Limits.MaxBPS)}
	rl.register()
	return rl, net.TCPAddrFromAddrPort(ap), nil
}

// hold binds ap for a reservation and reports whether it could: a port
// some other socket has is left alone.
func (g *relayGen) hold(network string, ap netip.AddrPort) bool {
	pc, err := g.s.cfg.Net.ListenPacket(network, ap, false)
	if err != nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireHeld(time.Now())
	if g.held == nil {
		g.held = map[netip.AddrPort]heldPort{}
	}
	if old, ok := g.held[ap]; ok {
		old.pc.Close()
	}
	g.held[ap] = heldPort{pc: pc, until: time.Now().Add(reservationLifetime)}
	return true
}

// takeHeld hands over the socket held for ap, or nil.
func (g *relayGen) takeHeld(ap netip.AddrPort) net.PacketConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireHeld(time.Now())
	h, ok := g.held[ap]
	if !ok {
		return nil
	}
	delete(g.held, ap)
	return h.pc
}

// expireHeld closes the sockets of reservations past their lifetime; with
// g.mu held.
func (g *relayGen) expireHeld(now time.Time) {
	for ap, h := range g.held {
		if now.After(h.until) {
			h.pc.Close()
			delete(g.held, ap)
		}
	}
}

// closeHeld closes every held socket (the relay is closing).
func (g *relayGen) closeHeld() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for ap, h := range g.held {
		h.pc.Close()
		delete(g.held, ap)
	}
}

func (g *relayGen) release(ap netip.AddrPort) {
	g.mu.Lock()
	delete(g.tcpPorts, ap)
	g.mu.Unlock()
}

// AllocateConn implements turn.RelayAddressGenerator: an RFC 6062 Connect.
// The peer was checked by the permission handler before this is called.
func (g *relayGen) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	local, ok1 := conf.LocalAddr.(*net.TCPAddr)
	remote, ok2 := conf.RemoteAddr.(*net.TCPAddr)
	if !ok1 || !ok2 {
		return nil, errors.New("not TCP addresses")
	}
	if r := g.s.filter.CheckIP(remote.IP); (r != peerfilter.Allowed && r != peerfilter.RelayAddress) || g.s.toSelf(remote.IP, remote.Port) {
		g.s.metrics.deniedPeers.WithLabelValues(string(peerfilter.RelayAddress)).Inc()
		return nil, fmt.Errorf("peer %s refused", remote)
	}
	c, err := g.s.cfg.Net.Dial(conf.Network, local.AddrPort(), remote.AddrPort(), connectTimeout)
	if err != nil {
		return nil, err
	}
	ln := g.listenerFor(local.AddrPort())
	if ln == nil {
		c.Close()
		return nil, errors.New("allocation closed")
	}
	return ln.wrap(c), nil
}

// listenerFor finds the allocation a Connect dials from.
func (g *relayGen) listenerFor(ap netip.AddrPort) *relayListener {
	g.s.tcpMu.Lock()
	defer g.s.tcpMu.Unlock()
	return g.s.tcpAllocs[ap]
}

// relayListener is a TCP relayed transport address (RFC 6062).
type relayListener struct {
	net.Listener
	g       *relayGen
	ap      netip.AddrPort
	stats   *trafficStats
	in, out *bucket
	once    sync.Once
	closed  atomic.Bool
}

func (l *relayListener) register() {
	l.g.s.tcpMu.Lock()
	l.g.s.tcpAllocs[l.ap] = l
	l.g.s.tcpMu.Unlock()
}

// Accept accepts a peer's connection; the TURN engine checks its permission.
func (l *relayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		if l.closed.Load() {
			exitReader() // as for relayConn
		}
		return nil, err
	}
	return l.wrap(c), nil
}

func (l *relayListener) wrap(c net.Conn) net.Conn {
	return &peerConn{Conn: c, l: l}
}

// Close releases the port.
func (l *relayListener) Close() error {
	l.closed.Store(true)
	err := l.Listener.Close()
	l.once.Do(func() {
		l.g.s.tcpMu.Lock()
		if l.g.s.tcpAllocs[l.ap] == l {
			delete(l.g.s.tcpAllocs, l.ap)
		}
		l.g.s.tcpMu.Unlock()
		l.g.release(l.ap)
		l.g.s.metrics.untrack(l.stats)
	})
	return err
}

// peerConn is a TCP connection with a peer: counted, and paced to the
// bandwidth cap (TCP data is delayed, never dropped).
type peerConn struct {
	net.Conn
	l *relayListener
}

func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.stats.fromPeerBytes.Add(uint64(n))
		c.l.stats.fromPeerPackets.Add(1)
		if d := c.l.in.wait(n); d > 0 {
			time.Sleep(d)
		}
	}
	return n, err
}

func (c *peerConn) Write(p []byte) (int, error) {
	if d := c.l.out.wait(len(p)); d > 0 {
		time.Sleep(d)
	}
	n, err := c.Conn.Write(p)
	c.l.stats.toPeerBytes.Add(uint64(n))
	if n > 0 {
		c.l.stats.toPeerPackets.Add(1)
	}
	return n, err
}
