package fortios

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/testkit"
)

var _ backends.Traceable = Backend{}

// TestTarget is the shared test: golden files, determinism, the property
// test on the re-read output, and the injection test.
func TestTarget(t *testing.T) {
	backendtest.CheckTarget(t, Backend{}, backends.Options{}, backendtest.EquivOptions{})
}

// TestHostileText works around a gap in backendtest.CheckHostile for this
// target: HostilePair makes interface names hostile too, and Emit rejects
// them (they are device names and cannot be rewritten), so CheckHostile stops
// at its first step and checks nothing else. Here the hostile program keeps
// plain interface names and everything else hostile (zone, set, service and
// rule names, comments, source file names), and the whole check runs: same
// line count as the benign twin, the output re-reads, and it decides as the
// IR, down to the policy line each decision traces to.
func TestHostileText(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			hostile, benign := backendtest.HostilePair(c.Program)
			for i := range hostile.Zones {
				hostile.Zones[i].Interfaces = benign.Zones[i].Interfaces
			}
			hf := backendtest.Emit(t, Backend{}, hostile, backends.Options{})
			bf := backendtest.Emit(t, Backend{}, benign, backends.Options{})
			if hl, bl := backendtest.CountLines(hf[0].Data), backendtest.CountLines(bf[0].Data); hl != bl {
				t.Fatalf("hostile text changed the output's structure: %d lines against %d", hl, bl)
			}
			for n, line := range strings.Split(string(hf[0].Data), "\n") {
				if strings.ContainsAny(line, "\r\\?'$") || strings.Contains(line, "\u2028") || strings.Contains(line, "\u2029") {
					t.Errorf("line %d carries a character the CLI interprets: %q", n+1, line)
				}
			}
			cfg, err := Backend{}.Reader().Read(hf)
			if err != nil {
				t.Fatalf("re-reading the hostile output: %v", err)
			}
			backendtest.CheckEquivalent(t, hostile, cfg, backendtest.EquivOptions{CheckSource: true}, 1500)
		})
	}
}

// TestHostileInterfaceRejected: an interface name is not rewritten (the
// policy would bind to another interface or none); it is refused.
func TestHostileInterfaceRejected(t *testing.T) {
	for _, bad := range []string{"wan0\nend", `port1"`, "port 1", "any", "ANY", "", strings.Repeat("x", 36), "vlan\\20"} {
		p := smallProgram()
		p.Zones[0].Interfaces = []string{bad}
		_, err := Backend{}.Emit(p, backends.Options{})
		if err == nil || !strings.Contains(err.Error(), "interface") {
			t.Errorf("interface %q: got error %v, want a refusal", bad, err)
		}
	}
	p := smallProgram()
	p.Zones[1].Interfaces = append(p.Zones[1].Interfaces, p.Zones[0].Interfaces[0])
	if _, err := (Backend{}).Emit(p, backends.Options{}); err == nil || !strings.Contains(err.Error(), "zones") {
		t.Errorf("an interface in two zones: got %v", err)
	}
}

func TestWorkspace(t *testing.T) {
	p := smallProgram()
	files := backendtest.Emit(t, Backend{}, p, backends.Options{Params: map[string]string{"workspace": "true"}})
	lines := strings.Split(strings.TrimSuffix(string(files[0].Data), "\n"), "\n")
	if lines[0] != "execute config-transaction start" || lines[len(lines)-1] != "execute config-transaction commit" {
		t.Fatalf("workspace wrapper missing: first %q, last %q", lines[0], lines[len(lines)-1])
	}
	plain := backendtest.Emit(t, Backend{}, p, backends.Options{})
	if got, want := strings.Join(lines[1:len(lines)-1], "\n")+"\n", string(plain[0].Data); got != want {
		t.Errorf("the wrapped output differs from the plain one inside the wrapper")
	}
	if strings.Contains(string(plain[0].Data), "config-transaction") {
		t.Errorf("workspace=false (the default) must not open a transaction")
	}
	cfg, err := Backend{}.Reader().Read(files)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 500)
	if _, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"workspace": "yes please"}}); err == nil {
		t.Error("workspace=\"yes please\" accepted")
	}
	// A transaction must open first and commit last.
	bad := "execute config-transaction commit\n" + string(plain[0].Data)
	if _, err := (Backend{}).Reader().Read([]backends.File{{Name: fileName, Data: []byte(bad)}}); err == nil {
		t.Error("reader accepted a commit before any start")
	}
}

func TestPolicyIDRange(t *testing.T) {
	p := smallProgram() // 3 rules + the default = 4 ids
	for _, tc := range []struct {
		ids  string
		fail string
	}{
		{"10000-10999", ""},
		{"7-10", ""},
		{"7-9", "needs 4 policy ids"},
		{"5-5", "needs 4 policy ids"},
		{"10-1", "LOW-HIGH"},
		{"0-100", "LOW-HIGH"},
		{"1-4294967295", "LOW-HIGH"},
		{"abc", "LOW-HIGH"},
		{"100", "LOW-HIGH"},
	} {
		_, err := Backend{}.Emit(p, backends.Options{Params: map[string]string{"policy-ids": tc.ids}})
		switch {
		case tc.fail == "" && err != nil:
			t.Errorf("policy-ids %s: %v", tc.ids, err)
		case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
			t.Errorf("policy-ids %s: got %v, want an error with %q", tc.ids, err, tc.fail)
		}
	}
}

var editID = regexp.MustCompile(`(?m)^    edit (\d+)\n        set name "([^"]+)"`)

func policyIDs(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range editID.FindAllStringSubmatch(string(data), -1) {
		out[m[2]] = m[1]
	}
	return out
}

// TestPolicyIDStability: each rule's id comes from its name, the default
// (when emitted) takes HIGH; the same policy gives the same ids; a rule
// added at the front or at the end leaves every other id in place; move
// lines pin the IR order.
func TestPolicyIDStability(t *testing.T) {
	p := smallProgram()
	opts := backends.Options{Params: map[string]string{"policy-ids": "500-599", "default-rule": "emit"}}
	files := backendtest.Emit(t, Backend{}, p, opts)
	ids := policyIDs(t, files[0].Data)
	want := allocateIDs([]string{"tw-agents.web", "tw-agents.turn-tls", "tw-block-printer"}, 500, 599)
	want["tw-default"] = 599
	for name, id := range want {
		if ids[name] != fmt.Sprint(id) {
			t.Errorf("policy %s has id %q, want %d (all: %v)", name, ids[name], id, ids)
		}
		if id < 500 || id > 599 {
			t.Errorf("policy %s: id %d outside the range", name, id)
		}
	}
	moves := fmt.Sprintf("    move %d after %d\n    move %d after %d\n    move 599 after %d\nend\n",
		want["tw-agents.turn-tls"], want["tw-agents.web"], want["tw-block-printer"], want["tw-agents.turn-tls"], want["tw-block-printer"])
	if !strings.Contains(string(files[0].Data), moves) {
		t.Errorf("move lines do not pin the IR order:\n%s", files[0].Data)
	}
	for _, front := range []bool{false, true} {
		grown := smallProgram()
		extra := grown.Rules[0]
		extra.Name, extra.Origin.Source.Line = "agents.extra", 99
		if front {
			grown.Rules = append([]ir.Rule{extra}, grown.Rules...)
		} else {
			grown.Rules = append(grown.Rules, extra)
		}
		grown.Index()
		again := policyIDs(t, backendtest.Emit(t, Backend{}, grown, opts)[0].Data)
		for name, id := range ids {
			if again[name] != id {
				t.Errorf("adding a rule (front %v) moved %s from %s to %s", front, name, id, again[name])
			}
		}
		if again["tw-agents.extra"] == "" || again["tw-agents.extra"] == "599" {
			t.Errorf("new rule got id %q", again["tw-agents.extra"])
		}
	}
	// Without default-rule=emit there is no catch-all policy.
	if _, ok := policyIDs(t, backendtest.Emit(t, Backend{}, p, backends.Options{})[0].Data)["tw-default"]; ok {
		t.Error("a default policy without default-rule=emit")
	}
}

// TestCommentEscaping: no user text can end the quoted string, continue the
// line, ask the CLI for help or start a statement; the source file name
// still comes back exactly.
func TestCommentEscaping(t *testing.T) {
	p := smallProgram()
	p.Rules[0].Comment = "say \"hi\"\\\nend\nexecute factoryreset ? $SerialNum 'x' \u2028tab\there"
	p.Rules[0].Origin.Source.File = "dir with space/evil\"name\n.hcl"
	p.Policy.Name = "p\"\nconfig system admin"
	p.AddressSets[0].Origin.Name = "x\"\ny"
	files := backendtest.Emit(t, Backend{}, p, backends.Options{})
	text := string(files[0].Data)
	plain := backendtest.Emit(t, Backend{}, smallProgram(), backends.Options{})
	if backendtest.CountLines(files[0].Data) != backendtest.CountLines(plain[0].Data) {
		t.Fatal("hostile comments changed the number of lines")
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "execute") || strings.HasPrefix(trimmed, "config system") {
			t.Errorf("user text started a statement: %q", line)
		}
		if strings.Count(line, `"`)%2 != 0 || strings.ContainsAny(line, "\\?$'\t") {
			t.Errorf("unsafe line: %q", line)
		}
	}
	if !strings.Contains(text, `set comments "turnwall dir%20with%20space/evil%22name%0A.hcl:10 agents->internet: say hi end execute factoryreset  SerialNum x  tab here"`) {
		t.Errorf("comment not rendered as expected:\n%s", text)
	}
	cfg, err := Backend{}.Reader().Read(files)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Decide(ir.Packet{FromZone: "agents", ToZone: "internet", Src: netip.MustParseAddr("10.1.0.5"),
		Dst: netip.MustParseAddr("192.0.2.10"), Proto: ir.TCP, SrcPort: 40000, DstPort: 443})
	if want := "dir with space/evil\"name\n.hcl:10"; d.Source != want || d.Action != ir.Allow {
		t.Errorf("decision %+v, want allow traced to %q", d, want)
	}
}

// TestNameLimits: names fit FortiOS's limits, stay unique when cut, avoid the
// built-in names and are the same on every run.
func TestNameLimits(t *testing.T) {
	p := smallProgram()
	long := strings.Repeat("very-long-rule-name-", 5)
	p.Rules[0].Name = long + "a"
	p.Rules[1].Name = long + "b"
	p.Rules[2].Name = "default" // would clash with the default policy
	// Repeated names, which FortiOS must see unique.
	for _, name := range []string{"dup", "dup", "dup#2"} {
		r := p.Rules[2]
		r.Name = name
		p.Rules = append(p.Rules, r)
	}
	p.AddressSets[0].Name = strings.Repeat("s", 100)
	for i := range p.Rules {
		if p.Rules[i].Src == "agents" {
			p.Rules[i].Src = p.AddressSets[0].Name
		}
	}
	p.Index()
	files := backendtest.Emit(t, Backend{}, p, backends.Options{Params: map[string]string{"default-rule": "emit"}})
	cfg, err := Backend{}.Reader().Read(files)
	if err != nil {
		t.Fatalf("%v\n%s", err, files[0].Data)
	}
	backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 500)
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^        set name "([^"]*)"`).FindAllStringSubmatch(string(files[0].Data), -1) {
		name := m[1]
		if len(name) > policyNameMax {
			t.Errorf("policy name %q is longer than %d", name, policyNameMax)
		}
		if seen[name] {
			t.Errorf("policy name %q used twice", name)
		}
		seen[name] = true
	}
	if len(seen) != 7 || !seen["tw-default"] {
		t.Errorf("policy names %v", seen)
	}
	for _, m := range regexp.MustCompile(`(?m)^(?:    edit "([^"]*)"|edit (\S+))$`).FindAllStringSubmatch(string(files[0].Data), -1) {
		name := m[1] + m[2]
		if len(name) > objectNameMax {
			t.Errorf("object name %q is longer than %d", name, objectNameMax)
		}
		switch strings.ToLower(name) {
		case "all", "all6", "none", "always", "any":
			t.Errorf("object uses the reserved name %q", name)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`).MatchString(name) {
			t.Errorf("object name %q has characters outside [A-Za-z0-9._-]", name)
		}
	}
}

// TestSSLProfile: TURN/TLS and signalling policies carry the inspection
// profile with utm-status enable; others do not; the parameter changes it.
func TestSSLProfile(t *testing.T) {
	p := smallProgram()
	for _, tc := range []struct {
		params  map[string]string
		profile string
	}{
		{nil, "certificate-inspection"},
		{map[string]string{"ssl-ssh-profile": "no-inspection"}, "no-inspection"},
	} {
		files := backendtest.Emit(t, Backend{}, p, backends.Options{Params: tc.params})
		blocks := policyBlocks(string(files[0].Data))
		want := "        set utm-status enable\n        set ssl-ssh-profile \"" + tc.profile + "\"\n"
		for name, block := range blocks {
			has := strings.Contains(block, want)
			tls := name == "tw-agents.web" || name == "tw-agents.turn-tls"
			if has != tls {
				t.Errorf("profile %s: policy %s has the inspection profile: %v, want %v\n%s", tc.profile, name, has, tls, block)
			}
			if !tls && strings.Contains(block, "ssl-ssh-profile") {
				t.Errorf("policy %s sets a profile", name)
			}
		}
	}
	for _, bad := range []string{"", "deep inspection", "x\"\nend", strings.Repeat("p", 48)} {
		if _, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"ssl-ssh-profile": bad}}); err == nil {
			t.Errorf("ssl-ssh-profile %q accepted", bad)
		}
	}
	// The shipped private-relay example has TURN/TLS rules.
	for _, c := range backendtest.Cases(t) {
		files := backendtest.Emit(t, Backend{}, c.Program, backends.Options{})
		blocks := policyBlocks(string(files[0].Data))
		s, _ := parseSettings(backends.Options{})
		pl, err := buildPlan(c.Program, s)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range c.Program.Rules {
			block := blocks[pl.policies[i].name]
			if !strings.Contains(block, fmt.Sprintf("    edit %d\n", pl.policies[i].id)) {
				t.Fatalf("%s: rule %s: no policy block %d", c.Name, r.Name, pl.policies[i].id)
			}
			tls := r.Action == ir.Allow && (r.Purpose == ir.PurposeTURNTLS || r.Purpose == ir.PurposeSignalling)
			if strings.Contains(block, `set ssl-ssh-profile "certificate-inspection"`) != tls {
				t.Errorf("%s: rule %s (%s): profile present != %v", c.Name, r.Name, r.Purpose, tls)
			}
		}
	}
}

// policyBlocks maps policy names to their edit blocks.
func policyBlocks(text string) map[string]string {
	out := map[string]string{}
	_, policies, _ := strings.Cut(text, "config firewall policy\n")
	for _, block := range strings.Split(policies, "    next\n") {
		if m := regexp.MustCompile(`set name "([^"]+)"`).FindStringSubmatch(block); m != nil {
			out[m[1]] = block
		}
	}
	return out
}

// TestFamilies: a set with one family, FQDN-only sets and empty sets give
// valid address pairs, and the reader decides them as the IR.
func TestFamilies(t *testing.T) {
	p := smallProgram()
	p.AddressSets = append(p.AddressSets,
		ir.AddressSet{Name: "v6only", V6: []netip.Prefix{netip.MustParsePrefix("2001:db8:6::/48")}},
		ir.AddressSet{Name: "names", FQDNs: []string{"turn.example.com"}},
		ir.AddressSet{Name: "empty"},
	)
	add := func(name, src, dst string) {
		r := p.Rules[0]
		r.Name, r.Src, r.Dst = name, src, dst
		r.Origin.Source.Line = 50 + len(p.Rules)
		p.Rules = append(p.Rules, r)
	}
	add("v4-to-v6", "agents", "v6only")
	add("v6-to-names", "v6only", "names")
	add("nothing", "empty", "empty")
	p.Index()
	files := backendtest.Emit(t, Backend{}, p, backends.Options{})
	blocks := policyBlocks(string(files[0].Data))
	for name, want := range map[string][]string{
		"tw-v4-to-v6":    {`set srcaddr "none"`, `set dstaddr "none"`, "unset srcaddr6", "unset dstaddr6"},
		"tw-v6-to-names": {"unset srcaddr\n", "unset dstaddr\n", `set srcaddr6 "tw6-v6only"`, `set dstaddr6 "tw6-names"`},
		"tw-nothing":     {`set srcaddr "none"`, `set dstaddr "none"`, "unset srcaddr6", "unset dstaddr6"},
		"tw-agents.web":  {`set srcaddr "tw-agents"`, `set dstaddr "tw-provider"`, "unset srcaddr6", "unset dstaddr6"},
	} {
		for _, w := range want {
			if !strings.Contains(blocks[name], w) {
				t.Errorf("policy %s lacks %q:\n%s", name, w, blocks[name])
			}
		}
	}
	for _, obj := range []string{"edit tw-turn.example.com\nset type fqdn\nset fqdn \"turn.example.com\"",
		"edit tw6-turn.example.com\nset type fqdn\nset fqdn \"turn.example.com\""} {
		if !strings.Contains(string(files[0].Data), obj) {
			t.Errorf("missing FQDN object %q", obj)
		}
	}
	cfg, err := Backend{}.Reader().Read(files)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 2000)
	// A packet whose addresses mix families cannot exist on the wire; the IR
	// matches it to no rule unless it names an FQDN, and so does the target.
	for _, pkt := range []ir.Packet{
		{Src: netip.MustParseAddr("10.1.0.5"), Dst: netip.MustParseAddr("2001:db8:6::1")},
		{Src: netip.MustParseAddr("2001:db8:6::1"), Dst: netip.MustParseAddr("192.0.2.9"), DstHost: "turn.example.com"},
		{Src: netip.MustParseAddr("2001:db8:6::1"), Dst: netip.MustParseAddr("2001:db8::9"), DstHost: "turn.example.com"},
		{Src: netip.MustParseAddr("10.1.0.5"), Dst: netip.MustParseAddr("192.0.2.9"), DstHost: "turn.example.com"},
	} {
		pkt.FromZone, pkt.ToZone, pkt.Proto, pkt.SrcPort, pkt.DstPort = "agents", "internet", ir.TCP, 40000, 443
		want, got := p.Allows(pkt), cfg.Decide(pkt)
		wantSource := ""
		if want.Rule != nil {
			wantSource = want.Rule.Origin.Source.String()
		}
		if got.Action != want.Action || got.Source != wantSource {
			t.Errorf("%v -> %v (%s): target %+v, IR %s (%s)", pkt.Src, pkt.Dst, pkt.DstHost, got, want.Action, wantSource)
		}
	}
}

// TestReaderMove: the reader orders policies by the move lines, not by id or
// by the order of the edit blocks.
func TestReaderMove(t *testing.T) {
	opts := backends.Options{Params: map[string]string{"default-rule": "emit"}}
	data := backendtest.Emit(t, Backend{}, smallProgram(), opts)[0].Data
	text := string(data)
	ids := policyIDs(t, data)
	web, printerID, def := ids["tw-agents.web"], ids["tw-block-printer"], ids["tw-default"]
	printer := ir.Packet{FromZone: "agents", ToZone: "internet", Src: netip.MustParseAddr("10.1.0.250"),
		Dst: netip.MustParseAddr("192.0.2.10"), Proto: ir.TCP, SrcPort: 40000, DstPort: 443}
	last := fmt.Sprintf("    move %s after %s\nend\n", def, printerID)
	if !strings.Contains(text, last) {
		t.Fatalf("no %q in\n%s", last, text)
	}
	for _, tc := range []struct {
		move, rule string
		action     ir.Action
	}{
		{"", "tw-agents.web", ir.Allow},
		{"    move " + printerID + " before " + web + "\n", "tw-block-printer", ir.Deny},
		{"    move " + web + " after " + printerID + "\n", "tw-block-printer", ir.Deny},
		{"    move " + def + " before " + web + "\n", "", ir.Deny}, // the default policy first: nothing else is reached
	} {
		moved := strings.Replace(text, last, strings.TrimSuffix(last, "end\n")+tc.move+"end\n", 1)
		cfg, err := Backend{}.Reader().Read([]backends.File{{Name: fileName, Data: []byte(moved)}})
		if err != nil {
			t.Fatal(err)
		}
		d := cfg.Decide(printer)
		if d.Rule != tc.rule || d.Action != tc.action {
			t.Errorf("after %q: decided %+v, want %s by %s", tc.move, d, tc.action, tc.rule)
		}
	}
}

// TestReaderRejects: the reader names the line of anything turnwall does not
// write.
func TestReaderRejects(t *testing.T) {
	goodData := backendtest.Emit(t, Backend{}, smallProgram(), backends.Options{})[0].Data
	good := string(goodData)
	ids := policyIDs(t, goodData)
	firstMove := fmt.Sprintf("    move %s after %s\n", ids["tw-agents.turn-tls"], ids["tw-agents.web"])
	for _, tc := range []struct{ edit, want string }{
		{"config system admin\nend\n" + good, ":1: unknown statement \"config system admin\""},
		{strings.Replace(good, "        set logtraffic all\n", "        set logtraffic all\n        set nat enable\n", 1), "unknown statement \"set nat enable\""},
		{strings.Replace(good, firstMove, "    move "+ids["tw-agents.turn-tls"]+" after 4242\n", 1), "no such policy"},
		{strings.Replace(good, `set schedule "always"`, `set schedule "workhours"`, 1), "schedule"},
		{strings.Replace(good, "        unset srcaddr6\n", "", 1) + "", ""},
		{strings.Replace(good, `set dstaddr "tw-provider"`, `set dstaddr "tw-nowhere"`, 1), "unknown address \"tw-nowhere\""},
		{strings.Replace(good, "set comments \"turnwall ", "set comments \"nobody ", 1), "does not trace"},
		{strings.Replace(good, "end\n", "", 1), "unknown statement \"config firewall"},
		{good + "set foo\n", "unknown statement \"set foo\""},
		{strings.Replace(good, `set member tw-`, `set member tw-\`, 1), "interpret"},
	} {
		_, err := Backend{}.Reader().Read([]backends.File{{Name: fileName, Data: []byte(tc.edit)}})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("unexpected error %v", err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !regexp.MustCompile(`fortios.conf:\d+`).MatchString(err.Error()) && !strings.Contains(err.Error(), "line ")):
			t.Errorf("got %v, want an error naming the line with %q", err, tc.want)
		}
	}
}

// smallProgram: agents reach a provider over HTTPS and a relay over TURN/TLS;
// a printer is denied everything, logged; default deny.
func smallProgram() *ir.Program {
	src := func(line int) ir.Origin {
		return ir.Origin{Kind: "rule", Name: "r", Source: ir.Source{File: "policy.hcl", Line: line}}
	}
	p := &ir.Program{
		Policy: ir.Policy{Name: "small", DefaultAction: ir.Deny, LogDefault: true, Source: ir.Source{File: "policy.hcl", Line: 1}},
		Zones: []ir.Zone{
			{Name: "agents", Interfaces: []string{"port2", "vlan20"}},
			{Name: "internet", Interfaces: []string{"wan1"}},
		},
		AddressSets: []ir.AddressSet{
			{Name: "agents", Origin: src(3), V4: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "printer", Origin: src(4), V4: []netip.Prefix{netip.MustParsePrefix("10.1.0.250/32")}},
			{Name: "provider", Origin: src(5), V4: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		},
		Services: []ir.ServiceSet{
			{Name: "https", Entries: []ir.ServiceEntry{{Proto: ir.TCP, Ports: []ir.PortRange{{First: 443, Last: 443}}}}},
			{Name: "turn-tls", Entries: []ir.ServiceEntry{{Proto: ir.TCP, Ports: []ir.PortRange{{First: 5349, Last: 5349}}}}},
			{Name: "everything", Entries: []ir.ServiceEntry{{Proto: ir.UDP}, {Proto: ir.TCP, SrcPorts: []ir.PortRange{{First: 1024, Last: 65535}}}}},
		},
		Rules: []ir.Rule{
			{Name: "agents.web", Purpose: ir.PurposeSignalling, Action: ir.Allow, FromZone: "agents", ToZone: "internet",
				Src: "agents", Dst: "provider", Service: "https", Comment: "HTTPS", Origin: src(10)},
			{Name: "agents.turn-tls", Purpose: ir.PurposeTURNTLS, Action: ir.Allow, FromZone: "agents", ToZone: "internet",
				Src: "agents", Dst: "provider", Service: "turn-tls", Comment: "TURN/TLS", Origin: src(11)},
			{Name: "block-printer", Purpose: ir.PurposeCustom, Action: ir.Deny, ToZone: "internet", Log: true,
				Src: "printer", Dst: "provider", Service: "everything", Comment: "no printer", Origin: src(12)},
		},
	}
	p.Index()
	return p
}

// TestLargePolicy: a provider with thousands of ranges gives output that
// grows with the aggregated prefixes (each written once, as one object, and
// referenced by name), lines of bounded length, and a configuration that
// still re-reads and decides as the IR.
func TestLargePolicy(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	path := filepath.Join(t.TempDir(), "large.hcl")
	if err := os.WriteFile(path, testkit.LargePolicy(n), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(path, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	p := res.Program
	prefixes := 0
	for _, s := range p.AddressSets {
		prefixes += len(s.V4) + len(s.V6)
	}
	files := backendtest.Emit(t, Backend{}, p, backends.Options{})
	data := files[0].Data
	longest := 0
	for _, line := range strings.Split(string(data), "\n") {
		longest = max(longest, len(line))
	}
	if longest > 4096 {
		t.Errorf("longest line is %d bytes", longest)
	}
	// Each prefix set membership costs one quoted name; each distinct
	// prefix one address object of about 100 bytes.
	if perPrefix := len(data) / prefixes; perPrefix > 150 {
		t.Errorf("%d bytes for %d set members: %d bytes each", len(data), prefixes, perPrefix)
	}
	t.Logf("%d rules, %d set members, %d bytes, longest line %d", len(p.Rules), prefixes, len(data), longest)
	cfg, err := Backend{}.Reader().Read(files)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 3000)
}
