package store

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/relay/creds"
)

// Feed keeps a relay's credentials and peer bound current with a store:
// the relay's own secrets and users (from files) plus the store's, and the
// policy's peers narrowed by the store's peer lists (Bound). A store outage
// keeps the last good state (Store.Watch).
type Feed struct {
	s      *Store
	policy *netipx.IPSet
	never  *netipx.IPSet
	apply  func(users []creds.User, secrets []string)

	mu          sync.Mutex
	fileSecrets []string
	fileUsers   []creds.User
	bound       atomic.Pointer[netipx.IPSet]
}

// Feed returns a feed that hands the merged credentials to apply (the
// relay's Auth.Update) now and on every change, and bounds the policy's
// peers (nil: none) with the store's lists.
func (s *Store) Feed(policyPeers *netipx.IPSet, apply func(users []creds.User, secrets []string)) *Feed {
	f := &Feed{s: s, policy: policyPeers, never: NeverSet(), apply: apply}
	f.update(s.Snapshot())
	return f
}

// SetFiles replaces the relay's own secrets and users (a reload) and
// applies them with the store's.
func (f *Feed) SetFiles(secrets []string, users []creds.User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fileSecrets, f.fileUsers = append([]string(nil), secrets...), append([]creds.User(nil), users...)
	f.applyLocked(f.s.Snapshot())
}

// Merge returns the relay's own secrets first (the first one mints
// credentials), then the store's not already given; the relay's own users,
// then the store's whose names are not taken.
func Merge(fileSecrets []string, fileUsers []creds.User, st State) ([]string, []creds.User) {
	secrets := append([]string(nil), fileSecrets...)
	seen := map[string]bool{}
	for _, s := range secrets {
		seen[s] = true
	}
	for _, s := range st.Secrets {
		if !seen[s] {
			seen[s] = true
			secrets = append(secrets, s)
		}
	}
	users := append([]creds.User(nil), fileUsers...)
	names := map[string]bool{}
	for _, u := range users {
		names[u.Name] = true
	}
	for _, u := range st.CredsUsers() {
		if !names[u.Name] {
			users = append(users, u)
		}
	}
	return secrets, users
}

func (f *Feed) update(st State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyLocked(st)
}

func (f *Feed) applyLocked(st State) {
	secrets, users := Merge(f.fileSecrets, f.fileUsers, st)
	f.bound.Store(Bound(f.policy, f.never, st.AllowedPeers, st.DeniedPeers))
	f.apply(users, secrets)
}

// Counts reports the credentials in force: secrets and users, the relay's
// own and the store's together.
func (f *Feed) Counts() (secrets, users int) {
	f.mu.Lock()
	s, u := Merge(f.fileSecrets, f.fileUsers, f.s.Snapshot())
	f.mu.Unlock()
	return len(s), len(u)
}

// PeerAllowed is the relay's PeerBound: whether the store's lists leave
// addr among the policy's peers.
func (f *Feed) PeerAllowed(addr netip.Addr) bool {
	return f.bound.Load().Contains(addr.Unmap())
}

// Run follows the store (Store.Watch, every interval; 0: DefaultInterval)
// and applies every change until ctx ends.
func (f *Feed) Run(ctx context.Context, interval time.Duration) error {
	return f.s.Watch(ctx, interval, f.update)
}
