package probe

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"
)

func loopbackURIs(t *testing.T, port, tlsPort int) []URI {
	var out []URI
	for _, s := range []string{
		fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port),
		fmt.Sprintf("turn:127.0.0.1:%d?transport=tcp", port),
		fmt.Sprintf("turns:127.0.0.1:%d", tlsPort),
	} {
		u, err := ParseURI(s, "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func find(r *Report, kind, transport string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Kind == kind && r.Checks[i].Transport == transport {
			return &r.Checks[i]
		}
	}
	return nil
}

// TestCoturnLoopback: every check against Debian's turnserver on loopback,
// with REST credentials, then with wrong credentials (401 explained) and a
// certificate for another name (mismatch reported).
func TestCoturnLoopback(t *testing.T) {
	needCoturn(t, false)
	dir := t.TempDir()
	certFile, keyFile, der := writeCert(t, dir, "turn.probe.test", time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	ports := freePorts(t, 2)
	startCoturn(t, nil, "127.0.0.1", ports[0], ports[1], certFile, keyFile)
	turns := loopbackURIs(t, ports[0], ports[1])
	stun, _ := ParseURI(fmt.Sprintf("stun:127.0.0.1:%d", ports[0]), "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("ok", func(t *testing.T) {
		r, err := Run(ctx, Config{STUN: []URI{stun}, TURN: turns, Secret: testSecret, Timeout: 2 * time.Second,
			Packets: 25, Rate: 100, Roots: roots, ServerName: "turn.probe.test"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Checks {
			t.Logf("%-17s %-4s %-5s %7.1fms %s", c.Kind, c.Transport, c.Status, c.Millis, c.Reason)
			if c.Status != OK {
				t.Errorf("%s %s: %s (%s)", c.Kind, c.Target, c.Status, c.Error)
			}
		}
		for _, tr := range []string{UDP, TCP, TLS} {
			m := find(r, KindMedia, tr)
			if m == nil || m.Media == nil || m.Media.Up.Received != 25 || m.Media.Down.Received != 25 || m.Media.RTT.N != 25 {
				t.Errorf("media %s: %+v", tr, m)
			}
		}
		if c := find(r, KindCert, TLS); c == nil || c.Cert == nil || !c.Cert.ChainOK || !c.Cert.NameOK || c.Cert.DaysLeft < 88 {
			t.Errorf("cert: %+v", c)
		}
		if c := find(r, KindSTUN, UDP); c == nil || c.Mapped == "" {
			t.Errorf("stun: %+v", c)
		}
	})
	t.Run("wrong-credentials", func(t *testing.T) {
		r, _ := Run(ctx, Config{TURN: turns[:2], Username: "agent", Password: "wrong", Timeout: time.Second, Packets: 5, Rate: 100})
		for _, tr := range []string{UDP, TCP} {
			c := find(r, KindAllocate, tr)
			if c == nil || c.Status != Fail || c.Code != 401 || !strings.Contains(c.Reason, "401 Unauthorized") {
				t.Errorf("allocate %s with wrong credentials: %+v", tr, c)
			}
		}
	})
	t.Run("name-mismatch", func(t *testing.T) {
		r, _ := Run(ctx, Config{TURN: turns[2:], Secret: testSecret, Timeout: time.Second, Packets: 5, Rate: 100, Roots: roots, ServerName: "turn.example.com"})
		c := find(r, KindCert, TLS)
		if c == nil || c.Status != Fail || c.Cert.NameOK || !strings.Contains(c.Reason, "does not match turn.example.com") {
			t.Errorf("mismatched certificate: %+v", c)
		}
		if a := find(r, KindAllocate, TLS); a == nil || a.Status != OK {
			t.Errorf("the TURN allocation itself works: %+v", a)
		}
	})
}

// TestCoturnLoad: a tiny ramp through coturn over UDP and TCP: every step
// opens every stream, loses nothing and scores a good MOS.
func TestCoturnLoad(t *testing.T) {
	needCoturn(t, false)
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "turn.probe.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	ports := freePorts(t, 2)
	startCoturn(t, nil, "127.0.0.1", ports[0], ports[1], certFile, keyFile)
	for _, u := range loopbackURIs(t, ports[0], ports[1])[:2] {
		t.Run(u.Transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			calls := 0
			rep, err := Load(ctx, LoadConfig{Config: Config{Secret: testSecret, Timeout: 2 * time.Second, Rate: 50, Size: 160},
				Target: u, Streams: 8, Duration: 2 * time.Second, Ramp: true,
				Progress: func(step, steps, streams int, el, total time.Duration) { calls++ }})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Steps) != 4 || rep.Capacity != 8 || rep.FallsAt != 0 || calls < 4 {
				t.Fatalf("%+v (progress calls %d)", rep, calls)
			}
			for _, s := range rep.Steps {
				t.Logf("%d streams: opened %d loss %.2f%% rtt p95 %.2f ms jitter p95 %.2f ms MOS %.2f", s.Streams, s.Opened, s.LossPct, s.RTT.P95, s.Jitter.P95, s.MOS)
				if s.Opened != s.Streams || s.LossPct > 1 || s.MOS < 4.2 || s.RTT.N == 0 {
					t.Errorf("step %+v", s)
				}
			}
		})
	}
}
