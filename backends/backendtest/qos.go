package backendtest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// QoSClass is the index of p's QoS class of that name; the test fails when
// there is none.
func QoSClass(t testing.TB, p *ir.Program, name string) int {
	t.Helper()
	for i, c := range p.QoS {
		if c.Name == name {
			return i
		}
	}
	t.Fatalf("the program has no QoS class %q", name)
	return -1
}

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

// MutateQoS makes one random edit of p's qos block in place, as a change
// of policy would: a class's DSCP, its replies, two classes swapped, a
// class removed, a rule added to or removed from a class, or, without a qos
// block, one added (a class marking some allow rules). Rules stay in at
// most one class, classes at most four. It reports whether it edited
// anything. p.Index() is the caller's.
func MutateQoS(p *ir.Program, rng *rand.Rand) bool {
	var allows []string
	inClass := map[string]bool{}
	for _, c := range p.QoS {
		for _, r := range c.Rules {
			inClass[r] = true
		}
	}
	for _, r := range p.Rules {
		if r.Action == ir.Allow {
			allows = append(allows, r.Name)
		}
	}
	if len(allows) == 0 {
		return false
	}
	dscps := []uint8{46, 34, 26, 40, 24, 18, 44, 10, 0}
	pick := func() uint8 { return dscps[rng.IntN(len(dscps))] }
	if len(p.QoS) == 0 {
		c := ir.QoSClass{Name: "mut-media", DSCP: pick(), Replies: rng.IntN(2) == 0,
			Origin: ir.Origin{Source: p.Policy.Source}}
		for _, r := range allows {
			if rng.IntN(2) == 0 || len(c.Rules) == 0 {
				c.Rules = append(c.Rules, r)
			}
		}
		p.QoS = append(p.QoS, c)
		return true
	}
	c := &p.QoS[rng.IntN(len(p.QoS))]
	switch rng.IntN(7) {
	case 0: // another DSCP
		v := pick()
		if v == c.DSCP {
			return false
		}
		c.DSCP = v
	case 1: // replies toggled
		c.Replies = !c.Replies
	case 2: // two classes swapped
		if len(p.QoS) < 2 {
			return false
		}
		i := rng.IntN(len(p.QoS) - 1)
		p.QoS[i], p.QoS[i+1] = p.QoS[i+1], p.QoS[i]
	case 3: // a class removed (the block with its last)
		i := rng.IntN(len(p.QoS))
		p.QoS = append(p.QoS[:i:i], p.QoS[i+1:]...)
		if len(p.QoS) == 0 {
			p.QoS = nil
		}
	case 4: // a rule no class marks joins one
		var free []string
		for _, r := range allows {
			if !inClass[r] {
				free = append(free, r)
			}
		}
		if len(free) == 0 {
			return false
		}
		c.Rules = append(c.Rules, free[rng.IntN(len(free))])
	case 5: // a rule leaves its class
		if len(c.Rules) < 2 {
			return false
		}
		i := rng.IntN(len(c.Rules))
		c.Rules = append(c.Rules[:i:i], c.Rules[i+1:]...)
	case 6: // a new class for a rule no class marks
		var free []string
		for _, r := range allows {
			if !inClass[r] {
				free = append(free, r)
			}
		}
		if len(free) == 0 || len(p.QoS) >= 4 {
			return false
		}
		name := ""
		for n := len(p.QoS); name == ""; n++ {
			name = fmt.Sprintf("mut-%d", n)
			for _, o := range p.QoS {
				if o.Name == name {
					name = ""
				}
			}
		}
		p.QoS = append(p.QoS, ir.QoSClass{Name: name, DSCP: pick(), Replies: true,
			Rules: []string{free[rng.IntN(len(free))]}, Origin: c.Origin})
	}
	return true
}

// QoSSampled reports whether some packet CheckQoS(p, ..., max, ...) would
// generate is in a QoS class (under the IR's semantics or PAN-OS's
// sessions), so a proof over random policies can skip a qos block whose
// classes mark nothing the generator reaches instead of failing.
func QoSSampled(p *ir.Program, max int) bool {
	if len(p.QoS) == 0 {
		return false
	}
	n := 0
	for seed := uint64(11); n < max && seed <= 18; seed++ {
		pkts := Packets(p, seed, max-n)
		n += len(pkts)
		for _, base := range pkts {
			base.DstHost = ""
			for _, pkt := range []ir.Packet{base, base.Reverse()} {
				if p.QoSFor(pkt, false) != nil || perPacketQoS(p, pkt) != nil {
					return true
				}
				if s := sessionQoS(p, pkt, false); s.DSCP >= 0 || s.Class != "" {
					return true
				}
			}
		}
	}
	return false
}
