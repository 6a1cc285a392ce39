package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Context is the number of unchanged lines around each change.
const Context = 3

// Side is one version of a policy, compiled.
type Side struct {
	Label   string // what the reviewer knows it as: a path, or REV:path
	Program *ir.Program
	Diags   hcl.Diagnostics
}

// FileDiff is the text diff of one output file of a target.
type FileDiff struct {
	Target  string `json:"target"`
	File    string `json:"file"`
	Status  string `json:"status"` // changed, added, removed
	Added   int    `json:"lines_added"`
	Removed int    `json:"lines_removed"`
	Unified string `json:"unified"`
}

// Report is a whole change: the semantic summary, then per-target diffs.
type Report struct {
	Old     string     `json:"old"`
	New     string     `json:"new"`
	Changed bool       `json:"changed"`
	Summary *Summary   `json:"summary"`
	Files   []FileDiff `json:"files"`
	// Scripts are the change scripts of the targets that write them, when
	// asked for (BuildScripts).
	Scripts []Scripts `json:"scripts,omitempty"`

	flows string // Mermaid picture of the changed flows (flows.go)
}

// Build compares two compiled versions for the given targets.
func Build(oldSide, newSide Side, targets []backends.Backend, opts func(backends.Backend) backends.Options) (*Report, error) {
	r := &Report{Old: oldSide.Label, New: newSide.Label}
	// Index before the programs are shared between goroutines: from here on
	// they are only read.
	oldSide.Program.Index()
	newSide.Program.Index()
	r.Summary = Summarize(oldSide.Program, newSide.Program, oldSide.Diags, newSide.Diags)
	r.flows = flowDiagram(oldSide.Program, newSide.Program)
	// Targets are independent: emit and diff them on every core, then put
	// the results back in the order asked for.
	type result struct {
		files []FileDiff
		err   error
	}
	results := make([]result, len(targets))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, b := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			oo, _ := backends.DeviceOptions(oldSide.Program, b, opts(b))
			of, err := b.Emit(oldSide.Program, oo)
			if err != nil {
				results[i].err = fmt.Errorf("target %s, %s: %w", b.Name(), oldSide.Label, backends.Placed(err, oldSide.Program, b, oo))
				return
			}
			no, _ := backends.DeviceOptions(newSide.Program, b, opts(b))
			nf, err := b.Emit(newSide.Program, no)
			if err != nil {
				results[i].err = fmt.Errorf("target %s, %s: %w", b.Name(), newSide.Label, backends.Placed(err, newSide.Program, b, no))
				return
			}
			results[i].files = fileDiffs(b.Name(), of, nf)
		}()
	}
	wg.Wait()
	for _, res := range results {
		if res.err != nil {
			return nil, res.err
		}
		r.Files = append(r.Files, res.files...)
	}
	r.Changed = !r.Summary.Empty() || len(r.Files) > 0
	return r, nil
}

func fileDiffs(target string, oldFiles, newFiles []backends.File) []FileDiff {
	oldBy := map[string][]byte{}
	for _, f := range oldFiles {
		oldBy[f.Name] = f.Data
	}
	newBy := map[string][]byte{}
	var names []string
	for _, f := range oldFiles {
		names = append(names, f.Name)
	}
	for _, f := range newFiles {
		newBy[f.Name] = f.Data
		if _, ok := oldBy[f.Name]; !ok {
			names = append(names, f.Name)
		}
	}
	var out []FileDiff
	for _, name := range names {
		o, inOld := oldBy[name]
		n, inNew := newBy[name]
		if bytes.Equal(o, n) && inOld == inNew {
			continue
		}
		fd := FileDiff{Target: target, File: name, Status: "changed"}
		oldName, newName := "a/"+name, "b/"+name
		switch {
		case !inOld:
			fd.Status, oldName = "added", "/dev/null"
		case !inNew:
			fd.Status, newName = "removed", "/dev/null"
		}
		hunks := Hunks(string(o), string(n), Context)
		fd.Unified = Render(oldName, newName, hunks)
		for _, h := range hunks {
			for _, l := range h.Lines {
				switch l.Op {
				case '+':
					fd.Added++
				case '-':
					fd.Removed++
				}
			}
		}
		out = append(out, fd)
	}
	return out
}

// WriteJSON writes the report as JSON for pipelines.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// maxListed bounds how many prefixes a text or markdown summary lists per set;
// JSON lists them all.
const maxListed = 20

func listed(items []string) ([]string, int) {
	if len(items) <= maxListed {
		return items, 0
	}
	return items[:maxListed], len(items) - maxListed
}

// ANSI colours for a terminal.
type palette struct{ bold, red, green, cyan, reset string }

func colours(on bool) palette {
	if !on {
		return palette{}
	}
	return palette{"\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m"}
}

// WriteText writes the summary and the diffs for a terminal or a log.
func (r *Report) WriteText(w io.Writer, colour bool) error {
	c := colours(colour)
	var b strings.Builder
	fmt.Fprintf(&b, "%sturnwall diff %s -> %s%s\n", c.bold, r.Old, r.New, c.reset)
	if !r.Changed {
		b.WriteString("no changes\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	s := r.Summary
	section := func(title string) { fmt.Fprintf(&b, "\n%s%s%s\n", c.bold, title, c.reset) }
	if len(s.Policy) > 0 {
		section("Policy")
		for _, p := range s.Policy {
			fmt.Fprintf(&b, "  ~ %s\n", p)
		}
	}
	if len(s.RulesAdded)+len(s.RulesRemoved)+len(s.RulesChanged) > 0 {
		section(fmt.Sprintf("Rules: %d added, %d removed, %d changed", len(s.RulesAdded), len(s.RulesRemoved), len(s.RulesChanged)))
		for _, x := range s.RulesAdded {
			fmt.Fprintf(&b, "  %s+ %s%s %s: %s  (%s)\n", c.green, x.Name, c.reset, x.Action, x.What, x.Source)
		}
		for _, x := range s.RulesRemoved {
			fmt.Fprintf(&b, "  %s- %s%s %s: %s  (%s)\n", c.red, x.Name, c.reset, x.Action, x.What, x.Source)
		}
		for _, x := range s.RulesChanged {
			fmt.Fprintf(&b, "  ~ %s  (%s)\n", x.Name, x.Source)
			for _, ch := range x.Changes {
				fmt.Fprintf(&b, "      %s\n", ch)
			}
		}
	}
	if len(s.Sets) > 0 {
		section("Address sets")
		for _, x := range s.Sets {
			fmt.Fprintf(&b, "  %s %s: %d added, %d removed\n", statusMark(x.Status), x.Name, len(x.Added), len(x.Removed))
			items, more := listed(x.Added)
			for _, a := range items {
				fmt.Fprintf(&b, "      %s+ %s%s\n", c.green, a, c.reset)
			}
			if more > 0 {
				fmt.Fprintf(&b, "      + ... %d more\n", more)
			}
			items, more = listed(x.Removed)
			for _, a := range items {
				fmt.Fprintf(&b, "      %s- %s%s\n", c.red, a, c.reset)
			}
			if more > 0 {
				fmt.Fprintf(&b, "      - ... %d more\n", more)
			}
		}
	}
	if len(s.Services) > 0 {
		section("Services (ports)")
		for _, x := range s.Services {
			fmt.Fprintf(&b, "  ~ %s: %s -> %s\n", x.Name, orNone(x.Old), orNone(x.New))
		}
	}
	if len(s.Findings.Appeared)+len(s.Findings.Disappeared) > 0 {
		section("Lint findings")
		for _, f := range s.Findings.Appeared {
			fmt.Fprintf(&b, "  %s+ %s %s%s: %s\n", c.red, f.Severity, f.Code, c.reset, f.Summary)
		}
		for _, f := range s.Findings.Disappeared {
			fmt.Fprintf(&b, "  %s- %s %s%s: %s\n", c.green, f.Severity, f.Code, c.reset, f.Summary)
		}
	}
	for _, f := range r.Files {
		fmt.Fprintf(&b, "\n%s%s: %s (%s, +%d -%d)%s\n", c.bold, f.Target, f.File, f.Status, f.Added, f.Removed, c.reset)
		for _, line := range strings.SplitAfter(f.Unified, "\n") {
			if line == "" {
				continue
			}
			switch {
			case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
				b.WriteString(c.bold + line + c.reset)
			case strings.HasPrefix(line, "@@"):
				b.WriteString(c.cyan + strings.TrimSuffix(line, "\n") + c.reset + "\n")
			case strings.HasPrefix(line, "+"):
				b.WriteString(c.green + strings.TrimSuffix(line, "\n") + c.reset + "\n")
			case strings.HasPrefix(line, "-"):
				b.WriteString(c.red + strings.TrimSuffix(line, "\n") + c.reset + "\n")
			default:
				b.WriteString(line)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func statusMark(status string) string {
	switch status {
	case "added":
		return "+"
	case "removed":
		return "-"
	}
	return "~"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// WriteMarkdown writes the report ready to paste into a change request: a
// summary table, the details, then one fenced diff per target file.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## turnwall change: `%s` → `%s`\n\n", cell(r.Old), cell(r.New))
	if !r.Changed {
		b.WriteString("No changes.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	s := r.Summary
	b.WriteString("| change | count |\n|---|---:|\n")
	row := func(what string, n int) {
		if n > 0 {
			fmt.Fprintf(&b, "| %s | %d |\n", what, n)
		}
	}
	row("policy settings changed", len(s.Policy))
	row("rules added", len(s.RulesAdded))
	row("rules removed", len(s.RulesRemoved))
	row("rules changed", len(s.RulesChanged))
	row("address sets changed", len(s.Sets))
	row("services changed", len(s.Services))
	row("lint findings appeared", len(s.Findings.Appeared))
	row("lint findings disappeared", len(s.Findings.Disappeared))
	row("target files changed", len(r.Files))
	writeFlows(&b, r.flows)

	if len(s.Policy) > 0 {
		b.WriteString("\n### Policy\n\n")
		for _, p := range s.Policy {
			fmt.Fprintf(&b, "- %s\n", prose(p))
		}
	}
	if len(s.RulesAdded)+len(s.RulesRemoved)+len(s.RulesChanged) > 0 {
		b.WriteString("\n### Rules\n\n| | rule | action | what | source |\n|---|---|---|---|---|\n")
		for _, x := range s.RulesAdded {
			fmt.Fprintf(&b, "| added | `%s` | %s | %s | %s |\n", cell(x.Name), x.Action, prose(x.What), prose(x.Source))
		}
		for _, x := range s.RulesRemoved {
			fmt.Fprintf(&b, "| removed | `%s` | %s | %s | %s |\n", cell(x.Name), x.Action, prose(x.What), prose(x.Source))
		}
		for _, x := range s.RulesChanged {
			fmt.Fprintf(&b, "| changed | `%s` | | %s | %s |\n", cell(x.Name), prose(strings.Join(x.Changes, "; ")), prose(x.Source))
		}
	}
	if len(s.Sets) > 0 {
		b.WriteString("\n### Address sets\n\n| set | | added | removed |\n|---|---|---|---|\n")
		for _, x := range s.Sets {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", cell(x.Name), x.Status, cellList(x.Added), cellList(x.Removed))
		}
	}
	if len(s.Services) > 0 {
		b.WriteString("\n### Services\n\n| service | before | after |\n|---|---|---|\n")
		for _, x := range s.Services {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", cell(x.Name), prose(orNone(x.Old)), prose(orNone(x.New)))
		}
	}
	if len(s.Findings.Appeared)+len(s.Findings.Disappeared) > 0 {
		b.WriteString("\n### Lint findings\n\n| | severity | code | finding |\n|---|---|---|---|\n")
		for _, f := range s.Findings.Appeared {
			fmt.Fprintf(&b, "| appeared | %s | %s | %s |\n", f.Severity, f.Code, prose(f.Summary))
		}
		for _, f := range s.Findings.Disappeared {
			fmt.Fprintf(&b, "| disappeared | %s | %s | %s |\n", f.Severity, f.Code, prose(f.Summary))
		}
	}
	for _, f := range r.Files {
		fence := fenceFor(f.Unified)
		fmt.Fprintf(&b, "\n### %s: `%s` (%s, +%d −%d)\n\n%sdiff\n%s%s\n", f.Target, cell(f.File), f.Status, f.Added, f.Removed, fence, f.Unified, fence)
	}
	writeScriptsMarkdown(&b, r.Scripts)
	_, err := io.WriteString(w, b.String())
	return err
}

var cellEscapes = strings.NewReplacer("|", "\\|", "\n", " ", "\r", " ", "`", "'")

// cell makes text safe inside inline code in a markdown table cell, where
// HTML and @mentions are inert.
func cell(s string) string {
	s = cellEscapes.Replace(s)
	return s
}

// proseEscapes neutralise what markdown renders outside code: raw HTML and
// entities, @mentions (which notify people), links and images.
var proseEscapes = strings.NewReplacer("&", "&amp;", "<", "&lt;", "@", "&#64;", "[", "\\[", "]", "\\]", "!", "\\!", "\\", "\\\\")

// prose makes text safe as plain text in a markdown table cell or list item:
// cell's escapes, and no HTML, mention, link or image.
func prose(s string) string {
	return cell(proseEscapes.Replace(s))
}

func cellList(items []string) string {
	shown, more := listed(items)
	out := strings.Join(shown, ", ")
	if more > 0 {
		out += fmt.Sprintf(", … %d more", more)
	}
	return prose(out)
}

// fenceFor returns a backtick fence longer than any backtick run in text, so
// generated content can never close the code block early.
func fenceFor(text string) string {
	longest, run := 0, 0
	for _, r := range text {
		if r == '`' {
			run++
			if run > longest {
				longest = run
			}
		} else {
			run = 0
		}
	}
	if longest < 3 {
		return "```"
	}
	return strings.Repeat("`", longest+1)
}
