package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Events reports allocations in coturn's statsdb form (schema.stats.redis),
// so tools written for a coturn fleet's --redis-statsdb see turnwall relays
// too:
//
//	SET     turn/realm/R/user/U/allocation/ID/status  "new lifetime=600"
//	PUBLISH turn/realm/R/user/U/allocation/ID/status  "new lifetime=600"
//	        ... "refreshed lifetime=600"
//	DEL + PUBLISH .../status "deleted"
//	PUBLISH .../traffic and, on deletion, .../total_traffic
//	        "rcvp=N, rcvb=N, sentp=N, sentb=N"
//
// ID is the allocation number, 18 digits as coturn prints it. Unlike coturn
// the status key expires after the lifetime, so a relay that dies leaves no
// allocation behind. A user name's '/', '%', spaces, control and glob
// characters are percent-escaped, so a name cannot forge another key.
//
// The methods never block: events go through a bounded queue to one sender,
// and are dropped (and counted) when Redis cannot keep up.
type Events struct {
	c     *redis.Client
	realm string
	log   *slog.Logger
	q     chan event
	done  chan struct{} // closed when the sender has finished

	mu     sync.RWMutex // guards closed against sends racing Close
	closed bool

	sent, dropped, failed prometheus.Counter
}

// Traffic is an allocation's counters in coturn's terms: received from
// and sent to the client.
type Traffic struct {
	RcvPackets, RcvBytes, SentPackets, SentBytes uint64
}

func (t Traffic) String() string {
	return fmt.Sprintf("rcvp=%d, rcvb=%d, sentp=%d, sentb=%d", t.RcvPackets, t.RcvBytes, t.SentPackets, t.SentBytes)
}

type event struct {
	key      string // .../allocation/ID/
	status   string // "new", "refreshed", "deleted", or "" for traffic only
	lifetime time.Duration
	traffic  *Traffic
	total    bool
}

// EventQueue is how many events wait for Redis before new ones are dropped.
const EventQueue = 4096

// NewEvents starts the event sender for realm on c. Close stops it.
func NewEvents(c *redis.Client, realm string, log *slog.Logger) (*Events, error) {
	if c == nil {
		return nil, fmt.Errorf("allocation events need a Redis store (redis://...)")
	}
	if err := CheckRealm(realm); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Events{c: c, realm: realm, log: log, q: make(chan event, EventQueue), done: make(chan struct{}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "turnwall_relay_store_events_sent_total",
			Help: "Allocation events written to Redis (coturn statsdb form)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "turnwall_relay_store_events_dropped_total",
			Help: "Allocation events dropped because the queue to Redis was full."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "turnwall_relay_store_events_failed_total",
			Help: "Allocation events Redis did not take."}),
	}
	go e.run()
	return e, nil
}

// Events returns the allocation event sender of a Redis store.
func (s *Store) Events() (*Events, error) {
	if s.Client() == nil {
		return nil, fmt.Errorf("allocation events need a Redis store; %s is %s", s.where, s.Kind())
	}
	return NewEvents(s.Client(), s.realm, s.log)
}

// Collectors returns the event sender's metrics.
func (e *Events) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.sent, e.dropped, e.failed}
}

// escapeKeyPart percent-escapes what could change a key's structure or
// match a subscriber's pattern.
func escapeKeyPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("/%*?[]\\", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// StatusKey is the key of an allocation's status.
func (e *Events) StatusKey(user string, id uint64) string {
	return e.base(user, id) + "status"
}

func (e *Events) base(user string, id uint64) string {
	return fmt.Sprintf("turn/realm/%s/user/%s/allocation/%018d/", e.realm, escapeKeyPart(user), id)
}

func (e *Events) send(ev event) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return
	}
	select {
	case e.q <- ev:
	default:
		e.dropped.Inc()
	}
}

// Allocated reports a new allocation.
func (e *Events) Allocated(user string, id uint64, lifetime time.Duration) {
	e.send(event{key: e.base(user, id), status: "new", lifetime: lifetime})
}

// Refreshed reports a refreshed allocation.
func (e *Events) Refreshed(user string, id uint64, lifetime time.Duration) {
	e.send(event{key: e.base(user, id), status: "refreshed", lifetime: lifetime})
}

// Traffic reports an allocation's traffic since the last report.
func (e *Events) Traffic(user string, id uint64, t Traffic) {
	e.send(event{key: e.base(user, id), traffic: &t})
}

// Deleted reports the end of an allocation and its total traffic.
func (e *Events) Deleted(user string, id uint64, total Traffic) {
	e.send(event{key: e.base(user, id), status: "deleted", traffic: &total, total: true})
}

// AllocationCreated, AllocationRefreshed and AllocationDeleted make Events
// the relay's Config.Events. The relay does not count an allocation's
// traffic per allocation, so its deletion carries no total_traffic.
func (e *Events) AllocationCreated(user string, id uint64, lifetime time.Duration) {
	e.Allocated(user, id, lifetime)
}

// AllocationRefreshed reports a refresh.
func (e *Events) AllocationRefreshed(user string, id uint64, lifetime time.Duration) {
	e.Refreshed(user, id, lifetime)
}

// AllocationDeleted reports a deletion, without traffic.
func (e *Events) AllocationDeleted(user string, id uint64) {
	e.send(event{key: e.base(user, id), status: "deleted"})
}

func (e *Events) run() {
	defer close(e.done)
	failing := false
	for ev := range e.q {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		pipe := e.c.Pipeline()
		status := ev.key + "status"
		switch ev.status {
		case "new", "refreshed":
			v := fmt.Sprintf("%s lifetime=%d", ev.status, int64(ev.lifetime/time.Second))
			ttl := ev.lifetime
			if ttl < time.Second {
				ttl = time.Second
			}
			pipe.Set(ctx, status, v, ttl)
			pipe.Publish(ctx, status, v)
		case "deleted":
			pipe.Del(ctx, status)
			pipe.Publish(ctx, status, "deleted")
		}
		if ev.traffic != nil {
			k := ev.key + "traffic"
			if ev.total {
				k = ev.key + "total_traffic"
			}
			pipe.Publish(ctx, k, ev.traffic.String())
		}
		_, err := pipe.Exec(ctx)
		cancel()
		switch {
		case err != nil:
			e.failed.Inc()
			if !failing {
				e.log.Warn("allocation events: Redis did not take them", "error", err.Error())
			}
			failing = true
		default:
			e.sent.Inc()
			failing = false
		}
	}
}

// Close sends what is queued and stops the sender.
func (e *Events) Close() {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.q)
	}
	e.mu.Unlock()
	<-e.done
}
