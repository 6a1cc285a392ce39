package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/turnwall/turnwall/compiler/testkit"
)

// BenchmarkCompileTargets runs the turnwall binary on a policy with 100,000
// provider prefixes (they aggregate to about 26,000) and measures, in the
// same run, compiling to the IR alone (the baseline) and to every target, with
// the process's peak resident memory and the output size per aggregated
// prefix: output grows with the aggregated prefix count, not rules × prefixes.
func BenchmarkCompileTargets(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "turnwall")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	policy := filepath.Join(dir, "large.hcl")
	if err := os.WriteFile(policy, testkit.LargePolicy(100_000), 0o644); err != nil {
		b.Fatal(err)
	}
	const aggregated = 25_819 // prefixes after aggregation (see compiler's BenchmarkLargePolicy)
	for _, target := range []string{"ir", "all"} {
		b.Run(target, func(b *testing.B) {
			out := filepath.Join(dir, "out-"+target)
			var peak int64
			for b.Loop() {
				os.RemoveAll(out)
				cmd := exec.Command(bin, "compile", "--target", target, "-o", out+"/", policy)
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v\n%s", err, msg)
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak {
					peak = ru.Maxrss
				}
			}
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
			entries, _ := os.ReadDir(out)
			var total int64
			var names []string
			for _, e := range entries {
				info, _ := e.Info()
				total += info.Size()
				names = append(names, e.Name())
			}
			b.ReportMetric(float64(total)/aggregated, "output-bytes/prefix")
			b.Logf("%s: %d files (%s), %d bytes", target, len(entries), strings.Join(names, " "), total)
		})
	}
}
