package call

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
)

// The test network: agent, far end (a media server) and relay, each in its
// namespace behind a router namespace. Every host carries its documentation
// address as /32 (/128) on eth0 next to a transfer address shared with the
// router, which must never show up in a call.
var (
	agent4   = netip.MustParseAddr("10.20.0.10")
	agent6   = netip.MustParseAddr("fd00:20::10")
	far4     = netip.MustParseAddr("52.129.96.10")
	relay4   = netip.MustParseAddr("192.0.2.10")
	transfer = netip.MustParsePrefix("100.64.0.0/16")
	transf6  = netip.MustParsePrefix("fd7e:7a11::/32")
)

const (
	testRealm  = "lab.example"
	testSecret = "call-test-secret-0123456789"
	mediaFirst = 16384
	mediaLast  = 16484
)

type testNet struct {
	gw, agent, far, relay *netns.NS
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	nstest.NeedKernel(t, "ip")
	n := &testNet{gw: nstest.NewNS(t, "gw"), agent: nstest.NewNS(t, "agent"), far: nstest.NewNS(t, "far"), relay: nstest.NewNS(t, "relay")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.gw.Router())
	for _, h := range []struct {
		ns     *netns.NS
		gwDev  string
		zone   int
		addrs  []netip.Addr
		withV6 bool
	}{
		{n.agent, "vlan20", 1, []netip.Addr{agent4, agent6}, true},
		{n.far, "wan0", 2, []netip.Addr{far4}, false},
		{n.relay, "dmz0", 3, []netip.Addr{relay4}, false},
	} {
		must(netns.Link(n.gw, h.gwDev, h.ns, "eth0"))
		gw4 := netip.AddrFrom4([4]byte{100, 64, byte(h.zone), 1})
		host4 := netip.AddrFrom4([4]byte{100, 64, byte(h.zone), 10})
		must(n.gw.Addr(h.gwDev, gw4.String()+"/24"))
		must(h.ns.Addr("eth0", host4.String()+"/24"))
		var gw6, host6 netip.Addr
		if h.withV6 {
			gw6 = netip.MustParseAddr(fmt.Sprintf("fd7e:7a11:0:%d::1", h.zone))
			host6 = netip.MustParseAddr(fmt.Sprintf("fd7e:7a11:0:%d::10", h.zone))
			must(n.gw.Addr(h.gwDev, gw6.String()+"/64"))
			must(h.ns.Addr("eth0", host6.String()+"/64"))
		}
		for _, a := range h.addrs {
			must(h.ns.Addr("eth0", netip.PrefixFrom(a, a.BitLen()).String()))
			if a.Is4() {
				must(n.gw.IP("-4", "route", "add", a.String()+"/32", "via", host4.String(), "dev", h.gwDev))
				must(h.ns.DefaultRouteFrom("eth0", gw4.String(), a.String()))
			} else {
				must(n.gw.IP("-6", "route", "add", a.String()+"/128", "via", host6.String(), "dev", h.gwDev))
				must(h.ns.DefaultRouteFrom("eth0", gw6.String(), a.String()))
			}
		}
	}
	return n
}

func (n *testNet) endpoints() (agent, far Endpoint) {
	agent = Endpoint{Name: `agents "floor3"`, NS: n.agent, Addrs: []netip.Addr{agent4, agent6}}
	far = Endpoint{Name: `provider "media"`, NS: n.far, Addrs: []netip.Addr{far4}, Lite: true, Ports: [2]uint16{mediaFirst, mediaLast}}
	return agent, far
}

// testCA issues the relay's TLS certificate for 192.0.2.10 and
// relay.lab.example.
func testCA(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "call test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay.lab.example"},
		IPAddresses: []net.IP{relay4.AsSlice()}, DNSNames: []string{"relay.lab.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, pool
}

// startRelay runs the bundled relay in the relay namespace: UDP and TCP on
// 3478, TLS on 5349, REST credentials, the far end as its only peers.
func startRelay(t *testing.T, n *testNet) *x509.CertPool {
	t.Helper()
	cert, pool := testCA(t)
	var b netipx.IPSetBuilder
	b.AddPrefix(netip.MustParsePrefix("52.129.96.0/20"))
	peers, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	s, err := relay.New(relay.Config{
		Name:  "lab",
		Realm: testRealm,
		Listeners: []relay.Listener{
			{Transport: relay.UDP, Addr: netip.AddrPortFrom(relay4, 3478)},
			{Transport: relay.TCP, Addr: netip.AddrPortFrom(relay4, 3478)},
			{Transport: relay.TLS, Addr: netip.AddrPortFrom(relay4, 5349)},
		},
		RelayIPs:    []netip.Addr{relay4},
		RelayPorts:  ir.PortRange{First: 49152, Last: 49999},
		LabOnly:     true,
		Certificate: cert,
		Peers:       peers,
		Auth:        relay.NewAuth(testRealm, nil, []string{testSecret}),
		Limits:      relay.Limits{UserQuota: 20, TotalQuota: 100, MaxLifetime: time.Hour, MaxBPS: relay.DefaultMaxBPS},
		UDPSockets:  1,
		Net:         relay.InNamespace(n.relay),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return pool
}

func restServer(url string) Server {
	u, p := creds.Generate(testSecret, "floor3", time.Now().Add(time.Hour))
	return Server{URL: url, Username: u, Credential: p}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkAddresses: no transfer address anywhere among the candidates, host
// candidates and the local side of srflx and relay candidates on the
// endpoint's own addresses only.
func checkAddresses(t *testing.T, who string, cs []Candidate, own ...netip.Addr) {
	t.Helper()
	isOwn := func(s string) bool {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		for _, o := range own {
			if o == a.Unmap() {
				return true
			}
		}
		return false
	}
	for _, c := range cs {
		for _, s := range []string{c.Address, c.RelatedAddress} {
			if a, err := netip.ParseAddr(s); err == nil && (transfer.Contains(a.Unmap()) || transf6.Contains(a)) {
				t.Errorf("%s candidate %s (related %s) uses a transfer address", who, c, c.RelatedAddress)
			}
		}
		switch c.Type {
		case "host":
			if !isOwn(c.Address) {
				t.Errorf("%s host candidate %s is not on the endpoint's addresses %v", who, c, own)
			}
		case "srflx", "relay":
			if !isOwn(c.RelatedAddress) {
				t.Errorf("%s %s candidate %s was gathered from %s, not from the endpoint's addresses %v", who, c.Type, c, c.RelatedAddress, own)
			}
		}
	}
}

func logResult(t *testing.T, r Result, took time.Duration) {
	t.Helper()
	pair := "none"
	if r.Local != nil && r.Remote != nil {
		pair = r.Local.String() + " <-> " + r.Remote.String()
		if r.Local.URL != "" {
			pair += " (" + r.Local.URL + ")"
		}
	}
	t.Logf("state %s in %s (connect %s), pair %s, audio %q, agent->far %+v, far->agent %+v, err %q",
		r.State, took.Round(time.Millisecond), r.ConnectTime.Round(time.Millisecond), pair, r.Audio, r.AgentToFar, r.FarToAgent, r.Err)
	t.Logf("agent gathered: %s", list(r.Gathered))
	t.Logf("far end gathered: %s", list(r.FarGathered))
}

func checkBothWays(t *testing.T, r Result) {
	t.Helper()
	if r.State != StateConnected {
		t.Fatalf("state %s: %s", r.State, r.Err)
	}
	if r.Audio != AudioBoth {
		t.Errorf("audio %q, want %q", r.Audio, AudioBoth)
	}
	for name, d := range map[string]Direction{"agent->far": r.AgentToFar, "far->agent": r.FarToAgent} {
		if d.Sent < 40 || d.LossPct > 5 {
			t.Errorf("%s: %+v, want about 50 sent and no loss", name, d)
		}
	}
}

// checkGoroutines: every goroutine of a call ends soon after Run.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+1 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before the call, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestDirectCall(t *testing.T) {
	n := newTestNet(t)
	agent, far := n.endpoints()
	before := runtime.NumGoroutine()
	start := time.Now()
	r := Run(callCtx(t), agent, far, Options{})
	logResult(t, r, time.Since(start))
	checkGoroutines(t, before)
	checkBothWays(t, r)
	if r.Local == nil || r.Remote == nil {
		t.Fatal("no selected pair")
	}
	if r.Local.Type != "host" || r.Remote.Type != "host" {
		t.Errorf("pair %s <-> %s, want host/host", r.Local, r.Remote)
	}
	if r.Local.Address != agent4.String() || r.Remote.Address != far4.String() {
		t.Errorf("pair %s <-> %s, want %s <-> %s", r.Local, r.Remote, agent4, far4)
	}
	if r.Remote.Port < mediaFirst || r.Remote.Port > mediaLast {
		t.Errorf("far-end port %d outside the media range %d-%d", r.Remote.Port, mediaFirst, mediaLast)
	}
	for _, c := range r.FarGathered {
		if c.Type != "host" || c.Port < mediaFirst || c.Port > mediaLast {
			t.Errorf("far-end candidate %s: want host candidates in %d-%d only", c, mediaFirst, mediaLast)
		}
	}
	if !hasType(r.Gathered, "host") {
		t.Errorf("the agent gathered no host candidate")
	}
	checkAddresses(t, "agent", r.Gathered, agent4, agent6)
	checkAddresses(t, "far end", r.FarGathered, far4)
}

func TestRelayOnlyCall(t *testing.T) {
	n := newTestNet(t)
	roots := startRelay(t, n)
	for _, tc := range []struct {
		name, url, proto, tlsName string
	}{
		{"turn-udp", "turn:192.0.2.10:3478?transport=udp", "udp", ""},
		{"turn-tcp", "turn:192.0.2.10:3478?transport=tcp", "tcp", ""},
		{"turns", "turns:192.0.2.10:5349?transport=tcp", "tls", ""},
		// A relay's ALTERNATE-DOMAIN: the certificate is checked for it.
		{"turns-name", "turns:192.0.2.10:5349?transport=tcp", "tls", "relay.lab.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent, far := n.endpoints()
			agent.RelayOnly = true
			agent.RootCAs = roots
			agent.Servers = []Server{restServer(tc.url)}
			agent.Servers[0].TLSName = tc.tlsName
			start := time.Now()
			r := Run(callCtx(t), agent, far, Options{})
			logResult(t, r, time.Since(start))
			checkBothWays(t, r)
			if r.Local == nil || r.Remote == nil {
				t.Fatal("no selected pair")
			}
			if r.Local.Type != "relay" || r.Local.RelayProtocol != tc.proto {
				t.Errorf("local candidate %s, want relay via %s", r.Local, tc.proto)
			}
			if r.Local.Address != relay4.String() {
				t.Errorf("relay candidate on %s, want %s", r.Local.Address, relay4)
			}
			if r.Local.URL != tc.url {
				t.Errorf("relay candidate from %q, want %q", r.Local.URL, tc.url)
			}
			if r.Remote.Type != "host" || r.Remote.Address != far4.String() {
				t.Errorf("remote candidate %s, want the far end's host candidate", r.Remote)
			}
			for _, c := range r.Gathered {
				if c.Type != "relay" {
					t.Errorf("relay-only agent gathered %s", c)
				}
			}
			checkAddresses(t, "agent", r.Gathered, agent4, agent6)
		})
	}
}

func TestOneWayAudio(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	n := newTestNet(t)
	agent, far := n.endpoints()
	opt := Options{AfterConnect: func() {
		// The far end's media (SRTP, about 190 bytes) is dropped on its
		// way out; ICE answers (under 100 bytes) still pass.
		nstest.Nft(t, n.far, "add", "table", "inet", "t")
		nstest.Nft(t, n.far, "add", "chain", "inet", "t", "o", "{ type filter hook output priority 0; }")
		nstest.Nft(t, n.far, "add", "rule", "inet", "t", "o", "udp", "length", ">", "120", "drop")
	}}
	start := time.Now()
	r := Run(callCtx(t), agent, far, opt)
	logResult(t, r, time.Since(start))
	if r.State != StateConnected {
		t.Fatalf("state %s: %s", r.State, r.Err)
	}
	if r.Audio != AudioAgentDeaf {
		t.Errorf("audio %q, want %q", r.Audio, AudioAgentDeaf)
	}
	if r.FarToAgent.Received != 0 || r.FarToAgent.Sent == 0 || r.FarToAgent.LossPct != 100 {
		t.Errorf("far->agent %+v, want everything sent and nothing received", r.FarToAgent)
	}
	if r.AgentToFar.Received == 0 {
		t.Errorf("agent->far %+v, want media received", r.AgentToFar)
	}
}

func TestRelayFailure(t *testing.T) {
	n := newTestNet(t)
	roots := startRelay(t, n)
	for _, tc := range []struct {
		name    string
		server  func() Server
		roots   *x509.CertPool
		timeout time.Duration
		want    string
	}{
		{"wrong-credential", func() Server {
			s := restServer("turn:192.0.2.10:3478?transport=udp")
			s.Credential = "wrong"
			return s
		}, roots, 5 * time.Second, "refused the credentials (401 Unauthorized)"},
		{"untrusted-certificate", func() Server { return restServer("turns:192.0.2.10:5349?transport=tcp") },
			x509.NewCertPool(), 5 * time.Second, "authority the endpoint does not trust"},
		{"certificate-name", func() Server {
			s := restServer("turns:192.0.2.10:5349?transport=tcp")
			s.TLSName = "other.lab.example"
			return s
		}, roots, 5 * time.Second, "certificate is not valid for other.lab.example"},
		// Nothing listens there: the allocation is still retransmitting
		// when the connect timeout ends the call.
		{"no-answer", func() Server { return restServer("turn:192.0.2.10:3479?transport=udp") },
			roots, 2 * time.Second, "no answer from turn:192.0.2.10:3479"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent, far := n.endpoints()
			agent.RelayOnly = true
			agent.RootCAs = tc.roots
			agent.Servers = []Server{tc.server()}
			before := runtime.NumGoroutine()
			start := time.Now()
			r := Run(callCtx(t), agent, far, Options{ConnectTimeout: tc.timeout})
			took := time.Since(start)
			logResult(t, r, took)
			if r.State != StateFailed && r.State != StateTimeout {
				t.Errorf("state %s, want failed or timeout", r.State)
			}
			if !strings.Contains(r.Err, tc.want) || !strings.Contains(r.Err, "no relay candidate") {
				t.Errorf("error %q, want it to say %q", r.Err, tc.want)
			}
			if took > tc.timeout+time.Second {
				t.Errorf("took %s with a %s connect timeout", took, tc.timeout)
			}
			checkGoroutines(t, before)
		})
	}
}

func TestICEFailed(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	n := newTestNet(t)
	agent, far := n.endpoints()
	// The far end's media ports are closed: no candidate pair can work.
	nstest.Nft(t, n.far, "add", "table", "inet", "t")
	nstest.Nft(t, n.far, "add", "chain", "inet", "t", "i", "{ type filter hook input priority 0; }")
	nstest.Nft(t, n.far, "add", "rule", "inet", "t", "i", "udp", "dport", "16384-16484", "drop")
	start := time.Now()
	r := Run(callCtx(t), agent, far, Options{})
	took := time.Since(start)
	logResult(t, r, took)
	if r.State != StateFailed || !strings.HasPrefix(r.Err, "ICE failed") {
		t.Errorf("state %s, error %q; want ICE failed", r.State, r.Err)
	}
	if !strings.Contains(r.Err, "host udp 10.20.0.10:") || !strings.Contains(r.Err, "host udp 52.129.96.10:") {
		t.Errorf("error %q does not name both sides' candidates", r.Err)
	}
	if took > 8*time.Second {
		t.Errorf("ICE failure took %s to report", took)
	}
}

// TestAllCandidates: an agent that may use everything, with a STUN and a
// TURN server, gathers host, srflx and relay candidates, all from its own
// address, and the call takes the direct path.
func TestAllCandidates(t *testing.T) {
	n := newTestNet(t)
	startRelay(t, n)
	agent, far := n.endpoints()
	agent.Servers = []Server{{URL: "stun:192.0.2.10:3478"}, restServer("turn:192.0.2.10:3478?transport=udp")}
	start := time.Now()
	r := Run(callCtx(t), agent, far, Options{})
	logResult(t, r, time.Since(start))
	checkBothWays(t, r)
	for _, typ := range []string{"host", "srflx", "relay"} {
		if !hasType(r.Gathered, typ) {
			t.Errorf("no %s candidate gathered", typ)
		}
	}
	for _, c := range r.Gathered {
		if c.Type == "relay" && (c.URL != "turn:192.0.2.10:3478?transport=udp" || c.RelayProtocol != "udp") {
			t.Errorf("relay candidate %s from %q", c, c.URL)
		}
	}
	if r.Local == nil || r.Local.Type != "host" {
		t.Errorf("selected %v, want the host candidate", r.Local)
	}
	checkAddresses(t, "agent", r.Gathered, agent4, agent6)
}

// TestNamespaceNet: pion's network for an endpoint sees the namespace's
// interfaces, binds only the endpoint's addresses and dials from them.
func TestNamespaceNet(t *testing.T) {
	n := newTestNet(t)
	agent, _ := n.endpoints()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nn, err := newNSNet(ctx, agent, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ifs, err := nn.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	if strings.Join(names, ",") != "lo,eth0" {
		t.Errorf("interfaces %v, want the namespace's lo and eth0", names)
	}
	c, err := nn.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); got != agent4 {
		t.Errorf("unspecified udp4 bound %s, want %s", got, agent4)
	}
	c.Close()
	c, err = nn.ListenUDP("udp6", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); got != agent6 {
		t.Errorf("unspecified udp6 bound %s, want %s", got, agent6)
	}
	c.Close()
	if _, err := nn.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("100.64.1.10")}); err == nil {
		t.Error("binding the transfer address was allowed")
	}
	var ln net.Listener
	if err := n.far.Do(func() (err error) { ln, err = net.Listen("tcp", "52.129.96.10:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	tc, err := nn.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != agent4 {
		t.Errorf("TCP dialled from %s, want %s", got, agent4)
	}
	tc.Close()
}
