package panos

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// bigProvider is smallProgram with a provider of n ranges (100.64.0.0/24,
// 100.64.1.0/24, ...).
func bigProvider(n int) *ir.Program {
	p := smallProgram()
	s := p.AddressSet("provider")
	s.V4 = nil
	for i := 0; i < n; i++ {
		s.V4 = append(s.V4, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + i>>8), byte(i), 0}), 24))
	}
	p.Index()
	return p
}

// A one-prefix change on a 10,000-range provider is a script of at most 3
// lines, in both directions, and proved on the box model.
func TestOnePrefixChange(t *testing.T) {
	old := bigProvider(10000)
	new := clone(old)
	s := new.AddressSet("provider")
	s.V4 = append(s.V4[:500:500], s.V4[501:]...) // one range fewer
	new.Index()
	opts := backends.Options{Params: placed}
	for _, c := range []struct {
		name     string
		from, to *ir.Program
		want     string
	}{
		{"remove", old, new, "delete address-group tw-provider static tw-net-100.65.244.0_24\ndelete address tw-net-100.65.244.0_24\n"},
		{"add", new, old, "set address tw-net-100.65.244.0_24 ip-netmask 100.65.244.0/24\nset address-group tw-provider static [ tw-net-100.65.244.0_24 ]\n"},
	} {
		got := string(script(t, c.from, c.to, opts))
		if got != c.want {
			t.Errorf("%s one range: script\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
	st := checkPair(t, "10000-range provider", old, new, opts, 400)
	t.Logf("one-prefix change on a 10000-range provider: %d lines, backout %d lines", st.implLines, st.backoutLines)
}

func TestNoDefaultRuleUnlessAsked(t *testing.T) {
	p := smallProgram()
	out := emit(t, p, backends.Options{})
	if strings.Contains(out, "tw-default") || strings.Contains(out, "source any destination any") {
		t.Errorf("the default output has an any-to-any rule:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || !strings.HasPrefix(fields[2], "tw-") && fields[1] != "rulebase" {
			t.Errorf("line names something without turnwall's prefix: %q", line)
		}
		if fields[1] == "rulebase" && !strings.HasPrefix(fields[4], "tw-") {
			t.Errorf("rule without turnwall's prefix: %q", line)
		}
	}
	// Placed on a box: packets no turnwall rule matches are the box's.
	m := box(t, p, backends.Options{Params: map[string]string{"position": "top"}})
	web := ir.Packet{FromZone: "agents", ToZone: "internet", Src: netip.MustParseAddr("10.20.1.1"), Dst: netip.MustParseAddr("192.0.2.80"), Proto: ir.TCP, SrcPort: 40000, DstPort: 80}
	if d := m.Config().Decide(web); d.Action != ir.Allow || d.Rule != "corp-web" {
		t.Errorf("web browsing on the agent VLAN: %+v, want the box's corp-web rule", d)
	}
	if p.Allows(web).Action != ir.Deny {
		t.Fatal("the policy should deny it by default")
	}
}

func TestPlacement(t *testing.T) {
	p := smallProgram()
	params := func(kv ...string) backends.Options {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return backends.Options{Params: m}
	}
	out := emit(t, p, params("position", "after:allow-dns", "zones", "agents=trust,dmz=dmz,internet=untrust"))
	if !strings.Contains(out, "move rulebase security rules tw-block-printer after allow-dns\n") ||
		!strings.Contains(out, "move rulebase security rules tw-signalling after tw-block-printer\n") {
		t.Errorf("position after:allow-dns not honoured:\n%s", out)
	}
	if !strings.Contains(out, " from trust to untrust ") || strings.Contains(out, " from agents ") {
		t.Errorf("zone map not honoured:\n%s", out)
	}
	dg := emit(t, p, params("device-group", "branch-fw"))
	for _, line := range strings.Split(strings.TrimSpace(dg), "\n") {
		if !strings.HasPrefix(line, "set device-group branch-fw ") && !strings.HasPrefix(line, "move device-group branch-fw pre-rulebase ") {
			t.Errorf("line outside the device group: %q", line)
		}
	}
	if !strings.Contains(dg, "set device-group branch-fw pre-rulebase security rules tw-signalling ") {
		t.Errorf("rules not in the pre-rulebase:\n%s", dg)
	}
	m, err := NewModel(params("device-group", "branch-fw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply([]byte(dg), nil); err != nil {
		t.Fatalf("device group script does not apply: %v", err)
	}

	// The box refuses a position naming a rule it does not have, and the
	// model says which.
	m = box(t, nil, backends.Options{})
	err = m.Apply([]byte(emit(t, p, params("position", "before:no-such-rule"))), nil)
	if err == nil || !strings.Contains(err.Error(), `"no-such-rule", which does not exist`) {
		t.Errorf("position naming no rule: %v", err)
	}

	for _, bad := range []map[string]string{
		{"position": "middle"}, {"position": "before:"}, {"position": "after:tw-signalling"}, {"position": "top:x"},
		{"default-rule": "maybe"}, {"zones": "agents"}, {"zones": "agents=tr ust"}, {"zones": "agents=a,agents=b"},
		{"device-group": "bad group"}, {"object-prefix": "bad prefix"},
	} {
		if _, err := (Backend{}).Emit(p, backends.Options{Params: bad}); err == nil {
			t.Errorf("params %v accepted", bad)
		} else if !strings.Contains(err.Error(), "panos.") {
			t.Errorf("params %v: error does not name the parameter: %v", bad, err)
		}
	}
	if _, err := (Backend{}).Emit(p, backends.Options{Format: FormatXML, Params: map[string]string{"device-group": "dg"}}); err == nil {
		t.Error("xml form for a device group accepted")
	}
	if _, err := (Backend{}).Change(nil, p, backends.Options{Params: map[string]string{"rule-prefix": ""}}); err == nil {
		t.Error("a change script without an ownership prefix accepted")
	}

	// A zone map that leaves a used zone out is a constraint at the zone.
	p.Zones[1].Source = ir.Source{File: "zones.hcl", Line: 7, Col: 3}
	cs := Backend{}.Check(p, params("zones", "agents=trust,internet=untrust"))
	if len(cs) != 1 || cs[0].At.Line != 7 || !strings.Contains(cs[0].Detail, `"dmz"`) || !strings.Contains(cs[0].Detail, "dmz=PANZONE") {
		t.Errorf("zone map without dmz: %+v", cs)
	}
	if _, err := (Backend{}).Emit(p, params("zones", "agents=trust,internet=untrust")); err == nil || !strings.Contains(err.Error(), "zones.hcl:7") {
		t.Errorf("Emit with a zone missing from the map: %v", err)
	}
}
