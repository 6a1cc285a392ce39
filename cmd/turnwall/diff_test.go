package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/diff"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/load"
	"github.com/turnwall/turnwall/compiler/testkit"
)

// separateRanges returns n IPv4 /24s (and every fourth an IPv6 /48) that do
// not aggregate, in random order.
func separateRanges(n int, seed uint64) []netip.Prefix {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]netip.Prefix, 0, n)
	for i := 0; i < n; i++ {
		j := 2 * i
		if i%4 == 3 {
			out = append(out, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x26, 0x00, byte(j >> 16), byte(j >> 8), byte(j)}), 48))
			continue
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(20 + j>>16), byte(j >> 8), byte(j), 0}), 24))
	}
	rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

func compileBytes(t testing.TB, src []byte) diff.Side {
	dir := t.TempDir()
	res := compiler.CompileSources(dir, []load.Source{{Name: filepath.Join(dir, "policy.hcl"), Bytes: src}}, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	return diff.Side{Label: "policy", Program: res.Program, Diags: res.Diags}
}

func allTargets(t testing.TB) []backends.Backend {
	bs, err := registry().Resolve("all")
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestDiffOnePrefixIsSmall: names are stable, so adding one prefix to a
// 10,000-prefix provider changes a handful of lines per target, never the file.
// ASA names its groups and ACLs by content (a changed group is a new name,
// swapped in without editing anything live), so its diff also renames the
// group and the zone's ACL: a few lines per rule, still independent of the
// provider's size.
func TestDiffOnePrefixIsSmall(t *testing.T) {
	ranges := separateRanges(10_000, 1)
	oldSide := compileBytes(t, testkit.ProviderPolicy(ranges))
	extra := netip.MustParsePrefix("198.18.7.0/24")
	newSide := compileBytes(t, testkit.ProviderPolicy(append(append([]netip.Prefix(nil), ranges[:5000]...), append([]netip.Prefix{extra}, ranges[5000:]...)...)))
	report, err := diff.Build(oldSide, newSide, allTargets(t), func(backends.Backend) backends.Options { return backends.Options{} })
	if err != nil {
		t.Fatal(err)
	}
	limits := map[string]int{"ir": 2, "nftables": 1, "panos": 3, "fortios": 8, "asa": 100}
	seen := map[string]bool{}
	for _, f := range report.Files {
		seen[f.Target] = true
		changed := f.Added + f.Removed
		t.Logf("%s %s: +%d -%d", f.Target, f.File, f.Added, f.Removed)
		if limit, ok := limits[f.Target]; ok && changed > limit {
			t.Errorf("%s %s: %d lines changed for one new prefix (limit %d)", f.Target, f.File, changed, limit)
		}
	}
	for target := range limits {
		if !seen[target] {
			t.Errorf("%s: the new prefix does not show in its output", target)
		}
	}
	if len(report.Summary.Sets) == 0 || report.Summary.Sets[0].Name != "provider.big" || strings.Join(report.Summary.Sets[0].Added, ",") != extra.String() {
		t.Errorf("summary: %+v", report.Summary.Sets)
	}
	if len(report.Summary.RulesAdded)+len(report.Summary.RulesRemoved)+len(report.Summary.RulesChanged) != 0 {
		t.Errorf("rules reported as changed: %+v", report.Summary)
	}
}

// BenchmarkDiff100k diffs two versions of the 100,000-prefix policy the other
// benchmarks use (random IPv4 and IPv6 ranges, many overlapping) that differ
// in 1% of their ranges, for every target. Compiling both versions is
// measured in the same run as the baseline.
func BenchmarkDiff100k(b *testing.B) {
	oldSrc := testkit.LargePolicy(100_000)
	lines := strings.Split(string(oldSrc), "\n")
	changed := 0
	for i, l := range lines { // every hundredth range becomes another one
		if strings.HasPrefix(l, "    \"") && i%100 == 0 {
			lines[i] = fmt.Sprintf("    \"203.%d.%d.0/24\",", changed/256, changed%256)
			changed++
		}
	}
	newSrc := []byte(strings.Join(lines, "\n"))
	var oldSide, newSide diff.Side
	b.Run("compile-both", func(b *testing.B) {
		for b.Loop() {
			oldSide, newSide = compileBytes(b, oldSrc), compileBytes(b, newSrc)
		}
	})
	targets := allTargets(b)
	b.Run("diff-all-targets", func(b *testing.B) {
		var diffLines int
		for b.Loop() {
			report, err := diff.Build(oldSide, newSide, targets, func(backends.Backend) backends.Options { return backends.Options{} })
			if err != nil {
				b.Fatal(err)
			}
			diffLines = 0
			for _, f := range report.Files {
				diffLines += f.Added + f.Removed
			}
		}
		b.ReportMetric(float64(changed), "ranges-changed")
		b.ReportMetric(float64(diffLines), "diff-lines")
	})
}
