package coturn

import (
	"context"
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
// coturn target emits for the broad-peers reproducer, in a namespace, and
// asks it for a permission to every hostile address: coturn must refuse each
// (403; 443 for an IPv4-mapped address, a family mismatch), exactly where the
// bundled relay's filter refuses, and grant the fair ones.
func TestBroadPeersCoturn(t *testing.T) {
	nstest.NeedKernel(t, "turnserver")
	p := compileString(t, broadPeersPolicy)
	files, err := Backend{}.Emit(p, backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := nstest.NewNS(t, "coturn-peers")
	for _, a := range []string{"44.1.2.10/32", "44.1.2.200/32", "10.0.0.1/32", "10.20.0.5/32", "2a00:1::10/128", "2a00:1::200/128"} {
		if err := ns.Addr("lo", a); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(t.TempDir(), "turnserver.conf")
	if err := os.WriteFile(conf, files[0].Data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log nstest.SyncBuffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, "turnserver", "-c", conf, "--static-auth-secret", "test-secret",
		"--pidfile", filepath.Join(t.TempDir(), "pid"))
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	peers, _ := peerfilter.PolicyPeers(p, &p.Relays[0])
	filter := peerfilter.New(peers, []netip.Addr{broadRelay4, broadRelay6})

	client := func(server netip.Addr) *turnclient.Client {
		t.Helper()
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
				t.Fatalf("coturn does not allocate on %s: %v\n%s", server, err, log.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c4, c6 := client(broadRelay4), client(broadRelay6)
	on := func(a netip.Addr) *turnclient.Client {
		if a.Is4() {
			return c4
		}
		return c6
	}
	for _, s := range hostilePeers {
		a := netip.MustParseAddr(s)
		err := on(a).CreatePermission(ctx, a)
		if turnclient.Code(err) != 403 {
			t.Errorf("coturn CreatePermission %s: %v, want 403", a, err)
		}
		if filter.Check(a) == peerfilter.Allowed {
			t.Errorf("bundled relay allows %s, coturn refuses it", a)
		}
	}
	mapped := netip.MustParseAddr("::ffff:127.0.0.1").As16()
	if _, err := c4.Do(ctx, stun.MethodCreatePermission, turnclient.RawPeerAttr(mapped[:], 80)); turnclient.Code(err) != 403 && turnclient.Code(err) != 443 {
		t.Errorf("coturn CreatePermission ::ffff:127.0.0.1: %v, want 403 or 443", err)
	}
	for _, s := range fairPeers {
		a := netip.MustParseAddr(s)
		if err := on(a).CreatePermission(ctx, a); err != nil {
			t.Errorf("coturn CreatePermission %s: %v, want success", a, err)
		}
		if reason := filter.Check(a); reason != peerfilter.Allowed {
			t.Errorf("bundled relay refuses %s (%s), coturn allows it", a, reason)
		}
	}
	if t.Failed() {
		lines := strings.Split(log.String(), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("turnserver log:\n%s", strings.Join(lines, "\n"))
	}
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
