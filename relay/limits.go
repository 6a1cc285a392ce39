package relay

import (
	"context"
	"net"
	"sync"
	"time"
)

// Limits bound what clients may take from the relay.
type Limits struct {
	// UserQuota is the most concurrent allocations one user may hold (the
	// user part of a REST API username, or a static user); 0 is unlimited.
	UserQuota int
	// TotalQuota is the most concurrent allocations in total; 0 is unlimited.
	TotalQuota int
	// MaxLifetime caps the lifetime granted by one Allocate or Refresh
	// (RFC 8656 section 7.2; coturn's max-allocate-lifetime). 0: 1 hour.
	MaxLifetime time.Duration
	// MaxBPS caps each allocation's relayed payload, in bits per second and
	// per direction; packets over it are dropped (UDP) or delayed (TCP). 0
	// is unlimited.
	MaxBPS int64
	// MaxTCPConns caps concurrent TCP and TLS client connections; 0 is
	// unlimited.
	MaxTCPConns int
	// MaxTCPConnsPerSource caps concurrent TCP and TLS connections from one
	// source address; 0 is unlimited.
	MaxTCPConnsPerSource int
	// MaxTCPConnsPerUser caps concurrent TCP and TLS connections that
	// authenticated as one user; 0 is unlimited.
	MaxTCPConnsPerUser int
	// UnallocatedTimeout is how long a TCP or TLS connection may stay open
	// without holding an allocation (TLS handshake, challenge, and refused
	// Allocates included), from being accepted or from losing its allocation.
	// 0: DefaultUnallocatedTimeout.
	UnallocatedTimeout time.Duration
	// AuthFailRate throttles failed authentications per source address and
	// per user: after a burst of AuthFailBurst failures, AuthFailRate a
	// second; requests with credentials over it are not verified (429 over
	// TCP and TLS, dropped over UDP). 0 is unlimited.
	AuthFailRate  float64
	AuthFailBurst int // 0: DefaultAuthFailBurst
	// MaxQueueDelay bounds how long a relayed UDP datagram may wait in a
	// socket's receive queue once the relay is overloaded (every datagram
	// read for 5 times this long waited longer): older ones are dropped
	// rather than relayed late
	// (turnwall_relay_shed_packets_total{reason="queue_delay"}). It applies
	// to clients' ChannelData and to peers' datagrams, with the data plane
	// (Linux). 0: DefaultMaxQueueDelay; NoQueueDelayBound: nothing is
	// shed, however long it waited.
	MaxQueueDelay time.Duration
}

// Default limits, the same as the coturn backend's defaults.
const (
	DefaultUserQuota   = 12
	DefaultTotalQuota  = 1000
	DefaultMaxLifetime = time.Hour
	DefaultMaxBPS      = 4_000_000
	maxLifetimeCeiling = time.Hour // pion/turn never grants more

	DefaultMaxTCPConns          = 4096
	DefaultMaxTCPConnsPerSource = 256
	DefaultMaxTCPConnsPerUser   = 64
	DefaultUnallocatedTimeout   = 5 * time.Second
	DefaultAuthFailRate         = 2.0
	DefaultAuthFailBurst        = 20
	// Real-time media has no use for a datagram that waited longer in the
	// relay: a jitter buffer holds some tens of milliseconds in all, and
	// the datagram crosses the relay twice on a round trip.
	DefaultMaxQueueDelay = 20 * time.Millisecond
	// NoQueueDelayBound as Limits.MaxQueueDelay turns shedding off.
	NoQueueDelayBound time.Duration = -1
)

// DefaultLimits are the limits `turnwall relay` runs with unless told
// otherwise.
func DefaultLimits() Limits {
	return Limits{UserQuota: DefaultUserQuota, TotalQuota: DefaultTotalQuota, MaxLifetime: DefaultMaxLifetime,
		MaxBPS: DefaultMaxBPS, MaxTCPConns: DefaultMaxTCPConns, MaxTCPConnsPerSource: DefaultMaxTCPConnsPerSource,
		MaxTCPConnsPerUser: DefaultMaxTCPConnsPerUser, UnallocatedTimeout: DefaultUnallocatedTimeout,
		AuthFailRate: DefaultAuthFailRate, AuthFailBurst: DefaultAuthFailBurst}
}

// Quota is a quota beyond the relay's own (a fleet-wide one kept in a
// shared store). The relay asks it on every Allocate that passed its own
// limits, with the user (the user part of a REST username, or the static
// user) and an ID unique to this allocation attempt; an error refuses the
// allocation with 486 Allocation Quota Reached. The returned release is
// called once when the allocation ends, or when it was never created (the
// relay ran out of ports, the client went away); it must not block for long.
// Acquire gets a deadline of QuotaTimeout.
type Quota interface {
	Acquire(ctx context.Context, user, allocID string) (release func(), err error)
}

// QuotaTimeout bounds one Quota.Acquire.
const QuotaTimeout = time.Second

// quota counts allocations per user and in total. The TURN engine asks before
// creating an allocation (reserve) and reports creations and deletions; a
// reservation whose allocation was never created (the relay ran out of
// ports) is released after a few seconds.
type quota struct {
	user, total int

	mu      sync.Mutex
	byUser  map[string]int
	all     int
	pending map[string]reservation // client address -> reservation
	active  map[string]string      // 5-tuple -> user
	held    map[string]func()      // 5-tuple -> the external quota's release
}

type reservation struct {
	user    string
	at      time.Time
	release func() // the external quota's, or nil
}

const reservationTimeout = 5 * time.Second

func newQuota(user, total int) *quota {
	return &quota{user: user, total: total, byUser: map[string]int{}, pending: map[string]reservation{}, active: map[string]string{}, held: map[string]func(){}}
}

func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.Network() + "/" + a.String()
}

func tupleKey(src, dst net.Addr) string { return addrKey(src) + "|" + addrKey(dst) }

// reserve takes one allocation for user from src, or says which quota is
// full ("user" or "total").
func (q *quota) reserve(user string, src net.Addr, now time.Time) (full string) {
	var external []func()
	defer func() { // outside the lock
		for _, f := range external {
			f()
		}
	}()
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, r := range q.pending {
		if now.Sub(r.at) > reservationTimeout {
			delete(q.pending, k)
			q.release(r.user)
			if r.release != nil {
				external = append(external, r.release)
			}
		}
	}
	switch {
	case q.total > 0 && q.all >= q.total:
		return "total"
	case q.user > 0 && q.byUser[user] >= q.user:
		return "user"
	}
	k := addrKey(src)
	if old, ok := q.pending[k]; ok { // a retransmitted Allocate that failed before
		q.release(old.user)
		if old.release != nil {
			external = append(external, old.release)
		}
	}
	q.pending[k] = reservation{user: user, at: now}
	q.all++
	q.byUser[user]++
	return ""
}

// unreserve undoes the reservation for src (the external quota refused).
func (q *quota) unreserve(src net.Addr) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := addrKey(src)
	if r, ok := q.pending[k]; ok {
		delete(q.pending, k)
		q.release(r.user)
	}
}

// attach keeps the external quota's release with the reservation for src;
// it is called once, whatever becomes of the reservation.
func (q *quota) attach(src net.Addr, release func()) {
	if release == nil {
		return
	}
	var once sync.Once
	f := func() { once.Do(release) }
	q.mu.Lock()
	defer q.mu.Unlock()
	k := addrKey(src)
	if r, ok := q.pending[k]; ok {
		r.release = f
		q.pending[k] = r
		// A reservation never turned into an allocation releases the
		// external quota when it expires, even if no Allocate follows.
		time.AfterFunc(reservationTimeout+100*time.Millisecond, func() { q.expire(k, r.at) })
		return
	}
	go f() // the reservation is gone already
}

// expire drops the reservation k made at if it is still pending.
func (q *quota) expire(k string, at time.Time) {
	q.mu.Lock()
	r, ok := q.pending[k]
	if !ok || !r.at.Equal(at) {
		q.mu.Unlock()
		return
	}
	delete(q.pending, k)
	q.release(r.user)
	q.mu.Unlock()
	if r.release != nil {
		r.release()
	}
}

// releaseAll releases every external quota held (the relay stops).
func (q *quota) releaseAll() {
	q.mu.Lock()
	var fs []func()
	for k, f := range q.held {
		fs = append(fs, f)
		delete(q.held, k)
	}
	for _, r := range q.pending {
		if r.release != nil {
			fs = append(fs, r.release)
			r.release = nil
		}
	}
	q.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func (q *quota) release(user string) {
	q.all--
	if q.byUser[user]--; q.byUser[user] <= 0 {
		delete(q.byUser, user)
	}
}

// created turns the reservation for src into an allocation.
func (q *quota) created(src, dst net.Addr, user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := addrKey(src)
	if r, ok := q.pending[k]; ok {
		delete(q.pending, k)
		if r.user != user { // cannot happen: same request
			q.release(r.user)
			q.all++
			q.byUser[user]++
		}
		if r.release != nil {
			q.held[tupleKey(src, dst)] = r.release
		}
	} else {
		q.all++
		q.byUser[user]++
	}
	q.active[tupleKey(src, dst)] = user
}

// deleted releases an allocation.
func (q *quota) deleted(src, dst net.Addr) {
	q.mu.Lock()
	k := tupleKey(src, dst)
	if user, ok := q.active[k]; ok {
		delete(q.active, k)
		q.release(user)
	}
	f := q.held[k]
	delete(q.held, k)
	q.mu.Unlock()
	if f != nil {
		f()
	}
}

// owner returns the user holding the allocation on a 5-tuple.
func (q *quota) owner(src, dst net.Addr) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u, ok := q.active[tupleKey(src, dst)]
	return u, ok
}

// counts reports allocations in total and of one user, reservations included.
func (q *quota) counts(user string) (all, mine int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.all, q.byUser[user]
}

// bucket is a token bucket of bytes.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(bps int64) *bucket {
	if bps <= 0 {
		return nil
	}
	rate := float64(bps) / 8
	burst := rate // one second of traffic absorbs key frames and jitter
	if burst < 64<<10 {
		burst = 64 << 10
	}
	return &bucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

func (b *bucket) refill(now time.Time) {
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
}

// allow takes n bytes if the bucket holds them.
func (b *bucket) allow(n int) bool {
	if b == nil {
		return true
	}
	return b.allowAt(n, time.Now())
}

// allowAt is allow at a time the caller read (once for a batch of
// datagrams).
func (b *bucket) allowAt(n int, now time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.refill(now)
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// wait takes n bytes, returning how long to wait before they may be sent
// (for TCP, which must not drop).
func (b *bucket) wait(n int) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// shedder decides which datagrams a reader sheds for having waited too
// long in a socket's queue. One late datagram is no overload (the reader
// was descheduled a moment, say): the reader starts shedding only once
// every datagram it read for a whole interval waited longer than the
// target, as a queue that no longer drains does, and stops once none has
// for an interval. While shedding it drops exactly the datagrams over the
// target, so what it relays has waited at most that long. (CoDel's idea of
// a standing queue, without its drop schedule: a relay sheds whole
// backlogs.)
type shedder struct {
	target, interval      int64 // ns
	firstAbove, lastAbove int64 // Unix ns; 0: none
	dropping              bool
}

func newShedder(target time.Duration) shedder {
	return shedder{target: int64(target), interval: int64(target) * shedIntervals}
}

// shedIntervals: the interval in targets (20 ms: 100 ms, as CoDel's).
const shedIntervals = 5

// late reports whether a datagram stamped at (Unix ns; 0: unknown) and
// read at now must be shed.
func (s *shedder) late(now, at int64) bool {
	if at == 0 || s.target <= 0 {
		return false
	}
	if now-at <= s.target {
		if s.dropping && now-s.lastAbove >= s.interval {
			s.dropping = false
		}
		s.firstAbove = 0
		return false
	}
	s.lastAbove = now
	if s.dropping {
		return true
	}
	if s.firstAbove == 0 {
		s.firstAbove = now
	} else if now-s.firstAbove >= s.interval {
		s.dropping = true
		return true
	}
	return false
}
