package fortios

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

var _ backends.Changer = Backend{}

// changeFile is the file a change script is written to.
const changeFile = "fortios-change.conf"

// Table paths, in the order new entries are created (everything an entry
// refers to exists before it); removals run the other way.
const (
	tblAddr     = "firewall address"
	tblAddr6    = "firewall address6"
	tblFeed     = "system external-resource"
	tblCustom   = "firewall service custom"
	tblGroup    = "firewall addrgrp"
	tblGroup6   = "firewall addrgrp6"
	tblSvcGroup = "firewall service group"
	tblPolicy   = "firewall policy"
	tblShaper   = "firewall shaper traffic-shaper"
	tblShaping  = "firewall shaping-policy"
)

var objectTables = []string{tblAddr, tblAddr6, tblFeed, tblCustom, tblGroup, tblGroup6, tblSvcGroup, tblShaper}

// fieldOrder is the order fields are written in, as `show` prints them.
var fieldOrder = map[string][]string{
	tblAddr:     {"type", "subnet", "fqdn"},
	tblAddr6:    {"type", "ip6", "fqdn"},
	tblFeed:     {"type", "resource", "refresh-rate"},
	tblCustom:   {"protocol", "tcp-portrange", "udp-portrange"},
	tblGroup:    {"member", "comment"},
	tblGroup6:   {"member", "comment"},
	tblSvcGroup: {"member", "comment"},
	tblPolicy: {"name", "srcintf", "dstintf", "action", "srcaddr", "dstaddr", "srcaddr6", "dstaddr6", "status",
		"schedule", "service", "utm-status", "ssl-ssh-profile", "logtraffic", "comments"},
	tblShaper: {"priority", "per-policy"},
	tblShaping: {"name", "comment", "status", "srcintf", "dstintf", "srcaddr", "dstaddr", "srcaddr6", "dstaddr6", "service",
		"traffic-shaper", "traffic-shaper-reverse", "diffserv-forward", "diffservcode-forward", "diffserv-reverse", "diffservcode-rev"},
}

// matchFields are the policy fields that decide which packets it takes.
var matchFields = []string{"srcintf", "dstintf", "action", "srcaddr", "dstaddr", "srcaddr6", "dstaddr6", "status", "service"}

type fields = map[string][]string

// boxState is turnwall's part of a box as the plan wants it.
type boxState struct {
	tables   map[string]map[string]fields
	order    []string // policy ids, top first
	qosOrder []string // shaping policy ids, first match first
}

func (pl *plan) state() boxState {
	st := boxState{tables: map[string]map[string]fields{}}
	for _, t := range append(objectTables, tblPolicy, tblShaping) {
		st.tables[t] = map[string]fields{}
	}
	for _, a := range pl.addr4 {
		if a.fqdn != "" {
			st.tables[tblAddr][a.name] = fields{"type": {"fqdn"}, "fqdn": {a.fqdn}}
		} else {
			// type ipmask is the default.
			st.tables[tblAddr][a.name] = fields{"subnet": {a.prefix.String()}}
		}
	}
	for _, a := range pl.addr6 {
		if a.fqdn != "" {
			st.tables[tblAddr6][a.name] = fields{"type": {"fqdn"}, "fqdn": {a.fqdn}}
		} else {
			st.tables[tblAddr6][a.name] = fields{"ip6": {a.prefix.String()}}
		}
	}
	groups := func(t string, gs []group) {
		for _, g := range gs {
			f := fields{"member": g.members}
			if g.comment != "" {
				f["comment"] = []string{g.comment}
			}
			st.tables[t][g.name] = f
		}
	}
	groups(tblGroup, pl.groups4)
	groups(tblGroup6, pl.groups6)
	groups(tblSvcGroup, pl.svcGroups)
	for _, fd := range pl.feeds {
		st.tables[tblFeed][fd.name] = fields{"type": {"address"}, "resource": {fd.url}, "refresh-rate": {strconv.Itoa(pl.s.feeds.refresh)}}
	}
	for _, c := range pl.customs {
		st.tables[tblCustom][c.name] = fields{"protocol": {"TCP/UDP/SCTP"}, string(c.proto) + "-portrange": c.items}
	}
	for _, p := range pl.policies {
		f := fields{"name": {p.name}, "srcintf": p.srcintf, "dstintf": p.dstintf, "action": {p.action},
			"schedule": {alwaysSched}, "service": {p.service}, "comments": {p.comment}, "status": {"enable"}, "logtraffic": {"disable"}}
		for k, v := range map[string]string{"srcaddr": p.srcaddr, "dstaddr": p.dstaddr, "srcaddr6": p.srcaddr6, "dstaddr6": p.dstaddr6} {
			if v != "" {
				f[k] = []string{v}
			}
		}
		if !p.enabled {
			f["status"] = []string{"disable"}
		}
		if p.log {
			f["logtraffic"] = []string{"all"}
		}
		if p.sslProfile != "" {
			f["utm-status"], f["ssl-ssh-profile"] = []string{"enable"}, []string{p.sslProfile}
		}
		id := strconv.FormatUint(p.id, 10)
		st.tables[tblPolicy][id] = f
		st.order = append(st.order, id)
	}
	qosState(pl.qos, &st)
	return st
}

// Change implements backends.Changer. The script runs in three phases:
//
//  1. new objects, and members added to groups;
//  2. policies: changed ones edited, new ones created disabled, moved into
//     place and then enabled from the top of the block down;
//  3. policies removed from the bottom of the block up, members removed
//     from groups, then the objects nothing refers to any more.
//
// Each edit block applies at its `next` as one change. Where every step of
// that order provably keeps each flow both versions agree on (only policies
// added and removed; or only group members changed, in policies of one
// action), the script runs command by command; otherwise it is wrapped in a
// workspace transaction (execute config-transaction start ... commit), which
// applies all at once: "a batch of changes that are not implemented until
// the transaction is committed", since FortiOS 6.2; firewall objects and
// policies can be changed in one, and it is discarded after five minutes
// without activity
// (https://docs.fortinet.com/document/fortigate/7.6.5/administration-guide/530847,
// https://docs.fortinet.com/document/fortigate/7.6.6/cli-reference/148302082).
func (Backend) Change(old, new *ir.Program, opts backends.Options) ([]backends.File, error) {
	if opts.Format != "" && opts.Format != "cli" {
		return nil, fmt.Errorf("fortios target has no format %q (cli)", opts.Format)
	}
	s, err := parseSettings(opts)
	if err != nil {
		return nil, err
	}
	var states [2]boxState
	var feeds []backends.File
	for i, p := range []*ir.Program{old, new} {
		if p == nil {
			states[i] = (&plan{}).state()
			continue
		}
		if err := backends.FirstConstraint(Backend{}.Check(p, opts)); err != nil {
			return nil, err
		}
		pl, err := buildPlan(p, s)
		if err != nil {
			return nil, err
		}
		states[i] = pl.state()
		if i == 1 {
			feeds = feedFiles(pl.feeds)
		}
	}
	sc := changeScript(states[0], states[1], s)
	return append([]backends.File{{Name: changeFile, Data: sc}}, feeds...), nil
}

// op is one statement in a table's config block.
type op struct {
	table string
	lines []string
	match bool // changes which packets a policy both versions have takes
}

type scriptBuilder struct {
	ops []op
}

func (b *scriptBuilder) add(table string, match bool, lines ...string) {
	b.ops = append(b.ops, op{table: table, lines: lines, match: match})
}

func changeScript(o, n boxState, s settings) []byte {
	b := &scriptBuilder{}
	common := map[string]bool{}
	for _, id := range n.order {
		if _, ok := o.tables[tblPolicy][id]; ok {
			common[id] = true
		}
	}
	added0, deleted0 := map[string]bool{}, map[string]bool{}
	for _, id := range n.order {
		added0[id] = !common[id]
	}
	for _, id := range o.order {
		deleted0[id] = !common[id]
	}
	refs := objectRefs(o, n)
	// touch records what an object change does to the policies active when
	// it runs: in phase 1 the box's policies of old (new ones are still
	// disabled), in phase 3 those of new (removed ones are gone).
	changes := map[string][]objChange{} // common policy id -> its changes
	matchOps, mixedOps := 0, 0
	touch := func(table, name, dir string, phase int) {
		k := table + "|" + name
		hit := false
		for id, count := range refs[k] {
			if !(common[id] || phase == 1 && deleted0[id] || phase == 3 && added0[id]) {
				continue
			}
			hit = true
			if common[id] {
				changes[id] = append(changes[id], objChange{key: k, dir: dir, refs: count})
			}
		}
		if hit {
			matchOps++
			if dir == "mixed" {
				mixedOps++
			}
		}
	}
	affected := map[string]bool{} // common policies whose packets change

	// Phase 1: objects and added members.
	var removals [][2]string // table, name: entries to delete in phase 3
	type unselect struct {
		table, name string
		members     []string
	}
	var unselects []unselect
	for _, t := range objectTables {
		for _, name := range holdersLast(n.tables[t]) {
			nf := n.tables[t][name]
			of, exists := o.tables[t][name]
			if !exists {
				b.add(t, false, entryLines(t, name, nf)...)
				continue
			}
			var body []string
			for _, f := range fieldList(t, of, nf) {
				if f == "member" {
					added, gone := diffMembers(of[f], nf[f])
					if len(added) > 0 {
						for _, line := range memberLines(added) {
							body = append(body, "        append member "+quoteAll(line))
						}
					}
					if len(gone) > 0 {
						unselects = append(unselects, unselect{t, name, gone})
					}
					if len(added) > 0 {
						touch(t, name, "gain", 1)
					}
					continue
				}
				if !equal(of[f], nf[f]) {
					body = append(body, setLine(f, nf[f]))
					if t == tblCustom {
						touch(t, name, "mixed", 1)
					}
				}
			}
			if len(body) > 0 {
				b.add(t, false, append(append([]string{"    edit " + quote(name)}, body...), "    next")...)
			}
		}
		for _, name := range holdersLast(o.tables[t]) {
			if _, ok := n.tables[t][name]; !ok {
				removals = append(removals, [2]string{t, name}) // deleted in reverse
			}
		}
	}

	// Phase 2: policies.
	modified := 0
	for _, id := range n.order {
		if !common[id] {
			continue
		}
		of, nf := o.tables[tblPolicy][id], n.tables[tblPolicy][id]
		var body []string
		match := false
		for _, f := range fieldList(tblPolicy, of, nf) {
			if equal(sortedCopy(of[f]), sortedCopy(nf[f])) {
				continue
			}
			body = append(body, setLine(f, nf[f]))
			match = match || contains(matchFields, f)
		}
		if len(body) > 0 {
			b.add(tblPolicy, match, append(append([]string{"    edit " + id}, body...), "    next")...)
		}
		if match {
			modified++
			affected[id] = true
			matchOps++
		}
	}
	// Common policies whose order changed: moved behind their predecessor.
	var oCommon []string
	for _, id := range o.order {
		if common[id] {
			oCommon = append(oCommon, id)
		}
	}
	var nCommon []string
	for _, id := range n.order {
		if common[id] {
			nCommon = append(nCommon, id)
		}
	}
	moved := !equal(oCommon, nCommon)
	if moved {
		for i := 1; i < len(nCommon); i++ {
			b.add(tblPolicy, true, fmt.Sprintf("    move %s after %s", nCommon[i], nCommon[i-1]))
			matchOps++
		}
	}
	// Names are unique: a new policy taking the name of one that goes (a rule
	// whose id moved) needs the old one gone first.
	oldNames := map[string]bool{}
	for _, id := range o.order {
		if !common[id] {
			oldNames[one(o.tables[tblPolicy][id], "name")] = true
		}
	}
	nameClash := false
	var added []string
	for _, id := range n.order {
		if !common[id] {
			added = append(added, id)
			nameClash = nameClash || oldNames[one(n.tables[tblPolicy][id], "name")]
		}
	}
	var deleted []string
	for i := len(o.order) - 1; i >= 0; i-- {
		if id := o.order[i]; !common[id] {
			deleted = append(deleted, id)
		}
	}
	deletePolicies := func() {
		for _, id := range deleted {
			b.add(tblPolicy, false, "    delete "+id)
		}
	}
	if nameClash {
		deletePolicies()
	}
	present := map[string]bool{}
	for id := range common {
		present[id] = true
	}
	for i, id := range n.order {
		if common[id] {
			continue
		}
		nf := n.tables[tblPolicy][id]
		created := fields{}
		for k, v := range nf {
			created[k] = v
		}
		created["status"] = []string{"disable"}
		b.add(tblPolicy, false, entryLines(tblPolicy, id, created)...)
		// Into place: behind the block's previous policy, or before its next
		// one already on the box, or where position says.
		switch {
		case i > 0:
			b.add(tblPolicy, false, fmt.Sprintf("    move %s after %s", id, n.order[i-1]))
		default:
			next := ""
			for _, later := range n.order[1:] {
				if present[later] {
					next = later
					break
				}
			}
			if next == "" && len(o.order) > 0 && !nameClash {
				next = o.order[0]
			}
			switch {
			case next != "":
				b.add(tblPolicy, false, fmt.Sprintf("    move %s before %s", id, next))
			case s.place.position != "bottom":
				b.add(tblPolicy, false, fmt.Sprintf("    move %s %s %d", id, s.place.position, s.place.anchor))
			}
		}
		present[id] = true
	}
	for _, id := range added {
		if one(n.tables[tblPolicy][id], "status") != "disable" {
			b.add(tblPolicy, false, "    edit "+id, "        set status enable", "    next")
		}
	}
	shapingChanges(b, o, n)

	// Phase 3: removals.
	if !nameClash {
		deletePolicies()
	}
	for _, u := range unselects {
		var body []string
		for _, line := range memberLines(u.members) {
			body = append(body, "        unselect member "+quoteAll(line))
		}
		b.add(u.table, false, append(append([]string{"    edit " + quote(u.name)}, body...), "    next")...)
		touch(u.table, u.name, "loss", 3)
	}
	for i := len(removals) - 1; i >= 0; i-- {
		b.add(removals[i][0], false, "    delete "+quote(removals[i][1]))
	}

	// Safe command by command?
	for id := range changes {
		affected[id] = true
	}
	actions := map[string]bool{}
	for id := range affected {
		actions[one(n.tables[tblPolicy][id], "action")] = true
		actions[one(o.tables[tblPolicy][id], "action")] = true
	}
	addDel := len(added) > 0 || len(deleted) > 0
	safe := matchOps == 0 && !nameClash ||
		!addDel && matchOps == 1 ||
		!addDel && !moved && modified == 0 && mixedOps == 0 && len(actions) <= 1 && unionExact(changes)
	return b.render(!safe || s.workspace)
}

func (b *scriptBuilder) render(tx bool) []byte {
	var sb strings.Builder
	if len(b.ops) == 0 {
		return nil
	}
	if tx {
		sb.WriteString("execute config-transaction start\n")
	}
	table := ""
	for _, o := range b.ops {
		if o.table != table {
			if table != "" {
				sb.WriteString("end\n")
			}
			sb.WriteString("config " + o.table + "\n")
			table = o.table
		}
		for _, l := range o.lines {
			sb.WriteString(l + "\n")
		}
	}
	sb.WriteString("end\n")
	if tx {
		sb.WriteString("execute config-transaction commit\n")
	}
	return []byte(sb.String())
}

// entryLines writes a whole new entry.
func entryLines(t, name string, f fields) []string {
	key := name
	if t != tblPolicy && t != tblShaping {
		key = quote(name)
	}
	lines := []string{"    edit " + key}
	for _, field := range fieldList(t, nil, f) {
		v := f[field]
		if field == "member" {
			verb := "set"
			for _, line := range memberLines(v) {
				lines = append(lines, "        "+verb+" member "+quoteAll(line))
				verb = "append"
			}
			continue
		}
		lines = append(lines, setLine(field, v))
	}
	return append(lines, "    next")
}

// Fields whose values are keywords, numbers or addresses, written bare.
var bareFields = map[string]bool{"type": true, "subnet": true, "ip6": true, "protocol": true, "tcp-portrange": true,
	"udp-portrange": true, "action": true, "status": true, "utm-status": true, "logtraffic": true, "refresh-rate": true,
	"priority": true, "per-policy": true, "diffserv-forward": true, "diffservcode-forward": true, "diffserv-reverse": true,
	"diffservcode-rev": true}

func setLine(f string, v []string) string {
	if len(v) == 0 {
		return "        unset " + f
	}
	if bareFields[f] {
		return "        set " + f + " " + strings.Join(v, " ")
	}
	return "        set " + f + " " + quoteAll(v)
}

// fieldList is every field either entry has, in the table's order.
func fieldList(t string, a, b fields) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fieldOrder[t] {
		if _, ok := a[f]; ok {
			out, seen[f] = append(out, f), true
		} else if _, ok := b[f]; ok {
			out, seen[f] = append(out, f), true
		}
	}
	var rest []string
	for _, m := range []fields{a, b} {
		for f := range m {
			if !seen[f] {
				seen[f] = true
				rest = append(rest, f)
			}
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func diffMembers(a, b []string) (added, gone []string) {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range list {
			m[x] = true
		}
		return m
	}
	ia, ib := in(a), in(b)
	for _, x := range b {
		if !ia[x] {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !ib[x] {
			gone = append(gone, x)
		}
	}
	return added, gone
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sortedCopy(a []string) []string {
	out := append([]string(nil), a...)
	sort.Strings(out)
	return out
}

func sortedNames(m map[string]fields) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// holdersLast: the entries' names sorted, entries whose members are entries
// of the same table (address groups holding a group) after the others, so
// that created in this order and deleted in the reverse, an entry exists
// whenever another refers to it.
func holdersLast(m map[string]fields) []string {
	var plain, holders []string
	for _, name := range sortedNames(m) {
		holds := false
		for _, x := range m[name]["member"] {
			_, in := m[x]
			holds = holds || in
		}
		if holds {
			holders = append(holders, name)
		} else {
			plain = append(plain, name)
		}
	}
	return append(plain, holders...)
}

// objChange is an object change as one policy sees it.
type objChange struct {
	key  string // table|name
	dir  string // gain (append), loss (unselect), mixed (replaced)
	refs int    // how many of the policy's fields refer to the object
}

// unionExact: while members are being added and not yet removed, each
// policy matches exactly what either version's matches (no more): true when
// its changes all add, all remove, or touch one object it refers to once.
// A policy whose source gains a range while its destination loses one would
// meanwhile match the new source with the old destination, which neither
// version does.
func unionExact(changes map[string][]objChange) bool {
	for _, cs := range changes {
		dirs, objs := map[string]bool{}, map[string]int{}
		for _, c := range cs {
			dirs[c.dir] = true
			objs[c.key] = c.refs
		}
		if len(dirs) == 1 && !dirs["mixed"] {
			continue
		}
		if len(objs) != 1 {
			return false
		}
		for _, refs := range objs {
			if refs != 1 {
				return false
			}
		}
	}
	return true
}

// objectRefs: for each object (table|name), the policies of either version
// that refer to it, directly or through a group they name, and how many
// times (the larger count of the two versions).
func objectRefs(states ...boxState) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, st := range states {
		cur := map[string]map[string]int{}
		ref := func(k, id string) {
			if cur[k] == nil {
				cur[k] = map[string]int{}
			}
			cur[k][id]++
		}
		for _, id := range st.order {
			f := st.tables[tblPolicy][id]
			for _, use := range []struct {
				table, member string
				names         []string
			}{
				{tblGroup, "", append(append([]string(nil), f["srcaddr"]...), f["dstaddr"]...)},
				{tblGroup6, "", append(append([]string(nil), f["srcaddr6"]...), f["dstaddr6"]...)},
				{tblSvcGroup, tblCustom, f["service"]},
			} {
				for _, name := range use.names {
					ref(use.table+"|"+name, id)
					for _, m := range st.tables[use.table][name]["member"] {
						if _, isGroup := st.tables[use.table][m]; isGroup {
							ref(use.table+"|"+m, id)
						} else if use.member != "" {
							ref(use.member+"|"+m, id)
						}
					}
				}
			}
		}
		for k, ids := range cur {
			if out[k] == nil {
				out[k] = map[string]int{}
			}
			for id, n := range ids {
				out[k][id] = max(out[k][id], n)
			}
		}
	}
	return out
}
