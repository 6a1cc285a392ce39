package relay

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// The lab: one network namespace with the lab policy's addresses on
// loopback (testdata/relay/lab).
var (
	labRelay4  = netip.MustParseAddr("192.0.2.10")
	labRelay6  = netip.MustParseAddr("2001:db8:30::10")
	labPeer4   = netip.MustParseAddr("198.51.100.20")
	labPeer6   = netip.MustParseAddr("2001:db8:198::20")
	labClient4 = netip.MustParseAddr("203.0.113.5")
	labClient6 = netip.MustParseAddr("2001:db8:203::5")
	labCoturn4 = netip.MustParseAddr("192.0.2.11")
)

const labPolicy = "../testdata/relay/lab"

type lab struct {
	ns  *netns.NS
	cfg Config // the lab relay, from the policy
}

func newLab(t testing.TB, commands ...string) *lab {
	t.Helper()
	needNamespaces(t, commands...)
	ns, err := netns.New("relay")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, a := range []netip.Addr{labRelay4, labRelay6, labPeer4, labPeer6, labClient4, labClient6, labCoturn4} {
		if err := ns.Addr("lo", netip.PrefixFrom(a, a.BitLen()).String()); err != nil {
			t.Fatal(err)
		}
	}
	res := compiler.Compile(labPolicy, compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("lab policy: %v", res.Diags)
	}
	cfg, err := FromIR(res.Program, "lab", labPolicy)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = NewAuth(cfg.Realm, nil, []string{testSecret, testSecret2})
	cfg.Limits = Limits{UserQuota: 100, TotalQuota: 1000, MaxLifetime: time.Hour, MaxBPS: DefaultMaxBPS}
	cfg.Net = InNamespace(ns)
	cfg.UDPSockets = 2
	return &lab{ns: ns, cfg: cfg}
}

func (l *lab) start(t testing.TB, mutate func(*Config)) *testServer {
	cfg := l.cfg
	if mutate != nil {
		mutate(&cfg)
	}
	return startServer(t, cfg)
}

// client dials the relay from the lab's client address.
func (l *lab) client(t testing.TB, server netip.AddrPort, transport string, ttl time.Duration) *turnclient.Client {
	t.Helper()
	u, p := restCreds(testSecret, "agent", ttl)
	local := labClient4
	if server.Addr().Is6() {
		local = labClient6
	}
	c, err := turnclient.Dial(turnclient.Config{Transport: transport, Server: server, Username: u, Password: p,
		TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, RTO: 100 * time.Millisecond, Timeout: 3 * time.Second,
		Dial: nsDialFrom(l.ns, local)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func nsDialFrom(ns *netns.NS, local netip.Addr) func(network, address string) (net.Conn, error) {
	return func(network, address string) (c net.Conn, err error) {
		ns.Do(func() error {
			var la net.Addr = &net.UDPAddr{IP: local.AsSlice()}
			if network == "tcp" {
				la = &net.TCPAddr{IP: local.AsSlice()}
			}
			d := net.Dialer{LocalAddr: la, Timeout: 5 * time.Second}
			c, err = d.Dial(network, address)
			return nil
		})
		return
	}
}

// udpEcho runs a UDP echo server in the namespace until the test ends.
func (l *lab) udpEcho(t testing.TB, ip netip.Addr) netip.AddrPort {
	t.Helper()
	var pc net.PacketConn
	var err error
	l.ns.Do(func() error { pc, err = net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String()); return nil })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], addr)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// tcpEcho runs a TCP echo server in the namespace until the test ends.
func (l *lab) tcpEcho(t testing.TB, ip netip.Addr) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	var err error
	l.ns.Do(func() error { ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, 0).String()); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// exchange sends n packets to peer over the allocation (channel or Send
// indications) and checks that the echoes come back.
func exchange(t testing.TB, c *turnclient.Client, peer netip.AddrPort, channel uint16, n int) error {
	for i := range n {
		payload := fmt.Appendf(nil, "packet %d to %s", i, peer)
		var err error
		if channel != 0 {
			err = c.SendChannel(channel, payload)
		} else {
			err = c.Send(peer, payload)
		}
		if err != nil {
			return err
		}
		d, err := c.ReadData(time.Now().Add(2 * time.Second))
		if err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
		if !bytes.Equal(d.Payload, payload) {
			return fmt.Errorf("packet %d: got %q", i, d.Payload)
		}
		if channel != 0 && d.Channel != channel {
			return fmt.Errorf("packet %d came on channel %#x", i, d.Channel)
		}
		if channel == 0 && d.Peer != peer {
			return fmt.Errorf("packet %d came from %s", i, d.Peer)
		}
	}
	return nil
}

// TestRelayTraffic relays UDP through the relay built from the lab policy,
// over UDP, TCP and TLS, IPv4 and IPv6, with channels and Send indications.
func TestRelayTraffic(t *testing.T) {
	for _, dp := range []bool{true, false} {
		t.Run(map[bool]string{true: "dataplane", false: "goroutines"}[dp], func(t *testing.T) {
			testRelayTraffic(t, !dp)
		})
	}
}

func testRelayTraffic(t *testing.T, noDataplane bool) {
	l := newLab(t)
	ts := l.start(t, func(c *Config) { c.NoDataplane = noDataplane })
	if (ts.dp == nil) != noDataplane {
		t.Fatalf("data plane %v, want %v", ts.dp != nil, !noDataplane)
	}
	echo4, echo6 := l.udpEcho(t, labPeer4), l.udpEcho(t, labPeer6)
	for _, ls := range ts.Listeners() {
		if ls.Addr.Port() == 443 {
			continue // the same as 5349
		}
		for _, mode := range []string{"channel", "send"} {
			t.Run(fmt.Sprintf("%s/%s", ls, mode), func(t *testing.T) {
				c := l.client(t, ls.Addr, ls.Transport, time.Hour)
				v6 := ls.Addr.Addr().Is6()
				relayed, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{IPv6: v6})
				if err != nil {
					t.Fatal(err)
				}
				peer := echo4
				if v6 {
					peer = echo6
				}
				if relayed.Addr() != map[bool]netip.Addr{false: labRelay4, true: labRelay6}[v6] {
					t.Errorf("relayed address %s", relayed)
				}
				var ch uint16
				if mode == "channel" {
					ch = 0x4000
					err = c.ChannelBind(ctx(t), ch, peer)
				} else {
					err = c.CreatePermission(ctx(t), peer.Addr())
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := exchange(t, c, peer, ch, 20); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Refresh(ctx(t), 0); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	if got := ts.metric(t, "turnwall_relay_relayed_packets_total", "direction", "to_peer"); got < 8*20 {
		t.Errorf("relayed_packets_total{to_peer} = %v", got)
	}
	if got := ts.metric(t, "turnwall_relay_relayed_bytes_total", "direction", "from_peer"); got < 8*20*10 {
		t.Errorf("relayed_bytes_total{from_peer} = %v", got)
	}
}

// TestTCPRelay: an RFC 6062 TCP allocation connects to a peer and carries
// bytes both ways; the permission is required for a peer's inbound connection.
func TestTCPRelay(t *testing.T) {
	l := newLab(t)
	ts := l.start(t, nil)
	echo := l.tcpEcho(t, labPeer4)
	srv, _ := ts.Listener(TCP)
	c := l.client(t, srv, TCP, time.Hour)
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{TCP: true}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Connect(ctx(t), echo)
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.BindConnection(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	msg := bytes.Repeat([]byte("tcp relay "), 500)
	if _, err := data.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	data.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(data, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v", err)
	}
	// Connect to the relay's own listener is refused, to another relayed
	// port it is not (checked in TestRelayToItself for UDP).
	if _, err := c.Connect(ctx(t), netip.AddrPortFrom(labRelay4, 3478)); turnclient.Code(err) == 0 {
		t.Error("Connect to the relay's own listener succeeded")
	}
}

// TestRelayToItself: two clients of the same relay reach each other's
// relayed addresses (as two browsers on one TURN server do), but an
// allocation cannot reach the relay's listeners.
func TestRelayToItself(t *testing.T) {
	l := newLab(t)
	ts := l.start(t, nil)
	srv, _ := ts.Listener(UDP)
	a, b := l.client(t, srv, UDP, time.Hour), l.client(t, srv, UDP, time.Hour)
	ra, _, err := a.Allocate(ctx(t), turnclient.AllocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rb, _, err := b.Allocate(ctx(t), turnclient.AllocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreatePermission(ctx(t), rb.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := b.CreatePermission(ctx(t), ra.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(rb, []byte("hello b")); err != nil {
		t.Fatal(err)
	}
	d, err := b.ReadData(time.Now().Add(2 * time.Second))
	if err != nil || string(d.Payload) != "hello b" || d.Peer != ra {
		t.Fatalf("b got %+v, %v", d, err)
	}
	// A STUN Binding request to the relay's own listener through the
	// allocation must not arrive (no answer comes back).
	before := ts.metric(t, "turnwall_relay_denied_peers_total", "reason", "relay-address")
	bind := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if err := a.Send(netip.AddrPortFrom(labRelay4, 3478), bind); err != nil {
		t.Fatal(err)
	}
	if d, err := a.ReadData(time.Now().Add(300 * time.Millisecond)); err == nil {
		t.Fatalf("the relay's listener answered through an allocation: %+v", d)
	}
	if after := ts.metric(t, "turnwall_relay_denied_peers_total", "reason", "relay-address"); after != before+1 {
		t.Errorf("denied relay-address %v -> %v", before, after)
	}
}
