package compiler_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
)

// TestWriteTextMatchesHCL: diag.WriteText (linear, capped, escaping) prints
// exactly what HCL's own text writer prints for every case of the invalid
// corpus and every example policy, colour on and off.
func TestWriteTextMatchesHCL(t *testing.T) {
	var paths []string
	for _, g := range []string{"../testdata/invalid/*", "../policies/*", "../testdata/golden/cases/*"} {
		m, _ := filepath.Glob(g)
		for _, p := range m {
			if filepath.Ext(p) != ".expect" {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) < 20 {
		t.Fatalf("only %d cases", len(paths))
	}
	for _, p := range paths {
		res := compiler.Compile(p, compiler.Options{})
		if len(res.Diags) > diag.MaxShown {
			continue
		}
		for _, color := range []bool{false, true} {
			var got, want bytes.Buffer
			if err := diag.WriteText(&got, res.Files, res.Diags, 78, color); err != nil {
				t.Fatal(err)
			}
			tw := hcl.NewDiagnosticTextWriter(&want, res.Files, 78, color)
			for _, d := range res.Diags {
				c := *d
				if code := diag.CodeOf(d); code != "" {
					c.Summary = fmt.Sprintf("%s: %s", code, d.Summary)
				}
				if d.Subject != nil {
					c.Summary = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, c.Summary)
				}
				if err := tw.WriteDiagnostic(&c); err != nil {
					t.Fatal(err)
				}
			}
			if got.String() != want.String() {
				t.Errorf("%s (color %v): WriteText differs from HCL's writer\n--- got\n%s\n--- want\n%s", p, color, got.String(), want.String())
			}
		}
	}
}
