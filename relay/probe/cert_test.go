package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestCertificates: expired, mismatched, untrusted and expiring-soon
// certificates, served by a TLS listener on loopback, are reported as such.
func TestCertificates(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name         string
		nb, na       time.Time
		certName     string
		trust        bool
		status, want string
	}{
		{"valid", now.Add(-time.Hour), now.Add(200 * 24 * time.Hour), "turn.probe.test", true, OK, "days left"},
		{"expired", now.Add(-100 * 24 * time.Hour), now.Add(-3 * 24 * time.Hour), "turn.probe.test", true, Fail, "the certificate expired on"},
		{"mismatch", now.Add(-time.Hour), now.Add(200 * 24 * time.Hour), "other.probe.test", true, Fail, "does not match turn.probe.test"},
		{"untrusted", now.Add(-time.Hour), now.Add(200 * 24 * time.Hour), "turn.probe.test", false, Fail, "not a trusted CA"},
		{"soon", now.Add(-time.Hour), now.Add(5 * 24 * time.Hour), "turn.probe.test", true, Warn, "expires in 4 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile, der := writeCert(t, t.TempDir(), tc.certName, tc.nb, tc.na)
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for i := 0; i < 5; i++ {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.(*tls.Conn).Handshake()
					c.Close()
				}
			}()
			roots := x509.NewCertPool()
			if tc.trust {
				cert, _ := x509.ParseCertificate(der)
				roots.AddCert(cert)
			}
			u, _ := ParseURI(fmt.Sprintf("turns:127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port), "")
			cfg := Config{Roots: roots, ServerName: "turn.probe.test", Timeout: 2 * time.Second}
			cfg.defaults()
			c := certCheck(context.Background(), &cfg, u)
			if c.Status != tc.status || !strings.Contains(c.Reason, tc.want) {
				t.Errorf("%s: %s", c.Status, c.Reason)
			}
			if c.Cert == nil || c.Cert.Version != "TLS 1.3" {
				t.Errorf("cert info %+v", c.Cert)
			}
		})
	}
}
