package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/turnwall/turnwall/relay/store"
	"github.com/turnwall/turnwall/relay/store/storetest"
)

func quotaNode(t *testing.T, s *store.Store, node string, o store.QuotaOptions) *store.Quota {
	t.Helper()
	o.Node = node
	q, err := s.Quota(o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func wantQuota(t *testing.T, err error, which string) {
	t.Helper()
	var qe *store.ErrQuota
	if !errors.As(err, &qe) || qe.Which != which {
		t.Fatalf("got %v; want the %s quota", err, which)
	}
}

func TestQuota(t *testing.T) {
	r := storetest.StartRedis(t)
	s, _ := openStore(t, r.URL(0))
	ctx := ctxT(t)

	t.Run("limits-across-nodes", func(t *testing.T) {
		o := store.QuotaOptions{UserLimit: 2, TotalLimit: 3, Lease: 10 * time.Second}
		a := quotaNode(t, s, "node-a", o)
		b := quotaNode(t, s, "node-b", o)
		relA1, err := a.Acquire(ctx, "alice", "1")
		must(t, err)
		_, err = b.Acquire(ctx, "alice", "1") // same local ID on another node: another allocation
		must(t, err)
		_, err = b.Acquire(ctx, "alice", "2")
		wantQuota(t, err, "user")
		_, err = a.Acquire(ctx, "bob", "7")
		must(t, err)
		_, err = b.Acquire(ctx, "carol", "8")
		wantQuota(t, err, "total")
		if n, _ := a.Count(ctx, ""); n != 3 {
			t.Errorf("fleet total %d, want 3", n)
		}
		// Acquiring what a node already holds is no new allocation.
		_, err = a.Acquire(ctx, "alice", "1")
		must(t, err)
		relA1()
		relA1() // twice is once
		_, err = b.Acquire(ctx, "alice", "2")
		must(t, err)
		// One user and one total rejection on node b.
		if n := testutil.CollectAndCount(b.Collectors()[2]); n != 2 {
			t.Errorf("rejections by %d quotas, want 2", n)
		}
	})

	t.Run("lease-expiry-after-node-kill", func(t *testing.T) {
		const lease = 2 * time.Second
		o := store.QuotaOptions{UserLimit: 1, Lease: lease}
		a := quotaNode(t, s, "node-killed", o)
		b := quotaNode(t, s, "node-alive", o)
		_, err := a.Acquire(ctx, "dave", "1")
		must(t, err)
		// node-killed stops refreshing: it is gone, its release never runs.
		killed := time.Now()
		_, err = b.Acquire(ctx, "dave", "2")
		wantQuota(t, err, "user")
		var freed time.Duration
		for time.Since(killed) < lease+5*time.Second {
			if _, err = b.Acquire(ctx, "dave", "2"); err == nil {
				freed = time.Since(killed)
				break
			}
			wantQuota(t, err, "user")
			time.Sleep(20 * time.Millisecond)
		}
		if freed == 0 {
			t.Fatalf("not freed within %v", lease+5*time.Second)
		}
		t.Logf("a killed node's allocation freed after %v (lease %v)", freed.Round(time.Millisecond), lease)
		if freed < lease-200*time.Millisecond || freed > lease+time.Second {
			t.Errorf("freed after %v; lease %v", freed, lease)
		}
	})

	t.Run("refresh-keeps-leases", func(t *testing.T) {
		const lease = 1500 * time.Millisecond
		o := store.QuotaOptions{UserLimit: 1, Lease: lease}
		a := quotaNode(t, s, "node-live", o)
		b := quotaNode(t, s, "node-other", o)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.Refresh(rctx) }()
		defer func() { cancel(); <-done }()
		_, err := a.Acquire(ctx, "erin", "1")
		must(t, err)
		end := time.Now().Add(2 * lease)
		for time.Now().Before(end) {
			_, err := b.Acquire(ctx, "erin", "2")
			wantQuota(t, err, "user")
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("lost-lease-is-re-added", func(t *testing.T) {
		a := quotaNode(t, s, "node-slow", store.QuotaOptions{Lease: 400 * time.Millisecond})
		_, err := a.Acquire(ctx, "frank", "1")
		must(t, err)
		time.Sleep(600 * time.Millisecond)
		must(t, a.RefreshOnce(ctx))
		if n, _ := a.Count(ctx, "frank"); n != 1 {
			t.Errorf("count %d after refreshing an expired lease", n)
		}
		if v := testutil.ToFloat64(a.Collectors()[1]); v != 1 {
			t.Errorf("leases_lost_total %v", v)
		}
	})

	t.Run("script-flushed", func(t *testing.T) {
		a := quotaNode(t, s, "node-flush", store.QuotaOptions{Lease: time.Second})
		_, err := a.Acquire(ctx, "gina", "1")
		must(t, err)
		must(t, s.Client().ScriptFlush(ctx).Err())
		must(t, a.RefreshOnce(ctx))
		_, err = a.Acquire(ctx, "gina", "2")
		must(t, err)
	})

	t.Run("redis-down", func(t *testing.T) {
		r2 := storetest.StartRedis(t)
		s2, _ := openStore(t, r2.URL(0))
		open := quotaNode(t, s2, "n1", store.QuotaOptions{UserLimit: 1, Timeout: 500 * time.Millisecond})
		closed := quotaNode(t, s2, "n2", store.QuotaOptions{UserLimit: 1, FailClosed: true, Timeout: 500 * time.Millisecond})
		r2.Stop()
		rel, err := open.Acquire(ctx, "hank", "1")
		if err != nil || rel == nil {
			t.Errorf("fail-open quota refused while Redis is down: %v", err)
		}
		if _, err := closed.Acquire(ctx, "hank", "2"); err == nil || errors.As(err, new(*store.ErrQuota)) {
			t.Errorf("fail-closed quota: %v", err)
		}
		if v := testutil.ToFloat64(open.Collectors()[0]); v != 1 {
			t.Errorf("errors_total %v", v)
		}
		rel() // the release fails quietly; the lease frees it
	})

	t.Run("postgres-store-has-no-quota", func(t *testing.T) {
		_, err := store.NewQuota(nil, realm, store.QuotaOptions{})
		wantErr(t, err, "Redis")
	})

	t.Run("keys-are-coturn-free", func(t *testing.T) {
		// The quota's keys live apart from coturn's turn/ keys.
		keys, err := s.Client().Keys(ctx, "turn/*").Result()
		must(t, err)
		if len(keys) != 0 {
			t.Errorf("quota wrote coturn keys: %q", keys)
		}
		keys, _ = s.Client().Keys(ctx, "turnwall/*").Result()
		for _, k := range keys {
			if !strings.HasPrefix(k, "turnwall/{"+realm+"}/quota/") {
				t.Errorf("key %q", k)
			}
		}
	})
}

// TestQuotaConcurrent: two nodes racing for one user's last slots never
// exceed the limit (the Lua script is atomic).
func TestQuotaConcurrent(t *testing.T) {
	r := storetest.StartRedis(t)
	s, _ := openStore(t, r.URL(0))
	ctx := ctxT(t)
	const limit, tries = 5, 40
	nodes := []*store.Quota{
		quotaNode(t, s, "x", store.QuotaOptions{UserLimit: limit, Lease: 10 * time.Second}),
		quotaNode(t, s, "y", store.QuotaOptions{UserLimit: limit, Lease: 10 * time.Second}),
	}
	results := make(chan error, tries)
	for i := 0; i < tries; i++ {
		go func() {
			_, err := nodes[i%2].Acquire(ctx, "ivy", fmt.Sprint(i))
			results <- err
		}()
	}
	ok := 0
	for i := 0; i < tries; i++ {
		if err := <-results; err == nil {
			ok++
		} else {
			wantQuota(t, err, "user")
		}
	}
	if ok != limit {
		t.Errorf("%d allocations admitted; limit %d", ok, limit)
	}
	var rc *redis.Client = s.Client()
	if n, _ := rc.ZCard(ctx, "turnwall/{"+realm+"}/quota/user/ivy").Result(); n != limit {
		t.Errorf("%d members", n)
	}
}
