package fortios

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
)

// QoS in change scripts. turnwall owns its traffic shapers (named tw-...)
// and the shaping policies with ids in policy-ids; nothing else is named.
// The shapers are objects (phase 1 creates them and sets a changed
// priority, phase 3 deletes those that go, after the shaping policies
// using them); the shaping policies follow the firewall policies in phase
// 2: the ones that go are deleted first (a new one may take a name one
// that goes had), the new ones created where they belong in the first-match
// order (behind the previous one, or before the first kept one), the kept
// ones edited field by field (a DSCP change of one class is one
// `set diffservcode-forward` line, and `set diffservcode-rev` when it
// marks replies, per shaping policy of the class), and moved only when out
// of the longest run that keeps its order. Shaping policies decide no
// packet's fate, so they never need a transaction of their own.

// qosState adds a plan's QoS part to a box state.
func qosState(q *qosPlan, st *boxState) {
	if q == nil {
		return
	}
	for _, sh := range q.shapers {
		st.tables[tblShaper][sh.name] = fields{"priority": {sh.priority}, "per-policy": {"disable"}}
	}
	for _, r := range q.rules {
		f := fields{"name": {r.name}, "comment": {r.comment}, "status": {"enable"},
			"srcintf": r.srcintf, "dstintf": r.dstintf, "service": {r.service}, "traffic-shaper": {r.shaper},
			"diffserv-forward": {"enable"}, "diffservcode-forward": {dscpBits(r.dscp)}}
		for k, v := range map[string]string{"srcaddr": r.srcaddr, "dstaddr": r.dstaddr, "srcaddr6": r.srcaddr6, "dstaddr6": r.dstaddr6} {
			if v != "" {
				f[k] = []string{v}
			}
		}
		if r.reverse {
			f["traffic-shaper-reverse"] = []string{r.shaper}
			f["diffserv-reverse"] = []string{"enable"}
			f["diffservcode-rev"] = []string{dscpBits(r.dscp)}
		} else {
			f["diffserv-reverse"] = []string{"disable"}
		}
		id := strconv.FormatUint(r.id, 10)
		st.tables[tblShaping][id] = f
		st.qosOrder = append(st.qosOrder, id)
	}
}

// shapingChanges adds the shaping policy statements of phase 2.
func shapingChanges(b *scriptBuilder, o, n boxState) {
	nt, ot := n.tables[tblShaping], o.tables[tblShaping]
	var box []string // turnwall's shaping policies in the box's order
	for _, id := range o.qosOrder {
		if _, kept := nt[id]; !kept {
			b.add(tblShaping, false, "    delete "+id)
			continue
		}
		box = append(box, id)
	}
	pos := func(id string) int { return index(box, id) }
	moveTo := func(id string, at int) {
		i := pos(id)
		box = append(box[:i:i], box[i+1:]...)
		if at > i {
			at--
		}
		box = append(box[:at], append([]string{id}, box[at:]...)...)
	}
	var keptPos []int
	var keptIDs []string
	for _, id := range n.qosOrder {
		if _, ok := ot[id]; ok {
			keptPos = append(keptPos, pos(id))
			keptIDs = append(keptIDs, id)
		}
	}
	stays := map[string]bool{}
	for _, i := range backends.LongestIncreasing(keptPos) {
		stays[keptIDs[i]] = true
	}
	for i, id := range n.qosOrder {
		nf := nt[id]
		of, kept := ot[id]
		if !kept {
			b.add(tblShaping, false, entryLines(tblShaping, id, nf)...)
			box = append(box, id)
			switch {
			case i > 0:
				b.add(tblShaping, false, fmt.Sprintf("    move %s after %s", id, n.qosOrder[i-1]))
				moveTo(id, pos(n.qosOrder[i-1])+1)
			case len(box) > 1:
				b.add(tblShaping, false, fmt.Sprintf("    move %s before %s", id, box[0]))
				moveTo(id, 0)
			}
			continue
		}
		var first, body []string
		for _, f := range fieldList(tblShaping, of, nf) {
			if equal(sortedCopy(of[f]), sortedCopy(nf[f])) {
				continue
			}
			line := setLine(f, nf[f])
			if strings.HasPrefix(f, "diffservcode-") && len(nf[f]) == 0 {
				// The code goes before the switch that hides it.
				first = append(first, line)
				continue
			}
			body = append(body, line)
		}
		if body = append(first, body...); len(body) > 0 {
			b.add(tblShaping, false, append(append([]string{"    edit " + id}, body...), "    next")...)
		}
		switch {
		case i == 0 && !stays[id] && box[0] != id:
			b.add(tblShaping, false, fmt.Sprintf("    move %s before %s", id, box[0]))
			moveTo(id, 0)
		case i > 0 && (!stays[id] || pos(id) < pos(n.qosOrder[i-1])) && pos(id) != pos(n.qosOrder[i-1])+1:
			b.add(tblShaping, false, fmt.Sprintf("    move %s after %s", id, n.qosOrder[i-1]))
			moveTo(id, pos(n.qosOrder[i-1])+1)
		}
	}
}
