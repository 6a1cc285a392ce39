package verify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	stunv3 "github.com/pion/stun/v3"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/verify"
)

// servicesLab builds the lab of want, applies the ruleset compiled from got
// and starts the services; everything is removed when the test ends.
func servicesLab(t *testing.T, want, got *ir.Program) (*verify.Lab, *verify.Services) {
	t.Helper()
	rs, err := nftables.Build(got, "turnwall")
	if err != nil {
		t.Fatal(err)
	}
	l, err := verify.New(want)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := l.Apply(rs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := l.StartServices(ctx, verify.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, n := range s.Notes {
		t.Logf("note: %s", n)
	}
	return l, s
}

// checkGroup runs the checks of one group, logging them.
func checkGroup(t *testing.T, s *verify.Services, group string) []verify.ServerCheck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	checks := s.Check(ctx, group)
	t.Logf("agents %q: %d checks in %v", group, len(checks), time.Since(start).Round(time.Millisecond))
	for _, c := range checks {
		t.Logf("  %-45s expected %-4s got %-4s %s [%s %s]", c.Server.URL, c.Expected, c.Got, c.Reason, c.Rule, c.Line)
	}
	return checks
}

func urls(servers []verify.ICEServer) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.URL)
	}
	return out
}

func TestServicesPolicies(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	relayV4 := []string{
		"turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.10:3478?transport=tcp",
		"turns:192.0.2.10:5349?transport=tcp", "turns:192.0.2.10:443?transport=tcp",
	}
	relayV6 := []string{
		"turn:[2001:db8:30::10]:3478?transport=udp", "turn:[2001:db8:30::10]:3478?transport=tcp",
		"turns:[2001:db8:30::10]:5349?transport=tcp", "turns:[2001:db8:30::10]:443?transport=tcp",
	}
	for _, tc := range []struct {
		policy string
		want   map[string][]string // agents group -> URLs
	}{
		{"private-relay", map[string][]string{
			"claims":  append(append([]string{}, relayV4...), relayV6...),
			"billing": relayV4, // no IPv6 in billing
		}},
		{"genesys-cloud", map[string][]string{"floor3": {
			"turn:52.129.96.10:3478?transport=udp", "turn:52.129.96.10:3478?transport=tcp",
			// TURN/TLS on the signalling port of a provider that runs TURN
			"turns:52.129.96.10:443?transport=tcp",
			// stun.l.google.com, as the lab resolves it
			"stun:192.0.2.177:19302", "stun:[2001:db8:7e57::77]:19302",
		}}},
		{"twilio-flex", map[string][]string{"flex": {"turn:192.0.2.10:3478?transport=udp", "turns:192.0.2.10:443?transport=tcp"}}},
		{"amazon-connect", map[string][]string{"ccp": {"turn:15.193.0.10:3478?transport=udp"}}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			p := compile(t, "../../policies/"+tc.policy)
			_, s := servicesLab(t, p, p)
			for group, want := range tc.want {
				servers := s.ICEServers(group)
				if got := urls(servers); !slices.Equal(got, want) {
					t.Errorf("agents %q get\n  %s\nwant\n  %s", group, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				for _, srv := range servers {
					// What a WebRTC stack parses (pion: RFC 7064/7065 URIs).
					if _, err := stunv3.ParseURI(srv.URL); err != nil {
						t.Errorf("%s: %v", srv.URL, err)
					}
					if srv.Kind != "stun" && (srv.Username == "" || srv.Credential == "") {
						t.Errorf("%s: no credentials", srv.URL)
					}
					if srv.FQDN != "" && srv.FQDN != "stun.l.google.com" {
						t.Errorf("%s: FQDN %q", srv.URL, srv.FQDN)
					}
				}
				checks := checkGroup(t, s, group)
				if len(checks) != len(want) {
					t.Fatalf("%d checks for %d servers", len(checks), len(want))
				}
				for _, c := range checks {
					if !c.OK || c.Expected != "pass" {
						t.Errorf("%s: expected %s, got %s: %s", c.Server.URL, c.Expected, c.Got, c.Reason)
					}
					if c.Rule == "" || strings.HasPrefix(c.Rule, "default") || !strings.HasPrefix(c.Line, "policy.hcl:") {
						t.Errorf("%s: deciding rule %q at %q", c.Server.URL, c.Rule, c.Line)
					}
				}
			}
		})
	}
}

// Every policy of the repository and the golden cases with relays or STUN:
// every server each group is given behaves as the IR says.
func TestServicesEveryPolicy(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	paths := []string{
		"../../policies/microsoft-teams",
		"../../testdata/golden/cases/issue-example.hcl",
		"../../testdata/golden/cases/rules-and-functions.hcl", // STUN by literal address, TCP-relaying relay
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			p := compile(t, path)
			l, s := servicesLab(t, p, p)
			for _, h := range l.Hosts {
				if h.Kind != "agents" {
					continue
				}
				for _, c := range checkGroup(t, s, h.Block) {
					if !c.OK {
						t.Errorf("%s: expected %s, got %s: %s [%s %s]", c.Server.URL, c.Expected, c.Got, c.Reason, c.Rule, c.Line)
					}
				}
			}
			if filepath.Base(path) == "rules-and-functions.hcl" {
				if got := urls(s.ICEServers("voice")); !slices.Contains(got, "stun:74.125.250.129:19302") {
					t.Errorf("voice gets %v, want the carrier's STUN address", got)
				}
			}
		})
	}
}

// copyPolicy copies a policy directory into a temporary one, with edit
// applied to policy.hcl.
func copyPolicy(t *testing.T, dir string, edit func(string) string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == "policy.hcl" {
			before := string(b)
			if b = []byte(edit(before)); string(b) == before {
				t.Fatal("the edit changed nothing")
			}
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// The platform provisions agents in tenant realm corp.example.com; the relay
// authenticates in example.com. The compiler reports it (TW204, an error,
// so there is no Program) but the lowered program builds the lab, where every
// allocation on the relay is refused with 401: expected, so the checks hold.
func TestServicesRealmMismatch(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Parallel()
	dir := copyPolicy(t, "../../policies/private-relay", func(s string) string {
		return strings.Replace(s, `tenant_realm         = "example.com"`, `tenant_realm         = "corp.example.com"`, 1)
	})
	res := compiler.Compile(dir, compiler.Options{})
	var codes []string
	for _, d := range res.Diags {
		if strings.HasPrefix(d.Summary, "Relay realm") {
			codes = append(codes, d.Summary)
		}
	}
	if !res.HasErrors() || len(codes) == 0 {
		t.Fatalf("want the realm mismatch error, got %v", res.Diags)
	}
	if res.Program != nil {
		t.Error("a policy with errors has a Program")
	}
	p := res.Lowered
	if p == nil {
		t.Fatal("no lowered program")
	}
	p.Index()
	_, s := servicesLab(t, p, p)
	for _, group := range []string{"claims", "billing"} {
		checks := checkGroup(t, s, group)
		if len(checks) == 0 {
			t.Fatalf("agents %q get no servers", group)
		}
		for _, c := range checks {
			want := `401 Unauthorized: the relay's realm is "example.com" but the platform provisioned the user in tenant_realm "corp.example.com"`
			if !c.OK || c.Expected != "fail" || c.Got != "fail" || c.Reason != want {
				t.Errorf("%s: expected %s, got %s (ok %v): %s", c.Server.URL, c.Expected, c.Got, c.OK, c.Reason)
			}
			if c.Server.Username != "agent" || c.Server.CredentialRealm != "corp.example.com" || c.Server.Realm != "example.com" {
				t.Errorf("%s: credentials %q in %q, relay realm %q", c.Server.URL, c.Server.Username, c.Server.CredentialRealm, c.Server.Realm)
			}
			if pass, _, _, why := s.Expect(group, c.Server); pass || why != want {
				t.Errorf("Expect: %v %q", pass, why)
			}
		}
	}
}

// A relay without a UDP listener: the firewall opens no UDP to it, and its
// clients are given TCP and TLS servers only.
func TestServicesRelayWithoutUDP(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Parallel()
	dir := copyPolicy(t, "../../policies/private-relay", func(s string) string {
		return strings.Replace(s, "    udp = 3478\n", "", 1)
	})
	p := compile(t, dir)
	l, s := servicesLab(t, p, p)
	checks := checkGroup(t, s, "claims")
	if len(checks) != 6 {
		t.Errorf("%d servers, want 6 (TCP 3478, TLS 5349 and 443, in IPv4 and IPv6)", len(checks))
	}
	for _, c := range checks {
		if c.Server.Proto != ir.TCP || strings.Contains(c.Server.URL, "udp") {
			t.Errorf("%s: a UDP server", c.Server.URL)
		}
		if !c.OK || c.Got != "pass" {
			t.Errorf("%s: expected %s, got %s: %s", c.Server.URL, c.Expected, c.Got, c.Reason)
		}
	}

	// The relay's certificate names its FQDN too, for clients that dial
	// turn.example.com.
	var claims *verify.Host
	for _, h := range l.Hosts {
		if h.Kind == "agents" && h.Block == "claims" {
			claims = h
		}
	}
	if claims == nil {
		t.Fatal("no host for agents claims")
	}
	err := claims.NS.Do(func() error {
		d := &net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: claims.V4.AsSlice()}}
		c, err := tls.DialWithDialer(d, "tcp", "192.0.2.10:5349", &tls.Config{RootCAs: s.RootCAs, ServerName: "turn.example.com", MinVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Errorf("TLS to turn.example.com: %v", err)
	}

	// A client that does not trust the lab CA is told so.
	s.RootCAs = x509.NewCertPool()
	for _, c := range checkGroup(t, s, "claims") {
		if c.Server.Kind == "turns" && (c.OK || c.Reason != "TLS: the certificate is not issued by a trusted CA") {
			t.Errorf("%s without the lab CA: got %s: %s", c.Server.URL, c.Got, c.Reason)
		}
	}
}

// A ruleset that lacks the rule opening the relay's STUN/TURN ports to
// claims: the checks over UDP and TCP 3478 fail where the policy says they
// pass, and say so.
func TestServicesRulesetDropsTURN(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Parallel()
	want := compile(t, "../../policies/private-relay")
	broken := compile(t, "../../policies/private-relay")
	const gone = "claims.dmz.turn"
	broken.Rules = slices.DeleteFunc(broken.Rules, func(r ir.Rule) bool { return r.Name == gone })
	_, s := servicesLab(t, want, broken)
	failed := 0
	for _, c := range checkGroup(t, s, "claims") {
		if c.OK {
			continue
		}
		failed++
		if c.Rule != gone || c.Expected != "pass" || c.Got != "fail" || c.Server.Addr.Port() != 3478 ||
			!strings.HasPrefix(c.Reason, "timed out (no answer, although the policy allows") {
			t.Errorf("unexpected failing check: %s %+v", c.Server.URL, c)
		}
	}
	if failed != 4 {
		t.Errorf("%d checks failed, want 4 (UDP and TCP 3478, IPv4 and IPv6)", failed)
	}
}

// Close frees every port: the services start again on the same lab.
func TestServicesRestart(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Parallel()
	p := compile(t, "../../policies/genesys-cloud")
	l, s := servicesLab(t, p, p)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := l.StartServices(context.Background(), verify.ServiceOptions{Secret: "a-secret-of-enough-length"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, want := urls(s2.ICEServers("floor3")), urls(s.ICEServers("floor3")); !slices.Equal(got, want) {
		t.Errorf("after a restart %v, before %v", got, want)
	}
	for _, c := range checkGroup(t, s2, "floor3") {
		if !c.OK {
			t.Errorf("%s: expected %s, got %s: %s", c.Server.URL, c.Expected, c.Got, c.Reason)
		}
	}
}

// The regression policies of the guide's traps: every check behaves as the
// IR says, and UDP denied to the relay shows as the firewall dropping it
// while TURN/TLS 443 still allocates.
func TestServicesTrapPolicies(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	paths, _ := filepath.Glob("../../testdata/verify/*")
	if len(paths) == 0 {
		t.Skip("no trap policies")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			res := compiler.Compile(path, compiler.Options{})
			p := res.Lowered
			if p == nil {
				t.Fatalf("%s: %v", path, res.Diags)
			}
			p.Index()
			_, s := servicesLab(t, p, p)
			checks := checkGroup(t, s, "floor")
			if len(checks) == 0 {
				t.Fatal("no servers")
			}
			for _, c := range checks {
				if !c.OK {
					t.Errorf("%s: expected %s, got %s: %s [%s %s]", c.Server.URL, c.Expected, c.Got, c.Reason, c.Rule, c.Line)
				}
				if filepath.Base(path) != "udp-blocked" {
					continue
				}
				switch c.Server.Proto {
				case ir.UDP:
					if c.Got != "fail" || c.Rule != "no-udp" || c.Reason != "timed out (the firewall drops UDP 3478)" {
						t.Errorf("%s: got %s by %s: %s", c.Server.URL, c.Got, c.Rule, c.Reason)
					}
				case ir.TCP:
					if c.Got != "pass" || c.Server.Kind != "turns" || c.Server.Addr.Port() != 443 {
						t.Errorf("%s: got %s: %s", c.Server.URL, c.Got, c.Reason)
					}
				}
			}
		})
	}
}

// The lab resolves the STUN names itself: the address is in the gateway's
// FQDN set, and without it there the firewall drops the Binding request.
func TestServicesFQDNResolution(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Parallel()
	p := compile(t, "../../policies/genesys-cloud")
	l, s := servicesLab(t, p, p)
	ctx := context.Background()
	var stun []verify.ICEServer
	for _, srv := range s.ICEServers("floor3") {
		if srv.Kind == "stun" {
			stun = append(stun, srv)
		}
	}
	if len(stun) != 2 {
		t.Fatalf("%d STUN servers, want 2", len(stun))
	}
	for _, srv := range stun {
		set := "provider.genesys.stun_fq4"
		if srv.Addr.Addr().Is6() {
			set = "provider.genesys.stun_fq6"
		}
		out, err := l.GW.Exec(ctx, "nft", "list", "set", "inet", "turnwall", set)
		if err != nil || !strings.Contains(string(out), srv.Addr.Addr().String()) {
			t.Fatalf("%s not in %s: %v\n%s", srv.Addr.Addr(), set, err, out)
		}
		if _, err := l.GW.Exec(ctx, "nft", "delete", "element", "inet", "turnwall", set, "{ "+srv.Addr.Addr().String()+" }"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range checkGroup(t, s, "floor3") {
		if c.Server.Kind != "stun" {
			continue
		}
		if c.Got != "fail" || c.OK || c.Rule != "floor3.genesys.stun" || !strings.HasPrefix(c.Reason, "timed out") {
			t.Errorf("%s without the set element: got %s (ok %v): %s", c.Server.URL, c.Got, c.OK, c.Reason)
		}
	}
}
