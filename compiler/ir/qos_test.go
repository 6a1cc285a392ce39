package ir_test

import (
	"net/netip"
	"testing"

	"github.com/turnwall/turnwall/compiler/ir"
)

func TestDSCPName(t *testing.T) {
	for v, want := range map[uint8]string{46: "EF", 34: "AF41", 40: "CS5", 0: "CS0", 10: "AF11", 38: "AF43", 44: "VA", 1: "LE", 5: "5", 63: "63", 12: "AF12", 42: "42"} {
		if got := ir.DSCPName(v); got != want {
			t.Errorf("DSCPName(%d) = %s, want %s", v, got, want)
		}
	}
}

// A connection takes the first class whose rules match its first packet;
// its replies are marked only when the class says so, and never fall
// through to a later class.
func TestQoSFor(t *testing.T) {
	p := &ir.Program{
		Policy: ir.Policy{DefaultAction: ir.Deny},
		AddressSets: []ir.AddressSet{
			{Name: "agents", V4: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}},
			{Name: "saas", V4: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		},
		Services: []ir.ServiceSet{
			{Name: "https", Entries: []ir.ServiceEntry{{Proto: ir.TCP, Ports: []ir.PortRange{{First: 443, Last: 443}}}}},
			{Name: "any-tcp", Entries: []ir.ServiceEntry{{Proto: ir.TCP}}},
			{Name: "media", Entries: []ir.ServiceEntry{{Proto: ir.UDP, Ports: []ir.PortRange{{First: 16384, Last: 65535}}}}},
		},
		Rules: []ir.Rule{
			{Name: "sig", Action: ir.Allow, FromZone: "in", ToZone: "out", Src: "agents", Dst: "saas", Service: "https"},
			{Name: "media", Action: ir.Allow, FromZone: "in", ToZone: "out", Src: "agents", Dst: "saas", Service: "media"},
			{Name: "back", Action: ir.Allow, FromZone: "out", ToZone: "in", Src: "saas", Dst: "agents", Service: "any-tcp"},
		},
		QoS: []ir.QoSClass{
			{Name: "signalling", DSCP: 40, Replies: false, Rules: []string{"sig"}},
			{Name: "audio", DSCP: 46, Replies: true, Rules: []string{"media"}},
			{Name: "other", DSCP: 8, Replies: true, Rules: []string{"back"}},
		},
	}
	p.Index()
	a, s := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("192.0.2.9")
	sig := ir.Packet{FromZone: "in", ToZone: "out", Src: a, Dst: s, Proto: ir.TCP, SrcPort: 40000, DstPort: 443}
	media := ir.Packet{FromZone: "in", ToZone: "out", Src: a, Dst: s, Proto: ir.UDP, SrcPort: 40000, DstPort: 20000}
	name := func(c *ir.QoSClass) string {
		if c == nil {
			return "-"
		}
		return c.Name
	}
	for _, tc := range []struct {
		pkt   ir.Packet
		reply bool
		want  string
	}{
		{sig, false, "signalling"},
		{sig.Reverse(), true, "-"}, // not marked, and not "other" although "back" matches it
		{sig.Reverse(), false, "other"},
		{media, false, "audio"},
		{media.Reverse(), true, "audio"},
		{media.Reverse(), false, "-"},
		{ir.Packet{FromZone: "in", ToZone: "out", Src: a, Dst: netip.MustParseAddr("198.51.100.1"), Proto: ir.TCP, SrcPort: 1, DstPort: 443}, false, "-"},
		{ir.Packet{Src: a, Dst: netip.MustParseAddr("2001:db8::1"), Proto: ir.TCP, DstPort: 443}, false, "-"},
	} {
		if got := name(p.QoSFor(tc.pkt, tc.reply)); got != tc.want {
			t.Errorf("%+v reply=%t: class %s, want %s", tc.pkt, tc.reply, got, tc.want)
		}
	}
}
