package diff

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/turnwall/turnwall/backends"
)

// Scripts are the change scripts of one target for a box that already
// holds a configuration (backends.Changer): the implementation (OLD to
// NEW) and the backout (NEW to OLD), and NEW's first install and full
// removal, each a list of files.
type Scripts struct {
	Target    string          `json:"target"`
	Implement []backends.File `json:"implement"`
	Backout   []backends.File `json:"backout"`
	Install   []backends.File `json:"install"`
	Remove    []backends.File `json:"remove"`
	Lines     map[string]int  `json:"lines"` // lines per script, comments and blank lines left out
	// Skipped says why the target wrote no scripts (its placement on the box
	// is not configured); the scripts are then empty.
	Skipped string          `json:"skipped,omitempty"`
	files   []backends.File // every script, named for a directory
}

// BuildScripts writes the change scripts of every target that is a
// backends.Changer. opts gives each target's options for each side (its
// device block and --param). Targets that cannot write change scripts are
// left out. With strict, a Changer that fails is an error; without it (the
// scripts only shown in a report), its Scripts say why it was skipped.
func BuildScripts(oldSide, newSide Side, targets []backends.Backend, opts func(backends.Backend, Side) backends.Options, strict bool) ([]Scripts, error) {
	var out []Scripts
	for _, b := range targets {
		c, ok := b.(backends.Changer)
		if !ok {
			continue
		}
		o, n := opts(b, oldSide), opts(b, newSide)
		s := Scripts{Target: b.Name(), Lines: map[string]int{}}
		var err error
		if s.Implement, err = c.Change(oldSide.Program, newSide.Program, n); err != nil {
			// A bad setting of either side, where it was written.
			err = backends.Placed(backends.Placed(err, newSide.Program, b, n), oldSide.Program, b, o)
			if !strict {
				s.Skipped = err.Error()
				out = append(out, s)
				continue
			}
			return nil, fmt.Errorf("target %s, implementation: %w", b.Name(), err)
		}
		if s.Backout, err = c.Change(newSide.Program, oldSide.Program, o); err != nil {
			return nil, fmt.Errorf("target %s, backout: %w", b.Name(), backends.Placed(err, oldSide.Program, b, o))
		}
		if s.Install, err = c.Change(nil, newSide.Program, n); err != nil {
			return nil, fmt.Errorf("target %s, install: %w", b.Name(), err)
		}
		if s.Remove, err = c.Change(newSide.Program, nil, n); err != nil {
			return nil, fmt.Errorf("target %s, removal: %w", b.Name(), err)
		}
		for _, part := range []struct {
			name  string
			files []backends.File
		}{{"implement", s.Implement}, {"backout", s.Backout}, {"install", s.Install}, {"remove", s.Remove}} {
			for _, f := range part.files {
				s.Lines[part.name] += commandLines(f.Data)
				s.files = append(s.files, backends.File{Name: part.name + "-" + f.Name, Data: f.Data})
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Files returns every script as a file to write into a directory:
// implement-FILE, backout-FILE, install-FILE, remove-FILE.
func (s Scripts) Files() []backends.File { return s.files }

// commandLines counts the lines of a script that are not comments or
// blank.
func commandLines(b []byte) int {
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' || l[0] == '!' || bytes.HasPrefix(l, []byte("<!--")) {
			continue
		}
		n++
	}
	return n
}

// writeScriptsMarkdown adds the change scripts to a change request: per
// target the implementation and the backout, each in a fence longer than
// any backtick run in it.
func writeScriptsMarkdown(w io.Writer, scripts []Scripts) {
	if len(scripts) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Change scripts\n\n")
	fmt.Fprintf(w, "Run the implementation script on the box in the change window; the backout script restores the previous version. Both touch only what turnwall created.\n")
	for _, s := range scripts {
		fmt.Fprintf(w, "\n### %s\n", s.Target)
		if s.Skipped != "" {
			fmt.Fprintf(w, "\nNo change scripts: %s\n", prose(s.Skipped))
			continue
		}
		for _, part := range []struct {
			title string
			files []backends.File
			lines int
		}{{"Implementation", s.Implement, s.Lines["implement"]}, {"Backout", s.Backout, s.Lines["backout"]}} {
			unit := "lines"
			if part.lines == 1 {
				unit = "line"
			}
			fmt.Fprintf(w, "\n**%s** (%d %s)\n", part.title, part.lines, unit)
			for _, f := range part.files {
				text := string(f.Data)
				fence := fenceFor(text)
				fmt.Fprintf(w, "\n%s\n%s", fence, text)
				if !strings.HasSuffix(text, "\n") {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "%s\n", fence)
			}
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
