// Package testkit is the test kit shared by the compiler's, the backends' and
// the CLI's tests: golden files checked or rewritten with -update, a short
// first-difference report, and generated policies. It depends on no other
// turnwall package, so any test may use it.
package testkit

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Update rewrites golden files (go test PKG -update, or make golden).
var Update = flag.Bool("update", false, "rewrite golden files")

// File compares got with the golden file at path, or writes it with -update.
func File(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v (run go test -update to create it)", err)
		return
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, FirstDiff(string(want), string(got)))
	}
}

// Dir compares a set of files (name to content) with the golden directory
// dir, which must hold exactly those files, or rewrites the directory with
// -update.
func Dir(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	if *Update {
		os.RemoveAll(dir)
	}
	for _, n := range names {
		File(t, filepath.Join(dir, n), files[n])
	}
	if *Update {
		return
	}
	var want []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		want = append(want, e.Name())
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("files %v, golden has %v", names, want)
	}
}

// FirstDiff shows the first differing lines of two texts, enough to see what
// changed in a golden file.
func FirstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("  want: " + wl + "\n  got:  " + gl + "\n")
			if shown++; shown == 8 {
				break
			}
		}
	}
	return b.String()
}
