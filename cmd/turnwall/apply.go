package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
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
	cmd.Flags().StringVar(&f.stateDir, "state-dir", apply.DefaultStateDir(), "directory of the apply lock and of the pending confirm windows with their saved rulesets ($TURNWALL_STATE_DIR)")
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

// compiledRuleset is a policy compiled into the nftables model.
type compiledRuleset struct {
	rs    *nftables.Ruleset
	path  string // as given
	name  string // the policy block's name
	label string // `policy "NAME"` and where it came from, for messages
	zones []ir.Zone
}

// ruleset compiles a policy into the nftables model; diagnostics go to
// stderr as text.
func (a *app) ruleset(args []string, f *policyFlags, table string) (*compiledRuleset, error) {
	path := policyArg(args)
	diagFlags := *f
	diagFlags.format = "text"
	res, err := a.compilePolicy(path, &diagFlags)
	if err != nil {
		return nil, err
	}
	if res.HasErrors() {
		fmt.Fprintf(a.stderr, "nothing applied: %s\n", summary(res))
		return nil, exitError{exitPolicy}
	}
	rs, err := nftables.Build(res.Program, table)
	if err != nil {
		return nil, err
	}
	return &compiledRuleset{rs: rs, path: path, name: res.Program.Policy.Name, label: policyLabel(res.Program.Policy.Name, path), zones: res.Program.Zones}, nil
}

// policyLabel names a policy in messages: its name, and the path it was
// loaded from unless that is the current directory. Both are quoted when
// they hold anything a terminal could take for a line or an escape.
func policyLabel(name, path string) string {
	label := fmt.Sprintf("policy %q", name)
	if path == "." || path == "" {
		return label
	}
	if q := strconv.Quote(path); q != `"`+path+`"` || strings.ContainsAny(path, " ") {
		path = q
	}
	return label + " from " + path
}

// warnInterfaces tells, on stderr, about zone interfaces the gateway does
// not have: their rules would filter nothing.
func (a *app) warnInterfaces(t apply.Target, c *compiledRuleset) {
	missing, have, err := apply.MissingInterfaces(t, c.zones)
	if err != nil {
		fmt.Fprintf(a.stderr, "turnwall: warning: cannot list the network interfaces to check the zones: %v\n", err)
		return
	}
	for _, m := range missing {
		what := fmt.Sprintf("interface %q does not exist", m.Interface)
		if m.Wildcard {
			what = fmt.Sprintf("no interface matches %q", m.Interface)
		}
		fmt.Fprintf(a.stderr, "turnwall: warning: %s: zone %q: %s on this gateway%s, so the zone's rules filter nothing there (interfaces: %s)\n",
			m.Source, m.Zone, what, inNS(t), interfaceList(have))
	}
}

func inNS(t apply.Target) string {
	if t.NetNS == "" {
		return ""
	}
	return " (network namespace " + t.NetNS + ")"
}

// interfaceList shows at most 12 interface names.
func interfaceList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	quoted := make([]string, 0, len(names))
	for i, n := range names {
		if i == 12 {
			quoted = append(quoted, fmt.Sprintf("and %d more", len(names)-12))
			break
		}
		quoted = append(quoted, strconv.Quote(n))
	}
	return strings.Join(quoted, ", ")
}

// recover closes a confirm window whose deadline passed while its watcher
// was gone (or that a reboot made meaningless) and says so on stderr. The
// caller holds the lock when locked is true.
func (a *app) recover(t *targetFlags, by string, locked bool) (*apply.Recovery, error) {
	st, target := t.state(), t.target()
	var rec *apply.Recovery
	var err error
	if locked {
		rec, err = st.Recover(target, by)
	} else {
		rec, err = st.RecoverLocking(target, t.lockWait, by)
	}
	if err != nil {
		return nil, err
	}
	if rec.Closed != nil {
		fmt.Fprintf(a.stderr, "turnwall: a confirm window was closed first: %s\n", rec.Outcome)
	}
	return rec, nil
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

--confirm DURATION saves the previous table in --state-dir and starts a
detached watcher: unless 'turnwall confirm' runs within DURATION, the previous
table is restored (a remote operator who cut their own access gets it back).
If the watcher dies, a systemd timer (when systemd runs) or the next turnwall
invocation (apply, plan, status, confirm, rollback) rolls back after the
deadline and says so; 'turnwall rollback' does it at once. --dry-run is
'turnwall plan'. A lock in --state-dir keeps two applies apart. Zone interfaces
the gateway does not have are warned about. Needs root or CAP_NET_ADMIN.

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
			c, err := a.ruleset(args, &f, t.table)
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
			rec, err := a.recover(&t, "turnwall apply", true)
			if err != nil {
				return err
			}
			if p := rec.Pending; p != nil {
				return fmt.Errorf("an apply of %s is waiting for `turnwall confirm%s` until %s; confirm it, roll it back now with 'turnwall rollback%s', or let it roll back first", target, targetArgs(target), p.Deadline.Format(time.RFC3339), targetArgs(target))
			}
			a.warnInterfaces(target, c)
			var res *apply.Result
			var pending *apply.Pending
			if confirm > 0 {
				res, pending, err = st.ApplyConfirmed(target, c.rs, apply.ConfirmOptions{Window: confirm, Policy: c.label,
					Watcher: func(id string) *exec.Cmd { return watcherCmd(&t, id) },
					Timer:   apply.DefaultSystemdTimer(func(id string) []string { return timerCmd(&t, id) })})
			} else {
				res, err = st.Apply(target, c.rs)
			}
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "turnwall: warning: %s\n", w)
			}
			return a.reportApply(f.format, c, target, res, pending)
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

// timerCmd is the command a systemd timer runs when a window ends: this
// binary's rollback of that window only, with absolute paths.
func timerCmd(t *targetFlags, id string) []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	dir, err := filepath.Abs(t.stateDir)
	if err != nil {
		dir = t.stateDir
	}
	return []string{exe, "rollback", "--if-expired", "--id", id, "--state-dir", dir, "--table", t.table, "--netns", t.netns}
}

type applyReport struct {
	Action     string     `json:"action"`
	Table      string     `json:"table"`
	NetNS      string     `json:"netns,omitempty"`
	Policy     string     `json:"policy"`
	PolicyName string     `json:"policy_name"`
	Summary    string     `json:"summary"`
	Messages   int        `json:"messages"`
	Bytes      int        `json:"bytes"`
	Intervals  int        `json:"verified_intervals"`
	Deltas     []setDelta `json:"deltas,omitempty"`
	ConfirmBy  *time.Time `json:"confirm_by,omitempty"`
	Timer      string     `json:"rollback_timer,omitempty"`
	Uncertain  bool       `json:"answer_lost,omitempty"`
	ElapsedSec float64    `json:"elapsed_seconds"`
}

type setDelta struct {
	Set     string `json:"set"`
	Added   int    `json:"added"`
	Deleted int    `json:"deleted"`
}

func (a *app) reportApply(format string, c *compiledRuleset, t apply.Target, res *apply.Result, pending *apply.Pending) error {
	r := applyReport{Action: string(res.Plan.Action), Table: t.Table, NetNS: t.NetNS, Policy: c.path, PolicyName: c.name, Summary: res.Plan.Summary(),
		Messages: res.Messages, Bytes: res.Bytes, Intervals: res.Intervals, Uncertain: res.Uncertain,
		ElapsedSec: (res.Read + res.Send + res.Verify).Seconds()}
	for _, d := range res.Plan.Deltas {
		r.Deltas = append(r.Deltas, setDelta{d.Set, len(d.Add), len(d.Delete)})
	}
	if pending != nil {
		r.ConfirmBy = &pending.Deadline
		r.Timer = pending.Timer
	}
	if format == "json" {
		return writeJSON(a, r)
	}
	where := t.String()
	if res.Plan.Action == apply.NoChange {
		fmt.Fprintf(a.stdout, "no change: %s already holds %s; nothing was sent to the kernel\n", where, c.label)
		return nil
	}
	fmt.Fprintf(a.stdout, "applied %s to %s: %s\n", c.label, where, res.Plan.Summary())
	fmt.Fprintf(a.stdout, "one transaction of %s (%d bytes); read back and verified\n", count(res.Messages, "message"), res.Bytes)
	if res.Uncertain {
		fmt.Fprintln(a.stdout, "note: the kernel's answer was lost; the read-back shows the ruleset was applied")
	}
	if pending != nil {
		fmt.Fprintf(a.stdout, "confirm with 'turnwall confirm%s' by %s, or the previous ruleset is restored (by the watcher, pid %d%s, or by the next turnwall invocation after that time)\n",
			targetArgs(t), pending.Deadline.Format("15:04:05"), pending.Watcher, timerNote(pending))
	}
	return nil
}

func timerNote(p *apply.Pending) string {
	if p.Timer == "" {
		return ""
	}
	return "; by the systemd timer " + p.Timer
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
	c, err := a.ruleset(args, f, t.table)
	if err != nil {
		return err
	}
	target := t.target()
	if _, err := a.recover(t, "turnwall plan", false); err != nil {
		return err
	}
	a.warnInterfaces(target, c)
	p, err := t.state().PlanFor(target, c.rs)
	if err != nil {
		return err
	}
	diffText := p.Diff("live "+target.String(), c.path)
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
that would restore the previous ruleset when the window ends stops, and the
systemd timer, if one was scheduled, is stopped. A window whose deadline has
passed (its watcher was killed) is rolled back instead, and confirm says so.

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

func (a *app) rollbackCmd() *cobra.Command {
	var t targetFlags
	var ifExpired bool
	var id string
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Restore the ruleset from before an 'apply --confirm' now",
		Long: `Rollback undoes the pending 'turnwall apply --confirm' at once: the ruleset
saved before it is restored in one transaction, read back and verified, and
the window is closed (its watcher exits, its systemd timer is stopped).

With --if-expired only a window whose deadline has passed is rolled back
(the systemd timer that apply --confirm schedules runs this); nothing to do is
then not an error. Restoring needs root or CAP_NET_ADMIN.

Exit status: 0 rolled back (or, with --if-expired, nothing due), 1 nothing to
roll back or errors, 2 usage errors.`,
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
			by := "turnwall rollback"
			if ifExpired {
				by += " --if-expired"
			}
			_, msg, err := st.Rollback(t.target(), apply.RollbackOptions{ID: id, IfExpired: ifExpired, By: by})
			var none *apply.NothingPendingError
			if ifExpired && errors.As(err, &none) {
				fmt.Fprintln(a.stdout, none.Error())
				return nil
			}
			if err != nil {
				return err
			}
			// Not due (--if-expired) is no error either: msg says so.
			fmt.Fprintln(a.stdout, msg)
			return nil
		},
	}
	t.add(cmd)
	cmd.Flags().BoolVar(&ifExpired, "if-expired", false, "roll back only a window whose deadline has passed")
	cmd.Flags().StringVar(&id, "id", "", "roll back only this window (the systemd timer's)")
	cmd.Flags().MarkHidden("id")
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
window: its deadline, whether its watcher still runs, and what will roll it
back. A window past its deadline is rolled back first, and status says so.
Needs root or CAP_NET_ADMIN.

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
			st := t.state()
			rec, err := st.RecoverLocking(target, t.lockWait, "turnwall status")
			if err != nil {
				return err
			}
			s, err := apply.StatusOf(target)
			if err != nil {
				return err
			}
			last := st.Outcome(target)
			if format == "json" {
				type pendingJSON struct {
					Until        time.Time `json:"until"`
					Applied      time.Time `json:"applied"`
					Policy       string    `json:"policy,omitempty"`
					WatcherPID   int       `json:"watcher_pid"`
					WatcherAlive bool      `json:"watcher_alive"`
					Timer        string    `json:"rollback_timer,omitempty"`
				}
				out := struct {
					*apply.Status
					PolicyRules []apply.PolicyRuleStatus `json:"policy_rules"`
					ConfirmBy   *time.Time               `json:"confirm_by,omitempty"`
					Pending     *pendingJSON             `json:"pending_confirm,omitempty"`
					ClosedNow   string                   `json:"closed_now,omitempty"`
					Last        string                   `json:"last_confirm_outcome,omitempty"`
				}{Status: s, PolicyRules: s.PolicyRules(), Last: last}
				if p := rec.Pending; p != nil {
					out.ConfirmBy = &p.Deadline
					out.Pending = &pendingJSON{Until: p.Deadline, Applied: p.Applied, Policy: p.Policy, WatcherPID: p.Watcher, WatcherAlive: rec.WatcherAlive, Timer: p.Timer}
				}
				if rec.Closed != nil {
					out.ClosedNow = rec.Outcome
				}
				return writeJSON(a, out)
			}
			return a.writeStatus(target, s, rec, last)
		},
	}
	t.add(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

// pendingLine tells the truth about an open confirm window: when it ends,
// whether its watcher still runs, and what will roll it back.
func pendingLine(t apply.Target, rec *apply.Recovery) string {
	p := rec.Pending
	until := p.Deadline.Format("15:04:05")
	var how string
	switch {
	case rec.WatcherAlive && p.Timer != "":
		how = fmt.Sprintf("watcher pid %d alive; the rollback will run by the watcher or by timer %s", p.Watcher, p.Timer)
	case rec.WatcherAlive:
		how = fmt.Sprintf("watcher pid %d alive; the rollback will run by the watcher, or on the next turnwall invocation", p.Watcher)
	case p.Timer != "":
		how = fmt.Sprintf("watcher pid %d dead; the rollback will run by timer %s, or on the next turnwall invocation", p.Watcher, p.Timer)
	default:
		how = fmt.Sprintf("watcher pid %d dead; the rollback will run on the next turnwall invocation", p.Watcher)
	}
	policy := ""
	if p.Policy != "" {
		policy = " of " + p.Policy
	}
	return fmt.Sprintf("pending confirm until %s (%s)\n  unless 'turnwall confirm%s' runs first; the apply%s was at %s\n",
		until, how, targetArgs(t), policy, p.Applied.Format("15:04:05"))
}

func (a *app) writeStatus(t apply.Target, s *apply.Status, rec *apply.Recovery, last string) error {
	if rec.Closed != nil {
		fmt.Fprintln(a.stdout, rec.Outcome)
	}
	if !s.Exists {
		fmt.Fprintf(a.stdout, "%s does not exist: nothing applied here\n", t)
		if rec.Pending != nil {
			fmt.Fprint(a.stdout, pendingLine(t, rec))
		}
		return nil
	}
	intervals := 0
	for _, set := range s.Sets {
		intervals += set.Intervals
	}
	fmt.Fprintf(a.stdout, "%s: %s (%s), %s\n", t, count(len(s.Sets), "set"), count(intervals, "interval"), count(len(s.Rules), "rule"))
	if rec.Pending != nil {
		fmt.Fprint(a.stdout, pendingLine(t, rec))
	} else if last != "" && rec.Closed == nil {
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
