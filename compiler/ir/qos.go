package ir

import (
	"bufio"
	"fmt"
	"strconv"
)

// QoSClass marks the packets of some allowed flows with a DSCP value. Classes
// are in the policy's declaration order and a packet takes the first class
// that matches it; each rule belongs to at most one class.
type QoSClass struct {
	Name string `json:"name"`
	DSCP uint8  `json:"dscp"`
	// Replies: the replies of the flows are marked too (the direction back
	// to whoever opened the connection). Otherwise only the packets in the
	// direction of the connection's first packet are.
	Replies bool `json:"replies"`
	// Rules names the allow rules whose connections the class marks, in the
	// program's rule order.
	Rules       []string `json:"rules"`
	Description string   `json:"description,omitempty"`
	Origin      Origin   `json:"origin"`
}

// DSCPName is the conventional name of a DSCP value (EF, AF41, CS5, ...), or
// its decimal value when it has none.
func DSCPName(v uint8) string {
	switch {
	case v == 46:
		return "EF"
	case v == 44:
		return "VA"
	case v == 1:
		return "LE"
	case v%8 == 0:
		return "CS" + strconv.Itoa(int(v/8))
	case v >= 10 && v <= 38 && v%2 == 0 && (v%8)/2 >= 1 && (v%8)/2 <= 3:
		return fmt.Sprintf("AF%d%d", v/8, (v%8)/2)
	}
	return strconv.Itoa(int(v))
}

// Reverse is the packet travelling the other way: a reply of pkt's
// connection, as the gateway sees it.
func (pkt Packet) Reverse() Packet {
	return Packet{FromZone: pkt.ToZone, ToZone: pkt.FromZone, Src: pkt.Dst, Dst: pkt.Src,
		Proto: pkt.Proto, SrcPort: pkt.DstPort, DstPort: pkt.SrcPort}
}

// QoSFor returns the class whose DSCP a packet leaves the gateway with, or
// nil when no class marks it. A connection takes the first class (in the
// policy's order) one of whose rules matches its first packet. reply says
// pkt travels against its connection (its source is the server): the class
// is then the one of the connection (pkt reversed), and marks pkt only when
// the class marks replies. It is the reference semantics every backend's
// QoS output is tested against.
func (p *Program) QoSFor(pkt Packet, reply bool) *QoSClass {
	if pkt.Src.Is4() != pkt.Dst.Is4() {
		return nil
	}
	fwd := pkt
	if reply {
		fwd = pkt.Reverse()
	}
	fwd.DstHost = ""
	c := p.SessionClass(fwd)
	if c == nil || reply && !c.Replies {
		return nil
	}
	return c
}

// SessionClass returns the class of a connection whose first packet is
// pkt: the first class one of whose rules matches it, or nil.
func (p *Program) SessionClass(pkt Packet) *QoSClass {
	for i := range p.QoS {
		c := &p.QoS[i]
		for _, name := range c.Rules {
			if r := p.Rule(name); r != nil && p.Matches(r, pkt) {
				return c
			}
		}
	}
	return nil
}

// Rule returns the named rule (the first of that name), or nil.
func (p *Program) Rule(name string) *Rule {
	if i, ok := p.ruleIndex[name]; ok && i < len(p.Rules) && p.Rules[i].Name == name {
		return &p.Rules[i]
	}
	for i := range p.Rules {
		if p.Rules[i].Name == name {
			return &p.Rules[i]
		}
	}
	return nil
}

// QoSRules returns, for each class in order, the rules it marks.
func (p *Program) QoSRules(c *QoSClass) []*Rule {
	out := make([]*Rule, 0, len(c.Rules))
	for _, n := range c.Rules {
		if r := p.Rule(n); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// writeQoSText renders the classes; nothing without a qos block.
func (p *Program) writeQoSText(bw *bufio.Writer) {
	for _, c := range p.QoS {
		fmt.Fprintf(bw, "\nqos %s dscp=%s(%d) replies=%t  # %s\n", c.Name, DSCPName(c.DSCP), c.DSCP, c.Replies, c.Origin.Source)
		if c.Description != "" {
			fmt.Fprintf(bw, "  description %s\n", strconv.Quote(c.Description))
		}
		for _, r := range c.Rules {
			fmt.Fprintf(bw, "  rule %s\n", r)
		}
	}
}
