package compiler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/turnwall/turnwall/compiler/testkit"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/load"
)

func largePolicy(n int) []byte { return testkit.LargePolicy(n) }

// largeRangesFile is the same policy with its ranges in a ranges_file, the
// way a published list of that size is normally kept.
func largeRangesFile(b *testing.B, dir string, n int) []byte {
	src := string(largePolicy(n))
	start := strings.Index(src, "  ranges = [")
	list := src[start+len("  ranges = [") : strings.LastIndex(src, "]")]
	list = strings.NewReplacer("\"", "", ",", "").Replace(list)
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), []byte(list), 0o644); err != nil {
		b.Fatal(err)
	}
	return []byte(src[:start] + "  ranges = ranges_file(\"big.txt\")\n}\n")
}

// BenchmarkLargePolicy measures a 100,000-prefix policy. "parse" (HCL parsing
// alone) is the baseline measured in the same run; "compile" is load,
// evaluate, lower and lint. Compare the two as a ratio.
func BenchmarkLargePolicy(b *testing.B) {
	src := largePolicy(100_000)
	dir := b.TempDir()
	name := filepath.Join(dir, "large.hcl")
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			if _, d := hclparse.NewParser().ParseHCL(src, name); d.HasErrors() {
				b.Fatal(d)
			}
		}
	})
	b.Run("compile", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var sets int
		for b.Loop() {
			res := compiler.CompileSources(dir, []load.Source{{Name: name, Bytes: src}}, compiler.Options{})
			if res.HasErrors() {
				b.Fatal(res.Diags)
			}
			s := res.Program.AddressSet("provider.big")
			sets = len(s.V4) + len(s.V6)
		}
		b.ReportMetric(float64(sets), "aggregated-prefixes")
	})
	b.Run("compile-ranges-file", func(b *testing.B) {
		src := largeRangesFile(b, dir, 100_000)
		for b.Loop() {
			res := compiler.CompileSources(dir, []load.Source{{Name: name, Bytes: src}}, compiler.Options{})
			if res.HasErrors() {
				b.Fatal(res.Diags)
			}
		}
	})
}
