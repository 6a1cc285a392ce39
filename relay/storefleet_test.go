package relay

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store"
	"github.com/turnwall/turnwall/relay/store/storetest"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// storeNode is a relay wired to a shared store as `turnwall relay --store
// --fleet-quota` wires it: credentials and peer bound from the store
// (Feed), the fleet quota, and, on Redis, the node registry as Alternates.
type storeNode struct {
	*testServer
	name     string
	store    *store.Store
	feed     *store.Feed
	quota    *store.Quota
	registry *store.Registry
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

type storeNodeOptions struct {
	interval, quotaLease, nodeLease time.Duration
	userLimit                       int
	events                          bool
}

func startStoreNode(t testing.TB, url, name string, ip netip.Addr, o storeNodeOptions) *storeNode {
	t.Helper()
	n := &storeNode{name: name}
	cfg := fleetConfig(t, ip, name)
	var err error
	n.store, err = store.Open(context.Background(), url, testRealm, store.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	auth := NewAuth(testRealm, nil, nil)
	cfg.Auth = auth
	n.feed = n.store.Feed(cfg.Peers, auth.Update)
	cfg.PeerBound = n.feed.PeerAllowed
	if o.userLimit > 0 {
		if n.quota, err = n.store.Quota(store.QuotaOptions{UserLimit: o.userLimit, Lease: o.quotaLease, Node: name}); err != nil {
			t.Fatal(err)
		}
		cfg.Quota = n.quota
	}
	if n.store.Client() != nil {
		if n.registry, err = n.store.Registry(store.RegistryOptions{ID: name, Lease: o.nodeLease}); err != nil {
			t.Fatal(err)
		}
		cfg.Alternates = n.registry
	}
	if o.events {
		ev, err := n.store.Events()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Events = ev
		t.Cleanup(ev.Close)
	}
	n.testServer = startServer(t, cfg)
	if n.registry != nil {
		n.Advertise(n.registry, name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	run := func(f func(context.Context) error) {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); f(ctx) }()
	}
	run(func(ctx context.Context) error { return n.feed.Run(ctx, o.interval) })
	if n.quota != nil {
		run(n.quota.Refresh)
	}
	if n.registry != nil {
		run(n.registry.Run)
	}
	t.Cleanup(n.stop)
	return n
}

// stop is a clean stop: the registration is removed.
func (n *storeNode) stop() {
	n.cancel()
	n.wg.Wait()
	n.store.Close()
	n.Close()
}

// kill is a node dying: nothing more reaches Redis (no release, no
// deregistration, no lease renewal), then the relay stops.
func (n *storeNode) kill() {
	n.store.Close()
	n.cancel()
	n.wg.Wait()
	n.Close()
}

// allocate allocates over UDP with REST credentials for user signed with
// secret; the client is closed (and its allocation deleted) at the end of
// the test unless keep is false, when it is deleted at once.
func allocate(t *testing.T, s *testServer, secret, user string, keep bool) error {
	t.Helper()
	u, p := restCreds(secret, user, time.Hour)
	addr, _ := s.Listener(UDP)
	c, err := turnclient.Dial(turnclient.Config{Transport: UDP, Server: addr, Username: u, Password: p, RTO: 200 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _, err = c.Allocate(ctx, turnclient.AllocateOptions{})
	if err != nil || !keep {
		if err == nil {
			c.Refresh(ctx, 0)
		}
		c.Close()
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Refresh(ctx, 0)
		c.Close()
	})
	return nil
}

// until polls f every 20 ms until it is true or d passes, and returns how
// long it took (0: never).
func until(d time.Duration, f func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < d {
		if f() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

// TestStoreFleet: two relays share one real Redis: a secret written to the
// store is accepted by both without a restart, and a deleted one refused; the
// fleet quota counts across both; a draining node redirects to the other,
// chosen through the store's node registry; a node that dies frees its
// allocations and leaves the registry within the leases, and new
// allocations go to the live node.
func TestStoreFleet(t *testing.T) {
	r := storetest.StartRedis(t)
	url := r.URL(0)
	admin, err := store.Open(context.Background(), url, testRealm, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	c := ctx(t)
	if err := admin.PutSecret(c, testSecret); err != nil {
		t.Fatal(err)
	}
	const quotaLease, nodeLease = 2 * time.Second, 1500 * time.Millisecond
	o := storeNodeOptions{interval: store.DefaultInterval, quotaLease: quotaLease, nodeLease: nodeLease, userLimit: 2}
	a := startStoreNode(t, url, "turn-a.test", loopback, o)
	b := startStoreNode(t, url, "turn-b.test", loopback2, o)
	for _, n := range []*storeNode{a, b} {
		if err := allocate(t, n.testServer, testSecret, "agent", false); err != nil {
			t.Fatalf("%s: the store's secret: %v", n.name, err)
		}
	}

	// Rotation: add the new secret, both relays accept it; delete the old,
	// both refuse it (401).
	if err := admin.PutSecret(c, testSecret2); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	for _, n := range []*storeNode{a, b} {
		took := until(5*time.Second, func() bool { return allocate(t, n.testServer, testSecret2, "agent", false) == nil })
		if took == 0 {
			t.Fatalf("%s does not accept the new secret after 5 s", n.name)
		}
	}
	t.Logf("new secret accepted by both relays %v after it was written", time.Since(added).Round(time.Millisecond))
	if err := allocate(t, a.testServer, testSecret, "agent", false); err != nil {
		t.Errorf("the old secret during the rotation: %v", err)
	}
	if err := admin.DeleteSecret(c, testSecret); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for _, n := range []*storeNode{a, b} {
		if until(5*time.Second, func() bool {
			return turnclient.Code(allocate(t, n.testServer, testSecret, "agent", false)) == 401
		}) == 0 {
			t.Fatalf("%s still accepts the deleted secret after 5 s", n.name)
		}
	}
	t.Logf("deleted secret refused by both relays %v after it was deleted", time.Since(deleted).Round(time.Millisecond))

	// Without keyspace notifications the relays see it at their next read
	// (every 2 s).
	if err := admin.Client().ConfigSet(c, "notify-keyspace-events", "").Err(); err != nil {
		t.Fatal(err)
	}
	const thirdSecret = "third-secret-0123456789"
	if err := admin.PutSecret(c, thirdSecret); err != nil {
		t.Fatal(err)
	}
	added = time.Now()
	for _, n := range []*storeNode{a, b} {
		if until(2*store.DefaultInterval, func() bool { return allocate(t, n.testServer, thirdSecret, "agent", false) == nil }) == 0 {
			t.Fatalf("%s does not accept a secret after two reads", n.name)
		}
	}
	if took := time.Since(added); took > store.DefaultInterval+time.Second {
		t.Errorf("a new secret took %v with reads every %v", took, store.DefaultInterval)
	} else {
		t.Logf("new secret accepted by both relays %v after it was written, polling every %v", took.Round(time.Millisecond), store.DefaultInterval)
	}

	// Fleet quota: user limit 2 across both relays.
	if err := allocate(t, a.testServer, testSecret2, "carol", true); err != nil {
		t.Fatal(err)
	}
	if err := allocate(t, b.testServer, testSecret2, "carol", true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*storeNode{a, b} {
		if err := allocate(t, n.testServer, testSecret2, "carol", true); turnclient.Code(err) != 486 {
			t.Errorf("third allocation of carol on %s: %v, want 486", n.name, err)
		}
	}
	if got := a.metric(t, "turnwall_relay_quota_rejections_total", "quota", "fleet"); got != 1 {
		t.Errorf("fleet rejections on A: %v", got)
	}

	// A drains: new allocations are redirected to B, found in the registry.
	a.Drain()
	var e *turnclient.Error
	took := until(3*nodeLease, func() bool {
		err := allocate(t, a.testServer, testSecret2, "dave", false)
		return errors.As(err, &e) && e.Code == 300
	})
	if took == 0 || e.Alternate != mustListener(b.testServer, UDP) {
		t.Fatalf("draining A: %v, want 300 to B's %s", e, mustListener(b.testServer, UDP))
	}
	u, p := restCreds(testSecret2, "dave", time.Hour)
	cl, err := turnclient.Dial(turnclient.Config{Transport: UDP, Server: mustListener(a.testServer, UDP), Username: u, Password: p, RTO: 200 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	moved, _, _, redirect, err := cl.AllocateFollow(c, turnclient.AllocateOptions{})
	if err != nil || redirect == nil || redirect.To != mustListener(b.testServer, UDP) {
		t.Fatalf("following the redirect: %v %+v", err, redirect)
	}
	moved.Refresh(c, 0)
	moved.Close()
	cl.Close()
	a.Resume()

	// B dies: its carol allocation stops counting within the quota lease,
	// it leaves the registry within the node lease, and A takes carol's
	// second allocation.
	b.kill()
	died := time.Now()
	var freed, gone time.Duration
	until(3*quotaLease, func() bool {
		if n, err := a.quota.Count(c, "carol"); freed == 0 && err == nil && n == 1 {
			freed = time.Since(died)
		}
		if nodes, err := a.registry.Nodes(c); gone == 0 && err == nil && len(nodes) == 1 {
			gone = time.Since(died)
		}
		return freed > 0 && gone > 0
	})
	if freed == 0 || gone == 0 || freed > quotaLease+500*time.Millisecond || gone > nodeLease+500*time.Millisecond {
		t.Fatalf("after B died: quota freed after %v (lease %v), unregistered after %v (lease %v)", freed, quotaLease, gone, nodeLease)
	}
	t.Logf("B killed: its allocation freed for the fleet after %v (lease %v), unregistered after %v (lease %v)",
		freed.Round(time.Millisecond), quotaLease, gone.Round(time.Millisecond), nodeLease)
	if err := allocate(t, a.testServer, testSecret2, "carol", true); err != nil {
		t.Errorf("carol's second allocation on A after B died: %v", err)
	}
	// With B gone, a draining A has nowhere to send clients: 486.
	a.Drain()
	time.Sleep(nodeLease / 2) // A's registry reads the fleet again
	if err := allocate(t, a.testServer, testSecret2, "erin", false); turnclient.Code(err) != 486 {
		t.Errorf("draining A, B dead: %v, want 486", err)
	}
}

// TestStoreEvents: a relay with the store's events publishes its
// allocations in coturn's statsdb form: new, refreshed and deleted, with the
// lifetimes the client asked for.
func TestStoreEvents(t *testing.T) {
	r := storetest.StartRedis(t)
	url := r.URL(0)
	admin, err := store.Open(context.Background(), url, testRealm, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	c := ctx(t)
	admin.PutSecret(c, testSecret)
	ps := admin.Client().PSubscribe(c, "turn/realm/"+testRealm+"/user/*/allocation/*/status")
	defer ps.Close()
	if _, err := ps.Receive(c); err != nil {
		t.Fatal(err)
	}
	n := startStoreNode(t, url, "ev.test", loopback, storeNodeOptions{interval: time.Second, quotaLease: 30 * time.Second, nodeLease: 10 * time.Second, events: true})
	u, p := restCreds(testSecret, "erin", time.Hour)
	addr, _ := n.Listener(UDP)
	cl, err := turnclient.Dial(turnclient.Config{Transport: UDP, Server: addr, Username: u, Password: p, RTO: 200 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, _, err := cl.Allocate(c, turnclient.AllocateOptions{Lifetime: 300 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Refresh(c, 120*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Refresh(c, 0); err != nil {
		t.Fatal(err)
	}
	key := "turn/realm/" + testRealm + "/user/erin/allocation/000000000000000001/status"
	for _, want := range []string{"new lifetime=300", "refreshed lifetime=120", "deleted"} {
		select {
		case m := <-ps.Channel():
			if m.Channel != key || m.Payload != want {
				t.Errorf("event %s %q, want %s %q", m.Channel, m.Payload, key, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no event %q", want)
		}
	}
	if n, _ := admin.Client().Exists(c, key).Result(); n != 0 {
		t.Error("the status key outlives the allocation")
	}
}

// BenchmarkAllocateStore measures allocations a second (a client's Allocate,
// challenge included, then its deletion) on one relay, without a store and
// with a Redis store (credentials, registry: nothing on the allocation's
// path), and with a fleet quota too (one Redis round trip to acquire, one to
// release). go test -run '^$' -bench AllocateStore ./relay/
func BenchmarkAllocateStore(b *testing.B) {
	r := storetest.StartRedis(b)
	admin, err := store.Open(context.Background(), r.URL(0), testRealm, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if err := admin.PutSecret(context.Background(), testSecret); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store bool
		quota int
	}{{"no-store", false, 0}, {"redis-store", true, 0}, {"redis-store-fleet-quota", true, 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			var s *testServer
			if tc.store {
				n := startStoreNode(b, r.URL(0), "bench.test", loopback, storeNodeOptions{interval: time.Second, quotaLease: 30 * time.Second, nodeLease: 10 * time.Second, userLimit: tc.quota})
				s = n.testServer
			} else {
				cfg := fleetConfig(b, loopback, "bench.test")
				cfg.Auth = NewAuth(testRealm, nil, []string{testSecret})
				s = startServer(b, cfg)
			}
			addr, _ := s.Listener(UDP)
			u, p := creds.Generate(testSecret, "bench", time.Now().Add(time.Hour))
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				c, err := turnclient.Dial(turnclient.Config{Transport: UDP, Server: addr, Username: u, Password: p, RTO: 200 * time.Millisecond, Timeout: 2 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Allocate(ctx, turnclient.AllocateOptions{}); err != nil {
					b.Fatal(err)
				}
				c.Refresh(ctx, 0)
				c.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocations/s")
		})
	}
}
