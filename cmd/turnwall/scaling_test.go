package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/load"
)

// scalingPolicy has a provider with n separate /24 ranges and `groups` agents
// groups that all use it.
func scalingPolicy(n, groups int) []byte {
	var b strings.Builder
	b.WriteString("policy \"s\" {}\nzone \"a\" { interface = \"vlan20\" }\nzone \"w\" { interface = \"wan0\" }\n")
	for g := 0; g < groups; g++ {
		fmt.Fprintf(&b, "agents \"g%d\" {\n  zone = zone.a\n  subnets = [\"10.%d.0.0/16\"]\n}\n", g, 20+g)
	}
	b.WriteString("provider \"p\" {\n  zone = zone.w\n  https = true\n  turn = { udp = [3478], tcp = [3478] }\n  media = { udp = [\"16384-65535\"] }\n  ranges = [\n")
	for i := 0; i < n; i++ {
		j := 2 * i // every other /24: nothing aggregates
		fmt.Fprintf(&b, "    \"%d.%d.%d.0/24\",\n", 60+j/65536, (j/256)%256, j%256)
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

// TestOutputScalesWithPrefixes: eight agents groups using the same provider
// produce eight times the rules, not eight copies of its ranges. Every
// target's output must grow by far less than the rule count.
func TestOutputScalesWithPrefixes(t *testing.T) {
	size := func(groups int) map[string]int {
		dir := t.TempDir()
		res := compiler.CompileSources(dir, []load.Source{{Name: filepath.Join(dir, "p.hcl"), Bytes: scalingPolicy(3000, groups)}}, compiler.Options{})
		if res.HasErrors() {
			t.Fatal(res.Diags)
		}
		out := map[string]int{}
		reg := registry()
		for _, name := range reg.Names() {
			b, _ := reg.Get(name)
			files, err := b.Emit(res.Program, backends.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				out[name] += len(f.Data)
			}
		}
		return out
	}
	one, eight := size(1), size(8)
	for name, n := range one {
		if n == 0 {
			continue
		}
		ratio := float64(eight[name]) / float64(n)
		t.Logf("%s: %d bytes with 1 group, %d with 8 (x%.2f)", name, n, eight[name], ratio)
		if ratio > 1.5 {
			t.Errorf("%s output grows x%.2f for 8 times the rules: it repeats the provider's ranges per rule", name, ratio)
		}
	}
}
