package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/turnclient"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// A relay that drains, or holds more allocations than its capacity
// threshold, answers Allocate with 300 Try Alternate and an
// ALTERNATE-SERVER (RFC 8489 section 10, RFC 8656). pion/turn's client, and
// so the calls' ICE agent, does not follow it (pion/turn issue 544): the
// server just gives no candidate. Before a call hands its ICE servers to
// pion, the lab does what a browser-side workaround does: it allocates on
// every TURN server with the call's credentials, follows at most one 300,
// gives pion the alternate in place of the redirecting server and releases
// the probe allocation.

// TURNRedirect is a 300 Try Alternate one of a call's TURN servers answered
// before the call.
type TURNRedirect struct {
	From      string `json:"from"`             // the URL the agents were given
	To        string `json:"to,omitempty"`     // the URL the call used instead; "" when not followed
	Transport string `json:"transport"`        // udp, tcp or tls
	Domain    string `json:"domain,omitempty"` // TLS: ALTERNATE-DOMAIN, the name the alternate's certificate was checked for
	// Error says why the server was left out of the call: the alternate
	// answered 300 as well (a second redirect, or a loop), or could not
	// be reached.
	Error string `json:"error,omitempty"`
}

func (r TURNRedirect) String() string {
	if r.Error != "" {
		return fmt.Sprintf("%s: %s", r.From, r.Error)
	}
	s := fmt.Sprintf("%s -> %s (300 Try Alternate)", r.From, r.To)
	if r.Domain != "" {
		s += ", certificate name " + r.Domain
	}
	return s
}

// redirectTimeout bounds one server's probe allocation (and the
// allocation on its alternate).
const redirectTimeout = 1500 * time.Millisecond

// redirectProbe follows srv's redirect, if any, as the agent whose
// connections dial opens (nil: the process's network).
type redirectProbe struct {
	roots *x509.CertPool
	dial  func(src netip.Addr) func(network, address string) (net.Conn, error)
}

// resolve allocates on srv with its credentials. Without a 300 (or when the
// server cannot be reached at all: pion finds the same) srv goes to the call
// unchanged and r is nil. After one 300, the call gets the alternate and r
// says so; when the alternate answers 300 too, or cannot be allocated on, r
// carries the error and keep is false: the call gets neither.
func (p redirectProbe) resolve(ctx context.Context, srv ICEServer, src netip.Addr) (out call.Server, r *TURNRedirect, keep bool) {
	out = call.Server{URL: srv.URL, Username: srv.Username, Credential: srv.Credential}
	transport := transportOf(srv)
	cfg := turnclient.Config{
		Transport: transport, Server: srv.Addr, Username: srv.Username, Password: srv.Credential,
		TLS: &tls.Config{RootCAs: p.roots, ServerName: srv.Addr.Addr().String(), MinVersion: tls.VersionTLS12},
		RTO: 200 * time.Millisecond, Timeout: redirectTimeout,
	}
	if p.dial != nil {
		cfg.Dial = p.dial(src)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*redirectTimeout+time.Second)
	defer cancel()
	c, err := turnclient.Dial(cfg)
	if err != nil {
		return out, nil, true
	}
	n, _, _, red, err := c.AllocateFollow(ctx, turnclient.AllocateOptions{IPv6: srv.Addr.Addr().Is6()})
	defer c.Close()
	defer n.Close()
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, redirectTimeout)
		n.Refresh(rctx, 0) // release the probe allocation; errors do not matter
		cancel()
	}
	if red == nil {
		return out, nil, true
	}
	r = &TURNRedirect{From: srv.URL, Transport: transport, Domain: red.Domain}
	var re *turnclient.RedirectError
	switch {
	case errors.As(err, &re) && !re.Next.IsValid():
		r.Error = fmt.Sprintf("redirected to %s, which answered 300 Try Alternate as well (without a usable alternate): not followed twice, the server is left out of the call", red.To)
	case errors.As(err, &re) && re.Loop():
		r.Error = fmt.Sprintf("redirect loop: redirected to %s, which redirects back to %s (300 Try Alternate): not followed twice, the server is left out of the call", red.To, re.Next)
	case errors.As(err, &re):
		r.Error = fmt.Sprintf("redirected to %s, which redirects again to %s (300 Try Alternate): only one redirect is followed, the server is left out of the call", red.To, re.Next)
	case err != nil:
		r.Error = fmt.Sprintf("redirected to %s (300 Try Alternate), where the allocation failed: %s", red.To, explain(ICEServer{Kind: srv.Kind, Proto: srv.Proto, Addr: red.To, Realm: srv.Realm}, true, "", n.Realm(), err))
	default:
		out.URL = alternateURL(srv, red.To)
		out.TLSName = red.Domain
		r.To = out.URL
	}
	if r.Error != "" {
		return call.Server{}, r, false
	}
	return out, r, true
}

// alternateURL is srv's URL with the alternate's address.
func alternateURL(srv ICEServer, to netip.AddrPort) string {
	scheme, transport := "turn", "udp"
	switch transportOf(srv) {
	case "tcp":
		transport = "tcp"
	case "tls":
		scheme, transport = "turns", "tcp"
	}
	return fmt.Sprintf("%s:%s:%d?transport=%s", scheme, urlHost(to.Addr()), to.Port(), transport)
}

// callServers is what a call from agents host ah hands to pion for
// servers: STUN servers as they are, each TURN server resolved (see
// redirectProbe), concurrently. checks are the group's ICE server checks:
// a server that gave them no answer at all (dropped, refused, TLS failed)
// is handed over without a probe, which would only wait as long.
func (s *Services) callServers(ctx context.Context, ah *Host, servers []ICEServer, checks []ServerCheck) ([]call.Server, []TURNRedirect) {
	silent := map[string]bool{}
	for _, c := range checks {
		if !c.answered {
			silent[c.URL] = true
		}
	}
	p := redirectProbe{roots: s.RootCAs, dial: func(src netip.Addr) func(network, address string) (net.Conn, error) {
		return dialFrom(ah.NS, src, redirectTimeout)
	}}
	// Probes given the lab's REST credentials use a user of their own from
	// the same secret: whether a node redirects does not depend on the user,
	// and a probe allocation (until its release lands) must not count
	// against the quota of the user the calls allocate with.
	probeUser, probePass := creds.Generate(s.Secret, agentUser+"-redirect-probe", time.Now().Add(time.Hour))
	type slot struct {
		srv  call.Server
		r    *TURNRedirect
		keep bool
	}
	out := make([]slot, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		out[i] = slot{srv: call.Server{URL: srv.URL, Username: srv.Username, Credential: srv.Credential}, keep: true}
		src := ah.source(srv.Addr.Addr())
		if srv.Kind == "stun" || silent[srv.URL] || !src.IsValid() {
			continue
		}
		wg.Add(1)
		probe := srv
		if srv.Username == s.restUser && srv.Credential == s.restPass {
			probe.Username, probe.Credential = probeUser, probePass
		}
		go func() {
			defer wg.Done()
			var r *TURNRedirect
			var keep bool
			_, r, keep = p.resolve(ctx, probe, src)
			if keep && r != nil && r.To != "" {
				out[i].srv.URL, out[i].srv.TLSName = r.To, r.Domain
			}
			out[i].r, out[i].keep = r, keep
		}()
	}
	wg.Wait()
	var cs []call.Server
	var rs []TURNRedirect
	for _, o := range out {
		if o.keep {
			cs = append(cs, o.srv)
		}
		if o.r != nil {
			rs = append(rs, *o.r)
		}
	}
	return cs, rs
}
