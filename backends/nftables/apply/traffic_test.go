package apply

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns"
)

// lab is the issue example's network: agents on vlan20, the provider on
// wan0, the corporate relay in the DMZ, joined by a gateway namespace.
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
		ns        *netns.NS
		dev, cidr string
	}{
		{l.gw, "vlan20", "10.20.0.1/16"}, {l.gw, "vlan20", "fd00:20::1/48"},
		{l.gw, "wan0", "52.129.96.1/20"},
		{l.gw, "dmz0", "198.51.100.1/24"}, {l.gw, "dmz0", "2001:db8::1/64"},
		{l.agent, "eth0", "10.20.0.10/16"}, {l.agent, "eth0", "fd00:20::10/48"},
		{l.provider, "eth0", "52.129.96.10/20"}, {l.provider, "eth0", "203.0.113.70/32"},
		{l.relay, "eth0", "198.51.100.10/24"}, {l.relay, "eth0", "2001:db8::10/64"},
	} {
		must(a.ns.Addr(a.dev, a.cidr))
	}
	must(l.agent.DefaultRoute("eth0", "10.20.0.1"))
	must(l.agent.DefaultRoute("eth0", "fd00:20::1"))
	must(l.provider.DefaultRoute("eth0", "52.129.96.1"))
	must(l.relay.DefaultRoute("eth0", "198.51.100.1"))
	must(l.relay.DefaultRoute("eth0", "2001:db8::1"))
	// A provider address outside its policy ranges, reached through wan0.
	must(l.gw.IP("route", "add", "203.0.113.70/32", "via", "52.129.96.10", "dev", "wan0"))
	return l
}

const (
	waitAllowed = 2 * time.Second
	waitDropped = 300 * time.Millisecond
)

// udpFlow sends one datagram and expects it (and the reply, through the
// stateful rule) to arrive, or to be dropped.
func udpFlow(t *testing.T, src *netns.NS, from string, dst *netns.NS, to string, dport int, allowed bool) {
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
		client, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.WriteToUDP([]byte("turnwall probe"), server.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	wait := waitDropped
	if allowed {
		wait = waitAllowed
	}
	server.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	_, peer, err := server.ReadFromUDP(buf)
	name := fmt.Sprintf("udp %s -> %s:%d", from, to, dport)
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
	server.WriteToUDP([]byte("reply"), peer)
	client.SetReadDeadline(time.Now().Add(waitAllowed))
	if _, _, err := client.ReadFromUDP(buf); err != nil {
		t.Errorf("%s: the reply did not come back: %v", name, err)
	}
}

// tcpFlow expects a connection to be set up or its SYN to be dropped.
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

// without returns a copy of rs without the rules whose comment contains s.
func without(rs *nftables.Ruleset, s string) *nftables.Ruleset {
	out := clone(rs)
	for i := range out.Chains {
		kept := out.Chains[i].Rules[:0]
		for _, r := range out.Chains[i].Rules {
			if !strings.Contains(r.Comment, s) {
				kept = append(kept, r)
			}
		}
		out.Chains[i].Rules = kept
	}
	return out
}

// TestTraffic applies the issue example through netlink on a gateway and
// sends real traffic across veth pairs: allowed flows pass with their
// replies, others are dropped; status maps the counters back to the policy
// rules; a one-prefix delta opens a new destination without resetting
// counters; and a change that cuts a flow is rolled back when its confirm
// window ends.
func TestTraffic(t *testing.T) {
	needKernel(t)
	l := buildLab(t)
	target := Target{Table: "turnwall", NetNS: l.gw.Name}
	rs := caseRuleset(t, "case-issue-example")
	mustApply(t, l.gw, rs)

	const agent, agent6 = "10.20.0.10", "fd00:20::10"
	const provider, extra, relay, relay6 = "52.129.96.10", "203.0.113.70", "198.51.100.10", "2001:db8::10"
	udpFlow(t, l.agent, agent, l.provider, provider, 3478, true)   // STUN/TURN
	tcpFlow(t, l.agent, agent, l.provider, provider, 443, true)    // signalling
	udpFlow(t, l.agent, agent, l.provider, provider, 16384, true)  // media
	udpFlow(t, l.agent, agent6, l.relay, relay6, 3478, true)       // TURN to the relay over IPv6
	tcpFlow(t, l.agent, agent, l.relay, relay, 5349, true)         // TURN/TLS to the relay
	udpFlow(t, l.agent, agent, l.provider, provider, 5000, false)  // not a media port
	tcpFlow(t, l.agent, agent, l.relay, relay, 22, false)          // ssh to the relay
	udpFlow(t, l.provider, provider, l.agent, agent, 40000, false) // unsolicited
	udpFlow(t, l.agent, agent, l.provider, extra, 3478, false)     // outside the provider's ranges
	if t.Failed() {
		t.FailNow()
	}

	status, err := StatusOf(target)
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]uint64{}
	for _, r := range status.PolicyRules() {
		counted[r.Rule] = r.Packets
	}
	for _, name := range []string{"floor3.genesys.stun-turn", "floor3.genesys.signalling", "floor3.genesys.media", "floor3.corp.turn", "floor3.corp.turn-tls"} {
		if counted[name] == 0 {
			t.Errorf("status: rule %s carried no packets (%v)", name, counted)
		}
	}
	if counted["genesys.corp.relay-in"] != 0 {
		t.Errorf("status: genesys.corp.relay-in counted packets")
	}
	var defaultDrops uint64
	for _, r := range status.Rules {
		if r.Comment == "default_action deny" {
			defaultDrops = r.Packets
		}
	}
	if defaultDrops < 4 {
		t.Errorf("status: the default drop counted %d packets, want at least the 4 dropped flows", defaultDrops)
	}

	// A delta opens the extra address and keeps handles and counters.
	before, _ := Read(target)
	res := mustApply(t, l.gw, withPrefix(rs, "provider.genesys_v4", "203.0.113.64/26"))
	if res.Plan.Action != Delta {
		t.Fatalf("adding a prefix: %s", res.Plan.Action)
	}
	after, _ := Read(target)
	for chain, cs := range before.Counters {
		for i, c := range cs {
			a := after.Counters[chain][i]
			if a.Handle != c.Handle || a.Packets < c.Packets {
				t.Errorf("chain %s rule %d: handle %d -> %d, packets %d -> %d", chain, i, c.Handle, a.Handle, c.Packets, a.Packets)
			}
		}
	}
	udpFlow(t, l.agent, agent, l.provider, extra, 3478, true)

	// An operator applies a change that cuts signalling, with a confirm
	// window, and cannot confirm: the window ends and the flow is back.
	st := State{Dir: t.TempDir()}
	cut := without(rs, ".signalling ")
	_, p, err := st.ApplyConfirmed(target, cut, ConfirmOptions{Window: 2 * time.Second, Watcher: func(id string) *exec.Cmd {
		return child("watch", "TW_STATE="+st.Dir, "TW_NETNS="+l.gw.Name, "TW_TABLE=turnwall", "TW_ID="+id)
	}})
	if err != nil {
		t.Fatal(err)
	}
	tcpFlow(t, l.agent, agent, l.provider, provider, 443, false)
	waitGone(t, st.pendingPath(target), 10*time.Second)
	if p.Previous == nil {
		t.Fatal("nothing saved")
	}
	tcpFlow(t, l.agent, agent, l.provider, provider, 443, true)
	udpFlow(t, l.agent, agent, l.provider, extra, 3478, true)
}
