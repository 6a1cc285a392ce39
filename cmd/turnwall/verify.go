package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/relay/lab"
	"github.com/turnwall/turnwall/relay/lab/call"
	"github.com/turnwall/turnwall/relay/netns"
)

type verifyGroup struct {
	Agents  string            `json:"agents"` // "" for flows without agents
	Cells   []lab.Cell        `json:"cells"`
	Servers []lab.ServerCheck `json:"ice_servers,omitempty"`
	Calls   []lab.CallResult  `json:"calls,omitempty"`
}

type verifyReport struct {
	Policy       string        `json:"policy"`
	OK           bool          `json:"ok"`
	PolicyErrors int           `json:"policy_errors"`
	SourceNAT    bool          `json:"source_nat"`
	RelayServer  string        `json:"relay_server"`
	Flows        int           `json:"flows"`
	Ran          int           `json:"flows_run"`
	Failed       int           `json:"failed"`
	Servers      int           `json:"ice_servers"`
	ServersFail  int           `json:"ice_servers_failed"`
	Calls        int           `json:"calls"`
	CallsFail    int           `json:"calls_failed"`
	Troubles     []string      `json:"troubles"`
	Notes        []string      `json:"notes,omitempty"` // what the lab could not serve as the policy describes
	Incomplete   string        `json:"incomplete,omitempty"`
	Groups       []verifyGroup `json:"groups"`
	Seconds      float64       `json:"seconds"`
}

type verifyFlags struct {
	policyFlags
	timeout time.Duration
	snat    bool
	media   time.Duration
	noCalls bool
	quiet   bool
	minMOS  float64
	server  string
}

func (a *app) verifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [POLICY]",
		Short: "Build the policy's network in namespaces and prove it with real traffic and real WebRTC calls",
		Long: `Verify builds POLICY's network in throwaway network namespaces (a gateway
with the policy's interfaces, one host per agents group, provider and relay),
applies the compiled nftables ruleset in the gateway as 'turnwall apply' does,
and checks it with real traffic:

  flows       one real flow per service entry of every allow rule, plus flows
              that must be dropped (other ports, unsolicited traffic, addresses
              outside the provider ranges, relay ports outside relay_ports),
              and relayed media back to agents, which must always pass; each
              cell names the rule that decides it and its policy line
  ICE servers the bundled relay runs on every relay host with the policy's
              settings, providers' STUN/TURN services on provider hosts; each
              server the agents would be given is tried from every agents host
  calls       a WebRTC peer on each agents host calls an ICE-lite media server
              on a provider host, through the relays only (iceTransportPolicy
              relay) and then with every candidate; the winning candidate
              pair and media in both directions are reported (one-way audio
              is detected)

A policy whose only errors are lint findings (a realm mismatch, say) is still
built, so the report shows what the error does to calls; the exit status is 1
all the same. The namespaces and services are removed afterwards, also on
failure, --timeout and Ctrl-C. Needs root, iproute2 and nftables support in
the kernel. Progress goes to stderr (--quiet to silence it).

Exit status: 0 every expectation holds, 1 some do not (or errors), 2 usage errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("accepts at most one POLICY, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "text" && f.format != "json" {
				return usageError{fmt.Errorf("--format %q: use text or json", f.format)}
			}
			if _, err := f.options(); err != nil {
				return err
			}
			if f.timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %v: give a positive duration", f.timeout)}
			}
			if f.server != "bundled" && f.server != "coturn" {
				return usageError{fmt.Errorf("--relay-server %q: use bundled or coturn", f.server)}
			}
			if f.minMOS < 1 || f.minMOS > 4.5 {
				return usageError{fmt.Errorf("--min-mos %v: give a MOS between 1 and 4.5", f.minMOS)}
			}
			if f.media <= 0 || f.media > time.Minute {
				return usageError{fmt.Errorf("--media %v: give a duration between 1ms and 1m", f.media)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			return a.runVerify(ctx, policyArg(args), &f)
		},
	}
	f.add(cmd, "output format: text or json (diagnostics and progress are text on stderr)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up (and clean up) after this long")
	cmd.Flags().BoolVar(&f.snat, "snat", false, "masquerade agents' traffic towards provider zones on the gateway, as most sites do")
	cmd.Flags().DurationVar(&f.media, "media", time.Second, "how long each call sends media both ways")
	cmd.Flags().BoolVar(&f.noCalls, "no-calls", false, "run the flow matrix only (no relays, ICE servers or calls)")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	cmd.Flags().StringVar(&f.server, "relay-server", "bundled", "what runs on relay hosts: bundled (turnwall's relay) or coturn (Debian's turnserver with the coturn target's configuration)")
	cmd.Flags().Float64Var(&f.minMOS, "min-mos", 3.6, "a connected call whose audio scores below this MOS (simplified E-model) fails")
	return cmd
}

func (a *app) runVerify(ctx context.Context, path string, f *verifyFlags) error {
	start := time.Now()
	diagFlags := f.policyFlags
	diagFlags.format = "text"
	res, err := a.compilePolicy(path, &diagFlags)
	if err != nil {
		return err
	}
	prog := res.Lowered
	if prog == nil {
		fmt.Fprintf(a.stderr, "nothing verified: %s\n", summary(res))
		return exitError{exitPolicy}
	}
	errs, _ := diag.Count(res.Diags)
	var progressMu sync.Mutex // calls of several agents groups report at once
	progress := func(msg string) {
		if !f.quiet {
			progressMu.Lock()
			defer progressMu.Unlock()
			fmt.Fprintf(a.stderr, "verify: %s\n", msg)
		}
	}
	if errs > 0 {
		progress(fmt.Sprintf("the policy has %s; building the lab anyway to show what they do", count(errs, "error")))
	}
	rs, err := nftables.Build(prog, "turnwall")
	if err != nil {
		return err
	}
	if err := netns.Available(); err != nil {
		return fmt.Errorf("verify needs network namespaces: %v", err)
	}
	progress("building the network in namespaces")
	l, err := lab.New(prog)
	if err != nil {
		return err
	}
	defer l.Close()
	if f.snat {
		if err := l.SourceNAT(); err != nil {
			return err
		}
	}
	progress(fmt.Sprintf("applying the ruleset to the gateway (%d hosts)", len(l.Hosts)))
	if err := l.Apply(rs); err != nil {
		return err
	}
	flows := l.Matrix()
	progress(fmt.Sprintf("flow matrix: %s", count(len(flows), "flow")))
	cells := l.Run(ctx, flows, nil)
	rep := verifyReport{Policy: path, Flows: len(flows), Ran: len(cells), PolicyErrors: errs, SourceNAT: f.snat, RelayServer: f.server}
	if len(cells) < len(flows) {
		rep.Incomplete = fmt.Sprintf("%d of %d flows not run (%v)", len(flows)-len(cells), len(flows), ctx.Err())
	}
	checks := map[string][]lab.ServerCheck{}
	var calls []lab.CallResult
	if !f.noCalls && rep.Incomplete == "" && ctx.Err() == nil {
		progress(fmt.Sprintf("starting relays (%s) and provider STUN/TURN services", f.server))
		svc, err := l.StartServices(ctx, lab.ServiceOptions{Coturn: f.server == "coturn"})
		if err != nil {
			return err
		}
		defer svc.Close()
		for _, h := range l.AgentHosts() {
			progress(fmt.Sprintf("ICE servers from agents %q", h.Block))
			checks[h.Block] = svc.Check(ctx, h.Block)
		}
		rep.Notes = append(rep.Notes, svc.Notes...)
		calls = l.Calls(ctx, svc, checks, lab.CallOptions{Call: call.Options{Media: f.media}, MinMOS: f.minMOS, Progress: progress})
		if err := svc.Close(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			rep.Incomplete = fmt.Sprintf("calls interrupted (%v)", ctx.Err())
		}
	}
	if cerr := l.Close(); cerr != nil {
		return cerr
	}
	rep.Seconds = time.Since(start).Round(10 * time.Millisecond).Seconds()
	idx := map[string]int{}
	group := func(name string) *verifyGroup {
		i, ok := idx[name]
		if !ok {
			i = len(rep.Groups)
			idx[name] = i
			rep.Groups = append(rep.Groups, verifyGroup{Agents: name})
		}
		return &rep.Groups[i]
	}
	for _, h := range l.AgentHosts() {
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
			trouble(fmt.Sprintf("agents %q, %s: %s", c.Group, modeLabel(c.Mode), c.Trouble))
		}
	}
	if errs > 0 {
		trouble(fmt.Sprintf("the policy has %s (see above)", count(errs, "error")))
	}
	if rep.Incomplete != "" {
		trouble("incomplete: " + rep.Incomplete)
	}
	rep.OK = len(rep.Troubles) == 0
	if rep.Troubles == nil {
		rep.Troubles = []string{}
	}
	if f.format == "json" {
		if err := writeJSON(a, rep); err != nil {
			return err
		}
	} else {
		writeVerifyText(a.stdout, &rep)
	}
	if !rep.OK {
		return exitError{exitPolicy}
	}
	return nil
}

func mark(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func writeVerifyText(w io.Writer, rep *verifyReport) {
	for _, g := range rep.Groups {
		title := fmt.Sprintf("agents %q", g.Agents)
		if g.Agents == "" {
			title = "flows without agents"
		}
		fmt.Fprintf(w, "%s\n", title)
		if len(g.Cells) > 0 {
			fmt.Fprintln(w, "  flows")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "    \tFLOW\tEXPECTED\tGOT\tRULE\tPOLICY LINE")
			for _, c := range g.Cells {
				exp := c.Expected
				if c.Required {
					exp += " (required)"
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", mark(c.OK), c.Name, exp, c.Got, c.Rule, c.Line)
			}
			tw.Flush()
		}
		if len(g.Servers) > 0 {
			fmt.Fprintln(w, "  ICE servers")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "    \tSERVER\tEXPECTED\tGOT\tRULE\tPOLICY LINE\tDETAIL")
			for _, c := range g.Servers {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark(c.OK), c.Server.URL, c.Expected, c.Got, c.Rule, c.Line, c.Reason)
			}
			tw.Flush()
		}
		if len(g.Calls) > 0 {
			fmt.Fprintln(w, "  calls")
			for _, c := range g.Calls {
				mode := modeLabel(c.Mode)
				if c.Skipped != "" {
					fmt.Fprintf(w, "    --    %s: skipped: %s\n", mode, c.Skipped)
					continue
				}
				r := c.Result
				fmt.Fprintf(w, "    %-4s  %s to %s: %s", mark(c.OK), mode, c.Far, r.State)
				if r.State == "connected" {
					fmt.Fprintf(w, " in %.2f s", r.ConnectTime.Seconds())
				}
				fmt.Fprintln(w)
				if r.Local != nil && r.Remote != nil {
					fmt.Fprintf(w, "          pair   %s <-> %s\n", r.Local, r.Remote)
				}
				if r.State == "connected" {
					fmt.Fprintf(w, "          audio  %s: agent -> far end %d/%d packets (loss %.1f%%, jitter %.1f ms), far end -> agent %d/%d (loss %.1f%%, jitter %.1f ms)\n",
						r.Audio, r.AgentToFar.Received, r.AgentToFar.Sent, r.AgentToFar.LossPct, r.AgentToFar.JitterMs,
						r.FarToAgent.Received, r.FarToAgent.Sent, r.FarToAgent.LossPct, r.FarToAgent.JitterMs)
					fmt.Fprintf(w, "          quality RTT %.1f ms, MOS %.2f\n", r.RTTMs, c.MOS)
				}
				if len(r.Gathered) > 0 {
					fmt.Fprintf(w, "          agent candidates: %s\n", candidateSummary(r.Gathered))
				}
				if !c.OK && r.Err != "" {
					fmt.Fprintf(w, "          why    %s\n", r.Err)
				}
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d of %d flows, %d of %d ICE server checks, %d of %d calls as expected",
		rep.Ran-rep.Failed, rep.Flows, rep.Servers-rep.ServersFail, rep.Servers, rep.Calls-rep.CallsFail, rep.Calls)
	if rep.SourceNAT {
		fmt.Fprint(w, " (source NAT on)")
	}
	fmt.Fprintf(w, " in %.1f s\n", rep.Seconds)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if rep.OK {
		fmt.Fprintln(w, "verify: OK, agents get working audio")
		return
	}
	fmt.Fprintln(w, "verify: FAILED")
	for _, t := range rep.Troubles {
		fmt.Fprintf(w, "  - %s\n", t)
	}
}

// candidateSummary counts candidates by type, and relay candidates by how the
// TURN server was reached: "2 host, 2 srflx, 8 relay (udp 2, tcp 2, tls 4)".
func candidateSummary(cs []call.Candidate) string {
	types := map[string]int{}
	via := map[string]int{}
	for _, c := range cs {
		types[c.Type]++
		if c.Type == "relay" {
			via[c.RelayProtocol]++
		}
	}
	var parts []string
	for _, t := range []string{"host", "srflx", "prflx", "relay"} {
		if n := types[t]; n > 0 {
			p := fmt.Sprintf("%d %s", n, t)
			if t == "relay" {
				var vs []string
				for _, v := range []string{"udp", "tcp", "tls", "dtls"} {
					if via[v] > 0 {
						vs = append(vs, fmt.Sprintf("%s %d", v, via[v]))
					}
				}
				if len(vs) > 0 {
					p += " (via " + strings.Join(vs, ", ") + ")"
				}
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// modeLabel names a call's ICE transport policy.
func modeLabel(mode string) string {
	switch mode {
	case "relay":
		return "ICE relay only"
	case "ipv6":
		return "ICE all, IPv6 only"
	}
	return "ICE " + mode
}
