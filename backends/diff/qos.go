package diff

import (
	"fmt"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// qosChanges lists what changed in the qos block, class by class: classes
// added or removed, their DSCP, replies and order, and the rules they mark.
func qosChanges(oldP, newP *ir.Program) []string {
	var out []string
	oldC, newC := map[string]*ir.QoSClass{}, map[string]*ir.QoSClass{}
	oldPos, newPos := map[string]int{}, map[string]int{}
	for i := range oldP.QoS {
		oldC[oldP.QoS[i].Name], oldPos[oldP.QoS[i].Name] = &oldP.QoS[i], i
	}
	for i := range newP.QoS {
		newC[newP.QoS[i].Name], newPos[newP.QoS[i].Name] = &newP.QoS[i], i
	}
	dscp := func(c *ir.QoSClass) string { return fmt.Sprintf("%s(%d)", ir.DSCPName(c.DSCP), c.DSCP) }
	for i := range newP.QoS {
		n := &newP.QoS[i]
		o, ok := oldC[n.Name]
		if !ok {
			out = append(out, fmt.Sprintf("qos class %s added: dscp %s, replies %t, %d rules", n.Name, dscp(n), n.Replies, len(n.Rules)))
			continue
		}
		if o.DSCP != n.DSCP {
			out = append(out, fmt.Sprintf("qos class %s: dscp %s -> %s", n.Name, dscp(o), dscp(n)))
		}
		if o.Replies != n.Replies {
			out = append(out, fmt.Sprintf("qos class %s: replies %t -> %t", n.Name, o.Replies, n.Replies))
		}
		if oldPos[n.Name] != i {
			out = append(out, fmt.Sprintf("qos class %s: position %d -> %d", n.Name, oldPos[n.Name]+1, i+1))
		}
		if added, removed := minus(n.Rules, o.Rules), minus(o.Rules, n.Rules); len(added)+len(removed) > 0 {
			var parts []string
			if len(added) > 0 {
				parts = append(parts, "+"+strings.Join(added, " +"))
			}
			if len(removed) > 0 {
				parts = append(parts, "-"+strings.Join(removed, " -"))
			}
			out = append(out, fmt.Sprintf("qos class %s: rules %s", n.Name, strings.Join(parts, " ")))
		}
	}
	for i := range oldP.QoS {
		if _, ok := newC[oldP.QoS[i].Name]; !ok {
			out = append(out, fmt.Sprintf("qos class %s removed (dscp %s)", oldP.QoS[i].Name, dscp(&oldP.QoS[i])))
		}
	}
	return out
}
