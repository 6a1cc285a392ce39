// Package store reads TURN credentials and peer lists from a database shared
// with a coturn fleet, in coturn's own schema, and shares allocation quotas
// and allocation events between relays.
//
// A Store is opened on a URL:
//
//	redis://[:password@]host:port/db      coturn's schema.userdb.redis keys
//	rediss://...                          the same over TLS
//	postgres://user:password@host:port/database?sslmode=disable
//	                                      coturn's schema.sql tables
//
// It reads, for one realm, the TURN REST API shared secrets (several at once,
// for rotation), the long-term users (name and MD5 key, as turnadmin writes
// them) and the allowed and denied peer ranges. Watch polls the database
// (every 2 s by default; Redis keyspace notifications make it sooner when the
// server has them on), so a change is seen without restarting the relay. When
// the database cannot be read the last good state stays in force, the outage
// is logged and the metrics say so.
//
// Writers (PutSecret, DeleteSecret, PutUser, DeleteUser) do what coturn's
// turnadmin does, so either tool can manage the same database.
//
// Database peer lists can only narrow what the policy allows: see Bound.
// Feed keeps a relay's credentials and peer bound current; on Redis, Quota
// shares allocation limits, Events publishes allocations in coturn's statsdb
// form and Registry lists the live relays for Try-Alternate.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/relay/creds"
)

// State is what the database holds for the realm, validated. Entries the
// relay cannot use are left out and listed in Invalid.
type State struct {
	// Secrets are the TURN REST API shared secrets, sorted. Every one is
	// accepted; coturn's schema has no order, so credentials may be minted
	// with any of them.
	Secrets []string
	// Users maps long-term user names to their 16-byte MESSAGE-INTEGRITY
	// key, MD5(name:realm:password).
	Users map[string][]byte
	// AllowedPeers and DeniedPeers are coturn's allowed-peer-ip and
	// denied-peer-ip ranges, sorted. See Bound for what they may change.
	AllowedPeers, DeniedPeers []netipx.IPRange
	// Invalid says which entries were left out and why, one line each,
	// sorted, with database text quoted.
	Invalid []string
}

// Empty reports whether the state holds no credential at all: a relay using
// it refuses every client.
func (s State) Empty() bool { return len(s.Secrets) == 0 && len(s.Users) == 0 }

// CredsUsers returns the users in relay/creds's form (name and key),
// sorted by name, for the relay's authentication.
func (s State) CredsUsers() []creds.User {
	out := make([]creds.User, 0, len(s.Users))
	for name, key := range s.Users {
		out = append(out, creds.User{Name: name, Key: bytes.Clone(key)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Fingerprint is a digest of the state, equal for equal states.
func (s State) Fingerprint() string {
	h := sha256.New()
	w := func(tag string, v string) { fmt.Fprintf(h, "%s %d:%s\n", tag, len(v), v) }
	for _, x := range s.Secrets {
		w("s", x)
	}
	names := make([]string, 0, len(s.Users))
	for n := range s.Users {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w("u", n)
		w("k", hex.EncodeToString(s.Users[n]))
	}
	for _, r := range s.AllowedPeers {
		w("a", r.String())
	}
	for _, r := range s.DeniedPeers {
		w("d", r.String())
	}
	for _, x := range s.Invalid {
		w("i", x)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Clone returns a deep copy.
func (s State) Clone() State {
	out := State{
		Secrets:      slices.Clone(s.Secrets),
		AllowedPeers: slices.Clone(s.AllowedPeers),
		DeniedPeers:  slices.Clone(s.DeniedPeers),
		Invalid:      slices.Clone(s.Invalid),
		Users:        make(map[string][]byte, len(s.Users)),
	}
	for n, k := range s.Users {
		out.Users[n] = bytes.Clone(k)
	}
	return out
}

// raw is what a backend read, before validation.
type raw struct {
	secrets []string
	users   map[string]string // name -> hex key
	allowed []string
	denied  []string
}

// validate turns raw database text into a State.
func validate(r raw) State {
	st := State{Users: map[string][]byte{}}
	var invalid []string
	bad := func(format string, args ...any) { invalid = append(invalid, fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	for _, s := range r.secrets {
		switch {
		case len(s) < creds.MinSecretLen:
			bad("secret of %d bytes: shorter than %d, not used (a guessable secret lets anyone mint credentials)", len(s), creds.MinSecretLen)
		case strings.IndexFunc(s, unicode.IsControl) >= 0:
			bad("secret with control characters, not used")
		case !seen[s]:
			seen[s] = true
			st.Secrets = append(st.Secrets, s)
		}
	}
	sort.Strings(st.Secrets)
	for name, hexKey := range r.users {
		if err := CheckUserName(name); err != nil {
			bad("user %q: %v", name, err)
			continue
		}
		key, err := ParseKey(hexKey)
		if err != nil {
			bad("user %q: %v", name, err)
			continue
		}
		st.Users[name] = key
	}
	parse := func(kind string, in []string) []netipx.IPRange {
		var b netipx.IPSetBuilder
		for _, s := range in {
			rg, err := ParseRange(s)
			if err != nil {
				bad("%s %q: %v", kind, s, err)
				continue
			}
			b.AddRange(rg)
		}
		set, _ := b.IPSet()
		return set.Ranges()
	}
	st.AllowedPeers = parse("allowed-peer-ip", r.allowed)
	st.DeniedPeers = parse("denied-peer-ip", r.denied)
	sort.Strings(invalid)
	st.Invalid = invalid
	return st
}

// MaxNameLen is the longest user name coturn's schema holds (varchar(512)).
const MaxNameLen = 512

// CheckUserName says why name cannot be a long-term user, or nil.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("user name of %d bytes; at most %d", len(name), MaxNameLen)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("the name has spaces or control characters")
	}
	if _, _, rest := creds.ParseUsername(name); rest {
		return errors.New("the name looks like a TURN REST API username (digits, then ':'); long-term names need a letter first")
	}
	return nil
}

// ParseKey reads a long-term key as coturn stores it: 32 hex digits, the MD5
// of name:realm:password. coturn's SHA-256 and longer keys are refused: the
// relay uses the RFC 8489 MD5 key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if len(s) != 32 {
		return nil, fmt.Errorf("key of %d hex digits; the relay uses MD5 keys of 32 (turnadmin -a without --sha256)", len(s))
	}
	key, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("key is not hexadecimal")
	}
	return key, nil
}

// ParseRange reads one peer range as coturn writes it: an address, a range
// "first-last", or a prefix "addr/bits".
func ParseRange(s string) (netipx.IPRange, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netipx.IPRange{}, errors.New("not an address, a range first-last or a prefix")
		}
		return netipx.RangeOfPrefix(p.Masked()), nil
	}
	if first, last, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" {
			return netipx.IPRange{}, errors.New("not an address, a range first-last or a prefix")
		}
		r := netipx.IPRangeFrom(a.Unmap(), b.Unmap())
		if !r.IsValid() {
			return netipx.IPRange{}, errors.New("the range's first address is after its last, or the families differ")
		}
		return r, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netipx.IPRange{}, errors.New("not an address, a range first-last or a prefix")
	}
	return netipx.IPRangeFrom(a.Unmap(), a.Unmap()), nil
}

// backend is one database kind.
type backend interface {
	kind() string
	load(ctx context.Context) (raw, error)
	putSecret(ctx context.Context, secret string) error
	deleteSecret(ctx context.Context, secret string) error
	putUser(ctx context.Context, name, hexKey string) error
	deleteUser(ctx context.Context, name string) error
	// notify returns a channel that receives when the database says
	// something changed, or nil when it cannot say.
	notify(ctx context.Context) <-chan struct{}
	close() error
}

// Options tune Open. The zero value is usable.
type Options struct {
	// Logger receives outages, recoveries and invalid entries. Default:
	// discard.
	Logger *slog.Logger
	// Timeout bounds one read or write of the database. Default 5 s.
	Timeout time.Duration
}

// DefaultInterval is how often Watch polls the database.
const DefaultInterval = 2 * time.Second

// Store is an open credential store for one realm. It is safe for
// concurrent use.
type Store struct {
	b       backend
	realm   string
	where   string // the URL without its password
	log     *slog.Logger
	timeout time.Duration
	m       *metrics

	mu      sync.Mutex
	state   State
	fp      string
	down    bool
	lastLog time.Time
	invalid string // fingerprint of the last logged Invalid list
}

// Open connects to the store at rawURL for realm, checks the schema and
// reads the state once. A bad URL, an unreachable server, a wrong password
// or a missing table is an error that says what to do.
func Open(ctx context.Context, rawURL, realm string, opts Options) (*Store, error) {
	if err := CheckRealm(realm); err != nil {
		return nil, err
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{realm: realm, where: u.Redacted(), log: opts.Logger, timeout: opts.Timeout, m: newMetrics()}
	octx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	switch u.Scheme {
	case "redis", "rediss":
		s.b, err = openRedis(octx, u, realm, opts.Timeout)
	default:
		s.b, err = openPostgres(octx, u, realm, opts.Timeout)
	}
	if err != nil {
		return nil, err
	}
	st, err := s.read(octx)
	if err != nil {
		s.b.close()
		return nil, fmt.Errorf("store %s: %w", s.where, err)
	}
	s.accept(st)
	if st.Empty() {
		s.log.Warn("the store holds no shared secret and no user for the realm: every client is refused until some are added",
			"store", s.where, "realm", realm)
	}
	return s, nil
}

// CheckRealm says why realm cannot name a store's realm, or nil.
func CheckRealm(realm string) error {
	switch {
	case realm == "":
		return errors.New("store: the realm is empty; the relay's realm (relay.NAME.realm) is needed")
	case len(realm) > 127:
		return fmt.Errorf("store: realm of %d bytes; coturn's schema holds at most 127", len(realm))
	case strings.ContainsAny(realm, "/*?[]\\") || strings.IndexFunc(realm, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("store: realm %q has a space, a control character, '/', '\\' or a glob character", realm)
	}
	return nil
}

// parseURL checks a store URL's form without connecting.
func parseURL(rawURL string) (*url.URL, error) {
	const forms = "use redis://[:password@]host:port/db or postgres://user:password@host:port/database?sslmode=disable"
	if strings.IndexFunc(rawURL, unicode.IsControl) >= 0 {
		return nil, fmt.Errorf("store URL has control characters; %s", forms)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's error repeats the URL, password included.
		return nil, fmt.Errorf("store URL is not a URL; %s", forms)
	}
	switch u.Scheme {
	case "redis", "rediss", "postgres", "postgresql":
	case "":
		return nil, fmt.Errorf("store URL %q has no scheme; %s", u.Redacted(), forms)
	default:
		return nil, fmt.Errorf("store URL scheme %q is not supported; %s", u.Scheme, forms)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("store URL %q has no host; %s", u.Redacted(), forms)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("store URL %q: port %q is not a number 1-65535", u.Redacted(), port)
		}
	}
	return u, nil
}

// Realm is the store's realm.
func (s *Store) Realm() string { return s.realm }

// Kind is "redis" or "postgres".
func (s *Store) Kind() string { return s.b.kind() }

// String is the store's URL without its password.
func (s *Store) String() string { return s.where }

// Snapshot returns the last state read successfully.
func (s *Store) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Clone()
}

// Up reports whether the last read succeeded.
func (s *Store) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down
}

func (s *Store) read(ctx context.Context) (State, error) {
	r, err := s.b.load(ctx)
	if err != nil {
		return State{}, err
	}
	return validate(r), nil
}

// accept records a successful read; it reports whether the state changed.
func (s *Store) accept(st State) bool {
	fp := st.Fingerprint()
	now := time.Now()
	s.mu.Lock()
	changed := fp != s.fp
	wasDown := s.down
	s.state, s.fp, s.down = st, fp, false
	s.m.success(now, st)
	invalidFP := strings.Join(st.Invalid, "\n")
	logInvalid := invalidFP != s.invalid
	s.invalid = invalidFP
	s.mu.Unlock()
	if wasDown {
		s.log.Info("store reachable again", "store", s.where, "realm", s.realm)
	}
	if logInvalid && len(st.Invalid) > 0 {
		s.log.Warn("store entries not used", "store", s.where, "realm", s.realm, "count", len(st.Invalid), "entries", st.Invalid)
	}
	return changed
}

// outageLogEvery spaces repeated outage lines.
const outageLogEvery = 30 * time.Second

// fail records a failed read: the last good state stays.
func (s *Store) fail(err error) {
	now := time.Now()
	s.mu.Lock()
	first := !s.down
	s.down = true
	logIt := first || now.Sub(s.lastLog) >= outageLogEvery
	if logIt {
		s.lastLog = now
	}
	s.m.failure()
	s.mu.Unlock()
	if logIt {
		s.log.Error("store unreachable: keeping the last credentials read", "store", s.where, "realm", s.realm,
			"error", err.Error(), "first", first)
	}
}

// Reload reads the database now. On success the new state is kept and
// returned with whether it changed; on failure the last good state stays.
func (s *Store) Reload(ctx context.Context) (State, bool, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.read(ctx)
	if err != nil {
		if parent.Err() != nil {
			// The caller gave up (Watch stopping): no outage.
			return s.Snapshot(), false, parent.Err()
		}
		s.fail(err)
		return s.Snapshot(), false, err
	}
	changed := s.accept(st)
	return st.Clone(), changed, nil
}

// Watch reloads the state every interval (DefaultInterval when 0), and at
// once when the database announces a change, until ctx ends; fn gets every
// state that differs from the one before (not the one Open read). fn runs on
// Watch's goroutine. Watch returns ctx's error.
func (s *Store) Watch(ctx context.Context, interval time.Duration, fn func(State)) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notes := s.b.notify(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-notes:
			// A burst of writes (turnadmin, a script) settles first.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if st, changed, err := s.Reload(ctx); err == nil && changed && fn != nil {
			fn(st)
		}
	}
}

// Close releases the connections.
func (s *Store) Close() error { return s.b.close() }

// PutSecret adds a TURN REST API shared secret (turnadmin -s).
func (s *Store) PutSecret(ctx context.Context, secret string) error {
	if len(secret) < creds.MinSecretLen {
		return fmt.Errorf("secret is %d bytes; use at least %d random bytes (for example: openssl rand -base64 32)", len(secret), creds.MinSecretLen)
	}
	if len(secret) > 256 {
		return fmt.Errorf("secret is %d bytes; coturn's schema holds at most 256", len(secret))
	}
	if strings.IndexFunc(secret, unicode.IsControl) >= 0 {
		return errors.New("secret has control characters")
	}
	return s.write(ctx, "put-secret", func(ctx context.Context) error { return s.b.putSecret(ctx, secret) })
}

// DeleteSecret removes a shared secret (turnadmin -X). Removing one that is
// not there is no error.
func (s *Store) DeleteSecret(ctx context.Context, secret string) error {
	return s.write(ctx, "delete-secret", func(ctx context.Context) error { return s.b.deleteSecret(ctx, secret) })
}

// PutUser adds or replaces a long-term user with its 16-byte key,
// creds.Key(name, realm, password) (turnadmin -a).
func (s *Store) PutUser(ctx context.Context, name string, key []byte) error {
	if err := CheckUserName(name); err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if len(key) != 16 {
		return fmt.Errorf("user %q: key of %d bytes; the MD5 key is 16", name, len(key))
	}
	return s.write(ctx, "put-user", func(ctx context.Context) error { return s.b.putUser(ctx, name, hex.EncodeToString(key)) })
}

// DeleteUser removes a long-term user (turnadmin -d). Removing one that is
// not there is no error.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.write(ctx, "delete-user", func(ctx context.Context) error { return s.b.deleteUser(ctx, name) })
}

func (s *Store) write(ctx context.Context, op string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := f(ctx); err != nil {
		s.m.writeErrors.Inc()
		return fmt.Errorf("store %s: %s: %w", s.where, op, err)
	}
	return nil
}
