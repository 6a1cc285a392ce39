package verify

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Planning runs without root: these tests build no namespace.

func planOf(t *testing.T, path string) (*ir.Program, *Plan, error) {
	t.Helper()
	res := compiler.Compile(path, compiler.Options{})
	if res.Lowered == nil {
		t.Fatalf("%s: %v", path, res.Diags)
	}
	p, err := PlanTopology(res.Lowered)
	return res.Lowered, p, err
}

// checkPlan asserts what every plan must hold: hosts carry addresses of
// their own block's set (Outside: of no set), no address is on two hosts,
// every interface's transfer networks hold the gateway and its hosts'
// transfer addresses and no host's policy address.
func checkPlan(t *testing.T, prog *ir.Program, p *Plan) {
	t.Helper()
	owner := map[netip.Addr]string{}
	for _, h := range p.Hosts {
		set := prog.AddressSet(setOf(prog, h))
		if set == nil {
			t.Fatalf("%s: no address set", h.Name())
		}
		inSet := func(a netip.Addr) bool { return set.IPSet().Contains(a) }
		for _, a := range []netip.Addr{h.V4, h.V6, h.Media4, h.Media6} {
			if a.IsValid() && !inSet(a) {
				t.Errorf("%s: %s is not in its set %s", h.Name(), a, set.Name)
			}
		}
		for _, x := range h.Extra {
			if !x.Range.Contains(x.Addr) || !inSet(x.Addr) {
				t.Errorf("%s: extra %s not in %s", h.Name(), x.Addr, x.Range)
			}
		}
		if h.Outside.IsValid() && len(overlapping(prog, netip.PrefixFrom(h.Outside, 32), wideBits4)) > 0 {
			t.Errorf("%s: outside address %s is in a policy range", h.Name(), h.Outside)
		}
		for _, a := range h.planned() {
			if o, ok := owner[a]; ok {
				t.Errorf("%s is on %s and %s", a, o, h.Name())
			}
			owner[a] = h.Name()
		}
		in := h.iface
		if h.dev != in.Dev || !in.Net4.Contains(h.transfer4) || !in.Net6.Contains(h.transfer6) || h.transfer4 == in.GW4 || h.transfer6 == in.GW6 {
			t.Errorf("%s: transfer %s %s outside %s %s or the gateway's", h.Name(), h.transfer4, h.transfer6, in.Net4, in.Net6)
		}
		if (h.Via != "") != (h.Kind == "agents" && in.Dev != p.Ifaces[indexOfFirst(p, in.Zone)].Dev) {
			t.Errorf("%s: Via %q behind %s", h.Name(), h.Via, in.Dev)
		}
	}
	nets := map[netip.Prefix]string{}
	for _, in := range p.Ifaces {
		for _, n := range []netip.Prefix{in.Net4, in.Net6} {
			if o, ok := nets[n]; ok {
				t.Errorf("transfer network %s on %s and %s", n, o, in.Dev)
			}
			nets[n] = in.Dev
			for a, h := range owner {
				if n.Contains(a) {
					t.Errorf("transfer network %s of %s holds %s of %s", n, in.Dev, a, h)
				}
			}
		}
		if in.GW4 != in.Net4.Addr().Next() || in.GW6 != in.Net6.Addr().Next() {
			t.Errorf("%s: gateway %s %s", in.Dev, in.GW4, in.GW6)
		}
	}
	// Every agents group has its host behind the first interface, in the
	// policy's order.
	var agents []string
	for _, h := range p.Hosts {
		if h.Kind == "agents" && h.Via == "" {
			agents = append(agents, h.Block)
		}
	}
	var want []string
	for _, g := range prog.Agents {
		want = append(want, g.Name)
	}
	if strings.Join(agents, ",") != strings.Join(want, ",") {
		t.Errorf("agents hosts %v, want %v", agents, want)
	}
}

func indexOfFirst(p *Plan, zone string) int {
	for i, in := range p.Ifaces {
		if in.Zone == zone {
			return i
		}
	}
	return -1
}

func TestPlanExamples(t *testing.T) {
	paths, _ := filepath.Glob("../../policies/*")
	more, _ := filepath.Glob("../../testdata/golden/cases/*")
	verifyCases, _ := filepath.Glob("../../testdata/verify/*")
	for _, path := range append(append(paths, more...), verifyCases...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			prog, p, err := planOf(t, path)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, prog, p)
			// Every interface of every zone is planned, named as the
			// policy names it (patterns made concrete).
			n := 0
			for _, z := range prog.Zones {
				n += len(z.Interfaces)
			}
			if len(p.Ifaces) != n {
				t.Errorf("%d interfaces planned, the policy has %d", len(p.Ifaces), n)
			}
			// The shipped examples' transfer networks are outside every
			// policy range.
			if !strings.Contains(path, "deny-everything") {
				for _, in := range p.Ifaces {
					if overlaps(prog, in.Net4) || overlaps(prog, in.Net6) {
						t.Errorf("%s: transfer network %s %s overlaps a policy range", in.Dev, in.Net4, in.Net6)
					}
				}
			}
		})
	}
}

// The plan of one example, address by address: what the docs promise.
func TestPlanPrivateRelay(t *testing.T) {
	_, p, err := planOf(t, "../../policies/private-relay")
	if err != nil {
		t.Fatal(err)
	}
	var ifaces []string
	for _, in := range p.Ifaces {
		ifaces = append(ifaces, in.Zone+" "+in.Dev+" "+in.Net4.String()+" "+in.Net6.String()+" gw "+in.GW4.String())
	}
	wantIfaces := []string{
		"agents vlan30 100.64.0.0/24 fd7e:7a11::/64 gw 100.64.0.1",
		"dmz dmz0 100.64.1.0/24 fd7e:7a11:0:1::/64 gw 100.64.1.1",
		"internet wan0 100.64.2.0/24 fd7e:7a11:0:2::/64 gw 100.64.2.1",
	}
	if strings.Join(ifaces, "\n") != strings.Join(wantIfaces, "\n") {
		t.Errorf("interfaces:\n%s\nwant:\n%s", strings.Join(ifaces, "\n"), strings.Join(wantIfaces, "\n"))
	}
	var hosts []string
	for _, h := range p.Hosts {
		hosts = append(hosts, strings.Join([]string{h.Name(), h.port, h.V4.String(), h.V6.String(), h.Media4.String(), h.Outside.String(), h.transfer4.String(), h.transfer6.String()}, " "))
	}
	wantHosts := []string{
		`agents "billing" h1 10.30.128.10 invalid IP invalid IP invalid IP 100.64.0.10 fd7e:7a11::a`,
		`agents "claims" h2 10.30.0.10 fd00:30::a invalid IP invalid IP 100.64.0.11 fd7e:7a11::b`,
		`provider "genesys" h1 52.129.96.10 invalid IP 52.129.96.11 192.0.2.77 100.64.2.10 fd7e:7a11:0:2::a`,
		`relay "dmz" h1 192.0.2.10 2001:db8:30::10 invalid IP invalid IP 100.64.1.10 fd7e:7a11:0:1::a`,
	}
	if strings.Join(hosts, "\n") != strings.Join(wantHosts, "\n") {
		t.Errorf("hosts:\n%s\nwant:\n%s", strings.Join(hosts, "\n"), strings.Join(wantHosts, "\n"))
	}
	var extra []string
	for _, x := range p.Hosts[2].Extra {
		extra = append(extra, x.Addr.String()+" in "+x.Range.String())
	}
	if got, want := strings.Join(extra, ", "), "136.245.64.10 in 136.245.64.0/18, 167.234.48.10 in 167.234.48.0/20, 169.150.104.10 in 169.150.104.0/21"; got != want {
		t.Errorf("provider's further ranges: %s, want %s", got, want)
	}
}

// A deny to everything (0.0.0.0/0 and ::/0) overlaps every transfer network
// the lab knows; such a wide range holds no lab host, so the usual networks
// are taken (before, planning failed naming nothing).
func TestPlanDenyEverything(t *testing.T) {
	prog, p, err := planOf(t, "../../testdata/verify/deny-everything")
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, prog, p)
	for i, in := range p.Ifaces {
		if in.Net4.String() != []string{"100.64.0.0/24", "100.64.1.0/24", "100.64.2.0/24"}[i] || !strings.HasPrefix(in.Net6.String(), "fd7e:7a11:") {
			t.Errorf("%s: %s %s", in.Dev, in.Net4, in.Net6)
		}
	}
	for _, h := range p.Hosts {
		if h.Kind == "provider" && !h.Outside.IsValid() {
			t.Errorf("%s has no address outside its ranges", h.Name())
		}
	}
}

// Where no transfer network is left, planning names the blocks whose
// ranges are in the way, with their lines.
func TestPlanNoTransferNetwork(t *testing.T) {
	dir := t.TempDir()
	src := `policy "crowded" {}

zone "agents" { interface = "vlan30" }
zone "internet" { interface = "wan0" }

agents "floor" {
  zone    = zone.agents
  subnets = ["192.168.0.0/24"]
}

provider "carrier" {
  zone   = zone.internet
  ranges = ["100.64.0.0/10", "198.18.0.0/15", "10.0.0.0/8"]
  https  = true
}

rule "trunk" {
  from = agents.floor
  to   = ["172.16.0.0/12"]
  udp  = [5060]
}
`
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := planOf(t, dir)
	if err == nil {
		t.Fatal("planned although every transfer network overlaps the policy")
	}
	for _, want := range []string{`no IPv4 transfer network for interface "vlan30" of zone "agents"`, "100.64.0.0/24", `provider "carrier" (`, "policy.hcl:11)", `rule "trunk" (`, "policy.hcl:17)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
