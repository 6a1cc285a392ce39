package compiler_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler"
)

// TestRangesFileValueKinds: an address attribute that is just a
// ranges_file call compiles the same whether its list is hidden behind an
// opaque value (no expression can see it), kept as a list (a local reads
// the attribute) or built by an expression: the same IR, and the same
// diagnostics at the same file:line:col.
func TestRangesFileValueKinds(t *testing.T) {
	files := map[string]string{
		"big.txt":    "# provider ranges\n52.0.0.0/24\n\n  52.0.2.0/24  # trailing comment\n52.0.4.7/24\n52.0.9.1-52.0.9.20\n2600:1f00::/40\n198.51.100.7\n",
		"agents.txt": `["10.20.0.0/16", "fd00:20::1/48"]`,
		"stun.txt":   "203.0.113.5\n",
		"relay.txt":  "192.0.2.10\n2001:db8::10\n",
		// overlaps.txt puts an agent subnet inside the provider's ranges.
		"overlaps.txt": "10.20.0.0/16\n52.0.2.128/25\n",
	}
	const policy = `policy "p" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "wan0" }
agents "floor" {
  zone    = zone.agents
  subnets = AGENTS
}
provider "big" {
  zone           = zone.internet
  ranges         = ranges_file("big.txt")
  https          = true
  turn           = { udp = [3478] }
  stun_addresses = ranges_file("stun.txt")
}
relay "r" {
  zone      = zone.internet
  addresses = ranges_file("relay.txt")
  realm     = "example.com"
  peers     = [provider.big, agents.floor]
}
rule "x" {
  from = [agents.floor]
  to   = [provider.big, "192.0.2.0/24"]
  udp  = [19302]
}
`
	variants := map[string]string{
		"opaque": policy,
		// A local reading an attribute keeps every list a list.
		"list": policy + "locals {\n  n = length(provider.big.ranges) + length(agents.floor.subnets)\n}\n",
	}
	for _, agents := range []string{
		`ranges_file("agents.txt")`,
		`ranges_file("overlaps.txt")`,
		`["10.20.0.5/16", "fd00:20::/48"]`,
		`["10.20.0.0/16", "52.0.2.128/25", "not-an-address"]`,
	} {
		t.Run(agents, func(t *testing.T) {
			got := map[string]string{}
			for name, src := range variants {
				dir := t.TempDir()
				for f, data := range files {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				src = strings.ReplaceAll(src, "AGENTS", agents)
				if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				res := compiler.Compile(dir, compiler.Options{})
				var b strings.Builder
				for _, d := range res.Diags {
					fmt.Fprintf(&b, "%v %s %s: %s: %s\n", d.Severity, filepath.Base(d.Subject.Filename), d.Subject, d.Summary, d.Detail)
				}
				if res.Lowered != nil {
					ir, err := json.MarshalIndent(res.Lowered, "", " ")
					if err != nil {
						t.Fatal(err)
					}
					b.Write(ir)
				}
				got[name] = strings.ReplaceAll(b.String(), dir, "DIR")
			}
			if got["opaque"] != got["list"] {
				t.Errorf("opaque and list values compile differently:\n--- opaque\n%s\n--- list\n%s", got["opaque"], got["list"])
			}
			want := map[string][]string{
				`ranges_file("agents.txt")`:                           {"big.txt:5,1-12", "Prefix has host bits set", "agents.txt:1,19-32"},
				`ranges_file("overlaps.txt")`:                         {"overlaps the addresses of provider"},
				`["10.20.0.5/16", "fd00:20::/48"]`:                    {"policy.hcl:6,14-28: Prefix has host bits set"},
				`["10.20.0.0/16", "52.0.2.128/25", "not-an-address"]`: {"policy.hcl:6,47-63: Invalid address range"},
			}[agents]
			for _, w := range want {
				if !strings.Contains(got["opaque"], w) {
					t.Errorf("missing %q in:\n%s", w, got["opaque"])
				}
			}
		})
	}
}
