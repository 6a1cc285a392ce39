package panos

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/backends"
)

// Model is a model of a firewall's running configuration (one vsys, or one
// Panorama device group's objects and pre-rulebase) with PAN-OS's own merge
// semantics: `set` of a list adds members, `set` of a value replaces it,
// `delete` removes an object, a rule or one list member and is refused while
// something refers to what it removes, a new rule lands at the bottom and
// `move` reorders. It shares the reader's parser and packet decision, and
// nothing with the emitter but the naming contract (ZoneName or the zone
// map) and the ownership prefixes.
type Model struct {
	dev   *device
	where place
	line  int
}

var _ backends.BoxModel = (*Model)(nil)

// NewModel returns an empty box for the target parameters (vsys or device
// group, ownership prefixes, zone map).
func NewModel(opts backends.Options) (*Model, error) {
	where, err := parsePlace(opts)
	if err != nil {
		return nil, err
	}
	m := &Model{dev: newDevice(), where: where}
	m.dev.vsys = where.vsys
	if where.deviceGroup != "" {
		m.dev.vsys = "device-group " + where.deviceGroup
	}
	return m, nil
}

// Apply implements backends.BoxModel. With step, every command must leave a
// configuration a commit accepts (every reference resolved, no empty group),
// so that the model can decide packets in between; the first command that
// does not is an error naming it, and the model keeps the commands before
// it. Without step only the end result must be one a commit accepts.
func (m *Model) Apply(commands []byte, step func(backends.Config)) error {
	p := &setParser{dev: m.dev, changes: true}
	for i, text := range strings.Split(string(commands), "\n") {
		m.line++
		p.line = m.line
		if strings.TrimSpace(text) == "" {
			continue
		}
		toks, err := tokenize(text)
		if err == nil {
			p.toks, p.pos = toks, 0
			err = p.statement()
		}
		if err != nil {
			return fmt.Errorf("command %d: %v", i+1, err)
		}
		if step == nil {
			continue
		}
		cfg, err := m.resolve()
		if err != nil {
			return fmt.Errorf("command %d (%s): leaves a configuration a commit refuses: %v", i+1, text, err)
		}
		step(cfg)
	}
	if _, err := m.resolve(); err != nil {
		return fmt.Errorf("the commands leave a configuration a commit refuses: %v", err)
	}
	return nil
}

// Feed gives the model the content of feed files (panos-feed-NAME.txt), as
// the firewall fetches them from the feed URL; other files are ignored.
func (m *Model) Feed(files []backends.File) error {
	if m.dev.feedData == nil {
		m.dev.feedData = map[string][]netip.Prefix{}
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "panos-feed-") {
			continue
		}
		pfs, err := parseFeedFile(f.Name, f.Data)
		if err != nil {
			return err
		}
		m.dev.feedData[f.Name] = pfs
	}
	return nil
}

func (m *Model) resolve() (*config, error) {
	c, err := m.dev.resolve("box")
	if err != nil {
		return nil, err
	}
	where := m.where
	c.zoneOf = func(z string) string {
		if t, ok := where.zone(z); ok {
			return t
		}
		return "unmapped:" + z
	}
	return c, nil
}

// Config implements backends.BoxModel. Apply keeps the configuration
// resolvable, so this does not fail; an empty box decides by PAN-OS's
// predefined rules.
func (m *Model) Config() backends.Config {
	c, err := m.resolve()
	if err != nil {
		panic("panos model: unresolvable configuration after Apply: " + err.Error())
	}
	return c
}

// ownedObject reports whether an object, group or service carries
// turnwall's object prefix.
func (m *Model) ownedObject(name string) bool {
	pf := m.where.objectPrefix
	return pf != "" && strings.HasPrefix(strings.ToLower(name), strings.ToLower(pf))
}

// Foreign implements backends.BoxModel: every object and rule without
// turnwall's prefixes, objects sorted by kind and name, rules in their order
// among themselves.
func (m *Model) Foreign() string { return m.canonical(false) }

// Owned implements backends.BoxModel: turnwall's objects and rules, each rule
// with the box's rule it follows ("^" at the top), so that a rule placed
// elsewhere is a difference too.
func (m *Model) Owned() string { return m.canonical(true) }

func (m *Model) canonical(owned bool) string {
	var b strings.Builder
	d := m.dev
	objects := func(kind string, names []string, render func(string) string) {
		sort.Strings(names)
		for _, n := range names {
			if m.ownedObject(n) == owned {
				fmt.Fprintf(&b, "%s %s %s\n", kind, n, render(n))
			}
		}
	}
	var names []string
	for n := range d.addresses {
		names = append(names, n)
	}
	objects("address", names, func(n string) string {
		a := d.addresses[n]
		if a.fqdn != "" {
			return "fqdn " + a.fqdn
		}
		return "ip-netmask " + a.prefix.String()
	})
	groupLines := func(kind string, gs map[string]*rGroup) {
		names = names[:0]
		for n := range gs {
			names = append(names, n)
		}
		objects(kind, names, func(n string) string {
			ms := append([]string(nil), gs[n].members...)
			sort.Strings(ms)
			return strings.Join(ms, " ")
		})
	}
	names = names[:0]
	for n := range d.edls {
		names = append(names, n)
	}
	objects("external-list", names, func(n string) string {
		return "ip url " + d.edls[n].url + " recurring " + d.edls[n].refresh
	})
	groupLines("address-group", d.groups)
	names = names[:0]
	for n := range d.services {
		names = append(names, n)
	}
	objects("service", names, func(n string) string {
		s := d.services[n]
		return s.proto + " port " + s.port + " source-port " + s.sourcePort
	})
	groupLines("service-group", d.svcGroups)
	for _, rb := range []struct {
		name string
		base *rulebase
	}{{"security", &d.security}, {"decryption", &d.decryption}} {
		prev := "^"
		for _, r := range rb.base.order {
			mine := m.where.owns(r.name)
			if mine == owned {
				fmt.Fprintf(&b, "%s rule %s", rb.name, r.name)
				if owned {
					fmt.Fprintf(&b, " after %s", prev)
				}
				b.WriteString(ruleCanonical(r))
				if v, ok := d.qosMarking(r.name); ok && rb.name == "security" {
					b.WriteString(" qos marking ip-dscp " + v)
				}
				b.WriteString("\n")
			}
			if !mine {
				prev = r.name
			}
		}
	}
	m.qosCanonical(&b, owned)
	return b.String()
}

func ruleCanonical(r *rRule) string {
	var b strings.Builder
	var keys []string
	for k := range r.lists {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ms := append([]string(nil), r.lists[k]...)
		sort.Strings(ms)
		fmt.Fprintf(&b, " %s [%s]", k, strings.Join(ms, " "))
	}
	keys = keys[:0]
	for k := range r.flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %s", k, yesNo(r.flags[k]))
	}
	fmt.Fprintf(&b, " action %s type %s%s description %q", r.action, r.ruleType, r.decryptType, r.description)
	return b.String()
}
