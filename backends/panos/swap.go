package panos

import (
	"crypto/sha256"
	"encoding/hex"
)

// inPlaceSafe reports whether the in-place change (grow, then shrink) keeps
// every packet both versions decide alike decided so at every step. It
// holds when
//
//   - the rules both versions keep stay in the same order;
//   - every rule whose match changes (added, removed, a field changed, or a
//     group or service it uses changed) has one action, the same for all;
//   - a kept rule has at most one changed part (field, group or service);
//     a changed field is "any" on neither side and names groups or services
//     that do not change;
//   - a new rule uses no group or service that loses members, a removed
//     rule none that gains any.
//
// Then while rules grow each one matches at least what it matched before
// and at most what either version matches, and while they shrink at least
// what it matches after: a packet decided by an unchanged rule or the box
// is decided as before, and one decided by a changing rule gets the one
// action every changing rule has, which is what the version it matched in
// decides. A one-prefix change of a provider's group is such a change.
func inPlaceSafe(old, new *plan) bool {
	grows, shrinks := map[string]bool{}, map[string]bool{}
	diffGroups := func(olds, news []memberList) {
		o := map[string][]string{}
		for _, g := range olds {
			o[g.name] = g.members
		}
		for _, g := range news {
			om, ok := o[g.name]
			if !ok {
				continue
			}
			oldIn, newIn := setOf(om), setOf(g.members)
			for _, m := range g.members {
				if !oldIn[m] {
					grows[g.name] = true
				}
			}
			for _, m := range om {
				if !newIn[m] {
					shrinks[g.name] = true
				}
			}
		}
	}
	diffGroups(old.groups, new.groups)
	diffGroups(old.svcGroups, new.svcGroups)
	// A service that changes changes the groups holding it.
	oldSvc := map[string]service{}
	for _, s := range old.services {
		oldSvc[s.name] = s
	}
	for _, s := range new.services {
		o, ok := oldSvc[s.name]
		if !ok || o == s {
			continue
		}
		for _, g := range new.svcGroups {
			if contains(g.members, s.name) {
				switch {
				case serviceWithin(o, s):
					grows[g.name] = true
				case serviceWithin(s, o):
					shrinks[g.name] = true
				default:
					grows[g.name], shrinks[g.name] = true, true
				}
			}
		}
	}
	changed := func(name string) bool { return grows[name] || shrinks[name] }

	action := ""
	sameAction := func(a string) bool {
		if action == "" {
			action = a
		}
		return a == action
	}
	oldRules := map[string]securityRule{}
	for _, r := range old.rules {
		oldRules[r.name] = r
	}
	newRules := map[string]securityRule{}
	var keptNew []string
	for _, r := range new.rules {
		newRules[r.name] = r
		o, kept := oldRules[r.name]
		if !kept {
			if !sameAction(r.action) || shrinks[r.source] || shrinks[r.destination] || shrinks[r.service] {
				return false
			}
			continue
		}
		keptNew = append(keptNew, r.name)
		parts := 0
		for _, f := range listFields(r, o) {
			if f.new != f.old {
				if f.new == "any" || f.old == "any" || changed(f.new) || changed(f.old) {
					return false
				}
				parts++
			} else if changed(f.new) {
				parts++
			}
		}
		if parts == 0 {
			continue
		}
		if parts > 1 || r.action != o.action || !sameAction(r.action) {
			return false
		}
	}
	var keptOld []string
	for _, o := range old.rules {
		if _, kept := newRules[o.name]; kept {
			keptOld = append(keptOld, o.name)
			continue
		}
		if !sameAction(o.action) || grows[o.source] || grows[o.destination] || grows[o.service] {
			return false
		}
	}
	for i := range keptOld {
		if keptOld[i] != keptNew[i] {
			return false
		}
	}
	return true
}

// serviceWithin reports whether service a matches nothing b does not.
func serviceWithin(a, b service) bool {
	if a.proto != b.proto || a.sourcePort != b.sourcePort {
		return false
	}
	ap, err1 := parsePorts(a.port)
	bp, err2 := parsePorts(b.port)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, r := range ap {
		for port := uint32(r.First); port <= uint32(r.Last); port++ {
			if !inPorts(bp, uint16(port)) {
				return false
			}
		}
	}
	return true
}

// swapSteps is the change for everything inPlaceSafe refuses: the new
// version's rules are built beside the old ones and take over, then the old
// ones go, then the new ones take the stable names.
//
//  1. new address objects; a copy (NAME.next) of every service and group
//     whose content changes, and the new groups and services;
//  2. the new rules as NAME.next, top to bottom, each placed right above
//     the old rules (the first) or after the one before it: at every step
//     the rules built so far decide what they match as the new version
//     does, and the old rules below decide the rest as the old version;
//  3. the decryption rule pointed at the new groups;
//  4. the old rules deleted bottom to top: what the new rules do not match
//     is decided by the old rules that remain above, as before, or by the
//     box below, as after;
//  5. the old copies of changed groups and services deleted, removed ones
//     deleted; `rename` gives the new rules, groups and services their
//     stable names (PAN-OS updates the references with a rename).
func swapSteps(old, new *plan) []step {
	var out []step
	where := new.place
	rb := where.rulebase()
	add := func(verb string, path []string, args ...string) {
		out = append(out, step{verb: verb, path: path, args: args})
	}
	oldAddr := map[string]bool{}
	for _, a := range old.addresses {
		oldAddr[a.name] = true
	}
	for _, a := range new.addresses {
		if !oldAddr[a.name] {
			add("set", []string{"address", a.name}, a.kind, a.value)
		}
	}
	feedSteps(old, new, add)
	// stable name -> the copy the new rules use, in the address and the
	// service namespace
	tempAddr, tempSvc := map[string]string{}, map[string]string{}
	refIn := func(temp map[string]string, name string) string {
		if t, ok := temp[name]; ok {
			return t
		}
		return name
	}
	ref := func(name string) string { return refIn(tempAddr, name) }
	oldSvc := map[string]service{}
	for _, s := range old.services {
		oldSvc[s.name] = s
	}
	for _, s := range new.services {
		name := s.name
		if o, ok := oldSvc[s.name]; ok {
			if o == s {
				continue
			}
			name = tempName(s.name)
			tempSvc[s.name] = name
		}
		args := []string{"protocol", s.proto, "port", s.port}
		if s.sourcePort != "" {
			args = append(args, "source-port", s.sourcePort)
		}
		add("set", []string{"service", name}, args...)
	}
	groups := func(kind, listKey string, temp map[string]string, olds, news []memberList) {
		o := map[string][]string{}
		for _, g := range olds {
			o[g.name] = g.members
		}
		for _, g := range news {
			members := make([]string, len(g.members))
			changed := false
			for i, m := range g.members {
				members[i] = refIn(temp, m)
				changed = changed || members[i] != m
			}
			name := g.name
			if om, ok := o[g.name]; ok {
				if !changed && sameMembers(om, g.members) {
					continue
				}
				name = tempName(g.name)
				temp[g.name] = name
			}
			add("set", []string{kind, name}, listKey, list(members, true))
		}
	}
	groups("address-group", "static", tempAddr, old.groups, new.groups)
	groups("service-group", "members", tempSvc, old.svcGroups, new.svcGroups)

	rulePath := func(name string) []string { return []string{rb, "security", "rules", name} }
	for i, r := range new.rules {
		t := r
		t.name, t.source, t.destination, t.service = tempName(r.name), ref(r.source), ref(r.destination), refIn(tempSvc, r.service)
		add("set", rulePath(t.name), ruleArgs(t)...)
		if i == 0 {
			add("move", rulePath(t.name), "before", old.rules[0].name)
		} else {
			add("move", rulePath(t.name), "after", tempName(new.rules[i-1].name))
		}
	}
	decPath := func(name string) []string { return []string{rb, "decryption", "rules", name} }
	if d := new.decrypt; d != nil {
		var dst []string
		for _, m := range d.destinations {
			dst = append(dst, ref(m))
		}
		if o := old.decrypt; o == nil || o.name != d.name {
			add("set", decPath(d.name), "from", "any", "to", "any", "source", "any", "destination", list(dst, false),
				"service", "any", "category", "any", "action", "no-decrypt", "type", "ssl-forward-proxy", "description", quote(d.description))
			add("move", decPath(d.name), "top")
		} else {
			var added []string
			for _, m := range dst {
				if !contains(o.destinations, m) {
					added = append(added, m)
				}
			}
			if len(added) > 0 {
				add("set", decPath(d.name), "destination", list(added, true))
			}
			for _, m := range o.destinations {
				if !contains(dst, m) {
					add("delete", decPath(d.name), "destination", m)
				}
			}
			if d.description != o.description {
				add("set", decPath(d.name), "description", quote(d.description))
			}
		}
	}
	if o := old.decrypt; o != nil && (new.decrypt == nil || new.decrypt.name != o.name) {
		add("delete", decPath(o.name))
	}
	for i := len(old.rules) - 1; i >= 0; i-- {
		add("delete", rulePath(old.rules[i].name))
	}
	for _, r := range new.rules {
		add("rename", rulePath(tempName(r.name)), "to", r.name)
	}

	drop := func(kind string, temp map[string]string, olds, news []memberList) {
		kept := map[string]bool{}
		for _, g := range news {
			kept[g.name] = true
		}
		for _, g := range olds {
			if _, changed := temp[g.name]; changed || !kept[g.name] {
				add("delete", []string{kind, g.name})
			}
		}
	}
	drop("address-group", tempAddr, old.groups, new.groups)
	drop("service-group", tempSvc, old.svcGroups, new.svcGroups)
	rename := func(kind string, temp map[string]string, news []memberList) {
		for _, g := range news {
			if t, ok := temp[g.name]; ok {
				add("rename", []string{kind, t}, "to", g.name)
			}
		}
	}
	rename("address-group", tempAddr, new.groups)
	rename("service-group", tempSvc, new.svcGroups)
	newSvc := map[string]bool{}
	for _, s := range new.services {
		newSvc[s.name] = true
	}
	for _, s := range old.services {
		if _, changed := tempSvc[s.name]; changed || !newSvc[s.name] {
			add("delete", []string{"service", s.name})
		}
	}
	for _, s := range new.services {
		if t, ok := tempSvc[s.name]; ok {
			add("rename", []string{"service", t}, "to", s.name)
		}
	}
	for _, name := range gone(old.addresses, new.addresses, func(a address) string { return a.name }) {
		add("delete", []string{"address", name})
	}
	feedDeletes(old, new, add)
	return out
}

// tempName is the name of the copy a swap builds: NAME.next, cut and
// hashed to PAN-OS's 63 characters. It keeps the name's prefix, so the copy
// is turnwall's too.
func tempName(name string) string {
	t := name + ".next"
	if len(t) <= maxObjectName {
		return t
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:8] + ".next"
	return name[:maxObjectName-len(suffix)] + suffix
}

func sameMembers(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := setOf(b)
	for _, m := range a {
		if !in[m] {
			return false
		}
	}
	return true
}
