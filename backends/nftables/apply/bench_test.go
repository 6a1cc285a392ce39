package apply

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/testkit"
	"github.com/turnwall/turnwall/relay/netns"
)

// largePolicy is the 100,000-prefix policy of the compiler's and the CLI's
// benchmarks (it aggregates to about 26,000 prefixes), built into the model.
func largePolicy(b testing.TB) *nftables.Ruleset {
	b.Helper()
	dir := b.TempDir()
	path := filepath.Join(dir, "large.hcl")
	if err := os.WriteFile(path, testkit.LargePolicy(100_000), 0o644); err != nil {
		b.Fatal(err)
	}
	res := compiler.Compile(path, compiler.Options{})
	if res.HasErrors() {
		b.Fatal(res.Diags)
	}
	rs, err := nftables.Build(res.Program, "turnwall")
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

func benchRulesets(b *testing.B) map[string]*nftables.Ruleset {
	return map[string]*nftables.Ruleset{
		"policy-100k-prefixes":  largePolicy(b),
		"sets-1x100k-intervals": synthetic("turnwall", 100_000, 0, 0),
		"sets-2x100k-intervals": synthetic("turnwall", 100_000, 100_000, 0),
		"sets-4x100k-intervals": synthetic("turnwall", 200_000, 200_000, 0),
	}
}

// nftLoad runs `nft -f` on a file in a namespace and returns how long it took.
func nftLoad(b *testing.B, ns *netns.NS, file string) time.Duration {
	b.Helper()
	start := time.Now()
	if out, err := ns.Exec(context.Background(), "nft", "-f", file); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	return time.Since(start)
}

func writeText(b *testing.B, rs *nftables.Ruleset) string {
	file := filepath.Join(b.TempDir(), "ruleset.nft")
	if err := os.WriteFile(file, rs.Text(), 0o644); err != nil {
		b.Fatal(err)
	}
	return file
}

// reportVs reports both timings per operation and their ratio: the two are
// measured alternately in the same run, so load on the machine hits both.
func reportVs(b *testing.B, netlinkTotal, nftTotal time.Duration, n int) {
	b.ReportMetric(float64(netlinkTotal.Milliseconds())/float64(n), "netlink-ms/op")
	b.ReportMetric(float64(nftTotal.Milliseconds())/float64(n), "nft-f-ms/op")
	b.ReportMetric(float64(netlinkTotal)/float64(nftTotal), "netlink/nft-f")
}

// BenchmarkApply loads a ruleset into a namespace that does not hold the
// table yet, through netlink (read, one batch, read back and verify every
// element) and with `nft -f` of the text rendering (which verifies nothing).
func BenchmarkApply(b *testing.B) {
	needKernel(b)
	for name, rs := range benchRulesets(b) {
		b.Run(name, func(b *testing.B) {
			file := writeText(b, rs)
			nl, text := newNS(b, "bench-nl"), newNS(b, "bench-text")
			target := Target{Table: rs.Table, NetNS: nl.Name}
			st := State{Dir: b.TempDir()}
			var nlTotal, nftTotal time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				Restore(target, &Snapshot{Table: rs.Table})
				text.Exec(context.Background(), "nft", "delete", "table", "inet", rs.Table)
				b.StartTimer()
				start := time.Now()
				res, err := st.Apply(target, rs)
				if err != nil {
					b.Fatal(err)
				}
				nlTotal += time.Since(start)
				if i == 0 {
					b.Logf("netlink: read %v, send %v (%d messages, %d bytes), verify %v (%d intervals)", res.Read, res.Send, res.Messages, res.Bytes, res.Verify, res.Intervals)
				}
				nftTotal += nftLoad(b, text, file)
			}
			reportVs(b, nlTotal, nftTotal, b.N)
		})
	}
}

// BenchmarkReapply applies a ruleset the kernel already holds: netlink plans
// from the record of the last apply (the generation has not moved), reading
// the table without its sets' elements, and sends nothing; the text path can
// only load it all again.
func BenchmarkReapply(b *testing.B) {
	needKernel(b)
	for name, rs := range benchRulesets(b) {
		b.Run(name, func(b *testing.B) {
			file := writeText(b, rs)
			nl, text := newNS(b, "bench-nl"), newNS(b, "bench-text")
			st := State{Dir: b.TempDir()}
			stateApply(b, st, nl, rs)
			nftLoad(b, text, file)
			var nlTotal, nftTotal time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				res := stateApply(b, st, nl, rs)
				nlTotal += time.Since(start)
				if res.Plan.Action != NoChange || !res.FromRecord {
					b.Fatalf("re-apply: %s, from record %v", res.Plan.Action, res.FromRecord)
				}
				nftTotal += nftLoad(b, text, file)
			}
			reportVs(b, nlTotal, nftTotal, b.N)
		})
	}
}

// BenchmarkDelta adds or removes one prefix: netlink plans from the record
// of the last apply, sends one message of elements and verifies the change;
// the text path reloads it all.
func BenchmarkDelta(b *testing.B) {
	needKernel(b)
	for name, rs := range benchRulesets(b) {
		b.Run(name, func(b *testing.B) {
			set := rs.Sets[len(rs.Sets)-1]
			for _, s := range rs.Sets {
				if len(s.Prefixes) > len(set.Prefixes) {
					set = s
				}
			}
			// A prefix of the set's family that no prefix of the set covers.
			extra := "2.0.0.0/32"
			if set.V6 {
				extra = "2001:db8::/128"
			}
			versions := []*nftables.Ruleset{rs, withPrefix(rs, set.Name, extra)}
			files := []string{writeText(b, versions[0]), writeText(b, versions[1])}
			nl, text := newNS(b, "bench-nl"), newNS(b, "bench-text")
			st := State{Dir: b.TempDir()}
			stateApply(b, st, nl, rs)
			nftLoad(b, text, files[0])
			var nlTotal, nftTotal time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v := (i + 1) % 2
				start := time.Now()
				res := stateApply(b, st, nl, versions[v])
				nlTotal += time.Since(start)
				if res.Plan.Action != Delta || res.Messages != 1 || !res.FromRecord {
					b.Fatalf("one-prefix change: %s in %d messages, from record %v", res.Plan.Action, res.Messages, res.FromRecord)
				}
				nftTotal += nftLoad(b, text, files[v])
			}
			reportVs(b, nlTotal, nftTotal, b.N)
		})
	}
}

// stateApply applies through a state directory, as the CLI does.
func stateApply(b *testing.B, st State, ns *netns.NS, rs *nftables.Ruleset) *Result {
	b.Helper()
	res, err := st.Apply(Target{Table: rs.Table, NetNS: ns.Name}, rs)
	if err != nil {
		b.Fatal(err)
	}
	return res
}
