package compiler_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/load"
	"github.com/turnwall/turnwall/compiler/testkit"
)

// readSources reads a policy file or directory as in-memory sources.
func readSources(t *testing.T, path string) (string, []load.Source) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{path}
	root := filepath.Dir(path)
	if info.IsDir() {
		root = path
		files, _ = filepath.Glob(filepath.Join(path, "*.hcl"))
		js, _ := filepath.Glob(filepath.Join(path, "*.hcl.json"))
		files = append(files, js...)
	}
	var out []load.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, load.Source{Name: f, Bytes: b})
	}
	return root, out
}

func irText(t *testing.T, res *compiler.Result) []byte {
	t.Helper()
	if res.HasErrors() {
		t.Fatalf("unexpected errors: %v", res.Diags)
	}
	var b bytes.Buffer
	if err := res.Program.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDeterministicFileOrder: the order files are given in never changes the
// output, byte for byte.
func TestDeterministicFileOrder(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			root, sources := readSources(t, c.path)
			want := irText(t, compiler.CompileSources(root, sources, compiler.Options{}))
			rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
			for i := 0; i < 10; i++ {
				rng.Shuffle(len(sources), func(a, b int) { sources[a], sources[b] = sources[b], sources[a] })
				got := irText(t, compiler.CompileSources(root, sources, compiler.Options{}))
				if !bytes.Equal(want, got) {
					t.Fatalf("shuffle %d changed the output:\n%s", i, testkit.FirstDiff(string(want), string(got)))
				}
			}
		})
	}
}

// sourceRefs matches the file:line references that legitimately change when
// blocks move between files.
var sourceRefs = regexp.MustCompile(`[\w.-]+\.hcl:\d+`)

// TestDeterministicBlockPlacement: spreading a policy's blocks over files in
// any order and under any names changes nothing but the file:line references.
func TestDeterministicBlockPlacement(t *testing.T) {
	for _, c := range goldenCases(t) {
		if strings.HasSuffix(c.path, ".json") || strings.Contains(c.name, "json") {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			root, sources := readSources(t, c.path)
			want := sourceRefs.ReplaceAll(irText(t, compiler.CompileSources(root, sources, compiler.Options{})), []byte("SRC"))
			var blocks [][]byte
			for _, s := range sources {
				f, d := hclsyntax.ParseConfig(s.Bytes, s.Name, hcl.InitialPos)
				if d.HasErrors() {
					t.Fatal(d)
				}
				for _, b := range f.Body.(*hclsyntax.Body).Blocks {
					r := b.Range()
					blocks = append(blocks, s.Bytes[r.Start.Byte:r.End.Byte])
				}
			}
			rng := rand.New(rand.NewPCG(2, uint64(len(blocks))))
			for i := 0; i < 10; i++ {
				rng.Shuffle(len(blocks), func(a, b int) { blocks[a], blocks[b] = blocks[b], blocks[a] })
				nfiles := 1 + rng.IntN(len(blocks))
				contents := make([][]byte, nfiles)
				for j, b := range blocks {
					k := rng.IntN(nfiles)
					contents[k] = append(append(contents[k], b...), "\n\n"...)
					_ = j
				}
				var split []load.Source
				for k, content := range contents {
					name := filepath.Join(root, fmt.Sprintf("part%02d-%d.hcl", rng.IntN(100), k))
					split = append(split, load.Source{Name: name, Bytes: content})
				}
				got := sourceRefs.ReplaceAll(irText(t, compiler.CompileSources(root, split, compiler.Options{})), []byte("SRC"))
				if !bytes.Equal(want, got) {
					t.Fatalf("placement %d changed the output:\n%s", i, testkit.FirstDiff(string(want), string(got)))
				}
			}
		})
	}
}
