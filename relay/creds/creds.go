// Package creds implements TURN credentials: time-limited TURN REST API
// credentials (draft-uberti-behave-turn-rest: username "expiry:user",
// password base64(HMAC-SHA1(secret, username))), the long-term credential key
// of RFC 8489 (MD5(username:realm:password)), and the files that hold shared
// secrets and static users. Secrets and passwords never come from the policy.
package creds

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RFC 8489 long-term credential key
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// MinSecretLen is the shortest shared secret accepted: REST passwords are an
// HMAC of the secret, so a guessable secret lets anyone mint credentials.
const MinSecretLen = 16

// Password returns the REST API password for username under secret.
func Password(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Generate returns REST API credentials for user valid until expiry.
func Generate(secret, user string, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	return username, Password(secret, username)
}

// ParseUsername splits a REST API username "expiry:user" (or a bare
// "expiry"). ok is false when the username is not in that form.
func ParseUsername(username string) (expiry time.Time, user string, ok bool) {
	ts, user, _ := strings.Cut(username, ":")
	if ts == "" || len(ts) > 12 {
		return time.Time{}, "", false
	}
	for _, r := range ts {
		if r < '0' || r > '9' {
			return time.Time{}, "", false
		}
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(n, 0), user, true
}

// Key is the RFC 8489 long-term credential key, MD5(username:realm:password),
// the MESSAGE-INTEGRITY key.
func Key(username, realm, password string) []byte {
	h := md5.New() //nolint:gosec
	h.Write([]byte(username + ":" + realm + ":" + password))
	return h.Sum(nil)
}

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

// Response is what a TURN REST API service returns: the draft's fields
// (username, password, ttl, uris) and the same as WebRTC's iceServers, ready
// for new RTCPeerConnection({iceServers}).
type Response struct {
	Username   string      `json:"username"`
	Password   string      `json:"password"`
	TTL        int64       `json:"ttl"`
	URIs       []string    `json:"uris"`
	ICEServers []ICEServer `json:"iceServers"`
}

// NewResponse mints credentials for user valid for ttl from now.
func NewResponse(secret, user string, ttl time.Duration, uris []string, now time.Time) Response {
	username, password := Generate(secret, user, now.Add(ttl))
	if uris == nil {
		uris = []string{}
	}
	return Response{
		Username: username, Password: password, TTL: int64(ttl / time.Second), URIs: uris,
		ICEServers: []ICEServer{{URLs: uris, Username: username, Credential: password}},
	}
}

// entries returns the non-blank, non-comment lines of a secrets or users
// file, or of an environment variable where entries may also be separated by
// commas.
func entries(data []byte, commas bool) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !commas {
			out = append(out, line)
			continue
		}
		for _, part := range strings.Split(line, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// ParseSecrets reads shared secrets, one a line ("#" comments), the one
// credentials are minted with first. Several are accepted at once so a secret
// can be rotated: add the new one first, move clients over, remove the old.
// commas also separates entries by commas (environment variables).
func ParseSecrets(data []byte, commas bool) ([]string, error) {
	var out []string
	for i, s := range entries(data, commas) {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("secret %d is %d bytes; use at least %d random bytes (for example: openssl rand -base64 32)", i+1, len(s), MinSecretLen)
		}
		if strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("secret %d has control characters", i+1)
		}
		out = append(out, s)
	}
	return out, nil
}

// User is a static user: a password, or a precomputed key (coturn's
// turnadmin -k form, 0x followed by the hex MD5 of name:realm:password).
type User struct {
	Name     string
	Password string
	Key      []byte
}

// KeyFor returns the user's MESSAGE-INTEGRITY key in realm.
func (u User) KeyFor(realm string) []byte {
	if u.Key != nil {
		return u.Key
	}
	return Key(u.Name, realm, u.Password)
}

// ParseUsers reads static users, "name:password" or "name:0xKEY" one a line
// ("#" comments). Names may not contain ':' or spaces, and may not look like a
// REST API username (all digits before a ':').
func ParseUsers(data []byte, commas bool) ([]User, error) {
	var out []User
	seen := map[string]bool{}
	for i, e := range entries(data, commas) {
		name, secret, ok := strings.Cut(e, ":")
		switch {
		case !ok || name == "" || secret == "":
			return nil, fmt.Errorf("user %d: expected name:password or name:0xKEY", i+1)
		case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return nil, fmt.Errorf("user %d: the name has spaces or control characters", i+1)
		case seen[name]:
			return nil, fmt.Errorf("user %q is listed twice", name)
		}
		if _, _, rest := ParseUsername(name + ":"); rest {
			return nil, fmt.Errorf("user %q looks like a REST API timestamp; static names need a letter", name)
		}
		seen[name] = true
		u := User{Name: name}
		if strings.HasPrefix(secret, "0x") && len(secret) == 34 {
			key, err := hex.DecodeString(secret[2:])
			if err != nil {
				return nil, fmt.Errorf("user %q: bad hex key: %v", name, err)
			}
			u.Key = key
		} else {
			u.Password = secret
		}
		out = append(out, u)
	}
	return out, nil
}

// ErrNoSecret is returned when credentials are asked for without a secret.
var ErrNoSecret = errors.New("no shared secret: give --secret-file or TURNWALL_RELAY_SECRETS")
