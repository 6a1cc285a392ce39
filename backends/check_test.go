package backends_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/asa"
	"github.com/turnwall/turnwall/backends/coturn"
	"github.com/turnwall/turnwall/backends/fortios"
	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/backends/panos"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
)

// manyZones is a policy with n agents zones, each group served by one
// provider: three rules per group.
func manyZones(n int) string {
	var b strings.Builder
	b.WriteString(`policy "many" {}
zone "internet" { interface = "wan0" }
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
  turn   = { udp = [3478] }
  media  = { udp = ["16384-65535"] }
}
`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "zone \"z%d\" { interface = \"vlan%d\" }\nagents \"a%d\" {\n  zone    = zone.z%d\n  subnets = [\"10.%d.%d.0/24\"]\n}\n", i, i, i, i, i/256, i%256)
	}
	return b.String()
}

// TestCheckReproducers: what validate --strict used to pass and compile or
// the device then rejected is a TW213 error at the policy line, naming the
// target, and Emit of that target fails with the same constraint.
func TestCheckReproducers(t *testing.T) {
	all := []backends.Backend{asa.Backend{}, coturn.Backend{}, fortios.Backend{}, nftables.Backend{}, panos.Backend{}}
	for _, tc := range []struct {
		name, src, target, summary string
		line                       int
	}{
		{"ifnamsiz", `policy "t" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "averyverylongif01" }
`, "nftables", "interface name too long", 3},
		{"case-insensitive zones", `policy "t" {}
zone "agents" { interface = "vlan20" }
zone "Agents" { interface = "vlan21" }
`, "panos", "zone names collide", 2},
		{"400 zones", manyZones(400), "fortios", "policy ids exhausted", 0},
		{"realm with a space", `policy "t" {}
zone "dmz" { interface = "dmz0" }
relay "r" {
  zone      = zone.dmz
  addresses = ["198.51.100.10"]
  realm     = "example com"
}
`, "coturn", "realm cannot be written", 6},
		{"certificate path with a space", `policy "t" {}
zone "dmz" { interface = "dmz0" }
relay "r" {
  zone      = zone.dmz
  addresses = ["198.51.100.10"]
  realm     = "example.com"
  lab_only  = true
  tls_cert  = "/etc/tls/my cert.pem"
  tls_key   = "/etc/tls/key.pem"
  listen { tls = 5349 }
}
`, "coturn", "certificate path cannot be written", 8},
		{"nameif", `policy "t" {}
zone "agents" { interface = "ethernet1/1" }
`, "asa", "interface name", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			res := compiler.Compile(dir, compiler.Options{})
			if res.HasErrors() {
				t.Fatalf("policy has errors before the targets' checks: %v", res.Diags)
			}
			var found bool
			for _, d := range backends.Check(all, nil, res.Program, dir) {
				if diag.CodeOf(d) != diag.TargetConstraint || !strings.HasPrefix(d.Summary, "Target "+tc.target+": ") {
					continue
				}
				found = true
				if !strings.HasSuffix(d.Summary, tc.summary) {
					t.Errorf("summary %q, want %q", d.Summary, tc.summary)
				}
				if tc.line > 0 && d.Subject.Start.Line != tc.line {
					t.Errorf("line %d, want %d", d.Subject.Start.Line, tc.line)
				}
				if d.Subject.Filename != filepath.Join(dir, "policy.hcl") || d.Subject.Start.Line == 0 {
					t.Errorf("position %v", d.Subject)
				}
			}
			if !found {
				t.Fatalf("no TW213 for %s", tc.target)
			}
			for _, b := range all {
				if b.Name() != tc.target {
					continue
				}
				files, err := b.Emit(res.Program, backends.Options{})
				if err == nil || !strings.Contains(err.Error(), tc.summary) {
					t.Errorf("%s emitted %d files, error %v", b.Name(), len(files), err)
				}
			}
		})
	}
}
