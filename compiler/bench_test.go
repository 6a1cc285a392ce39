package compiler_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/load"
)

// largePolicy returns a policy whose provider has n ranges, IPv4 and IPv6,
// random lengths, many overlapping or adjacent, so aggregation has work to do.
func largePolicy(n int) []byte {
	rng := rand.New(rand.NewPCG(42, 42))
	var b strings.Builder
	b.WriteString(`policy "large" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "wan0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16", "fd00:20::/48"]
}
provider "big" {
  zone  = zone.internet
  https = true
  turn  = { udp = [3478], tcp = [3478] }
  media = { udp = ["16384-65535"] }
  ranges = [
`)
	for i := 0; i < n; i++ {
		var p netip.Prefix
		if i%4 == 3 {
			var a [16]byte
			a[0], a[1] = 0x26, 0x00
			a[2], a[3], a[4] = byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))
			p = netip.PrefixFrom(netip.AddrFrom16(a), 24+rng.IntN(41)).Masked()
		} else {
			a := [4]byte{byte(20 + rng.IntN(30)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			p = netip.PrefixFrom(netip.AddrFrom4(a), 16+rng.IntN(17)).Masked()
		}
		fmt.Fprintf(&b, "    %q,\n", p)
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

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
