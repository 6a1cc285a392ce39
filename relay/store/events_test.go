package store_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turnwall/turnwall/relay/store"
	"github.com/turnwall/turnwall/relay/store/storetest"
)

// TestEvents subscribes as a coturn statsdb consumer would
// (schema.stats.redis: psubscribe turn/realm/*/user/*/allocation/*) and
// checks what a relay's allocation reports.
func TestEvents(t *testing.T) {
	r := storetest.StartRedis(t)
	s, _ := openStore(t, r.URL(0))
	ctx := ctxT(t)
	sub := s.Client().PSubscribe(ctx, "turn/realm/*/user/*/allocation/*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	ev, err := s.Events()
	must(t, err)
	ev.Allocated("alice", 42, 600*time.Second)
	ev.Refreshed("alice", 42, 300*time.Second)
	ev.Traffic("alice", 42, store.Traffic{RcvPackets: 1, RcvBytes: 100, SentPackets: 2, SentBytes: 200})
	// A hostile name cannot make a key of another user or allocation.
	ev.Allocated("mallory/allocation/1/status\n*", 7, time.Minute)
	ev.Deleted("alice", 42, store.Traffic{RcvPackets: 10, RcvBytes: 1000, SentPackets: 20, SentBytes: 2000})
	ev.Close()
	ev.Allocated("late", 1, time.Minute) // after Close: ignored, no panic

	const base = "turn/realm/north.example/user/alice/allocation/000000000000000042/"
	want := []struct{ channel, payload string }{
		{base + "status", "new lifetime=600"},
		{base + "status", "refreshed lifetime=300"},
		{base + "traffic", "rcvp=1, rcvb=100, sentp=2, sentb=200"},
		{"turn/realm/north.example/user/mallory%2Fallocation%2F1%2Fstatus%0A%2A/allocation/000000000000000007/status", "new lifetime=60"},
		{base + "status", "deleted"},
		{base + "total_traffic", "rcvp=10, rcvb=1000, sentp=20, sentb=2000"},
	}
	ch := sub.Channel()
	for i, w := range want {
		select {
		case m := <-ch:
			if m.Channel != w.channel || m.Payload != w.payload {
				t.Errorf("message %d: %s %q; want %s %q", i, m.Channel, m.Payload, w.channel, w.payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not received", i)
		}
	}
	// The status key of a deleted allocation is gone; a live one expires
	// with its lifetime.
	if n, _ := s.Client().Exists(ctx, base+"status").Result(); n != 0 {
		t.Error("status key left after deletion")
	}
	mk := "turn/realm/north.example/user/mallory%2Fallocation%2F1%2Fstatus%0A%2A/allocation/000000000000000007/status"
	if v, _ := s.Client().Get(ctx, mk).Result(); v != "new lifetime=60" {
		t.Errorf("status %q", v)
	}
	if ttl, _ := s.Client().TTL(ctx, mk).Result(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("status TTL %v", ttl)
	}
	if sent := testutil.ToFloat64(ev.Collectors()[0]); sent != 5 {
		t.Errorf("events_sent_total %v, want 5", sent)
	}
}
