package relay

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}

// settle waits until f reports at most want, returning the last value.
func settle(want int, timeout time.Duration, f func() int) int {
	deadline := time.Now().Add(timeout)
	for {
		n := f()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoLeaks: 10,000 allocate/delete cycles (UDP and TCP, with permissions
// and channels) leave no allocation, goroutine, file descriptor, relayed port
// or quota behind, and closing the relay releases everything it took: on
// loopback with goroutine readers, and in the lab namespace with the epoll
// data plane.
func TestNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 cycles")
	}
	t.Run("loopback", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Limits.UserQuota, cfg.Limits.TotalQuota = 100, 100
		noLeaks(t, func() *testServer { return startServer(t, cfg) }, func(ts *testServer, tr string) *turnclient.Client {
			return ts.dial(t, tr, "alice", "alice-password")
		}, "198.51.100.7")
	})
	t.Run("dataplane", func(t *testing.T) {
		l := newLab(t)
		noLeaks(t, func() *testServer { return l.start(t, nil) }, func(ts *testServer, tr string) *turnclient.Client {
			addr, _ := ts.Listener(tr)
			return l.client(t, addr, tr, time.Hour)
		}, labPeer4.String())
	})
}

func noLeaks(t *testing.T, start func() *testServer, dial func(*testServer, string) *turnclient.Client, peer string) {
	goroutines0, fds0 := runtime.NumGoroutine(), openFDs(t)
	ts := start()
	peerAddr := netip.MustParseAddr(peer)
	// Warm up: one cycle per transport, so lazily started goroutines exist.
	for _, tr := range []string{UDP, TCP} {
		c := dial(ts, tr)
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Fatal(err)
		}
		c.Refresh(ctx(t), 0)
		c.Close()
	}
	settle(0, 2*time.Second, ts.AllocationCount)
	goroutines1, fds1 := runtime.NumGoroutine(), openFDs(t)

	const workers, cycles = 8, 10000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	began := time.Now()
	for w := range workers {
		tr := UDP
		if w%4 == 3 {
			tr = TCP
		}
		c := dial(ts, tr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for i := range cycles / workers {
				if time.Since(began) > 60*time.Second {
					errs <- fmt.Errorf("worker %d: out of time after %d cycles", w, i)
					return
				}
				if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
					errs <- fmt.Errorf("worker %d cycle %d: allocate: %w", w, i, err)
					return
				}
				switch i % 4 {
				case 1:
					if err := c.CreatePermission(ctx(t), peerAddr); err != nil {
						errs <- fmt.Errorf("worker %d cycle %d: permission: %w", w, i, err)
						return
					}
				case 2:
					if err := c.ChannelBind(ctx(t), 0x4000+uint16(i%100), netip.AddrPortFrom(peerAddr, 5000)); err != nil {
						errs <- fmt.Errorf("worker %d cycle %d: channel: %w", w, i, err)
						return
					}
				}
				if _, err := c.Refresh(ctx(t), 0); err != nil {
					errs <- fmt.Errorf("worker %d cycle %d: delete: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d allocate/delete cycles in %v", cycles, time.Since(began).Round(time.Millisecond))
	if n := settle(0, 2*time.Second, ts.AllocationCount); n != 0 {
		t.Errorf("%d allocations left", n)
	}
	// The workers' own sockets are closed; what is left is the relay's.
	if n := settle(goroutines1, 3*time.Second, runtime.NumGoroutine); n > goroutines1 {
		t.Errorf("goroutines %d -> %d", goroutines1, n)
	}
	if n := settle(fds1, 3*time.Second, func() int { return openFDs(t) }); n > fds1 {
		t.Errorf("file descriptors %d -> %d", fds1, n)
	}
	for name, want := range map[string]float64{"turnwall_relay_allocations": 0, "turnwall_relay_permissions": 0,
		"turnwall_relay_channels": 0, "turnwall_relay_allocations_created_total": cycles + 2} {
		if got := ts.metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if all, _ := ts.quota.counts(""); all != 0 {
		t.Errorf("quota left: %d allocations", all)
	}
	ts.metrics.mu.Lock()
	live := len(ts.metrics.live)
	ts.metrics.mu.Unlock()
	if live != 0 || ts.liveRelays() != 0 {
		t.Errorf("%d relayed sockets still counted, %d known", live, ts.liveRelays())
	}

	ts.Close()
	if n := settle(goroutines0, 3*time.Second, runtime.NumGoroutine); n > goroutines0 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines after Close %d -> %d:\n%s", goroutines0, n, buf[:runtime.Stack(buf, true)])
	}
	if n := settle(fds0, 3*time.Second, func() int { return openFDs(t) }); n > fds0 {
		t.Errorf("file descriptors after Close %d -> %d", fds0, n)
	}
}

// garbage returns hostile datagrams: random bytes, truncations and bit
// flips of valid messages, and headers with lying lengths.
func garbage(r *rand.Rand, valid [][]byte) []byte {
	switch r.IntN(6) {
	case 0:
		b := make([]byte, r.IntN(1600))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	case 1:
		v := valid[r.IntN(len(valid))]
		return append([]byte(nil), v[:r.IntN(len(v)+1)]...)
	case 2:
		v := append([]byte(nil), valid[r.IntN(len(valid))]...)
		for range 1 + r.IntN(4) {
			i := r.IntN(len(v))
			v[i] ^= byte(1 << r.IntN(8))
		}
		return v
	case 3: // STUN header, lying length, random attributes
		b := []byte{0, byte(r.IntN(16)), 0, 0, 0x21, 0x12, 0xa4, 0x42}
		for range 12 {
			b = append(b, byte(r.Uint32()))
		}
		for range r.IntN(8) {
			b = binary.BigEndian.AppendUint16(b, uint16(r.Uint32()))
			b = binary.BigEndian.AppendUint16(b, uint16(r.IntN(64)))
			for range r.IntN(24) {
				b = append(b, byte(r.Uint32()))
			}
		}
		binary.BigEndian.PutUint16(b[2:], uint16(r.IntN(0x10000)))
		return b
	case 4: // ChannelData with lying lengths
		b := binary.BigEndian.AppendUint16(nil, 0x4000+uint16(r.IntN(0x4000)))
		b = binary.BigEndian.AppendUint16(b, uint16(r.IntN(0x10000)))
		return append(b, make([]byte, r.IntN(200))...)
	default:
		return valid[r.IntN(len(valid))]
	}
}

// validMessages are requests a client sends, signed for the test relay,
// and ChannelData.
func validMessages(t testing.TB, c *turnclient.Client) [][]byte {
	var out [][]byte
	key, nonce := c.Key(), c.Nonce()
	for _, m := range []stun.Method{stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind, stun.MethodConnect, stun.MethodBinding} {
		msg, err := stun.Build(stun.TransactionID, stun.NewType(m, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
			stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0x0e, 0x10}},
			turnclient.RawPeerAttr([]byte{198, 51, 100, 7}, 5000),
			stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}},
			stun.NewUsername("alice"), stun.NewRealm(testRealm), stun.NewNonce(nonce), stun.MessageIntegrity(key), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg.Raw)
	}
	out = append(out, turnclient.ChannelData(nil, 0x4001, []byte("hello peer"), false))
	return out
}

// TestGarbage sends random and truncated datagrams and TCP and TLS streams
// to every listener, bounded in count and time; the relay keeps serving, and
// the connections it was sent are all closed.
func TestGarbage(t *testing.T) {
	ts := startServer(t, testConfig(t))
	probe := ts.dial(t, UDP, "alice", "alice-password")
	if _, _, err := probe.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	valid := validMessages(t, probe)
	r := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(8 * time.Second)

	// UDP: 20,000 datagrams from 8 sockets, some of which hold allocations.
	udpAddr, _ := ts.Listener(UDP)
	var socks []net.Conn
	for i := range 8 {
		c := ts.dial(t, UDP, "alice", "alice-password")
		if i%2 == 0 {
			if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
				t.Fatal(err)
			}
			c.ChannelBind(ctx(t), 0x4001, netip.MustParseAddrPort("198.51.100.7:5000"))
		}
		socks = append(socks, c.Conn())
	}
	for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
		socks[i%len(socks)].Write(garbage(r, valid))
		if i%500 == 0 {
			time.Sleep(time.Millisecond) // let the relay keep up: the point is content, not load
		}
	}
	_ = udpAddr

	// TCP and TLS: 150 streams each of random frames, cut at random points.
	goroutines := runtime.NumGoroutine()
	for _, tr := range []string{TCP, TLS} {
		addr, _ := ts.Listener(tr)
		var wg sync.WaitGroup
		for i := 0; i < 150 && time.Now().Before(deadline); i++ {
			var stream []byte
			for range 1 + r.IntN(20) {
				stream = append(stream, garbage(r, valid)...)
			}
			stream = stream[:r.IntN(len(stream)+1)]
			wg.Add(1)
			go func(stream []byte, plain bool) {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
				if err != nil {
					return
				}
				defer c.Close()
				if tr == TLS && !plain { // garbage inside TLS; else garbage instead of a handshake
					tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
					tc.SetDeadline(time.Now().Add(2 * time.Second))
					if tc.Handshake() != nil {
						return
					}
					c = tc
				}
				c.SetDeadline(time.Now().Add(500 * time.Millisecond))
				c.Write(stream)
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}(stream, i%3 == 0)
		}
		wg.Wait()
	}
	// The clients closed their ends; the relay must close its ends too.
	if n := settle(int(0), 3*time.Second, func() int { return int(ts.tcpConns.Load()) }); n > 0 {
		t.Errorf("%d TCP connections still open on the relay", n)
	}
	if n := settle(goroutines, 3*time.Second, runtime.NumGoroutine); n > goroutines+10 {
		t.Errorf("goroutines %d -> %d", goroutines, n)
	}

	// Still serving, on every transport.
	for _, tr := range []string{UDP, TCP, TLS} {
		c := ts.dial(t, tr, "bob", "bob-password")
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Errorf("%s after garbage: %v", tr, err)
		}
	}
	if strings.Contains(ts.log.String(), "panic") {
		t.Errorf("panic in the log:\n%s", ts.log.String())
	}
}

// TestSlowClients: connections that never authenticate are closed after
// the pre-authentication timeout, and the connection cap holds.
func TestTCPConnectionCap(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxTCPConns = 5
	ts := startServer(t, cfg)
	addr, _ := ts.Listener(TCP)
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	settle(-1, time.Second, func() int {
		if ts.tcpConns.Load() == 5 {
			return -1
		}
		return 0
	})
	// The sixth is closed at once.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("the sixth connection was not closed: %v", err)
	}
	c.Close()
	for _, c := range conns {
		c.Close()
	}
	if n := settle(0, 2*time.Second, func() int { return int(ts.tcpConns.Load()) }); n != 0 {
		t.Errorf("%d connections left", n)
	}
	if got := ts.metric(t, "turnwall_relay_refused_requests_total", "code", "tcp-connections"); got != 1 {
		t.Errorf("refused tcp-connections = %v", got)
	}
}
