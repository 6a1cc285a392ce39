package store_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store"
	"github.com/turnwall/turnwall/relay/store/storetest"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func registryNode(t *testing.T, s *store.Store, id string, load *atomic.Int64, draining *atomic.Bool, lease time.Duration, ls ...store.NodeListener) *store.Registry {
	t.Helper()
	r, err := s.Registry(store.RegistryOptions{ID: id, Lease: lease, Load: func() store.NodeLoad {
		return store.NodeLoad{Allocations: int(load.Load()), Threshold: 100, Draining: draining.Load()}
	}})
	must(t, err)
	r.SetListeners(ls)
	return r
}

// TestRegistryClientPort: a client that reached a node on TURN/TLS 443
// (all a strict firewall opens) is sent to another node's 443, not to its
// 5349, and to a node listening on 443 before a less loaded one that does
// not; without such a node the least loaded node's listener is chosen.
func TestRegistryClientPort(t *testing.T) {
	r := storetest.StartRedis(t)
	s, _ := openStore(t, r.URL(1))
	ctx := ctxT(t)
	const lease = 5 * time.Second
	var la, lb, lc atomic.Int64
	var da, db, dc atomic.Bool
	a := registryNode(t, s, "node-a", &la, &da, lease,
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.10:443")},
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.10:5349")})
	b := registryNode(t, s, "node-b", &lb, &db, lease,
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.11:5349")},
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.11:443"), Domain: "b.example.com"})
	c := registryNode(t, s, "node-c", &lc, &dc, lease,
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.12:5349")})
	la.Store(0)
	lb.Store(40)
	lc.Store(10)
	for _, n := range []*store.Registry{a, b, c} {
		must(t, n.Publish(ctx))
	}
	must(t, a.Refresh(ctx))
	if got, domain, ok := a.Pick(ctx, "tls", ap("192.0.2.10:443")); !ok || got != ap("192.0.2.11:443") || domain != "b.example.com" {
		t.Errorf("client on 443: %v %q %v, want node-b's 443 (node-c, less loaded, has no 443)", got, domain, ok)
	}
	if got, _, ok := a.Pick(ctx, "tls", ap("192.0.2.10:5349")); !ok || got != ap("192.0.2.12:5349") {
		t.Errorf("client on 5349: %v %v, want the least loaded node-c", got, ok)
	}
	db.Store(true) // node-b drains: no node has 443 left
	must(t, b.Publish(ctx))
	must(t, a.Refresh(ctx))
	if got, _, ok := a.Pick(ctx, "tls", ap("192.0.2.10:443")); !ok || got != ap("192.0.2.12:5349") {
		t.Errorf("client on 443, no other node on 443: %v %v, want node-c's 5349", got, ok)
	}
}

// TestRegistry: nodes register with their listeners and load; Pick chooses
// the least loaded other node of the client's transport and family, skips
// draining and full nodes, spreads a burst, and a node that stops renewing
// leaves within its lease.
func TestRegistry(t *testing.T) {
	r := storetest.StartRedis(t)
	s, _ := openStore(t, r.URL(0))
	ctx := ctxT(t)
	const lease = 900 * time.Millisecond
	var la, lb, lc atomic.Int64
	var da, db, dc atomic.Bool
	a := registryNode(t, s, "node-a", &la, &da, lease,
		store.NodeListener{Transport: "udp", Addr: ap("192.0.2.10:3478")},
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.10:5349"), Domain: "a.example.com"})
	b := registryNode(t, s, "node-b", &lb, &db, lease,
		store.NodeListener{Transport: "udp", Addr: ap("192.0.2.11:3478")},
		store.NodeListener{Transport: "tls", Addr: ap("192.0.2.11:5349"), Domain: "b.example.com"},
		store.NodeListener{Transport: "udp", Addr: ap("[2001:db8::11]:3478")})
	c := registryNode(t, s, "node-c", &lc, &dc, lease,
		store.NodeListener{Transport: "udp", Addr: ap("192.0.2.12:3478")})
	la.Store(50)
	lb.Store(10)
	lc.Store(20)
	for _, n := range []*store.Registry{a, b, c} {
		must(t, n.Publish(ctx))
	}
	nodes, err := a.Nodes(ctx)
	must(t, err)
	if len(nodes) != 3 || nodes[1].ID != "node-b" || nodes[1].Load.Allocations != 10 || len(nodes[1].Listeners) != 3 {
		t.Fatalf("nodes %+v", nodes)
	}
	must(t, a.Refresh(ctx))
	pick := func(transport, self string) string {
		addr, domain, ok := a.Pick(ctx, transport, ap(self))
		if !ok {
			return "none"
		}
		if domain != "" {
			return addr.String() + " " + domain
		}
		return addr.String()
	}
	if got := pick("udp", "192.0.2.10:3478"); got != "192.0.2.11:3478" {
		t.Errorf("udp: %s, want the least loaded node-b", got)
	}
	if got := pick("tls", "192.0.2.10:5349"); got != "192.0.2.11:5349 b.example.com" {
		t.Errorf("tls: %s", got)
	}
	if got := pick("udp", "[2001:db8::10]:3478"); got != "[2001:db8::11]:3478" {
		t.Errorf("IPv6: %s", got)
	}
	if got := pick("tcp", "192.0.2.10:3478"); got != "none" {
		t.Errorf("tcp: %s, no node has a TCP listener", got)
	}
	// A burst spreads: node-b (10) then, counting the redirects, node-c
	// (20) as they draw level.
	counts := map[string]int{}
	for range 30 {
		counts[pick("udp", "192.0.2.10:3478")]++
	}
	if counts["192.0.2.11:3478"] < 14 || counts["192.0.2.12:3478"] < 4 {
		t.Errorf("a burst of 30 redirects went %v", counts)
	}

	// node-b drains: no longer picked once it publishes.
	db.Store(true)
	must(t, b.Publish(ctx))
	must(t, a.Refresh(ctx))
	if got := pick("udp", "192.0.2.10:3478"); got != "192.0.2.12:3478" {
		t.Errorf("node-b draining: %s, want node-c", got)
	}
	// node-c full (threshold 100).
	lc.Store(100)
	must(t, c.Publish(ctx))
	must(t, a.Refresh(ctx))
	if got := pick("udp", "192.0.2.10:3478"); got != "none" {
		t.Errorf("every other node draining or full: %s", got)
	}

	// A node that dies (stops renewing) leaves within its lease; one that
	// stops cleanly leaves at once.
	lc.Store(0)
	db.Store(false)
	must(t, b.Publish(ctx))
	must(t, c.Publish(ctx))
	died := time.Now()
	var gone time.Duration
	for time.Since(died) < 3*lease {
		must(t, a.Publish(ctx)) // node-a lives on
		nodes, err := a.Nodes(ctx)
		must(t, err)
		if len(nodes) == 1 {
			gone = time.Since(died)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if gone == 0 || gone > lease+200*time.Millisecond {
		t.Fatalf("dead nodes still registered after %v (lease %v)", time.Since(died), lease)
	}
	t.Logf("dead node unregistered after %v (lease %v)", gone.Round(time.Millisecond), lease)
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.Run(runCtx) }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		a.Publish(ctx)
		nodes, _ := a.Nodes(ctx)
		if len(nodes) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not register node-b")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	must(t, a.Publish(ctx))
	if nodes, _ := a.Nodes(ctx); len(nodes) != 1 {
		t.Errorf("node-b still registered after a clean stop: %+v", nodes)
	}

	// Records that do not parse, or claim another ID or a bad listener, are
	// left out; a record never makes Pick answer an unspecified address.
	cl := s.Client()
	must(t, cl.Set(ctx, "turnwall/{"+realm+"}/nodes/junk", "not json", 0).Err())
	must(t, cl.Set(ctx, "turnwall/{"+realm+"}/nodes/liar", `{"id":"node-a","listeners":[]}`, 0).Err())
	must(t, cl.Set(ctx, "turnwall/{"+realm+"}/nodes/zero", `{"id":"zero","listeners":[{"transport":"udp","addr":"0.0.0.0:3478"}]}`, 0).Err())
	must(t, cl.Set(ctx, "turnwall/{"+realm+"}/nodes/dom", `{"id":"dom","listeners":[{"transport":"tls","addr":"192.0.2.9:5349","domain":"x\r\ny"}]}`, 0).Err())
	nodes, err = a.Nodes(ctx)
	must(t, err)
	if len(nodes) != 1 || nodes[0].ID != "node-a" {
		t.Errorf("invalid records read: %+v", nodes)
	}

	if _, err := s.Registry(store.RegistryOptions{ID: "a b"}); err == nil {
		t.Error("a node ID with a space was accepted")
	}
}

// TestFeed: the relay gets its own secrets and users plus the store's, on
// every change, and the store's peer lists only narrow the policy's.
func TestFeed(t *testing.T) {
	r := storetest.StartRedis(t)
	s, _ := openStore(t, r.URL(0))
	ctx := ctxT(t)
	must(t, s.PutSecret(ctx, "store-secret-0123456789"))
	must(t, s.PutUser(ctx, "dbuser", []byte("0123456789abcdef")))
	_, _, err := s.Reload(ctx)
	must(t, err)
	type applied struct {
		users   []creds.User
		secrets []string
	}
	got := make(chan applied, 16)
	policy := func() *netipx.IPSet {
		var b netipx.IPSetBuilder
		b.AddPrefix(netip.MustParsePrefix("198.51.100.0/24"))
		b.AddPrefix(netip.MustParsePrefix("127.0.0.0/8"))
		set, _ := b.IPSet()
		return set
	}()
	f := s.Feed(policy, func(u []creds.User, sec []string) { got <- applied{u, sec} })
	f.SetFiles([]string{"file-secret-0123456789"}, []creds.User{{Name: "fileuser", Password: "pw"}})
	<-got
	a := <-got
	if len(a.secrets) != 2 || a.secrets[0] != "file-secret-0123456789" || a.secrets[1] != "store-secret-0123456789" {
		t.Errorf("secrets %q: the file's first, then the store's", a.secrets)
	}
	if len(a.users) != 2 || a.users[0].Name != "fileuser" || a.users[1].Name != "dbuser" {
		t.Errorf("users %+v", a.users)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go f.Run(runCtx, 100*time.Millisecond)
	must(t, s.PutSecret(ctx, "rotated-secret-0123456789"))
	select {
	case a = <-got:
		if len(a.secrets) != 3 {
			t.Errorf("after a new secret: %q", a.secrets)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a new secret was not applied")
	}
	if !f.PeerAllowed(netip.MustParseAddr("198.51.100.7")) || f.PeerAllowed(netip.MustParseAddr("127.0.0.1")) ||
		f.PeerAllowed(netip.MustParseAddr("203.0.113.1")) {
		t.Error("peer bound before any database list")
	}
	cl := s.Client()
	must(t, cl.SAdd(ctx, "turn/realm/"+realm+"/denied-peer-ip", "198.51.100.0-198.51.100.127").Err())
	must(t, cl.SAdd(ctx, "turn/realm/"+realm+"/allowed-peer-ip", "198.51.100.7", "127.0.0.1", "203.0.113.1").Err())
	deadline := time.Now().Add(3 * time.Second)
	for f.PeerAllowed(netip.MustParseAddr("198.51.100.8")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for addr, want := range map[string]bool{
		"198.51.100.8": false, "198.51.100.7": true, "198.51.100.200": true,
		"127.0.0.1": false, "203.0.113.1": false, "::ffff:198.51.100.7": true,
	} {
		if f.PeerAllowed(netip.MustParseAddr(addr)) != want {
			t.Errorf("PeerAllowed(%s) = %v, want %v", addr, !want, want)
		}
	}
}
