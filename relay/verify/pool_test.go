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
// the firewall and calls connect, none redirected; a draining node 1
// redirects a new allocation to node 2 (found in the store's registry), and
// a call given node 1's servers alone follows the redirect and connects
// through node 2, which the report shows (and, before the drain, the same
// call shows no redirect); with node 1 killed, node 1's servers fail, node
// 2's still allocate and a new relayed call connects through node 2.
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
	calls := func(when string, opt CallOptions) []CallResult {
		t.Helper()
		start := time.Now()
		opt.Call, opt.MinMOS = call.Options{Media: time.Second}, 3.6
		cs := l.callsOf(ctx, s, []string{"claims"}, map[string][]ServerCheck{"claims": s.Check(ctx, "claims")}, opt)
		var out []CallResult
		for _, c := range cs {
			if c.Skipped != "" {
				continue
			}
			out = append(out, c)
			if !c.OK {
				t.Errorf("%s: claims %s call: %s", when, c.Mode, c.Trouble)
			}
		}
		if len(out) == 0 {
			t.Errorf("%s: no call ran", when)
		}
		t.Logf("%s: %d calls in %v", when, len(out), time.Since(start).Round(time.Millisecond))
		return out
	}
	for _, c := range calls("both nodes up", CallOptions{}) {
		if len(c.Redirects) > 0 {
			t.Errorf("both nodes up: %s call redirected: %v", c.Mode, c.Redirects)
		}
	}
	// A relayed call given node 1's IPv4 servers alone (UDP, TCP, TLS).
	node1 := netip.MustParseAddr("192.0.2.10")
	onlyNode1 := CallOptions{servers: func(x ICEServer) bool { return x.Addr.Addr() == node1 }, modes: []string{"relay"}}
	for _, c := range calls("node 1 up, its servers alone", onlyNode1) {
		if len(c.Redirects) > 0 || c.Result.Local == nil || c.Result.Local.Address != "192.0.2.10" {
			t.Errorf("node 1 up, its servers alone: redirects %v, local candidate %v; want node 1's relay, no redirect", c.Redirects, c.Result.Local)
		}
	}

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

	// A call given node 1's servers alone follows their redirects and
	// connects through node 2; the report says so.
	drained := calls("node 1 draining, its servers alone", onlyNode1)
	// The registry keeps the client's port: TLS 443 goes to node 2's 443,
	// TLS 5349 to its 5349.
	want := []TURNRedirect{
		{From: "turn:192.0.2.10:3478?transport=udp", To: "turn:192.0.2.20:3478?transport=udp", Transport: "udp"},
		{From: "turn:192.0.2.10:3478?transport=tcp", To: "turn:192.0.2.20:3478?transport=tcp", Transport: "tcp"},
		{From: "turns:192.0.2.10:5349?transport=tcp", To: "turns:192.0.2.20:5349?transport=tcp", Transport: "tls", Domain: "turn.example.com"},
		{From: "turns:192.0.2.10:443?transport=tcp", To: "turns:192.0.2.20:443?transport=tcp", Transport: "tls", Domain: "turn.example.com"},
	}
	for _, c := range drained {
		same := len(c.Redirects) == len(want)
		for i := 0; same && i < len(want); i++ {
			g, w := c.Redirects[i], want[i]
			same = g.From == w.From && g.To == w.To && g.Transport == w.Transport && g.Domain == w.Domain && g.Error == ""
		}
		if !same || c.Result.Local == nil || c.Result.Local.Type != "relay" || c.Result.Local.Address != "192.0.2.20" {
			t.Errorf("node 1 draining: redirects %+v, local candidate %v; want %+v and node 2's relay", c.Redirects, c.Result.Local, want)
		}
	}
	rep := &Report{}
	rep.collect(l.AgentHosts(), nil, nil, drained, nil)
	var text, js strings.Builder
	rep.WriteText(&text)
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"redirect turn:192.0.2.10:3478?transport=udp -> turn:192.0.2.20:3478?transport=udp (300 Try Alternate)",
		"redirect turns:192.0.2.10:443?transport=tcp -> turns:192.0.2.20:443?transport=tcp (300 Try Alternate), certificate name turn.example.com\n"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("the text report lacks %q:\n%s", w, text.String())
		}
	}
	if !strings.Contains(js.String(), `"redirects": [`) || !strings.Contains(js.String(), `"from": "turn:192.0.2.10:3478?transport=tcp"`) ||
		!strings.Contains(js.String(), `"to": "turn:192.0.2.20:3478?transport=tcp"`) || !strings.Contains(js.String(), `"transport": "tls"`) {
		t.Errorf("the JSON report lacks the redirects:\n%s", js.String())
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
	for _, c := range calls("node 1 killed", CallOptions{}) {
		if c.Mode == "relay" && (c.Result.Local == nil || c.Result.Local.Type != "relay" || c.Result.Local.Address != "192.0.2.20") {
			t.Errorf("node 1 killed: the relayed call's local candidate is %v, want node 2's relay 192.0.2.20", c.Result.Local)
		}
	}
}

// TestRunRelayPool: verify --relay-pool 2 end to end: the report passes,
// with the calls made again while the first node drains (node 1's servers
// redirected to node 2, which the text and JSON reports show; the first
// calls show no redirect) and after it was killed.
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
	var b, js strings.Builder
	rep.WriteText(&b)
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	const draining, killed = `relay "dmz"'s node dmz-node1 draining`, `relay "dmz"'s node dmz-node1 killed`
	n := map[string]int{}
	redirected := 0
	for _, g := range rep.Groups {
		for _, c := range g.Calls {
			if c.Skipped != "" {
				continue
			}
			n[c.After]++
			if !c.OK {
				t.Errorf("%s %s after %q: %s", c.Group, c.Mode, c.After, c.Trouble)
			}
			for _, r := range c.Redirects {
				if c.After != draining || r.Error != "" || !strings.Contains(r.From, "192.0.2.10:") || !strings.Contains(r.To, "192.0.2.20:") {
					t.Errorf("%s %s after %q: redirect %s", c.Group, c.Mode, c.After, r)
				}
			}
			if c.After == draining && len(c.Redirects) > 0 {
				redirected++
			}
		}
	}
	if n[""] == 0 || n[draining] != n[""] || n[killed] != n[""] || redirected != n[draining] {
		t.Errorf("calls by phase %v, %d redirected while draining", n, redirected)
	}
	if !rep.OK || !strings.Contains(b.String(), "("+killed+")") || !strings.Contains(b.String(), "("+draining+")") ||
		!strings.Contains(b.String(), "redirect turn:192.0.2.10:3478?transport=udp -> turn:192.0.2.20:3478?transport=udp (300 Try Alternate)") {
		t.Errorf("report OK %v:\n%s", rep.OK, b.String())
	}
	if !strings.Contains(js.String(), `"after": "relay \"dmz\"'s node dmz-node1 draining"`) || !strings.Contains(js.String(), `"from": "turn:192.0.2.10:3478?transport=udp"`) {
		t.Errorf("the JSON report lacks the draining calls' redirects")
	}
}
