package verify

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/probe"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// CallResult is one WebRTC call of an agents group: a browser-like peer on
// the agents host and a media server peer (ICE-lite, host candidates only)
// on a provider host.
type CallResult struct {
	Group   string   `json:"agents"`
	Mode    string   `json:"mode"`    // "relay" (iceTransportPolicy relay), "all", or "ipv6" (all, IPv6 addresses and servers only)
	Far     string   `json:"far_end"` // `provider "genesys"`
	Servers []string `json:"ice_servers"`
	// Skipped says why the call was not run; a skipped call is not a failure.
	Skipped string      `json:"skipped,omitempty"`
	Result  call.Result `json:"result"`
	// MOS is the simplified E-model score of the worse direction (one-way
	// delay from the pair's RTT and the jitter, plus the loss).
	MOS float64 `json:"mos,omitempty"`
	OK  bool    `json:"ok"`
	// After says what the lab changed before this call ("relay \"dmz\"'s
	// node dmz-node1 stopped", for a relay pool); "" for the first calls.
	After string `json:"after,omitempty"`
	// Redirects are the TURN servers that answered the lab's Allocate
	// before the call with 300 Try Alternate: the call was given the
	// alternate instead (or, after a second 300, neither).
	Redirects []TURNRedirect `json:"redirects,omitempty"`
	// Trouble is what agents experience when the call is not OK.
	Trouble string `json:"trouble,omitempty"`
}

// FarEnd is where the lab puts the media server an agents group calls.
type FarEnd struct {
	Host  *Host
	Ports [2]uint16 // its host-candidate UDP ports (zero: any)
	Why   string    // why this host
}

// FarEnd chooses the media server for group: the provider its agents send
// media to, else the provider whose TURN service they use (the media server
// sits behind it), else a provider peer of a relay that serves them.
func (l *Lab) FarEnd(group string) (FarEnd, bool) {
	agents := l.host("agents", group)
	if agents == nil {
		return FarEnd{}, false
	}
	for _, purpose := range []ir.Purpose{ir.PurposeMedia, ir.PurposeSTUNTURN, ir.PurposeTURNTLS} {
		for i := range l.Prog.Rules {
			r := &l.Prog.Rules[i]
			if r.Action != ir.Allow || r.Purpose != purpose || r.Src != l.setOf(agents) {
				continue
			}
			far := l.hostBySet("provider", r.Dst)
			if far == nil {
				continue
			}
			fe := FarEnd{Host: far, Why: fmt.Sprintf("rule %s", r.Name)}
			if purpose == ir.PurposeMedia {
				if svc := l.Prog.Service(r.Service); svc != nil {
					for _, e := range svc.Entries {
						if e.Proto == ir.UDP && len(e.Ports) > 0 {
							fe.Ports = [2]uint16{e.Ports[0].First, e.Ports[0].Last}
							break
						}
					}
				}
			}
			return fe, true
		}
	}
	for _, rel := range l.Prog.Relays {
		if !serves(&rel, group) {
			continue
		}
		for i := range l.Prog.Rules {
			r := &l.Prog.Rules[i]
			if r.Action != ir.Allow || r.Purpose != ir.PurposeRelayMedia || r.Src != rel.Addresses {
				continue
			}
			if far := l.hostBySet("provider", r.Dst); far != nil {
				return FarEnd{Host: far, Why: fmt.Sprintf("peer of relay %q (rule %s)", rel.Name, r.Name)}, true
			}
		}
	}
	return FarEnd{}, false
}

func (l *Lab) hostBySet(kind, set string) *Host {
	for _, h := range l.Hosts {
		if h.Kind == kind && l.setOf(h) == set {
			return h
		}
	}
	return nil
}

// setOf is the address set of the block a host stands for.
func (l *Lab) setOf(h *Host) string { return setOf(l.Prog, h) }

// CallOptions tune the calls.
type CallOptions struct {
	Call     call.Options
	MinMOS   float64      // a connected call scoring below is a failure (poor audio)
	Progress func(string) // called as each call starts; may be nil

	// Tests narrow the calls: servers chooses which of a group's ICE
	// servers they get (nil: all), modes which calls run (nil: all).
	servers func(ICEServer) bool
	modes   []string
}

// Calls runs, for every agents group, a call through the relays only
// (iceTransportPolicy relay, when the group has a TURN server) and then
// with every candidate (all). Groups run concurrently. Before each call,
// its TURN servers' redirects are followed once (redirect.go).
func (l *Lab) Calls(ctx context.Context, svc *Services, checks map[string][]ServerCheck, opt CallOptions) []CallResult {
	var groups []string
	for _, h := range l.AgentHosts() {
		groups = append(groups, h.Block)
	}
	return l.callsOf(ctx, svc, groups, checks, opt)
}

// callsOf runs the calls of the given agents groups, concurrently.
func (l *Lab) callsOf(ctx context.Context, svc *Services, groups []string, checks map[string][]ServerCheck, opt CallOptions) []CallResult {
	out := make([][]CallResult, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = l.groupCalls(ctx, svc, g, checks[g], opt)
		}()
	}
	wg.Wait()
	var all []CallResult
	for _, o := range out {
		all = append(all, o...)
	}
	return all
}

func (l *Lab) groupCalls(ctx context.Context, svc *Services, group string, checks []ServerCheck, opt CallOptions) []CallResult {
	agents := l.host("agents", group)
	var servers []ICEServer
	for _, s := range svc.ICEServers(group) {
		if opt.servers == nil || opt.servers(s) {
			servers = append(servers, s)
		}
	}
	var urls []string
	turn := false
	for _, s := range servers {
		urls = append(urls, s.URL)
		turn = turn || s.Kind == "turn" || s.Kind == "turns"
	}
	fe, ok := l.FarEnd(group)
	var res []CallResult
	modes := []string{"relay", "all"}
	if ok && agents.V6.IsValid() && fe.Host.V6.IsValid() {
		// Both ends have IPv6: one more call on IPv6 alone, so v6 media
		// crosses the ruleset too (ICE prefers IPv4 pairs otherwise).
		modes = append(modes, "ipv6")
	}
	for _, mode := range modes {
		if opt.modes != nil && !slices.Contains(opt.modes, mode) {
			continue
		}
		cr := CallResult{Group: group, Mode: mode, Servers: urls, OK: true}
		switch {
		case !ok:
			cr.Skipped = "no media server to call: the policy gives these agents no provider media, provider TURN or relay peer"
		case mode == "relay" && !turn:
			cr.Skipped = "no TURN server for these agents"
		}
		if ok {
			cr.Far = fe.Host.Name()
		}
		if cr.Skipped != "" {
			res = append(res, cr)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if opt.Progress != nil {
			opt.Progress(fmt.Sprintf("call agents %q -> %s (ICE %s)", group, fe.Host.Name(), mode))
		}
		a := call.Endpoint{Name: agents.Name(), NS: agents.NS, Addrs: agents.addrs(), RelayOnly: mode == "relay", RootCAs: svc.RootCAs}
		f := call.Endpoint{Name: fe.Host.Name(), NS: fe.Host.NS, Addrs: fe.Host.mediaAddrs(), Lite: true, Ports: fe.Ports}
		given := servers
		if mode == "ipv6" {
			a.Addrs, f.Addrs = only6(a.Addrs), only6(f.Addrs)
			given, cr.Servers = nil, nil
			for _, srv := range servers {
				if srv.Addr.Addr().Is6() {
					given = append(given, srv)
					cr.Servers = append(cr.Servers, srv.URL)
				}
			}
		}
		// pion does not follow 300 Try Alternate: the lab does, as a
		// browser-side workaround would (redirect.go).
		a.Servers, cr.Redirects = svc.callServers(ctx, agents, given, checks)
		cr.Result = call.Run(ctx, a, f, opt.Call)
		if ctx.Err() != nil && (cr.Result.State != call.StateConnected || cr.Result.Audio != call.AudioBoth) {
			// Cut short (Ctrl-C, --timeout): not a verdict on the policy.
			cr.Skipped = "interrupted before it finished (" + ctx.Err().Error() + ")"
			res = append(res, cr)
			break
		}
		cr.OK = cr.Result.State == call.StateConnected && cr.Result.Audio == call.AudioBoth
		if !cr.OK && cr.Result.State != call.StateConnected {
			if why := l.notPeer(group, fe.Host); why != "" {
				cr.Result.Err += "; " + why
			}
		}
		if cr.Result.State == call.StateConnected {
			cr.MOS = mos(cr.Result)
			if cr.OK && cr.MOS < opt.MinMOS {
				cr.OK = false
				cr.Result.Err = fmt.Sprintf("poor audio: MOS %.2f is below %.2f", cr.MOS, opt.MinMOS)
			}
		}
		if !cr.OK {
			cr.Trouble = trouble(cr, checks)
			if cr.Result.State != call.StateConnected {
				cr.Trouble += l.platformHint()
			}
		}
		redirectTrouble(&cr)
		res = append(res, cr)
	}
	return res
}

// redirectTrouble fails a call one of whose TURN servers redirected the
// agent twice (or in a loop), or to an alternate that failed: agents lose
// that server, a fault of the relays' fleet whether or not another server
// carried the call.
func redirectTrouble(cr *CallResult) {
	var unfollowed []string
	for _, r := range cr.Redirects {
		if r.Error != "" {
			unfollowed = append(unfollowed, r.String())
		}
	}
	if len(unfollowed) == 0 {
		return
	}
	t := "a TURN server's 300 Try Alternate could not be followed, agents lose that server: " + strings.Join(unfollowed, "; ")
	if cr.OK {
		cr.Trouble = t
	} else {
		cr.Trouble += "; " + t
	}
	cr.OK = false
}

// trouble says in plain words what agents experience and why, short enough
// for a summary line: the failing ICE server checks grouped by what
// happened, else the call's own reason.
func trouble(cr CallResult, checks []ServerCheck) string {
	r := cr.Result
	var head string
	switch {
	case r.State != call.StateConnected:
		head = "no audio: the call never connects (agents hang on \"Connecting\", ice:connection-state failed)"
	case r.Audio != call.AudioBoth:
		head = fmt.Sprintf("%s (agent -> far end %d/%d packets, far end -> agent %d/%d)", r.Audio,
			r.AgentToFar.Received, r.AgentToFar.Sent, r.FarToAgent.Received, r.FarToAgent.Sent)
		if r.Local != nil && r.Remote != nil {
			head += fmt.Sprintf(" on %s <-> %s", r.Local, r.Remote)
		}
		return head
	default:
		return r.Err // poor audio
	}
	type cause struct {
		reason string
		n      int
		rules  []string
	}
	var causes []*cause
	byReason := map[string]*cause{}
	for _, c := range checks {
		if c.Got == "pass" || c.Server.Kind == "stun" {
			continue
		}
		k := byReason[c.Reason]
		if k == nil {
			k = &cause{reason: c.Reason}
			byReason[c.Reason] = k
			causes = append(causes, k)
		}
		k.n++
		if rl := fmt.Sprintf("%s %s", c.Rule, c.Line); c.Rule != "" && !slices.Contains(k.rules, rl) {
			k.rules = append(k.rules, rl)
		}
	}
	if len(causes) == 0 {
		if r.Err != "" {
			return head + ": " + r.Err
		}
		return head
	}
	var parts []string
	for _, k := range causes {
		what := "1 TURN server"
		if k.n > 1 {
			what = fmt.Sprintf("%d TURN servers", k.n)
		}
		p := fmt.Sprintf("%s: %s", what, k.reason)
		if len(k.rules) > 0 {
			sort.Strings(k.rules)
			p += " [" + strings.Join(k.rules, ", ") + "]"
		}
		parts = append(parts, p)
	}
	return head + "; " + strings.Join(parts, "; ")
}

// mediaAddrs are the addresses a provider host's media server uses.
func (h *Host) mediaAddrs() []netip.Addr {
	var out []netip.Addr
	for _, pair := range [][2]netip.Addr{{h.Media4, h.V4}, {h.Media6, h.V6}} {
		if pair[0].IsValid() {
			out = append(out, pair[0])
		} else if pair[1].IsValid() {
			out = append(out, pair[1])
		}
	}
	return out
}

// mos scores the worse direction of a call with the simplified E-model the
// probe uses.
func mos(r call.Result) float64 {
	worst := 5.0
	for _, d := range []call.Direction{r.AgentToFar, r.FarToAgent} {
		_, m := probe.EModel(probe.MouthToEar(r.RTTMs, d.JitterMs), d.LossPct)
		worst = min(worst, m)
	}
	return math.Round(worst*100) / 100
}

// notPeer explains a relay serving group that may not relay to the far end:
// the policy does not list it among the relay's peers, so the relay refuses
// the permission (403) and relayed candidates can never pair with it.
func (l *Lab) notPeer(group string, far *Host) string {
	var out []string
	for i := range l.Prog.Relays {
		r := &l.Prog.Relays[i]
		if !serves(r, group) {
			continue
		}
		peers := l.Prog.AddressSet(r.Peers)
		for _, a := range far.mediaAddrs() {
			if peers == nil || !peers.IPSet().Contains(a) {
				out = append(out, fmt.Sprintf("relay %q does not list %s (%s) among its peers: it refuses to relay to it (403)", r.Name, far.Name(), a))
				break
			}
		}
	}
	return strings.Join(out, "; ")
}

// platformHint names the platform settings that keep TURN servers from the
// agents, for a call that never connected.
func (l *Lab) platformHint() string {
	if len(l.Prog.Platforms) == 0 {
		return ""
	}
	pl := l.Prog.Platforms[0]
	switch {
	case !pl.UseTURN:
		return fmt.Sprintf("; platform %q sets use_turn = false: agents get no TURN server (%s)", pl.Name, pl.Origin.At("use_turn"))
	case !pl.TCPFallback:
		return fmt.Sprintf("; platform %q sets tcp_fallback = false: agents get no TURN over TCP or TLS (%s)", pl.Name, pl.Origin.At("tcp_fallback"))
	}
	return ""
}

func only6(as []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.Is6() && !a.Is4In6() {
			out = append(out, a)
		}
	}
	return out
}
