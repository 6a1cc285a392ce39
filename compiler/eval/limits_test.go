package eval_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func doubling(n int) string {
	var b strings.Builder
	b.WriteString("  s0 = \"xxxxxxxxxxxxxxxx\"\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  s%d = \"${local.s%d}${local.s%d}\"\n", i, i-1, i-1)
	}
	return b.String()
}

// TestLimits: each way an expression can grow without bound is refused
// with TW119, quickly, at the expression.
func TestLimits(t *testing.T) {
	for name, locals := range map[string]string{
		"setproduct":       "x = setproduct(range(1000), range(1000), range(1000))",
		"range":            "x = range(100000)",
		"doubling":         doubling(40),
		"template":         doubling(12) + "x = \"" + strings.Repeat("${local.s12}", 2000) + "\"",
		"for-nested":       "x = [for a in range(1000) : [for b in range(1000) : [for c in range(1000) : a]]]",
		"for-over-local":   doubling(0) + "l = range(1000)\n  x = [for a in local.l : [for b in local.l : [for c in local.l : a]]]",
		"format-width":     `x = format("%999999999d", 1)`,
		"format-precision": `x = format("%.999999999f", 1)`,
		"formatlist":       doubling(12) + "x = formatlist(\"%s%s\", [for i in range(1000): local.s12], local.s12)",
		"join":             doubling(13) + "x = join(local.s13, range(1000))",
		"replace":          doubling(12) + `x = replace(local.s12, "", local.s12)`,
		"indent":           doubling(12) + `x = indent(100000000, local.s12)`,
		"jsondecode":       `x = jsondecode("` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `")`,
		"splat":            "l = range(1000)\n  x = [for a in local.l : [for b in local.l : [for c in local.l : a]]][*][*]",
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, msgs := evaluate(t, t.TempDir(), "locals {\n  "+locals+"\n}\n", nil)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
			found := false
			for _, m := range msgs {
				if strings.HasPrefix(m, "TW119 ") {
					found = true
				}
			}
			if !found {
				t.Errorf("no TW119: %v", msgs)
			}
		})
	}
}

// TestLimitsLeaveRealPoliciesAlone: what real policies do stays allowed:
// a 100,000-entry ranges file iterated, small nested ranges, formats.
func TestLimitsLeaveRealPoliciesAlone(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 100_000; i++ {
		fmt.Fprintf(&b, "%d.%d.%d.0/24\n", 60+i/65536, (i/256)%256, i%256)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, msgs := evaluate(t, dir, `
locals {
  big    = ranges_file("big.txt")
  tagged = [for r in local.big : r if r != "0.0.0.0/0"]
  pairs  = [for a in range(4) : [for b in range(a) : format("%02d-%02d", a, b)]]
  ports  = [for p in range(16) : 49152 + p * 1024]
  names  = join(",", [for i in range(200) : format("host%03d", i)])
}
provider "p" {
  zone   = zone.w
  ranges = local.tagged
  https  = true
  description = substr(local.names, 0, 20)
}
`, nil)
	if len(msgs) > 0 {
		t.Fatalf("unexpected diagnostics: %v", msgs)
	}
	if len(pol.Providers) != 1 {
		t.Fatal("no provider")
	}
}
