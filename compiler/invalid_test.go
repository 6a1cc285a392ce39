package compiler_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
)

// The invalid-policy corpus lives in testdata/invalid. Each case is a policy
// file (NAME.hcl, NAME.hcl.json) or a directory of files (NAME/). Every line
// that must produce an error carries a trailing comment
//
//	# ERROR: TW101          a turnwall diagnostic with that code
//	# ERROR: Unsupported    an HCL diagnostic whose summary contains the text
//
// and lines that must produce a warning may carry `# WARNING: ...` the same
// way. Files that cannot hold comments (JSON) keep their expectations in a
// sidecar FILE.expect, one `LINE: ERROR: TWnnn` per line. The set of errors a
// case produces must be exactly the set of its ERROR expectations; every
// WARNING expectation must be produced, other warnings are allowed.

const invalidDir = "../testdata/invalid"

// invalidMinCases guards against the corpus silently shrinking.
const invalidMinCases = 45

type invalidExpect struct {
	file     string // absolute path
	line     int
	severity hcl.DiagnosticSeverity
	text     string // a TW code or a summary substring
}

func (e invalidExpect) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", invalidRel(e.file), e.line, invalidSeverity(e.severity), e.text)
}

var (
	invalidMarker = regexp.MustCompile(`#\s*(ERROR|WARNING):\s*([^#]*[^#\s])`)
	invalidSide   = regexp.MustCompile(`^\s*(\d+)\s*:\s*(ERROR|WARNING)\s*:\s*(.*\S)\s*$`)
	invalidCode   = regexp.MustCompile(`^TW\d{3}$`)
)

func invalidSeverity(s hcl.DiagnosticSeverity) string {
	switch s {
	case hcl.DiagError:
		return "ERROR"
	case hcl.DiagWarning:
		return "WARNING"
	}
	return "INVALID"
}

func invalidSevOf(word string) hcl.DiagnosticSeverity {
	if word == "ERROR" {
		return hcl.DiagError
	}
	return hcl.DiagWarning
}

func invalidAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(a)
}

var invalidRoot string

// invalidRel shortens a path for messages: relative to testdata/invalid.
func invalidRel(p string) string {
	if invalidRoot != "" {
		if r, err := filepath.Rel(invalidRoot, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return p
}

// invalidCases lists the case paths under testdata/invalid.
func invalidCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(invalidDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasSuffix(name, ".hcl"), strings.HasSuffix(name, ".hcl.json"):
		default:
			continue // sidecars and other helper files
		}
		out = append(out, filepath.Join(invalidDir, name))
	}
	sort.Strings(out)
	return out
}

// invalidFiles lists every file of a case (the file itself, or the
// directory's files at any depth).
func invalidFiles(t *testing.T, path string) []string {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() {
		return []string{path}
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, ".expect") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// invalidExpectations reads the expectations of one file: from its sidecar
// FILE.expect when there is one, else from the file's own comments (never for
// JSON files, which cannot hold comments).
func invalidExpectations(t *testing.T, file string) []invalidExpect {
	t.Helper()
	abs := invalidAbs(t, file)
	var out []invalidExpect
	if side, err := os.ReadFile(file + ".expect"); err == nil {
		for i, line := range strings.Split(string(side), "\n") {
			s := strings.TrimSpace(line)
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			m := invalidSide.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("%s.expect:%d: want `LINE: ERROR: TEXT` or `LINE: WARNING: TEXT`, got %q", file, i+1, line)
			}
			n, _ := strconv.Atoi(m[1])
			out = append(out, invalidExpect{abs, n, invalidSevOf(m[2]), m[3]})
		}
		return out
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if strings.HasSuffix(file, ".json") || strings.HasSuffix(file, ".pem") || strings.HasSuffix(file, ".key") {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		for _, m := range invalidMarker.FindAllStringSubmatch(sc.Text(), -1) {
			out = append(out, invalidExpect{abs, n, invalidSevOf(m[1]), strings.TrimSpace(m[2])})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// invalidMatches reports whether diagnostic d satisfies expectation x.
func invalidMatches(x invalidExpect, d *hcl.Diagnostic, file string) bool {
	if d.Subject == nil || file != x.file || d.Subject.Start.Line != x.line || d.Severity != x.severity {
		return false
	}
	if invalidCode.MatchString(x.text) {
		return string(diag.CodeOf(d)) == x.text
	}
	return strings.Contains(d.Summary, x.text)
}

func invalidDescribe(d *hcl.Diagnostic, file string) string {
	where := "<no position>"
	if d.Subject != nil {
		where = fmt.Sprintf("%s:%d", invalidRel(file), d.Subject.Start.Line)
	}
	code := string(diag.CodeOf(d))
	if code == "" {
		code = "(no code)"
	}
	return fmt.Sprintf("%s: %s: %s %s", where, invalidSeverity(d.Severity), code, d.Summary)
}

func TestInvalidPolicies(t *testing.T) {
	invalidRoot = invalidAbs(t, invalidDir)
	cases := invalidCases(t)
	if len(cases) < invalidMinCases {
		t.Fatalf("testdata/invalid holds %d cases, want at least %d", len(cases), invalidMinCases)
	}
	for _, path := range cases {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".json"), ".hcl")
		t.Run(name, func(t *testing.T) {
			var expects []invalidExpect
			for _, f := range invalidFiles(t, path) {
				expects = append(expects, invalidExpectations(t, f)...)
			}
			errorsExpected := 0
			for _, x := range expects {
				if x.severity == hcl.DiagError {
					errorsExpected++
				}
			}
			if errorsExpected == 0 {
				t.Fatalf("case has no `# ERROR:` expectation")
			}

			var res *compiler.Result
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("compiler panicked: %v", r)
					}
				}()
				res = compiler.Compile(path, compiler.Options{})
			}()

			files := make([]string, len(res.Diags)) // absolute file of each diagnostic
			for i, d := range res.Diags {
				if d.Subject != nil && d.Subject.Filename != "" {
					files[i] = invalidAbs(t, d.Subject.Filename)
				}
			}

			var missing, unexpected []string
			for _, x := range expects {
				found := false
				for i, d := range res.Diags {
					if invalidMatches(x, d, files[i]) {
						found = true
						break
					}
				}
				if !found {
					missing = append(missing, x.String())
				}
			}
			for i, d := range res.Diags {
				if d.Severity != hcl.DiagError {
					continue
				}
				found := false
				for _, x := range expects {
					if invalidMatches(x, d, files[i]) {
						found = true
						break
					}
				}
				if !found {
					unexpected = append(unexpected, invalidDescribe(d, files[i]))
				}
			}
			if !res.HasErrors() {
				t.Errorf("policy compiled without errors")
			}
			if res.HasErrors() && res.Program != nil {
				t.Errorf("a policy with errors has a Program")
			}
			if len(missing) > 0 || len(unexpected) > 0 {
				var b strings.Builder
				if len(missing) > 0 {
					b.WriteString("missing diagnostics:\n")
					for _, s := range missing {
						b.WriteString("  " + s + "\n")
					}
				}
				if len(unexpected) > 0 {
					b.WriteString("unexpected diagnostics:\n")
					for _, s := range unexpected {
						b.WriteString("  " + s + "\n")
					}
				}
				b.WriteString("all diagnostics:\n")
				for i, d := range res.Diags {
					b.WriteString("  " + invalidDescribe(d, files[i]) + "\n")
				}
				t.Error(b.String())
			}

			// Rendering never panics, whatever the diagnostics point at.
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("diag.WriteText panicked: %v", r)
					}
				}()
				for _, color := range []bool{false, true} {
					var buf bytes.Buffer
					if err := diag.WriteText(&buf, res.Files, res.Diags, 100, color); err != nil {
						t.Errorf("diag.WriteText: %v", err)
					}
					if buf.Len() == 0 {
						t.Errorf("diag.WriteText wrote nothing")
					}
				}
				if err := diag.WriteText(io.Discard, nil, res.Diags, 0, false); err != nil {
					t.Errorf("diag.WriteText without files: %v", err)
				}
			}()
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("diag.ToJSON panicked: %v", r)
					}
				}()
				js := diag.ToJSON(res.Diags)
				if len(js) != len(res.Diags) {
					t.Errorf("diag.ToJSON gave %d diagnostics, want %d", len(js), len(res.Diags))
				}
				if _, err := json.Marshal(js); err != nil {
					t.Errorf("marshalling diag.ToJSON: %v", err)
				}
			}()
		})
	}
}
