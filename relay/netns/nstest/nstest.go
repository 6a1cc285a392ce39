// Package nstest holds the test helpers every kernel test shares: the
// skip-or-fail rule for namespaces, namespaces removed when the test ends,
// nft listings without handles, UDP and TCP flows that must pass (with their
// replies) or be dropped, and the gateway lab of the policy-language example.
package nstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

// Debian packages of the commands kernel tests use, for skip messages.
var packages = map[string]string{"nft": "nftables", "ip": "iproute2", "turnserver": "coturn", "turnutils_uclient": "coturn"}

// NeedKernel skips the test when network namespaces or the named commands are
// truly unavailable (not root, not installed); in CI (CI=true) that is a
// failure, never a skip.
func NeedKernel(t testing.TB, commands ...string) {
	t.Helper()
	err := netns.Available()
	for _, c := range commands {
		if err != nil {
			break
		}
		if _, lookErr := exec.LookPath(c); lookErr != nil {
			err = fmt.Errorf("%s (Debian package %s) is missing", c, packages[c])
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel test cannot run in CI: %v", err)
		}
		t.Skipf("kernel test needs root and %v: %v", commands, err)
	}
}

// NewNS creates a namespace that is removed when the test ends.
func NewNS(t testing.TB, role string) *netns.NS {
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

// Nft runs nft in the namespace and fails the test on error.
func Nft(t testing.TB, ns *netns.NS, args ...string) []byte {
	t.Helper()
	out, err := ns.Exec(context.Background(), "nft", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// StripHandles removes "handle" keys from a decoded nft -j listing: handles
// change on every load and say nothing about the ruleset.
func StripHandles(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, val := range x {
			if k != "handle" {
				m[k] = StripHandles(val)
			}
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = StripHandles(val)
		}
		return out
	}
	return v
}

// How long an allowed packet may take, and how long a dropped one is waited for.
const (
	WaitAllowed = 2 * time.Second
	WaitDropped = 300 * time.Millisecond
)

// UDPFlow sends one datagram from src (address from, port sport; 0 for any)
// to dst and expects it to arrive and its reply to come back through the
// stateful rule, or to be dropped.
func UDPFlow(t *testing.T, src *netns.NS, from string, sport int, dst *netns.NS, to string, dport int, allowed bool) {
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
	if _, err := client.WriteToUDP([]byte("turnwall probe"), server.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	wait := WaitDropped
	if allowed {
		wait = WaitAllowed
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
	server.WriteToUDP([]byte("reply"), peer)
	client.SetReadDeadline(time.Now().Add(WaitAllowed))
	if _, _, err := client.ReadFromUDP(buf); err != nil {
		t.Errorf("%s: the reply did not come back: %v", name, err)
	}
}

// TCPFlow opens a connection and expects it to be set up, or its SYN to be
// dropped (the dial times out).
func TCPFlow(t *testing.T, src *netns.NS, from string, dst *netns.NS, to string, dport int, allowed bool) {
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
	wait := WaitDropped
	if allowed {
		wait = WaitAllowed
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

// Lab is the network of the policy-language example
// (testdata/golden/cases/issue-example.hcl): agents on vlan20
// (10.20.0.10, fd00:20::10), the provider on wan0 (52.129.96.10, and
// 203.0.113.70 outside its ranges), the relay in the DMZ on dmz0
// (198.51.100.10, 2001:db8::10, and 198.51.100.20, another DMZ host), joined
// by a gateway namespace that routes between them.
type Lab struct {
	GW, Agent, Provider, Relay *netns.NS
}

// ExampleLab builds the example's network; everything is removed when the
// test ends.
func ExampleLab(t *testing.T) *Lab {
	t.Helper()
	l := &Lab{GW: NewNS(t, "gw"), Agent: NewNS(t, "agent"), Provider: NewNS(t, "provider"), Relay: NewNS(t, "relay")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.GW.Router())
	must(netns.Link(l.GW, "vlan20", l.Agent, "eth0"))
	must(netns.Link(l.GW, "wan0", l.Provider, "eth0"))
	must(netns.Link(l.GW, "dmz0", l.Relay, "eth0"))
	for _, a := range []struct {
		ns        *netns.NS
		dev, cidr string
	}{
		{l.GW, "vlan20", "10.20.0.1/16"}, {l.GW, "vlan20", "fd00:20::1/48"},
		{l.GW, "wan0", "52.129.96.1/20"},
		{l.GW, "dmz0", "198.51.100.1/24"}, {l.GW, "dmz0", "2001:db8::1/64"},
		{l.Agent, "eth0", "10.20.0.10/16"}, {l.Agent, "eth0", "fd00:20::10/48"},
		{l.Provider, "eth0", "52.129.96.10/20"}, {l.Provider, "eth0", "203.0.113.70/32"},
		{l.Relay, "eth0", "198.51.100.10/24"}, {l.Relay, "eth0", "2001:db8::10/64"},
		{l.Relay, "eth0", "198.51.100.20/24"},
	} {
		must(a.ns.Addr(a.dev, a.cidr))
	}
	must(l.Agent.DefaultRoute("eth0", "10.20.0.1"))
	must(l.Agent.DefaultRoute("eth0", "fd00:20::1"))
	must(l.Provider.DefaultRoute("eth0", "52.129.96.1"))
	must(l.Relay.DefaultRoute("eth0", "198.51.100.1"))
	must(l.Relay.DefaultRoute("eth0", "2001:db8::1"))
	// The provider's address outside its policy ranges, reached through wan0.
	must(l.GW.IP("route", "add", "203.0.113.70/32", "via", "52.129.96.10", "dev", "wan0"))
	return l
}

// SyncBuffer collects a process's or a logger's output while a test reads it:
// a bytes.Buffer safe for concurrent writers and readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
