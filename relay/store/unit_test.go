package store

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/relay/peerfilter"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"172.17.13.200", "172.17.13.200-172.17.13.200", ""},
		{" 172.17.13.133-172.17.14.56 ", "172.17.13.133-172.17.14.56", ""},
		{"123::45", "123::45-123::45", ""},
		{"10.30.0.0/17", "10.30.0.0-10.30.127.255", ""},
		{"10.30.0.1/17", "10.30.0.0-10.30.127.255", ""},
		{"::ffff:10.0.0.1", "10.0.0.1-10.0.0.1", ""},
		{"10.0.0.9-10.0.0.1", "", "after its last"},
		{"10.0.0.1-::1", "", "families differ"},
		{"fe80::1%eth0", "", "not an address"},
		{"not-an-ip", "", "not an address"},
		{"", "", "not an address"},
		{"10.0.0.0/33", "", "not an address"},
	} {
		r, err := ParseRange(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRange(%q) = %v, %v; want error with %q", tc.in, r, err, tc.err)
			}
			continue
		}
		if err != nil || r.String() != tc.want {
			t.Errorf("ParseRange(%q) = %v, %v; want %s", tc.in, r, err, tc.want)
		}
	}
}

func TestParseKeyAndNames(t *testing.T) {
	if k, err := ParseKey("7da2270ccfa49786e0115366d3a3d14d" + strings.Repeat(" ", 96)); err != nil || len(k) != 16 {
		t.Errorf("char(128) padded key: %x %v", k, err)
	}
	if _, err := ParseKey("0x7da2270ccfa49786e0115366d3a3d14d"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "7da2", strings.Repeat("ab", 32), "zz2270ccfa49786e0115366d3a3d14d0"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	for name, ok := range map[string]bool{
		"gorst": true, "agent-4711@example.com": true, "a:b": true,
		"": false, "a b": false, "a\nb": false, "1700000000:alice": false, strings.Repeat("x", 513): false,
	} {
		if err := CheckUserName(name); (err == nil) != ok {
			t.Errorf("CheckUserName(%q) = %v", name, err)
		}
	}
	for r, ok := range map[string]bool{
		"example.com": true, "": false, "a/b": false, "a*": false, "a b": false, "a\n": false, strings.Repeat("r", 128): false,
	} {
		if err := CheckRealm(r); (err == nil) != ok {
			t.Errorf("CheckRealm(%q) = %v", r, err)
		}
	}
}

func TestOpenBadURL(t *testing.T) {
	for url, want := range map[string]string{
		"":                                "no scheme",
		"127.0.0.1:6379":                  "not a URL",
		"localhost:6379":                  `scheme "localhost" is not supported`,
		"mysql://u:p@h/db":                `scheme "mysql" is not supported`,
		"redis://:pw@/0":                  "no host",
		"redis://:pw@127.0.0.1:99999/0":   "port",
		"redis://:pw@127.0.0.1:6379/zero": "invalid database number",
		"postgres://u:pw@h:5432/db\n":     "control characters",
		"redis://:p w%zz@h/0":             "not a URL",
	} {
		_, err := Open(context.Background(), url, "example.com", Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v; want %q", url, err, want)
		}
		if err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("Open(%q) error shows the password: %v", url, err)
		}
	}
}

func TestValidate(t *testing.T) {
	st := validate(raw{
		secrets: []string{"b-secret-long-enough", "a-secret-long-enough", "a-secret-long-enough", "short", "ctl\x00-secret-long-enough"},
		users:   map[string]string{"gorst": "7da2270ccfa49786e0115366d3a3d14d", "bad": "xyz"},
		allowed: []string{"10.0.0.1", "10.0.0.2", "bogus"},
		denied:  []string{"10.0.0.0/8"},
	})
	if strings.Join(st.Secrets, ",") != "a-secret-long-enough,b-secret-long-enough" {
		t.Errorf("secrets %q", st.Secrets)
	}
	if len(st.Users) != 1 || len(st.AllowedPeers) != 1 || st.AllowedPeers[0].String() != "10.0.0.1-10.0.0.2" {
		t.Errorf("%+v", st)
	}
	if len(st.Invalid) != 4 {
		t.Errorf("invalid %q", st.Invalid)
	}
	if st.Fingerprint() != st.Clone().Fingerprint() {
		t.Error("fingerprint of a clone differs")
	}
	st2 := st.Clone()
	st2.Users["gorst"][0] ^= 1
	if st.Fingerprint() == st2.Fingerprint() {
		t.Error("fingerprint ignores a key change")
	}
	if u := st.CredsUsers(); len(u) != 1 || u[0].Name != "gorst" || string(u[0].KeyFor("any")) != string(st.Users["gorst"]) {
		t.Errorf("CredsUsers %+v", u)
	}
	if !(State{}).Empty() || st.Empty() {
		t.Error("Empty")
	}
}

// TestBound: whatever the database says, Bound never allows a never-class
// address or one outside the policy's peers; allowed-peer-ip only excepts
// from denied-peer-ip.
func TestBound(t *testing.T) {
	var pb netipx.IPSetBuilder
	pb.AddPrefix(netip.MustParsePrefix("10.30.0.0/17"))
	pb.AddPrefix(netip.MustParsePrefix("52.129.96.0/20"))
	pb.AddPrefix(netip.MustParsePrefix("127.0.0.0/8")) // a policy mistake: still never
	pb.AddPrefix(netip.MustParsePrefix("fd00:30::/56"))
	policy, _ := pb.IPSet()
	r := func(s string) netipx.IPRange { x, err := ParseRange(s); must(t, err); return x }
	got := Bound(policy, nil,
		[]netipx.IPRange{r("8.0.0.0/8"), r("127.0.0.1"), r("169.254.169.254"), r("10.30.1.5")},
		[]netipx.IPRange{r("10.30.1.0/24"), r("52.129.96.0-52.129.96.255")})
	for a, want := range map[string]bool{
		"10.30.0.1": true,
		// Denied, but allowed-peer-ip excepts it from the deny (coturn's
		// meaning); the policy names it.
		"10.30.1.5":   true,
		"10.30.1.6":   false, // denied
		"52.129.96.7": false, "52.129.97.1": true,
		"8.8.8.8":   false,                           // allowed-peer-ip 0.0.0.0/0, but not a policy peer
		"127.0.0.1": false, "169.254.169.254": false, // never, whatever the policy and database say
		"fd00:30::1": true,
	} {
		if got.Contains(netip.MustParseAddr(a)) != want {
			t.Errorf("Bound contains %s = %v, want %v", a, !want, want)
		}
	}
	// Random lists: the result is always inside policy − never.
	never := NeverSet()
	rng := rand.New(rand.NewPCG(1, 2))
	randRange := func() netipx.IPRange {
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		p := netip.PrefixFrom(netip.AddrFrom4(b), rng.IntN(33)).Masked()
		return netipx.RangeOfPrefix(p)
	}
	for i := 0; i < 500; i++ {
		var allowed, denied []netipx.IPRange
		for j := rng.IntN(5); j > 0; j-- {
			allowed = append(allowed, randRange())
			denied = append(denied, randRange())
		}
		b := Bound(policy, never, allowed, denied)
		for _, p := range b.Prefixes() {
			if !policy.ContainsPrefix(p) || never.OverlapsPrefix(p) {
				t.Fatalf("Bound let %v through (allowed %v denied %v)", p, allowed, denied)
			}
		}
	}
	if len(Bound(nil, nil, []netipx.IPRange{r("0.0.0.0/0")}, nil).Prefixes()) != 0 {
		t.Error("no policy peers, but Bound allows some")
	}
	if !NeverSet().Contains(netip.MustParseAddr("169.254.169.254")) {
		t.Error("never set lacks metadata")
	}
	for _, c := range peerfilter.Classes {
		if c.Never && got.OverlapsPrefix(c.Prefix) {
			t.Errorf("Bound overlaps never class %v", c.Prefix)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestEscapeKeyPart(t *testing.T) {
	for in, want := range map[string]string{
		"alice": "alice", "a/b": "a%2Fb", "a%b": "a%25b", "a b\n": "a%20b%0A", "*?[]": "%2A%3F%5B%5D", "é": "é",
	} {
		if got := escapeKeyPart(in); got != want {
			t.Errorf("escapeKeyPart(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "1.2.3.4-5.6.7.8", "::1/128", "::ffff:1.2.3.4-::ffff:1.2.3.5", "a-b-c", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err == nil && !r.IsValid() {
			t.Fatalf("ParseRange(%q) = invalid range without error", s)
		}
	})
}

// A cancelled Reload is no outage.
func TestReloadCancelledIsNoOutage(t *testing.T) {
	s := &Store{b: stuck{}, realm: "r", log: slogDiscard(), timeout: time.Second, m: newMetrics()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Reload(ctx); err == nil {
		t.Fatal("no error")
	}
	if !s.Up() {
		t.Error("a cancelled read marked the store down")
	}
	if _, _, err := s.Reload(context.Background()); err == nil || s.Up() {
		t.Errorf("a failed read: %v, up %v", err, s.Up())
	}
}

// stuck is a backend whose reads fail.
type stuck struct{ backend }

func (stuck) load(ctx context.Context) (raw, error) {
	if ctx.Err() != nil {
		return raw{}, ctx.Err()
	}
	return raw{}, errors.New("connection refused")
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
