package relay

import (
	"crypto/subtle"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/turnwall/turnwall/relay/creds"
)

// AuthFailure says why a request's credentials were refused (a metric label).
type AuthFailure string

// Authentication failures. Requests without credentials are not failures:
// they are the challenge every client's first request gets.
const (
	authOK          AuthFailure = ""
	AuthMalformed   AuthFailure = "malformed"     // MESSAGE-INTEGRITY without USERNAME, REALM or NONCE
	AuthWrongRealm  AuthFailure = "wrong-realm"   // REALM is not the relay's
	AuthUnknownUser AuthFailure = "unknown-user"  // neither a static user nor a REST API username
	AuthNoSecret    AuthFailure = "no-secret"     // a REST API username, but no shared secret is configured
	AuthExpired     AuthFailure = "expired"       // a REST API username past its expiry
	AuthBadPassword AuthFailure = "bad-integrity" // MESSAGE-INTEGRITY does not match: wrong password or secret
)

// Auth authenticates TURN requests with static users and TURN REST API
// shared secrets, in one realm. Users and secrets can be replaced at run time
// (Update), for example to rotate a secret.
type Auth struct {
	realm string
	now   func() time.Time
	state atomic.Pointer[authState]
}

type authState struct {
	users   map[string][]byte // static user -> key
	secrets []string

	// keys remembers which secret's key verified a REST username, for the
	// TURN engine, which asks for one key without showing the message.
	mu   sync.Mutex
	keys map[string][]byte
}

const maxRememberedKeys = 1 << 14

// NewAuth returns an authenticator for realm.
func NewAuth(realm string, users []creds.User, secrets []string) *Auth {
	a := &Auth{realm: realm, now: time.Now}
	a.Update(users, secrets)
	return a
}

// Update replaces the static users and shared secrets.
func (a *Auth) Update(users []creds.User, secrets []string) {
	st := &authState{users: map[string][]byte{}, secrets: append([]string(nil), secrets...), keys: map[string][]byte{}}
	for _, u := range users {
		st.users[u.Name] = u.KeyFor(a.realm)
	}
	a.state.Store(st)
}

// Realm is the relay's realm.
func (a *Auth) Realm() string { return a.realm }

// Counts reports how many static users and shared secrets are configured.
func (a *Auth) Counts() (users, secrets int) {
	st := a.state.Load()
	return len(st.users), len(st.secrets)
}

// candidates returns the user ID and the keys a username may have signed
// with: one for a static user, one per shared secret for a REST username.
func (a *Auth) candidates(st *authState, username string) (string, [][]byte, AuthFailure) {
	if key, ok := st.users[username]; ok {
		return username, [][]byte{key}, authOK
	}
	expiry, user, ok := creds.ParseUsername(username)
	if !ok {
		return "", nil, AuthUnknownUser
	}
	if len(st.secrets) == 0 {
		return "", nil, AuthNoSecret
	}
	if !expiry.After(a.now()) {
		return "", nil, AuthExpired
	}
	if user == "" {
		user = username
	}
	keys := make([][]byte, len(st.secrets))
	for i, s := range st.secrets {
		keys[i] = creds.Key(username, a.realm, creds.Password(s, username))
	}
	return user, keys, authOK
}

// Verify authenticates a decoded request that carries MESSAGE-INTEGRITY. It
// returns the user ID (the static user, or the user part of a REST username)
// and the key that verified the message.
func (a *Auth) Verify(m *stun.Message, src net.Addr) (userID string, key []byte, fail AuthFailure) {
	var username stun.Username
	var realm stun.Realm
	var nonce stun.Nonce
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil || nonce.GetFrom(m) != nil {
		return "", nil, AuthMalformed
	}
	if subtle.ConstantTimeCompare([]byte(realm), []byte(a.realm)) != 1 {
		return "", nil, AuthWrongRealm
	}
	st := a.state.Load()
	userID, keys, fail := a.candidates(st, string(username))
	if fail != authOK {
		return "", nil, fail
	}
	for _, k := range keys {
		if stun.MessageIntegrity(k).Check(m) == nil {
			if len(keys) > 1 {
				st.remember(rememberKey(string(username), src), k)
			}
			return userID, k, authOK
		}
	}
	return "", nil, AuthBadPassword
}

// rememberKey scopes a remembered key to the client that used it, so two
// clients with the same username signing with different secrets (during a
// rotation) do not race.
func rememberKey(username string, src net.Addr) string {
	if src == nil {
		return username
	}
	return username + "\x00" + src.Network() + "\x00" + src.String()
}

func (st *authState) remember(username string, key []byte) {
	st.mu.Lock()
	if len(st.keys) >= maxRememberedKeys {
		clear(st.keys)
	}
	st.keys[username] = key
	st.mu.Unlock()
}

func (st *authState) remembered(username string) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.keys[username]
}

// Handler is the TURN engine's AuthHandler. The engine checks
// MESSAGE-INTEGRITY with the key returned here; with several secrets, the key
// is the one the request guard found to verify this username.
func (a *Auth) Handler(ra *turn.RequestAttributes) (string, []byte, bool) {
	if ra.Realm != a.realm {
		return "", nil, false
	}
	st := a.state.Load()
	userID, keys, fail := a.candidates(st, ra.Username)
	if fail != authOK {
		return "", nil, false
	}
	if len(keys) > 1 {
		if k := st.remembered(rememberKey(ra.Username, ra.SrcAddr)); k != nil {
			return userID, k, true
		}
	}
	return userID, keys[0], true
}
