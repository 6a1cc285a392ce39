package relay

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/peerfilter"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// deniedPeers is one address of every refused class, with its reason.
var deniedPeers = []struct {
	addr   string
	reason peerfilter.Reason
}{
	{"0.0.0.0", peerfilter.ThisNetwork},
	{"127.0.0.1", peerfilter.Loopback},
	{"10.1.2.3", peerfilter.Private},
	{"172.16.0.1", peerfilter.Private},
	{"192.168.1.1", peerfilter.Private},
	{"100.64.0.1", peerfilter.CGNAT},
	{"169.254.1.1", peerfilter.LinkLocal},
	{"169.254.169.254", peerfilter.Metadata},
	{"224.0.0.1", peerfilter.Multicast},
	{"240.0.0.1", peerfilter.Reserved},
	{"255.255.255.255", peerfilter.Reserved},
	{"192.0.2.1", peerfilter.Documentation},
	{"198.18.0.1", peerfilter.Benchmarking},
	{"8.8.8.8", peerfilter.NotAPeer},
	{"::", peerfilter.Unspecified},
	{"::1", peerfilter.Loopback},
	{"fc00::1", peerfilter.ULA},
	{"fd12::1", peerfilter.ULA},
	{"fe80::1", peerfilter.LinkLocal},
	{"ff02::1", peerfilter.Multicast},
	{"64:ff9b::7f00:1", "nat64-loopback"},
	{"64:ff9b::a9fe:a9fe", "nat64-metadata"},
	{"2002:7f00:1::", "6to4-loopback"},
	{"2606:4700::1111", peerfilter.NotAPeer},
}

// TestDeniedPeers: every refused class gets 403 on CreatePermission and
// ChannelBind, over UDP and TCP, and is counted by reason; allowed peers
// pass.
func TestDeniedPeers(t *testing.T) {
	cfg := testConfig(t)
	cfg.RelayIPs = []netip.Addr{loopback, netip.MustParseAddr("::1")} // an IPv6 relay address, never bound: allocations only
	ts := startServer(t, cfg)
	for _, transport := range []string{UDP, TCP} {
		c4 := ts.dial(t, transport, "alice", "alice-password")
		if _, _, err := c4.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Fatalf("%s allocate: %v", transport, err)
		}
		for i, d := range deniedPeers {
			a := netip.MustParseAddr(d.addr)
			if a.Is6() {
				continue // IPv6 peers on an IPv6 allocation below
			}
			if err := c4.CreatePermission(ctx(t), a); turnclient.Code(err) != 403 {
				t.Errorf("%s CreatePermission %s: %v, want 403", transport, a, err)
			}
			if err := c4.ChannelBind(ctx(t), 0x4000+uint16(i), netip.AddrPortFrom(a, 5000)); turnclient.Code(err) != 403 {
				t.Errorf("%s ChannelBind %s: %v, want 403", transport, a, err)
			}
		}
		// IPv4-mapped, encoded as an IPv6 XOR-PEER-ADDRESS, on an IPv4 allocation.
		for _, mapped := range []string{"::ffff:127.0.0.1", "::ffff:0.0.0.0", "::ffff:169.254.169.254", "::ffff:10.0.0.1"} {
			ip := netip.MustParseAddr(mapped).As16()
			for _, method := range []stun.Method{stun.MethodCreatePermission, stun.MethodChannelBind} {
				attrs := []stun.Setter{turnclient.RawPeerAttr(ip[:], 5000)}
				if method == stun.MethodChannelBind {
					attrs = append(attrs, stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x4f, 0xff, 0, 0}, Length: 4})
				}
				if _, err := c4.Do(ctx(t), method, attrs...); turnclient.Code(err) != 403 {
					t.Errorf("%s %s %s: %v, want 403", transport, method, mapped, err)
				}
			}
		}
		for _, ok := range []string{"198.51.100.7", "10.30.0.5"} {
			if err := c4.CreatePermission(ctx(t), netip.MustParseAddr(ok)); err != nil {
				t.Errorf("%s CreatePermission %s: %v", transport, ok, err)
			}
		}
		if err := c4.ChannelBind(ctx(t), 0x4100, netip.MustParseAddrPort("198.51.100.7:5000")); err != nil {
			t.Errorf("%s ChannelBind to a peer: %v", transport, err)
		}

		c6 := ts.dial(t, transport, "bob", "bob-password")
		if _, _, err := c6.Allocate(ctx(t), turnclient.AllocateOptions{IPv6: true}); err != nil {
			t.Fatalf("%s allocate IPv6: %v", transport, err)
		}
		for i, d := range deniedPeers {
			a := netip.MustParseAddr(d.addr)
			if !a.Is6() {
				continue
			}
			if err := c6.CreatePermission(ctx(t), a); turnclient.Code(err) != 403 {
				t.Errorf("%s CreatePermission [%s]: %v, want 403", transport, a, err)
			}
			if err := c6.ChannelBind(ctx(t), 0x4000+uint16(i), netip.AddrPortFrom(a, 5000)); turnclient.Code(err) != 403 {
				t.Errorf("%s ChannelBind [%s]: %v, want 403", transport, a, err)
			}
		}
		if err := c6.CreatePermission(ctx(t), netip.MustParseAddr("2001:db8:99::5")); err != nil {
			t.Errorf("%s CreatePermission to an IPv6 peer: %v", transport, err)
		}
	}
	for _, d := range deniedPeers {
		if got := ts.metric(t, "turnwall_relay_denied_peers_total", "reason", string(d.reason)); got < 4 {
			t.Errorf("denied_peers_total{reason=%q} = %v, want at least 4", d.reason, got)
		}
	}
	if !strings.Contains(ts.log.String(), `"msg":"peer refused"`) {
		t.Error("refused peers are not logged")
	}
}

// TestDeniedConnect: RFC 6062 Connect to a refused peer gets 403.
func TestDeniedConnect(t *testing.T) {
	ts := startServer(t, testConfig(t))
	c := ts.dial(t, TCP, "alice", "alice-password")
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{TCP: true}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1:22", "0.0.0.0:80", "169.254.169.254:80", "10.0.0.1:443", "8.8.8.8:53"} {
		if _, err := c.Connect(ctx(t), netip.MustParseAddrPort(a)); turnclient.Code(err) != 403 {
			t.Errorf("Connect %s: %v, want 403", a, err)
		}
	}
}

// TestAuth: no credentials, a wrong password, an unknown user, expired or
// forged REST credentials all get 401; two secrets are accepted at once.
func TestAuth(t *testing.T) {
	ts := startServer(t, testConfig(t))
	for _, transport := range []string{UDP, TCP, TLS} {
		// No credentials: the challenge, 401.
		c := ts.dial(t, transport, "", "")
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 401 {
			t.Errorf("%s without credentials: %v, want 401", transport, err)
		}
		if c.Realm() != testRealm || c.Nonce() == "" {
			t.Errorf("%s challenge: realm %q nonce %q", transport, c.Realm(), c.Nonce())
		}
		expiredUser, expiredPass := restCreds(testSecret, "agent1", -time.Minute)
		forgedUser, forgedPass := restCreds("not-the-secret-0123456789", "agent1", time.Hour)
		for _, bad := range []struct{ user, pass, reason string }{
			{"alice", "wrong", "bad-integrity"},
			{"mallory", "x", "unknown-user"},
			{expiredUser, expiredPass, "expired"},
			{forgedUser, forgedPass, "bad-integrity"},
		} {
			c := ts.dial(t, transport, bad.user, bad.pass)
			if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 401 {
				t.Errorf("%s %s/%s: %v, want 401", transport, bad.user, bad.reason, err)
			}
		}
		for _, secret := range []string{testSecret, testSecret2} {
			u, p := restCreds(secret, "agent1", time.Hour)
			c := ts.dial(t, transport, u, p)
			if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
				t.Errorf("%s REST credentials: %v", transport, err)
			}
		}
		c = ts.dial(t, transport, "alice", "alice-password")
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Errorf("%s static user: %v", transport, err)
		}
	}
	for reason, want := range map[string]float64{"bad-integrity": 6, "unknown-user": 3, "expired": 3} {
		if got := ts.metric(t, "turnwall_relay_auth_failures_total", "reason", reason); got != want {
			t.Errorf("auth_failures_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := ts.metric(t, "turnwall_relay_auth_challenges_total"); got < 3 {
		t.Errorf("auth_challenges_total = %v", got)
	}
}

// TestRotation: a secret can be replaced while the relay runs; credentials
// of a removed secret are refused.
func TestRotation(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	u, p := restCreds(testSecret2, "agent1", time.Hour)
	if _, _, err := ts.dial(t, UDP, u, p).Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Update(nil, []string{"third-secret-0123456789", testSecret})
	if _, _, err := ts.dial(t, UDP, u, p).Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 401 {
		t.Errorf("removed secret: %v, want 401", err)
	}
	u, p = restCreds("third-secret-0123456789", "agent1", time.Hour)
	if _, _, err := ts.dial(t, UDP, u, p).Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if _, _, err := ts.dial(t, UDP, "alice", "alice-password").Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 401 {
		t.Errorf("removed static user: %v, want 401", err)
	}
}

// TestOtherUsersAllocation: a second user cannot refresh, add permissions or
// channels to, or delete another user's allocation.
func TestOtherUsersAllocation(t *testing.T) {
	ts := startServer(t, testConfig(t))
	for _, transport := range []string{UDP, TCP} {
		c := ts.dial(t, transport, "alice", "alice-password")
		if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
			t.Fatal(err)
		}
		before := ts.AllocationCount()
		c.SetCredentials("bob", "bob-password")
		if _, err := c.Refresh(ctx(t), 0); turnclient.Code(err) != 441 {
			t.Errorf("%s bob deletes alice's allocation: %v, want 441", transport, err)
		}
		if err := c.CreatePermission(ctx(t), netip.MustParseAddr("198.51.100.7")); turnclient.Code(err) != 441 {
			t.Errorf("%s bob adds a permission: %v, want 441", transport, err)
		}
		if err := c.ChannelBind(ctx(t), 0x4001, netip.MustParseAddrPort("198.51.100.7:5000")); turnclient.Code(err) != 441 {
			t.Errorf("%s bob binds a channel: %v, want 441", transport, err)
		}
		if ts.AllocationCount() != before {
			t.Errorf("%s allocations %d -> %d", transport, before, ts.AllocationCount())
		}
		// Another REST user too (same secret, different user part).
		u, p := restCreds(testSecret, "eve", time.Hour)
		c.SetCredentials(u, p)
		if _, err := c.Refresh(ctx(t), 0); turnclient.Code(err) != 441 {
			t.Errorf("%s REST user eve deletes alice's allocation: %v, want 441", transport, err)
		}
		c.SetCredentials("alice", "alice-password")
		if _, err := c.Refresh(ctx(t), 0); err != nil {
			t.Errorf("%s alice deletes her allocation: %v", transport, err)
		}
		// No allocation on this 5-tuple any more: 437.
		if err := c.CreatePermission(ctx(t), netip.MustParseAddr("198.51.100.7")); turnclient.Code(err) != 437 {
			t.Errorf("%s without an allocation: %v, want 437", transport, err)
		}
	}
}

// TestQuota: the per-user and total quotas answer 486, and deleting an
// allocation frees its place.
func TestQuota(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.UserQuota, cfg.Limits.TotalQuota = 2, 3
	ts := startServer(t, cfg)
	var alice []*turnclient.Client
	for i := range 3 {
		c := ts.dial(t, UDP, "alice", "alice-password")
		_, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{})
		if i < 2 && err != nil {
			t.Fatalf("alice allocation %d: %v", i, err)
		}
		if i == 2 && turnclient.Code(err) != 486 {
			t.Fatalf("alice's third allocation: %v, want 486", err)
		}
		alice = append(alice, c)
	}
	// REST users are counted by their user part, whatever the expiry.
	u1, p1 := restCreds(testSecret, "agent9", time.Hour)
	if _, _, err := ts.dial(t, TCP, u1, p1).Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	u2, p2 := restCreds(testSecret2, "agent9", 2*time.Hour)
	if _, _, err := ts.dial(t, UDP, u2, p2).Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 486 {
		t.Fatalf("total quota: %v, want 486", err)
	}
	if _, err := alice[0].Refresh(ctx(t), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.dial(t, UDP, u2, p2).Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	if got := ts.metric(t, "turnwall_relay_quota_rejections_total", "quota", "user"); got != 1 {
		t.Errorf("user quota rejections %v", got)
	}
	if got := ts.metric(t, "turnwall_relay_quota_rejections_total", "quota", "total"); got != 1 {
		t.Errorf("total quota rejections %v", got)
	}
	if got := ts.metric(t, "turnwall_relay_allocations"); got != 3 {
		t.Errorf("allocations gauge %v", got)
	}
}

// TestLifetimeCap: Allocate and Refresh never get more than the cap.
func TestLifetimeCap(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxLifetime = 2 * time.Minute
	ts := startServer(t, cfg)
	for _, transport := range []string{UDP, TCP} {
		c := ts.dial(t, transport, "alice", "alice-password")
		_, life, err := c.Allocate(ctx(t), turnclient.AllocateOptions{Lifetime: 50 * time.Minute})
		if err != nil || life != 2*time.Minute {
			t.Errorf("%s allocate for 50 min: %v, %v", transport, life, err)
		}
		if life, err := c.Refresh(ctx(t), 40*time.Minute); err != nil || life != 2*time.Minute {
			t.Errorf("%s refresh for 40 min: %v, %v", transport, life, err)
		}
		if life, err := c.Refresh(ctx(t), time.Minute); err != nil || life != time.Minute {
			t.Errorf("%s refresh for 1 min: %v, %v", transport, life, err)
		}
		c2 := ts.dial(t, transport, "bob", "bob-password")
		if _, life, err := c2.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil || life != 2*time.Minute {
			t.Errorf("%s allocate with no lifetime: %v, %v", transport, life, err)
		}
	}
}

// TestRefusedTransports: TCP allocations over UDP or with tcp_relay off get
// 442; an address family without a relay address gets 440.
func TestRefusedTransports(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	if _, _, err := ts.dial(t, UDP, "alice", "alice-password").Allocate(ctx(t), turnclient.AllocateOptions{TCP: true}); turnclient.Code(err) != 442 {
		t.Errorf("TCP allocation over UDP: %v, want 442", err)
	}
	if _, _, err := ts.dial(t, UDP, "alice", "alice-password").Allocate(ctx(t), turnclient.AllocateOptions{IPv6: true}); turnclient.Code(err) != 440 {
		t.Errorf("IPv6 allocation without an IPv6 relay address: %v, want 440", err)
	}
	cfg = testConfig(t)
	cfg.TCPRelay = false
	ts = startServer(t, cfg)
	if _, _, err := ts.dial(t, TCP, "alice", "alice-password").Allocate(ctx(t), turnclient.AllocateOptions{TCP: true}); turnclient.Code(err) != 442 {
		t.Errorf("TCP allocation with tcp_relay off: %v, want 442", err)
	}
}

// TestReservationAcrossSockets: an RTP/RTCP pair (EVEN-PORT, then
// RESERVATION-TOKEN from another client port) works whichever SO_REUSEPORT
// sockets the two clients land on, and the second client keeps working.
func TestReservationAcrossSockets(t *testing.T) {
	cfg := testConfig(t)
	cfg.UDPSockets = 8
	cfg.Limits.UserQuota, cfg.Limits.TotalQuota = 100, 100
	ts := startServer(t, cfg)
	for i := range 16 {
		rtp, rtcp := ts.dial(t, UDP, "alice", "alice-password"), ts.dial(t, UDP, "alice", "alice-password")
		p1, _, err := rtp.Allocate(ctx(t), turnclient.AllocateOptions{EvenPort: true})
		if err != nil || p1.Port()%2 != 0 || rtp.ReservationToken() == nil {
			t.Fatalf("pair %d: even port %s, token %x, %v", i, p1, rtp.ReservationToken(), err)
		}
		p2, _, err := rtcp.Allocate(ctx(t), turnclient.AllocateOptions{ReservationToken: rtp.ReservationToken()})
		if err != nil || p2.Port() != p1.Port()+1 {
			t.Fatalf("pair %d: reserved port %s after %s: %v", i, p2, p1, err)
		}
		if err := rtcp.ChannelBind(ctx(t), 0x4000, netip.MustParseAddrPort("198.51.100.7:5001")); err != nil {
			t.Fatalf("pair %d: the second client's allocation is lost: %v", i, err)
		}
		if _, err := rtcp.Refresh(ctx(t), 0); err != nil {
			t.Fatalf("pair %d: %v", i, err)
		}
		rtp.Refresh(ctx(t), 0)
	}
	for _, g := range ts.groups {
		if n := g.active.Load(); n != 0 {
			t.Errorf("%d clients still steered", n)
		}
	}
}

// TestEvenPortNextTaken: when another socket on the host has the port after
// the even port pion picked, the EVEN-PORT allocation gets an even port
// whose next port is free and held, and the reservation gets that next port
// (before, the RTCP allocation got 508 Insufficient Capacity).
func TestEvenPortNextTaken(t *testing.T) {
	// Four free ports B..B+3 (B even), of which another socket takes B+1.
	var base uint16
	var other *net.UDPConn
	for b := uint16(50000); b < 60000 && other == nil; b += 4 {
		free := true
		for p := b; p < b+4; p++ {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, p)))
			if err != nil {
				free = false
				break
			}
			c.Close()
		}
		if free {
			if c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, b+1))); err == nil {
				base, other = b, c
			}
		}
	}
	if other == nil {
		t.Fatal("no four free ports on loopback between 50000 and 60000")
	}
	defer other.Close()
	cfg := testConfig(t)
	cfg.RelayPorts = ir.PortRange{First: base, Last: base + 3}
	ts := startServer(t, cfg)
	for i := range 8 { // pion picks the even port at random: B or B+2
		rtp, rtcp := ts.dial(t, UDP, "alice", "alice-password"), ts.dial(t, UDP, "alice", "alice-password")
		p1, _, err := rtp.Allocate(ctx(t), turnclient.AllocateOptions{EvenPort: true})
		if err != nil || p1.Port() != base+2 {
			t.Fatalf("round %d: even port %s, %v; want %d (%d is taken)", i, p1, err, base+2, base+1)
		}
		p2, _, err := rtcp.Allocate(ctx(t), turnclient.AllocateOptions{ReservationToken: rtp.ReservationToken()})
		if err != nil || p2.Port() != base+3 {
			t.Fatalf("round %d: reserved port %s, %v; want %d", i, p2, err, base+3)
		}
		for _, c := range []*turnclient.Client{rtcp, rtp} {
			if _, err := c.Refresh(ctx(t), 0); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
}

// TestShutdown: a draining relay refuses new allocations (486), waits for the
// existing ones until its deadline, then closes.
func TestShutdown(t *testing.T) {
	ts := startServer(t, testConfig(t))
	c := ts.dial(t, UDP, "alice", "alice-password")
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	sctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	go func() { done <- ts.Shutdown(sctx) }()
	time.Sleep(100 * time.Millisecond)
	if _, _, err := ts.dial(t, UDP, "bob", "bob-password").Allocate(ctx(t), turnclient.AllocateOptions{}); turnclient.Code(err) != 486 {
		t.Errorf("allocate while draining: %v, want 486", err)
	}
	<-done
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("shutdown returned after %v, before its deadline, with an allocation open", d)
	}
	if _, err := c.Refresh(ctx(t), 0); err == nil {
		t.Error("the relay still answers after Shutdown")
	}
	if !strings.Contains(ts.log.String(), "relay stopped") {
		t.Error("no stop in the log")
	}
}

// TestReservationIsHeld: the port an EVEN-PORT allocation reserves is bound
// by the relay until the RESERVATION-TOKEN is used, so no other socket on the
// host can take it from the client that reserved it (pion/turn only keeps
// the number; under load another socket took it and the client got 508).
func TestReservationIsHeld(t *testing.T) {
	ts := startServer(t, testConfig(t))
	rtp, rtcp := ts.dial(t, UDP, "alice", "alice-password"), ts.dial(t, UDP, "bob", "bob-password")
	p1, _, err := rtp.Allocate(ctx(t), turnclient.AllocateOptions{EvenPort: true})
	if err != nil || rtp.ReservationToken() == nil {
		t.Fatalf("even port %s: %v", p1, err)
	}
	next := netip.AddrPortFrom(p1.Addr(), p1.Port()+1)
	if c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(next)); err == nil {
		c.Close()
		t.Fatalf("another socket could bind the reserved port %s", next)
	}
	p2, _, err := rtcp.Allocate(ctx(t), turnclient.AllocateOptions{ReservationToken: rtp.ReservationToken()})
	if err != nil || p2 != next {
		t.Fatalf("reserved allocation %s, want %s: %v", p2, next, err)
	}
}
