package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// ErrQuota is returned by Quota.Acquire when a fleet-wide limit is reached.
type ErrQuota struct {
	Which string // "user" or "total"
	Limit int
}

func (e *ErrQuota) Error() string {
	return fmt.Sprintf("fleet %s quota of %d allocations reached", e.Which, e.Limit)
}

// QuotaOptions configure a fleet-wide Quota.
type QuotaOptions struct {
	// UserLimit and TotalLimit are the concurrent allocations allowed per
	// user and in total across every relay sharing the Redis database (0:
	// unlimited).
	UserLimit, TotalLimit int
	// Lease is how long an allocation stays counted without being
	// refreshed: a relay that dies frees its allocations within Lease.
	// Default 30 s; Refresh renews every Lease/3.
	Lease time.Duration
	// Node names this relay in allocation records. Default: host name,
	// process ID and a random suffix.
	Node string
	// FailClosed refuses allocations while Redis cannot be reached. By
	// default they are admitted (each relay's own quotas still hold) and
	// counted in turnwall_relay_fleet_quota_errors_total.
	FailClosed bool
	// Timeout bounds one Redis round trip. Default 2 s.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Quota shares allocation limits between relays through Redis. Each
// allocation is a member of a sorted set per user and of one for the realm,
// scored by its lease's end (Redis's clock, so relays' clocks may differ);
// a Lua script drops expired members, checks both limits and adds the new
// one atomically. Keys: turnwall/{REALM}/quota/user/USER and
// turnwall/{REALM}/quota/total (one hash slot, so Redis Cluster works).
type Quota struct {
	c    *redis.Client
	o    QuotaOptions
	keys quotaKeys
	log  *slog.Logger

	mu   sync.Mutex
	held map[quotaMember]struct{}

	errors, lost prometheus.Counter
	rejections   *prometheus.CounterVec
}

type quotaMember struct{ user, id string }

type quotaKeys struct{ realm string }

func (k quotaKeys) user(u string) string { return "turnwall/{" + k.realm + "}/quota/user/" + u }
func (k quotaKeys) total() string        { return "turnwall/{" + k.realm + "}/quota/total" }

// NewQuota returns a fleet quota for realm on client c.
func NewQuota(c *redis.Client, realm string, o QuotaOptions) (*Quota, error) {
	if c == nil {
		return nil, errors.New("fleet quotas need a Redis store (redis://...)")
	}
	if err := CheckRealm(realm); err != nil {
		return nil, err
	}
	if o.UserLimit < 0 || o.TotalLimit < 0 {
		return nil, errors.New("fleet quota limits must be 0 (unlimited) or more")
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Lease < 300*time.Millisecond {
		return nil, fmt.Errorf("fleet quota lease %v is too short; at least 300ms", o.Lease)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Node == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		o.Node = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Quota{
		c: c, o: o, keys: quotaKeys{realm}, log: o.Logger, held: map[quotaMember]struct{}{},
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "turnwall_relay_fleet_quota_errors_total",
			Help: "Fleet quota operations that failed to reach Redis."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "turnwall_relay_fleet_quota_leases_lost_total",
			Help: "Allocations whose fleet lease had expired when refreshed (re-added)."}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "turnwall_relay_fleet_quota_rejections_total",
			Help: "Allocations refused by a fleet-wide quota, by quota (user or total)."}, []string{"quota"}),
	}, nil
}

// Quota returns a fleet quota on a Redis store's server.
func (s *Store) Quota(o QuotaOptions) (*Quota, error) {
	if s.Client() == nil {
		return nil, fmt.Errorf("fleet quotas need a Redis store; %s is %s", s.where, s.Kind())
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	return NewQuota(s.Client(), s.realm, o)
}

// Collectors returns the quota's metrics.
func (q *Quota) Collectors() []prometheus.Collector {
	return []prometheus.Collector{q.errors, q.lost, q.rejections}
}

// acquireScript: KEYS[1] user set, KEYS[2] total set; ARGV: member, lease
// ms, user limit, total limit. Returns 1 (added or already held), -1 (user
// quota), -2 (total quota).
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  local ul = tonumber(ARGV[3])
  local tl = tonumber(ARGV[4])
  if ul > 0 and redis.call('ZCARD', KEYS[1]) >= ul then return -1 end
  if tl > 0 and redis.call('ZCARD', KEYS[2]) >= tl then return -2 end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
redis.call('PEXPIRE', KEYS[2], lease * 2)
return 1
`)

// refreshScript: KEYS[1] user set, KEYS[2] total set; ARGV: member, lease
// ms. Returns 1, or 0 when the lease had expired (the member is re-added).
var refreshScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local kept = 1
if s == false or tonumber(s) <= now then kept = 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
redis.call('PEXPIRE', KEYS[2], lease * 2)
return kept
`)

func (q *Quota) member(allocID string) string { return q.o.Node + "/" + allocID }

// Acquire counts allocation allocID of user against the fleet's limits. It
// returns a release function (call it when the allocation ends; it is safe
// to call more than once), or *ErrQuota when a limit is reached. When Redis
// cannot be reached the allocation is admitted (or, with FailClosed,
// refused with the Redis error).
func (q *Quota) Acquire(ctx context.Context, user, allocID string) (release func(), err error) {
	m := quotaMember{user, allocID}
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	res, err := acquireScript.Run(ctx, q.c, []string{q.keys.user(user), q.keys.total()},
		q.member(allocID), q.o.Lease.Milliseconds(), q.o.UserLimit, q.o.TotalLimit).Int()
	switch {
	case err != nil:
		q.errors.Inc()
		q.log.Warn("fleet quota: Redis unreachable", "error", err.Error(), "fail_closed", q.o.FailClosed)
		if q.o.FailClosed {
			return nil, fmt.Errorf("fleet quota: %w", err)
		}
	case res == -1:
		q.rejections.WithLabelValues("user").Inc()
		return nil, &ErrQuota{Which: "user", Limit: q.o.UserLimit}
	case res == -2:
		q.rejections.WithLabelValues("total").Inc()
		return nil, &ErrQuota{Which: "total", Limit: q.o.TotalLimit}
	}
	q.mu.Lock()
	q.held[m] = struct{}{}
	q.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { q.release(m) }) }, nil
}

func (q *Quota) release(m quotaMember) {
	q.mu.Lock()
	delete(q.held, m)
	q.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), q.o.Timeout)
	defer cancel()
	pipe := q.c.TxPipeline()
	pipe.ZRem(ctx, q.keys.user(m.user), q.member(m.id))
	pipe.ZRem(ctx, q.keys.total(), q.member(m.id))
	if _, err := pipe.Exec(ctx); err != nil {
		// The lease frees it.
		q.errors.Inc()
		q.log.Warn("fleet quota: release failed; the lease will free it", "error", err.Error())
	}
}

// Held is the number of allocations this relay holds.
func (q *Quota) Held() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.held)
}

// RefreshOnce renews the leases of every allocation this relay holds.
func (q *Quota) RefreshOnce(ctx context.Context) error { return q.refresh(ctx, true) }

func (q *Quota) refresh(ctx context.Context, retry bool) error {
	q.mu.Lock()
	held := make([]quotaMember, 0, len(q.held))
	for m := range q.held {
		held = append(held, m)
	}
	q.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	pipe := q.c.Pipeline()
	cmds := make([]*redis.Cmd, len(held))
	for i, m := range held {
		cmds[i] = refreshScript.Run(ctx, pipe, []string{q.keys.user(m.user), q.keys.total()}, q.member(m.id), q.o.Lease.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		if retry && isNoScript(err) {
			// The pipeline ran EVALSHA on a server without the script
			// (restarted, flushed): load it and go again.
			if lerr := refreshScript.Load(ctx, q.c).Err(); lerr == nil {
				return q.refresh(ctx, false)
			}
		}
		q.errors.Inc()
		return err
	}
	for _, c := range cmds {
		if n, err := c.Int(); err == nil && n == 0 {
			q.lost.Inc()
		}
	}
	return nil
}

func isNoScript(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && len(re.Error()) >= 8 && re.Error()[:8] == "NOSCRIPT"
}

// Refresh renews the leases every Lease/3 until ctx ends. When it stops (a
// relay killed, or ctx cancelled without releasing), the allocations it held
// are freed for the fleet within Lease.
func (q *Quota) Refresh(ctx context.Context) error {
	t := time.NewTicker(q.o.Lease / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		err := q.RefreshOnce(ctx)
		switch {
		case err != nil && !failing:
			failing = true
			q.log.Error("fleet quota: cannot renew leases; other relays will stop counting these allocations",
				"error", err.Error(), "held", q.Held())
		case err == nil && failing:
			failing = false
			q.log.Info("fleet quota: leases renewed again", "held", q.Held())
		}
	}
}

// Count returns the fleet's live allocations for user ("" for the total).
func (q *Quota) Count(ctx context.Context, user string) (int64, error) {
	key := q.keys.total()
	if user != "" {
		key = q.keys.user(user)
	}
	t, err := q.c.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	return q.c.ZCount(ctx, key, fmt.Sprint(t.UnixMilli()+1), "+inf").Result()
}
