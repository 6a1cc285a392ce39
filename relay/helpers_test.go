package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

const (
	testRealm   = "example.com"
	testSecret  = "first-secret-0123456789"
	testSecret2 = "second-secret-0123456789"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testServer is a relay on loopback ports the system picks.
type testServer struct {
	*Server
	reg *prometheus.Registry
	log *nstest.SyncBuffer
}

func ipset(t testing.TB, prefixes ...string) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	s, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testConfig serves UDP, TCP and TLS on 127.0.0.1 with a lab certificate,
// static users alice and bob, two REST secrets, and documentation peers.
func testConfig(t testing.TB) Config {
	users, err := creds.ParseUsers([]byte("alice:alice-password\nbob:bob-password\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Name:  "test",
		Realm: testRealm,
		Listeners: []Listener{
			{Transport: UDP, Addr: netip.AddrPortFrom(loopback, 0)},
			{Transport: TCP, Addr: netip.AddrPortFrom(loopback, 0)},
			{Transport: TLS, Addr: netip.AddrPortFrom(loopback, 0)},
		},
		RelayPorts: ir.PortRange{First: 49152, Last: 65535},
		TCPRelay:   true,
		LabOnly:    true,
		Peers:      ipset(t, "198.51.100.0/24", "2001:db8:99::/48", "10.30.0.0/17"),
		Auth:       NewAuth(testRealm, users, []string{testSecret, testSecret2}),
		Limits:     Limits{UserQuota: 10, TotalQuota: 50, MaxLifetime: time.Hour, MaxBPS: DefaultMaxBPS},
		UDPSockets: 2,
		Net:        sandboxNet{},
	}
}

// sandboxNet is the host's network for tests on loopback, where the peers
// (documentation addresses) must never be reached: relayed datagrams to
// anything but loopback are dropped and Connect to it fails.
type sandboxNet struct{}

func (sandboxNet) ListenPacket(network string, addr netip.AddrPort, reusePort bool) (net.PacketConn, error) {
	pc, err := StdNet{}.ListenPacket(network, addr, reusePort)
	if err != nil || reusePort { // listeners answer clients on loopback
		return pc, err
	}
	return sandboxConn{pc}, nil
}

func (sandboxNet) Listen(network string, addr netip.AddrPort, reusePort bool) (net.Listener, error) {
	return StdNet{}.Listen(network, addr, reusePort)
}

func (sandboxNet) Dial(network string, local, remote netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	if !remote.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("sandbox: no connection to %s", remote)
	}
	return StdNet{}.Dial(network, local, remote, timeout)
}

type sandboxConn struct{ net.PacketConn }

func (c sandboxConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if u, ok := addr.(*net.UDPAddr); !ok || !u.AddrPort().Addr().Unmap().IsLoopback() {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{reg: prometheus.NewRegistry(), log: &nstest.SyncBuffer{}}
	cfg.Registerer = ts.reg
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(ts.log, &slog.HandlerOptions{Level: testLogLevel()}))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	t.Cleanup(func() { s.Close() })
	return ts
}

// metric returns the value of a counter or gauge with the given labels.
func (ts *testServer) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// dial connects a client to the server's listener of a transport.
func (ts *testServer) dial(t testing.TB, transport, username, password string) *turnclient.Client {
	t.Helper()
	addr, ok := ts.Listener(transport)
	if !ok {
		t.Fatalf("no %s listener", transport)
	}
	c, err := turnclient.Dial(turnclient.Config{Transport: transport, Server: addr, Username: username, Password: password,
		TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, RTO: 500 * time.Millisecond, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func restCreds(secret, user string, ttl time.Duration) (string, string) {
	return creds.Generate(secret, user, time.Now().Add(ttl))
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// needNamespaces skips when network namespaces are truly unavailable; in CI
// (CI=true) that is a failure, never a skip.
func needNamespaces(t testing.TB, commands ...string) {
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
			t.Fatalf("test cannot run in CI: %v", err)
		}
		t.Skipf("needs root, iproute2 and %s: %v", strings.Join(commands, ", "), err)
	}
}

// nsDial dials from inside a namespace.
func nsDial(ns *netns.NS) func(network, address string) (net.Conn, error) {
	return func(network, address string) (c net.Conn, err error) {
		ns.Do(func() error { c, err = net.DialTimeout(network, address, 5*time.Second); return nil })
		return
	}
}

// testLogLevel is Info, or Debug with TURNWALL_TEST_DEBUG=1.
func testLogLevel() slog.Level {
	if os.Getenv("TURNWALL_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
