package readiness_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/readiness"
)

// The browser tests run Debian's Chromium, headless, in an "agent" network
// namespace; the relay and the readiness server (its page, API and media
// peer) run in a "dmz" namespace, on one veth link. The page reports to the
// server; the test reads the stored result.

const browserPolicy = `
policy "browser" { default_action = "deny" }
zone "agents" { interface = "vlan30" }
zone "dmz" { interface = "dmz0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.30.0.0/24"]
}
relay "dmz" {
  zone        = zone.dmz
  addresses   = ["192.0.2.10"]
  realm       = "example.com"
  relay_ports = "49152-59999"
  peers       = [agents.floor, "192.0.2.20"]
  lab_only    = true
  listen {
    udp = 3478
    tcp = 3478
    tls = 5349
  }
}
`

const (
	agentAddr  = "10.30.0.10"
	relayAddr  = "192.0.2.10"
	serverAddr = "192.0.2.20"
	secret     = "readiness-test-secret-0123456789"
)

func needChromium(t *testing.T) string {
	t.Helper()
	nstest.NeedKernel(t, "ip", "nft")
	return needChromiumOnly(t)
}

func needChromiumOnly(t *testing.T) string {
	t.Helper()
	if p := readiness.Chromium(); p != "" {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium (Debian package chromium) is missing; make deps installs it")
	}
	t.Skip("chromium is missing (Debian package chromium)")
	return ""
}

type browserLab struct {
	t        *testing.T
	agent    *netns.NS
	dmz      *netns.NS
	prog     *ir.Program
	store    *readiness.MemStore
	url      string
	chromium string
}

// newBrowserLab builds the namespaces and starts the relay (unless
// noRelay) and the readiness server (minting with mintSecret).
func newBrowserLab(t *testing.T, mintSecret string, noRelay bool, trusted bool) *browserLab {
	chromium := needChromium(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(browserPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(dir, compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("policy: %v", res.Diags)
	}
	prog := res.Program
	prog.Index()

	agent, dmz := nstest.NewNS(t, "agent"), nstest.NewNS(t, "dmz")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netns.Link(agent, "a0", dmz, "d0"))
	must(agent.Addr("a0", agentAddr+"/24"))
	must(dmz.Addr("d0", relayAddr+"/24"))
	must(dmz.Addr("d0", serverAddr+"/24"))
	must(agent.IP("route", "add", "192.0.2.0/24", "dev", "a0"))
	must(dmz.IP("route", "add", "10.30.0.0/24", "dev", "d0"))

	if !noRelay {
		cfg, err := relay.FromIR(prog, "dmz", "")
		must(err)
		cfg.Net = relay.InNamespace(dmz)
		cfg.CertFile, cfg.KeyFile = "", ""
		cfg.Certificate = leaf(t, relayAddr, trusted)
		cfg.Auth = relay.NewAuth(cfg.Realm, nil, []string{secret})
		srv, err := relay.New(cfg)
		must(err)
		t.Cleanup(func() { srv.Close() })
	}

	mediaNet, err := readiness.InNamespace(dmz.Do)
	must(err)
	store := readiness.NewMemStore(0)
	rs, err := readiness.New(readiness.Options{Program: prog, Secrets: []string{mintSecret}, Store: store,
		Media:     readiness.MediaOptions{Addrs: []netip.Addr{netip.MustParseAddr(serverAddr)}, Net: mediaNet, Duration: 2 * time.Second},
		LintCodes: map[string]bool{}})
	must(err)
	var ln net.Listener
	must(dmz.Do(func() (err error) { ln, err = net.Listen("tcp", serverAddr+":8080"); return }))
	hs := &http.Server{Handler: rs, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	// The security team's view, on the namespace's loopback.
	var adminLn net.Listener
	must(dmz.IP("link", "set", "lo", "up"))
	must(dmz.Do(func() (err error) { adminLn, err = net.Listen("tcp", "127.0.0.1:8081"); return }))
	as := &http.Server{Handler: rs, ReadHeaderTimeout: 5 * time.Second}
	go as.Serve(adminLn)
	t.Cleanup(func() { as.Close() })
	return &browserLab{t: t, agent: agent, dmz: dmz, prog: prog, store: store, url: "http://" + serverAddr + ":8080/", chromium: chromium}
}

// trustedCA is the CA Chromium is told to trust (by its key's SPKI hash);
// an untrusted leaf is signed by another CA.
var trustedKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func leaf(t *testing.T, ip string, trusted bool) *tls.Certificate {
	t.Helper()
	key := trustedKey
	if !trusted {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: ip},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(ip)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// run opens the page in headless Chromium in the agent namespace and waits
// for the result the page posts.
func (l *browserLab) run(timeout time.Duration) (readiness.Record, time.Duration) {
	t := l.t
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"netns", "exec", l.agent.Name, l.chromium}, readiness.HeadlessArgs(profile)...)
	args = append(args, "--ignore-certificate-errors-spki-list="+spki(t, &trustedKey.PublicKey), l.url+"?auto=1")
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	for ctx.Err() == nil {
		recs, _ := l.store.List(time.Time{}, 0)
		if len(recs) > 0 {
			return recs[0], time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no result from the browser within %v; chromium said:\n%s", timeout, tail(out.String(), 3000))
	return readiness.Record{}, 0
}

// spki is the base64 SHA-256 of a public key's SubjectPublicKeyInfo, as
// Chromium's --ignore-certificate-errors-spki-list takes it.
func spki(t *testing.T, pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func checkOf(rec readiness.Record, id string) readiness.Check {
	for _, c := range rec.Checks {
		if c.Target == id {
			return c
		}
	}
	return readiness.Check{}
}

func TestBrowserWorkingPath(t *testing.T) {
	l := newBrowserLab(t, secret, false, true)
	rec, took := l.run(60 * time.Second)
	t.Logf("verdict in %v: %s: %s", took.Round(time.Millisecond), rec.Verdict, rec.Summary)
	for _, c := range rec.Checks {
		t.Logf("check %s: %s %d %s %s", c.Target, c.Outcome, c.ErrorCode, c.RelayProtocol, c.Explanation)
	}
	for _, c := range rec.Calls {
		t.Logf("call %s: connected=%v rtt=%.1f jitter=%.1f recv=%d sent=%d srv=%d/%d mos=%.2f %s %s", c.Target, c.Connected, c.RTTMs, c.JitterMs, c.PacketsReceived, c.PacketsSent, c.ServerReceived, c.ServerSent, c.MOS, c.Band, c.Explanation)
	}
	if rec.Group != "floor" {
		t.Errorf("group = %q, want floor", rec.Group)
	}
	if c := checkOf(rec, "relay-dmz-udp-3478"); c.Outcome != "ok" || c.RelayProtocol != "udp" {
		t.Errorf("TURN UDP check: %+v", c)
	}
	if c := checkOf(rec, "relay-dmz-tcp-3478"); c.Outcome != "ok" || c.RelayProtocol != "tcp" {
		t.Errorf("TURN TCP check: %+v", c)
	}
	if rec.Verdict != readiness.Ready {
		t.Errorf("verdict %s: %s", rec.Verdict, rec.Summary)
	}
	if took > 15*time.Second {
		t.Errorf("the verdict took %v (more than 15 s)", took)
	}
	// make screenshots: pictures of both pages for docs/.
	if dir := os.Getenv("TURNWALL_SCREENSHOTS"); dir != "" {
		l.screenshot(filepath.Join(dir, "readiness-agent.png"), "http://127.0.0.1:8081/?result="+rec.ID, "1100,900")
		l.screenshot(filepath.Join(dir, "readiness-dashboard.png"), "http://127.0.0.1:8081/dashboard", "1300,800")
	}
}

// screenshot saves a page as the security team sees it (loopback of the dmz
// namespace, so no admin token is needed).
func (l *browserLab) screenshot(file, url, size string) {
	t := l.t
	abs, _ := filepath.Abs(file)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", l.dmz.Name, l.chromium}, readiness.HeadlessArgs(t.TempDir())...)
	args = append(args, "--window-size="+size, "--virtual-time-budget=3000", "--screenshot="+abs, url)
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("screenshot of %s: %v\n%s", url, err, out)
	}
	t.Logf("wrote %s", abs)
}

// UDP to the relay is dropped (a firewall in front of it): TCP and TLS carry
// the calls, and the verdict says so.
func TestBrowserUDPBlocked(t *testing.T) {
	l := newBrowserLab(t, secret, false, true)
	nstest.Nft(t, l.dmz, "add table inet block; add chain inet block input { type filter hook input priority 0; policy accept; }; add rule inet block input ip saddr 10.30.0.0/24 udp dport 3478 drop")
	rec, took := l.run(60 * time.Second)
	t.Logf("verdict in %v: %s: %s", took.Round(time.Millisecond), rec.Verdict, rec.Summary)
	if rec.Verdict != readiness.Degraded || !strings.Contains(rec.Summary, "UDP to the relays is blocked") || !strings.Contains(rec.Summary, "TCP and TLS") {
		t.Errorf("verdict %s: %s", rec.Verdict, rec.Summary)
	}
	c := checkOf(rec, "relay-dmz-udp-3478")
	if c.Outcome == "ok" || !strings.Contains(c.Explanation, "the policy allows it in floor.dmz.turn, policy.hcl:") ||
		!strings.Contains(c.Explanation, "the gateway is not running this policy, or another device") {
		t.Errorf("UDP check: %+v", c)
	}
	if c := checkOf(rec, "relay-dmz-tls-5349"); c.Outcome != "ok" || c.RelayProtocol != "tls" {
		t.Errorf("TLS check: %+v", c)
	}
}

// The relay's certificate is signed by a CA the browser does not trust.
func TestBrowserTLSUntrusted(t *testing.T) {
	l := newBrowserLab(t, secret, false, false)
	rec, _ := l.run(60 * time.Second)
	c := checkOf(rec, "relay-dmz-tls-5349")
	if c.Outcome != "error" || c.ErrorCode != 701 || !strings.Contains(c.Explanation, "TLS handshake the browser does not trust") {
		t.Errorf("TLS check: %+v", c)
	}
	if rec.Verdict != readiness.Ready {
		t.Errorf("UDP works, verdict %s: %s", rec.Verdict, rec.Summary)
	}
}

// The readiness server mints credentials with a secret the relay does not
// have: every allocation is refused with 401.
func TestBrowserWrongCredentials(t *testing.T) {
	l := newBrowserLab(t, "another-secret-0123456789abcdef", false, true)
	rec, _ := l.run(60 * time.Second)
	if rec.Verdict != readiness.NotReady || !strings.Contains(rec.Summary, "No TURN server gave a relay candidate") {
		t.Errorf("verdict %s: %s", rec.Verdict, rec.Summary)
	}
	c := checkOf(rec, "relay-dmz-udp-3478")
	if c.ErrorCode != 401 || !strings.Contains(c.Explanation, "refused the credentials (401 Unauthorized)") {
		t.Errorf("UDP check: %+v", c)
	}
}

// No relay answers: every TURN check fails, and the explanation names the
// rule that should have let it through.
func TestBrowserRelayUnreachable(t *testing.T) {
	l := newBrowserLab(t, secret, true, true)
	nstest.Nft(t, l.dmz, "add table inet block; add chain inet block input { type filter hook input priority 0; policy accept; }; add rule inet block input ip daddr 192.0.2.10 drop")
	rec, took := l.run(60 * time.Second)
	t.Logf("verdict in %v: %s: %s", took.Round(time.Millisecond), rec.Verdict, rec.Summary)
	if rec.Verdict != readiness.NotReady {
		t.Errorf("verdict %s: %s", rec.Verdict, rec.Summary)
	}
	for _, id := range []string{"relay-dmz-udp-3478", "relay-dmz-tcp-3478", "relay-dmz-tls-5349"} {
		c := checkOf(rec, id)
		if c.Outcome == "ok" || !strings.Contains(c.Explanation, "the policy allows it in floor.dmz.turn") {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if len(rec.Calls) != 0 {
		t.Errorf("calls placed without a relay candidate: %+v", rec.Calls)
	}
}
