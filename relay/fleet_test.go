package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/turnclient"
)

var loopback2 = netip.MustParseAddr("127.0.0.2")

// fleetConfig is testConfig on ip, with a certificate for name.
func fleetConfig(t testing.TB, ip netip.Addr, name string) Config {
	cfg := testConfig(t)
	for i := range cfg.Listeners {
		cfg.Listeners[i].Addr = netip.AddrPortFrom(ip, 0)
	}
	cert, err := selfSigned(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificate = cert
	cfg.Name = name
	return cfg
}

// alternatesTo lists every listener of b, the TLS one with its domain.
func alternatesTo(b *testServer, domain string) *StaticAlternates {
	var alts []Alternate
	for _, l := range b.Listeners() {
		a := Alternate{Transport: l.Transport, Addr: l.Addr}
		if l.Transport == TLS {
			a.Domain = domain
		}
		alts = append(alts, a)
	}
	return NewStaticAlternates(alts)
}

// fleetClient dials s over transport, trusting roots for TLS names.
func fleetClient(t *testing.T, s *testServer, transport string, roots *x509.CertPool, serverName string) *turnclient.Client {
	t.Helper()
	addr, _ := s.Listener(transport)
	c, err := turnclient.Dial(turnclient.Config{Transport: transport, Server: addr, Username: "alice", Password: "alice-password",
		TLS: &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}, RTO: 300 * time.Millisecond, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rootsOf(t *testing.T, certs ...*tls.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.Leaf)
	}
	return p
}

// TestTryAlternateDrain: a draining relay answers new Allocates with 300
// Try Alternate towards its alternate, over UDP, TCP and TLS (with
// ALTERNATE-DOMAIN, which the client checks the alternate's certificate
// against); our client follows once and ends on the alternate; the
// allocations the draining relay holds keep relaying.
func TestTryAlternateDrain(t *testing.T) {
	bcfg := fleetConfig(t, loopback2, "turn-b.test")
	b := startServer(t, bcfg)
	acfg := fleetConfig(t, loopback, "turn-a.test")
	acfg.Alternates = alternatesTo(b, "turn-b.test")
	a := startServer(t, acfg)
	roots := rootsOf(t, acfg.Certificate, bcfg.Certificate)

	// An allocation on A before the drain.
	c1 := ts2client(t, a, UDP)
	if err := c1.CreatePermission(ctx(t), netip.MustParseAddr("198.51.100.7")); err != nil {
		t.Fatal(err)
	}
	a.Drain()
	if !a.Draining() || a.metric(t, "turnwall_relay_draining") != 1 {
		t.Fatal("Drain: not draining, or the gauge is not 1")
	}

	for _, transport := range []string{UDP, TCP, TLS} {
		c := fleetClient(t, a, transport, roots, "turn-a.test")
		n, relayed, _, r, err := c.AllocateFollow(ctx(t), turnclient.AllocateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		defer n.Close()
		bl, _ := b.Listener(transport)
		al, _ := a.Listener(transport)
		if r == nil || r.From != al || r.To != bl || n.Server() != bl || relayed.Addr() != loopback2 {
			t.Fatalf("%s: redirect %v, now on %s, relayed %s: want redirected from %s to %s", transport, r, n.Server(), relayed, al, bl)
		}
		want := "redirected by " + al.String() + " to " + bl.String() + " (300 Try Alternate)"
		if transport == TLS {
			want += ", certificate name turn-b.test"
			if n.ServerName() != "turn-b.test" {
				t.Errorf("TLS: checked name %q after the redirect, want the ALTERNATE-DOMAIN", n.ServerName())
			}
		}
		if r.String() != want {
			t.Errorf("%s: %q, want %q", transport, r, want)
		}
	}
	if got := a.metric(t, "turnwall_relay_redirects_total", "reason", "draining"); got != 3 {
		t.Errorf("redirects_total{draining} = %v, want 3", got)
	}
	if got := b.AllocationCount(); got != 3 {
		t.Errorf("B holds %d allocations, want 3", got)
	}

	// The allocation on A is still served: Refresh, permissions, channels
	// (data through a draining relay: TestDrainKeepsRelaying).
	if _, err := c1.Refresh(ctx(t), 10*time.Minute); err != nil {
		t.Errorf("refresh while draining: %v", err)
	}
	if err := c1.CreatePermission(ctx(t), netip.MustParseAddr("198.51.100.8")); err != nil {
		t.Errorf("permission while draining: %v", err)
	}
	if err := c1.ChannelBind(ctx(t), 0x4001, netip.MustParseAddrPort("198.51.100.7:5000")); err != nil {
		t.Errorf("channel bind while draining: %v", err)
	}

	a.Resume()
	if a.metric(t, "turnwall_relay_draining") != 0 {
		t.Error("Resume: gauge still 1")
	}
	c := ts2client(t, a, UDP)
	if c.Server() != mustListener(a, UDP) {
		t.Error("after Resume the relay still redirects")
	}
}

// TestDrainKeepsRelaying: in the lab (the relay on 192.0.2.10, its
// alternate on 192.0.2.11), two clients of the relay keep exchanging data
// after it starts draining, while a new client is sent to the alternate.
func TestDrainKeepsRelaying(t *testing.T) {
	l := newLab(t)
	b := l.start(t, func(c *Config) {
		c.Name = "lab-b"
		c.RelayIPs = []netip.Addr{labCoturn4}
		c.Listeners = []Listener{{Transport: UDP, Addr: netip.AddrPortFrom(labCoturn4, 3478)}}
	})
	a := l.start(t, func(c *Config) {
		c.Listeners = []Listener{{Transport: UDP, Addr: netip.AddrPortFrom(labRelay4, 3478)}}
		c.Alternates = alternatesTo(b, "")
	})
	srv := mustListener(a, UDP)
	c1, c2 := l.client(t, srv, UDP, time.Hour), l.client(t, srv, UDP, time.Hour)
	r1, _, err := c1.Allocate(ctx(t), turnclient.AllocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2, _, err := c2.Allocate(ctx(t), turnclient.AllocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.CreatePermission(ctx(t), r2.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := c2.CreatePermission(ctx(t), r1.Addr()); err != nil {
		t.Fatal(err)
	}
	a.Drain()
	n, relayed, _, r, err := l.client(t, srv, UDP, time.Hour).AllocateFollow(ctx(t), turnclient.AllocateOptions{})
	if err != nil || r == nil || n.Server() != mustListener(b, UDP) || relayed.Addr() != labCoturn4 {
		t.Fatalf("new client while draining: %v %v on %s", err, r, relayed)
	}
	n.Close()
	if _, err := c1.Refresh(ctx(t), 10*time.Minute); err != nil {
		t.Errorf("refresh while draining: %v", err)
	}
	if err := c1.ChannelBind(ctx(t), 0x4001, r2); err != nil {
		t.Fatalf("channel bind while draining: %v", err)
	}
	for i := range 3 {
		if err := c1.SendChannel(0x4001, []byte("still relaying")); err != nil {
			t.Fatal(err)
		}
		d, err := c2.ReadData(time.Now().Add(2 * time.Second))
		if err != nil || string(d.Payload) != "still relaying" {
			t.Fatalf("packet %d through a draining relay: %q %v", i, d.Payload, err)
		}
		if err := c2.Send(r1, []byte("back")); err != nil {
			t.Fatal(err)
		}
		if d, err := c1.ReadData(time.Now().Add(2 * time.Second)); err != nil || string(d.Payload) != "back" {
			t.Fatalf("packet %d back through a draining relay: %q %v", i, d.Payload, err)
		}
	}
	if a.AllocationCount() != 2 || b.AllocationCount() != 1 {
		t.Errorf("allocations: %d on the draining relay, %d on the alternate", a.AllocationCount(), b.AllocationCount())
	}
}

func mustListener(s *testServer, transport string) netip.AddrPort {
	l, _ := s.Listener(transport)
	return l
}

// ts2client allocates on s as alice, without following redirects.
func ts2client(t *testing.T, s *testServer, transport string) *turnclient.Client {
	t.Helper()
	c := s.dial(t, transport, "alice", "alice-password")
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatalf("allocate on %s: %v", mustListener(s, transport), err)
	}
	return c
}

// TestTryAlternateCapacity: above the capacity threshold a relay redirects
// new allocations; without an alternate it takes them up to its total quota.
func TestTryAlternateCapacity(t *testing.T) {
	b := startServer(t, fleetConfig(t, loopback2, "turn-b.test"))
	acfg := fleetConfig(t, loopback, "turn-a.test")
	acfg.Limits.TotalQuota = 10
	acfg.CapacityThreshold = 0.2 // 2 allocations
	acfg.Alternates = alternatesTo(b, "")
	a := startServer(t, acfg)
	ts2client(t, a, UDP)
	ts2client(t, a, UDP)
	c := a.dial(t, UDP, "alice", "alice-password")
	_, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{})
	var e *turnclient.Error
	if !errors.As(err, &e) || e.Code != 300 || e.Alternate != mustListener(b, UDP) || e.AlternateDomain != "" {
		t.Fatalf("third allocation: %v (%+v), want 300 to %s", err, e, mustListener(b, UDP))
	}
	if got := a.metric(t, "turnwall_relay_redirects_total", "reason", "capacity"); got != 1 {
		t.Errorf("redirects_total{capacity} = %v", got)
	}
	if h := a.Health(); h.Ready || h.Threshold != 2 || h.Allocations != 2 || !strings.Contains(h.Reason(), "capacity") {
		t.Errorf("health above the threshold: %+v %q", h, h.Reason())
	}

	// Same without alternates: served.
	acfg2 := fleetConfig(t, loopback, "turn-a.test")
	acfg2.Limits.TotalQuota = 10
	acfg2.CapacityThreshold = 0.2
	a2 := startServer(t, acfg2)
	for range 3 {
		ts2client(t, a2, UDP)
	}
}

// TestRedirectLoop: two draining relays pointing at each other: the client
// follows one redirect only and says it was a loop.
func TestRedirectLoop(t *testing.T) {
	// Alternates resolved lazily: B's address is known only once it runs.
	var mu sync.Mutex
	var toB, toA Alternates
	lazy := func(p *Alternates) Alternates {
		return altFunc(func(ctx context.Context, tr string, self netip.AddrPort) (netip.AddrPort, string, bool) {
			mu.Lock()
			defer mu.Unlock()
			return (*p).Pick(ctx, tr, self)
		})
	}
	acfg := fleetConfig(t, loopback, "turn-a.test")
	acfg.Alternates = lazy(&toB)
	bcfg := fleetConfig(t, loopback2, "turn-b.test")
	bcfg.Alternates = lazy(&toA)
	a, b := startServer(t, acfg), startServer(t, bcfg)
	mu.Lock()
	toB, toA = alternatesTo(b, ""), alternatesTo(a, "")
	mu.Unlock()
	a.Drain()
	b.Drain()
	c := a.dial(t, UDP, "alice", "alice-password")
	n, _, _, r, err := c.AllocateFollow(ctx(t), turnclient.AllocateOptions{})
	defer n.Close()
	var re *turnclient.RedirectError
	if !errors.As(err, &re) || !re.Loop() || turnclient.Code(err) != 300 || r == nil || r.To != mustListener(b, UDP) {
		t.Fatalf("loop: %v (redirect %v)", err, r)
	}
	al, bl := mustListener(a, UDP), mustListener(b, UDP)
	want := "redirect loop: redirected by " + al.String() + " to " + bl.String() + " (300 Try Alternate), then by " + bl.String() + " to " + al.String()
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%q, want it to start %q", err, want)
	}
	if a.AllocationCount()+b.AllocationCount() != 0 {
		t.Error("an allocation was made")
	}
}

type altFunc func(ctx context.Context, transport string, self netip.AddrPort) (netip.AddrPort, string, bool)

func (f altFunc) Pick(ctx context.Context, transport string, self netip.AddrPort) (netip.AddrPort, string, bool) {
	return f(ctx, transport, self)
}

// TestDrainWithoutAlternate: 486, as on shutdown; an alternate that is the
// relay itself, or of the other family, is not used.
func TestDrainWithoutAlternate(t *testing.T) {
	cfg := testConfig(t)
	self := altFunc(func(_ context.Context, tr string, s netip.AddrPort) (netip.AddrPort, string, bool) {
		return s, "", true
	})
	cfg.Alternates = self
	ts := startServer(t, cfg)
	ts.Drain()
	if _, _, err := ts.dial(t, UDP, "bob", "bob-password").Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 486 {
		t.Fatalf("draining, no alternate: %v, want 486", err)
	}
	cfg = testConfig(t)
	cfg.Alternates = NewStaticAlternates([]Alternate{{Addr: netip.MustParseAddrPort("[2001:db8::1]:3478")}})
	ts = startServer(t, cfg)
	ts.Drain()
	if _, _, err := ts.dial(t, UDP, "bob", "bob-password").Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 486 {
		t.Fatalf("draining, IPv6 alternate for an IPv4 client: %v, want 486", err)
	}
}

// TestHealthEndpoints: /healthz is 200 while serving; /readyz flips to 503
// on drain, above the capacity threshold, and after Close.
func TestHealthEndpoints(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.TotalQuota = 4
	cfg.CapacityThreshold = 0.5
	ts := startServer(t, cfg)
	h := httptest.NewServer(ts.HealthHandler())
	defer h.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(h.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(path string, code int, body string) {
		t.Helper()
		if c, b := get(path); c != code || !strings.Contains(b, body) {
			t.Errorf("%s: %d %q, want %d with %q", path, c, b, code, body)
		}
	}
	expect("/healthz", 200, "ok")
	expect("/readyz", 200, "ready: 0 allocations")
	ts.Drain()
	expect("/readyz", 503, "not ready: draining")
	expect("/healthz", 200, "ok")
	ts.Resume()
	expect("/readyz", 200, "ready")
	ts2client(t, ts, UDP)
	expect("/readyz", 200, "ready: 1 allocations")
	ts2client(t, ts, TCP)
	expect("/readyz", 503, "not ready: at capacity: 2 allocations, threshold 2")
	expect("/nope", 404, "")
	ts.Close()
	ts.Resume() // no effect after Close
	expect("/healthz", 503, "stopped")
	expect("/readyz", 503, "not ready: stopped")
}

// fakeQuota is a fleet quota of n allocations.
type fakeQuota struct {
	mu       sync.Mutex
	n        int
	held     map[string]string // allocID -> user
	released []string
}

func (q *fakeQuota) Acquire(ctx context.Context, user, id string) (func(), error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("no deadline")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.held) >= q.n {
		return nil, errors.New("fleet quota reached")
	}
	q.held[id] = user
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.held, id)
		q.released = append(q.released, id)
	}, nil
}

func (q *fakeQuota) count() (held, released int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.held), len(q.released)
}

// TestFleetQuota: the external quota is asked on every Allocate after the
// relay's own limits; its refusal is 486, its lease is released once when
// the allocation ends or the relay stops.
func TestFleetQuota(t *testing.T) {
	q := &fakeQuota{n: 2, held: map[string]string{}}
	cfg := testConfig(t)
	cfg.Quota = q
	ts := startServer(t, cfg)
	c1 := ts2client(t, ts, UDP)
	ts2client(t, ts, TCP)
	if _, _, err := ts.dial(t, UDP, "bob", "bob-password").Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 486 {
		t.Fatalf("over the fleet quota: %v, want 486", err)
	}
	if got := ts.metric(t, "turnwall_relay_quota_rejections_total", "quota", "fleet"); got != 1 {
		t.Errorf("quota_rejections_total{fleet} = %v", got)
	}
	if all, _ := ts.quota.counts(""); all != 2 {
		t.Errorf("the refused allocation is still counted locally: %d", all)
	}
	for id, user := range q.held {
		if user != "alice" || !strings.HasPrefix(id, "test/") {
			t.Errorf("lease %q for %q", id, user)
		}
	}
	if _, err := c1.Refresh(ctx(t), 0); err != nil {
		t.Fatal(err)
	}
	if held, released := q.count(); held != 1 || released != 1 {
		t.Errorf("after deleting one allocation: %d held, %d released", held, released)
	}
	ts2client(t, ts, UDP) // room again
	ts.Close()
	if held, released := q.count(); held != 0 || released != 3 {
		t.Errorf("after Close: %d held, %d released, want 0 and 3", held, released)
	}
}

// TestPeerBound: the external bound refuses a peer the policy allows (403,
// counted as out-of-bound), and never allows one the policy refuses.
func TestPeerBound(t *testing.T) {
	cfg := testConfig(t)
	cfg.PeerBound = func(a netip.Addr) bool {
		return a != netip.MustParseAddr("198.51.100.7") && a.Is4() // deny one peer; an allow-all for IPv4 otherwise
	}
	ts := startServer(t, cfg)
	c := ts2client(t, ts, UDP)
	if err := c.CreatePermission(ctx(t), netip.MustParseAddr("198.51.100.7")); turnclient.Code(err) != 403 {
		t.Errorf("bounded-out peer: %v, want 403", err)
	}
	if err := c.ChannelBind(ctx(t), 0x4002, netip.MustParseAddrPort("198.51.100.7:5000")); turnclient.Code(err) != 403 {
		t.Errorf("ChannelBind to a bounded-out peer: %v, want 403", err)
	}
	if err := c.CreatePermission(ctx(t), netip.MustParseAddr("198.51.100.8")); err != nil {
		t.Errorf("allowed peer: %v", err)
	}
	for _, never := range []string{"192.0.2.1", "127.0.0.9", "169.254.169.254", "10.200.0.1"} {
		if err := c.CreatePermission(ctx(t), netip.MustParseAddr(never)); turnclient.Code(err) != 403 {
			t.Errorf("%s, refused by the policy, allowed by the bound: %v, want 403", never, err)
		}
	}
	if got := ts.metric(t, "turnwall_relay_denied_peers_total", "reason", string(OutOfBound)); got != 2 {
		t.Errorf("denied_peers_total{out-of-bound} = %v, want 2", got)
	}
}

// TestPrecomputedKeyUser: a static user given as coturn's key (hmackey,
// MD5 of name:realm:password) authenticates like one with the password, and
// Update can swap it at run time.
func TestPrecomputedKeyUser(t *testing.T) {
	key := creds.Key("carol", testRealm, "carol-password")
	users, err := creds.ParseUsers([]byte("carol:0x"+hex.EncodeToString(key)), false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Update(users, nil)
	ts := startServer(t, cfg)
	c := ts.dial(t, UDP, "carol", "carol-password")
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatalf("key-only user: %v", err)
	}
	cfg.Auth.Update([]creds.User{{Name: "carol", Key: creds.Key("carol", testRealm, "rotated")}}, nil)
	if _, _, err := ts.dial(t, UDP, "carol", "carol-password").Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 401 {
		t.Fatalf("old password after the key changed: %v, want 401", err)
	}
	if _, _, err := ts.dial(t, UDP, "carol", "rotated").Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

func TestParseAlternate(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"192.0.2.11:3478", "192.0.2.11:3478", ""},
		{"udp://192.0.2.11:3478", "udp://192.0.2.11:3478", ""},
		{"tls://192.0.2.11:5349?domain=turn-b.example.com", "tls://192.0.2.11:5349?domain=turn-b.example.com", ""},
		{"[2001:db8::11]:3478", "[2001:db8::11]:3478", ""},
		{"[::ffff:192.0.2.11]:3478", "192.0.2.11:3478", ""},
		{"192.0.2.11", "", "with a port"},
		{"192.0.2.11:0", "", "with a port"},
		{"0.0.0.0:3478", "", "with a port"},
		{"turn.example.com:3478", "", "ADDR:PORT"},
		{"sctp://192.0.2.11:3478", "", "use udp, tcp or tls"},
		{"udp://192.0.2.11:3478?domain=x.example", "", "tls:// alternates only"},
		{"tls://192.0.2.11:5349?domain=bad%0Aname", "", "not a domain name"},
		{"tls://192.0.2.11:5349?port=1", "", "only parameter"},
	} {
		a, err := ParseAlternate(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || a.String() != tc.want):
			t.Errorf("%q: %v %v, want %s", tc.in, a, err, tc.want)
		}
	}
}

func TestStaticAlternates(t *testing.T) {
	self := netip.MustParseAddrPort("192.0.2.10:3478")
	s := NewStaticAlternates([]Alternate{
		{Addr: self},
		{Addr: netip.MustParseAddrPort("192.0.2.11:3478")},
		{Transport: TLS, Addr: netip.MustParseAddrPort("192.0.2.12:5349"), Domain: "c.example"},
		{Addr: netip.MustParseAddrPort("[2001:db8::13]:3478")},
		{Transport: UDP, Addr: netip.MustParseAddrPort("192.0.2.14:3478")},
	})
	seen := map[string]int{}
	for range 20 {
		a, d, ok := s.Pick(context.Background(), UDP, self)
		if !ok {
			t.Fatal("no alternate")
		}
		seen[a.String()+d]++
	}
	if len(seen) != 2 || seen["192.0.2.11:3478"] == 0 || seen["192.0.2.14:3478"] == 0 {
		t.Errorf("UDP picks %v: want 192.0.2.11 and .14 in turn, never self, TLS-only or IPv6", seen)
	}
	clear(seen)
	for range 20 {
		a, d, _ := s.Pick(context.Background(), TLS, netip.MustParseAddrPort("192.0.2.10:5349"))
		seen[a.String()+" "+d]++
	}
	if seen["192.0.2.12:5349 c.example"] == 0 || len(seen) != 3 {
		t.Errorf("TLS picks %v", seen)
	}
	if _, _, ok := NewStaticAlternates(nil).Pick(context.Background(), UDP, self); ok {
		t.Error("empty list picked")
	}
}

func TestCapacityThresholdValidation(t *testing.T) {
	for _, v := range []float64{-0.1, 1.5} {
		cfg := testConfig(t)
		cfg.CapacityThreshold = v
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "capacity threshold") {
			t.Errorf("%v: %v", v, err)
		}
	}
}

// TestFleetQuotaExpiredReservation: a reservation that never became an
// allocation releases its external lease when it expires, with no further
// Allocate to notice.
func TestFleetQuotaExpiredReservation(t *testing.T) {
	q := newQuota(0, 0)
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	if full := q.reserve("alice", src, time.Now()); full != "" {
		t.Fatal(full)
	}
	released := make(chan struct{}, 2)
	q.attach(src, func() { released <- struct{}{} })
	select {
	case <-released:
	case <-time.After(reservationTimeout + 2*time.Second):
		t.Fatal("the lease of an expired reservation was not released")
	}
	if all, _ := q.counts(""); all != 0 {
		t.Errorf("%d still counted", all)
	}
	q.releaseAll()
	select {
	case <-released:
		t.Error("released twice")
	case <-time.After(50 * time.Millisecond):
	}
}
