package relay

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
)

// A UDP listener is several sockets bound to the same address with
// SO_REUSEPORT, one reader each; the kernel sends each client (4-tuple) to
// one socket. pion/turn keeps allocations per socket, which is right for
// everything but RFC 8656 RESERVATION-TOKEN: the second allocation of an
// RTP/RTCP pair comes from another client port, may land on another socket,
// and would not find the reservation. The socket group therefore remembers
// which socket issued each token, and steers the client presenting it, and
// all its later packets, to that socket. Browsers never reserve ports, so
// steering is normally empty and costs one atomic load per packet.
type socketGroup struct {
	sockets []*guardedPacketConn
	local   netip.AddrPort
	fast    udpConn         // the first socket, to write to clients
	raw     syscall.RawConn // the same, for batched writes (nil: none)
	idx     int             // in Server.groups
	clients sync.Map        // client netip.AddrPort -> *relayConn (fast path)

	active atomic.Int32 // number of steered clients
	mu     sync.RWMutex
	bySrc  map[netip.AddrPort]*guardedPacketConn
	tokens map[string]tokenOwner
}

type tokenOwner struct {
	sock *guardedPacketConn
	at   time.Time
}

// reservationLifetime: pion/turn keeps a reservation 30 s.
const reservationLifetime = 30 * time.Second

// guardedPacketConn is one UDP listener socket with the request guard in
// front, handed to the TURN engine.
type guardedPacketConn struct {
	net.PacketConn
	udp    udpConn      // nil: no fast path
	batch  *batchReader // nil: one datagram per read
	s      *Server
	local  net.Addr
	group  *socketGroup
	inject chan memPacketIn
}

type memPacketIn struct {
	b    []byte
	from net.Addr
}

func newGuardedPacketConn(s *Server, pc net.PacketConn, group *socketGroup) *guardedPacketConn {
	g := &guardedPacketConn{PacketConn: pc, s: s, local: pc.LocalAddr(), group: group, inject: make(chan memPacketIn, 64)}
	g.udp, _ = pc.(udpConn)
	if g.udp != nil {
		if g.batch = newBatchReader(pc, 2048); g.batch != nil {
			g.batch.shedAfter(s.maxQueueDelay, s.metrics)
		}
	}
	group.sockets = append(group.sockets, g)
	return g
}

// ReadFrom implements net.PacketConn for the TURN engine.
func (g *guardedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		var n int
		var addr net.Addr
		var err error
		select {
		case pkt := <-g.inject:
			n, addr = copy(p, pkt.b), pkt.from
		default:
			switch {
			case g.batch != nil:
				var b []byte
				var ap netip.AddrPort
				b, ap, err = g.batch.next()
				if err == nil {
					if len(b) >= 4 && b[0]&0xc0 == 0x40 && g.group.fastChannelData(b, ap) {
						continue
					}
					n, addr = copy(p, b), net.UDPAddrFromAddrPort(ap)
					if len(b) > len(p) {
						continue // as the engine does with oversized datagrams
					}
				}
			case g.udp != nil:
				var ap netip.AddrPort
				n, ap, err = g.udp.ReadFromUDPAddrPort(p)
				if err == nil {
					ap = unmapAP(ap)
					if n >= 4 && p[0]&0xc0 == 0x40 && g.group.fastChannelData(p[:n], ap) {
						continue
					}
					addr = net.UDPAddrFromAddrPort(ap)
				}
			default:
				n, addr, err = g.PacketConn.ReadFrom(p)
			}
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) { // woken to take a steered packet
					g.PacketConn.SetReadDeadline(time.Time{})
					continue
				}
				return n, addr, err
			}
			if g.group.active.Load() > 0 || isReservingAllocate(p[:n]) {
				if to := g.group.owner(addr, p[:n]); to != nil && to != g {
					to.take(p[:n], addr)
					continue
				}
			}
		}
		if n < 20 || p[0]&0xc0 != 0 { // ChannelData, or too short for STUN
			return n, addr, nil
		}
		out, v := g.s.inspect(p[:n], &client{transport: UDP, src: addr, local: g.local,
			reply: func(b []byte) { g.PacketConn.WriteTo(b, addr) }})
		switch v {
		case pass:
			return n, addr, nil
		case rewrite:
			if len(out) <= len(p) {
				return copy(p, out), addr, nil
			}
		}
	}
}

// take queues a packet steered from another socket and wakes the reader.
func (g *guardedPacketConn) take(b []byte, from net.Addr) {
	select {
	case g.inject <- memPacketIn{b: append([]byte(nil), b...), from: from}:
		g.PacketConn.SetReadDeadline(time.Now())
	default: // full: dropped, as the network may
	}
}

// WriteTo implements net.PacketConn; it notes the reservation tokens this
// socket hands out.
func (g *guardedPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) > 20 && p[0] == 0x01 && p[1] == 0x03 { // Allocate success response
		var m stun.Message
		m.Raw = p
		if m.Decode() == nil {
			if tok, err := m.Get(stun.AttrReservationToken); err == nil {
				g.group.addToken(string(tok), g)
			}
		}
	}
	return g.PacketConn.WriteTo(p, addr)
}

// LocalAddr is cached: the engine asks for it on every packet.
func (g *guardedPacketConn) LocalAddr() net.Addr { return g.local }

// isReservingAllocate: an Allocate request with a RESERVATION-TOKEN.
func isReservingAllocate(b []byte) bool {
	if len(b) < 20 || b[0] != 0 || b[1] != 0x03 || binary.BigEndian.Uint32(b[4:8]) != 0x2112A442 {
		return false
	}
	for i := 20; i+4 <= len(b); {
		t, l := binary.BigEndian.Uint16(b[i:]), int(binary.BigEndian.Uint16(b[i+2:]))
		if t == uint16(stun.AttrReservationToken) {
			return true
		}
		i += 4 + (l+3)&^3
	}
	return false
}

func (sg *socketGroup) addToken(tok string, sock *guardedPacketConn) {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.tokens == nil {
		sg.tokens = map[string]tokenOwner{}
	}
	now := time.Now()
	for k, o := range sg.tokens {
		if now.Sub(o.at) > reservationLifetime {
			delete(sg.tokens, k)
		}
	}
	sg.tokens[tok] = tokenOwner{sock: sock, at: now}
}

// owner returns the socket a client's packet belongs to, if not its own:
// a steered client's socket, or the socket that issued the reservation
// token of an Allocate (which steers the client from then on).
func (sg *socketGroup) owner(addr net.Addr, b []byte) *guardedPacketConn {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil
	}
	src := u.AddrPort()
	sg.mu.RLock()
	sock := sg.bySrc[src]
	sg.mu.RUnlock()
	if sock != nil || !isReservingAllocate(b) {
		return sock
	}
	var m stun.Message
	m.Raw = append([]byte(nil), b...)
	if m.Decode() != nil {
		return nil
	}
	tok, err := m.Get(stun.AttrReservationToken)
	if err != nil {
		return nil
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	o, ok := sg.tokens[string(tok)]
	if !ok {
		return nil
	}
	if sg.bySrc == nil {
		sg.bySrc = map[netip.AddrPort]*guardedPacketConn{}
	}
	if _, dup := sg.bySrc[src]; !dup {
		sg.bySrc[src] = o.sock
		sg.active.Add(1)
	}
	return o.sock
}

// forget stops steering a client whose allocation is gone.
func (sg *socketGroup) forget(addr net.Addr) {
	if sg.active.Load() == 0 {
		return
	}
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return
	}
	sg.mu.Lock()
	if _, ok := sg.bySrc[u.AddrPort()]; ok {
		delete(sg.bySrc, u.AddrPort())
		sg.active.Add(-1)
	}
	sg.mu.Unlock()
}
