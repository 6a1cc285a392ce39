package nftables

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Text renders the ruleset as one nft -f transaction.
func (rs *Ruleset) Text() []byte {
	var buf bytes.Buffer
	w := &backends.Writer{W: &buf}
	w.Line("#!/usr/sbin/nft -f")
	for _, h := range rs.Header {
		w.Line("# %s", h)
	}
	w.Line("")
	// Create the table if it is missing, so that deleting it cannot fail, then
	// delete and recreate it: one transaction, all or nothing.
	w.Line("table inet %s", rs.Table)
	w.Line("delete table inet %s", rs.Table)
	w.Line("")
	w.Line("table inet %s {", rs.Table)
	for _, s := range rs.Sets {
		w.Line("\tset %s {", s.Name)
		w.Line("\t\ttype %s", s.Type())
		w.Line("\t\tflags interval")
		if s.Comment != "" {
			w.Line("\t\tcomment %q", s.Comment)
		}
		if len(s.Prefixes) > 0 { // "elements = { }" is a syntax error
			// One element a line, each with its comma (nft accepts a trailing
			// one): adding a prefix anywhere changes exactly one line.
			w.Line("\t\telements = {")
			if w.Err == nil {
				// Appended, not formatted: the elements are most of the text.
				elems := make([]byte, 0, len(s.Prefixes)*24)
				for _, p := range s.Prefixes {
					elems = append(elems, "\t\t\t"...)
					if p.IsValid() {
						elems = p.AppendTo(elems)
					} else {
						elems = append(elems, p.String()...) // as %s writes it
					}
					elems = append(elems, ",\n"...)
				}
				buf.Write(elems)
			}
			w.Line("\t\t}")
		}
		w.Line("\t}")
		w.Line("")
	}
	for i, c := range rs.Chains {
		w.Line("\tchain %s {", c.Name)
		if c.Hook != "" {
			prio := c.Priority
			if prio == "" {
				prio = "filter"
			}
			w.Line("\t\ttype filter hook %s priority %s; policy %s;", c.Hook, prio, c.Policy)
		}
		for _, r := range c.Rules {
			w.Line("\t\t%s", r.Text())
		}
		w.Line("\t}")
		if i < len(rs.Chains)-1 {
			w.Line("")
		}
	}
	w.Line("}")
	return buf.Bytes()
}

// Text renders one rule statement. The protocol and ports come first, then
// the interfaces, then the address sets: a packet of another protocol or port
// leaves the rule after one or two comparisons instead of paying for the set
// lookups (the order of a rule's matches never changes what it decides).
func (r Rule) Text() string {
	var parts []string
	if r.CtDir != "" {
		parts = append(parts, "ct direction "+r.CtDir)
	}
	if !r.AddrsFirst {
		parts = r.protoText(parts)
	}
	if len(r.IIF) > 0 {
		parts = append(parts, "iifname "+quotedSet(r.IIF))
	}
	if len(r.OIF) > 0 {
		parts = append(parts, "oifname "+quotedSet(r.OIF))
	}
	addr := "ip"
	if r.Family == 6 {
		addr = "ip6"
	}
	if r.SrcSet != "" {
		parts = append(parts, addr+" saddr @"+r.SrcSet)
	}
	if r.DstSet != "" {
		parts = append(parts, addr+" daddr @"+r.DstSet)
	}
	if r.AddrsFirst {
		parts = r.protoText(parts)
	}
	if len(r.CtState) > 0 {
		parts = append(parts, "ct state "+strings.Join(r.CtState, ","))
	}
	if r.LimitOver != "" {
		parts = append(parts, fmt.Sprintf("limit rate over %s burst %d packets", r.LimitOver, r.LimitBurst))
	}
	if r.Counter {
		parts = append(parts, "counter")
	}
	if r.Log != "" {
		parts = append(parts, "log prefix "+strconv.Quote(r.Log))
	}
	if r.MarkDSCP {
		parts = append(parts, addr+" dscp set "+DSCPText(r.DSCP))
	}
	parts = append(parts, r.Verdict)
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

func (r Rule) protoText(parts []string) []string {
	if r.Proto == "" {
		return parts
	}
	if len(r.SPorts) == 0 && len(r.DPorts) == 0 {
		parts = append(parts, "meta l4proto "+string(r.Proto))
	}
	if len(r.SPorts) > 0 {
		parts = append(parts, string(r.Proto)+" sport "+portSet(r.SPorts))
	}
	if len(r.DPorts) > 0 {
		parts = append(parts, string(r.Proto)+" dport "+portSet(r.DPorts))
	}
	return parts
}

func quotedSet(names []string) string {
	if len(names) == 1 {
		return strconv.Quote(names[0])
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return "{ " + strings.Join(q, ", ") + " }"
}

func portSet(rs []ir.PortRange) string {
	if len(rs) == 1 {
		return rs[0].String()
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return "{ " + strings.Join(s, ", ") + " }"
}
