package asa

// Change scripts: the exact commands that take a box holding one version of
// turnwall's part to the next, in an order that keeps every packet's
// decision at its old or its new value at each step:
//
//  1. new FQDN objects and groups;
//  2. new ACL entries, inserted top-down at "line N" into turnwall's block,
//     so a packet meets either a new entry that decides as the new version
//     or falls through to the old entries;
//  3. new members of existing groups (widening), then
//  4. members no longer wanted removed (narrowing): each address or port
//     changes its membership once, while the entries of both versions are
//     there;
//  5. old ACL entries removed bottom-up (no access-list ...), so a packet
//     either meets its old deciding entry or none of the old ones;
//  6. groups and objects nothing uses any more removed, groups first.
//
// An ACE that only moves goes in first as a stand-in naming a one-member
// group (group-object) in place of its destination group, and is swapped
// for the real entry after the old copy is removed.
//
// Entries that stay are not touched; groups keep their names, so a changed
// address set is "object-group network NAME" and its network-object lines.

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

var _ backends.Changer = Backend{}

// changeHeader starts every change script (and a placement install).
const changeHeader = ": turnwall " + FileName + " for Cisco ASA 9.x: change script"

// Change implements backends.Changer. It needs the acl parameter: change
// scripts place turnwall's entries in the box's existing ACLs.
func (Backend) Change(old, new *ir.Program, opts backends.Options) ([]backends.File, error) {
	if opts.Format != "" && opts.Format != "cli" {
		return nil, fmt.Errorf("asa target has no format %q (cli)", opts.Format)
	}
	if !placed(opts) {
		return nil, fmt.Errorf("asa change scripts need the acl parameter (ZONE:ACL,... naming each zone's existing inbound ACL)")
	}
	pl, err := parsePlacement(opts)
	if err != nil {
		return nil, err
	}
	for _, p := range []*ir.Program{old, new} {
		if p == nil {
			continue
		}
		if err := backends.FirstConstraint(Backend{}.Check(p, opts)); err != nil {
			return nil, err
		}
	}
	so, err := desired(old, pl)
	if err != nil {
		return nil, err
	}
	sn, err := desired(new, pl)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := &backends.Writer{W: &buf}
	name := func(p *ir.Program) string {
		if p == nil {
			return "(nothing)"
		}
		return "policy " + text(p.Policy.Name, 60) + " (" + sourceToken(p.Policy.Source) + ")"
	}
	w.Line("%s", changeHeader)
	w.Line(": from %s", name(old))
	w.Line(": to   %s", name(new))
	w.Line(": Enter in global configuration mode. Only lines turnwall owns are added or removed:")
	w.Line(": remarks starting %q, groups and objects named %s*. Each ACL's turnwall block", strings.TrimSpace(ownMark), pl.prefix)
	w.Line(": starts at line %d.", pl.line)
	if new != nil {
		// The zones' ACLs and interfaces after the change, read back by
		// turnwall trace (readPlacement).
		zones := append([]ir.Zone(nil), new.Zones...)
		sort.Slice(zones, func(i, j int) bool { return zones[i].Name < zones[j].Name })
		for _, z := range zones {
			w.Line(": turnwall placement zone %s acl %s interfaces %s", quote(z.Name), pl.acls[z.Name], strings.Join(z.Interfaces, " "))
		}
	}
	if sn.qos != nil {
		w.Line(": QoS (the qos block): the ASA sets no DSCP (it keeps the marking packets arrive")
		w.Line(": with); every class goes into the interface's one priority queue; an interface")
		w.Line(": takes one service-policy, so these must have none of the box's own (check")
		w.Line(": show running-config service-policy): %s.", strings.Join(sn.qos.ifOrder, " "))
	}
	cmds := changeCommands(so, sn, pl)
	var acls []string
	for a := range sn.blocks {
		acls = append(acls, a)
	}
	for a := range so.blocks {
		if _, ok := sn.blocks[a]; !ok {
			acls = append(acls, a)
		}
	}
	sort.Strings(acls)
	if pl.remark != "" {
		for _, a := range acls {
			w.Line(": check first: show access-list %s | include remark %s", a, pl.remark)
			w.Line(":   must show it at line %d; if not, do not run this script.", pl.line+len(so.blocks[a]))
		}
	}
	if len(cmds) == 0 {
		w.Line(": no change")
	}
	for _, c := range cmds {
		w.Line("%s", c)
	}
	if w.Err != nil {
		return nil, w.Err
	}
	return []backends.File{{Name: FileName, Data: buf.Bytes()}}, nil
}

// scriptBuf collects commands; sub-commands of one object share its header.
type scriptBuf struct {
	lines []string
	mode  string
}

func (s *scriptBuf) top(l string) { s.lines, s.mode = append(s.lines, l), "" }

func (s *scriptBuf) sub(header, l string) {
	if s.mode != header {
		s.lines, s.mode = append(s.lines, header), header
	}
	s.lines = append(s.lines, " "+l)
}

// mergeItem is one entry of the merged old and new block of an ACL.
type mergeItem struct {
	text    string
	kind    byte // 'k' keep, 'd' old only, 'i' new only
	present bool
	twin    string // an ACE that moves: its stand-in while the old copy is there
}

// merge aligns two blocks on their heaviest common subsequence: an ACE kept
// weighs more than any number of remarks, so that remarks never make an ACE
// move (a moved ACE is removed before its new copy goes in).
func merge(a, b []string) []*mergeItem {
	weight := func(s string) int {
		if strings.HasPrefix(s, "remark ") {
			return 1
		}
		return 1 << 16
	}
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + weight(a[i])
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []*mergeItem
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j] && lcs[i][j] == lcs[i+1][j+1]+weight(a[i]):
			out = append(out, &mergeItem{text: a[i], kind: 'k', present: true})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, &mergeItem{text: a[i], kind: 'd', present: true})
			i++
		default:
			out = append(out, &mergeItem{text: b[j], kind: 'i'})
			j++
		}
	}
	return out
}

func changeCommands(so, sn *ownedState, pl *placement) []string {
	s := &scriptBuf{}
	// 1. New objects and groups.
	for _, name := range sn.order {
		o := sn.objs[name]
		if prev, ok := so.objs[name]; ok && prev.kind == o.kind {
			continue
		}
		for _, l := range o.lines {
			s.sub(o.kind+" "+name, l)
		}
	}
	var acls []string
	for a := range sn.blocks {
		acls = append(acls, a)
	}
	for a := range so.blocks {
		if _, ok := sn.blocks[a]; !ok {
			acls = append(acls, a)
		}
	}
	sort.Strings(acls)
	merged := map[string][]*mergeItem{}
	for _, a := range acls {
		merged[a] = merge(so.blocks[a], sn.blocks[a])
	}
	// An ACE that moves cannot be entered twice (the ASA refuses a duplicate
	// entry): its new copy goes in first as a twin naming a group that holds
	// just its destination group, and is swapped for the real entry once the
	// old copy is gone.
	var twins []string
	for _, a := range acls {
		for _, it := range merged[a] {
			if it.kind != 'i' || strings.HasPrefix(it.text, "remark ") {
				continue
			}
			for _, d := range merged[a] {
				if d.kind == 'd' && d.text == it.text {
					f := strings.Fields(it.text)
					k := len(f) - 1
					for k > 0 && f[k-1] != "object-group" {
						k--
					}
					twin := fmt.Sprintf("%smove-%d", pl.prefix, len(twins)+1)
					s.sub("object-group network "+twin, "group-object "+f[k])
					twins = append(twins, twin)
					f[k] = twin
					it.twin = strings.Join(f, " ")
					break
				}
			}
		}
	}
	// 2. New ACL entries, top-down.
	for _, a := range acls {
		ms := merged[a]
		for k, it := range ms {
			if it.kind != 'i' {
				continue
			}
			if it.twin == "" {
				// A remark that moves: the old copy goes first (a remark is
				// removed by its text and decides nothing).
				for _, d := range ms {
					if d.kind == 'd' && d.present && d.text == it.text {
						s.top("no access-list " + a + " " + d.text)
						d.present = false
					}
				}
			}
			at := 0
			for _, x := range ms[:k] {
				if x.present {
					at++
				}
			}
			t := it.text
			if it.twin != "" {
				t = it.twin
			}
			s.top(fmt.Sprintf("access-list %s line %d %s", a, pl.line+at, t))
			it.present = true
		}
	}
	// 3. New members of existing groups.
	for _, name := range sn.order {
		o := sn.objs[name]
		prev, ok := so.objs[name]
		if !ok || prev.kind != o.kind || o.kind == "object network" {
			continue
		}
		had := setOf(prev.lines)
		for _, l := range o.lines {
			if !had[l] {
				s.sub(o.kind+" "+name, l)
			}
		}
	}
	// 4. Members no longer wanted (narrowing).
	for _, name := range so.order {
		o, n := so.objs[name], sn.objs[name]
		if n == nil || n.kind != o.kind || o.kind == "object network" {
			continue
		}
		want := setOf(n.lines)
		for _, l := range o.lines {
			if !want[l] {
				s.sub(o.kind+" "+name, "no "+l)
			}
		}
	}
	// The qos block's part (qoschange.go).
	qosCommands(s, so.qos, sn.qos)
	// 5. Old ACL entries, bottom-up; then the twins swapped for the real
	// entries.
	for _, a := range acls {
		ms := merged[a]
		for k := len(ms) - 1; k >= 0; k-- {
			if it := ms[k]; it.kind == 'd' && it.present {
				s.top("no access-list " + a + " " + it.text)
				it.present = false
			}
		}
	}
	for _, a := range acls {
		ms := merged[a]
		for k, it := range ms {
			if it.twin == "" {
				continue
			}
			at := 0
			for _, x := range ms[:k] {
				if x.present {
					at++
				}
			}
			s.top(fmt.Sprintf("access-list %s line %d %s", a, pl.line+at, it.text))
			s.top("no access-list " + a + " " + it.twin)
		}
	}
	for _, tw := range twins {
		s.top("no object-group network " + tw)
	}
	// 6. Groups, then objects, nothing uses any more.
	for _, objects := range []bool{false, true} {
		for k := len(so.order) - 1; k >= 0; k-- {
			name := so.order[k]
			o := so.objs[name]
			if n, ok := sn.objs[name]; ok && n.kind == o.kind {
				continue
			}
			if (o.kind == "object network") == objects {
				s.top("no " + o.kind + " " + name)
			}
		}
	}
	return s.lines
}

func setOf(lines []string) map[string]bool {
	m := make(map[string]bool, len(lines))
	for _, l := range lines {
		m[l] = true
	}
	return m
}
