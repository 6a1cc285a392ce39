package verify

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// pickFunc is an Alternates the test sets after every relay has its ports.
type pickFunc struct {
	mu sync.Mutex
	to map[string]netip.AddrPort // by transport
}

func (p *pickFunc) Pick(_ context.Context, transport string, _ netip.AddrPort) (netip.AddrPort, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.to[transport]
	return a, redirectDomain, ok
}

func (p *pickFunc) set(to *relay.Server) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.to = map[string]netip.AddrPort{}
	for _, l := range to.Listeners() {
		p.to[l.Transport] = l.Addr
	}
}

// redirectDomain is the name on every test relay's certificate besides
// its address: the ALTERNATE-DOMAIN the calls check.
const redirectDomain = "turn.lab.invalid"

// loopRelay runs a bundled relay on ip (loopback) over UDP, TCP and TLS,
// with a certificate of ca, redirecting to wherever alts says.
func loopRelay(t *testing.T, ca *labCA, ip netip.Addr, secret string, alts *pickFunc) *relay.Server {
	t.Helper()
	cert, err := ca.leaf([]string{redirectDomain}, []netip.Addr{ip})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relay.New(relay.Config{
		Name: "loop " + ip.String(), Realm: "lab.invalid",
		Listeners: []relay.Listener{{Transport: relay.UDP, Addr: netip.AddrPortFrom(ip, 0)}, {Transport: relay.TCP, Addr: netip.AddrPortFrom(ip, 0)},
			{Transport: relay.TLS, Addr: netip.AddrPortFrom(ip, 0)}},
		RelayPorts: ir.PortRange{First: 49152, Last: 65535}, Certificate: cert,
		Auth: relay.NewAuth("lab.invalid", nil, []string{secret}), Limits: labLimits, UDPSockets: 1, Alternates: alts,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// serversOf lists a relay's listeners as ICE servers with credentials.
func serversOf(srv *relay.Server, user, pass string) []ICEServer {
	var out []ICEServer
	for _, l := range srv.Listeners() {
		s := turnServer(l, nil, "test")
		s.Username, s.Credential, s.Realm = user, pass, "lab.invalid"
		out = append(out, s)
	}
	return out
}

// noAllocations waits until srv holds no allocation (the probe released
// its own).
func noAllocations(t *testing.T, what string, srv *relay.Server) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for srv.AllocationCount() != 0 {
		if time.Now().After(deadline) {
			t.Errorf("%s still holds %d allocations: the probe allocation was not released", what, srv.AllocationCount())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedirectProbe: with real relays on loopback, over UDP, TCP and TLS:
// a relay that does not redirect is handed to the call unchanged; a
// draining one is replaced by its alternate (TLS: checked against the
// ALTERNATE-DOMAIN); an alternate that redirects back (a loop) or on to a
// third relay is not followed, and the server is left out with the reason
// in plain words. Every probe allocation is released.
func TestRedirectProbe(t *testing.T) {
	ca, err := newLabCA()
	if err != nil {
		t.Fatal(err)
	}
	secret := "redirect-secret"
	user, pass := creds.Generate(secret, agentUser, time.Now().Add(time.Hour))
	altA, altB, altC := &pickFunc{}, &pickFunc{}, &pickFunc{}
	a := loopRelay(t, ca, netip.MustParseAddr("127.0.0.1"), secret, altA)
	b := loopRelay(t, ca, netip.MustParseAddr("127.0.0.2"), secret, altB)
	c := loopRelay(t, ca, netip.MustParseAddr("127.0.0.3"), secret, altC)
	altA.set(b)
	p := redirectProbe{roots: ca.pool}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bURL := map[string]string{}
	for _, s := range serversOf(b, user, pass) {
		bURL[transportOf(s)] = s.URL
	}
	run := func(t *testing.T, check func(srv ICEServer, got string, tlsName string, r *TURNRedirect, keep bool)) {
		for _, srv := range serversOf(a, user, pass) {
			out, r, keep := p.resolve(ctx, srv, netip.MustParseAddr("127.0.0.1"))
			if r != nil {
				t.Logf("%s", r)
			}
			check(srv, out.URL, out.TLSName, r, keep)
		}
		for _, x := range []*relay.Server{a, b, c} {
			noAllocations(t, x.Listeners()[0].Addr.Addr().String(), x)
		}
	}

	t.Run("no redirect", func(t *testing.T) {
		run(t, func(srv ICEServer, got, name string, r *TURNRedirect, keep bool) {
			if r != nil || !keep || got != srv.URL || name != "" {
				t.Errorf("%s: got %s (name %q), redirect %+v, keep %v; want it unchanged", srv.URL, got, name, r, keep)
			}
		})
	})

	a.Drain()
	t.Run("redirect", func(t *testing.T) {
		run(t, func(srv ICEServer, got, name string, r *TURNRedirect, keep bool) {
			tr := transportOf(srv)
			want := TURNRedirect{From: srv.URL, To: bURL[tr], Transport: tr}
			wantName := ""
			if tr == "tls" {
				want.Domain, wantName = redirectDomain, redirectDomain
			}
			if r == nil || *r != want || !keep || got != bURL[tr] || name != wantName {
				t.Errorf("%s: got %s (name %q), redirect %+v, keep %v; want %+v", srv.URL, got, name, r, keep, want)
			}
		})
	})

	b.Drain()
	altB.set(a)
	t.Run("loop", func(t *testing.T) {
		run(t, func(srv ICEServer, got, name string, r *TURNRedirect, keep bool) {
			if r == nil || keep || got != "" || r.To != "" || !strings.HasPrefix(r.Error, "redirect loop: redirected to 127.0.0.2:") ||
				!strings.Contains(r.Error, "which redirects back to "+srv.Addr.String()) || !strings.Contains(r.Error, "not followed twice") {
				t.Errorf("%s: got %q, redirect %+v, keep %v; want a loop left out", srv.URL, got, r, keep)
			}
		})
	})

	altB.set(c)
	t.Run("second redirect", func(t *testing.T) {
		run(t, func(srv ICEServer, got, name string, r *TURNRedirect, keep bool) {
			if r == nil || keep || got != "" || !strings.Contains(r.Error, "which redirects again to 127.0.0.3:") ||
				!strings.Contains(r.Error, "only one redirect is followed") {
				t.Errorf("%s: got %q, redirect %+v, keep %v; want the second redirect not followed", srv.URL, got, r, keep)
			}
		})
	})
	if c.AllocationCount() != 0 {
		t.Errorf("the third relay got %d allocations: a second redirect was followed", c.AllocationCount())
	}
}

// TestRedirectTrouble: a redirect that was not followed (a loop) fails
// even a call that connected through another server, in plain words, and
// the text and JSON reports show every redirect under its call; followed
// redirects alone leave the verdict alone.
func TestRedirectTrouble(t *testing.T) {
	connected := call.Result{State: call.StateConnected, Audio: call.AudioBoth}
	followed := TURNRedirect{From: "turn:192.0.2.10:3478?transport=udp", To: "turn:192.0.2.20:3478?transport=udp", Transport: "udp"}
	loop := TURNRedirect{From: "turns:192.0.2.10:443?transport=tcp", Transport: "tls",
		Error: "redirect loop: redirected to 192.0.2.20:443, which redirects back to 192.0.2.10:443 (300 Try Alternate): not followed twice, the server is left out of the call"}

	ok := CallResult{Group: "floor", Mode: "relay", Far: `provider "p"`, Result: connected, OK: true, Redirects: []TURNRedirect{followed}}
	redirectTrouble(&ok)
	if !ok.OK || ok.Trouble != "" {
		t.Errorf("a followed redirect failed the call: %q", ok.Trouble)
	}
	bad := CallResult{Group: "floor", Mode: "all", Far: `provider "p"`, Result: connected, OK: true, Redirects: []TURNRedirect{followed, loop}}
	redirectTrouble(&bad)
	want := "a TURN server's 300 Try Alternate could not be followed, agents lose that server: turns:192.0.2.10:443?transport=tcp: redirect loop: redirected to 192.0.2.20:443, which redirects back to 192.0.2.10:443"
	if bad.OK || !strings.HasPrefix(bad.Trouble, want) {
		t.Errorf("a redirect loop: OK %v, trouble %q", bad.OK, bad.Trouble)
	}
	failed := CallResult{Result: call.Result{State: call.StateFailed}, Trouble: "no audio: the call never connects", Redirects: []TURNRedirect{loop}}
	redirectTrouble(&failed)
	if failed.OK || !strings.HasPrefix(failed.Trouble, "no audio: the call never connects; a TURN server's 300") {
		t.Errorf("a failed call: %q", failed.Trouble)
	}

	rep := &Report{}
	rep.collect(nil, nil, nil, []CallResult{ok, bad}, nil)
	var text, js strings.Builder
	rep.WriteText(&text)
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"    ok    ICE relay only to provider \"p\": connected in 0.00 s\n          redirect turn:192.0.2.10:3478?transport=udp -> turn:192.0.2.20:3478?transport=udp (300 Try Alternate)\n",
		"          redirect turns:192.0.2.10:443?transport=tcp: redirect loop: ",
		"verify: FAILED\n  - agents \"floor\", ICE all: a TURN server's 300 Try Alternate could not be followed",
	} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text report lacks %q:\n%s", w, text.String())
		}
	}
	for _, w := range []string{`"redirects": [`, `"from": "turn:192.0.2.10:3478?transport=udp"`, `"to": "turn:192.0.2.20:3478?transport=udp"`,
		`"transport": "tls"`, `"error": "redirect loop: `} {
		if !strings.Contains(js.String(), w) {
			t.Errorf("JSON report lacks %s:\n%s", w, js.String())
		}
	}
}
