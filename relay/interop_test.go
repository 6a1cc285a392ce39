package relay

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
	"io"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/coturn"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// startProcess runs a command inside the namespace until the test ends.
func startProcess(t testing.TB, ns *netns.NS, log io.Writer, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
}

var (
	uclientSent = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	uclientLost = regexp.MustCompile(`Total lost packets (\d+) \(`)
)

// TestUclientInterop: coturn's turnutils_uclient, the reference client,
// relays traffic through our relay to coturn's turnutils_peer over UDP, TCP
// and TLS, with channels and with Send indications, IPv4 and IPv6, and
// through RFC 6062 TCP allocations: no loss at 50 packets a second.
func TestUclientInterop(t *testing.T) {
	l := newLab(t, "turnutils_uclient", "turnutils_peer")
	ts := l.start(t, nil)
	var peerLog nstest.SyncBuffer
	startProcess(t, l.ns, &peerLog, "turnutils_peer", "-L", labPeer4.String(), "-L", labPeer6.String(), "-p", "3480")
	base := []string{"-W", testSecret, "-u", "uclient", "-n", "25", "-m", "2", "-l", "160", "-z", "20", "-r", "3480"}
	v4 := []string{"-e", labPeer4.String(), "-L", labClient4.String()}
	cases := []struct {
		name string
		args []string
	}{
		{"udp-channel", append(append([]string{}, v4...), labRelay4.String())},
		{"udp-send", append(append([]string{"-s", "-c"}, v4...), labRelay4.String())},
		{"tcp-channel", append(append([]string{"-t", "-c"}, v4...), labRelay4.String())},
		{"tcp-send", append(append([]string{"-t", "-s", "-c"}, v4...), labRelay4.String())},
		{"tls-channel", append(append([]string{"-t", "-S", "-c", "-p", "5349"}, v4...), labRelay4.String())},
		{"udp6-channel", []string{"-c", "-x", "-e", labPeer6.String(), "-L", labClient6.String(), labRelay6.String()}},
		{"tcp-relay", []string{"-T", "-L", labClient4.String(), labRelay4.String()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			out, err := l.ns.Exec(c, "turnutils_uclient", append(append([]string{}, base...), tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s\npeer log:\n%s\nrelay log:\n%s", err, tail(out), peerLog.String(), tail([]byte(ts.log.String())))
			}
			m := uclientSent.FindAllSubmatch(out, -1)
			lost := uclientLost.FindSubmatch(out)
			if len(m) == 0 || lost == nil {
				t.Fatalf("no totals in uclient output:\n%s", tail(out))
			}
			last := m[len(m)-1]
			sent, _ := strconv.Atoi(string(last[1]))
			recv, _ := strconv.Atoi(string(last[2]))
			if sent < 50 || recv != sent || string(lost[1]) != "0" {
				t.Fatalf("sent %d, received %d, lost %s:\n%s", sent, recv, lost[1], tail(out))
			}
			t.Logf("%s: %d sent, %d received, 0 lost", tc.name, sent, recv)
		})
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// TestClientAgainstCoturn: our TURN client works against coturn's
// turnserver, configured by the coturn backend from the same lab policy:
// UDP, TCP and TLS, channels and Send indications, IPv6, RFC 6062, and
// coturn refuses the peers our relay refuses.
func TestClientAgainstCoturn(t *testing.T) {
	l := newLab(t, "turnserver")
	res := compiler.Compile(labPolicy, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	dir := t.TempDir()
	prog := *res.Program
	prog.Relays = append(prog.Relays[:0:0], prog.Relays...)
	prog.Relays[0].TLS.Cert, prog.Relays[0].TLS.Key = writeCert(t, dir)
	files, err := coturn.Backend{}.Emit(&prog, backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(conf, files[0].Data, 0o600); err != nil {
		t.Fatal(err)
	}
	var log nstest.SyncBuffer
	startProcess(t, l.ns, &log, "turnserver", "-c", conf, "--static-auth-secret", testSecret, "--pidfile", filepath.Join(dir, "pid"))
	echo4, echo6, tcpEcho := l.udpEcho(t, labPeer4), l.udpEcho(t, labPeer6), l.tcpEcho(t, labPeer4)

	srv := func(ip netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(ip, port) }
	// Wait for coturn to answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := l.client(t, srv(labRelay4, 3478), UDP, time.Hour)
		_, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{})
		if err == nil {
			c.Refresh(ctx(t), 0)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn does not answer: %v\n%s", err, tail([]byte(log.String())))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct {
		transport string
		server    netip.AddrPort
		peer      netip.AddrPort
	}{
		{UDP, srv(labRelay4, 3478), echo4},
		{TCP, srv(labRelay4, 3478), echo4},
		{TLS, srv(labRelay4, 5349), echo4},
		{UDP, srv(labRelay6, 3478), echo6},
		{TLS, srv(labRelay6, 443), echo6},
	} {
		for _, mode := range []string{"channel", "send"} {
			t.Run(fmt.Sprintf("%s-%s-%s", tc.transport, tc.server, mode), func(t *testing.T) {
				c := l.client(t, tc.server, tc.transport, time.Hour)
				if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{IPv6: tc.server.Addr().Is6()}); err != nil {
					t.Fatal(err)
				}
				var ch uint16
				var err error
				if mode == "channel" {
					ch = 0x4abc
					err = c.ChannelBind(ctx(t), ch, tc.peer)
				} else {
					err = c.CreatePermission(ctx(t), tc.peer.Addr())
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := exchange(t, c, tc.peer, ch, 10); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Refresh(ctx(t), 0); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	t.Run("tcp-relay", func(t *testing.T) {
		c := l.client(t, srv(labRelay4, 3478), TCP, time.Hour)
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{TCP: true}); err != nil {
			t.Fatal(err)
		}
		id, err := c.Connect(ctx(t), tcpEcho)
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.BindConnection(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		defer data.Close()
		data.Write([]byte("through coturn"))
		got := make([]byte, 14)
		data.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.ReadFull(data, got); err != nil || string(got) != "through coturn" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		c := l.client(t, srv(labRelay4, 3478), UDP, time.Hour)
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"127.0.0.1", "0.0.0.0", "169.254.169.254", "10.0.0.1", "8.8.8.8"} {
			if err := c.CreatePermission(ctx(t), netip.MustParseAddr(a)); turnclient.Code(err) != 403 {
				t.Errorf("coturn CreatePermission %s: %v, want 403", a, err)
			}
		}
		ip := netip.MustParseAddr("::ffff:127.0.0.1").As16()
		// coturn answers 443 (family mismatch) where our relay answers 403:
		// refused either way.
		if _, err := c.Do(ctx(t), stun.MethodCreatePermission, turnclient.RawPeerAttr(ip[:], 80)); turnclient.Code(err) != 403 && turnclient.Code(err) != 443 {
			t.Errorf("coturn CreatePermission ::ffff:127.0.0.1: %v, want 403 or 443", err)
		}
		expired, pass := restCreds(testSecret, "agent", -time.Minute)
		c2 := l.client(t, srv(labRelay4, 3478), UDP, time.Hour)
		c2.SetCredentials(expired, pass)
		if _, _, err := c2.Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 401 {
			t.Errorf("coturn with expired credentials: %v, want 401", err)
		}
	})
	if t.Failed() {
		t.Logf("turnserver log:\n%s", tail([]byte(log.String())))
	}
}

// writeCert writes a self-signed certificate and key for a lab server.
func writeCert(t testing.TB, dir string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "turn.lab.example.com"},
		DNSNames: []string{"turn.lab.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyFile
}
