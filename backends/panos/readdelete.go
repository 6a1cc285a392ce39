package panos

import (
	"fmt"
	"sort"
)

// delete implements configure-mode `delete` as PAN-OS applies it to the
// candidate configuration: a whole object, group or rule, one member of a
// list, or a service's source port. Deleting something that does not exist
// is an error, as is deleting an object or group something still refers to
// (PAN-OS refuses both).
func (p *setParser) delete() error {
	what, err := p.keyword("address", "address-group", "service", "service-group", "external-list", p.rulebaseKeyword(), "network")
	if err != nil {
		return err
	}
	d := p.dev
	switch what {
	case "network":
		return p.deleteNetworkQoS()
	case "external-list":
		name, err := p.name("external list name")
		if err != nil {
			return err
		}
		if d.edls[name] == nil {
			return fmt.Errorf("delete of external-list %q, which does not exist", name)
		}
		if by := d.addressUsers(name); by != "" {
			return fmt.Errorf("external-list %q cannot be deleted: %s refers to it", name, by)
		}
		delete(d.edls, name)
		return nil
	case "address":
		name, err := p.name("address name")
		if err != nil {
			return err
		}
		if d.addresses[name] == nil {
			return fmt.Errorf("delete of address %q, which does not exist", name)
		}
		if by := d.addressUsers(name); by != "" {
			return fmt.Errorf("address %q cannot be deleted: %s refers to it", name, by)
		}
		delete(d.addresses, name)
		return nil
	case "address-group", "service-group":
		groups, listKey := d.groups, "static"
		if what == "service-group" {
			groups, listKey = d.svcGroups, "members"
		}
		name, err := p.name("group name")
		if err != nil {
			return err
		}
		g := groups[name]
		if g == nil {
			return fmt.Errorf("delete of %s %q, which does not exist", what, name)
		}
		if !p.more() {
			var by string
			if what == "address-group" {
				by = d.addressUsers(name)
			} else {
				by = d.serviceUsers(name)
			}
			if by != "" {
				return fmt.Errorf("%s %q cannot be deleted: %s refers to it", what, name, by)
			}
			delete(groups, name)
			return nil
		}
		if _, err := p.keyword(listKey); err != nil {
			return err
		}
		m, err := p.single(listKey + " member")
		if err != nil {
			return err
		}
		if g.members, err = without(g.members, m); err != nil {
			return fmt.Errorf("%s %q: %v", what, name, err)
		}
		return nil
	case "service":
		name, err := p.name("service name")
		if err != nil {
			return err
		}
		s := d.services[name]
		if s == nil {
			return fmt.Errorf("delete of service %q, which does not exist", name)
		}
		if !p.more() {
			if by := d.serviceUsers(name); by != "" {
				return fmt.Errorf("service %q cannot be deleted: %s refers to it", name, by)
			}
			delete(d.services, name)
			return nil
		}
		if _, err := p.keyword("protocol"); err != nil {
			return err
		}
		if _, err := p.keyword(s.proto); err != nil {
			return err
		}
		if _, err := p.keyword("source-port"); err != nil {
			return err
		}
		s.sourcePort = ""
		return nil
	}
	base, err := p.keyword("security", "decryption", "qos")
	if err != nil {
		return err
	}
	if _, err := p.keyword("rules"); err != nil {
		return err
	}
	name, err := p.name("rule name")
	if err != nil {
		return err
	}
	rb, keys := &d.security, securityKeys
	switch base {
	case "decryption":
		rb, keys = &d.decryption, decryptionKeys
	case "qos":
		rb, keys = &d.qosState().rules, qosKeys
	}
	r := rb.byName[name]
	if r == nil {
		return fmt.Errorf("delete of %s rule %q, which does not exist", base, name)
	}
	if !p.more() {
		delete(rb.byName, name)
		rb.order = append(rb.order[:rb.index(name):rb.index(name)], rb.order[rb.index(name)+1:]...)
		if base == "security" && d.qos != nil {
			delete(d.qos.marking, name) // the marking is part of the rule
		}
		return nil
	}
	if base == "security" && !p.toks[p.pos].quoted && p.toks[p.pos].s == "qos" {
		return p.deleteMarking(name)
	}
	key, err := p.keyword(keys.lists...)
	if err != nil {
		return err
	}
	m, err := p.single(key + " member")
	if err != nil {
		return err
	}
	if r.lists[key], err = without(r.lists[key], m); err != nil {
		return fmt.Errorf("rule %q %s: %v", name, key, err)
	}
	return nil
}

func without(list []string, m string) ([]string, error) {
	for i, x := range list {
		if x == m {
			return append(list[:i:i], list[i+1:]...), nil
		}
	}
	return nil, fmt.Errorf("%q is not a member", m)
}

// addressUsers names the first group or rule that refers to an address
// object or group ("" when none does).
func (d *device) addressUsers(name string) string {
	return d.users(name, d.groups, "address group", []string{"source", "destination"})
}

func (d *device) serviceUsers(name string) string {
	return d.users(name, d.svcGroups, "service group", []string{"service"})
}

func (d *device) users(name string, groups map[string]*rGroup, kind string, keys []string) string {
	var gs []string
	for g, v := range groups {
		if contains(v.members, name) {
			gs = append(gs, g)
		}
	}
	if len(gs) > 0 {
		sort.Strings(gs)
		return kind + " " + gs[0]
	}
	for _, rb := range d.rulebases() {
		for _, r := range rb.order {
			for _, k := range keys {
				if contains(r.lists[k], name) {
					return "rule " + r.name
				}
			}
		}
	}
	return ""
}

// rename implements configure-mode `rename PATH NAME to NEWNAME` for an
// address, group, service or rule: the entry keeps its content and place,
// and every reference to it follows (PAN-OS renames references with the
// object). The new name must be free.
func (p *setParser) rename() error {
	what, err := p.keyword("address", "address-group", "service", "service-group", p.rulebaseKeyword())
	if err != nil {
		return err
	}
	d := p.dev
	var base string
	if what == p.rulebaseKeyword() {
		if base, err = p.keyword("security", "decryption"); err != nil {
			return err
		}
		if _, err := p.keyword("rules"); err != nil {
			return err
		}
	}
	from, err := p.name("name")
	if err != nil {
		return err
	}
	if _, err := p.keyword("to"); err != nil {
		return err
	}
	to, err := p.name("new name")
	if err != nil {
		return err
	}
	if base != "" {
		rb := &d.security
		if base == "decryption" {
			rb = &d.decryption
		}
		r := rb.byName[from]
		if r == nil {
			return fmt.Errorf("rename of %s rule %q, which does not exist", base, from)
		}
		if rb.byName[to] != nil {
			return fmt.Errorf("rename to %q: a %s rule of that name exists", to, base)
		}
		delete(rb.byName, from)
		r.name = to
		rb.byName[to] = r
		if m, ok := d.qosMarking(from); ok && base == "security" {
			delete(d.qos.marking, from)
			d.qos.marking[to] = m
		}
		return nil
	}
	taken := func(name string) bool {
		if what == "address" || what == "address-group" {
			return d.addresses[name] != nil || d.groups[name] != nil
		}
		return d.services[name] != nil || d.svcGroups[name] != nil
	}
	if taken(to) {
		return fmt.Errorf("rename to %q: the name is taken", to)
	}
	switch what {
	case "address":
		if d.addresses[from] == nil {
			return fmt.Errorf("rename of address %q, which does not exist", from)
		}
		d.addresses[to] = d.addresses[from]
		delete(d.addresses, from)
	case "address-group":
		if d.groups[from] == nil {
			return fmt.Errorf("rename of address-group %q, which does not exist", from)
		}
		d.groups[to] = d.groups[from]
		delete(d.groups, from)
	case "service":
		if d.services[from] == nil {
			return fmt.Errorf("rename of service %q, which does not exist", from)
		}
		d.services[to] = d.services[from]
		delete(d.services, from)
	case "service-group":
		if d.svcGroups[from] == nil {
			return fmt.Errorf("rename of service-group %q, which does not exist", from)
		}
		d.svcGroups[to] = d.svcGroups[from]
		delete(d.svcGroups, from)
	}
	groups, keys := d.groups, []string{"source", "destination"}
	if what == "service" || what == "service-group" {
		groups, keys = d.svcGroups, []string{"service"}
	}
	for _, g := range groups {
		for i, m := range g.members {
			if m == from {
				g.members[i] = to
			}
		}
	}
	for _, rb := range d.rulebases() {
		for _, r := range rb.order {
			for _, k := range keys {
				for i, m := range r.lists[k] {
					if m == from {
						r.lists[k][i] = to
					}
				}
			}
		}
	}
	return nil
}
