package asa

import (
	"bytes"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

var _ backends.Traceable = Backend{}

// TestASA: golden files, determinism, the property test against ir.Allows on
// the re-read output (egress zone left to routing), and the hostile test.
func TestASA(t *testing.T) {
	backendtest.CheckTarget(t, Backend{}, backends.Options{}, backendtest.EquivOptions{IgnoreEgressZone: true, QoSPerPacket: true, QoSClassOnly: true})
}

// TestHostileNames: backendtest.CheckHostile gives every zone hostile
// interface names too; this target rejects those (a nameif names a device
// interface and cannot be rewritten), so CheckHostile returns early without
// checking anything. Here the same hostile programs keep plain interface
// names, so that every other hostile name and text is really emitted.
func TestHostileNames(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			hostile, benign := backendtest.HostilePair(c.Program)
			if _, err := (Backend{}).Emit(hostile, backends.Options{}); err == nil {
				t.Fatal("hostile interface names were accepted")
			}
			for i := range hostile.Zones {
				hostile.Zones[i].Interfaces = benign.Zones[i].Interfaces
			}
			hf := backendtest.Emit(t, Backend{}, hostile, backends.Options{})
			bf := backendtest.Emit(t, Backend{}, benign, backends.Options{})
			if h, b := backendtest.CountLines(hf[0].Data), backendtest.CountLines(bf[0].Data); h != b {
				t.Fatalf("hostile text changed the structure: %d lines against %d", h, b)
			}
			checkSafeText(t, hf[0].Data)
			cfg, err := Backend{}.Reader().Read(hf)
			if err != nil {
				t.Fatalf("re-reading the hostile output: %v", err)
			}
			backendtest.CheckEquivalent(t, hostile, cfg, backendtest.EquivOptions{IgnoreEgressZone: true}, 1500)
		})
	}
}

// checkSafeText: ASCII only, no '?', every line a statement the reader knows.
func checkSafeText(t *testing.T, data []byte) {
	t.Helper()
	for i, l := range strings.Split(string(data), "\n") {
		for _, r := range l {
			if r < 0x20 || r >= 0x7f || r == '?' {
				t.Errorf("line %d: character %q in %q", i+1, r, l)
			}
		}
	}
}

// program is a small two-zone IR for the table tests.
func program() *ir.Program {
	p := &ir.Program{
		Policy: ir.Policy{Name: "t", DefaultAction: ir.Deny, LogDefault: true, Source: ir.Source{File: "policy.hcl", Line: 1}},
		Zones: []ir.Zone{
			{Name: "inside", Interfaces: []string{"inside", "inside2"}},
			{Name: "outside", Interfaces: []string{"outside"}},
		},
		AddressSets: []ir.AddressSet{
			{Name: "agents", V4: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}, V6: []netip.Prefix{netip.MustParsePrefix("fd00:20::/48")}},
			{Name: "provider", V4: []netip.Prefix{netip.MustParsePrefix("52.129.96.0/20"), netip.MustParsePrefix("198.51.100.10/32")}},
			{Name: "stun", FQDNs: []string{"stun.l.google.com"}},
		},
		Services: []ir.ServiceSet{
			{Name: "https", Entries: []ir.ServiceEntry{{Proto: ir.TCP, Ports: []ir.PortRange{{First: 443, Last: 443}}}}},
			{Name: "sip", Entries: []ir.ServiceEntry{{Proto: ir.UDP, Ports: []ir.PortRange{{First: 5060, Last: 5060}}}, {Proto: ir.TCP, Ports: []ir.PortRange{{First: 5061, Last: 5061}}}}},
			{Name: "relay-out", Entries: []ir.ServiceEntry{{Proto: ir.UDP, SrcPorts: []ir.PortRange{{First: 49152, Last: 65535}}}}},
		},
		Rules: []ir.Rule{
			{Name: "block", Action: ir.Deny, FromZone: "", Src: "agents", Dst: "provider", Service: "sip", Log: true,
				Comment: "no SIP", Origin: ir.Origin{Source: ir.Source{File: "policy.hcl", Line: 7}}},
			{Name: "web", Action: ir.Allow, FromZone: "inside", ToZone: "outside", Src: "agents", Dst: "provider", Service: "https",
				Comment: "HTTPS/WSS signalling", Origin: ir.Origin{Source: ir.Source{File: "policy.hcl", Line: 12}}},
			{Name: "stun", Action: ir.Allow, FromZone: "inside", Src: "agents", Dst: "stun", Service: "sip",
				Origin: ir.Origin{Source: ir.Source{File: "policy.hcl", Line: 20}}},
			{Name: "relay", Action: ir.Allow, FromZone: "outside", Src: "provider", Dst: "agents", Service: "relay-out",
				Origin: ir.Origin{Source: ir.Source{File: "policy.hcl", Line: 30}}},
		},
	}
	p.Index()
	return p
}

func emit(t *testing.T, p *ir.Program, params map[string]string) string {
	t.Helper()
	files, err := Backend{}.Emit(p, backends.Options{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return string(files[0].Data)
}

var aclNameOf = regexp.MustCompile(`(?m)^access-group (\S+) in interface (\S+)$`)

// aclNames maps interface to bound ACL.
func aclNames(out string) map[string]string {
	m := map[string]string{}
	for _, s := range aclNameOf.FindAllStringSubmatch(out, -1) {
		m[s[2]] = s[1]
	}
	return m
}

func TestVersionedACLName(t *testing.T) {
	base := aclNames(emit(t, program(), nil))
	if !regexp.MustCompile(`^TW-inside-[0-9a-f]{8}$`).MatchString(base["inside"]) {
		t.Fatalf("ACL name %q", base["inside"])
	}
	if base["inside"] != base["inside2"] {
		t.Fatalf("one zone, two ACLs: %v", base)
	}
	if again := aclNames(emit(t, program(), nil)); again["inside"] != base["inside"] || again["outside"] != base["outside"] {
		t.Fatalf("same content, different names: %v then %v", base, again)
	}
	changes := map[string]func(p *ir.Program){
		"port":    func(p *ir.Program) { p.Services[0].Entries[0].Ports[0] = ir.PortRange{First: 8443, Last: 8443} },
		"address": func(p *ir.Program) { p.AddressSets[1].V4[0] = netip.MustParsePrefix("52.129.112.0/20") },
		"comment": func(p *ir.Program) { p.Rules[1].Comment = "another remark" },
		"log":     func(p *ir.Program) { p.Rules[1].Log = true },
		"order":   func(p *ir.Program) { p.Rules[1], p.Rules[2] = p.Rules[2], p.Rules[1] },
		"default": func(p *ir.Program) { p.Policy.DefaultAction = ir.Allow },
	}
	for name, change := range changes {
		p := program()
		change(p)
		p.Index()
		got := aclNames(emit(t, p, nil))
		if got["inside"] == base["inside"] {
			t.Errorf("%s: the inside ACL kept its name %s", name, got["inside"])
		}
		// The web rule, its comment and the stun rule are inside-only: the
		// outside ACL does not change with them.
		if name == "comment" || name == "order" || name == "port" {
			if got["outside"] != base["outside"] {
				t.Errorf("%s: the outside ACL changed name without a change to it", name)
			}
		}
	}
}

// TestSwapOrder: every ACL and object is defined before it is used, the
// access-group lines come after every definition, clear lines come last and
// never name a bound ACL.
func TestSwapOrder(t *testing.T) {
	out := emit(t, program(), map[string]string{"replaces": "outside_access_in, inside_access_in,outside_access_in"})
	lines := strings.Split(out, "\n")
	lastDef, firstGroup, lastGroup, firstClear := -1, -1, -1, -1
	var clears []string
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "access-list "), strings.HasPrefix(l, "object"), strings.HasPrefix(l, " "):
			lastDef = i
			if firstGroup >= 0 {
				t.Errorf("line %d %q after an access-group line", i+1, l)
			}
		case strings.HasPrefix(l, "access-group "):
			if firstGroup < 0 {
				firstGroup = i
			}
			lastGroup = i
			if firstClear >= 0 {
				t.Errorf("access-group at line %d after a clear", i+1)
			}
		case strings.HasPrefix(l, "clear configure access-list "):
			if firstClear < 0 {
				firstClear = i
			}
			clears = append(clears, strings.TrimPrefix(l, "clear configure access-list "))
		}
	}
	if lastDef < 0 || firstGroup < lastDef || lastGroup < 0 || firstClear < lastGroup {
		t.Fatalf("order: last definition %d, access-groups %d-%d, first clear %d", lastDef, firstGroup, lastGroup, firstClear)
	}
	if strings.Join(clears, ",") != "outside_access_in,inside_access_in" {
		t.Fatalf("clears %v", clears)
	}
	if _, err := (Backend{}).Reader().Read([]backends.File{{Name: FileName, Data: []byte(out)}}); err != nil {
		t.Fatalf("the output does not re-read: %v", err)
	}
}

// TestReplaces: a name in replaces that is one of the new names means that
// zone is unchanged: it is neither redefined (that would append to the live
// ACL) nor cleared; its objects are not re-entered.
func TestReplaces(t *testing.T) {
	names := aclNames(emit(t, program(), nil))
	out := emit(t, program(), map[string]string{"replaces": "old_in," + names["outside"]})
	if strings.Contains(out, "access-list "+names["outside"]+" ") {
		t.Errorf("the unchanged ACL %s is redefined", names["outside"])
	}
	if strings.Contains(out, "clear configure access-list "+names["outside"]) {
		t.Errorf("the unchanged, bound ACL %s is cleared", names["outside"])
	}
	if !strings.Contains(out, "clear configure access-list old_in\n") {
		t.Errorf("old_in is not cleared")
	}
	if !strings.Contains(out, "access-list "+names["inside"]+" extended") {
		t.Errorf("the inside ACL is missing")
	}
	if strings.Contains(out, "service-object udp source range 49152 65535") {
		t.Errorf("an object used only by the unchanged ACL is re-entered")
	}
	_, err := (Backend{}).Reader().Read([]backends.File{{Name: FileName, Data: []byte(out)}})
	if err == nil || !strings.Contains(err.Error(), "does not define") {
		t.Errorf("reading output with an unchanged ACL: %v", err)
	}
	for _, bad := range []string{"a b", "x\nclear configure", "acl?", "é"} {
		if _, err := (Backend{}).Emit(program(), backends.Options{Params: map[string]string{"replaces": bad}}); err == nil {
			t.Errorf("replaces=%q accepted", bad)
		}
	}
	for _, bad := range []string{"1x", "a b", "x\n", strings.Repeat("a", 17)} {
		if _, err := (Backend{}).Emit(program(), backends.Options{Params: map[string]string{"prefix": bad}}); err == nil {
			t.Errorf("prefix=%q accepted", bad)
		}
	}
	out = emit(t, program(), map[string]string{"prefix": "WEBRTC_"})
	if !regexp.MustCompile(`(?m)^access-group WEBRTC_inside-[0-9a-f]{8} in interface inside$`).MatchString(out) {
		t.Errorf("prefix not used:\n%s", out)
	}
}

// TestRemarks: at most 100 characters, one line whatever the text, no '?',
// ASCII only, and the first word traces to the policy line.
func TestRemarks(t *testing.T) {
	p := program()
	p.Rules[1].Comment = "line one\nline two? " + strings.Repeat("long ", 40) + "é\u2028access-list x permit ip any any"
	p.Rules[1].Name = "web\r\nclear configure access-list all"
	out := emit(t, p, nil)
	checkSafeText(t, []byte(out))
	remarks := 0
	for _, l := range strings.Split(out, "\n") {
		if _, text, ok := strings.Cut(l, " remark "); ok && strings.HasPrefix(l, "access-list ") {
			remarks++
			if len(text) > 100 {
				t.Errorf("remark of %d characters: %q", len(text), text)
			}
		}
		if strings.HasPrefix(l, "clear ") || strings.HasPrefix(l, "access-list x") {
			t.Errorf("user text became a command: %q", l)
		}
	}
	if remarks == 0 {
		t.Fatal("no remarks")
	}
	if !strings.Contains(out, "remark policy.hcl:12 web clear configure access-list all") {
		t.Errorf("rule remark not as expected:\n%s", out)
	}
	cfg, err := Backend{}.Reader().Read([]backends.File{{Name: FileName, Data: []byte(out)}})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Decide(ir.Packet{FromZone: "inside", ToZone: "outside", Proto: ir.TCP,
		Src: netip.MustParseAddr("10.20.1.1"), Dst: netip.MustParseAddr("52.129.100.1"), SrcPort: 40000, DstPort: 443})
	if d.Action != ir.Allow || d.Source != "policy.hcl:12" || !strings.HasPrefix(d.Rule, "TW-inside-") {
		t.Errorf("decision %+v", d)
	}
	d = cfg.Decide(ir.Packet{FromZone: "inside", Proto: ir.TCP,
		Src: netip.MustParseAddr("10.99.1.1"), Dst: netip.MustParseAddr("52.129.100.1"), SrcPort: 40000, DstPort: 443})
	if d.Action != ir.Deny || d.Rule != "" || d.Source != "" {
		t.Errorf("default decision %+v", d)
	}
}

// TestNumericPorts: every port is a number, never a name such as https or sip.
func TestNumericPorts(t *testing.T) {
	out := emit(t, program(), nil)
	ops := regexp.MustCompile(`\b(eq|neq|lt|gt) (\S+)|\brange (\S+) (\S+)`)
	num := regexp.MustCompile(`^[0-9]+$`)
	n := 0
	for _, m := range ops.FindAllStringSubmatch(out, -1) {
		for _, v := range []string{m[2], m[3], m[4]} {
			if v != "" && !num.MatchString(v) {
				t.Errorf("port %q is not a number in %q", v, m[0])
			}
		}
		n++
	}
	for _, want := range []string{
		"service-object tcp destination eq 443",
		"service-object udp destination eq 5060",
		"service-object udp source range 49152 65535",
	} {
		if !strings.Contains(out, " "+want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	if n < 4 {
		t.Errorf("only %d port operators", n)
	}
}

// TestObjects: FQDN objects in both families, hosts, masks and IPv6 prefixes,
// names that the namer had to change, and group names that follow content.
func TestObjects(t *testing.T) {
	p := program()
	p.AddressSets[0].Name = "any" // a keyword as an IR name
	for i := range p.Rules {
		if p.Rules[i].Src == "agents" {
			p.Rules[i].Src = "any"
		}
		if p.Rules[i].Dst == "agents" {
			p.Rules[i].Dst = "any"
		}
	}
	p.Index()
	out := emit(t, p, nil)
	for _, want := range []string{
		"object network TW-fqdn4-stun.l.google.com\n fqdn v4 stun.l.google.com\n",
		"object network TW-fqdn6-stun.l.google.com\n fqdn v6 stun.l.google.com\n",
		" network-object object TW-fqdn4-stun.l.google.com\n network-object object TW-fqdn6-stun.l.google.com\n",
		" network-object 10.20.0.0 255.255.0.0\n network-object fd00:20::/48\n",
		" network-object host 198.51.100.10\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^object-group network TW-net-any-[0-9a-f]{8}$`).MatchString(out) {
		t.Errorf("group for set any not found")
	}
	// Same members, same group name; one member more, another name.
	name := regexp.MustCompile(`(?m)^object-group network (TW-net-provider-[0-9a-f]{8})$`)
	before := name.FindStringSubmatch(out)[1]
	p.AddressSets[1].V4 = append(p.AddressSets[1].V4, netip.MustParsePrefix("203.0.113.0/24"))
	after := name.FindStringSubmatch(emit(t, p, nil))[1]
	if before == after {
		t.Errorf("group %s kept its name with a new member", before)
	}
	long := program()
	long.AddressSets[0].Name = strings.Repeat("very-long-set-name.", 8)
	long.Rules[1].Src = long.AddressSets[0].Name
	long.Index()
	for _, l := range strings.Split(emit(t, long, nil), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && (f[0] == "object" || f[0] == "object-group") && len(f[2]) > 64 {
			t.Errorf("name of %d characters: %s", len(f[2]), f[2])
		}
	}
}

// TestRejects: what cannot be expressed on an ASA is an error, not output.
func TestRejects(t *testing.T) {
	cases := map[string]func(p *ir.Program){
		"no interfaces":      func(p *ir.Program) { p.Zones[1].Interfaces = nil },
		"bad nameif":         func(p *ir.Program) { p.Zones[1].Interfaces = []string{"out side"} },
		"shared nameif":      func(p *ir.Program) { p.Zones[1].Interfaces = []string{"INSIDE"} },
		"bad fqdn":           func(p *ir.Program) { p.AddressSets[2].FQDNs = []string{"stun.example.com\nclear"} },
		"unknown zone":       func(p *ir.Program) { p.Rules[0].FromZone = "dmz" },
		"unknown format":     nil,
		"unknown default":    func(p *ir.Program) { p.Policy.DefaultAction = "maybe" },
		"no zones at all":    func(p *ir.Program) { p.Zones = nil; p.Rules = nil },
		"zone defined twice": func(p *ir.Program) { p.Zones[1].Name = "inside" },
	}
	for name, change := range cases {
		p := program()
		opts := backends.Options{}
		if change == nil {
			opts.Format = "xml"
		} else {
			change(p)
		}
		if _, err := (Backend{}).Emit(p, opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestReaderRejects: the reader refuses what turnwall never writes, and the
// unsafe orders it exists to catch.
func TestReaderRejects(t *testing.T) {
	good := emit(t, program(), nil)
	zoneMap := ": turnwall zone \"z\" interfaces in0\n"
	cases := map[string]string{
		"unknown statement":  good + "write memory\n",
		"port name":          zoneMap + "access-list A extended permit tcp any any eq https\naccess-group A in interface in0\n",
		"edit while bound":   zoneMap + "access-list A extended permit ip any any\naccess-group A in interface in0\naccess-list A extended deny ip any any\n",
		"clear while bound":  zoneMap + "access-list A extended permit ip any any\naccess-group A in interface in0\nclear configure access-list A\n",
		"use before define":  zoneMap + "access-list A extended permit ip object-group G any\naccess-group A in interface in0\n",
		"edit object in use": zoneMap + "object-group network G\n network-object host 10.0.0.1\naccess-list A extended permit ip object-group G any\nobject-group network G\n network-object host 10.0.0.2\naccess-group A in interface in0\n",
		"unbound zone":       zoneMap + "access-list A extended permit ip any any\n",
		"no zone map":        "access-list A extended permit ip any any\naccess-group A in interface in0\n",
		"long remark":        zoneMap + "access-list A remark " + strings.Repeat("x", 101) + "\naccess-list A extended permit ip any any\naccess-group A in interface in0\n",
		"indented stray":     zoneMap + " network-object host 10.0.0.1\n",
		"host bits":          zoneMap + "access-list A extended permit ip 10.0.0.1 255.255.255.0 any\naccess-group A in interface in0\n",
		"shared namespace":   zoneMap + "object network X\n host 10.0.0.1\nobject-group network X\n",
	}
	for name, text := range cases {
		_, err := Backend{}.Reader().Read([]backends.File{{Name: FileName, Data: []byte(text)}})
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "unknown statement" && !strings.Contains(err.Error(), FileName+":") {
			t.Errorf("%s: error does not name the line: %v", name, err)
		}
	}
	// A hand-written config in the same subset reads and decides.
	text := zoneMap + "object-group service S\n service-object tcp-udp destination range 3478 3479\n" +
		"access-list A remark f.hcl:3 r\naccess-list A extended deny tcp any6 any eq 3478\n" +
		"access-list A extended permit object-group S any any log\naccess-group A in interface IN0\n"
	cfg, err := Backend{}.Reader().Read([]backends.File{{Name: FileName, Data: []byte(text)}})
	if err != nil {
		t.Fatal(err)
	}
	v6 := ir.Packet{FromZone: "z", Proto: ir.TCP, Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"), DstPort: 3478}
	if d := cfg.Decide(v6); d.Action != ir.Deny || d.Rule != "A line 2" || d.Source != "f.hcl:3" {
		t.Errorf("v6 %+v", d)
	}
	v4 := v6
	v4.Src, v4.Dst = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if d := cfg.Decide(v4); d.Action != ir.Allow || d.Rule != "A line 3" {
		t.Errorf("v4 %+v", d)
	}
	v4.DstPort = 3480
	if d := cfg.Decide(v4); d.Action != ir.Deny || d.Rule != "" {
		t.Errorf("implicit deny %+v", d)
	}
	if d := cfg.Decide(ir.Packet{FromZone: "elsewhere", Proto: ir.UDP}); d.Action != ir.Deny {
		t.Errorf("unknown zone %+v", d)
	}
}

// TestGoldenReadable: a few facts an ASA engineer checks in the golden output.
func TestGoldenReadable(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		out := backendtest.Emit(t, Backend{}, c.Program, backends.Options{})[0].Data
		if !bytes.HasPrefix(out, []byte(": turnwall asa.cfg")) {
			t.Errorf("%s: no header", c.Name)
		}
		if bytes.Contains(out, []byte("\t")) || bytes.Contains(out, []byte(" \n")) {
			t.Errorf("%s: tabs or trailing spaces", c.Name)
		}
	}
}
