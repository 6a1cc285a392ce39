package nftables

import (
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/ir"
)

// QoSChain is the name of the chain that marks the qos block's flows.
const QoSChain = "qos_mark"

// qosChain builds the marking chain: a base chain on the forward hook at
// mangle priority (before the filter chains), one rule per class, marked
// rule, direction, family and protocol. Each sets the DSCP field and
// accepts, which ends this chain only (the policy chains still decide), so
// a connection takes the first class that matches it, as in the IR.
// Original direction rules match the flow as the policy rule does; reply
// rules match it reversed (ct direction reply, addresses, zones and ports
// swapped), and set no DSCP for a class with replies = false. It returns
// nil when the policy has no qos block.
func qosChain(p *ir.Program, setsOf map[string]famSets, ifaces map[string][]string) *Chain {
	if len(p.QoS) == 0 {
		return nil
	}
	c := &Chain{Name: QoSChain, Hook: "forward", Priority: "mangle", Policy: "accept"}
	for ci := range p.QoS {
		cl := &p.QoS[ci]
		source := naming.Comment(cl.Origin.Source.String(), `"\`, maxComment/2)
		for _, r := range p.QoSRules(cl) {
			svc := p.Service(r.Service)
			if svc == nil {
				continue
			}
			comment := naming.Comment("qos:"+cl.Name+":"+r.Name, `"\ `, maxComment-len(source)-1) + " " + source
			src, dst := setsOf[r.Src], setsOf[r.Dst]
			for _, dir := range []string{"original", "reply"} {
				for _, d := range []struct {
					fam      int
					src, dst string
				}{{4, src.v4, dst.v4}, {4, src.v4, dst.fq4}, {6, src.v6, dst.v6}, {6, src.v6, dst.fq6}} {
					if d.src == "" || d.dst == "" {
						continue
					}
					for _, e := range svc.Entries {
						rule := Rule{CtDir: dir, IIF: ifaces[r.FromZone], OIF: ifaces[r.ToZone], Family: d.fam,
							SrcSet: d.src, DstSet: d.dst, Proto: e.Proto, SPorts: e.SrcPorts, DPorts: e.Ports,
							Counter: true, MarkDSCP: true, DSCP: cl.DSCP, Verdict: "accept", Comment: comment}
						if dir == "reply" && !cl.Replies {
							// The class leaves its replies alone; the rule
							// still ends the chain for them, so that they
							// take no later class either.
							rule.MarkDSCP, rule.DSCP = false, 0
						}
						if dir == "reply" {
							rule.IIF, rule.OIF = rule.OIF, rule.IIF
							rule.SrcSet, rule.DstSet = rule.DstSet, rule.SrcSet
							rule.SPorts, rule.DPorts = rule.DPorts, rule.SPorts
						}
						c.Rules = append(c.Rules, rule)
					}
				}
			}
		}
	}
	return c
}

// DSCPText is how nft writes a DSCP value: its name for the class
// selectors, assured forwarding and EF (the names nft lists them by), the
// number otherwise.
func DSCPText(v uint8) string {
	n := ir.DSCPName(v)
	if strings.HasPrefix(n, "CS") || strings.HasPrefix(n, "AF") || n == "EF" {
		return strings.ToLower(n)
	}
	return strconv.Itoa(int(v))
}

// parseDSCP reads DSCPText back (and nft's 0x hex form).
func parseDSCP(s string) (uint8, bool) {
	for v := 0; v < 64; v++ {
		if DSCPText(uint8(v)) == s {
			return uint8(v), true
		}
	}
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		if v, err := strconv.ParseUint(h, 16, 8); err == nil && v < 64 {
			return uint8(v), true
		}
	}
	return 0, false
}

// QoS follows the marking chain for a packet: the first rule that matches
// (conntrack direction, interfaces, addresses, ports) sets the DSCP.
func (c *nftConfig) QoS(pkt ir.Packet, reply bool) backends.QoSDecision {
	none := backends.QoSDecision{DSCP: -1}
	if c.qos == "" {
		return none
	}
	dir := "original"
	if reply {
		dir = "reply"
	}
	iif, oif := first(c.zones[pkt.FromZone]), first(c.zones[pkt.ToZone])
	pkt.DstHost = ""
	for _, r := range c.chains[c.qos] {
		if r.ctdir != "" && r.ctdir != dir || !c.matches(r, pkt, iif, oif) {
			continue
		}
		if r.dscp < 0 {
			return none
		}
		d := backends.QoSDecision{DSCP: r.dscp}
		// Comments are "qos:CLASS:RULE FILE:LINE".
		if name, src, ok := strings.Cut(r.comment, " "); ok {
			d.Source = src
			if rest, ok := strings.CutPrefix(name, "qos:"); ok {
				d.Class, _, _ = strings.Cut(rest, ":")
			}
		}
		return d
	}
	return none
}
