package compiler_test

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/load"
)

// maxSeed leaves out the big hostile files (a megabyte line, 100,000 nested
// parentheses): the fuzzer mutates small inputs better, and
// TestHostilePolicies covers those.
const maxSeed = 64 << 10

// seedFiles adds every policy file under the given globs to the corpus.
func seedFiles(f *testing.F, globs ...string) {
	n := 0
	for _, g := range globs {
		files, _ := filepath.Glob(g)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil && len(data) <= maxSeed {
				f.Add(data)
				n++
			}
		}
	}
	if n == 0 {
		f.Fatalf("no seed files for %v", globs)
	}
}

// FuzzCompile: any input gives diagnostics or a program, never a panic; a
// program renders deterministically and answers Allows.
func FuzzCompile(f *testing.F) {
	seedFiles(f, "../policies/*/*.hcl", "../testdata/golden/cases/*.hcl", "../testdata/golden/cases/*/*.hcl",
		"../testdata/invalid/*.hcl", "../testdata/invalid/*/*.hcl", "../testdata/hostile/*/*.hcl")
	f.Fuzz(func(t *testing.T, src []byte) {
		checkCompile(t, "fuzz.hcl", src)
	})
}

// FuzzCompileJSON is FuzzCompile for the JSON syntax.
func FuzzCompileJSON(f *testing.F) {
	seedFiles(f, "../testdata/golden/cases/*/*.hcl.json", "../testdata/invalid/*.hcl.json", "../testdata/invalid/*/*.hcl.json", "../testdata/hostile/*/*.hcl.json")
	f.Add([]byte(`{"policy": {"p": {}}, "zone": {"a": {"interface": "eth0"}}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		checkCompile(t, "fuzz.hcl.json", src)
	})
}

func checkCompile(t *testing.T, name string, src []byte) {
	dir := t.TempDir()
	res := compiler.CompileSources(dir, []load.Source{{Name: filepath.Join(dir, name), Bytes: src}}, compiler.Options{})
	if err := diag.WriteText(io.Discard, res.Files, res.Diags, 80, true); err != nil {
		t.Fatal(err)
	}
	_ = diag.ToJSON(res.Diags)
	if res.HasErrors() {
		if res.Program != nil {
			t.Fatal("program returned despite errors")
		}
		return
	}
	if res.Program == nil {
		t.Fatal("no program and no errors")
	}
	var a, b bytes.Buffer
	if err := res.Program.WriteText(&a); err != nil {
		t.Fatal(err)
	}
	if err := compiler.CompileSources(dir, []load.Source{{Name: filepath.Join(dir, name), Bytes: src}}, compiler.Options{}).Program.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("output differs between two compilations")
	}
	if err := res.Program.WriteJSON(io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Program.AddressSets {
		for _, p := range append(append([]netip.Prefix(nil), s.V4...), s.V6...) {
			res.Program.Allows(ir.Packet{Src: p.Addr(), Dst: p.Addr(), Proto: ir.UDP, DstPort: 3478})
		}
	}
}
