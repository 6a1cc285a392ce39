package fortios

import (
	"bytes"
	"strings"

	"github.com/turnwall/turnwall/backends"
)

// write renders the plan as FortiOS CLI, indented as `show` prints it. Every
// name is double-quoted; every value from the policy has been checked or made
// safe by then.
func (pl *plan) write(out *bytes.Buffer) error {
	w := &backends.Writer{W: out}
	if pl.s.workspace {
		// Workspace mode: nothing applies until the commit; an error or a
		// timeout discards the whole change
		// (https://docs.fortinet.com/document/fortigate/7.6.5/administration-guide/530847,
		// https://docs.fortinet.com/document/fortigate/7.6.6/cli-reference/148302082).
		w.Line("execute config-transaction start")
	}
	// Address objects are most of a large policy's output: each is written
	// as an administrator would, on three short lines without indentation,
	// its name bare (names are letters, digits and . _ - only; see size.go).
	writeAddresses(out, "config firewall address", "subnet", pl.addr4)
	writeAddresses(out, "config firewall address6", "ip6", pl.addr6)
	writeGroups(out, "config firewall addrgrp", pl.groups4, true)
	writeGroups(out, "config firewall addrgrp6", pl.groups6, true)
	if len(pl.customs) > 0 {
		w.Line("config firewall service custom")
		for _, c := range pl.customs {
			w.Line("    edit %s", quote(c.name))
			w.Line("        set protocol TCP/UDP/SCTP")
			w.Line("        set %s-portrange %s", c.proto, strings.Join(c.items, " "))
			w.Line("    next")
		}
		w.Line("end")
	}
	writeGroups(out, "config firewall service group", pl.svcGroups, false)
	if len(pl.feeds) > 0 {
		w.Line("config system external-resource")
		for _, f := range pl.feeds {
			w.Line("    edit %s", quote(f.name))
			w.Line("        set type address")
			w.Line("        set resource %s", quote(f.url))
			w.Line("        set refresh-rate %d", pl.s.feeds.refresh)
			w.Line("    next")
		}
		w.Line("end")
	}

	w.Line("config firewall policy")
	for _, p := range pl.policies {
		writePolicy(w, p)
	}
	// New policies land at the bottom of the list; `move` pins the IR order
	// without renumbering (policy ids never change)
	// (https://community.fortinet.com/t5/FortiGate/Technical-Tip-Using-the-CLI-to-change-the-order-of-the-IPV4/ta-p/197353).
	if pl.s.place.position != "bottom" && len(pl.policies) > 0 {
		w.Line("    move %d %s %d", pl.policies[0].id, pl.s.place.position, pl.s.place.anchor)
	}
	for i := 1; i < len(pl.policies); i++ {
		w.Line("    move %d after %d", pl.policies[i].id, pl.policies[i-1].id)
	}
	w.Line("end")
	writeQoS(w, pl.qos)
	if pl.s.workspace {
		w.Line("execute config-transaction commit")
	}
	return w.Err
}

// Member lines stay short (a provider with thousands of ranges would
// otherwise give one line of hundreds of kilobytes) and their breaks depend on
// the members themselves, not on their count: a line ends after a member whose
// hash is 0 modulo chunkModulus, or at maxMembersPerLine. Adding one range to
// a 10,000-range provider then changes one member line, where fixed-size lines
// would shift every line after it and bury the change in the diff.
const (
	chunkModulus      = 32
	maxMembersPerLine = 100
)

// memberLines splits members into content-defined lines; a list that fits on
// one line stays on one.
func memberLines(members []string) [][]string {
	if len(members) <= maxMembersPerLine {
		return [][]string{members}
	}
	var lines [][]string
	start := 0
	for i, m := range members {
		if fnv32a(m)%chunkModulus == 0 || i+1-start == maxMembersPerLine || i == len(members)-1 {
			lines = append(lines, members[start:i+1])
			start = i + 1
		}
	}
	return lines
}

// fnv32a is the 32-bit FNV-1a hash of s (hash/fnv's New32a), without a
// hasher and a copy of s per member.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// writeAddresses writes an address table: `set subnet A.B.C.D/N` (type
// ipmask is the default) or `set ip6 PREFIX` (ipprefix is address6's), or
// an FQDN object.
func writeAddresses(buf *bytes.Buffer, header, field string, addrs []address) {
	if len(addrs) == 0 {
		return
	}
	// Appended, not formatted: these are most of a large policy's output.
	buf.WriteString(header)
	buf.WriteByte('\n')
	var line []byte
	for _, a := range addrs {
		line = append(append(append(line[:0], "edit "...), a.name...), '\n')
		if a.fqdn != "" {
			line = append(append(append(line, "set type fqdn\nset fqdn "...), quote(a.fqdn)...), '\n')
		} else {
			line = append(append(append(line, "set "...), field...), ' ')
			line = append(a.prefix.AppendTo(line), '\n')
		}
		buf.Write(append(line, "next\n"...))
	}
	buf.WriteString("end\n")
}

// sizeHint is about the size of the output: its address objects (three
// lines each) and group members, and room for the rest.
func (pl *plan) sizeHint() int {
	n := 16 << 10
	for _, list := range [2][]address{pl.addr4, pl.addr6} {
		for _, a := range list {
			n += len(a.name) + len(a.fqdn) + 64
		}
	}
	for _, list := range [2][]group{pl.groups4, pl.groups6} {
		for _, g := range list {
			for _, m := range g.members {
				n += len(m) + 1
			}
		}
	}
	return n
}

// writeGroups writes address or service groups. `set member` replaces the
// whole member list, so members dropped from the policy leave the group;
// `append member` adds the rest of a long list.
func writeGroups(buf *bytes.Buffer, header string, groups []group, bare bool) {
	if len(groups) == 0 {
		return
	}
	buf.WriteString(header + "\n")
	for _, g := range groups {
		buf.WriteString("    edit " + quote(g.name) + "\n")
		verb := "set"
		for _, line := range memberLines(g.members) {
			// A member line of a large group is long: written straight,
			// not joined and formatted first.
			buf.WriteString("        " + verb + " member")
			for _, m := range line {
				buf.WriteByte(' ')
				if bare {
					buf.WriteString(m)
				} else {
					buf.WriteString(quote(m))
				}
			}
			buf.WriteByte('\n')
			verb = "append"
		}
		if g.comment != "" {
			buf.WriteString("        set comment " + quote(g.comment) + "\n")
		}
		buf.WriteString("    next\n")
	}
	buf.WriteString("end\n")
}

// writePolicy sets, or unsets, every field turnwall owns, so that applying
// the output again converges even when an id changed its meaning (a policy
// that lost its IPv6 addresses must not keep the old ones).
func writePolicy(w *backends.Writer, p policy) {
	w.Line("    edit %d", p.id)
	w.Line("        set name %s", quote(p.name))
	w.Line("        set srcintf %s", quoteAll(p.srcintf))
	w.Line("        set dstintf %s", quoteAll(p.dstintf))
	w.Line("        set action %s", p.action)
	addr := func(field, name string) {
		if name == "" {
			w.Line("        unset %s", field)
		} else {
			w.Line("        set %s %s", field, quote(name))
		}
	}
	addr("srcaddr", p.srcaddr)
	addr("dstaddr", p.dstaddr)
	addr("srcaddr6", p.srcaddr6)
	addr("dstaddr6", p.dstaddr6)
	if p.enabled {
		w.Line("        set status enable")
	} else {
		w.Line("        set status disable")
	}
	w.Line("        set schedule %s", quote(alwaysSched))
	w.Line("        set service %s", quote(p.service))
	if p.sslProfile != "" {
		// The inspection profile is a security profile setting: it needs
		// utm-status enable (as in Fortinet's own provider example,
		// fortinetdev/terraform-provider-fortios fortios_firewall_policy).
		// certificate-inspection only reads the SNI and server certificate and
		// never decrypts, so TURN over TLS reaches the relay untouched.
		w.Line("        set utm-status enable")
		w.Line("        set ssl-ssh-profile %s", quote(p.sslProfile))
	}
	if p.log {
		w.Line("        set logtraffic all")
	} else {
		w.Line("        set logtraffic disable")
	}
	w.Line("        set comments %s", quote(p.comment))
	w.Line("    next")
}

func quote(s string) string { return `"` + s + `"` }

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, " ")
}
