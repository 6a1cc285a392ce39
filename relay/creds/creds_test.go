package creds

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

const secret = "0123456789abcdef-secret"

func TestVector(t *testing.T) {
	// Computed independently (Python hmac/hashlib).
	username, password := Generate(secret, "alice", time.Unix(1700000000, 0))
	if username != "1700000000:alice" || password != "/F42eaImLNE8Ndqtu0Eo/wcd44I=" {
		t.Fatalf("Generate = %q, %q", username, password)
	}
	if got := hex.EncodeToString(Key(username, "example.com", password)); got != "df8d47116b30cabbb15cf1d07a44346c" {
		t.Fatalf("Key = %s", got)
	}
	// And the same as pion/turn computes.
	if got := turn.GenerateAuthKey(username, "example.com", password); hex.EncodeToString(got) != "df8d47116b30cabbb15cf1d07a44346c" {
		t.Fatalf("pion key differs: %x", got)
	}
	u, p, err := turn.GenerateLongTermTURNRESTCredentials(secret, "bob", time.Hour)
	if err != nil || Password(secret, u) != p {
		t.Fatalf("pion REST credentials %q %q differ from ours %q (%v)", u, p, Password(secret, u), err)
	}
}

func TestParseUsername(t *testing.T) {
	for _, tc := range []struct {
		in     string
		expiry int64
		user   string
		ok     bool
	}{
		{"1700000000:alice", 1700000000, "alice", true},
		{"1700000000", 1700000000, "", true},
		{"1700000000:a:b", 1700000000, "a:b", true},
		{"alice", 0, "", false},
		{":alice", 0, "", false},
		{"17x0:alice", 0, "", false},
		{"-5:alice", 0, "", false},
		{"99999999999999999999:alice", 0, "", false},
		{"", 0, "", false},
	} {
		e, u, ok := ParseUsername(tc.in)
		if ok != tc.ok || (ok && (e.Unix() != tc.expiry || u != tc.user)) {
			t.Errorf("ParseUsername(%q) = %v %q %v", tc.in, e.Unix(), u, ok)
		}
	}
}

func TestResponseJSON(t *testing.T) {
	r := NewResponse(secret, "agent7", 24*time.Hour, []string{"turn:turn.example.com:3478?transport=udp"}, time.Unix(1700000000, 0))
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"username":"1700086400:agent7","password":"` + Password(secret, "1700086400:agent7") +
		`","ttl":86400,"uris":["turn:turn.example.com:3478?transport=udp"],"iceServers":[{"urls":["turn:turn.example.com:3478?transport=udp"],"username":"1700086400:agent7","credential":"` +
		Password(secret, "1700086400:agent7") + `"}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestParseSecrets(t *testing.T) {
	got, err := ParseSecrets([]byte("# rotation: new first\nnew-secret-0123456789\n\n  old-secret-0123456789  \n"), false)
	if err != nil || len(got) != 2 || got[0] != "new-secret-0123456789" || got[1] != "old-secret-0123456789" {
		t.Fatalf("ParseSecrets = %q, %v", got, err)
	}
	got, err = ParseSecrets([]byte("new-secret-0123456789,old-secret-0123456789"), true)
	if err != nil || len(got) != 2 {
		t.Fatalf("ParseSecrets with commas = %q, %v", got, err)
	}
	if _, err := ParseSecrets([]byte("short\n"), false); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short secret: %v", err)
	}
}

func TestParseUsers(t *testing.T) {
	key := hex.EncodeToString(Key("bob", "example.com", "pw"))
	users, err := ParseUsers([]byte("# users\nalice:correct horse battery\nbob:0x"+key+"\n"), false)
	if err != nil || len(users) != 2 {
		t.Fatalf("ParseUsers = %v, %v", users, err)
	}
	if users[0].Name != "alice" || users[0].Password != "correct horse battery" {
		t.Errorf("alice = %+v", users[0])
	}
	if string(users[1].KeyFor("example.com")) != string(Key("bob", "example.com", "pw")) {
		t.Errorf("bob's key = %x", users[1].KeyFor("example.com"))
	}
	if string(users[0].KeyFor("example.com")) != string(Key("alice", "example.com", "correct horse battery")) {
		t.Error("alice's key")
	}
	for _, bad := range []string{"alice", "alice:", ":pw", "a b:pw", "alice:x\nalice:y", "1700000000:pw"} {
		if _, err := ParseUsers([]byte(bad), false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	users, err = ParseUsers([]byte("alice:pw1,bob:pw2"), true)
	if err != nil || len(users) != 2 {
		t.Fatalf("users with commas: %v %v", users, err)
	}
}
