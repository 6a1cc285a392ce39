package verify_test

import (
	"context"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/verify"
)

func compile(t *testing.T, path string) *ir.Program {
	t.Helper()
	res := compiler.Compile(path, compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("%s: %v", path, res.Diags)
	}
	res.Program.Index()
	return res.Program
}

// matrixOf builds the lab of want, applies the ruleset compiled from got and
// runs want's matrix.
func matrixOf(t *testing.T, want, got *ir.Program) []verify.Cell {
	t.Helper()
	rs, err := nftables.Build(got, "turnwall")
	if err != nil {
		t.Fatal(err)
	}
	l, err := verify.New(want)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := l.Apply(rs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	flows := l.Matrix()
	cells := l.Run(ctx, flows, nil)
	if len(cells) != len(flows) {
		t.Fatalf("ran %d of %d flows", len(cells), len(flows))
	}
	return cells
}

func TestExamplePoliciesPass(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	paths, _ := filepath.Glob("../../policies/*")
	paths = append(paths, "../../testdata/golden/cases/issue-example.hcl")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			p := compile(t, path)
			cells := matrixOf(t, p, p)
			pass, drop := 0, 0
			for _, c := range cells {
				if !c.OK {
					t.Errorf("%s (%s): expected %s, got %s [%s %s]", c.Name, c.Why, c.Expected, c.Got, c.Rule, c.Line)
				}
				if c.Expected == "pass" {
					pass++
				} else {
					drop++
				}
			}
			if pass == 0 || drop == 0 {
				t.Errorf("matrix has %d passing and %d dropped flows; want both", pass, drop)
			}
		})
	}
}

// A rule deleted from the IR (the relay's return path to the agents, the
// one-way-audio trap) shows up as exactly those cells failing.
func TestDeletedRuleFails(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	want := compile(t, "../../testdata/golden/cases/issue-example.hcl")
	broken := compile(t, "../../testdata/golden/cases/issue-example.hcl")
	const gone = "corp.floor3.relay-return"
	var rules []ir.Rule
	for _, r := range broken.Rules {
		if r.Name != gone {
			rules = append(rules, r)
		}
	}
	if len(rules) == len(broken.Rules) {
		t.Fatalf("no rule %s", gone)
	}
	broken.Rules = rules
	failed := 0
	for _, c := range matrixOf(t, want, broken) {
		if c.OK {
			continue
		}
		failed++
		if c.Rule != gone || c.Expected != "pass" || c.Got != "drop" || !strings.HasPrefix(c.Line, "issue-example.hcl:") {
			t.Errorf("unexpected failing cell: %+v", c)
		}
	}
	if failed == 0 {
		t.Error("no cell failed with the relay-return rule deleted")
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	l, err := verify.New(compile(t, "../../policies/private-relay"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := netns.WaitGone(2 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// With source NAT on the gateway (as most sites have) every expectation of
// the matrix still holds: the ruleset filters on the agents' real addresses
// before the NAT, and replies find their way back.
func TestSourceNAT(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	for _, path := range []string{"../../policies/genesys-cloud", "../../policies/private-relay"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p := compile(t, path)
			rs, err := nftables.Build(p, "turnwall")
			if err != nil {
				t.Fatal(err)
			}
			l, err := verify.New(p)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.SourceNAT(); err != nil {
				t.Fatal(err)
			}
			if err := l.Apply(rs); err != nil {
				t.Fatal(err)
			}
			out, err := l.GW.Exec(context.Background(), "nft", "list", "table", "inet", "turnwall-lab-nat")
			if err != nil || !strings.Contains(string(out), "masquerade") {
				t.Fatalf("no NAT table: %v\n%s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			flows := l.Matrix()
			cells := l.Run(ctx, flows, nil)
			if len(cells) != len(flows) {
				t.Fatalf("ran %d of %d flows", len(cells), len(flows))
			}
			for _, c := range cells {
				if !c.OK {
					t.Errorf("%s (%s): expected %s, got %s", c.Name, c.Why, c.Expected, c.Got)
				}
				// The far side saw the gateway, not the agent.
				if c.OK && c.Expected == "pass" && c.Flow.From.Kind == "agents" && c.Flow.To.Kind == "provider" && c.Flow.Proto == ir.UDP {
					if c.Peer == c.Flow.Src || !c.Peer.IsValid() {
						t.Errorf("%s: provider saw %v, want the gateway's address", c.Name, c.Peer)
					}
				}
			}
		})
	}
}

// A zone with two interfaces: agents hosts sit behind both, and a ruleset
// that forgets the second interface fails exactly the flows through it.
func TestEveryInterfaceCarriesTraffic(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	want := compile(t, "../../policies/microsoft-teams")
	broken := compile(t, "../../policies/microsoft-teams")
	var zone *ir.Zone
	for i := range broken.Zones {
		if len(broken.Zones[i].Interfaces) > 1 {
			zone = &broken.Zones[i]
		}
	}
	if zone == nil {
		t.Fatal("the example has no zone with two interfaces")
	}
	second := zone.Interfaces[1]
	zone.Interfaces = zone.Interfaces[:1]
	failed, via := 0, 0
	for _, c := range matrixOf(t, want, broken) {
		through := strings.Contains(c.Name, "via "+second)
		if through {
			via++
		}
		if c.OK {
			continue
		}
		failed++
		if !through || c.Expected != "pass" || c.Got != "drop" {
			t.Errorf("unexpected failing cell: %s (%s): expected %s, got %s", c.Name, c.Why, c.Expected, c.Got)
		}
	}
	if via == 0 || failed == 0 {
		t.Errorf("%d cells through %s, %d failed; want some of each", via, second, failed)
	}
}

// Address sets only rules name (a SIP trunk's `to`, a relay's literal peers)
// get hosts of their own, so their flows are exercised too; overlapping sets
// (a /27 and a /28 in it) get distinct addresses.
func TestRuleDestinationsGetHosts(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	p := compile(t, "../../testdata/golden/cases/rules-and-functions.hcl")
	want := map[string]bool{
		`agents "voice" 10.67.0.10:* -> addresses "rule.trunk.dst" 203.0.113.10:5060`:                false,
		`agents "voice" 10.67.0.10:* -> addresses "rule.trunk-again.dst" 203.0.113.11:5060`:          false,
		`relay "lab" 192.0.2.1:* -> addresses "relay.lab.peer-addresses" *:40000`:                    false,
		`addresses "relay.lab.peer-addresses" *:* -> relay "lab" 192.0.2.1:40000`:                    false,
		`agents "voice" via eth2 10.67.0.11:* -> addresses "rule.trunk.dst" 203.0.113.10:5060`:       false,
		`agents "voice" via eth2 10.67.0.11:* -> addresses "rule.trunk-again.dst" 203.0.113.11:5060`: false,
	}
	for _, c := range matrixOf(t, p, p) {
		if !c.OK {
			t.Errorf("%s (%s): expected %s, got %s", c.Name, c.Why, c.Expected, c.Got)
		}
		for pat := range want {
			if ok, _ := path.Match(pat, strings.TrimPrefix(strings.TrimPrefix(c.Name, "udp "), "tcp ")); ok && c.Expected == "pass" {
				want[pat] = true
			}
		}
	}
	for pat, seen := range want {
		if !seen {
			t.Errorf("no passing cell like %s", pat)
		}
	}
}

// Flows reach the further ranges of a block too (the last one always): a
// ruleset whose provider set lost its last range (a truncated element list)
// fails exactly the cells to that range.
func TestEveryRangeSampled(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	want := compile(t, "../../policies/genesys-cloud")
	broken := compile(t, "../../policies/genesys-cloud")
	var set *ir.AddressSet
	for i := range broken.AddressSets {
		if broken.AddressSets[i].Name == broken.Providers[0].Addresses {
			set = &broken.AddressSets[i]
		}
	}
	if set == nil || len(set.V4) < 2 {
		t.Fatalf("provider set: %+v", set)
	}
	last := set.V4[len(set.V4)-1]
	set.V4 = set.V4[:len(set.V4)-1]
	broken.Index()
	failed, toLast := 0, 0
	for _, c := range matrixOf(t, want, broken) {
		in := c.Flow.Dst.IsValid() && last.Contains(c.Flow.Dst)
		if in && c.Expected == "pass" {
			toLast++
		}
		if c.OK {
			continue
		}
		failed++
		if !in || c.Expected != "pass" || c.Got != "drop" {
			t.Errorf("unexpected failing cell: %s (%s): expected %s, got %s", c.Name, c.Why, c.Expected, c.Got)
		}
	}
	if toLast == 0 || failed != toLast {
		t.Errorf("%d passing cells to %s, %d failed; want them all failed", toLast, last, failed)
	}
}
