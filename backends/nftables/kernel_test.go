package nftables

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
)

// needKernel skips when namespaces are truly unavailable; in CI (CI=true) that
// is a failure, never a skip.
func needKernel(t *testing.T) {
	t.Helper()
	err := netns.Available()
	if err == nil {
		if _, err = exec.LookPath("nft"); err != nil {
			err = fmt.Errorf("nft (Debian package nftables) is missing: %v", err)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel test cannot run in CI: %v", err)
		}
		t.Skipf("kernel test needs root, iproute2 and nftables: %v", err)
	}
}

func newNS(t *testing.T, role string) *netns.NS {
	t.Helper()
	ns, err := netns.New(role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

func nft(t *testing.T, ns *netns.NS, args ...string) []byte {
	t.Helper()
	out, err := ns.Exec(context.Background(), "nft", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// listing is the kernel's view of a table, without handles (which change on
// every load).
func listing(t *testing.T, ns *netns.NS, table string) []any {
	t.Helper()
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(nft(t, ns, "-j", "list", "table", "inet", table), &doc); err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, obj := range doc.Nftables {
		if _, meta := obj["metainfo"]; meta {
			continue
		}
		out = append(out, stripHandles(obj))
	}
	return out
}

func stripHandles(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, val := range x {
			if k != "handle" {
				m[k] = stripHandles(val)
			}
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = stripHandles(val)
		}
		return out
	}
	return v
}

// TestKernelLoad loads every case's ruleset into a namespace with Debian's
// nft: check mode, then twice for real. The second load must change nothing
// (no duplicated rules), the kernel must hold exactly the intended sets and
// rules, and another tool's table must survive untouched.
func TestKernelLoad(t *testing.T) {
	needKernel(t)
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			rs, err := Build(c.Program, "turnwall")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "ruleset.nft")
			if err := os.WriteFile(file, rs.Text(), 0o644); err != nil {
				t.Fatal(err)
			}
			ns := newNS(t, "load")
			other := filepath.Join(t.TempDir(), "other.nft")
			os.WriteFile(other, []byte("table inet other {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 counter accept comment \"operator ssh\"\n\t}\n}\n"), 0o644)
			nft(t, ns, "-f", other)
			before := listing(t, ns, "other")

			nft(t, ns, "-c", "-f", file)
			nft(t, ns, "-f", file)
			first := listing(t, ns, "turnwall")
			nft(t, ns, "-f", file)
			second := listing(t, ns, "turnwall")
			if !reflect.DeepEqual(first, second) {
				t.Fatal("loading the ruleset twice changed the kernel's table")
			}
			if !reflect.DeepEqual(before, listing(t, ns, "other")) {
				t.Fatal("another tool's table changed")
			}
			checkKernelMatchesModel(t, rs, first)
		})
	}
}

// checkKernelMatchesModel compares the kernel's listing with the model: the
// same sets holding the same addresses, the same chains with the same rules
// (by comment) in the same order.
func checkKernelMatchesModel(t *testing.T, rs *Ruleset, objs []any) {
	t.Helper()
	gotSets := map[string]*netipx.IPSet{}
	gotRules := map[string][]string{}
	for _, o := range objs {
		m := o.(map[string]any)
		if s, ok := m["set"].(map[string]any); ok {
			gotSets[s["name"].(string)] = elemSet(t, s["elem"])
		}
		if r, ok := m["rule"].(map[string]any); ok {
			comment, _ := r["comment"].(string)
			gotRules[r["chain"].(string)] = append(gotRules[r["chain"].(string)], comment)
		}
	}
	if len(gotSets) != len(rs.Sets) {
		t.Errorf("kernel has %d sets, meant %d", len(gotSets), len(rs.Sets))
	}
	for _, s := range rs.Sets {
		var b netipx.IPSetBuilder
		for _, p := range s.Prefixes {
			b.AddPrefix(p)
		}
		want, _ := b.IPSet()
		got, ok := gotSets[s.Name]
		if !ok {
			t.Errorf("set %s missing in the kernel", s.Name)
			continue
		}
		if !reflect.DeepEqual(want.Ranges(), got.Ranges()) {
			t.Errorf("set %s: kernel holds %v, meant %v", s.Name, got.Ranges(), want.Ranges())
		}
	}
	for _, c := range rs.Chains {
		var want []string
		for _, r := range c.Rules {
			want = append(want, r.Comment)
		}
		if !reflect.DeepEqual(want, gotRules[c.Name]) {
			t.Errorf("chain %s: kernel has %d rules %q, meant %d %q", c.Name, len(gotRules[c.Name]), gotRules[c.Name], len(want), want)
		}
	}
}

func elemSet(t *testing.T, v any) *netipx.IPSet {
	var b netipx.IPSetBuilder
	list, _ := v.([]any)
	for _, e := range list {
		switch x := e.(type) {
		case string:
			b.Add(netip.MustParseAddr(x))
		case map[string]any:
			if p, ok := x["prefix"].(map[string]any); ok {
				b.AddPrefix(netip.PrefixFrom(netip.MustParseAddr(p["addr"].(string)), int(p["len"].(float64))))
			} else if r, ok := x["range"].([]any); ok {
				b.AddRange(netipx.IPRangeFrom(netip.MustParseAddr(r[0].(string)), netip.MustParseAddr(r[1].(string))))
			} else {
				t.Fatalf("unexpected set element %v", x)
			}
		default:
			t.Fatalf("unexpected set element %v", x)
		}
	}
	s, _ := b.IPSet()
	return s
}

// lab is the issue example's network: agents on vlan20, Genesys on wan0, the
// corporate relay in the DMZ, joined by a gateway namespace holding the
// compiled ruleset.
type lab struct {
	gw, agent, provider, relay *netns.NS
}

func buildLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{gw: newNS(t, "gw"), agent: newNS(t, "agent"), provider: newNS(t, "provider"), relay: newNS(t, "relay")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.gw.Router())
	must(netns.Link(l.gw, "vlan20", l.agent, "eth0"))
	must(netns.Link(l.gw, "wan0", l.provider, "eth0"))
	must(netns.Link(l.gw, "dmz0", l.relay, "eth0"))
	for _, a := range []struct {
		ns   *netns.NS
		dev  string
		cidr string
	}{
		{l.gw, "vlan20", "10.20.0.1/16"}, {l.gw, "vlan20", "fd00:20::1/48"},
		{l.gw, "wan0", "52.129.96.1/20"},
		{l.gw, "dmz0", "198.51.100.1/24"}, {l.gw, "dmz0", "2001:db8::1/64"},
		{l.agent, "eth0", "10.20.0.10/16"}, {l.agent, "eth0", "fd00:20::10/48"},
		{l.provider, "eth0", "52.129.96.10/20"},
		{l.relay, "eth0", "198.51.100.10/24"}, {l.relay, "eth0", "2001:db8::10/64"},
		// Another DMZ host that is not the relay.
		{l.relay, "eth0", "198.51.100.20/24"},
	} {
		must(a.ns.Addr(a.dev, a.cidr))
	}
	must(l.agent.DefaultRoute("eth0", "10.20.0.1"))
	must(l.agent.DefaultRoute("eth0", "fd00:20::1"))
	must(l.provider.DefaultRoute("eth0", "52.129.96.1"))
	must(l.relay.DefaultRoute("eth0", "198.51.100.1"))
	must(l.relay.DefaultRoute("eth0", "2001:db8::1"))
	return l
}

const (
	waitAllowed = 2 * time.Second
	waitDropped = 400 * time.Millisecond
)

// udpFlow sends one datagram from src to dst and expects it to arrive (and
// the reply to come back through the stateful rule) or to be dropped.
func udpFlow(t *testing.T, src *netns.NS, from string, sport int, dst *netns.NS, to string, dport int, allowed bool) {
	t.Helper()
	var server, client *net.UDPConn
	if err := dst.Do(func() (err error) {
		server, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(to), uint16(dport))))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := src.Do(func() (err error) {
		client, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), uint16(sport))))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dstAddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(to), uint16(dport)))
	if _, err := client.WriteToUDP([]byte("turnwall probe"), dstAddr); err != nil {
		t.Fatal(err)
	}
	wait := waitDropped
	if allowed {
		wait = waitAllowed
	}
	server.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	_, peer, err := server.ReadFromUDP(buf)
	name := fmt.Sprintf("udp %s:%d -> %s:%d", from, sport, to, dport)
	switch {
	case allowed && err != nil:
		t.Errorf("%s: should pass, did not arrive: %v", name, err)
		return
	case !allowed && err == nil:
		t.Errorf("%s: should be dropped, arrived", name)
		return
	case !allowed:
		return
	}
	// The reply must come back: the firewall keeps state.
	server.WriteToUDP([]byte("reply"), peer)
	client.SetReadDeadline(time.Now().Add(waitAllowed))
	if _, _, err := client.ReadFromUDP(buf); err != nil {
		t.Errorf("%s: the reply did not come back: %v", name, err)
	}
}

// tcpFlow opens a connection and expects it to be set up or to time out (a
// dropped SYN).
func tcpFlow(t *testing.T, src *netns.NS, from string, dst *netns.NS, to string, dport int, allowed bool) {
	t.Helper()
	var ln net.Listener
	if err := dst.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(to, strconv.Itoa(dport)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	wait := waitDropped
	if allowed {
		wait = waitAllowed
	}
	var conn net.Conn
	err := src.Do(func() (err error) {
		d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		conn, err = d.Dial("tcp", net.JoinHostPort(to, strconv.Itoa(dport)))
		return err
	})
	if conn != nil {
		conn.Close()
	}
	name := fmt.Sprintf("tcp %s -> %s:%d", from, to, dport)
	if allowed && err != nil {
		t.Errorf("%s: should connect: %v", name, err)
	}
	if !allowed && err == nil {
		t.Errorf("%s: should be dropped, connected", name)
	}
}

// TestKernelTraffic applies the issue example's ruleset on a gateway namespace
// and sends real traffic: every allowed flow passes (and its replies come
// back), and the flows the guide's traps are about are dropped.
func TestKernelTraffic(t *testing.T) {
	needKernel(t)
	var prog *ir.Program
	for _, c := range backendtest.Cases(t) {
		if c.Name == "case-issue-example" {
			prog = c.Program
		}
	}
	if prog == nil {
		t.Fatal("case-issue-example not found")
	}
	l := buildLab(t)
	files, err := Backend{}.Emit(prog, backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ruleset.nft")
	os.WriteFile(file, files[0].Data, 0o644)
	nft(t, l.gw, "-f", file)

	const agent, agent6 = "10.20.0.10", "fd00:20::10"
	const provider, relay, relay6, dmzOther = "52.129.96.10", "198.51.100.10", "2001:db8::10", "198.51.100.20"
	t.Run("allowed", func(t *testing.T) {
		udpFlow(t, l.agent, agent, 0, l.provider, provider, 3478, true)     // STUN/TURN
		tcpFlow(t, l.agent, agent, l.provider, provider, 3478, true)        // TURN over TCP
		tcpFlow(t, l.agent, agent, l.provider, provider, 443, true)         // signalling, TURN/TLS fallback
		udpFlow(t, l.agent, agent, 0, l.provider, provider, 16384, true)    // media, first port
		udpFlow(t, l.agent, agent, 0, l.provider, provider, 65535, true)    // media, last port
		udpFlow(t, l.agent, agent, 0, l.relay, relay, 3478, true)           // TURN to the relay
		udpFlow(t, l.agent, agent6, 0, l.relay, relay6, 3478, true)         // ... over IPv6
		tcpFlow(t, l.agent, agent, l.relay, relay, 5349, true)              // TURN/TLS to the relay
		udpFlow(t, l.relay, relay, 49152, l.agent, agent, 40000, true)      // relayed media back to agents
		udpFlow(t, l.relay, relay6, 65535, l.agent, agent6, 1024, true)     // ... IPv6, range edges
		udpFlow(t, l.provider, provider, 5004, l.relay, relay, 50000, true) // provider to the relay's allocation
		udpFlow(t, l.relay, relay, 60000, l.provider, provider, 5000, true) // relay's allocation to the provider
	})
	t.Run("dropped", func(t *testing.T) {
		udpFlow(t, l.agent, agent, 0, l.provider, provider, 5000, false)     // UDP to another port
		tcpFlow(t, l.agent, agent, l.provider, provider, 22, false)          // TCP 22
		tcpFlow(t, l.agent, agent, l.relay, relay, 22, false)                // TCP 22 to the relay
		udpFlow(t, l.relay, relay, 3000, l.agent, agent, 40000, false)       // relay to agent from outside the relay range
		udpFlow(t, l.relay, dmzOther, 50000, l.agent, agent, 40000, false)   // a DMZ host that is not the relay
		udpFlow(t, l.relay, relay, 49152, l.agent, agent, 1023, false)       // relayed media to a privileged agent port
		udpFlow(t, l.provider, provider, 3478, l.agent, agent, 40000, false) // unsolicited provider to agent
		tcpFlow(t, l.provider, provider, l.agent, agent, 443, false)         // unsolicited TCP from the provider
	})
}
