package relay

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// keyedBuckets is a token bucket per key (a source address, a user, a log
// event and source), with bounded memory: at most max keys are tracked; when
// the map is full, keys whose bucket has refilled and that have nothing to
// report are forgotten (at most once a second), and meanwhile new keys share one overflow
// bucket (so a flood from many sources costs the overflow bucket, never the
// buckets of keys already tracked, nor memory).
type keyedBuckets[K comparable] struct {
	rate, burst float64
	max         int

	mu        sync.Mutex
	m         map[K]*tokens
	overflow  tokens
	lastSweep time.Time
}

type tokens struct {
	n          float64
	last       time.Time
	suppressed int // events refused since the last one that passed
}

func newKeyedBuckets[K comparable](rate, burst float64, max int) *keyedBuckets[K] {
	return &keyedBuckets[K]{rate: rate, burst: burst, max: max, m: map[K]*tokens{}, overflow: tokens{n: burst}}
}

func (b *keyedBuckets[K]) refill(t *tokens, now time.Time) {
	if !t.last.IsZero() {
		t.n = min(b.burst, t.n+now.Sub(t.last).Seconds()*b.rate)
	}
	t.last = now
}

// get returns key's bucket, refilled; with mu held.
func (b *keyedBuckets[K]) get(key K, now time.Time, create bool) *tokens {
	t, ok := b.m[key]
	if !ok {
		if !create {
			return nil
		}
		if len(b.m) >= b.max && now.Sub(b.lastSweep) >= time.Second { // at most one sweep a second: a flood of new keys costs no more
			b.lastSweep = now
			for k, x := range b.m {
				if x.suppressed == 0 && x.n+now.Sub(x.last).Seconds()*b.rate >= b.burst {
					delete(b.m, k)
				}
			}
		}
		if len(b.m) >= b.max {
			t = &b.overflow
		} else {
			t = &tokens{n: b.burst, last: now}
			b.m[key] = t
		}
	}
	b.refill(t, now)
	return t
}

// take takes a token for key: ok when there was one; suppressed is the
// number of takes refused before this one.
func (b *keyedBuckets[K]) take(key K, now time.Time) (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.get(key, now, true)
	if t.n < 1 {
		t.suppressed++
		return false, 0
	}
	t.n--
	n := t.suppressed
	t.suppressed = 0
	return true, n
}

// empty reports whether key's bucket is exhausted (without taking).
func (b *keyedBuckets[K]) empty(key K, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.get(key, now, false)
	return t != nil && t.n < 1
}

// spend takes a token for key if there is one.
func (b *keyedBuckets[K]) spend(key K, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.get(key, now, true); t.n >= 1 {
		t.n--
	}
}

func (b *keyedBuckets[K]) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// sourceOf is the IP address of a client (unmapped), or the zero address.
func sourceOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// Bounds of the per-key state.
const (
	maxThrottleKeys = 1 << 16
	maxLogKeys      = 1 << 12
)

// authThrottle slows down password guessing: failed authentications are
// counted per source address and per user; once either's bucket is empty,
// requests with credentials from that source or for that user are refused
// without being verified until it refills.
type authThrottle struct {
	bySource *keyedBuckets[netip.Addr]
	byUser   *keyedBuckets[string]
}

func newAuthThrottle(l Limits) *authThrottle {
	if l.AuthFailRate <= 0 {
		return nil
	}
	burst := float64(l.AuthFailBurst)
	if burst <= 0 {
		burst = DefaultAuthFailBurst
	}
	return &authThrottle{
		bySource: newKeyedBuckets[netip.Addr](l.AuthFailRate, burst, maxThrottleKeys),
		byUser:   newKeyedBuckets[string](l.AuthFailRate, burst, maxThrottleKeys),
	}
}

// Throttle reasons (metric labels).
const (
	throttleSource = "source"
	throttleUser   = "user"
)

// check says why a request from src for user must not be verified now, or "".
func (t *authThrottle) check(src netip.Addr, user string, now time.Time) string {
	if t == nil {
		return ""
	}
	if t.bySource.empty(src, now) {
		return throttleSource
	}
	if user != "" && t.byUser.empty(user, now) {
		return throttleUser
	}
	return ""
}

// failed counts a failed authentication.
func (t *authThrottle) failed(src netip.Addr, user string, now time.Time) {
	if t == nil {
		return
	}
	t.bySource.spend(src, now)
	if user != "" {
		t.byUser.spend(user, now)
	}
}
