package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// Options tune Run.
type Options struct {
	// Policy names the policy in the report (its path).
	Policy string
	// PolicyErrors is how many errors the compiler reported: the lab is
	// built anyway to show what they do, and the report fails.
	PolicyErrors int
	// SourceNAT masquerades agents' traffic towards provider zones.
	SourceNAT bool
	// RelayServer is what runs on relay hosts: "bundled" (the default) or
	// "coturn".
	RelayServer string
	// Media is how long each call sends media both ways (default 1 s).
	Media time.Duration
	// NoCalls runs the flow matrix only.
	NoCalls bool
	// MinMOS fails a connected call whose audio scores lower (default 3.6).
	MinMOS float64
	// RelayPool, when 2, runs each bundled relay whose block lists a
	// second address of a family as two nodes sharing a store (see
	// ServiceOptions.RelayPool); after the calls, the first node of each
	// pool drains and the calls run again (redirected to the second node
	// by 300 Try Alternate), then it is killed and the calls run once
	// more, through the second.
	RelayPool int
	// Agent, when "chromium", also runs headless Chromium on every agents
	// host with the readiness page (see Lab.Browsers).
	Agent string
	// LintCodes are the codes validate reported for the policy; the
	// browser's explanations say which lint predicted a failure.
	LintCodes map[string]bool
	// Progress, when set, is told what verify is doing; it may be called
	// from several goroutines, one at a time.
	Progress func(msg string)
}

// Run builds prog's network in namespaces, applies its nftables ruleset to
// the gateway, runs the flow matrix, then (unless opt.NoCalls) the relays,
// the providers' services, the ICE server checks and the calls, and
// removes everything again, also when ctx ends. Lab state that killed
// verifies left behind is removed first (see Cleanup).
//
// The error is for a lab that could not be built or torn down; what the
// policy does wrong is in the report (Report.OK false).
func Run(ctx context.Context, prog *ir.Program, opt Options) (*Report, error) {
	start := time.Now()
	if opt.RelayServer == "" {
		opt.RelayServer = "bundled"
	}
	if opt.Media <= 0 {
		opt.Media = time.Second
	}
	if opt.MinMOS == 0 {
		opt.MinMOS = 3.6
	}
	var progressMu sync.Mutex // calls of several agents groups report at once
	progress := func(msg string) {
		if opt.Progress != nil {
			progressMu.Lock()
			defer progressMu.Unlock()
			opt.Progress(msg)
		}
	}
	if opt.PolicyErrors > 0 {
		progress(fmt.Sprintf("the policy has %s; building the lab anyway to show what they do", count(opt.PolicyErrors, "error")))
	}
	rs, err := nftables.Build(prog, "turnwall")
	if err != nil {
		return nil, err
	}
	if err := netns.Available(); err != nil {
		return nil, fmt.Errorf("verify needs network namespaces: %v", err)
	}
	if removed, err := Cleanup(); err != nil {
		return nil, fmt.Errorf("removing lab state of killed verifies: %w", err)
	} else if len(removed) > 0 {
		progress(fmt.Sprintf("removed lab state that killed verifies left behind: %s", strings.Join(removed, ", ")))
	}
	if err := claim(); err != nil {
		return nil, err
	}
	defer release()
	progress("building the network in namespaces")
	l, err := New(prog)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if opt.SourceNAT {
		if err := l.SourceNAT(); err != nil {
			return nil, err
		}
	}
	progress(fmt.Sprintf("applying the ruleset to the gateway (%d hosts)", len(l.Hosts)))
	if err := l.Apply(rs); err != nil {
		return nil, err
	}
	flows := l.Matrix()
	progress(fmt.Sprintf("flow matrix: %s", count(len(flows), "flow")))
	cells := l.Run(ctx, flows, nil)
	rep := &Report{Policy: opt.Policy, Flows: len(flows), Ran: len(cells), PolicyErrors: opt.PolicyErrors, SourceNAT: opt.SourceNAT, RelayServer: opt.RelayServer}
	if len(cells) < len(flows) {
		rep.Incomplete = fmt.Sprintf("%d of %d flows not run (%v)", len(flows)-len(cells), len(flows), ctx.Err())
	}
	if mf := l.MarkFlows(flows); len(mf) > 0 && rep.Incomplete == "" {
		progress(fmt.Sprintf("QoS: reading the DSCP of %s on the wire, both directions", count(len(mf), "flow")))
		rep.Marks = l.RunMarks(ctx, mf)
	}
	checks := map[string][]ServerCheck{}
	var calls []CallResult
	var browsers map[string]*BrowserResult
	if !opt.NoCalls && rep.Incomplete == "" && ctx.Err() != nil {
		// Cut short right after the flow matrix: say what was not run.
		rep.Incomplete = fmt.Sprintf("relays, ICE server checks and calls not run (%v)", ctx.Err())
	}
	if !opt.NoCalls && rep.Incomplete == "" && ctx.Err() == nil {
		progress(fmt.Sprintf("starting relays (%s) and provider STUN/TURN services", opt.RelayServer))
		svc, err := l.StartServices(ctx, ServiceOptions{Coturn: opt.RelayServer == "coturn", RelayPool: opt.RelayPool})
		if err != nil {
			return nil, err
		}
		defer svc.Close()
		for _, h := range l.AgentHosts() {
			progress(fmt.Sprintf("ICE servers from agents %q", h.Block))
			checks[h.Block] = svc.Check(ctx, h.Block)
		}
		rep.Notes = append(rep.Notes, svc.Notes...)
		calls = l.Calls(ctx, svc, checks, CallOptions{Call: call.Options{Media: opt.Media}, MinMOS: opt.MinMOS, Progress: progress})
		if nodes := svc.PoolNodes(); len(nodes) > 0 && ctx.Err() == nil {
			calls = append(calls, l.poolFailover(ctx, svc, nodes, opt, progress)...)
		}
		if opt.Agent == "chromium" && ctx.Err() == nil {
			if browsers, err = l.Browsers(ctx, svc, calls, opt.LintCodes, progress); err != nil {
				return nil, err
			}
		}
		if err := svc.Close(); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			rep.Incomplete = fmt.Sprintf("calls interrupted (%v)", ctx.Err())
		}
	}
	if cerr := l.Close(); cerr != nil {
		return nil, cerr
	}
	rep.Seconds = time.Since(start).Round(10 * time.Millisecond).Seconds()
	rep.collect(l.AgentHosts(), cells, checks, calls, browsers)
	return rep, nil
}

// poolFailover drains the first node of every relay pool and runs the
// calls of the groups those relays serve again: the node answers their
// Allocates with 300 Try Alternate, which the calls follow to the second
// node (redirect.go). Then it kills those nodes and runs the calls once
// more: new allocations go to the second node.
func (l *Lab) poolFailover(ctx context.Context, svc *Services, nodes []*PoolNode, opt Options, progress func(string)) []CallResult {
	var first []*PoolNode
	pools := map[string]bool{}
	for _, n := range nodes {
		if !pools[n.Relay] {
			pools[n.Relay] = true
			first = append(first, n)
		}
	}
	var groups []string
	for _, h := range l.AgentHosts() {
		if l.servedByPool(h.Block, pools) {
			groups = append(groups, h.Block)
		}
	}
	again := func(after string) []CallResult {
		checks := map[string][]ServerCheck{}
		for _, g := range groups {
			checks[g] = svc.Check(ctx, g)
		}
		out := l.callsOf(ctx, svc, groups, checks, CallOptions{Call: call.Options{Media: opt.Media}, MinMOS: opt.MinMOS, Progress: progress})
		for i := range out {
			out[i].After = after
		}
		return out
	}
	var drained, killed []string
	for _, n := range first {
		progress(fmt.Sprintf("relay %q: draining pool node %s", n.Relay, n.ID))
		svc.DrainPoolNode(n)
		drained = append(drained, fmt.Sprintf("relay %q's node %s draining", n.Relay, n.ID))
	}
	out := again(strings.Join(drained, ", "))
	if ctx.Err() != nil {
		return out
	}
	for _, n := range first {
		progress(fmt.Sprintf("relay %q: killing pool node %s", n.Relay, n.ID))
		svc.KillPoolNode(n)
		killed = append(killed, fmt.Sprintf("relay %q's node %s killed", n.Relay, n.ID))
	}
	return append(out, again(strings.Join(killed, ", "))...)
}

// servedByPool reports whether a relay in pools serves agents group.
func (l *Lab) servedByPool(group string, pools map[string]bool) bool {
	for _, r := range l.Prog.Relays {
		if !pools[r.Name] {
			continue
		}
		for _, g := range r.Clients {
			if g == group {
				return true
			}
		}
	}
	return false
}

// collect groups cells, checks and calls by agents group (agents hosts'
// order first) and gathers the troubles.
func (rep *Report) collect(agents []*Host, cells []Cell, checks map[string][]ServerCheck, calls []CallResult, browsers map[string]*BrowserResult) {
	idx := map[string]int{}
	group := func(name string) *Group {
		i, ok := idx[name]
		if !ok {
			i = len(rep.Groups)
			idx[name] = i
			rep.Groups = append(rep.Groups, Group{Agents: name})
		}
		return &rep.Groups[i]
	}
	for _, h := range agents {
		group(h.Block)
	}
	seen := map[string]bool{}
	trouble := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			rep.Troubles = append(rep.Troubles, t)
		}
	}
	for _, c := range cells {
		g := group(c.Group)
		g.Cells = append(g.Cells, c)
		if !c.OK {
			rep.Failed++
			if c.Trouble != "" {
				trouble(c.Trouble)
			} else {
				trouble(fmt.Sprintf("%s: expected %s, got %s (%s, %s)", c.Name, c.Expected, c.Got, c.Rule, c.Line))
			}
		}
	}
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := group(n)
		g.Servers = checks[n]
		for _, c := range checks[n] {
			rep.Servers++
			if !c.OK {
				rep.ServersFail++
				trouble(fmt.Sprintf("agents %q: %s: expected %s, got %s: %s", n, c.Server.URL, c.Expected, c.Got, c.Reason))
			}
		}
	}
	for _, c := range calls {
		g := group(c.Group)
		g.Calls = append(g.Calls, c)
		if c.Skipped != "" {
			continue
		}
		rep.Calls++
		if !c.OK {
			rep.CallsFail++
			trouble(fmt.Sprintf("agents %q, %s: %s", c.Group, ModeLabel(c.Mode), c.Trouble))
		}
	}
	for _, h := range agents {
		b := browsers[h.Block]
		if b == nil {
			continue
		}
		group(h.Block).Browser = b
		if b.Verdict == "skipped" {
			continue
		}
		rep.Browsers++
		if !b.OK {
			rep.BrowsersFail++
			trouble(fmt.Sprintf("agents %q, Chromium: %s", h.Block, b.Trouble))
		}
	}
	for _, m := range rep.Marks {
		if !m.OK {
			rep.MarksFail++
			trouble(markTrouble(m))
		}
	}
	if rep.PolicyErrors > 0 {
		trouble(fmt.Sprintf("the policy has %s (see above)", count(rep.PolicyErrors, "error")))
	}
	if rep.Incomplete != "" {
		trouble("incomplete: " + rep.Incomplete)
	}
	rep.OK = len(rep.Troubles) == 0
	if rep.Troubles == nil {
		rep.Troubles = []string{}
	}
}

func count(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
