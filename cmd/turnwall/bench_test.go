package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

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

// floorProgram is the floor of BenchmarkRangesFile50k as a process of its
// own: start, read the ranges file, netip.ParsePrefix each line, write the
// prefixes' text out. Nothing a compiler does can take less. With a third
// argument N it writes N bytes instead, the prefixes' lines over and over
// (the same formatting work per byte): the floor of a target whose output
// is N bytes.
const floorProgram = `package main

import (
	"bytes"
	"net/netip"
	"os"
	"strconv"
)

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	prefixes := make([]netip.Prefix, 0, bytes.Count(data, []byte{'\n'}))
	for line := range bytes.Lines(data) {
		p, err := netip.ParsePrefix(string(bytes.TrimSpace(line)))
		if err != nil {
			panic(err)
		}
		prefixes = append(prefixes, p)
	}
	size := len(data)
	if len(os.Args) > 3 {
		if size, err = strconv.Atoi(os.Args[3]); err != nil {
			panic(err)
		}
	}
	out := make([]byte, 0, size+64)
	for len(out) < size {
		for _, p := range prefixes {
			out = p.AppendTo(out)
			out = append(out, '\n')
			if len(out) >= size {
				break
			}
		}
	}
	if err := os.WriteFile(os.Args[2], out, 0o644); err != nil {
		panic(err)
	}
}
`

// ranges50kPolicy is the policy of BenchmarkRangesFile50k (compiler package):
// a provider of 50,000 non-adjacent /24s in a ranges_file, and two rules,
// UDP 19302 and TCP 443, from one /16 of agents.
const ranges50kPolicy = `policy "p50k" {}
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

// BenchmarkRangesFile50kProcess runs, in the same run and interleaved
// (rounds of: floor, then each command), the floor process and the
// turnwall binary's `validate` and `compile -t X` for each target on the
// 50,000-prefix policy, and reports for each the median wall time and CPU
// time (user and system, all threads), the medians of its ratios to the
// floor of the same round (x-floor, cpu-x-floor) and its peak resident
// memory. On a loaded machine the CPU ratio is the steadier figure. Each
// vendor target is also compared with a floor that writes as many bytes as
// that target's output (x-floor-out): the floor the issue defines as read,
// parse and write the output bytes.
// TURNWALL_BENCH_BASE=/path/to/turnwall adds the same runs of another build
// (base-*), to compare two versions on one machine state; a list (as in
// PATH) adds several (base-*, base2-*, ...).
func BenchmarkRangesFile50kProcess(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "turnwall")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	floorSrc := filepath.Join(dir, "floor.go")
	floorBin := filepath.Join(dir, "floor")
	if err := os.WriteFile(floorSrc, []byte(floorProgram), 0o644); err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", floorBin, floorSrc)
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build floor: %v\n%s", err, out)
	}
	var list strings.Builder
	for i := range 50_000 {
		a := 20<<24 + uint32(2*i)<<8
		fmt.Fprintf(&list, "%d.%d.%d.0/24\n", a>>24, a>>16&255, a>>8&255)
	}
	ranges := filepath.Join(dir, "big.txt")
	policy := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(ranges, []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte(ranges50kPolicy), 0o644); err != nil {
		b.Fatal(err)
	}
	type run struct {
		name string
		args []string
	}
	commands := func(prefix, bin string) []run {
		runs := []run{{prefix + "validate", []string{bin, "validate", policy}}}
		for _, t := range []string{"ir", "nftables", "asa", "panos", "fortios"} {
			runs = append(runs, run{prefix + t, []string{bin, "compile", "-t", t, "-o", filepath.Join(dir, prefix+"out."+t), policy}})
		}
		return runs
	}
	runs := []run{{"floor", []string{floorBin, ranges, filepath.Join(dir, "floor.out")}}}
	// The floor of each vendor target writes as many bytes as the target's
	// output (measured by a first run): floor-T, and T-x-floor-out.
	for _, t := range []string{"asa", "panos", "fortios"} {
		out := filepath.Join(dir, "size."+t)
		if msg, err := exec.Command(bin, "compile", "-t", t, "-o", out, policy).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", t, err, msg)
		}
		info, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, run{"floor-" + t, []string{floorBin, ranges, filepath.Join(dir, "floor.out."+t), fmt.Sprint(info.Size())}})
	}
	runs = append(runs, commands("", bin)...)
	if bases := os.Getenv("TURNWALL_BENCH_BASE"); bases != "" {
		for i, base := range filepath.SplitList(bases) {
			name := "base-"
			if i > 0 {
				name = fmt.Sprintf("base%d-", i+1)
			}
			runs = append(runs, commands(name, base)...)
		}
	}
	const rounds = 5
	times := map[string][]float64{}
	ratios := map[string][]float64{}
	cpus := map[string][]float64{}
	cpuRatios := map[string][]float64{}
	peak := map[string]int64{}
	outRatios := map[string][]float64{}
	for b.Loop() {
		for range rounds {
			var floor, floorCPU float64
			took1 := map[string]float64{}
			for _, r := range runs {
				cmd := exec.Command(r.args[0], r.args[1:]...)
				start := time.Now()
				out, err := cmd.CombinedOutput()
				took := time.Since(start).Seconds()
				if err != nil {
					b.Fatalf("%s: %v\n%s", r.name, err, out)
				}
				cpu := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak[r.name] {
					peak[r.name] = ru.Maxrss
				}
				if r.name == "floor" {
					floor, floorCPU = took, cpu
				}
				took1[r.name] = took
				target := r.name
				if strings.HasPrefix(target, "base") {
					_, target, _ = strings.Cut(target, "-") // base-T, base2-T, ...
				}
				if f, ok := took1["floor-"+target]; ok {
					outRatios[r.name] = append(outRatios[r.name], took/f)
				}
				times[r.name] = append(times[r.name], took)
				ratios[r.name] = append(ratios[r.name], took/floor)
				cpus[r.name] = append(cpus[r.name], cpu)
				if floorCPU > 0 {
					cpuRatios[r.name] = append(cpuRatios[r.name], cpu/floorCPU)
				}
			}
		}
	}
	for _, r := range runs {
		b.ReportMetric(median(times[r.name])*1000, r.name+"-ms")
		b.ReportMetric(median(cpus[r.name])*1000, r.name+"-cpu-ms")
		b.ReportMetric(float64(peak[r.name])/1024, r.name+"-peak-RSS-MiB")
		if r.name != "floor" && !strings.HasPrefix(r.name, "floor-") {
			b.ReportMetric(median(ratios[r.name]), r.name+"-x-floor")
			b.ReportMetric(median(cpuRatios[r.name]), r.name+"-cpu-x-floor")
		}
		if rs := outRatios[r.name]; len(rs) > 0 {
			b.ReportMetric(median(rs), r.name+"-x-floor-out")
		}
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkRangesFile50kTargets runs, in this process, what each command of
// BenchmarkRangesFile50kProcess runs after start-up (`validate` and
// `compile -t X -o FILE` on the 50,000-prefix policy): the figure to profile
// (-cpuprofile) for the part of the process that is not start-up.
func BenchmarkRangesFile50kTargets(b *testing.B) {
	dir := b.TempDir()
	var list strings.Builder
	for i := range 50_000 {
		a := 20<<24 + uint32(2*i)<<8
		fmt.Fprintf(&list, "%d.%d.%d.0/24\n", a>>24, a>>16&255, a>>8&255)
	}
	policy := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(policy, []byte(ranges50kPolicy), 0o644); err != nil {
		b.Fatal(err)
	}
	cases := [][]string{{"validate", policy}}
	for _, t := range []string{"ir", "nftables", "asa", "panos", "fortios"} {
		cases = append(cases, []string{"compile", "-t", t, "-o", filepath.Join(dir, "out."+t), policy})
	}
	for _, args := range cases {
		name := args[0]
		if name == "compile" {
			name = args[2]
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var stdout, stderr strings.Builder
				if code := run(args, nil, &stdout, &stderr); code != exitOK {
					b.Fatalf("exit %d\n%s", code, stderr.String())
				}
			}
		})
	}
}
