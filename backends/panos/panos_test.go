package panos

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

var _ backends.Traceable = Backend{}

// snapshot asks for the whole-box snapshot: turnwall's rules closed by the
// policy's default rule, so the re-read output decides every packet as the
// IR does.
var snapshot = map[string]string{"default-rule": "emit"}

// CheckHostile passes silently when Emit rejects the hostile program, so make
// sure it is emitted (in both forms) and the injection test really ran.
func TestHostileIsEmitted(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		hostile, _ := backendtest.HostilePair(c.Program)
		for _, format := range []string{FormatSet, FormatXML} {
			if _, err := (Backend{}).Emit(hostile, backends.Options{Format: format, Params: snapshot}); err != nil {
				t.Errorf("%s (%s): hostile program rejected, so CheckHostile checked nothing: %v", c.Name, format, err)
			}
		}
		t.Logf("%s: %d rules, %d packets in the property test", c.Name, len(c.Program.Rules), len(backendtest.Packets(c.Program, 1, 4000)))
	}
}

func TestSetForm(t *testing.T) {
	backendtest.CheckTarget(t, Backend{}, backends.Options{Params: snapshot}, backendtest.EquivOptions{QoSSession: true})
}

func TestXMLForm(t *testing.T) {
	backendtest.CheckTarget(t, Backend{}, backends.Options{Format: FormatXML, Params: snapshot}, backendtest.EquivOptions{QoSSession: true})
}

// smallProgram is a hand-built policy with every feature the emitter handles:
// both families, an FQDN, source ports, a deny rule, an any-zone rule, an
// empty set, TURN/TLS and signalling rules.
func smallProgram() *ir.Program {
	src := func(line int) ir.Origin {
		return ir.Origin{Kind: "rule", Name: "x", Source: ir.Source{File: "policy.hcl", Line: line}}
	}
	p := &ir.Program{
		Policy: ir.Policy{Name: "lab", DefaultAction: ir.Deny, LogDefault: true, Source: ir.Source{File: "policy.hcl", Line: 1}},
		Zones:  []ir.Zone{{Name: "agents"}, {Name: "dmz"}, {Name: "internet"}},
		AddressSets: []ir.AddressSet{
			{Name: "agents", V4: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}, V6: []netip.Prefix{netip.MustParsePrefix("fd00:20::/48")}},
			{Name: "empty"},
			{Name: "printer", V4: []netip.Prefix{netip.MustParsePrefix("10.20.9.9/32")}},
			{Name: "provider", V4: []netip.Prefix{netip.MustParsePrefix("52.129.96.0/20")}, FQDNs: []string{"stun.example.net"}},
			{Name: "relay", V4: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/32")}, V6: []netip.Prefix{netip.MustParsePrefix("2001:db8::10/128")}},
		},
		Services: []ir.ServiceSet{
			{Name: "https", Entries: []ir.ServiceEntry{{Proto: ir.TCP, Ports: []ir.PortRange{{First: 443, Last: 443}}}}},
			{Name: "relay-out", Entries: []ir.ServiceEntry{{Proto: ir.UDP, SrcPorts: []ir.PortRange{{First: 49152, Last: 65535}}}}},
			{Name: "turn-tls", Entries: []ir.ServiceEntry{{Proto: ir.TCP, Ports: []ir.PortRange{{First: 443, Last: 443}, {First: 5349, Last: 5349}}}}},
			{Name: "all", Entries: []ir.ServiceEntry{{Proto: ir.UDP, Ports: []ir.PortRange{{First: 1, Last: 65535}}}, {Proto: ir.TCP, Ports: []ir.PortRange{{First: 1, Last: 65535}}}}},
		},
		Rules: []ir.Rule{
			{Name: "block-printer", Purpose: ir.PurposeCustom, Action: ir.Deny, ToZone: "internet", Src: "printer", Dst: "provider", Service: "all", Log: true, Comment: "no printing to the cloud", Origin: src(10)},
			{Name: "never", Purpose: ir.PurposeCustom, Action: ir.Allow, FromZone: "agents", ToZone: "internet", Src: "agents", Dst: "empty", Service: "https", Origin: src(20)},
			{Name: "signalling", Purpose: ir.PurposeSignalling, Action: ir.Allow, FromZone: "agents", ToZone: "internet", Src: "agents", Dst: "provider", Service: "https", Comment: "HTTPS/WSS", Origin: src(30)},
			{Name: "turn-tls", Purpose: ir.PurposeTURNTLS, Action: ir.Allow, FromZone: "agents", ToZone: "dmz", Src: "agents", Dst: "relay", Service: "turn-tls", Comment: "TURN/TLS", Origin: src(40)},
			{Name: "relay-out", Purpose: ir.PurposeRelayMedia, Action: ir.Allow, FromZone: "dmz", ToZone: "internet", Src: "relay", Dst: "provider", Service: "relay-out", Comment: "relayed media", Origin: src(50)},
		},
	}
	p.Index()
	return p
}

func emit(t *testing.T, p *ir.Program, opts backends.Options) string {
	t.Helper()
	files := backendtest.Emit(t, Backend{}, p, opts)
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	return string(files[0].Data)
}

func TestSmallProgram(t *testing.T) {
	p := smallProgram()
	for _, format := range []string{FormatSet, FormatXML} {
		t.Run(format, func(t *testing.T) {
			opts := backends.Options{Format: format, Params: snapshot}
			files := backendtest.Emit(t, Backend{}, p, opts)
			cfg, err := Backend{}.Reader().Read(files)
			if err != nil {
				t.Fatalf("%v\n%s", err, files[0].Data)
			}
			backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 4000)
			backendtest.CheckHostile(t, Backend{}, opts, backendtest.EquivOptions{}, p)

			c := cfg.(*config)
			var names []string
			for _, r := range c.rules {
				names = append(names, r.name)
			}
			want := "tw-block-printer tw-signalling tw-turn-tls tw-relay-out tw-default-deny"
			if got := strings.Join(names, " "); got != want {
				t.Errorf("rule order %q, want %q (the rule on an empty set left out, the default last)", got, want)
			}
			nowhere := ir.Packet{FromZone: "dmz", ToZone: "dmz", Src: netip.MustParseAddr("192.0.2.7"), Dst: netip.MustParseAddr("192.0.2.8"), Proto: ir.UDP, SrcPort: 5, DstPort: 7}
			if d := cfg.Decide(nowhere); d.Action != ir.Deny || d.Rule != "" || d.Source != "" {
				t.Errorf("intrazone packet no rule matches: %+v, want the policy default (deny, no rule)", d)
			}
			if last := c.rules[len(c.rules)-1]; !last.logEnd || last.action != ir.Deny || last.from != nil || last.to != nil {
				t.Errorf("default rule %+v: want deny from any to any, logged (log-default)", last)
			}
		})
	}
}

func TestSetSyntax(t *testing.T) {
	out := emit(t, smallProgram(), backends.Options{Params: snapshot})
	for _, want := range []string{
		"set address tw-net-10.20.0.0_16 ip-netmask 10.20.0.0/16\n",
		"set address tw-net6-fd00-20--_48 ip-netmask fd00:20::/48\n",
		"set address tw-host-198.51.100.10 ip-netmask 198.51.100.10/32\n",
		"set address tw-host6-2001-db8--10 ip-netmask 2001:db8::10/128\n",
		"set address tw-fqdn-stun.example.net fqdn stun.example.net\n",
		"set address-group tw-agents static [ tw-net-10.20.0.0_16 tw-net6-fd00-20--_48 ]\n",
		"set service tw-relay-out-udp protocol udp port 0-65535 source-port 49152-65535\n",
		"set service tw-turn-tls-tcp protocol tcp port 443,5349\n",
		"set service-group tw-all members [ tw-all-udp tw-all-tcp ]\n",
		`set rulebase security rules tw-block-printer from any to internet source tw-printer destination tw-provider source-user any application any service tw-all action deny log-end yes rule-type universal description "[policy.hcl:10] no printing to the cloud"` + "\n",
		`set rulebase security rules tw-default-deny from any to any source any destination any source-user any application any service any action deny log-end yes rule-type universal description "turnwall default of policy lab: deny`,
		"move rulebase security rules tw-block-printer bottom\n",
		"move rulebase security rules tw-signalling after tw-block-printer\n",
		"move rulebase security rules tw-default-deny after tw-relay-out\n",
		// the log flag: the signalling rule does not ask for logging
		`set rulebase security rules tw-signalling from agents to internet source tw-agents destination tw-provider source-user any application any service tw-https action allow log-end no `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "address-group empty") || strings.Contains(out, "tw-never") {
		t.Errorf("the rule on an empty set and its set should be left out:\n%s", out)
	}
	if strings.Contains(out, "application-default") {
		t.Error("application-default must not be used")
	}
}

func TestDecryptionRule(t *testing.T) {
	for _, format := range []string{FormatSet, FormatXML} {
		t.Run(format, func(t *testing.T) {
			files := backendtest.Emit(t, Backend{}, smallProgram(), backends.Options{Format: format, Params: snapshot})
			cfg, err := Backend{}.Reader().Read(files)
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.(*config)
			if len(c.decryption) != 1 {
				t.Fatalf("%d decryption rules, want 1", len(c.decryption))
			}
			d := c.decryption[0]
			if d.name != "tw-no-decrypt-turn-tls" || d.action != "no-decrypt" || d.decryptType != "ssl-forward-proxy" {
				t.Errorf("decryption rule %+v", d)
			}
			// Destinations: the TURN/TLS relay and the signalling endpoints,
			// not the relay-out or deny rules' destinations only.
			if got := strings.Join(d.destinations, " "); got != "tw-provider tw-relay" {
				t.Errorf("decryption destinations %q, want %q", got, "tw-provider tw-relay")
			}
			if !strings.Contains(d.description, "TLS inspection breaks TURN/TLS") {
				t.Errorf("description does not say why: %q", d.description)
			}
			if !d.dst.matchesDestination(netip.MustParseAddr("2001:db8::10"), "") || !d.dst.matchesDestination(netip.Addr{}, "stun.example.net") {
				t.Error("decryption rule does not cover the relay and the provider's FQDN")
			}
		})
	}

	// In the set form the rule is moved to the top of the decryption
	// rulebase, after it is created: a no-decrypt rule below a decrypt rule
	// would never be reached.
	out := emit(t, smallProgram(), backends.Options{Params: snapshot})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n := len(lines)
	if !strings.HasPrefix(lines[n-2], "set rulebase decryption rules tw-no-decrypt-turn-tls from any to any source any destination [ tw-provider tw-relay ] service any category any action no-decrypt type ssl-forward-proxy description ") ||
		lines[n-1] != "move rulebase decryption rules tw-no-decrypt-turn-tls top" {
		t.Errorf("decryption rule placement:\n%s\n%s", lines[n-2], lines[n-1])
	}
	// The reader honours the move: with a decrypt rule read first, the
	// no-decrypt rule still ends on top.
	cfg, err := Backend{}.Reader().Read([]backends.File{{Name: "panos.set", Data: []byte(
		"set address a ip-netmask 192.0.2.1/32\n" +
			"set rulebase decryption rules decrypt-all from any to any source any destination any action decrypt type ssl-forward-proxy\n" +
			lines[n-2] + "\n" + lines[n-1] + "\n")}})
	if err == nil {
		t.Fatal("references to groups that are not in the file must be rejected")
	}
	body := strings.Join(lines[:n-2], "\n") + "\n" +
		"set rulebase decryption rules decrypt-all from any to any source any destination any action decrypt type ssl-forward-proxy\n" +
		lines[n-2] + "\n" + lines[n-1] + "\n"
	cfg, err = Backend{}.Reader().Read([]backends.File{{Name: "panos.set", Data: []byte(body)}})
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.(*config); c.decryption[0].name != "tw-no-decrypt-turn-tls" || c.decryption[1].name != "decrypt-all" {
		t.Errorf("decryption order %s, %s", c.decryption[0].name, c.decryption[1].name)
	}
}

func TestNoDecryptionRuleWithoutTLS(t *testing.T) {
	p := smallProgram()
	p.Rules = p.Rules[:1] // the deny rule only
	out := emit(t, p, backends.Options{Params: snapshot})
	if strings.Contains(out, "decryption") {
		t.Errorf("no TURN/TLS or signalling rule, yet a decryption rule:\n%s", out)
	}
}

func TestDescriptionEscaping(t *testing.T) {
	p := smallProgram()
	p.Rules[0].Comment = "a \"quoted\" \\ back`slash'?\nset rulebase security rules evil action allow\r\u2028x ünï </description><entry name=\"evil\">"
	p.Rules[0].Origin.Source.File = "we[ir]d\".hcl"
	p.Policy.Name = "lab\"\nset address evil ip-netmask 0.0.0.0/0"
	for _, format := range []string{FormatSet, FormatXML} {
		out := emit(t, p, backends.Options{Format: format, Params: snapshot})
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "set rulebase security rules evil") ||
				strings.HasPrefix(strings.TrimSpace(line), "set address evil") ||
				strings.Contains(line, `<entry name="evil">`) {
				t.Errorf("%s: user text started a statement: %q", format, line)
			}
		}
		benign := emit(t, smallProgram(), backends.Options{Format: format, Params: snapshot})
		if a, b := strings.Count(out, "\n"), strings.Count(benign, "\n"); a != b {
			t.Errorf("%s: %d lines with hostile text, %d without", format, a, b)
		}
	}
	out := emit(t, p, backends.Options{Params: snapshot})
	want := `description "[weird.hcl:10] a quoted  backslash set rulebase security rules evil action allow x _n_ </description><entry name=evil>"`
	want = strings.ReplaceAll(want, "  ", " ")
	if !strings.Contains(out, want) {
		t.Errorf("description not cleaned as expected; want %s in\n%s", want, out)
	}
	// The source tag still traces the rule, with the brackets dropped.
	cfg, err := Backend{}.Reader().Read([]backends.File{{Name: "panos.set", Data: []byte(out)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.(*config).rules[0].source; got != "weird.hcl:10" {
		t.Errorf("source %q", got)
	}
}

func TestDescriptionLimit(t *testing.T) {
	p := smallProgram()
	p.Rules[0].Comment = strings.Repeat("long comment ", 200)
	out := emit(t, p, backends.Options{Params: snapshot})
	cfg, err := Backend{}.Reader().Read([]backends.File{{Name: "panos.set", Data: []byte(out)}})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*config)
	if c.rules[0].source != "policy.hcl:10" {
		t.Errorf("source tag lost when the comment was cut: %q", c.rules[0].source)
	}
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, `description "`); i >= 0 {
			if n := len(line) - i - len(`description "`) - 1; n > maxDescription {
				t.Errorf("description of %d characters", n)
			}
		}
	}
}

func TestNameLimits(t *testing.T) {
	p := smallProgram()
	long := strings.Repeat("very-long-name.", 8)
	p.Zones[0].Name = "agents " + long // space and length
	p.AddressSets[0].Name = "3rd floor/" + long
	p.Services[0].Name = "service-https" // a predefined PAN-OS service
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.FromZone == "agents" {
			r.FromZone = p.Zones[0].Name
		}
		if r.Src == "agents" {
			r.Src = p.AddressSets[0].Name
		}
		if r.Service == "https" {
			r.Service = "service-https"
		}
	}
	p.Rules[2].Name = long + "signalling"
	p.Rules[3].Name = "interzone-default"
	p.Index()

	for _, format := range []string{FormatSet, FormatXML} {
		files := backendtest.Emit(t, Backend{}, p, backends.Options{Format: format, Params: snapshot})
		cfg, err := Backend{}.Reader().Read(files)
		if err != nil {
			t.Fatal(err)
		}
		backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 2000)
	}

	out := emit(t, p, backends.Options{Params: snapshot})
	dev, err := parseSet("panos.set", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	valid := func(kind, name string, max int) {
		if len(name) == 0 || len(name) > max {
			t.Errorf("%s %q: %d characters, limit %d", kind, name, len(name), max)
		}
		for i, r := range name {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && strings.ContainsRune("._-", r))
			if !ok {
				t.Errorf("%s %q: character %q not allowed", kind, name, r)
			}
		}
	}
	for name := range dev.addresses {
		valid("address", name, 63)
	}
	for name := range dev.groups {
		valid("address group", name, 63)
	}
	for name := range dev.services {
		valid("service", name, 63)
	}
	for name := range dev.svcGroups {
		valid("service group", name, 63)
		if name == "service-https" {
			t.Error("a service group took the name of the predefined service-https")
		}
	}
	for _, r := range dev.security.order {
		valid("rule", r.name, 63)
		if r.name == "interzone-default" || r.name == "intrazone-default" {
			t.Errorf("rule took the reserved name %q", r.name)
		}
		for _, z := range append(r.lists["from"], r.lists["to"]...) {
			valid("zone", z, 31)
		}
	}
	// Stable between runs: a fresh emit gives the same names.
	if again := emit(t, p, backends.Options{Params: snapshot}); again != out {
		t.Error("names differ between two runs")
	}
	if z := ZoneName(p.Zones[0].Name); !strings.Contains(out, " from "+z+" ") {
		t.Errorf("zone %q not used as ZoneName says", z)
	}
}

func TestParams(t *testing.T) {
	p := smallProgram()
	out := emit(t, p, backends.Options{Params: map[string]string{"vsys": "vsys2", "rule-prefix": ""}})
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "set vsys vsys2 ") && !strings.HasPrefix(line, "move vsys vsys2 ") {
			t.Errorf("line outside vsys2: %q", line)
		}
	}
	if !strings.Contains(out, "rules block-printer ") {
		t.Error("empty rule-prefix not honoured")
	}
	xmlOut := emit(t, p, backends.Options{Format: FormatXML, Params: map[string]string{"vsys": "vsys3"}})
	if !strings.Contains(xmlOut, `<entry name="localhost.localdomain">`) || !strings.Contains(xmlOut, `<entry name="vsys3">`) {
		t.Errorf("xml not under the vsys3 node:\n%s", xmlOut)
	}
	for _, bad := range []map[string]string{{"vsys": "shared"}, {"vsys": "vsys1\nset"}, {"rule-prefix": "bad prefix"}, {"rule-prefix": "-x"}} {
		if _, err := (Backend{}).Emit(p, backends.Options{Params: bad}); err == nil {
			t.Errorf("params %v accepted", bad)
		}
	}
	if _, err := (Backend{}).Emit(p, backends.Options{Format: "json"}); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestEmitRejects(t *testing.T) {
	p := smallProgram()
	p.AddressSets[3].FQDNs = []string{"stun.example.net\nset address x"}
	if _, err := (Backend{}).Emit(p, backends.Options{Params: snapshot}); err == nil {
		t.Error("an fqdn with a newline was accepted")
	}
	p = smallProgram()
	p.Rules[0].Dst = "missing"
	if _, err := (Backend{}).Emit(p, backends.Options{Params: snapshot}); err == nil {
		t.Error("a rule on a set that is not in the program was accepted")
	}
}

func TestReaderRejects(t *testing.T) {
	good := emit(t, smallProgram(), backends.Options{Params: snapshot})
	goodXML := emit(t, smallProgram(), backends.Options{Format: FormatXML})
	cases := []struct {
		name, file, data, want string
	}{
		{"garbage", "panos.set", "hello world\n", "panos.set:1: unknown statement"},
		{"unknown object", "panos.set", good + "set zone trust network layer3 ethernet1/1\n", "unknown statement"},
		{"delete", "panos.set", good + "delete rulebase security rules tw-turn-tls\n", "unknown statement"},
		{"trailing words", "panos.set", "set address a ip-netmask 192.0.2.1/32 extra\n", "panos.set:1:"},
		{"unterminated quote", "panos.set", `set rulebase security rules r description "oops` + "\n", "unterminated"},
		{"unclosed list", "panos.set", "set address-group g static [ a b\n", "closing ]"},
		{"host bits", "panos.set", "set address a ip-netmask 10.0.0.1/8\n", "host bits"},
		{"bad port", "panos.set", "set service s protocol udp port 70000\n", "not a port"},
		{"no port", "panos.set", "set service s protocol udp source-port 1\nset service-group g members s\n", "destination port"},
		{"dangling reference", "panos.set", "set rulebase security rules r from any to any source nowhere destination any application any service any action allow\n", "panos.set:1: security rule \"r\""},
		{"app-id", "panos.set", "set rulebase security rules r from any to any source any destination any application ssl service application-default action allow\n", "application"},
		{"move unknown", "panos.set", "move rulebase security rules ghost top\n", "does not exist"},
		{"mixed vsys", "panos.set", "set address a ip-netmask 192.0.2.1/32\nset vsys vsys2 address b ip-netmask 192.0.2.2/32\n", "panos.set:2:"},
		{"line named", "panos.set", good + "\n\nrm -rf /\n", "panos.set:"},
		{"xml garbage", "panos.xml", "<config><devices>", "panos.xml"},
		{"xml unknown element", "panos.xml", strings.Replace(goodXML, "<rule-type>universal</rule-type>", "<rule-type>universal</rule-type><schedule>x</schedule>", 1), "unknown element <schedule>"},
		{"xml doctype", "panos.xml", strings.Replace(goodXML, "<config>", "<!DOCTYPE x [<!ENTITY e \"x\">]><config>", 1), "not allowed"},
		{"xml wrong root", "panos.xml", "<?xml version=\"1.0\"?>\n<policy/>\n", "panos.xml:2: root element <policy>"},
		{"xml two vsys", "panos.xml", strings.Replace(goodXML, "</vsys>", "<entry name=\"vsys2\"/></vsys>", 1), "one vsys entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Backend{}.Reader().Read([]backends.File{{Name: c.file, Data: []byte(c.data)}})
			if err == nil {
				t.Fatalf("accepted:\n%s", c.data)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
	if _, err := (Backend{}).Reader().Read(nil); err == nil {
		t.Error("no files accepted")
	}
}

// The reader models PAN-OS, not the emitter's intent: rule types, moves,
// negation, disabled rules and the predefined default rules.
func TestReaderSemantics(t *testing.T) {
	text := `set address a ip-netmask 10.0.0.0/8
set address f fqdn turn.example.com
set address-group g static [ a f ]
set service s protocol tcp port 80,8000-8080
set service-group sg members s
set rulebase security rules deny-intra from any to any source any destination any application any service any action deny rule-type intrazone
set rulebase security rules allow-web from x to y source g destination g application any service sg action allow description "[p.hcl:7] web"
set rulebase security rules off from any to any source any destination any application any service any action allow disabled yes
set rulebase security rules not-g from any to any source any destination g application any service any action allow negate-destination yes
move rulebase security rules allow-web top
move rulebase security rules off before allow-web
`
	cfg, err := Backend{}.Reader().Read([]backends.File{{Name: "t.set", Data: []byte(text)}})
	if err != nil {
		t.Fatal(err)
	}
	ten, out := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")
	cases := []struct {
		pkt        ir.Packet
		action     ir.Action
		rule, from string
	}{
		{ir.Packet{FromZone: "x", ToZone: "y", Src: ten, Dst: ten, Proto: ir.TCP, DstPort: 8080}, ir.Allow, "allow-web", "p.hcl:7"},
		{ir.Packet{FromZone: "x", ToZone: "y", Src: ten, Dst: out, DstHost: "TURN.example.com", Proto: ir.TCP, DstPort: 80}, ir.Allow, "allow-web", "p.hcl:7"},
		{ir.Packet{FromZone: "x", ToZone: "y", Src: ten, Dst: ten, Proto: ir.UDP, DstPort: 80}, ir.Deny, "", ""},           // interzone-default
		{ir.Packet{FromZone: "x", ToZone: "x", Src: ten, Dst: ten, Proto: ir.TCP, DstPort: 80}, ir.Deny, "deny-intra", ""}, // intrazone rule
		{ir.Packet{FromZone: "x", ToZone: "z", Src: ten, Dst: out, Proto: ir.UDP, DstPort: 9}, ir.Allow, "not-g", ""},      // negated destination
	}
	for _, c := range cases {
		d := cfg.Decide(c.pkt)
		if d.Action != c.action || d.Rule != c.rule || d.Source != c.from {
			t.Errorf("%+v: got %+v, want %s by %q (%q)", c.pkt, d, c.action, c.rule, c.from)
		}
	}
	var order []string
	for _, r := range cfg.(*config).rules {
		order = append(order, r.name)
	}
	if got := strings.Join(order, " "); got != "off allow-web deny-intra not-g" {
		t.Errorf("order after moves: %s", got)
	}
}

// CheckEquivalent always draws packets with seed 1, about 40 per rule; this
// widens the property test to many seeds, both forms, and checks the traced
// source of every decision.
func TestManySeeds(t *testing.T) {
	const seeds = 30
	for _, c := range backendtest.Cases(t) {
		for _, format := range []string{FormatSet, FormatXML} {
			files := backendtest.Emit(t, Backend{}, c.Program, backends.Options{Format: format, Params: snapshot})
			cfg, err := Backend{}.Reader().Read(files)
			if err != nil {
				t.Fatal(err)
			}
			checked, allowed, byRule := 0, 0, 0
			for seed := uint64(2); seed < 2+seeds; seed++ {
				for _, pkt := range backendtest.Packets(c.Program, seed, 100000) {
					want := c.Program.Allows(pkt)
					got := cfg.Decide(pkt)
					wantSource := ""
					if want.Rule != nil {
						wantSource = want.Rule.Origin.Source.String()
						byRule++
					}
					if got.Action != want.Action || got.Source != wantSource {
						t.Fatalf("%s %s seed %d: %+v: target %s by %q (%s), IR %s (%s)", c.Name, format, seed, pkt, got.Action, got.Rule, got.Source, want.Action, wantSource)
					}
					if got.Action == ir.Allow {
						allowed++
					}
					checked++
				}
			}
			if allowed == 0 || allowed == checked || byRule == 0 {
				t.Errorf("%s %s: %d packets, %d allowed, %d decided by a rule: the test exercises too little", c.Name, format, checked, allowed, byRule)
			}
			if format == FormatSet {
				t.Logf("%s: %d packets per form, %d allowed, %d decided by a policy rule", c.Name, checked, allowed, byRule)
			}
		}
	}
}
