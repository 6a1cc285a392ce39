package backends

import "github.com/turnwall/turnwall/compiler/ir"

// QoSDecision is how a re-read target configuration marks or classes a
// packet. Class is the target's name of the matching QoS class, "" when
// none matches; DSCP is the value the target writes into the packet, or -1
// when it leaves the field alone (a target that can only queue, such as
// Cisco ASA, classes without marking).
type QoSDecision struct {
	Class string
	DSCP  int
	// Source is the policy location of the class ("policy.hcl:40"), from
	// the target's comments; empty when none matches.
	Source string
}

// QoSConfig is a re-read configuration that can say how it marks packets
// (the qos block). reply: the packet is a reply of its connection, whose
// first packet went the other way.
type QoSConfig interface {
	QoS(pkt ir.Packet, reply bool) QoSDecision
}
