package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

const testSecret = "probe-test-secret-0123456789"

// needCoturn skips without turnserver, and fails in CI.
func needCoturn(t *testing.T, namespaces bool) {
	t.Helper()
	var err error
	if _, err = exec.LookPath("turnserver"); err != nil {
		err = fmt.Errorf("turnserver (Debian package coturn) is missing")
	}
	if err == nil && namespaces {
		err = netns.Available()
		if err == nil {
			if _, err = exec.LookPath("nft"); err != nil {
				err = fmt.Errorf("nft (Debian package nftables) is missing")
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("coturn test cannot run in CI: %v", err)
		}
		t.Skip(err)
	}
}

// writeCert writes a self-signed certificate for name valid from nb to na.
func writeCert(t testing.TB, dir, name string, nb, na time.Time) (certFile, keyFile string, der []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile, der
}

// freePorts returns n distinct free ports on 127.0.0.1, free for TCP and UDP.
func freePorts(t testing.TB, n int) []int {
	var out []int
	seen := map[int]bool{}
	for i := 0; len(out) < n && i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil || seen[p] || seen[p+1] {
			continue
		}
		u.Close()
		seen[p] = true
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatal("no free ports")
	}
	return out
}

// coturn is a running turnserver.
type coturn struct {
	log       *nstest.SyncBuffer
	port, tls int // listening ports (UDP/TCP and TLS)
}

// startCoturn runs turnserver with REST secret auth on ip, in ns when not
// nil, until the test ends, and waits until it answers.
func startCoturn(t *testing.T, ns *netns.NS, ip string, port, tlsPort int, certFile, keyFile string, extra ...string) *coturn {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-n", "--no-cli", "--log-file=stdout", "--simple-log", "--listening-ip", ip, "--relay-ip", ip,
		"--listening-port", fmt.Sprint(port), "--tls-listening-port", fmt.Sprint(tlsPort),
		"--alt-listening-port", "0", "--alt-tls-listening-port", "0",
		"--min-port", "50000", "--max-port", "50999", "--realm", "probe.test",
		"--use-auth-secret", "--static-auth-secret", testSecret, "--no-dtls",
		"--cert", certFile, "--pkey", keyFile, "--pidfile", filepath.Join(dir, "pid"), "--no-software-attribute"}
	if strings.HasPrefix(ip, "127.") {
		args = append(args, "--allow-loopback-peers", "--cli-port", "0")
	}
	args = append(args, extra...)
	name, cargs := "turnserver", args
	if ns != nil {
		name, cargs = "ip", append([]string{"netns", "exec", ns.Name, "turnserver"}, args...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, cargs...)
	log := &nstest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("turnserver log:\n%s", tail(log.String()))
		}
	})
	// Wait until it answers TCP on both ports (bounded).
	deadline := time.Now().Add(8 * time.Second)
	for _, p := range []int{port, tlsPort} {
		for {
			var c net.Conn
			var err error
			dial := func() error {
				c, err = net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(p)), 300*time.Millisecond)
				return nil
			}
			if ns != nil {
				ns.Do(dial)
			} else {
				dial()
			}
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("turnserver does not listen on %s:%d: %v\n%s", ip, p, err, tail(log.String()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return &coturn{log: log, port: port, tls: tlsPort}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
