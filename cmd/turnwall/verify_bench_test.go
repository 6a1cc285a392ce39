package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/verify"
)

// BenchmarkVerify runs `turnwall verify` on every shipped example: the flow
// matrix alone (--no-calls, the baseline) and the whole verify (relays,
// ICE server checks, two calls per agents group with one second of media
// each), in the same run. Reported: seconds per verify and the ratio of the
// whole to the matrix alone. The budget is 30 s per example on a 2-core
// machine.
func BenchmarkVerify(b *testing.B) {
	if err := netns.Available(); err != nil {
		b.Skip(err)
	}
	paths, _ := filepath.Glob("../../policies/*")
	for _, path := range paths {
		b.Run(filepath.Base(path), func(b *testing.B) {
			var matrix, full time.Duration
			n := 0
			for b.Loop() {
				for _, extra := range []string{"--no-calls", ""} {
					args := []string{"verify", path, "--format", "json", "-q"}
					if extra != "" {
						args = append(args, extra)
					}
					start := time.Now()
					code, out, errOut := runCLI(args...)
					took := time.Since(start)
					var rep verify.Report
					if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !rep.OK {
						b.Fatalf("%v: exit %d %v\n%s", args, code, err, errOut)
					}
					if extra != "" {
						matrix += took
					} else {
						full += took
					}
				}
				n++
			}
			b.ReportMetric(matrix.Seconds()/float64(n), "s/matrix")
			b.ReportMetric(full.Seconds()/float64(n), "s/verify")
			b.ReportMetric(full.Seconds()/matrix.Seconds(), "verify/matrix")
		})
	}
}
