package irtarget

import (
	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// QoS answers from the re-read program's classes, so that the property test
// checks the QoS section's JSON round trip too.
func (c config) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	if cl := c.p.QoSFor(pkt, reply); cl != nil {
		return backends.QoSDecision{Class: cl.Name, DSCP: int(cl.DSCP), Source: cl.Origin.Source.String()}
	}
	return backends.QoSDecision{DSCP: -1}
}
