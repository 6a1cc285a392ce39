package verify

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/store/storetest"
	"github.com/turnwall/turnwall/relay/turnclient"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// poolPolicy is the private-relay example with a second IPv4 address for
// the relay.
func poolPolicy(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../policies/private-relay/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), `addresses   = ["192.0.2.10", "2001:db8:30::10"]`, `addresses   = ["192.0.2.10", "192.0.2.20", "2001:db8:30::10"]`, 1)
	if text == string(src) {
		t.Fatal("the example's relay addresses changed; update poolPolicy")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "certs"), os.DirFS("../../policies/private-relay/certs")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRelayPool: the lab runs the relay as two nodes sharing a Redis with
// the REST secret in it; every ICE server of both nodes allocates through
// the firewall and calls connect; a draining node 1 redirects a new
// allocation to node 2 (found in the store's registry); with node 1 killed,
// node 1's servers fail, node 2's still allocate and a new call connects.
func TestRelayPool(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	storetest.Need(t, "redis-server")
	res := compiler.Compile(poolPolicy(t), compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	p := res.Program
	p.Index()
	rs, err := nftables.Build(p, "turnwall")
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Apply(rs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := l.StartServices(ctx, ServiceOptions{RelayPool: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range s.Notes {
		t.Logf("note: %s", n)
	}
	nodes := s.PoolNodes()
	if len(nodes) != 2 || nodes[0].ID != "dmz-node1" || nodes[1].ID != "dmz-node2" {
		t.Fatalf("pool nodes %+v", nodes)
	}
	var urls []string
	for _, srv := range s.ICEServers("claims") {
		urls = append(urls, srv.URL)
	}
	for _, want := range []string{"turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.20:3478?transport=udp",
		"turns:192.0.2.20:443?transport=tcp", "turn:[2001:db8:30::10]:3478?transport=udp"} {
		if !strings.Contains(strings.Join(urls, " "), want) {
			t.Errorf("claims' ICE servers lack %s: %v", want, urls)
		}
	}
	checks := s.Check(ctx, "claims")
	for _, c := range checks {
		if !c.OK || c.Expected != "pass" {
			t.Errorf("%s: expected %s, got %s: %s", c.Server.URL, c.Expected, c.Got, c.Reason)
		}
	}
	calls := func(when string) {
		t.Helper()
		start := time.Now()
		cs := l.Calls(ctx, s, map[string][]ServerCheck{"claims": s.Check(ctx, "claims")}, CallOptions{Call: call.Options{Media: time.Second}, MinMOS: 3.6})
		n := 0
		for _, c := range cs {
			if c.Group != "claims" || c.Skipped != "" {
				continue
			}
			n++
			if !c.OK {
				t.Errorf("%s: claims %s call: %s", when, c.Mode, c.Trouble)
			}
		}
		if n == 0 {
			t.Errorf("%s: no call ran", when)
		}
		t.Logf("%s: %d calls in %v", when, n, time.Since(start).Round(time.Millisecond))
	}
	calls("both nodes up")

	// Node 1 drains: a new allocation on it is redirected to node 2.
	ah := l.host("agents", "claims")
	var srv ICEServer
	for _, x := range s.ICEServers("claims") {
		if x.URL == "turn:192.0.2.10:3478?transport=udp" {
			srv = x
		}
	}
	s.DrainPoolNode(nodes[0])
	dial := func(server netip.AddrPort) *turnclient.Client {
		c, err := turnclient.Dial(turnclient.Config{Server: server, Username: srv.Username, Password: srv.Credential,
			Dial: dialFrom(ah.NS, ah.V4, 2*time.Second), Timeout: 2 * time.Second, RTO: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	node2 := netip.MustParseAddrPort("192.0.2.20:3478")
	deadline := time.Now().Add(2 * poolNodeLease)
	for {
		c := dial(srv.Addr)
		moved, _, _, redirect, err := c.AllocateFollow(ctx, turnclient.AllocateOptions{})
		if err == nil && redirect != nil && redirect.To == node2 {
			moved.Refresh(ctx, 0)
			moved.Close()
			c.Close()
			break
		}
		var e *turnclient.Error
		if err == nil {
			moved.Refresh(ctx, 0)
			moved.Close()
		}
		c.Close()
		if time.Now().After(deadline) || err != nil && !(errors.As(err, &e) && e.Code == 486) {
			t.Fatalf("draining node 1: %v, redirect %+v; want a redirect to %s", err, redirect, node2)
		}
		time.Sleep(100 * time.Millisecond) // node 1 has not read node 2's registration yet
	}

	// Node 1 dies: its servers stop answering, node 2's allocate, a new
	// call connects through node 2.
	if err := s.KillPoolNode(nodes[0]); err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Check(ctx, "claims") {
		onNode1 := c.Server.Addr.Addr() == netip.MustParseAddr("192.0.2.10") || c.Server.Addr.Addr() == netip.MustParseAddr("2001:db8:30::10")
		if c.Got == "pass" == onNode1 {
			t.Errorf("node 1 killed: %s got %s: %s", c.Server.URL, c.Got, c.Reason)
		}
	}
	calls("node 1 killed")
}

// TestRunRelayPool: verify --relay-pool 2 end to end: the report passes,
// with the calls made again after the first node was killed.
func TestRunRelayPool(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	storetest.Need(t, "redis-server")
	res := compiler.Compile(poolPolicy(t), compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	res.Lowered.Index()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, res.Lowered, Options{Policy: "pool", RelayPool: 2, Media: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteText(&b)
	after := 0
	for _, g := range rep.Groups {
		for _, c := range g.Calls {
			if c.After != "" && c.Skipped == "" {
				after++
				if !c.OK || c.After != `relay "dmz"'s node dmz-node1 killed` {
					t.Errorf("%s %s after %q: %s", c.Group, c.Mode, c.After, c.Trouble)
				}
			}
		}
	}
	if !rep.OK || after == 0 || !strings.Contains(b.String(), `(relay "dmz"'s node dmz-node1 killed)`) {
		t.Errorf("report OK %v, %d calls after the kill:\n%s", rep.OK, after, b.String())
	}
}
