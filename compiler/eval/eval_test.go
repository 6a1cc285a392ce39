package eval_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/load"
)

const zones = `
policy "t" {}
zone "a" { interface = "vlan1" }
zone "w" { interface = "wan0" }
`

func evaluate(t *testing.T, dir, src string, vars map[string]string) (*eval.Policy, []string) {
	t.Helper()
	cfg, diags := load.Sources(dir, []load.Source{{Name: filepath.Join(dir, "p.hcl"), Bytes: []byte(zones + src)}})
	pol, d := eval.Evaluate(cfg, eval.Options{Vars: vars})
	diags = append(diags, d...)
	var msgs []string
	for _, d := range diags {
		msgs = append(msgs, string(diag.CodeOf(d))+" "+d.Summary+": "+d.Detail+posOf(d))
	}
	return pol, msgs
}

func TestFunctionsAndReferences(t *testing.T) {
	pol, msgs := evaluate(t, t.TempDir(), `
variable "base" { default = "10.64.0.0/12" }
locals {
  vlan   = cidrsubnet(var.base, 4, 3)
  gw     = cidrhost(local.vlan, 1)
  last   = cidrhost(local.vlan, -2)
  v6     = cidrsubnet("2001:db8::/32", 16, 255)
  inside = cidrcontains(var.base, local.vlan)
  mask   = cidrnetmask(local.vlan)
  names  = [for n in ["b", "a"] : upper(n)]
}
agents "g" {
  zone        = zone.a
  subnets     = [local.vlan, local.gw, local.last, local.v6]
  description = "${local.mask} ${local.inside} ${join(",", sort(local.names))}"
}
`, nil)
	if len(msgs) > 0 {
		t.Fatalf("unexpected diagnostics: %v", msgs)
	}
	got := pol.Agents[0]
	var subnets []string
	for _, e := range got.Subnets {
		for _, p := range e.Prefixes {
			subnets = append(subnets, p.String())
		}
	}
	want := "10.67.0.0/16 10.67.0.1/32 10.67.255.254/32 2001:db8:ff::/48"
	if strings.Join(subnets, " ") != want {
		t.Errorf("subnets = %v, want %s", subnets, want)
	}
	if got.Description != "255.255.0.0 true A,B" {
		t.Errorf("description = %q", got.Description)
	}
	if got.Zone != "a" {
		t.Errorf("zone = %q", got.Zone)
	}
}

func TestVariablesFromOptions(t *testing.T) {
	src := `
variable "subnet" { type = string }
variable "ports" {
  type    = list(number)
  default = [3478]
}
agents "g" {
  zone    = zone.a
  subnets = [var.subnet]
}
provider "p" {
  zone   = zone.w
  ranges = ["192.0.2.0/24"]
  turn   = { udp = var.ports }
}
`
	pol, msgs := evaluate(t, t.TempDir(), src, map[string]string{"subnet": "10.9.0.0/16", "ports": "[3478, 3479]"})
	if len(msgs) > 0 {
		t.Fatalf("unexpected diagnostics: %v", msgs)
	}
	if got := pol.Agents[0].Subnets[0].Prefixes[0].String(); got != "10.9.0.0/16" {
		t.Errorf("subnet = %s", got)
	}
	if n := len(pol.Providers[0].TURN.UDP); n != 2 {
		t.Errorf("turn udp ports = %d, want 2", n)
	}

	_, msgs = evaluate(t, t.TempDir(), src, nil)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], string(diag.MissingValue)) {
		t.Errorf("no value for var.subnet: got %v", msgs)
	}
	_, msgs = evaluate(t, t.TempDir(), src, map[string]string{"subnet": "10.9.0.0/16", "ports": "[\"x\"]"})
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], string(diag.InvalidValue)) {
		t.Errorf("bad var.ports: got %v", msgs)
	}
	_, msgs = evaluate(t, t.TempDir(), src, map[string]string{"subnet": "10.9.0.0/16", "sbunet": "x"})
	if len(msgs) != 1 || !strings.Contains(msgs[0], `Did you mean "subnet"?`) {
		t.Errorf("undeclared --var: got %v", msgs)
	}
}

func TestRangesFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.json"), []byte(`["192.0.2.0/24", "198.51.100.7", "203.0.113.0-203.0.113.127"]`), 0o644)
	os.WriteFile(filepath.Join(dir, "r.txt"), []byte("# comment\n\n2001:db8::/32  # trailing\n10.1.2.3/8\n"), 0o644)
	pol, msgs := evaluate(t, dir, `
provider "p" {
  zone   = zone.w
  ranges = concat(ranges_file("r.json"), ranges_file("r.txt"), ranges_file("r.txt"))
  https  = true
}
`, nil)
	// The host-bits warning is reported once although the file is read twice,
	// at its own line in the ranges file.
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], string(diag.HostBitsSet)) {
		t.Fatalf("diagnostics = %v", msgs)
	}
	var got []string
	for _, e := range pol.Providers[0].Ranges {
		for _, p := range e.Prefixes {
			got = append(got, p.String())
		}
	}
	want := "192.0.2.0/24 198.51.100.7/32 203.0.113.0/25 2001:db8::/32 10.0.0.0/8 2001:db8::/32 10.0.0.0/8"
	if strings.Join(got, " ") != want {
		t.Errorf("ranges = %v\nwant %s", got, want)
	}

	os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("192.0.2.0/24\n\n  nonsense\n10.0.0.9-10.0.0.1\n"), 0o644)
	cfg, _ := load.Sources(dir, []load.Source{{Name: filepath.Join(dir, "p.hcl"), Bytes: []byte(zones + `
provider "p" {
  zone   = zone.w
  ranges = ranges_file("bad.txt")
  https  = true
}`)}})
	_, diags := eval.Evaluate(cfg, eval.Options{})
	var lines []string
	for _, d := range diags {
		if d.Subject != nil && filepath.Base(d.Subject.Filename) == "bad.txt" {
			lines = append(lines, string(diag.CodeOf(d))+"@"+strconv.Itoa(d.Subject.Start.Line)+":"+strconv.Itoa(d.Subject.Start.Column))
		}
	}
	if strings.Join(lines, " ") != "TW103@3:3 TW106@4:1" {
		t.Errorf("ranges file diagnostics = %v", lines)
	}
	if !diags.HasErrors() {
		t.Error("bad ranges file must be an error")
	}
}

func posOf(d *hcl.Diagnostic) string {
	if d.Subject == nil {
		return ""
	}
	return " (at " + d.Subject.String() + ")"
}
