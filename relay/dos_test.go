package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// Loopback source addresses: the attacker's and a second one. Linux answers
// on all of 127.0.0.0/8, so clients can bind them without configuration.
var (
	attackerIP = netip.MustParseAddr("127.0.0.2")
	otherIP    = netip.MustParseAddr("127.0.0.3")
)

// dialFrom returns a Dial function binding the client's source address.
func dialFrom(src netip.Addr) func(network, address string) (net.Conn, error) {
	return func(network, address string) (net.Conn, error) {
		d := net.Dialer{Timeout: 3 * time.Second}
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		return d.Dial(network, address)
	}
}

// dialAs connects a client from src; errors are returned, not fatal.
func (ts *testServer) dialAs(src netip.Addr, transport, username, password string, timeout time.Duration) (*turnclient.Client, error) {
	addr, ok := ts.Listener(transport)
	if !ok {
		return nil, fmt.Errorf("no %s listener", transport)
	}
	return turnclient.Dial(turnclient.Config{Transport: transport, Server: addr, Username: username, Password: password,
		TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, RTO: 200 * time.Millisecond,
		Timeout: timeout, Dial: dialFrom(src)})
}

// closedWithin reports whether the relay closes c within d (a read returns
// EOF or a reset rather than timing out).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestTLSCipherSuites: TLS 1.2 is served with ECDHE AEAD suites only; a
// client offering only CBC with SHA-1 fails the handshake.
func TestTLSCipherSuites(t *testing.T) {
	ts := startServer(t, testConfig(t))
	addr, _ := ts.Listener(TLS)
	for _, tc := range []struct {
		name   string
		suites []uint16
		ok     bool
	}{
		{"CBC-SHA1 only", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}, false},
		{"RSA key exchange GCM", []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, false},
		{"ECDHE AES-128-GCM", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		{"ECDHE ChaCha20-Poly1305", []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, true},
	} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr.String(), &tls.Config{
			InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites})
		if c != nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("TLS 1.2 with %s: handshake error %v, want success %v", tc.name, err, tc.ok)
		}
	}
	// TLS 1.3 still works.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr.String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
	c.Close()
}

// TestUnallocatedTimeout: a TCP or TLS connection that holds no allocation
// is closed after the short timeout, even when it authenticated (a 486 does
// not keep it open); one with an allocation stays, and gets the short
// timeout again when its allocation is deleted.
func TestUnallocatedTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.UserQuota = 1
	cfg.Limits.UnallocatedTimeout = 400 * time.Millisecond
	ts := startServer(t, cfg)
	addr, _ := ts.Listener(TCP)

	idle, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	if !closedWithin(idle, 3*time.Second) {
		t.Error("an idle connection was not closed")
	} else if el := time.Since(start); el < 300*time.Millisecond || el > 2*time.Second {
		t.Errorf("idle connection closed after %s, want about 400ms", el)
	}

	for _, transport := range []string{TCP, TLS} {
		holder := ts.dial(t, transport, "alice", "alice-password")
		if _, _, err := holder.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		refused := ts.dial(t, transport, "alice", "alice-password")
		if _, _, err := refused.Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 486 {
			t.Fatalf("%s second allocation: %v, want 486", transport, err)
		}
		if !closedWithin(refused.Conn(), 3*time.Second) {
			t.Errorf("%s: a connection refused with 486 was kept open", transport)
		}
		// The holder, idle for more than the timeout, stays.
		if closedWithin(holder.Conn(), time.Second) {
			t.Fatalf("%s: a connection holding an allocation was closed", transport)
		}
		if _, err := holder.Refresh(ctx(t), 0); err != nil {
			t.Fatalf("%s delete: %v", transport, err)
		}
		if !closedWithin(holder.Conn(), 3*time.Second) {
			t.Errorf("%s: a connection whose allocation was deleted was kept open", transport)
		}
	}
	if n := settle(0, 2*time.Second, func() int { return int(ts.tcpConns.Load()) }); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

// TestTCPConnectionLimits: connections per source address and per user.
func TestTCPConnectionLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxTCPConnsPerSource = 3
	cfg.Limits.MaxTCPConnsPerUser = 2
	ts := startServer(t, cfg)
	addr, _ := ts.Listener(TCP)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 3 {
		c, err := dialFrom(attackerIP)("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	settle(-1, time.Second, func() int {
		if ts.tcpConns.Load() == 3 {
			return -1
		}
		return 0
	})
	c, err := dialFrom(attackerIP)("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if !closedWithin(c, 2*time.Second) {
		t.Error("a fourth connection from one source was accepted")
	}
	c.Close()
	// Another source is not affected.
	legit, err := ts.dialAs(loopback, TLS, "bob", "bob-password", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer legit.Close()
	if _, _, err := legit.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Errorf("another source: %v", err)
	}
	if got := ts.metric(t, "turnwall_relay_refused_requests_total", "code", "tcp-connections-per-source"); got != 1 {
		t.Errorf("refused tcp-connections-per-source = %v", got)
	}

	// Per user, each connection from its own source: alice's third
	// authenticated connection is closed; bob's second is fine.
	from := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 2, byte(i)}) }
	for i := range 3 {
		c, err := ts.dialAs(from(i+1), TCP, "alice", "alice-password", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _, err = c.Allocate(ctx(t), turnclient.AllocateOptions{})
		if i < 2 && err != nil {
			t.Fatalf("alice connection %d: %v", i+1, err)
		}
		if i == 2 && (err == nil || turnclient.Code(err) != 0) {
			t.Errorf("alice's third connection: %v, want it closed", err)
		}
	}
	bob, err := ts.dialAs(from(4), TCP, "bob", "bob-password", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, _, err := bob.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Errorf("bob's second connection: %v", err)
	}
	if got := ts.metric(t, "turnwall_relay_refused_requests_total", "code", "tcp-connections-per-user"); got != 1 {
		t.Errorf("refused tcp-connections-per-user = %v", got)
	}
}

// TestAuthThrottle: failed authentications are throttled per source and per
// user; throttled requests are refused unverified (429 over TCP, silence over
// UDP), even with the right password; other sources and users are not.
func TestAuthThrottle(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.AuthFailRate = 0.1 // one more guess every 10 s: none within the test
	cfg.Limits.AuthFailBurst = 5
	ts := startServer(t, cfg)

	bad, err := ts.dialAs(attackerIP, TCP, "alice", "wrong", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	codes := map[int]int{}
	for range 50 {
		_, _, err := bad.Allocate(ctx(t), turnclient.AllocateOptions{})
		codes[turnclient.Code(err)]++
	}
	if codes[401] != 5 || codes[429] != 45 {
		t.Errorf("wrong passwords: codes %v, want 5 x 401 and 45 x 429", codes)
	}
	if got := ts.metric(t, "turnwall_relay_auth_failures_total", "reason", "bad-integrity"); got != 5 {
		t.Errorf("verified failures = %v, want 5", got)
	}
	// The right password from the throttled source: refused too.
	bad.SetCredentials("alice", "alice-password")
	if _, _, err := bad.Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 429 {
		t.Errorf("right password from a throttled source: %v, want 429", err)
	}
	// Over UDP from the throttled source: no answer at all.
	u, err := ts.dialAs(attackerIP, UDP, "bob", "bob-password", 700*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, _, err := u.Allocate(ctx(t), turnclient.AllocateOptions{}); err == nil || !strings.Contains(err.Error(), "no response") {
		t.Errorf("UDP from a throttled source: %v, want no response", err)
	}
	// alice is throttled from anywhere; bob from another source is not.
	a, err := ts.dialAs(otherIP, TLS, "alice", "alice-password", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, _, err := a.Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 429 {
		t.Errorf("alice from another source: %v, want 429", err)
	}
	b, err := ts.dialAs(otherIP, TLS, "bob", "bob-password", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := b.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Errorf("bob from another source: %v", err)
	}
	if got := ts.metric(t, "turnwall_relay_auth_throttled_total", "reason", "source"); got < 47 {
		t.Errorf("auth_throttled_total{reason=source} = %v, want at least 47 (45 + 1 over TCP, UDP retransmissions)", got)
	}
	if got := ts.metric(t, "turnwall_relay_auth_throttled_total", "reason", "user"); got != 1 {
		t.Errorf("auth_throttled_total{reason=user} = %v, want 1", got)
	}
	// A REST username is throttled by its user part, whatever the expiry.
	for i := range 6 {
		user, _ := restCreds(testSecret, "agent7", time.Duration(i+1)*time.Hour)
		c, err := ts.dialAs(netip.MustParseAddr(fmt.Sprintf("127.0.1.%d", i+1)), TCP, user, "wrong", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Allocate(ctx(t), turnclient.AllocateOptions{})
		c.Close()
		if want := map[bool]int{true: 429, false: 401}[i == 5]; turnclient.Code(err) != want {
			t.Errorf("REST user attempt %d: %v, want %d", i+1, err, want)
		}
	}
}

// TestKeyedBuckets: refill, exhaustion, and bounded memory.
func TestKeyedBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newKeyedBuckets[int](1, 3, 4)
	for i := range 3 {
		if ok, _ := b.take(1, now); !ok {
			t.Fatalf("take %d refused within the burst", i)
		}
	}
	if ok, _ := b.take(1, now); ok || !b.empty(1, now) {
		t.Fatal("burst exceeded")
	}
	b.take(1, now)
	if ok, n := b.take(1, now.Add(1100*time.Millisecond)); !ok || n != 2 {
		t.Fatalf("after a second: ok %v suppressed %d, want true 2", ok, n)
	}
	for k := 2; k < 100; k++ {
		b.take(k, now.Add(2*time.Second))
	}
	if n := b.len(); n > 4 {
		t.Fatalf("%d keys kept, bound 4", n)
	}
	// Keys already tracked keep their own bucket while new ones overflow.
	if ok, _ := b.take(1, now.Add(2*time.Second)); !ok {
		t.Fatal("a tracked key lost its bucket to the flood")
	}
	if b.empty(12345, now) {
		t.Fatal("an untracked key is throttled")
	}
}

// TestLogPerSource: a flood of failed authentications from one source does
// not hide another source's refusals from the log.
func TestLogPerSource(t *testing.T) {
	ts := startServer(t, testConfig(t)) // no auth throttle: the worst case for the log
	bad, err := ts.dialAs(attackerIP, TCP, "alice", "wrong", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	for range 500 {
		bad.Allocate(ctx(t), turnclient.AllocateOptions{})
	}
	c, err := ts.dialAs(loopback, UDP, "bob", "bob-password", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A flood of refused private peers from this source does not hide its
	// metadata probe either.
	for i := range 100 {
		c.CreatePermission(ctx(t), netip.AddrFrom4([4]byte{10, 99, 0, byte(i)}))
	}
	if err := c.CreatePermission(ctx(t), netip.MustParseAddr("169.254.169.254")); turnclient.Code(err) != 403 {
		t.Fatalf("metadata peer: %v, want 403", err)
	}
	log := ts.log.String()
	found := false
	for _, l := range strings.Split(log, "\n") {
		found = found || strings.Contains(l, `"msg":"peer refused"`) && strings.Contains(l, `"reason":"metadata"`) && strings.Contains(l, `"client":"127.0.0.1:`)
	}
	if !found {
		t.Errorf("the metadata probe from another source was not logged:\n%s", tail([]byte(log)))
	}
	if n := strings.Count(log, `"reason":"private"`); n < 1 || n > 12 {
		t.Errorf("%d private-peer refusal lines for 100 from one source, want 1..12", n)
	}
	if n := strings.Count(log, `"msg":"authentication failed"`); n < 1 || n > 20 {
		t.Errorf("%d authentication failure lines for a flood of 500 from one source, want 1..20", n)
	}
	if got := ts.metric(t, "turnwall_relay_auth_failures_total", "reason", "bad-integrity"); got != 500 {
		t.Errorf("auth_failures_total = %v, want 500 (metrics count every event)", got)
	}
}

// TestRelayUnderAttack: one source (127.0.0.2) opens TCP connections as fast
// as it can with one valid credential, holds them, adds idle connections
// without credentials, and floods wrong passwords; meanwhile a legitimate
// TLS client on 127.0.0.1 connects and allocates. The relay runs with
// `turnwall relay`'s default limits. The figures go to docs/relay.md.
func TestRelayUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("about 12 s")
	}
	cfg := testConfig(t)
	cfg.Limits = DefaultLimits()
	ts := startServer(t, cfg)
	tcpAddr, _ := ts.Listener(TCP)

	legit := func(n int) (lat []time.Duration, fails int) {
		for i := range n {
			user, pass := restCreds(testSecret, "agent-legit", time.Hour)
			start := time.Now()
			c, err := ts.dialAs(loopback, TLS, user, pass, 5*time.Second)
			if err == nil {
				_, _, err = c.Allocate(ctx(t), turnclient.AllocateOptions{})
				if err == nil {
					lat = append(lat, time.Since(start))
				}
				c.Close()
			}
			if err != nil {
				fails++
				t.Logf("legitimate client, attempt %d: %v", i+1, err)
			}
		}
		return lat, fails
	}
	baseline, baseFails := legit(20)

	var (
		stop                                atomic.Bool
		attempts, accepted, refusedAtAccept atomic.Int64
		idle, other                         atomic.Int64
		allocated, quota486, floodReq       atomic.Int64
		flood401, flood429                  atomic.Int64
		mu                                  sync.Mutex
		conns                               []net.Conn
		wg                                  sync.WaitGroup
	)
	keep := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	attackUser, attackPass := restCreds(testSecret, "attacker", time.Hour)
	// The flood of wrong passwords: 4 connections, opened before the
	// holders fill the source's share, flooding from 1 s on.
	var flooders []*turnclient.Client
	for range 4 {
		c, err := ts.dialAs(attackerIP, TCP, "alice", "wrong-guess", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		keep(c.Conn())
		flooders = append(flooders, c)
	}
	startFlood := func() {
		for _, c := range flooders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					_, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{})
					floodReq.Add(1)
					switch turnclient.Code(err) {
					case 401:
						flood401.Add(1)
					case 429:
						flood429.Add(1)
					case 0:
						if err != nil { // closed (no allocation within the timeout): reconnect
							if nc, err := ts.dialAs(attackerIP, TCP, "alice", "wrong-guess", 2*time.Second); err == nil {
								keep(nc.Conn())
								c = nc
							} else {
								time.Sleep(10 * time.Millisecond)
							}
						}
					}
				}
			}()
		}
	}
	// Connection holders: up to 4,096 connections in 3 s, half with the
	// valid credential (Allocate until 486), half idle without credentials.
	const maxAttempts = 4096
	deadline := time.Now().Add(3 * time.Second)
	var next atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && time.Now().Before(deadline) {
				i := next.Add(1)
				if i > maxAttempts {
					return
				}
				attempts.Add(1)
				if i%2 == 0 {
					c, err := dialFrom(attackerIP)("tcp", tcpAddr.String())
					if err != nil {
						continue
					}
					keep(c)
					idle.Add(1)
					continue
				}
				c, err := ts.dialAs(attackerIP, TCP, attackUser, attackPass, time.Second)
				if err != nil {
					continue
				}
				keep(c.Conn())
				_, _, err = c.Allocate(ctx(t), turnclient.AllocateOptions{})
				switch code := turnclient.Code(err); {
				case err == nil:
					allocated.Add(1)
					accepted.Add(1)
				case code == 486:
					quota486.Add(1)
					accepted.Add(1)
				case code != 0:
					other.Add(1)
					accepted.Add(1)
				default:
					refusedAtAccept.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Second) // the cap is reached within a second
	peakConns := ts.tcpConns.Load()
	startFlood()
	time.Sleep(200 * time.Millisecond)
	during, duringFails := legit(20)
	heldAfter3s := ts.tcpConns.Load()
	time.Sleep(time.Until(deadline.Add(6 * time.Second))) // past the unallocated timeout
	heldLater := ts.tcpConns.Load()
	duringLate, lateFails := legit(10)
	stop.Store(true)
	wg.Wait()

	pct := func(d []time.Duration, q float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	t.Logf("baseline: %d/%d legitimate TLS allocations, latency p50 %s p95 %s max %s",
		len(baseline), 20, pct(baseline, .5).Round(100*time.Microsecond), pct(baseline, .95).Round(100*time.Microsecond), pct(baseline, 1).Round(100*time.Microsecond))
	t.Logf("attack from %s: %d connection attempts in 3 s: %d idle without credentials, %d with the valid credential: %d Allocates answered (%d allocations, %d refused 486, %d other errors), %d closed by the relay before an answer",
		attackerIP, attempts.Load(), idle.Load(), attempts.Load()-idle.Load(), accepted.Load(), allocated.Load(), quota486.Load(), other.Load(), refusedAtAccept.Load())
	t.Logf("TCP/TLS connections held by the relay: %d after 1 s, %d after the legitimate run, %d 9 s in (unallocated ones closed after %s)",
		peakConns, heldAfter3s, heldLater, DefaultUnallocatedTimeout)
	t.Logf("wrong-password flood: %d requests, %d verified (401), %d throttled (429)", floodReq.Load(), flood401.Load(), flood429.Load())
	t.Logf("during the attack: %d/%d legitimate TLS allocations, latency p50 %s p95 %s max %s; after 9 s %d/%d, p50 %s",
		len(during), 20, pct(during, .5).Round(100*time.Microsecond), pct(during, .95).Round(100*time.Microsecond), pct(during, 1).Round(100*time.Microsecond),
		len(duringLate), 10, pct(duringLate, .5).Round(100*time.Microsecond))
	t.Logf("metrics: refused per-source %v, per-user %v, total cap %v; auth_throttled{source} %v",
		ts.metric(t, "turnwall_relay_refused_requests_total", "code", "tcp-connections-per-source"),
		ts.metric(t, "turnwall_relay_refused_requests_total", "code", "tcp-connections-per-user"),
		ts.metric(t, "turnwall_relay_refused_requests_total", "code", "tcp-connections"),
		ts.metric(t, "turnwall_relay_auth_throttled_total", "reason", "source"))

	if baseFails+duringFails+lateFails > 0 {
		t.Errorf("legitimate TLS client failed %d times (baseline %d, during the attack %d, later %d)", baseFails+duringFails+lateFails, baseFails, duringFails, lateFails)
	}
	if peakConns > DefaultMaxTCPConnsPerSource+1 || heldAfter3s > DefaultMaxTCPConnsPerSource+1 {
		t.Errorf("the attacker held %d/%d connections, cap per source %d", peakConns, heldAfter3s, DefaultMaxTCPConnsPerSource)
	}
	if heldLater > DefaultUserQuota+4+1 {
		t.Errorf("%d connections held after the unallocated timeout, want at most the attacker's %d allocations and 4 flooders", heldLater, DefaultUserQuota)
	}
	if p := pct(during, .95); p > 2*time.Second {
		t.Errorf("legitimate allocate p95 %s during the attack", p)
	}
	if v := flood401.Load(); v > DefaultAuthFailBurst+int64(DefaultAuthFailRate*15)+1 {
		t.Errorf("%d wrong passwords verified, want at most the throttle's burst and rate", v)
	}
}
