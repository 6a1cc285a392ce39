package main

import (
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// cliRow is one row of README's CLI reference table.
type cliRow struct {
	line     int
	synopses []string // the first column's `turnwall ...` spans
	flags    []string // flags named in the second column's code spans
}

// readmeCLITable reads the table under "## CLI reference" in README.md.
func readmeCLITable(t *testing.T) []cliRow {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "## CLI reference" {
			start = i
		}
	}
	if start < 0 {
		t.Fatal("README.md has no \"## CLI reference\" section")
	}
	span := regexp.MustCompile("`([^`]*)`")
	var rows []cliRow
	inTable := false
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "## ") {
			break
		}
		if !strings.HasPrefix(l, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		// Split on the first unescaped | after the leading one.
		body := l[1:]
		cut := -1
		for j := 0; j < len(body); j++ {
			if body[j] == '|' && (j == 0 || body[j-1] != '\\') {
				cut = j
				break
			}
		}
		if cut < 0 {
			continue
		}
		first, rest := body[:cut], body[cut+1:]
		row := cliRow{line: i + 1}
		for _, m := range span.FindAllStringSubmatch(first, -1) {
			if s := strings.ReplaceAll(m[1], `\|`, "|"); strings.HasPrefix(s, "turnwall") {
				row.synopses = append(row.synopses, s)
			}
		}
		if len(row.synopses) == 0 {
			continue // the header and the separator
		}
		for _, m := range span.FindAllStringSubmatch(rest, -1) {
			if s := strings.ReplaceAll(m[1], `\|`, "|"); strings.HasPrefix(s, "-") {
				row.flags = append(row.flags, flagNames(s)...)
			}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		t.Fatal("README.md's CLI reference has no rows")
	}
	return rows
}

var flagRE = regexp.MustCompile(`(?:^|[\s\[|(])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b`)

// flagNames lists the flags (--name, -x) a synopsis names.
func flagNames(s string) []string {
	var out []string
	for _, m := range flagRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

func hasFlag(c *cobra.Command, f string) bool {
	if name, ok := strings.CutPrefix(f, "--"); ok {
		return c.Flags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil
	}
	sh := strings.TrimPrefix(f, "-")
	return c.Flags().ShorthandLookup(sh) != nil || c.InheritedFlags().ShorthandLookup(sh) != nil
}

// listed reports whether a command belongs in README's table: every command
// a user can call, but not help and hidden ones.
func listed(c *cobra.Command) bool {
	return !c.Hidden && c.Name() != "help" && !c.IsAdditionalHelpTopicCommand()
}

// TestReadmeCLITable keeps README's CLI reference and the commands one truth:
// every command and subcommand appears in the table, every command the table
// names exists, and every flag a synopsis names is a flag of that command
// (a flag in the description's code spans, of some command).
func TestReadmeCLITable(t *testing.T) {
	root := (&app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, color: "never"}).rootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()

	mentioned := map[string]bool{}
	word := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	for _, row := range readmeCLITable(t) {
		var cmds []*cobra.Command
		for _, syn := range row.synopses {
			toks := strings.Fields(syn)
			c := root
			i := 1
			for ; i < len(toks); i++ {
				sub := findSub(c, toks[i])
				if sub == nil {
					break
				}
				c = sub
				mentioned[c.CommandPath()] = true
			}
			if c == root {
				t.Errorf("README.md:%d: %q names no turnwall command", row.line, syn)
				continue
			}
			if i < len(toks) {
				next := toks[i]
				if parts := strings.Split(next, "|"); len(parts) > 1 && c.HasSubCommands() {
					for _, p := range parts {
						if sub := findSub(c, p); sub != nil {
							mentioned[sub.CommandPath()] = true
						} else {
							t.Errorf("README.md:%d: %q: %q is no subcommand of %q", row.line, syn, p, c.CommandPath())
						}
					}
				} else if word.MatchString(next) && c.HasSubCommands() {
					t.Errorf("README.md:%d: %q: %q is no subcommand of %q", row.line, syn, next, c.CommandPath())
				}
			}
			for _, f := range flagNames(strings.Join(toks[i:], " ")) {
				if !hasFlag(c, f) {
					t.Errorf("README.md:%d: %q: %q has no flag %s", row.line, syn, c.CommandPath(), f)
				}
			}
			cmds = append(cmds, c)
		}
		for _, f := range row.flags {
			found := false
			for _, c := range cmds {
				found = found || hasFlag(c, f)
			}
			// A description may name another command's flag (targets
			// lists the --param parameters of compile).
			found = found || anyHasFlag(root, f)
			if !found && len(cmds) > 0 {
				t.Errorf("README.md:%d: the description names %s, a flag of no command", row.line, f)
			}
		}
	}

	var missing []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if !listed(s) {
				continue
			}
			if !mentioned[s.CommandPath()] {
				missing = append(missing, s.CommandPath())
			}
			walk(s)
		}
	}
	walk(root)
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("README.md's CLI reference does not list %q: add a row (or a synopsis to a row)", m)
	}
}

func anyHasFlag(c *cobra.Command, f string) bool {
	if hasFlag(c, f) {
		return true
	}
	for _, s := range c.Commands() {
		if anyHasFlag(s, f) {
			return true
		}
	}
	return false
}

func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// The checker itself: a README that drifts from the commands fails.
func TestReadmeCLITableChecker(t *testing.T) {
	if got := flagNames("turnwall compile [POLICY] [-t TARGETS] [--format F] [--param T.N=V]... [--format-in aws|text]"); strings.Join(got, " ") != "-t --format --param --format-in" {
		t.Fatalf("flagNames = %q", got)
	}
	root := (&app{stdout: io.Discard, stderr: io.Discard}).rootCmd()
	compile := findSub(root, "compile")
	if !hasFlag(compile, "--target") || !hasFlag(compile, "-t") || !hasFlag(compile, "--color") || hasFlag(compile, "--nope") || hasFlag(compile, "-z") {
		t.Fatal("hasFlag is wrong")
	}
}
