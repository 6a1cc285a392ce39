package probe

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
)

// Our relay's lab (testdata/relay/lab, as relay/nslab_test.go sets it up): one
// namespace with the policy's relay and agent addresses on loopback.
var (
	ourRelay4  = netip.MustParseAddr("192.0.2.10")
	ourClient4 = netip.MustParseAddr("203.0.113.5")
)

const (
	ourPolicy = "../../testdata/relay/lab"
	ourFQDN   = "turn.lab.example.com" // the lab relay's fqdn
)

// needRelayLab skips without root, namespaces or the given commands, and
// fails in CI.
func needRelayLab(t *testing.T, commands ...string) {
	t.Helper()
	err := netns.Available()
	for _, c := range commands {
		if err != nil {
			break
		}
		if _, lerr := exec.LookPath(c); lerr != nil {
			err = lerr
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("relay lab test cannot run in CI: %v", err)
		}
		t.Skipf("needs root, iproute2 and %s: %v", strings.Join(commands, ", "), err)
	}
}

// relayNet opens the relay's sockets in a namespace (relay's nsNet).
type relayNet struct{ ns *netns.NS }

func (n relayNet) ListenPacket(network string, addr netip.AddrPort, reusePort bool) (pc net.PacketConn, err error) {
	n.ns.Do(func() error { pc, err = (relay.StdNet{}).ListenPacket(network, addr, reusePort); return nil })
	return
}

func (n relayNet) Listen(network string, addr netip.AddrPort, reusePort bool) (l net.Listener, err error) {
	n.ns.Do(func() error { l, err = (relay.StdNet{}).Listen(network, addr, reusePort); return nil })
	return
}

func (n relayNet) Dial(network string, local, remote netip.AddrPort, timeout time.Duration) (c net.Conn, err error) {
	n.ns.Do(func() error { c, err = (relay.StdNet{}).Dial(network, local, remote, timeout); return nil })
	return
}

// ourRelayLab starts turnwall's relay from the lab policy in a new
// namespace: REST credentials from testSecret, UDP and TCP on 3478 and TLS
// on 5349 of 192.0.2.10 with a certificate for the relay's FQDN made here.
// It returns the namespace and the roots that trust the certificate.
func ourRelayLab(t *testing.T, commands ...string) (*netns.NS, *x509.CertPool) {
	t.Helper()
	ns, roots, _ := ourRelayLabWith(t, relay.Limits{UserQuota: 100, TotalQuota: 1000, MaxLifetime: time.Hour, MaxBPS: relay.DefaultMaxBPS}, nil, commands...)
	return ns, roots
}

// ourRelayLabWith is ourRelayLab with the given limits and static users.
func ourRelayLabWith(t *testing.T, limits relay.Limits, users []creds.User, commands ...string) (*netns.NS, *x509.CertPool, *relay.Server) {
	t.Helper()
	needRelayLab(t, commands...)
	ns := newNS(t, "ourrelay")
	for _, a := range []netip.Addr{ourRelay4, ourClient4} {
		must(t, ns.Addr("lo", netip.PrefixFrom(a, a.BitLen()).String()))
	}
	res := compiler.Compile(ourPolicy, compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("lab policy: %v", res.Diags)
	}
	cfg, err := relay.FromIR(res.Program, "lab", ourPolicy)
	must(t, err)
	if cfg.FQDN != ourFQDN {
		t.Fatalf("lab relay FQDN %q, want %q", cfg.FQDN, ourFQDN)
	}
	certFile, keyFile, der := writeCert(t, t.TempDir(), ourFQDN, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	cfg.CertFile, cfg.KeyFile = certFile, keyFile
	cfg.Listeners = []relay.Listener{
		{Transport: relay.UDP, Addr: netip.AddrPortFrom(ourRelay4, 3478)},
		{Transport: relay.TCP, Addr: netip.AddrPortFrom(ourRelay4, 3478)},
		{Transport: relay.TLS, Addr: netip.AddrPortFrom(ourRelay4, 5349)},
	}
	cfg.RelayIPs = []netip.Addr{ourRelay4}
	cfg.Auth = relay.NewAuth(cfg.Realm, users, []string{testSecret})
	cfg.Limits = limits
	cfg.UDPSockets = 2
	cfg.Net = relayNet{ns}
	s, err := relay.New(cfg)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return ns, roots, s
}

// agentConfig opens the probe's sockets in ns from the lab's agent address,
// one the policy's agents "lab" covers.
func agentConfig(ns *netns.NS) Config {
	return Config{
		Dial: func(network, address string) (c net.Conn, err error) {
			ns.Do(func() error {
				var la net.Addr = &net.UDPAddr{IP: ourClient4.AsSlice()}
				if strings.HasPrefix(network, "tcp") {
					la = &net.TCPAddr{IP: ourClient4.AsSlice()}
				}
				d := net.Dialer{LocalAddr: la, Timeout: 2 * time.Second}
				c, err = d.Dial(network, address)
				return nil
			})
			return
		},
		ListenPacket: func(network, address string) (pc net.PacketConn, err error) {
			ns.Do(func() error {
				pc, err = net.ListenPacket(network, netip.AddrPortFrom(ourClient4, 0).String())
				return nil
			})
			return
		},
	}
}

func parseURIs(t *testing.T, ss ...string) []URI {
	t.Helper()
	var out []URI
	for _, s := range ss {
		u, err := ParseURI(s, "")
		must(t, err)
		out = append(out, u)
	}
	return out
}

// dropBinding is a firewall in the lab namespace that drops STUN Binding
// requests (message type 0x0001, the first two bytes after the UDP header)
// to the relay's UDP port and lets TURN through: no server-reflexive
// candidate, so no direct path, while TURN over UDP works. It drops on input,
// silently, as a firewall on the way does (a drop on output would fail the
// probe's sendto with EPERM instead of a timeout).
const dropBinding = `table inet probe_lab {
	chain input {
		type filter hook input priority 0; policy accept;
		ip daddr 192.0.2.10 udp dport 3478 @th,64,16 0x0001 drop
	}
}
`

// TestOurRelay: the probe against turnwall's own relay (package relay, from
// the lab policy, in a namespace), run from the lab's agent address: every
// check OK over UDP, TCP and TLS with media both ways and no loss, the
// certificate OK for the relay's FQDN; wrong credentials give 401 with the
// explanation; with STUN Binding dropped (no direct path) relay/udp wins.
func TestOurRelay(t *testing.T) {
	ns, roots := ourRelayLab(t, "nft")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	turns := parseURIs(t, "turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.10:3478?transport=tcp", "turns:192.0.2.10:5349")
	base := agentConfig(ns)
	base.TURN, base.Secret, base.Timeout, base.Packets, base.Rate = turns, testSecret, 2*time.Second, 25, 100
	base.Roots, base.ServerName = roots, ourFQDN

	t.Run("ok", func(t *testing.T) {
		cfg := base
		cfg.STUN = parseURIs(t, "stun:192.0.2.10:3478")
		r, err := Run(ctx, cfg)
		must(t, err)
		for _, c := range r.Checks {
			t.Logf("%-17s %-4s %-5s %7.1fms %s", c.Kind, c.Transport, c.Status, c.Millis, c.Reason)
			if c.Status != OK {
				t.Errorf("%s %s: %s: %s (%s)", c.Kind, c.Target, c.Status, c.Reason, c.Error)
			}
		}
		for _, tr := range []string{UDP, TCP, TLS} {
			m := find(r, KindMedia, tr)
			if m == nil || m.Media == nil || m.Media.Up.Received != 25 || m.Media.Down.Received != 25 || m.Media.RTT.N != 25 {
				t.Errorf("media %s: %+v", tr, m)
			}
			a := find(r, KindAllocate, tr)
			if a == nil || !strings.HasPrefix(a.Relayed, "192.0.2.10:") {
				t.Errorf("allocate %s: %+v", tr, a)
			}
		}
		if c := find(r, KindCert, TLS); c == nil || c.Cert == nil || !c.Cert.ChainOK || !c.Cert.NameOK || c.Cert.DaysLeft < 88 {
			t.Errorf("cert: %+v", c)
		}
		if c := find(r, KindSTUN, UDP); c == nil || !strings.HasPrefix(c.Mapped, ourClient4.String()+":") {
			t.Errorf("stun: %+v", c)
		}
		v := r.Verdict()
		for _, k := range []string{"srflx/udp", "relay/udp", "relay/tcp", "relay/tls"} {
			typ, tr, _ := strings.Cut(k, "/")
			if c := v.find(typ, tr); c.Status != OK {
				t.Errorf("%s: %s: %s", k, c.Status, c.Reason)
			}
		}
		if !v.Viable || v.Summary != "every path tested works" {
			t.Errorf("verdict: viable %v summary %q", v.Viable, v.Summary)
		}
	})

	t.Run("wrong-credentials", func(t *testing.T) {
		for _, mode := range []string{"password", "secret"} {
			cfg := base
			cfg.TURN, cfg.Timeout, cfg.Packets = turns[:2], time.Second, 5
			if mode == "password" {
				cfg.Secret, cfg.Username, cfg.Password = "", "agent", "wrong"
			} else {
				cfg.Secret = "another-secret-0123456789"
			}
			r, err := Run(ctx, cfg)
			must(t, err)
			for _, tr := range []string{UDP, TCP} {
				c := find(r, KindAllocate, tr)
				want := fmt.Sprintf("%s 3478 to 192.0.2.10: the relay refused the credentials (401 Unauthorized)", strings.ToUpper(tr))
				if c == nil || c.Status != Fail || c.Code != 401 || !strings.Contains(c.Reason, want) {
					t.Errorf("%s: allocate %s with wrong credentials: %+v", mode, tr, c)
				}
			}
			if v := r.Verdict(); v.find("relay", UDP).Status != Fail || v.find("relay", TCP).Status != Fail {
				t.Errorf("%s: relay candidates with wrong credentials: %+v", mode, v.Candidates)
			}
		}
	})

	t.Run("no-direct-path", func(t *testing.T) {
		rules := filepath.Join(t.TempDir(), "lab.nft")
		must(t, os.WriteFile(rules, []byte(dropBinding), 0o644))
		if out, err := ns.Exec(ctx, "nft", "-f", rules); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
		t.Cleanup(func() { ns.Exec(context.Background(), "nft", "delete", "table", "inet", "probe_lab") })
		cfg := base
		cfg.Timeout, cfg.Packets = time.Second, 10
		r, err := Run(ctx, cfg)
		must(t, err)
		v := r.Verdict()
		var text strings.Builder
		r.WriteText(&text)
		t.Logf("\n%s", text.String())
		if c := v.find("srflx", UDP); c.Status != Fail || !strings.Contains(c.Reason, "UDP 3478 to 192.0.2.10 timed out") {
			t.Errorf("srflx/udp: %s: %s", c.Status, c.Reason)
		}
		for _, tr := range []string{UDP, TCP, TLS} {
			if c := v.find("relay", tr); c.Status != OK {
				t.Errorf("relay/%s: %s: %s", tr, c.Status, c.Reason)
			}
		}
		if !v.Viable || v.Selected == nil || v.Selected.Type != "relay" || v.Selected.Transport != UDP ||
			v.Selected.Priority != Priority("relay", UDP) || !strings.HasPrefix(v.Prediction, "relay/udp") {
			t.Errorf("verdict: viable %v selected %+v prediction %q", v.Viable, v.Selected, v.Prediction)
		}
		if m := find(r, KindMedia, UDP); m == nil || m.Media == nil || m.Media.Up.Received != 10 || m.Media.Down.Received != 10 {
			t.Errorf("UDP media: %+v", m)
		}
	})
}
