package ir_test

import (
	"net/netip"
	"testing"

	"github.com/turnwall/turnwall/compiler/ir"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// testProgram: agents may reach the provider on UDP 3478 and the media range,
// and STUN by name; a deny carves one host out of the provider range.
func testProgram() *ir.Program {
	p := &ir.Program{
		Policy: ir.Policy{Name: "t", DefaultAction: ir.Deny},
		AddressSets: []ir.AddressSet{
			{Name: "agents", V4: prefixes("10.20.0.0/16"), V6: prefixes("fd00:20::/48")},
			{Name: "provider", V4: prefixes("52.129.96.0/20"), V6: prefixes("2603:1063::/38")},
			{Name: "bad-host", V4: prefixes("52.129.96.66/32")},
			{Name: "stun", FQDNs: []string{"stun.l.google.com"}},
			{Name: "relay", V4: prefixes("198.51.100.10/32")},
		},
		Services: []ir.ServiceSet{
			{Name: "turn", Entries: []ir.ServiceEntry{{Proto: ir.UDP, Ports: []ir.PortRange{{3478, 3478}}}, {Proto: ir.TCP, Ports: []ir.PortRange{{443, 443}, {3478, 3478}}}}},
			{Name: "media", Entries: []ir.ServiceEntry{{Proto: ir.UDP, Ports: []ir.PortRange{{16384, 65535}}}}},
			{Name: "stun", Entries: []ir.ServiceEntry{{Proto: ir.UDP, Ports: []ir.PortRange{{19302, 19302}}}}},
			{Name: "any-udp", Entries: []ir.ServiceEntry{{Proto: ir.UDP}}},
			{Name: "relay-return", Entries: []ir.ServiceEntry{{Proto: ir.UDP, SrcPorts: []ir.PortRange{{49152, 65535}}, Ports: []ir.PortRange{{1024, 65535}}}}},
		},
		Rules: []ir.Rule{
			{Name: "deny-bad", Action: ir.Deny, Src: "agents", Dst: "bad-host", Service: "any-udp"},
			{Name: "turn", Action: ir.Allow, FromZone: "agents", ToZone: "internet", Src: "agents", Dst: "provider", Service: "turn"},
			{Name: "media", Action: ir.Allow, FromZone: "agents", ToZone: "internet", Src: "agents", Dst: "provider", Service: "media"},
			{Name: "stun", Action: ir.Allow, FromZone: "agents", ToZone: "internet", Src: "agents", Dst: "stun", Service: "stun"},
			{Name: "return", Action: ir.Allow, FromZone: "dmz", ToZone: "agents", Src: "relay", Dst: "agents", Service: "relay-return"},
		},
	}
	p.Index()
	return p
}

func TestAllows(t *testing.T) {
	p := testProgram()
	a := netip.MustParseAddr
	tests := []struct {
		name string
		pkt  ir.Packet
		want ir.Action
		rule string // "" for the default
	}{
		{"turn udp", ir.Packet{FromZone: "agents", ToZone: "internet", Src: a("10.20.1.5"), Dst: a("52.129.96.1"), Proto: ir.UDP, SrcPort: 50000, DstPort: 3478}, ir.Allow, "turn"},
		{"turn tcp 443", ir.Packet{Src: a("10.20.1.5"), Dst: a("52.129.111.255"), Proto: ir.TCP, SrcPort: 50000, DstPort: 443}, ir.Allow, "turn"},
		{"tcp 3479 not open", ir.Packet{Src: a("10.20.1.5"), Dst: a("52.129.96.1"), Proto: ir.TCP, DstPort: 3479}, ir.Deny, ""},
		{"media lower bound", ir.Packet{Src: a("10.20.0.0"), Dst: a("52.129.96.1"), Proto: ir.UDP, DstPort: 16384}, ir.Allow, "media"},
		{"media below range", ir.Packet{Src: a("10.20.0.0"), Dst: a("52.129.96.1"), Proto: ir.UDP, DstPort: 16383}, ir.Deny, ""},
		{"media upper bound", ir.Packet{Src: a("10.20.255.255"), Dst: a("52.129.96.1"), Proto: ir.UDP, DstPort: 65535}, ir.Allow, "media"},
		{"outside agents", ir.Packet{Src: a("10.21.0.1"), Dst: a("52.129.96.1"), Proto: ir.UDP, DstPort: 3478}, ir.Deny, ""},
		{"outside provider", ir.Packet{Src: a("10.20.0.1"), Dst: a("52.129.112.0"), Proto: ir.UDP, DstPort: 3478}, ir.Deny, ""},
		{"deny wins", ir.Packet{Src: a("10.20.0.1"), Dst: a("52.129.96.66"), Proto: ir.UDP, DstPort: 3478}, ir.Deny, "deny-bad"},
		{"deny is udp only", ir.Packet{Src: a("10.20.0.1"), Dst: a("52.129.96.66"), Proto: ir.TCP, DstPort: 443}, ir.Allow, "turn"},
		{"ipv6", ir.Packet{Src: a("fd00:20::1"), Dst: a("2603:1063::1"), Proto: ir.UDP, DstPort: 20000}, ir.Allow, "media"},
		{"mixed families match nothing", ir.Packet{Src: a("10.20.0.1"), Dst: a("2603:1063::1"), Proto: ir.UDP, DstPort: 20000}, ir.Deny, ""},
		{"wrong zone", ir.Packet{FromZone: "dmz", ToZone: "internet", Src: a("10.20.0.1"), Dst: a("52.129.96.1"), Proto: ir.UDP, DstPort: 3478}, ir.Deny, ""},
		{"stun by name", ir.Packet{Src: a("10.20.0.1"), Dst: a("74.125.250.129"), DstHost: "stun.l.google.com", Proto: ir.UDP, DstPort: 19302}, ir.Allow, "stun"},
		{"stun literal without name", ir.Packet{Src: a("10.20.0.1"), Dst: a("74.125.250.129"), Proto: ir.UDP, DstPort: 19302}, ir.Deny, ""},
		{"relay return in range", ir.Packet{FromZone: "dmz", ToZone: "agents", Src: a("198.51.100.10"), Dst: a("10.20.3.4"), Proto: ir.UDP, SrcPort: 49152, DstPort: 1024}, ir.Allow, "return"},
		{"relay return from low port", ir.Packet{Src: a("198.51.100.10"), Dst: a("10.20.3.4"), Proto: ir.UDP, SrcPort: 3478, DstPort: 40000}, ir.Deny, ""},
		{"relay return to privileged port", ir.Packet{Src: a("198.51.100.10"), Dst: a("10.20.3.4"), Proto: ir.UDP, SrcPort: 50000, DstPort: 1023}, ir.Deny, ""},
		{"unsolicited provider to agent", ir.Packet{Src: a("52.129.96.1"), Dst: a("10.20.3.4"), Proto: ir.UDP, SrcPort: 3478, DstPort: 50000}, ir.Deny, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := p.Allows(tt.pkt)
			if v.Action != tt.want {
				t.Fatalf("action = %s, want %s", v.Action, tt.want)
			}
			got := ""
			if v.Rule != nil {
				got = v.Rule.Name
			}
			if got != tt.rule {
				t.Fatalf("deciding rule = %q, want %q", got, tt.rule)
			}
			if v.Allowed() != (tt.want == ir.Allow) {
				t.Fatal("Allowed() disagrees with Action")
			}
		})
	}
}

func TestDefaultAllow(t *testing.T) {
	p := testProgram()
	p.Policy.DefaultAction = ir.Allow
	v := p.Allows(ir.Packet{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), Proto: ir.TCP, DstPort: 22})
	if v.Action != ir.Allow || v.Rule != nil {
		t.Fatalf("got %+v, want the default allow", v)
	}
}

func TestPortRangeString(t *testing.T) {
	for _, tt := range []struct {
		r    ir.PortRange
		want string
	}{{ir.PortRange{443, 443}, "443"}, {ir.PortRange{16384, 65535}, "16384-65535"}} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
	e := ir.ServiceEntry{Proto: ir.UDP, SrcPorts: []ir.PortRange{{49152, 65535}}}
	if got := e.String(); got != "udp sport 49152-65535 dport any" {
		t.Errorf("entry = %q", got)
	}
}
