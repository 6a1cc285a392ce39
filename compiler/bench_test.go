package compiler_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

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

// RangesFile50k writes the 50,000-prefix policy of BenchmarkRangesFile50k
// into dir: 50,000 non-adjacent /24s (they do not aggregate) in a
// ranges_file, and two rules, UDP 19302 and TCP 443, from one /16 of agents.
// It returns the policy's path and the ranges file's path.
func rangesFile50k(b *testing.B, dir string) (policy, ranges string) {
	var sb strings.Builder
	for i := range 50_000 {
		a := 20<<24 + uint32(2*i)<<8
		fmt.Fprintf(&sb, "%d.%d.%d.0/24\n", a>>24, a>>16&255, a>>8&255)
	}
	ranges = filepath.Join(dir, "big.txt")
	policy = filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(ranges, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte(policy50k), 0o644); err != nil {
		b.Fatal(err)
	}
	return policy, ranges
}

const policy50k = `policy "p50k" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "wan0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}
provider "big" {
  zone   = zone.internet
  ranges = ranges_file("big.txt")
}
rule "stun" {
  from = [agents.floor]
  to   = [provider.big]
  udp  = [19302]
}
rule "https" {
  from = [agents.floor]
  to   = [provider.big]
  tcp  = [443]
}
`

// BenchmarkRangesFile50k measures, in the same run and interleaved (each
// iteration runs both), the floor of a 50,000-prefix provider (read the
// ranges file, netip.ParsePrefix each line, write the prefixes' text) and
// the compile pipeline up to the IR (load, evaluate, lower, lint). It
// reports the median of each and the median of the per-iteration ratios
// (x-floor), the figure to quote: the machine's speed cancels out.
func BenchmarkRangesFile50k(b *testing.B) {
	dir := b.TempDir()
	policy, ranges := rangesFile50k(b, dir)
	out := filepath.Join(dir, "out.txt")
	var floors, compiles, ratios []float64
	for b.Loop() {
		start := time.Now()
		rangesFloor(b, ranges, out)
		floor := time.Since(start).Seconds()
		start = time.Now()
		res := compiler.Compile(policy, compiler.Options{})
		took := time.Since(start).Seconds()
		if res.HasErrors() {
			b.Fatal(res.Diags)
		}
		if s := res.Program.AddressSet("provider.big"); len(s.V4) != 50_000 {
			b.Fatalf("provider.big has %d prefixes, want 50000", len(s.V4))
		}
		floors = append(floors, floor)
		compiles = append(compiles, took)
		ratios = append(ratios, took/floor)
	}
	b.ReportMetric(median(floors)*1000, "floor-ms")
	b.ReportMetric(median(compiles)*1000, "compile-ms")
	b.ReportMetric(median(ratios), "x-floor")
}

// rangesFloor is what no compiler of the ranges file can avoid: read it,
// parse each line, write the prefixes out.
func rangesFloor(b *testing.B, ranges, out string) {
	data, err := os.ReadFile(ranges)
	if err != nil {
		b.Fatal(err)
	}
	prefixes := make([]netip.Prefix, 0, 50_000)
	for line := range bytes.Lines(data) {
		p, err := netip.ParsePrefix(string(bytes.TrimSpace(line)))
		if err != nil {
			b.Fatal(err)
		}
		prefixes = append(prefixes, p)
	}
	buf := make([]byte, 0, len(data))
	for _, p := range prefixes {
		buf = p.AppendTo(buf)
		buf = append(buf, '\n')
	}
	if err := os.WriteFile(out, buf, 0o644); err != nil {
		b.Fatal(err)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
