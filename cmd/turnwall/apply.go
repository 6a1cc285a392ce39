package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/backends/nftables/apply"
	"github.com/turnwall/turnwall/compiler/ir"
)

// targetFlags name the owned table and where the kernel work happens.
type targetFlags struct {
	table    string
	netns    string
	stateDir string
	lockWait time.Duration
}

func (f *targetFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.table, "table", "turnwall", "the inet table turnwall owns (no other table is touched)")
	cmd.Flags().StringVar(&f.netns, "netns", "", "work inside this network namespace: a name under /var/run/netns, or a path")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", apply.DefaultStateDir(), "directory of the apply lock and of the rulesets saved for confirm windows ($TURNWALL_STATE_DIR)")
	cmd.Flags().DurationVar(&f.lockWait, "lock-timeout", 10*time.Second, "how long to wait for another turnwall process that is changing the ruleset")
}

func (f *targetFlags) target() apply.Target {
	return apply.Target{Table: f.table, NetNS: f.netns}
}

func (f *targetFlags) state() apply.State { return apply.State{Dir: f.stateDir} }

// check validates the flags before anything touches the kernel.
func (f *targetFlags) check() error {
	// Build checks the table name as the text backend does.
	if _, err := nftables.Build(&ir.Program{}, f.table); err != nil {
		return fmt.Errorf("--table: %v", err)
	}
	if f.netns != "" && (strings.ContainsAny(f.netns, "\x00\n") || (strings.Contains(f.netns, "/") && !strings.HasPrefix(f.netns, "/")) || f.netns == "." || f.netns == "..") {
		return fmt.Errorf("--netns %q: give a namespace name (as `ip netns` lists) or an absolute path", f.netns)
	}
	return nil
}

// planUsage reports a usage error of a command whose exit status 2 means
// "changes" (plan, apply --dry-run): it exits 1, like turnwall diff.
func (a *app) planUsage(cmd *cobra.Command, err error) error {
	fmt.Fprintf(a.stderr, "turnwall: %v\nRun 'turnwall %s --help' for usage.\n", err, cmd.Name())
	return exitError{exitPolicy}
}

// ruleset compiles a policy into the nftables model; diagnostics go to
// stderr as text.
func (a *app) ruleset(args []string, f *policyFlags, table string) (*nftables.Ruleset, string, error) {
	path := policyArg(args)
	diagFlags := *f
	diagFlags.format = "text"
	res, err := a.compilePolicy(path, &diagFlags)
	if err != nil {
		return nil, path, err
	}
	if res.HasErrors() {
		fmt.Fprintf(a.stderr, "nothing applied: %s\n", summary(res))
		return nil, path, exitError{exitPolicy}
	}
	rs, err := nftables.Build(res.Program, table)
	return rs, path, err
}

func (a *app) applyCmd() *cobra.Command {
	var f policyFlags
	var t targetFlags
	var dryRun bool
	var confirm time.Duration
	cmd := &cobra.Command{
		Use:   "apply [POLICY]",
		Short: "Apply a policy to this Linux gateway's nftables through netlink",
		Long: `Apply compiles POLICY into the same ruleset as --target nftables and loads it
into the kernel through netlink, without the nft command. Only the owned table
(inet --table) is touched, in ONE transaction that the kernel applies whole or
not at all:

  - nothing is sent when the kernel already holds the ruleset;
  - when only set elements differ, they are added and deleted, and every
    rule keeps its handle and counters;
  - otherwise the table is replaced, as nft -f of the compiled text would.

Afterwards the table is read back and compared with what was meant, every set
element included; any difference restores the previous table and fails.

--confirm DURATION saves the previous table and starts a detached watcher: unless
'turnwall confirm' runs within DURATION, the previous table is restored (a
remote operator who cut their own access gets it back). --dry-run is
'turnwall plan'. A lock in --state-dir keeps two applies apart. Needs root or
CAP_NET_ADMIN.

Exit status: 0 applied (or nothing to do), 1 errors, 2 usage errors; with
--dry-run as turnwall plan: 0 no change, 2 changes, 1 errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				err := fmt.Errorf("accepts at most one POLICY, got %d arguments", len(args))
				if dryRun {
					return a.planUsage(cmd, err)
				}
				return usageError{err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := func(err error) error {
				if dryRun {
					return a.planUsage(cmd, err)
				}
				return usageError{err}
			}
			if f.format != "text" && f.format != "json" {
				return usage(fmt.Errorf("--format %q: use text or json", f.format))
			}
			if err := t.check(); err != nil {
				return usage(err)
			}
			if _, err := f.options(); err != nil {
				return usage(err)
			}
			if dryRun {
				if cmd.Flags().Changed("confirm") {
					return usage(errors.New("--dry-run and --confirm do not go together"))
				}
				return a.runPlan(args, &f, &t)
			}
			if cmd.Flags().Changed("confirm") && confirm < time.Second {
				return usage(fmt.Errorf("--confirm %v: give a window of at least 1s", confirm))
			}
			if err := apply.CheckPrivileges(); err != nil {
				return err
			}
			rs, path, err := a.ruleset(args, &f, t.table)
			if err != nil {
				return err
			}
			st := t.state()
			unlock, err := st.Lock(t.lockWait)
			if err != nil {
				return err
			}
			defer unlock()
			target := t.target()
			var res *apply.Result
			var pending *apply.Pending
			if confirm > 0 {
				res, pending, err = st.ApplyConfirmed(target, rs, apply.ConfirmOptions{Window: confirm, Policy: path, Watcher: func(id string) *exec.Cmd {
					return watcherCmd(&t, id)
				}})
			} else {
				if p, perr := st.ReadPending(target); perr != nil {
					return perr
				} else if p != nil {
					return fmt.Errorf("an apply of %s is waiting for `turnwall confirm` until %s; confirm it or let it roll back first", target, p.Deadline.Format(time.RFC3339))
				}
				res, err = apply.Apply(target, rs)
			}
			if err != nil {
				return err
			}
			return a.reportApply(f.format, path, target, res, pending)
		},
	}
	f.add(cmd, "output format: text or json (diagnostics are text on stderr)")
	t.add(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change and apply nothing (turnwall plan)")
	cmd.Flags().DurationVar(&confirm, "confirm", 0, "restore the previous ruleset unless 'turnwall confirm' runs within this window (e.g. 60s)")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if d, _ := c.Flags().GetBool("dry-run"); d {
			return a.planUsage(c, err)
		}
		return usageError{err}
	})
	return cmd
}

// watcherCmd re-executes this binary as the hidden confirm-watch command.
func watcherCmd(t *targetFlags, id string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", "confirm-watch", "--state-dir", t.stateDir, "--table", t.table, "--netns", t.netns, "--id", id)
	cmd.Args[0] = "turnwall"
	return cmd
}

type applyReport struct {
	Action     string     `json:"action"`
	Table      string     `json:"table"`
	NetNS      string     `json:"netns,omitempty"`
	Policy     string     `json:"policy"`
	Summary    string     `json:"summary"`
	Messages   int        `json:"messages"`
	Bytes      int        `json:"bytes"`
	Intervals  int        `json:"verified_intervals"`
	Deltas     []setDelta `json:"deltas,omitempty"`
	ConfirmBy  *time.Time `json:"confirm_by,omitempty"`
	Uncertain  bool       `json:"answer_lost,omitempty"`
	ElapsedSec float64    `json:"elapsed_seconds"`
}

type setDelta struct {
	Set     string `json:"set"`
	Added   int    `json:"added"`
	Deleted int    `json:"deleted"`
}

func (a *app) reportApply(format, path string, t apply.Target, res *apply.Result, pending *apply.Pending) error {
	r := applyReport{Action: string(res.Plan.Action), Table: t.Table, NetNS: t.NetNS, Policy: path, Summary: res.Plan.Summary(),
		Messages: res.Messages, Bytes: res.Bytes, Intervals: res.Intervals, Uncertain: res.Uncertain,
		ElapsedSec: (res.Read + res.Send + res.Verify).Seconds()}
	for _, d := range res.Plan.Deltas {
		r.Deltas = append(r.Deltas, setDelta{d.Set, len(d.Add), len(d.Delete)})
	}
	if pending != nil {
		r.ConfirmBy = &pending.Deadline
	}
	if format == "json" {
		return writeJSON(a, r)
	}
	where := t.String()
	if res.Plan.Action == apply.NoChange {
		fmt.Fprintf(a.stdout, "no change: %s already holds %s; nothing was sent to the kernel\n", where, path)
		return nil
	}
	fmt.Fprintf(a.stdout, "applied %s to %s: %s\n", path, where, res.Plan.Summary())
	fmt.Fprintf(a.stdout, "one transaction of %s (%d bytes); read back and verified\n", count(res.Messages, "message"), res.Bytes)
	if res.Uncertain {
		fmt.Fprintln(a.stdout, "note: the kernel's answer was lost; the read-back shows the ruleset was applied")
	}
	if pending != nil {
		fmt.Fprintf(a.stdout, "confirm with 'turnwall confirm%s' by %s, or the previous ruleset is restored\n", targetArgs(t), pending.Deadline.Format("15:04:05"))
	}
	return nil
}

// targetArgs repeats non-default target flags for a suggested command.
func targetArgs(t apply.Target) string {
	s := ""
	if t.Table != "turnwall" {
		s += " --table " + t.Table
	}
	if t.NetNS != "" {
		s += " --netns " + t.NetNS
	}
	return s
}

func (a *app) planCmd() *cobra.Command {
	var f policyFlags
	var t targetFlags
	cmd := &cobra.Command{
		Use:   "plan [POLICY]",
		Short: "Show what 'turnwall apply' would change in the live nftables table",
		Long: `Plan compiles POLICY, reads the owned table back from the kernel through
netlink, renders both canonically (as --target nftables writes them, without the
header) and prints a unified diff, then one line saying what apply would do: no
change, a delta of set elements (rules and counters kept), or a replacement of
the table. Nothing is changed. Needs root or CAP_NET_ADMIN.

Exit status (as turnwall diff): 0 no change, 2 changes, 1 errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return a.planUsage(cmd, fmt.Errorf("accepts at most one POLICY, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "text" && f.format != "json" {
				return a.planUsage(cmd, fmt.Errorf("--format %q: use text or json", f.format))
			}
			if err := t.check(); err != nil {
				return a.planUsage(cmd, err)
			}
			if _, err := f.options(); err != nil {
				return a.planUsage(cmd, err)
			}
			return a.runPlan(args, &f, &t)
		},
	}
	f.add(cmd, "output format: text or json (diagnostics are text on stderr)")
	t.add(cmd)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return a.planUsage(c, err) })
	return cmd
}

func (a *app) runPlan(args []string, f *policyFlags, t *targetFlags) error {
	if err := apply.CheckPrivileges(); err != nil {
		return err
	}
	rs, path, err := a.ruleset(args, f, t.table)
	if err != nil {
		return err
	}
	target := t.target()
	p, err := apply.PlanFor(target, rs)
	if err != nil {
		return err
	}
	diffText := p.Diff("live "+target.String(), path)
	if f.format == "json" {
		out := struct {
			Action  string     `json:"action"`
			Changed bool       `json:"changed"`
			Summary string     `json:"summary"`
			Reason  string     `json:"reason,omitempty"`
			Deltas  []setDelta `json:"deltas,omitempty"`
			Diff    string     `json:"diff"`
		}{Action: string(p.Action), Changed: p.Changed(), Summary: p.Summary(), Reason: p.Reason, Diff: diffText}
		for _, d := range p.Deltas {
			out.Deltas = append(out.Deltas, setDelta{d.Set, len(d.Add), len(d.Delete)})
		}
		if err := writeJSON(a, out); err != nil {
			return err
		}
	} else {
		fmt.Fprint(a.stdout, diffText)
		fmt.Fprintf(a.stdout, "plan: %s\n", p.Summary())
	}
	if p.Changed() {
		return exitError{exitChanges}
	}
	return nil
}

func (a *app) confirmCmd() *cobra.Command {
	var t targetFlags
	cmd := &cobra.Command{
		Use:   "confirm",
		Short: "Keep the ruleset of an 'apply --confirm' before its window ends",
		Long: `Confirm keeps the ruleset that 'turnwall apply --confirm' loaded: the watcher
that would restore the previous ruleset when the window ends stops.

Exit status: 0 confirmed, 1 nothing to confirm (never applied with --confirm,
already confirmed, or already rolled back: the message says which), 2 usage
errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := t.check(); err != nil {
				return usageError{err}
			}
			st := t.state()
			unlock, err := st.Lock(t.lockWait)
			if err != nil {
				return err
			}
			defer unlock()
			target := t.target()
			p, err := st.Confirm(target)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "confirmed: %s keeps the ruleset applied at %s (the rollback was due at %s)\n", target, p.Applied.Format("15:04:05"), p.Deadline.Format("15:04:05"))
			return nil
		},
	}
	t.add(cmd)
	return cmd
}

// confirmWatchCmd is the detached watcher of a confirm window (hidden).
func (a *app) confirmWatchCmd() *cobra.Command {
	var t targetFlags
	var id string
	cmd := &cobra.Command{
		Use:    "confirm-watch",
		Short:  "Restore the previous ruleset when a confirm window ends (started by apply --confirm)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usageError{errors.New("--id is required")}
			}
			err := t.state().Watch(t.target(), id, 5*time.Minute)
			if err == nil {
				fmt.Fprintf(a.stdout, "%s watcher %s: done (%s)\n", time.Now().Format(time.RFC3339), id, t.state().Outcome(t.target()))
			}
			return err
		},
	}
	t.add(cmd)
	cmd.Flags().StringVar(&id, "id", "", "the pending apply to watch")
	return cmd
}

func (a *app) statusCmd() *cobra.Command {
	var t targetFlags
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the live owned table with per-rule counters mapped to policy rules",
		Long: `Status reads the owned table back through netlink and shows, for each policy
rule, the kernel rules that implement it (one per address family and protocol),
their summed packet and byte counters and where the rule is in the policy, so
you can see which rules carry traffic and which never match; then turnwall's
own rules (state tracking, the default action), the sets, and a pending confirm
window. Needs root or CAP_NET_ADMIN.

Exit status: 0, 1 errors, 2 usage errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format %q: use text or json", format)}
			}
			if err := t.check(); err != nil {
				return usageError{err}
			}
			if err := apply.CheckPrivileges(); err != nil {
				return err
			}
			target := t.target()
			s, err := apply.StatusOf(target)
			if err != nil {
				return err
			}
			pending, _ := t.state().ReadPending(target)
			last := t.state().Outcome(target)
			if format == "json" {
				out := struct {
					*apply.Status
					PolicyRules []apply.PolicyRuleStatus `json:"policy_rules"`
					ConfirmBy   *time.Time               `json:"confirm_by,omitempty"`
					Last        string                   `json:"last_confirm_outcome,omitempty"`
				}{Status: s, PolicyRules: s.PolicyRules(), Last: last}
				if pending != nil {
					out.ConfirmBy = &pending.Deadline
				}
				return writeJSON(a, out)
			}
			return a.writeStatus(target, s, pending, last)
		},
	}
	t.add(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

func (a *app) writeStatus(t apply.Target, s *apply.Status, pending *apply.Pending, last string) error {
	if !s.Exists {
		fmt.Fprintf(a.stdout, "%s does not exist: nothing applied here\n", t)
		return nil
	}
	intervals := 0
	for _, set := range s.Sets {
		intervals += set.Intervals
	}
	fmt.Fprintf(a.stdout, "%s: %s (%s), %s\n", t, count(len(s.Sets), "set"), count(intervals, "interval"), count(len(s.Rules), "rule"))
	if pending != nil {
		fmt.Fprintf(a.stdout, "confirm pending: the previous ruleset is restored at %s unless 'turnwall confirm%s' runs (applied %s from %s)\n",
			pending.Deadline.Format("15:04:05"), targetArgs(t), pending.Applied.Format("15:04:05"), pending.Policy)
	} else if last != "" {
		fmt.Fprintf(a.stdout, "last confirm window: %s\n", last)
	}
	rules := s.PolicyRules()
	fmt.Fprintln(a.stdout)
	var table bytes.Buffer
	defer func() { writeTrimmed(a.stdout, table.Bytes()) }()
	w := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tSOURCE\tVERDICT\tNFT RULES\tPACKETS\tBYTES\t")
	matched := 0
	for _, r := range rules {
		note := ""
		if r.Packets == 0 {
			note = "never matched"
		} else {
			matched++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Rule, r.Source, r.Verdict, r.NftRules, r.Packets, bytesText(r.Bytes), note)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&table, "%d of %s carried traffic, %d never matched\n", matched, count(len(rules), "policy rule"), len(rules)-matched)
	fmt.Fprintln(&table)
	fmt.Fprintln(&table, "turnwall's own rules:")
	w = tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	for _, r := range s.Rules {
		if r.Rule != "" {
			continue
		}
		counter := "-"
		if r.Counter {
			counter = fmt.Sprintf("%d packets, %s bytes", r.Packets, bytesText(r.Bytes))
		}
		what := r.Comment
		if what == "" {
			what = r.Text
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", r.Chain, what, counter)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(&table)
	fmt.Fprintln(&table, "sets:")
	sets := append([]apply.SetStatus(nil), s.Sets...)
	sort.SliceStable(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	w = tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	for _, set := range sets {
		fmt.Fprintf(w, "  %s\tIPv%d\t%s\t%s\n", set.Name, set.Family, count(set.Intervals, "interval"), set.Comment)
	}
	return w.Flush()
}

// writeTrimmed writes text without the spaces tabwriter leaves at line ends.
func writeTrimmed(w io.Writer, text []byte) {
	for _, line := range strings.SplitAfter(string(text), "\n") {
		if line == "" {
			continue
		}
		end := ""
		if strings.HasSuffix(line, "\n") {
			end = "\n"
		}
		fmt.Fprint(w, strings.TrimRight(line, " \n")+end)
	}
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprint(n)
}
