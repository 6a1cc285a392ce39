package compiler_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/testkit"
)

// goldenCase is a policy whose IR (text and JSON) and diagnostics are kept
// under testdata/golden.
type goldenCase struct {
	name, path string
	example    bool // shipped examples must have no diagnostics at all
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	var out []goldenCase
	examples, _ := filepath.Glob("../policies/*")
	for _, p := range examples {
		if info, err := os.Stat(p); err == nil && info.IsDir() {
			out = append(out, goldenCase{"policies-" + filepath.Base(p), p, true})
		}
	}
	cases, _ := filepath.Glob("../testdata/golden/cases/*")
	for _, p := range cases {
		name := strings.TrimSuffix(filepath.Base(p), ".hcl")
		out = append(out, goldenCase{"case-" + name, p, false})
	}
	if len(out) < 3 {
		t.Fatalf("found only %d golden cases", len(out))
	}
	return out
}

func TestGoldenIR(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			res := compiler.Compile(c.path, compiler.Options{})
			var diags bytes.Buffer
			if err := diag.WriteText(&diags, res.Files, res.Diags, 100, false); err != nil {
				t.Fatal(err)
			}
			if res.HasErrors() {
				t.Fatalf("policy has errors:\n%s", diags.String())
			}
			if c.example && len(res.Diags) > 0 {
				t.Fatalf("shipped example must validate with no diagnostics:\n%s", diags.String())
			}
			var text, js bytes.Buffer
			if err := res.Program.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := res.Program.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("..", "testdata", "golden", "ir", c.name)
			testkit.File(t, base+".txt", text.Bytes())
			testkit.File(t, base+".json", js.Bytes())
			if !c.example {
				testkit.File(t, base+".diag", bytes.ReplaceAll(diags.Bytes(), []byte(filepath.Dir(c.path)+"/"), nil))
			}

			// Compiling again gives the same bytes.
			again := compiler.Compile(c.path, compiler.Options{})
			var text2 bytes.Buffer
			again.Program.WriteText(&text2)
			if !bytes.Equal(text.Bytes(), text2.Bytes()) {
				t.Fatal("second compilation differs from the first")
			}
		})
	}
}
