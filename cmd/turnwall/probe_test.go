package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
)

// probeRelayNet opens the relay's sockets in a namespace.
type probeRelayNet struct{ ns *netns.NS }

func (n probeRelayNet) ListenPacket(network string, addr netip.AddrPort, reusePort bool) (pc net.PacketConn, err error) {
	n.ns.Do(func() error { pc, err = (relay.StdNet{}).ListenPacket(network, addr, reusePort); return nil })
	return
}

func (n probeRelayNet) Listen(network string, addr netip.AddrPort, reusePort bool) (l net.Listener, err error) {
	n.ns.Do(func() error { l, err = (relay.StdNet{}).Listen(network, addr, reusePort); return nil })
	return
}

func (n probeRelayNet) Dial(network string, local, remote netip.AddrPort, timeout time.Duration) (c net.Conn, err error) {
	n.ns.Do(func() error { c, err = (relay.StdNet{}).Dial(network, local, remote, timeout); return nil })
	return
}

// cmdTurnrelay starts turnwall's relay in the test process on 127.0.0.1 (UDP
// and TCP, ports the system picks), stopped when the script ends, and sets
// $TURN_UDP and $TURN_TCP to its TURN URIs:
//
//	turnrelay [user-quota N] [secret S] [user NAME:PASSWORD]
//
// With `turnwall relay`'s default limits otherwise. On loopback every peer
// is refused (the probe's own peer allocation included), so relay
// candidates fail after the allocations: enough for credentials and quota.
func cmdTurnrelay(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args)%2 != 0 {
		ts.Fatalf("usage: turnrelay [user-quota N] [secret S] [user NAME:PASSWORD]")
	}
	limits := relay.DefaultLimits()
	var secrets []string
	var users []creds.User
	for i := 0; i < len(args); i += 2 {
		switch args[i] {
		case "user-quota":
			n, err := strconv.Atoi(args[i+1])
			ts.Check(err)
			limits.UserQuota = n
		case "secret":
			secrets = append(secrets, args[i+1])
		case "user":
			u, err := creds.ParseUsers([]byte(args[i+1]), false)
			ts.Check(err)
			users = append(users, u...)
		default:
			ts.Fatalf("turnrelay: unknown option %q", args[i])
		}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	s, err := relay.New(relay.Config{Name: "script", Realm: "script.test",
		Listeners:  []relay.Listener{{Transport: relay.UDP, Addr: netip.AddrPortFrom(lo, 0)}, {Transport: relay.TCP, Addr: netip.AddrPortFrom(lo, 0)}},
		RelayPorts: ir.PortRange{First: 49152, Last: 65535}, Auth: relay.NewAuth("script.test", users, secrets), Limits: limits, UDPSockets: 1})
	ts.Check(err)
	ts.Defer(func() { s.Close() })
	udp, _ := s.Listener(relay.UDP)
	tcp, _ := s.Listener(relay.TCP)
	ts.Setenv("TURN_UDP", fmt.Sprintf("turn:%s?transport=udp", udp))
	ts.Setenv("TURN_TCP", fmt.Sprintf("turn:%s?transport=tcp", tcp))
}

// writeProbeCert writes a self-signed certificate and key for name.
func writeProbeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestProbeCmd runs `turnwall probe` (the test binary, in the lab namespace)
// against turnwall's relay from the lab policy, started in that namespace
// with a REST secret and a certificate for its FQDN: exit 0, every candidate
// of the table OK, relay/udp the first fallback behind the direct path; with
// a wrong secret over TCP and TLS, exit 1 and the 401 explained.
func TestProbeCmd(t *testing.T) {
	err := netns.Available()
	if err == nil {
		_, err = exec.LookPath("turnwall") // the test binary, installed by testscript
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("probe command test cannot run in CI: %v", err)
		}
		t.Skip(err)
	}
	ns, err := netns.New("probecli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, a := range []string{"192.0.2.10/32", "203.0.113.5/32"} {
		if err := ns.Addr("lo", a); err != nil {
			t.Fatal(err)
		}
	}
	res := compiler.Compile(labPolicy, compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("lab policy: %v", res.Diags)
	}
	cfg, err := relay.FromIR(res.Program, "lab", labPolicy)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.CertFile, cfg.KeyFile = writeProbeCert(t, dir, cfg.FQDN)
	relay4 := netip.MustParseAddr("192.0.2.10")
	cfg.Listeners = []relay.Listener{
		{Transport: relay.UDP, Addr: netip.AddrPortFrom(relay4, 3478)},
		{Transport: relay.TCP, Addr: netip.AddrPortFrom(relay4, 3478)},
		{Transport: relay.TLS, Addr: netip.AddrPortFrom(relay4, 5349)},
	}
	cfg.RelayIPs = []netip.Addr{relay4}
	const secret = "probe-cli-secret-0123456789"
	cfg.Auth = relay.NewAuth(cfg.Realm, nil, []string{secret})
	cfg.Limits = relay.Limits{UserQuota: 100, TotalQuota: 1000, MaxLifetime: time.Hour, MaxBPS: relay.DefaultMaxBPS}
	cfg.UDPSockets = 2
	cfg.Net = probeRelayNet{ns}
	s, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	all := []string{"turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.10:3478?transport=tcp", "turns:192.0.2.10:5349"}
	probeCmd := func(secret string, turns []string) (int, string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		args := []string{"netns", "exec", ns.Name, "turnwall", "probe", "--server-name", cfg.FQDN, "--ca-file", cfg.CertFile,
			"--timeout", "2s", "--packets", "10", "--rate", "100"}
		for _, u := range turns {
			args = append(args, "--turn", u)
		}
		cmd := exec.CommandContext(ctx, "ip", args...)
		cmd.Env = append(os.Environ(), "TURNWALL_PROBE_SECRET="+secret)
		cmd.WaitDelay = 2 * time.Second
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("turnwall probe: %v\n%s", err, errOut.String())
			}
			code = ee.ExitCode()
		}
		return code, out.String(), errOut.String()
	}

	code, out, errOut := probeCmd(secret, all)
	t.Logf("\n%s", out)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^CANDIDATE +TRANSPORT +STATUS +PRIORITY +ADDRESS +DETAIL$`,
		`(?m)^host +udp +OK +2130706431 `,
		`(?m)^srflx +udp +OK +1694498815 `,
		`(?m)^relay +udp +OK +16777215 +192\.0\.2\.10:\d+ +media both ways: .*loss up 0\.0% down 0\.0%`,
		`(?m)^relay +tcp +OK +8388607 +192\.0\.2\.10:\d+ +media both ways: .*loss up 0\.0% down 0\.0%`,
		`(?m)^relay +tls +OK +4194303 +192\.0\.2\.10:\d+ +media both ways: .*loss up 0\.0% down 0\.0%`,
		`(?m)^  OK +tls-certificate +tls +turns:192\.0\.2\.10:5349 .*valid for turn\.lab\.example\.com`,
		`(?m)^Browser: direct UDP works: .*fallback: relay/udp \(priority 16777215\), relay/tcp`,
		`(?m)^Verdict: viable media path: every path tested works$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output lacks %s", re)
		}
	}
	if regexp.MustCompile(`(?m)^  (FAIL|WARN|SKIP) `).MatchString(out) {
		t.Error("a check did not pass")
	}

	// Over TCP and TLS only there is no srflx candidate: with the relay
	// refusing the credentials, no path at all.
	code, out, _ = probeCmd("another-secret-0123456789", all[1:])
	if code != 1 {
		t.Errorf("wrong secret: exit %d, want 1\n%s", code, out)
	}
	for _, re := range []string{
		`(?m)^relay +tls +FAIL .*TLS over TCP 5349 to 192\.0\.2\.10: the relay refused the credentials \(401 Unauthorized\)`,
		`(?m)^relay +tcp +FAIL .*TCP 3478 to 192\.0\.2\.10: the relay refused the credentials \(401 Unauthorized\)`,
		`(?m)^Verdict: no viable media path`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("wrong secret: output lacks %s\n%s", re, out)
		}
	}
}
