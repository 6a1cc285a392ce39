package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/relay/verify"
)

type verifyFlags struct {
	policyFlags
	timeout time.Duration
	snat    bool
	media   time.Duration
	noCalls bool
	quiet   bool
	minMOS  float64
	server  string
	pool    int
	cleanup bool
	agent   string
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

A verify killed outright (SIGKILL) cannot clean up: the next verify removes
what it left (namespaces, the lab's coturn directories) before it starts,
and --cleanup does only that and lists what it removed. Only state of
verifies that no longer run is touched.

Exit status: 0 every expectation holds, 1 some do not (or errors), 2 usage errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("accepts at most one POLICY, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.cleanup {
				if len(args) > 0 {
					return usageError{fmt.Errorf("--cleanup takes no POLICY")}
				}
				return a.verifyCleanup()
			}
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
			if f.pool < 1 || f.pool > 2 || f.pool == 2 && (f.server != "bundled" || f.noCalls) {
				return usageError{fmt.Errorf("--relay-pool %d: give 1, or 2 with the bundled relay and calls", f.pool)}
			}
			if f.minMOS < 1 || f.minMOS > 4.5 {
				return usageError{fmt.Errorf("--min-mos %v: give a MOS between 1 and 4.5", f.minMOS)}
			}
			if f.agent != "" && f.agent != "pion" && f.agent != "chromium" {
				return usageError{fmt.Errorf("--agent %q: use pion or chromium", f.agent)}
			}
			if f.agent == "chromium" && f.noCalls {
				return usageError{fmt.Errorf("--agent chromium places calls: it cannot go with --no-calls")}
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
	cmd.Flags().IntVar(&f.pool, "relay-pool", 1, "2 runs each relay that lists a second address of a family as two bundled relay nodes sharing a Redis store (redis-server), then drains the first and calls again (redirected), kills it and calls again")
	cmd.Flags().BoolVar(&f.cleanup, "cleanup", false, "only remove the lab state (namespaces, coturn directories) of verifies that were killed, and list it")
	cmd.Flags().StringVar(&f.agent, "agent", "pion", "agents' side: pion (WebRTC peers in Go) or chromium (also headless Chromium on every agents host with the readiness page)")
	cmd.Flags().Float64Var(&f.minMOS, "min-mos", 3.6, "a connected call whose audio scores below this MOS (simplified E-model) fails")
	return cmd
}

func (a *app) runVerify(ctx context.Context, path string, f *verifyFlags) error {
	diagFlags := f.policyFlags
	diagFlags.format = "text"
	res, err := a.compilePolicy(path, &diagFlags)
	if err != nil {
		return err
	}
	if res.Lowered == nil {
		fmt.Fprintf(a.stderr, "nothing verified: %s\n", summary(res))
		return exitError{exitPolicy}
	}
	errs, _ := diag.Count(res.Diags)
	opt := verify.Options{
		Policy: path, PolicyErrors: errs, SourceNAT: f.snat, RelayServer: f.server,
		Media: f.media, NoCalls: f.noCalls, MinMOS: f.minMOS, RelayPool: f.pool,
	}
	if f.agent == "chromium" {
		opt.Agent = "chromium"
		opt.LintCodes = map[string]bool{}
		for _, d := range res.Diags {
			if c := diag.CodeOf(d); c != "" {
				opt.LintCodes[string(c)] = true
			}
		}
	}
	if !f.quiet {
		opt.Progress = func(msg string) { fmt.Fprintf(a.stderr, "verify: %s\n", msg) }
	}
	rep, err := verify.Run(ctx, res.Lowered, opt)
	if err != nil {
		return err
	}
	if f.format == "json" {
		if err := rep.WriteJSON(a.stdout); err != nil {
			return err
		}
	} else {
		rep.WriteText(a.stdout)
	}
	if !rep.OK {
		return exitError{exitPolicy}
	}
	return nil
}

func (a *app) verifyCleanup() error {
	removed, err := verify.Cleanup()
	for _, r := range removed {
		fmt.Fprintf(a.stdout, "removed %s\n", r)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "verify --cleanup: removed %s of killed verifies\n", count(len(removed), "piece")+" of lab state")
	return nil
}
