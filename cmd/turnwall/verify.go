package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/lab"
	"github.com/turnwall/turnwall/relay/netns"
)

type verifyGroup struct {
	Agents string     `json:"agents"` // "" for flows without agents
	Cells  []lab.Cell `json:"cells"`
}

type verifyReport struct {
	Policy string        `json:"policy"`
	OK     bool          `json:"ok"`
	Flows  int           `json:"flows"`
	Failed int           `json:"failed"`
	Groups []verifyGroup `json:"groups"`
}

func (a *app) verifyCmd() *cobra.Command {
	var f policyFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "verify [POLICY]",
		Short: "Build the policy's network in namespaces and check every flow through the kernel",
		Long: `Verify builds POLICY's network in throwaway network namespaces (a gateway
with the policy's interfaces, one host per agents group, provider and relay),
applies the compiled nftables ruleset in the gateway as 'turnwall apply' does,
and sends one real flow per service entry of every allow rule, plus flows that
must be dropped. Each cell names the IR rule that decides it and its policy
line. The namespaces are removed afterwards, also on failure and Ctrl-C.
Needs root, iproute2 and nftables support in the kernel.

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
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %v: give a positive duration", timeout)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return a.runVerify(ctx, policyArg(args), &f)
		},
	}
	f.add(cmd, "output format: text or json (diagnostics are text on stderr)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up (and clean up) after this long")
	return cmd
}

func (a *app) runVerify(ctx context.Context, path string, f *policyFlags) error {
	diagFlags := *f
	diagFlags.format = "text"
	diagFlags.errorsOnly = true
	res, err := a.compilePolicy(path, &diagFlags)
	if err != nil {
		return err
	}
	if res.HasErrors() {
		fmt.Fprintf(a.stderr, "nothing verified: %s\n", summary(res))
		return exitError{exitPolicy}
	}
	prog := res.Program
	rs, err := nftables.Build(prog, "turnwall")
	if err != nil {
		return err
	}
	if err := netns.Available(); err != nil {
		return fmt.Errorf("verify needs network namespaces: %v", err)
	}
	l, err := lab.New(prog)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Apply(rs); err != nil {
		return err
	}
	flows := l.Matrix()
	cells := l.Run(ctx, flows, nil)
	if cerr := l.Close(); cerr != nil {
		return cerr
	}
	rep := verifyReport{Policy: path, Flows: len(flows)}
	idx := map[string]int{}
	for _, c := range cells {
		i, ok := idx[c.Group]
		if !ok {
			i = len(rep.Groups)
			idx[c.Group] = i
			rep.Groups = append(rep.Groups, verifyGroup{Agents: c.Group})
		}
		rep.Groups[i].Cells = append(rep.Groups[i].Cells, c)
		if !c.OK {
			rep.Failed++
		}
	}
	incomplete := len(cells) < len(flows)
	rep.OK = rep.Failed == 0 && !incomplete
	if f.format == "json" {
		if err := writeJSON(a, rep); err != nil {
			return err
		}
	} else {
		for _, g := range rep.Groups {
			title := fmt.Sprintf("agents %q", g.Agents)
			if g.Agents == "" {
				title = "flows without agents"
			}
			fmt.Fprintf(a.stdout, "%s\n", title)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  \tFLOW\tEXPECTED\tGOT\tRULE\tPOLICY LINE")
			for _, c := range g.Cells {
				mark := "ok"
				if !c.OK {
					mark = "FAIL"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", mark, c.Name, c.Expected, c.Got, c.Rule, c.Line)
			}
			tw.Flush()
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stdout, "%d of %d flows as expected", len(cells)-rep.Failed, len(flows))
		if incomplete {
			fmt.Fprintf(a.stdout, "; %d not run (%v)", len(flows)-len(cells), ctx.Err())
		}
		fmt.Fprintln(a.stdout)
	}
	if !rep.OK {
		return exitError{exitPolicy}
	}
	return nil
}
