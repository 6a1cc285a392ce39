package main

import (
	"net/netip"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// TestTraceReplyTargets: every traceable target has a connection-tracking
// model for --reply, so none is refused.
func TestTraceReplyTargets(t *testing.T) {
	for _, name := range traceable(registry()) {
		if replyMechanism[name] == "" {
			t.Errorf("traceable target %s has no reply mechanism", name)
		}
	}
}

// TestTraceReplyDecision: the reply of an allowed connection passes and
// names the original rule; the reply of a denied one is decided as a new
// connection, whatever that decides.
func TestTraceReplyDecision(t *testing.T) {
	pkt := ir.Packet{FromZone: "a", ToZone: "b", Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("2001:db8::1"), Proto: "udp", SrcPort: 50000, DstPort: 3478, DstHost: "turn.example.com"}
	back := replyPacket(pkt)
	want := ir.Packet{FromZone: "b", ToZone: "a", Src: pkt.Dst, Dst: pkt.Src, Proto: "udp", SrcPort: 3478, DstPort: 50000}
	if back != want {
		t.Fatalf("reply %+v, want %+v", back, want)
	}
	if got := describePacket(pkt); got != "udp [fd00::1]:50000 -> [2001:db8::1]:3478, zone a -> b" {
		t.Fatalf("describePacket: %q", got)
	}
	called := false
	asNew := func() backends.Decision {
		called = true
		return backends.Decision{Action: ir.Allow, Rule: "r2", Source: "p.hcl:9"}
	}
	action, line := decideReply("nftables", backends.Decision{Action: ir.Allow, Rule: "r1", Source: "p.hcl:3"}, asNew)
	if action != ir.Allow || called || line != "ALLOW as a reply (ct state established,related accept); the connection was allowed by rule r1 (p.hcl:3)" {
		t.Fatalf("allowed connection: %v %q (asked as new: %v)", action, line, called)
	}
	action, line = decideReply("asa", backends.Decision{Action: ir.Deny}, asNew)
	if action != ir.Allow || !called || line != "ALLOW: no allowed connection to reply to (the original direction: DENY by the policy's default action); as a new connection: ALLOW by rule r2 (p.hcl:9)" {
		t.Fatalf("denied connection: %v %q", action, line)
	}
}
