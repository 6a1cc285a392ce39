package relay

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// memConn is an in-memory UDP listener socket: the fuzzer hands the relay one
// datagram at a time and knows it has been handled when the relay reads again.
type memConn struct {
	in    chan memPacket
	ready chan struct{}
	local net.Addr

	mu     sync.Mutex
	out    [][]byte // the relay's replies
	closed chan struct{}
	once   sync.Once
}

type memPacket struct {
	b    []byte
	from net.Addr
}

func newMemConn() *memConn {
	return &memConn{in: make(chan memPacket), ready: make(chan struct{}, 1), closed: make(chan struct{}),
		local: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478}}
}

func (m *memConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case m.ready <- struct{}{}:
	default:
	}
	select {
	case pkt := <-m.in:
		return copy(p, pkt.b), pkt.from, nil
	case <-m.closed:
		return 0, nil, net.ErrClosed
	}
}

func (m *memConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	m.mu.Lock()
	if len(m.out) < 64 {
		m.out = append(m.out, append([]byte(nil), p...))
	}
	m.mu.Unlock()
	return len(p), nil
}

// send hands one datagram to the relay and waits until it is handled.
func (m *memConn) send(b []byte, from net.Addr) []byte {
	<-m.ready
	m.mu.Lock()
	m.out = nil
	m.mu.Unlock()
	m.in <- memPacket{b: b, from: from}
	<-m.ready
	m.ready <- struct{}{} // keep the relay's "ready" for the next send
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.out) == 0 {
		return nil
	}
	return m.out[len(m.out)-1]
}

func (m *memConn) Close() error                     { m.once.Do(func() { close(m.closed) }); return nil }
func (m *memConn) LocalAddr() net.Addr              { return m.local }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// memNet gives the relay the in-memory listener; relayed sockets are real,
// on loopback, and never send anywhere (sandboxNet).
type memNet struct {
	sandboxNet
	mem *memConn
}

func (n memNet) ListenPacket(network string, addr netip.AddrPort, reusePort bool) (net.PacketConn, error) {
	if reusePort {
		return n.mem, nil
	}
	return n.sandboxNet.ListenPacket(network, addr, false)
}

type fuzzRelay struct {
	s     *Server
	mem   *memConn
	seeds [][]byte
}

var (
	fuzzOnce  sync.Once
	fuzzState *fuzzRelay
)

func clientAddr(n byte) net.Addr { return &net.UDPAddr{IP: net.IPv4(203, 0, 113, 1+n%8), Port: 40000} }

// newFuzzRelay starts one relay for the whole fuzzing process and builds
// seed messages signed with a valid nonce.
func newFuzzRelay(t testing.TB) *fuzzRelay {
	fuzzOnce.Do(func() {
		mem := newMemConn()
		cfg := testConfig(t)
		cfg.Listeners = []Listener{{Transport: UDP, Addr: netip.MustParseAddrPort("127.0.0.1:3478")}}
		cfg.Net = memNet{mem: mem}
		cfg.UDPSockets = 1
		cfg.Limits.UserQuota, cfg.Limits.TotalQuota = 16, 16
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		fr := &fuzzRelay{s: s, mem: mem}
		// The challenge gives a nonce; sign requests with it.
		challenge, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
		resp := &stun.Message{Raw: mem.send(challenge.Raw, clientAddr(0))}
		var nonce stun.Nonce
		if resp.Decode() != nil || nonce.GetFrom(resp) != nil {
			t.Fatal("no challenge from the relay")
		}
		key := stun.NewLongTermIntegrity("alice", testRealm, "alice-password")
		sign := func(method stun.Method, attrs ...stun.Setter) []byte {
			s := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
			s = append(s, stun.NewUsername("alice"), stun.NewRealm(testRealm), stun.NewNonce(nonce.String()), key, stun.Fingerprint)
			m, err := stun.Build(s...)
			if err != nil {
				t.Fatal(err)
			}
			return m.Raw
		}
		peer := turnclient.RawPeerAttr([]byte{198, 51, 100, 7}, 5000)
		mapped := netip.MustParseAddr("::ffff:127.0.0.1").As16()
		fr.seeds = [][]byte{
			challenge.Raw,
			sign(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}),
			sign(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
				stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0x0e, 0x0f}}, stun.RawAttribute{Type: stun.AttrEvenPort, Value: []byte{0x80}}),
			sign(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{6, 0, 0, 0}}),
			sign(stun.MethodCreatePermission, peer),
			sign(stun.MethodCreatePermission, turnclient.RawPeerAttr(mapped[:], 80)),
			sign(stun.MethodChannelBind, peer, stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}}),
			sign(stun.MethodChannelBind, turnclient.RawPeerAttr([]byte{127, 0, 0, 1}, 22), stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x02, 0, 0}}),
			sign(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0x0e, 0x10}}),
			sign(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}),
			sign(stun.MethodConnect, peer),
			turnclient.ChannelData(nil, 0x4001, []byte("hello"), false),
		}
		send, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peer,
			stun.RawAttribute{Type: stun.AttrData, Value: []byte("data")})
		fr.seeds = append(fr.seeds, send.Raw)
		fuzzState = fr
	})
	if fuzzState == nil {
		t.Fatal("fuzz relay failed to start")
	}
	return fuzzState
}

// stream runs b through a TCP client connection's framing and guard.
func (fr *fuzzRelay) stream(b []byte) int {
	l := &guardedListener{s: fr.s, transport: TCP, conns: map[*guardedConn]struct{}{}}
	a, z := net.Pipe()
	c := &guardedConn{Conn: a, l: l, buf: make([]byte, 4096)}
	l.conns[c] = struct{}{}
	fr.s.tcpConns.Add(1)
	fr.s.metrics.tcpConnections.Inc()
	go func() {
		z.Write(b)
		z.Close()
	}()
	go io.Copy(io.Discard, z) // replies
	n := 0
	buf := make([]byte, 1600)
	for {
		k, err := c.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	c.Close()
	return n
}

// FuzzMessagePath feeds arbitrary datagrams to the relay's UDP listener
// (request guard and TURN engine, with a valid session's nonce in the seeds)
// and arbitrary byte streams to a TCP connection's framing and guard.
//
// The relay keeps its state (allocations) between inputs, so coverage is not
// exactly reproducible; run with a short minimization time:
//
//	go test -run '^$' -fuzz FuzzMessagePath -fuzztime 60s -fuzzminimizetime 2s ./relay/
func FuzzMessagePath(f *testing.F) {
	fr := newFuzzRelay(f)
	for i, s := range fr.seeds {
		f.Add(s, byte(i%2))
	}
	f.Fuzz(func(t *testing.T, b []byte, from byte) {
		if len(b) > 1600 {
			b = b[:1600]
		}
		// A hang is a bug: fail with the input rather than stall.
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("stuck on %x from %d", b, from)) })
		defer watchdog.Stop()
		fr.mem.send(b, clientAddr(from))
		// A stream of the same bytes twice: frames split across reads.
		stream := append(append([]byte(nil), b...), b...)
		if n := fr.stream(stream); n > len(stream) {
			t.Fatalf("the guard returned %d bytes from a %d-byte stream", n, len(stream))
		}
		if n, err := frameLen(b); err == nil && (n > len(b) || n < 4) {
			t.Fatalf("frameLen = %d for %d bytes", n, len(b))
		}
	})
}
