package backendtest

import (
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// CheckQoS asserts that cfg marks (or classes) every generated packet as
// p.QoSFor says: each packet of the property test, and its reverse, both as
// the first direction of a connection and as a reply. className: compare the
// target's class names with the IR's, and the sources the comments trace to
// (not for hostile twins, whose names and files a target rewrites). A program without a qos block is skipped; a target
// whose re-read configuration cannot say how it marks fails.
func CheckQoS(t *testing.T, p *ir.Program, cfg backends.Config, opts EquivOptions, max int, className bool) {
	t.Helper()
	if len(p.QoS) == 0 {
		return
	}
	qc, ok := cfg.(backends.QoSConfig)
	if !ok {
		t.Fatalf("the policy has a qos block but the re-read %T cannot say how it marks packets", cfg)
	}
	var pkts []ir.Packet
	for seed := uint64(11); len(pkts) < max && seed <= 18; seed++ {
		pkts = append(pkts, Packets(p, seed, max-len(pkts))...)
	}
	failures, marked := 0, 0
	for _, base := range pkts {
		base.DstHost = ""
		for _, pkt := range []ir.Packet{base, base.Reverse()} {
			for _, reply := range []bool{false, true} {
				q := pkt
				want := backends.QoSDecision{DSCP: -1}
				if opts.QoSPerPacket {
					q.FromZone = ""
					if c := perPacketQoS(p, q); c != nil {
						want = backends.QoSDecision{Class: c.Name, DSCP: int(c.DSCP), Source: c.Origin.Source.String()}
						if opts.QoSClassOnly {
							want.DSCP = -1
						}
						marked++
					}
				} else if opts.QoSSession {
					want = sessionQoS(p, q, reply)
					if want.DSCP >= 0 || want.Class != "" {
						marked++
					}
				} else if c := p.QoSFor(q, reply); c != nil {
					want = backends.QoSDecision{Class: c.Name, DSCP: int(c.DSCP), Source: c.Origin.Source.String()}
					if opts.QoSClassOnly {
						want.DSCP = -1
					}
					marked++
				}
				got := qc.QoS(pkt, reply)
				if !className {
					got.Class, want.Class, got.Source, want.Source = "", "", "", ""
				}
				if got != want {
					t.Errorf("%s reply=%t: target marks %+v, IR says %+v", describe(pkt), reply, got, want)
					if failures++; failures == 10 {
						t.Fatal("too many differences")
					}
				}
			}
		}
	}
	if marked == 0 {
		t.Fatalf("no generated packet is in a QoS class: the test proves nothing")
	}
}

// sessionQoS is what a target that acts on sessions does: the class of the
// session's first packet (all classes mark both directions), and the DSCP
// of the class of the rule that allows the session.
func sessionQoS(p *ir.Program, pkt ir.Packet, reply bool) backends.QoSDecision {
	out := backends.QoSDecision{DSCP: -1}
	s := pkt
	if reply {
		s = pkt.Reverse()
	}
	if c := p.QoSFor(s, false); c != nil {
		out.Class, out.Source = c.Name, c.Origin.Source.String()
	}
	if v := p.Allows(s); v.Allowed() && v.Rule != nil {
		for i := range p.QoS {
			for _, r := range p.QoS[i].Rules {
				if r == v.Rule.Name {
					out.DSCP = int(p.QoS[i].DSCP)
				}
			}
		}
	}
	return out
}

// perPacketQoS is what a target that classes packets does: the first class
// one of whose rules matches pkt, or matches it reversed when the class
// marks replies.
func perPacketQoS(p *ir.Program, pkt ir.Packet) *ir.QoSClass {
	if pkt.Src.Is4() != pkt.Dst.Is4() {
		return nil
	}
	rev := pkt.Reverse()
	for i := range p.QoS {
		c := &p.QoS[i]
		for _, r := range p.QoSRules(c) {
			if p.Matches(r, pkt) || c.Replies && p.Matches(r, rev) {
				return c
			}
		}
	}
	return nil
}
