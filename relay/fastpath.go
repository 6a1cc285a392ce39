package relay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/turnwall/turnwall/relay/peerfilter"
)

// The data plane. pion/turn handles every request, and Send and Data
// indications; ChannelData, which carries the media once a call is up,
// bypasses it: a client's ChannelData is written to the peer by the listener
// socket's reader, and a peer's datagram to the client by the relayed
// socket's reader, with no allocation, lock or goroutine switch on the way.
// The state this needs (which allocation a client holds, its channels) is
// learnt from pion/turn's events, so the engine stays the authority: a
// channel exists here only while it exists there.

// udpConn is what the fast path needs of a socket (*net.UDPConn has it).
type udpConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// channels maps a relayed socket's channels both ways; it is replaced, never
// changed, so readers need no lock.
type channels struct {
	byNum  map[uint16]netip.AddrPort
	byPeer map[netip.AddrPort]uint16
}

// relayConn is a UDP relayed transport address. Its socket is read by the
// data plane (raw, on Linux), or by the TURN engine's reader through the Go
// socket (udp, or the plain net.PacketConn when that is all there is).
type relayConn struct {
	net.PacketConn
	raw     *rawSock // data plane
	udp     udpConn  // Go socket with the allocation-free calls
	v6      bool
	laddr   *net.UDPAddr
	s       *Server
	local   netip.AddrPort
	stats   *trafficStats
	in, out *bucket
	once    sync.Once
	closed  atomic.Bool

	// Set when the allocation is created over UDP: the client, and the
	// listener socket group that reaches it.
	client atomic.Pointer[clientRoute]
	chans  atomic.Pointer[channels]
	chMu   sync.Mutex // serialises channel updates
	buf    []byte     // the Go reader's buffer: 4 bytes of ChannelData header, then the datagram

	// Data plane: datagrams for the engine (no channel), and closure.
	dpWorker *dpWorker
	dpID     uint64
	toEngine chan peerDatagram
	done     chan struct{}
}

type peerDatagram struct {
	b    []byte
	from netip.AddrPort
}

type clientRoute struct {
	addr  netip.AddrPort
	group *socketGroup
}

// exitReader ends the TURN engine's reader of a relayed socket that the
// engine closed itself. pion/turn v5.1.3's reader deletes "the allocation on
// this 5-tuple" when its read fails; when the client has already made a new
// allocation on the same 5-tuple (delete, then allocate again at once), that
// deletes the new one. The reader has no deferred work, and the allocation it
// served is already gone, so ending it here is all its error path would do,
// minus the harm.
func exitReader() { runtime.Goexit() }

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// rtpMTU is pion/turn's read buffer for relayed sockets.
const rtpMTU = 1600

func (s *Server) newRelayConn(pc net.PacketConn) *relayConn {
	rc := &relayConn{PacketConn: pc, s: s, stats: &trafficStats{},
		in: newBucket(s.cfg.Limits.MaxBPS), out: newBucket(s.cfg.Limits.MaxBPS)}
	if u, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		rc.local = unmapAP(u.AddrPort())
		rc.laddr = net.UDPAddrFromAddrPort(rc.local)
		rc.v6 = rc.local.Addr().Is6()
	}
	rc.udp, _ = pc.(udpConn)
	if s.dp != nil && rc.udp != nil {
		if raw, err := takeSocket(pc); err == nil {
			rc.raw, rc.udp = raw, nil
			rc.toEngine, rc.done = make(chan peerDatagram, 32), make(chan struct{})
			if err := s.dp.add(rc); err != nil {
				raw.close()
				rc.raw = nil // the socket is gone: reads fail, the engine deletes the allocation
				close(rc.done)
			}
		}
	}
	if rc.raw == nil && rc.udp != nil {
		rc.buf = make([]byte, 4+rtpMTU)
	}
	s.metrics.track(rc.stats)
	s.relayMu.Lock()
	s.relays[rc.local] = rc
	s.relayMu.Unlock()
	return rc
}

// LocalAddr is the relayed address.
func (c *relayConn) LocalAddr() net.Addr {
	if c.laddr != nil {
		return c.laddr
	}
	return c.PacketConn.LocalAddr()
}

// fromPeer handles a datagram from a peer, in buf[4:4+n]: counted, capped,
// and sent on to the client as ChannelData when the peer has a channel. It
// reports whether the engine must see it (to send a Data indication).
func (c *relayConn) fromPeer(buf []byte, n int, from netip.AddrPort) (engine bool) {
	if !c.in.allow(n) {
		c.stats.dropped.Add(1)
		return false
	}
	c.stats.fromPeerBytes.Add(uint64(n))
	c.stats.fromPeerPackets.Add(1)
	if route, ch := c.client.Load(), c.chans.Load(); route != nil && ch != nil {
		if num, ok := ch.byPeer[from]; ok {
			binary.BigEndian.PutUint16(buf[0:], num)
			binary.BigEndian.PutUint16(buf[2:], uint16(n))
			route.group.send(buf[:4+n], route.addr)
			return false
		}
	}
	if c.raw != nil {
		select {
		case c.toEngine <- peerDatagram{b: append([]byte(nil), buf[4:4+n]...), from: from}:
		default: // the engine is behind: dropped, as the network may
		}
		return false
	}
	return true
}

// ReadFrom reads a datagram from a peer for the TURN engine: only those
// without a channel reach it (for Data indications).
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	switch {
	case c.raw != nil:
		select {
		case d := <-c.toEngine:
			return copy(p, d.b), net.UDPAddrFromAddrPort(d.from), nil
		case <-c.done:
			exitReader()
		}
	case c.udp != nil:
		for {
			n, from, err := c.udp.ReadFromUDPAddrPort(c.buf[4:])
			if err != nil {
				if c.closed.Load() {
					exitReader()
				}
				return 0, nil, err
			}
			from = unmapAP(from)
			if c.fromPeer(c.buf, n, from) {
				return copy(p, c.buf[4:4+n]), net.UDPAddrFromAddrPort(from), nil
			}
		}
	case c.done != nil: // the data plane refused the socket
		<-c.done
		return 0, nil, errRawClosed
	}
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			if c.closed.Load() {
				exitReader()
			}
			return n, addr, err
		}
		if !c.in.allow(n) {
			c.stats.dropped.Add(1)
			continue
		}
		c.stats.fromPeerBytes.Add(uint64(n))
		c.stats.fromPeerPackets.Add(1)
		return n, addr, nil
	}
}

// WriteTo sends a datagram to a peer for the TURN engine (Send indications).
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, net.InvalidAddrError("not a UDP address")
	}
	return c.send(p, unmapAP(u.AddrPort()))
}

// send writes to a peer: never to the relay's own listeners, within the
// bandwidth cap.
func (c *relayConn) send(p []byte, to netip.AddrPort) (int, error) {
	if c.s.toSelfAP(to) {
		c.s.metrics.deniedPeers.WithLabelValues(string(peerfilter.RelayAddress)).Inc()
		return len(p), nil
	}
	if !c.out.allow(len(p)) {
		c.stats.dropped.Add(1)
		return len(p), nil
	}
	var n int
	var err error
	switch {
	case c.raw != nil:
		n, err = c.raw.sendTo(p, to, c.v6)
	case c.udp != nil:
		n, err = c.udp.WriteToUDPAddrPort(p, to)
	default:
		n, err = c.PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(to))
	}
	switch err {
	case nil:
		c.stats.toPeerBytes.Add(uint64(n))
		c.stats.toPeerPackets.Add(1)
	case errFull: // shed: not waited for
		c.s.metrics.shedFull.Add(1)
		return len(p), nil
	}
	return n, err
}

// Close releases the relayed address.
func (c *relayConn) Close() error {
	c.closed.Store(true)
	var err error
	c.once.Do(func() {
		c.s.metrics.untrack(c.stats)
		c.s.relayMu.Lock()
		if c.s.relays[c.local] == c {
			delete(c.s.relays, c.local)
		}
		c.s.relayMu.Unlock()
		if r := c.client.Load(); r != nil {
			r.group.clients.CompareAndDelete(r.addr, c)
		}
		if c.raw != nil {
			if c.dpWorker != nil {
				c.dpWorker.remove(c)
			}
			c.raw.close()
			close(c.done)
			return
		}
		err = c.PacketConn.Close()
	})
	return err
}

// setChannel adds (add) or removes a channel, as the engine reports it.
func (c *relayConn) setChannel(num uint16, peer netip.AddrPort, add bool) {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	old := c.chans.Load()
	next := &channels{byNum: map[uint16]netip.AddrPort{}, byPeer: map[netip.AddrPort]uint16{}}
	if old != nil {
		for k, v := range old.byNum {
			next.byNum[k] = v
		}
		for k, v := range old.byPeer {
			next.byPeer[k] = v
		}
	}
	if add {
		next.byNum[num], next.byPeer[peer] = peer, num
	} else if next.byNum[num] == peer {
		delete(next.byNum, num)
		delete(next.byPeer, peer)
	}
	c.chans.Store(next)
}

// relayByAddr finds a relayed socket by its address, as events report it.
func (s *Server) relayByAddr(a net.Addr) *relayConn {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return nil
	}
	ap := unmapAP(u.AddrPort())
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	if rc := s.relays[ap]; rc != nil {
		return rc
	}
	// Events report the relay address the engine announced; with a single
	// relay address per family it is the socket's own.
	return nil
}

// groupFor finds the UDP listener group of a local address.
func (s *Server) groupFor(local net.Addr) *socketGroup {
	u, ok := local.(*net.UDPAddr)
	if !ok {
		return nil
	}
	ap := unmapAP(u.AddrPort())
	for _, g := range s.groups {
		if g.local == ap {
			return g
		}
	}
	return nil
}

// fastChannelData relays a client's ChannelData to its peer, or reports that
// the engine must handle it (no allocation or channel known here).
func (g *socketGroup) fastChannelData(p []byte, from netip.AddrPort) bool {
	v, ok := g.clients.Load(from)
	if !ok {
		return false
	}
	rc := v.(*relayConn)
	ch := rc.chans.Load()
	if ch == nil {
		return false
	}
	peer, ok := ch.byNum[binary.BigEndian.Uint16(p[0:2])]
	if !ok {
		return false
	}
	n := int(binary.BigEndian.Uint16(p[2:4]))
	if 4+n > len(p) {
		return false
	}
	rc.send(p[4:4+n], peer)
	return true
}

// send writes to a client from the group's first socket (all share the
// address).
func (g *socketGroup) send(p []byte, to netip.AddrPort) {
	if g.fast != nil {
		g.fast.WriteToUDPAddrPort(p, to)
		return
	}
	g.sockets[0].PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(to))
}
