package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// The fleet lab: relay A (the lab policy's relay, 192.0.2.10) and relay B
// (192.0.2.11, certificate turn-b.lab.example.com) in one namespace, the
// probe at the lab's agent address.
var ourRelayB = netip.MustParseAddr("192.0.2.11")

const fqdnB = "turn-b.lab.example.com"

type fleetLab struct {
	ns    *netns.NS
	a, b  *relay.Server
	roots *x509.CertPool
}

// startFleetLab starts B, then A with alternates (when altsOfA) or a
// function of B (mutate), with A's own limits.
func startFleetLab(t *testing.T, mutateA, mutateB func(*relay.Config)) *fleetLab {
	t.Helper()
	needRelayLab(t)
	ns := newNS(t, "fleet")
	for _, a := range []netip.Addr{ourRelay4, ourRelayB, ourClient4} {
		must(t, ns.Addr("lo", netip.PrefixFrom(a, a.BitLen()).String()))
	}
	res := compiler.Compile(ourPolicy, compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("lab policy: %v", res.Diags)
	}
	roots := x509.NewCertPool()
	start := func(ip netip.Addr, name string, mutate func(*relay.Config)) *relay.Server {
		cfg, err := relay.FromIR(res.Program, "lab", ourPolicy)
		must(t, err)
		certFile, keyFile, der := writeCert(t, t.TempDir(), name, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
		cert, err := x509.ParseCertificate(der)
		must(t, err)
		roots.AddCert(cert)
		cfg.Name, cfg.FQDN, cfg.CertFile, cfg.KeyFile = name, name, certFile, keyFile
		cfg.Listeners = []relay.Listener{
			{Transport: relay.UDP, Addr: netip.AddrPortFrom(ip, 3478)},
			{Transport: relay.TCP, Addr: netip.AddrPortFrom(ip, 3478)},
			{Transport: relay.TLS, Addr: netip.AddrPortFrom(ip, 5349)},
		}
		cfg.RelayIPs = []netip.Addr{ip}
		cfg.Auth = relay.NewAuth(cfg.Realm, nil, []string{testSecret})
		cfg.Limits = relay.Limits{UserQuota: 100, TotalQuota: 1000, MaxLifetime: time.Hour, MaxBPS: relay.DefaultMaxBPS}
		cfg.UDPSockets = 1
		cfg.Net = relayNet{ns}
		if mutate != nil {
			mutate(&cfg)
		}
		s, err := relay.New(cfg)
		must(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	b := start(ourRelayB, fqdnB, mutateB)
	a := start(ourRelay4, ourFQDN, mutateA)
	return &fleetLab{ns: ns, a: a, b: b, roots: roots}
}

// alternatesOf lists every listener of the relay at ip, TLS with domain.
func alternatesOf(ip netip.Addr, domain string) *relay.StaticAlternates {
	return relay.NewStaticAlternates([]relay.Alternate{
		{Transport: relay.UDP, Addr: netip.AddrPortFrom(ip, 3478)},
		{Transport: relay.TCP, Addr: netip.AddrPortFrom(ip, 3478)},
		{Transport: relay.TLS, Addr: netip.AddrPortFrom(ip, 5349), Domain: domain},
	})
}

func (l *fleetLab) probe(t *testing.T, uris ...string) *Report {
	t.Helper()
	cfg := agentConfig(l.ns)
	cfg.TURN = parseURIs(t, uris...)
	cfg.Secret, cfg.Timeout, cfg.Packets, cfg.Rate = testSecret, 2*time.Second, 10, 100
	cfg.Roots, cfg.ServerName = l.roots, ourFQDN
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Run(ctx, cfg)
	must(t, err)
	for _, c := range r.Checks {
		t.Logf("%-17s %-4s %-5s %s", c.Kind, c.Transport, c.Status, c.Reason)
	}
	return r
}

// TestProbeFollowsTryAlternate: A drains with B as its alternate; the probe
// over UDP, TCP and TLS is redirected (300 Try Alternate, over TLS with
// ALTERNATE-DOMAIN), ends on B with media both ways, and says so.
func TestProbeFollowsTryAlternate(t *testing.T) {
	l := startFleetLab(t, func(c *relay.Config) { c.Alternates = alternatesOf(ourRelayB, fqdnB) }, nil)
	l.a.Drain()
	r := l.probe(t, "turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.10:3478?transport=tcp", "turns:192.0.2.10:5349")
	for _, tr := range []string{UDP, TCP, TLS} {
		port := "3478"
		if tr == TLS {
			port = "5349"
		}
		alloc, media := find(r, KindAllocate, tr), find(r, KindMedia, tr)
		want := "redirected by 192.0.2.10:" + port + " to 192.0.2.11:" + port + " (300 Try Alternate)"
		if tr == TLS {
			want += ", certificate name " + fqdnB
		}
		if alloc == nil || alloc.Status != OK || alloc.Redirect != want || alloc.Alternate != "192.0.2.11:"+port ||
			!strings.HasPrefix(alloc.Relayed, "192.0.2.11:") || !strings.Contains(alloc.Reason, want) {
			t.Errorf("%s allocate: %+v, want %q", tr, alloc, want)
		}
		if media == nil || media.Status != OK || media.Server != "192.0.2.11:"+port {
			t.Errorf("%s media: %+v, want OK on B", tr, media)
		}
	}
	if n := l.a.AllocationCount(); n != 0 {
		t.Errorf("the draining relay holds %d allocations", n)
	}
	var out bytes.Buffer
	must(t, r.WriteText(&out))
	if !strings.Contains(out.String(), "redirected by 192.0.2.10:3478 to 192.0.2.11:3478 (300 Try Alternate)") {
		t.Errorf("the text report does not show the redirect:\n%s", out.String())
	}
}

// TestProbeCapacityRedirect: above its capacity threshold A redirects too.
func TestProbeCapacityRedirect(t *testing.T) {
	l := startFleetLab(t, func(c *relay.Config) {
		c.Alternates = alternatesOf(ourRelayB, fqdnB)
		c.Limits.TotalQuota, c.CapacityThreshold = 10, 0.1 // one allocation
	}, nil)
	// One allocation on A fills it to the threshold.
	cfg := agentConfig(l.ns)
	cfg.Secret, cfg.Timeout = testSecret, 2*time.Second
	cfg.defaults()
	c, err := dialTURN(&cfg, parseURIs(t, "turn:192.0.2.10:3478?transport=udp")[0], netip.MustParseAddrPort("192.0.2.10:3478"), "")
	must(t, err)
	defer c.Close()
	if _, _, err := c.Allocate(context.Background(), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	if h := l.a.Health(); h.Ready {
		t.Fatalf("A at its threshold is ready: %+v", h)
	}
	r := l.probe(t, "turn:192.0.2.10:3478?transport=udp")
	if a := find(r, KindAllocate, UDP); a == nil || a.Status != OK || a.Alternate != "192.0.2.11:3478" {
		t.Errorf("allocate above the threshold: %+v", a)
	}
	if m := find(r, KindMedia, UDP); m == nil || m.Status != OK {
		t.Errorf("media: %+v", m)
	}
}

// TestProbeRedirectLoop: A and B drain and name each other: the probe
// follows one redirect, fails the allocation with 300, and names the loop.
func TestProbeRedirectLoop(t *testing.T) {
	l := startFleetLab(t, func(c *relay.Config) { c.Alternates = alternatesOf(ourRelayB, fqdnB) },
		func(c *relay.Config) { c.Alternates = alternatesOf(ourRelay4, ourFQDN) })
	l.a.Drain()
	l.b.Drain()
	r := l.probe(t, "turn:192.0.2.10:3478?transport=udp", "turns:192.0.2.10:5349")
	for _, tr := range []string{UDP, TLS} {
		a := find(r, KindAllocate, tr)
		if a == nil || a.Status != Fail || a.Code != 300 || a.Alternate == "" ||
			!strings.Contains(a.Reason, "; the alternate sent it back to 192.0.2.10:") ||
			!strings.Contains(a.Reason, "redirect loop") {
			t.Errorf("%s allocate in a loop: %+v", tr, a)
		}
		if p := find(r, KindPermission, tr); p == nil || p.Status != Skip {
			t.Errorf("%s permission: %+v", tr, p)
		}
	}
}

// TestProbeTLSRedirectChecksDomain: the redirected TLS connection is made
// with the ALTERNATE-DOMAIN as its name (the probe does not verify there,
// like the first connection; turnclient does when told to).
func TestProbeTLSRedirectChecksDomain(t *testing.T) {
	l := startFleetLab(t, func(c *relay.Config) { c.Alternates = alternatesOf(ourRelayB, fqdnB) }, nil)
	l.a.Drain()
	cfg := agentConfig(l.ns)
	c, err := turnclient.Dial(turnclient.Config{Transport: "tls", Server: netip.MustParseAddrPort("192.0.2.10:5349"),
		Username: "", TLS: &tls.Config{RootCAs: l.roots, ServerName: ourFQDN, MinVersion: tls.VersionTLS12}, Dial: cfg.Dial})
	must(t, err)
	defer c.Close()
	u, p := restUser()
	c.SetCredentials(u, p)
	n, _, _, r, err := c.AllocateFollow(context.Background(), turnclient.AllocateOptions{})
	if err != nil || r == nil || r.Domain != fqdnB || n.ServerName() != fqdnB {
		t.Fatalf("verified TLS redirect: %v %v", r, err)
	}
	n.Close()
}

func restUser() (string, string) {
	c := Config{Secret: testSecret}
	c.defaults()
	return c.credentials()
}
