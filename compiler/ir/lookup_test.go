package ir_test

import (
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler/ir"
)

// TestRuleSets: the one lookup every target uses names the rule, its policy
// line and the missing set; CanMatch is false when a set or the service is
// empty.
func TestRuleSets(t *testing.T) {
	p := testProgram()
	p.AddressSets = append(p.AddressSets, ir.AddressSet{Name: "empty"})
	p.Services = append(p.Services, ir.ServiceSet{Name: "none"})
	p.Index()
	at := ir.Origin{Source: ir.Source{File: "policy.hcl", Line: 7}}
	for _, tc := range []struct {
		rule     ir.Rule
		err      string
		canMatch bool
	}{
		{ir.Rule{Name: "ok", Src: "agents", Dst: "provider", Service: p.Rules[0].Service, Origin: at}, "", true},
		{ir.Rule{Name: "no-src", Src: "nope", Dst: "provider", Service: p.Rules[0].Service, Origin: at}, `rule "no-src" (policy.hcl:7): address set "nope" is not in the program`, false},
		{ir.Rule{Name: "no-svc", Src: "agents", Dst: "provider", Service: "nope", Origin: at}, `rule "no-svc" (policy.hcl:7): service set "nope" is not in the program`, false},
		{ir.Rule{Name: "empty-dst", Src: "agents", Dst: "empty", Service: p.Rules[0].Service}, "", false},
		{ir.Rule{Name: "empty-svc", Src: "agents", Dst: "provider", Service: "none"}, "", false},
	} {
		sets, err := p.RuleSets(&tc.rule)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: error %v, want %s", tc.rule.Name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.rule.Name, err)
		}
		if sets.CanMatch() != tc.canMatch {
			t.Errorf("%s: CanMatch %v", tc.rule.Name, sets.CanMatch())
		}
	}
}

func TestRelayAddrsAndPath(t *testing.T) {
	p := testProgram()
	p.AddressSets = append(p.AddressSets, ir.AddressSet{Name: "net", V4: prefixes("198.51.100.0/24")})
	p.Index()
	if got, err := p.RelayAddrs(&ir.Relay{Name: "r", Addresses: "relay"}); err != nil || len(got) != 1 || got[0].String() != "198.51.100.10" {
		t.Errorf("RelayAddrs: %v %v", got, err)
	}
	if _, err := p.RelayAddrs(&ir.Relay{Name: "r", Addresses: "net"}); err == nil || !strings.Contains(err.Error(), "is a network") {
		t.Errorf("network relay address: %v", err)
	}
	if got := p.Path("certs/a.pem"); got != "" {
		t.Errorf("relative path without a root: %q", got)
	}
	p.Root = "/srv/policy"
	if got := p.Path("certs/a.pem"); got != "/srv/policy/certs/a.pem" {
		t.Errorf("Path: %q", got)
	}
	if got := p.Path("/etc/a.pem"); got != "/etc/a.pem" {
		t.Errorf("absolute Path: %q", got)
	}
}
