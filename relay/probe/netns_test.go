package probe

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

// The gateway lets agents out over TCP only: outbound UDP is dropped, as the
// guide's "block all UDP for compliance" trap does.
const dropUDP = `table inet probe_gw {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state established,related accept
		iifname "g-agent" meta l4proto udp drop
	}
}
`

func newNS(t *testing.T, role string) *netns.NS {
	t.Helper()
	ns, err := netns.New(role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// nsConfig opens the probe's sockets inside ns.
func nsConfig(ns *netns.NS) Config {
	return Config{
		Dial: func(network, address string) (c net.Conn, err error) {
			ns.Do(func() error {
				d := net.Dialer{Timeout: 2 * time.Second}
				c, err = d.Dial(network, address)
				return nil
			})
			return
		},
		ListenPacket: func(network, address string) (pc net.PacketConn, err error) {
			ns.Do(func() error {
				pc, err = net.ListenPacket(network, address)
				return nil
			})
			return
		},
	}
}

// TestGatewayDropsUDP: agent namespace, a gateway namespace whose nftables
// ruleset (loaded with nft -f) drops outbound UDP, and a relay namespace
// running Debian's turnserver. The probe reports UDP failing with the
// firewall as the cause and the TCP and TLS fallbacks working; a second
// turnserver with an expired certificate is reported as such; wrong
// credentials come back as 401, explained.
func TestGatewayDropsUDP(t *testing.T) {
	needCoturn(t, true)
	agent, gw, rl := newNS(t, "agent"), newNS(t, "gw"), newNS(t, "relay")
	must(t, netns.Link(agent, "a0", gw, "g-agent"))
	must(t, netns.Link(gw, "g-wan", rl, "r0"))
	must(t, agent.Addr("a0", "10.30.0.2/24"))
	must(t, gw.Addr("g-agent", "10.30.0.1/24"))
	must(t, gw.Addr("g-wan", "198.51.100.1/24"))
	must(t, rl.Addr("r0", "198.51.100.10/24"))
	must(t, agent.DefaultRoute("a0", "10.30.0.1"))
	must(t, rl.DefaultRoute("r0", "198.51.100.1"))
	must(t, gw.Router())
	dir := t.TempDir()
	rules := filepath.Join(dir, "gw.nft")
	must(t, os.WriteFile(rules, []byte(dropUDP), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if out, err := gw.Exec(ctx, "nft", "-f", rules); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	now := time.Now()
	certFile, keyFile, der := writeCert(t, dir, "turn.probe.test", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	startCoturn(t, rl, "198.51.100.10", 3478, 5349, certFile, keyFile)
	oldDir := t.TempDir()
	oldCert, oldKey, oldDer := writeCert(t, oldDir, "turn.probe.test", now.Add(-100*24*time.Hour), now.Add(-2*24*time.Hour))
	old, _ := x509.ParseCertificate(oldDer)
	roots.AddCert(old)
	startCoturn(t, rl, "198.51.100.10", 3490, 5351, oldCert, oldKey)

	uris := func(ss ...string) []URI {
		var out []URI
		for _, s := range ss {
			u, err := ParseURI(s, "")
			must(t, err)
			out = append(out, u)
		}
		return out
	}
	cfg := nsConfig(agent)
	cfg.Secret, cfg.Timeout, cfg.Packets, cfg.Rate, cfg.Roots, cfg.ServerName = testSecret, time.Second, 20, 100, roots, "turn.probe.test"
	cfg.STUN = uris("stun:198.51.100.10:3478")
	cfg.TURN = uris("turn:198.51.100.10:3478?transport=udp", "turn:198.51.100.10:3478?transport=tcp", "turns:198.51.100.10:5349")
	r, err := Run(ctx, cfg)
	must(t, err)
	v := r.Verdict()
	var text strings.Builder
	r.WriteText(&text)
	t.Logf("\n%s", text.String())
	want := map[string]string{"srflx/udp": Fail, "relay/udp": Fail, "relay/tcp": OK, "relay/tls": OK}
	for k, st := range want {
		typ, tr, _ := strings.Cut(k, "/")
		if c := v.find(typ, tr); c.Status != st {
			t.Errorf("%s: %s, want %s: %s", k, c.Status, st, c.Reason)
		}
	}
	if c := v.find("relay", UDP); !strings.Contains(c.Reason, "UDP 3478 to 198.51.100.10 timed out: the firewall drops outbound UDP") {
		t.Errorf("relay/udp cause: %s", c.Reason)
	}
	if !v.Viable || v.Selected == nil || v.Selected.Type != "relay" || v.Selected.Transport != TCP || !strings.Contains(v.Summary, "TURN over TCP 3478 fallback works") {
		t.Errorf("verdict: viable %v selected %+v summary %q", v.Viable, v.Selected, v.Summary)
	}
	if m := find(r, KindMedia, TLS); m == nil || m.Media == nil || m.Media.Up.Received != 20 || m.Media.Down.Received != 20 {
		t.Errorf("TLS media: %+v", m)
	}

	t.Run("expired-certificate", func(t *testing.T) {
		c := cfg
		c.STUN, c.TURN = nil, uris("turns:198.51.100.10:5351")
		r, err := Run(ctx, c)
		must(t, err)
		cc := find(r, KindCert, TLS)
		if cc == nil || cc.Status != Fail || cc.Cert == nil || !cc.Cert.Expired || !strings.Contains(cc.Reason, "the certificate expired on") {
			t.Errorf("expired certificate: %+v", cc)
		}
		if v := r.Verdict(); v.Viable || v.find("relay", TLS).Status != Fail {
			t.Errorf("a relay with an expired certificate is no path for a browser: %+v", v)
		}
	})
	t.Run("wrong-credentials", func(t *testing.T) {
		c := cfg
		c.Secret, c.Username, c.Password = "", "agent", "wrong"
		c.STUN, c.TURN = nil, uris("turn:198.51.100.10:3478?transport=tcp")
		r, err := Run(ctx, c)
		must(t, err)
		a := find(r, KindAllocate, TCP)
		if a == nil || a.Code != 401 || !strings.Contains(a.Reason, "401 Unauthorized") {
			t.Errorf("wrong credentials: %+v", a)
		}
		if r.Verdict().Viable {
			t.Error("viable with wrong credentials")
		}
	})
}
