// Package backendtest is the shared test kit for backends: the policies every
// target is golden-tested on, their golden files (compiler/testkit), hostile programs for
// injection tests, and the property test that a target's re-read output
// decides every packet as ir.Allows does.
package backendtest

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/testkit"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Case is a compiled policy.
type Case struct {
	Name    string // "policies-genesys-cloud", "case-issue-example"
	Program *ir.Program
}

// Cases compiles every shipped example and every golden test case. They all
// compile without errors; warnings are allowed in the cases.
func Cases(t testing.TB) []Case {
	t.Helper()
	root := Root()
	var out []Case
	add := func(name, path string) {
		res := compiler.Compile(path, compiler.Options{})
		if res.HasErrors() {
			t.Fatalf("%s: %v", path, res.Diags)
		}
		out = append(out, Case{Name: name, Program: res.Program})
	}
	examples, _ := filepath.Glob(filepath.Join(root, "policies", "*"))
	for _, p := range examples {
		if info, err := os.Stat(p); err == nil && info.IsDir() {
			add("policies-"+filepath.Base(p), p)
		}
	}
	cases, _ := filepath.Glob(filepath.Join(root, "testdata", "golden", "cases", "*"))
	for _, p := range cases {
		add("case-"+strings.TrimSuffix(filepath.Base(p), ".hcl"), p)
	}
	if len(out) < 5 {
		t.Fatalf("only %d cases found", len(out))
	}
	return out
}

// CaseProgram returns the compiled program of one case of Cases by name.
func CaseProgram(t testing.TB, name string) *ir.Program {
	t.Helper()
	for _, c := range Cases(t) {
		if c.Name == name {
			return c.Program
		}
	}
	t.Fatalf("no case %s", name)
	return nil
}

// Golden compares a target's files for a case with
// testdata/golden/TARGET/CASE/FILE, or rewrites them with -update.
func Golden(t *testing.T, target, caseName string, files []backends.File) {
	t.Helper()
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		m[f.Name] = f.Data
	}
	testkit.Dir(t, filepath.Join(Root(), "testdata", "golden", target, caseName), m)
}

// Emit runs a backend and fails the test on error; output must be identical
// on a second run.
func Emit(t testing.TB, b backends.Backend, p *ir.Program, opts backends.Options) []backends.File {
	t.Helper()
	files, err := b.Emit(p, opts)
	if err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	again, err := b.Emit(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(files) {
		t.Fatal("second emit gave a different number of files")
	}
	for i := range files {
		if files[i].Name != again[i].Name || !bytes.Equal(files[i].Data, again[i].Data) {
			t.Fatalf("%s: output differs between two runs", files[i].Name)
		}
	}
	return files
}

// NameValuesAsOneByOne asserts that a namespace's NameValues gives the
// prefixes' objects the names Name of each prefix's key in turn gives, with
// the names in before asked for first and those in after last (kind, key
// pairs: keys and names that collide with the prefixes'). It returns the
// names, in that order, for the caller's own checks.
func NameValuesAsOneByOne(t *testing.T, newNS func() *naming.Namespace, kind string, prefixes []netip.Prefix, key func(netip.Prefix) string, before, after [][2]string) []string {
	t.Helper()
	one, bulk := newNS(), newNS()
	var want, got []string
	for _, n := range before {
		want = append(want, one.Name(n[0], n[1]))
		got = append(got, bulk.Name(n[0], n[1]))
	}
	for _, p := range prefixes {
		want = append(want, one.Name(kind, key(p)))
	}
	got = append(got, bulk.NameValues(kind, prefixes)...)
	for _, n := range after {
		want = append(want, one.Name(n[0], n[1]))
		got = append(got, bulk.Name(n[0], n[1]))
	}
	if len(got) != len(want) {
		t.Fatalf("%d names in one go, %d one by one", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("name %d: %q in one go, %q one by one", i, got[i], want[i])
		}
	}
	return want
}
