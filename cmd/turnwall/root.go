package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/asa"
	"github.com/turnwall/turnwall/backends/coturn"
	"github.com/turnwall/turnwall/backends/fortios"
	"github.com/turnwall/turnwall/backends/irtarget"
	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/backends/panos"
	"github.com/turnwall/turnwall/backends/platform"
)

// Exit codes, the same for every command.
const (
	exitOK     = 0
	exitPolicy = 1 // the policy has errors (or, for fmt --check, files need formatting)
	exitUsage  = 2 // the command line is wrong
)

// registry is the explicit list of targets; new backends are added here.
func registry() *backends.Registry {
	return backends.NewRegistry(
		irtarget.Backend{},
		nftables.Backend{},
		asa.Backend{},
		fortios.Backend{},
		panos.Backend{},
		coturn.Backend{},
		platform.Backend{},
	)
}

// usageError marks errors in how turnwall was called (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// diffUsage is a usage error of turnwall diff, whose exit status 2 means
// "the versions differ".
type diffUsage struct{ err error }

func (d diffUsage) Error() string { return d.err.Error() }

// exitError carries an exit code for failures already reported to the user.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	color          string
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// diff keeps 2 for "changes": its usage errors are errors (1).
	var de diffUsage
	if errors.As(err, &de) {
		fmt.Fprintf(stderr, "turnwall: %v\n", de.err)
		fmt.Fprintln(stderr, "Run 'turnwall diff --help' for usage.")
		return exitPolicy
	}
	fmt.Fprintf(stderr, "turnwall: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintln(stderr, "Run 'turnwall --help' for usage.")
		return exitUsage
	}
	return exitPolicy
}

// isCobraUsageError recognises cobra's own argument and command errors, which
// it returns as plain errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires ", "unknown flag", "unknown shorthand", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "turnwall",
		Short: "Compile WebRTC firewall policies into reviewable, tested rule sets",
		Long: `turnwall describes a contact centre's WebRTC network once (zones, agent subnets,
provider ranges, TURN relays, platform settings) and compiles it into firewall
rules for every target, linted for the traps that break real deployments.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch a.color {
			case "auto", "always", "never":
				return nil
			}
			return usageError{fmt.Errorf("--color %q: use auto, always or never", a.color)}
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&a.color, "color", "auto", "colour diagnostics: auto, always or never")
	root.AddCommand(
		a.validateCmd(),
		a.compileCmd(),
		a.diffCmd(),
		a.traceCmd(),
		a.targetsCmd(),
		a.fmtCmd(),
		a.rangesCmd(),
		a.applyCmd(),
		a.planCmd(),
		a.confirmCmd(),
		a.rollbackCmd(),
		a.confirmWatchCmd(),
		a.statusCmd(),
		a.relayCmd(),
		a.credsCmd(),
		a.probeCmd(),
		a.verifyCmd(),
		a.readinessCmd(),
		a.graphCmd(),
		a.versionCmd(),
		a.genDocsCmd(),
	)
	root.CompletionOptions.HiddenDefaultCmd = false
	return root
}

// useColor decides whether diagnostics (on stderr) get ANSI colour.
func (a *app) useColor() bool { return a.colorFor(a.stderr) }

// stdoutColor decides whether output on stdout (diffs) gets ANSI colour.
func (a *app) stdoutColor() bool { return a.colorFor(a.stdout) }

// colorFor applies --color, then NO_COLOR, then whether w is a terminal.
func (a *app) colorFor(w io.Writer) bool {
	switch a.color {
	case "always":
		return true
	case "never":
		return false
	}
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) width() uint {
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			return uint(w)
		}
	}
	return 100
}
