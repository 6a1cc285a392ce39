package coturn

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/peerfilter"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// broadPeersPolicy is the reproducer of a relay turned into an SSRF relay:
// peers 0.0.0.0/0 and ::/0. The relay's addresses are public ones, so that
// only the relay-address rule refuses them.
const broadPeersPolicy = `policy "broad" {}
zone "agents" { interface = "vlan20" }
zone "dmz" { interface = "dmz0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16", "fd00:20::/48"]
}
relay "open" {
  zone      = zone.dmz
  addresses = ["44.1.2.10", "2a00:1::10"]
  realm     = "example.com"
  peers     = ["0.0.0.0/0", "::/0"]
}
`

var (
	broadRelay4, broadRelay6 = netip.MustParseAddr("44.1.2.10"), netip.MustParseAddr("2a00:1::10")
	// hostilePeers are what an SSRF through TURN goes for: metadata
	// services, loopback, the relay itself, the site's gateway and private
	// networks, and IPv6 forms that embed them.
	hostilePeers = []string{
		"169.254.169.254", "100.100.100.200", "168.63.129.16", "127.0.0.1", "0.0.0.0", "44.1.2.10",
		"10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "224.0.0.1", "255.255.255.255",
		"::1", "::", "2a00:1::10", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "fd00:ec2::254", "fe80::1",
		"fd12:3456::1", "2002:7f00:1::1", "::127.0.0.1", "ff02::1",
	}
	// fairPeers stay reachable: public addresses and the policy's agents.
	fairPeers = []string{"44.1.2.200", "8.8.8.8", "11.200.0.1", "10.20.0.5", "2a00:1::200", "2a01::1", "2001:4860::8888", "fd00:20::5"}
)

func compileString(t *testing.T, src string) *ir.Program {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(path, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	return res.Program
}

// TestBroadPeersFilter: with peers 0.0.0.0/0 and ::/0, the bundled relay's
// filter refuses every hostile address (the relay's own only for other than
// its relayed ports) and coturn's allowed-peer-ip lines cover none of them,
// while public addresses and the policy's agents stay reachable.
func TestBroadPeersFilter(t *testing.T) {
	p := compileString(t, broadPeersPolicy)
	r := &p.Relays[0]
	peers, err := peerfilter.PolicyPeers(p, r)
	if err != nil {
		t.Fatal(err)
	}
	f := peerfilter.New(peers, []netip.Addr{broadRelay4, broadRelay6})
	self, err := p.RelayAddrs(r)
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := allowedPeers(p, r, self)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostilePeers {
		a := netip.MustParseAddr(s)
		if reason := f.Check(a); reason == peerfilter.Allowed {
			t.Errorf("bundled relay allows %s", a)
		}
		if allowed.Contains(a) {
			t.Errorf("coturn allowed-peer-ip covers %s", a)
		}
	}
	if f.Check(netip.MustParseAddr("::ffff:127.0.0.1")) == peerfilter.Allowed {
		t.Error("bundled relay allows ::ffff:127.0.0.1")
	}
	for _, s := range fairPeers {
		a := netip.MustParseAddr(s)
		if reason := f.Check(a); reason != peerfilter.Allowed {
			t.Errorf("bundled relay refuses %s: %s", a, reason)
		}
		if !allowed.Contains(a) {
			t.Errorf("coturn does not allow %s", a)
		}
	}
}

// TestBroadPeersCoturn runs Debian's turnserver with the configuration the
// coturn target emits for the broad-peers reproducer, and the bundled relay
// from the same program, each in a namespace, and asks both for a permission
// to every hostile address: each must refuse it (403; the bundled relay
// permits its own address for its relayed ports only, so a datagram to a
// service on its host must not arrive), and both grant the fair ones.
func TestBroadPeersCoturn(t *testing.T) {
	nstest.NeedKernel(t, "turnserver")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(broadPeersPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(dir, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	p := res.Program
	files, err := Backend{}.Emit(p, backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// coturn.
	coturnNS := broadPeersNS(t, "coturn-peers")
	conf := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(conf, files[0].Data, 0o600); err != nil {
		t.Fatal(err)
	}
	var log nstest.SyncBuffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", coturnNS.Name, "turnserver", "-c", conf, "--static-auth-secret", "test-secret",
		"--pidfile", filepath.Join(dir, "pid"))
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()

	// The bundled relay, from the same program.
	relayNS := broadPeersNS(t, "relay-peers")
	cfg, err := relay.FromIR(p, "open", dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = relay.NewAuth(cfg.Realm, nil, []string{"test-secret"})
	cfg.Limits = relay.Limits{UserQuota: 10, TotalQuota: 50, MaxLifetime: time.Hour}
	cfg.Net = relay.InNamespace(relayNS)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// A service on the relay host, beside the bundled relay, and one on a
	// fair peer (to show that data does flow where it may).
	listen := func(a netip.Addr) net.PacketConn {
		var pc net.PacketConn
		relayNS.Do(func() error {
			pc, err = net.ListenPacket("udp", netip.AddrPortFrom(a, 9999).String())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	service, fair := listen(broadRelay4), listen(netip.MustParseAddr("44.1.2.200"))

	coturnCodes, _ := permissionCodes(ctx, t, coturnNS, &log)
	relayCodes, relayClient := permissionCodes(ctx, t, relayNS, nil)
	self := map[string]bool{broadRelay4.String(): true, broadRelay6.String(): true}
	for _, s := range hostilePeers {
		if coturnCodes[s] != 403 {
			t.Errorf("coturn CreatePermission %s: %d, want 403", s, coturnCodes[s])
		}
		// The bundled relay grants its own address a permission, for its
		// relayed ports only (another allocation on the same relay); coturn
		// cannot tell ports apart and refuses it.
		if relayCodes[s] != 403 && !self[s] {
			t.Errorf("bundled relay CreatePermission %s: %d, want 403", s, relayCodes[s])
		}
	}
	for _, to := range []net.PacketConn{service, fair} {
		if err := relayClient.Send(netip.MustParseAddrPort(to.LocalAddr().String()), []byte("ssrf")); err != nil {
			t.Fatal(err)
		}
	}
	fair.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := fair.ReadFrom(make([]byte, 64)); err != nil {
		t.Errorf("the bundled relay did not relay to a fair peer: %v", err)
	}
	service.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	if n, from, err := service.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("the bundled relay relayed %d bytes from %s to a service on its own host", n, from)
	}
	for _, s := range fairPeers {
		if coturnCodes[s] != 0 || relayCodes[s] != 0 {
			t.Errorf("CreatePermission %s: coturn %d, bundled relay %d, want both granted", s, coturnCodes[s], relayCodes[s])
		}
	}
	// coturn answers 443 (family mismatch) where the bundled relay unmaps
	// and answers 403: refused either way.
	if c := coturnCodes["::ffff:127.0.0.1"]; c != 403 && c != 443 {
		t.Errorf("coturn CreatePermission ::ffff:127.0.0.1: %d, want 403 or 443", c)
	}
	if c := relayCodes["::ffff:127.0.0.1"]; c != 403 {
		t.Errorf("bundled relay CreatePermission ::ffff:127.0.0.1: %d, want 403", c)
	}
	if t.Failed() {
		lines := strings.Split(log.String(), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("turnserver log:\n%s", strings.Join(lines, "\n"))
	}
}

// broadPeersNS is a namespace holding the relay's addresses and the local
// hosts of the test on loopback.
func broadPeersNS(t *testing.T, role string) *netns.NS {
	ns := nstest.NewNS(t, role)
	for _, a := range []string{"44.1.2.10/32", "44.1.2.200/32", "10.0.0.1/32", "10.20.0.5/32", "2a00:1::10/128", "2a00:1::200/128"} {
		if err := ns.Addr("lo", a); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// permissionCodes allocates on the relay in ns (IPv4 and IPv6) and returns
// the error code CreatePermission gets for every hostile and fair address
// (0: granted), and the IPv4 client. An IPv4-mapped address is sent as raw bytes, as an attacker
// would.
func permissionCodes(ctx context.Context, t *testing.T, ns *netns.NS, log *nstest.SyncBuffer) (map[string]int, *turnclient.Client) {
	t.Helper()
	client := func(server netip.Addr) *turnclient.Client {
		user, pass := creds.Generate("test-secret", "agent", time.Now().Add(time.Hour))
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := turnclient.Dial(turnclient.Config{Server: netip.AddrPortFrom(server, 3478), Username: user, Password: pass,
				RTO: 100 * time.Millisecond, Timeout: 2 * time.Second, Dial: nsDial(ns)})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Allocate(ctx, turnclient.AllocateOptions{IPv6: server.Is6()})
			if err == nil {
				t.Cleanup(func() { c.Close() })
				return c
			}
			c.Close()
			if time.Now().After(deadline) {
				out := ""
				if log != nil {
					out = log.String()
				}
				t.Fatalf("no allocation on %s: %v\n%s", server, err, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c4, c6 := client(broadRelay4), client(broadRelay6)
	codes := map[string]int{}
	for _, s := range append(append([]string(nil), hostilePeers...), fairPeers...) {
		a := netip.MustParseAddr(s)
		c := c4
		if a.Is6() {
			c = c6
		}
		codes[s] = turnclient.Code(c.CreatePermission(ctx, a))
	}
	mapped := netip.MustParseAddr("::ffff:127.0.0.1").As16()
	_, err := c4.Do(ctx, stun.MethodCreatePermission, turnclient.RawPeerAttr(mapped[:], 80))
	codes["::ffff:127.0.0.1"] = turnclient.Code(err)
	return codes, c4
}

// nsDial dials from inside the namespace.
func nsDial(ns *netns.NS) func(network, address string) (net.Conn, error) {
	return func(network, address string) (c net.Conn, err error) {
		ns.Do(func() error {
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err = d.Dial(network, address)
			return nil
		})
		return
	}
}
