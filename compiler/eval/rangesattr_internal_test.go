package eval

import (
	"testing"

	"github.com/turnwall/turnwall/compiler/load"
)

// TestCanHideFileLists: a ranges_file list is replaced by an opaque value
// only when every reference to a block is a bare TYPE.NAME as a whole
// attribute value or an element of a list that is one.
func TestCanHideFileLists(t *testing.T) {
	const blocks = `
zone "w" { interface = "wan0" }
agents "a" {
  zone    = zone.w
  subnets = ["10.0.0.0/16"]
}
provider "p" {
  zone   = zone.w
  ranges = ranges_file("big.txt")
}
`
	for _, tc := range []struct {
		name, src string
		json      bool
		want      bool
	}{
		{"bare references", `rule "r" {
  from = [agents.a]
  to   = [provider.p, "192.0.2.1"]
  udp  = [3478]
}
relay "x" {
  zone  = zone.w
  peers = [provider.p]
}`, false, true},
		{"attribute of a block", `locals { n = provider.p.ranges }`, false, false},
		{"attribute in a rule", `rule "r" {
  to  = provider.p.ranges
  udp = [1]
}`, false, false},
		{"block in a local", `locals { all = [provider.p] }`, false, false},
		{"block in a function call", `policy "x" { description = jsonencode(provider.p) }`, false, false},
		{"block in a for", `rule "r" {
  to  = [for p in [provider.p] : p]
  udp = [1]
}`, false, false},
		{"block in a template", `policy "x" { description = "${provider.p.name}" }`, false, false},
		{"block in a conditional", `rule "r" {
  to  = true ? [provider.p] : []
  udp = [1]
}`, false, false},
		{"whole namespace", `rule "r" {
  to  = [provider]
  udp = [1]
}`, false, false},
		{"index", `rule "r" {
  to  = [provider.p["ranges"]]
  udp = [1]
}`, false, false},
		{"JSON syntax file", `{"policy": {"x": {}}}`, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "extra.hcl"
			if tc.json {
				name = "extra.hcl.json"
			}
			cfg, d := load.Sources(t.TempDir(), []load.Source{
				{Name: "main.hcl", Bytes: []byte(blocks)},
				{Name: name, Bytes: []byte(tc.src)},
			})
			if cfg == nil || cfg.SyntaxErrors {
				t.Fatalf("load: %v", d)
			}
			e := &evaluator{cfg: cfg}
			if got := e.canHideFileLists(); got != tc.want {
				t.Errorf("canHideFileLists = %v, want %v", got, tc.want)
			}
		})
	}
}
