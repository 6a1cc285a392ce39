package panos

import (
	"fmt"
	"net/netip"
	"strings"
)

// token is one word of a CLI line; quoted marks a "double-quoted" value,
// which is never a keyword or a bracket.
type token struct {
	s      string
	quoted bool
}

// tokenize splits a configure-mode line into words, double-quoted strings and
// the list brackets. It rejects control characters and unterminated quotes.
func tokenize(line string) ([]token, error) {
	var out []token
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, token{s: cur.String()})
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("control character %q", c)
		case c == '"':
			flush()
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated quoted string")
			}
			out = append(out, token{s: line[i+1 : i+1+end], quoted: true})
			i += end + 1
			if i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
				return nil, fmt.Errorf("text right after a closing quote")
			}
		case c == '[' || c == ']':
			flush()
			out = append(out, token{s: string(c)})
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return out, nil
}

// setParser reads configure-mode commands: set and move, in the subset
// turnwall emits plus the obvious neighbours (several set lines per object,
// before/after moves, a vsys scope).
type setParser struct {
	dev *device
	// changes admits delete and rename (the box model); a snapshot has
	// neither, so the reader refuses them.
	changes bool
	line    int
	toks    []token
	pos     int
}

func parseSet(file string, data []byte) (*device, error) {
	p := &setParser{dev: newDevice()}
	for i, text := range strings.Split(string(data), "\n") {
		p.line = i + 1
		if strings.TrimSpace(text) == "" {
			continue
		}
		toks, err := tokenize(text)
		if err == nil {
			p.toks, p.pos = toks, 0
			err = p.statement()
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, p.line, err)
		}
	}
	if p.dev.vsys == "" {
		p.dev.vsys = "vsys1"
	}
	return p.dev, nil
}

func (p *setParser) more() bool { return p.pos < len(p.toks) }

// word returns the next unquoted word, or an error naming what was expected.
func (p *setParser) word(what string) (string, error) {
	if !p.more() {
		return "", fmt.Errorf("%s expected at the end of the line", what)
	}
	t := p.toks[p.pos]
	if t.quoted || t.s == "[" || t.s == "]" {
		return "", fmt.Errorf("%s expected, found %q", what, t.s)
	}
	p.pos++
	return t.s, nil
}

// keyword consumes one of the given words.
func (p *setParser) keyword(options ...string) (string, error) {
	w, err := p.word(strings.Join(options, " or "))
	if err != nil {
		return "", err
	}
	for _, o := range options {
		if w == o {
			return w, nil
		}
	}
	return "", fmt.Errorf("unknown statement: %q where %s was expected", w, strings.Join(options, " or "))
}

// name reads an object or rule name: one word, or a quoted string.
func (p *setParser) name(what string) (string, error) {
	if p.more() && p.toks[p.pos].quoted {
		p.pos++
		return p.toks[p.pos-1].s, nil
	}
	return p.word(what)
}

// value reads one value (a word or quoted string) or a [ list ].
func (p *setParser) value(what string) ([]string, error) {
	if !p.more() {
		return nil, fmt.Errorf("value of %s expected at the end of the line", what)
	}
	if t := p.toks[p.pos]; t.quoted || t.s != "[" {
		if t.s == "]" && !t.quoted {
			return nil, fmt.Errorf("unexpected ] after %s", what)
		}
		p.pos++
		return []string{t.s}, nil
	}
	p.pos++
	var out []string
	for {
		if !p.more() {
			return nil, fmt.Errorf("list of %s has no closing ]", what)
		}
		t := p.toks[p.pos]
		p.pos++
		if !t.quoted && t.s == "]" {
			break
		}
		if !t.quoted && t.s == "[" {
			return nil, fmt.Errorf("nested [ in the list of %s", what)
		}
		out = append(out, t.s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list for %s", what)
	}
	return out, nil
}

// single reads a value that must be one item.
func (p *setParser) single(what string) (string, error) {
	v, err := p.value(what)
	if err != nil {
		return "", err
	}
	if len(v) != 1 {
		return "", fmt.Errorf("%s takes one value, got %d", what, len(v))
	}
	return v[0], nil
}

func (p *setParser) yesNo(what string) (bool, error) {
	v, err := p.single(what)
	if err != nil {
		return false, err
	}
	switch v {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("%s takes yes or no, not %q", what, v)
}

func (p *setParser) statement() error {
	verbs := []string{"set", "move"}
	if p.changes {
		verbs = append(verbs, "delete", "rename")
	}
	verb, err := p.keyword(verbs...)
	if err != nil {
		return err
	}
	vsys := "vsys1"
	if verb != "move" && verb != "rename" && p.more() && !p.toks[p.pos].quoted && p.toks[p.pos].s == "network" {
		// Network settings (the QoS profile and interfaces) are the
		// device's, outside every vsys and device group.
		vsys = p.dev.vsys
	} else if p.more() && !p.toks[p.pos].quoted && p.toks[p.pos].s == "vsys" {
		p.pos++
		if vsys, err = p.word("vsys name"); err != nil {
			return err
		}
	} else if p.more() && !p.toks[p.pos].quoted && p.toks[p.pos].s == "device-group" {
		// A Panorama device group: its objects, and rules in its
		// pre-rulebase.
		p.pos++
		dg, err := p.word("device group name")
		if err != nil {
			return err
		}
		vsys = "device-group " + dg
	}
	if p.dev.vsys == "" {
		p.dev.vsys = vsys
	} else if p.dev.vsys != vsys {
		return fmt.Errorf("statement for %s in a file for %s", vsys, p.dev.vsys)
	}
	switch verb {
	case "move":
		err = p.move()
	case "delete":
		err = p.delete()
	case "rename":
		err = p.rename()
	default:
		err = p.set()
	}
	if err == nil && p.more() {
		err = fmt.Errorf("unexpected %q at the end of the statement", p.toks[p.pos].s)
	}
	return err
}

// rulebaseKeyword is "rulebase" on a firewall, "pre-rulebase" in a
// Panorama device group.
func (p *setParser) rulebaseKeyword() string {
	if strings.HasPrefix(p.dev.vsys, "device-group ") {
		return "pre-rulebase"
	}
	return "rulebase"
}

func (p *setParser) set() error {
	what, err := p.keyword("address", "address-group", "service", "service-group", "external-list", p.rulebaseKeyword(), "network")
	if err != nil {
		return err
	}
	switch what {
	case "external-list":
		return p.setExternalList()
	case "address":
		return p.setAddress()
	case "address-group":
		return p.setGroup(p.dev.groups, "static")
	case "service":
		return p.setService()
	case "service-group":
		return p.setGroup(p.dev.svcGroups, "members")
	case "network":
		return p.setNetworkQoS()
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
	if base == "qos" {
		return p.setQoSRule(name)
	}
	if base == "security" && p.more() && p.toks[p.pos].s == "qos" && !p.toks[p.pos].quoted {
		return p.setMarking(name)
	}
	if base == "security" {
		return p.setRule(p.dev.security.rule(name, p.line), securityKeys)
	}
	return p.setRule(p.dev.decryption.rule(name, p.line), decryptionKeys)
}

func (p *setParser) setAddress() error {
	name, err := p.name("address name")
	if err != nil {
		return err
	}
	a := p.dev.addresses[name]
	if a == nil {
		a = &rAddress{line: p.line}
		p.dev.addresses[name] = a
	}
	if !p.more() {
		return fmt.Errorf("address %q: nothing to set", name)
	}
	for p.more() {
		key, err := p.keyword("ip-netmask", "fqdn", "description")
		if err != nil {
			return err
		}
		v, err := p.single(key)
		if err != nil {
			return err
		}
		switch key {
		case "ip-netmask":
			pf, err := netip.ParsePrefix(v)
			if err != nil {
				addr, err2 := netip.ParseAddr(v)
				if err2 != nil {
					return fmt.Errorf("address %q: %q is not an IP address or prefix", name, v)
				}
				pf = netip.PrefixFrom(addr, addr.BitLen())
			}
			if pf != pf.Masked() {
				return fmt.Errorf("address %q: %s has host bits set", name, v)
			}
			a.prefix, a.fqdn = pf, ""
		case "fqdn":
			a.fqdn, a.prefix = v, netip.Prefix{}
		}
	}
	return nil
}

func (p *setParser) setGroup(groups map[string]*rGroup, listKey string) error {
	name, err := p.name("group name")
	if err != nil {
		return err
	}
	g := groups[name]
	if g == nil {
		g = &rGroup{line: p.line}
		groups[name] = g
	}
	if !p.more() {
		return fmt.Errorf("group %q: nothing to set", name)
	}
	for p.more() {
		key, err := p.keyword(listKey, "description")
		if err != nil {
			return err
		}
		v, err := p.value(key)
		if err != nil {
			return err
		}
		if key == listKey {
			in := make(map[string]bool, len(g.members))
			for _, m := range g.members {
				in[m] = true
			}
			for _, m := range v {
				if !in[m] {
					in[m] = true
					g.members = append(g.members, m)
				}
			}
		}
	}
	return nil
}

func (p *setParser) setService() error {
	name, err := p.name("service name")
	if err != nil {
		return err
	}
	s := p.dev.services[name]
	if s == nil {
		s = &rService{line: p.line}
		p.dev.services[name] = s
	}
	if !p.more() {
		return fmt.Errorf("service %q: nothing to set", name)
	}
	for p.more() {
		key, err := p.keyword("protocol", "description")
		if err != nil {
			return err
		}
		if key == "description" {
			if _, err := p.single(key); err != nil {
				return err
			}
			continue
		}
		proto, err := p.keyword("tcp", "udp")
		if err != nil {
			return err
		}
		if s.proto != "" && s.proto != proto {
			return fmt.Errorf("service %q: protocol %s after %s", name, proto, s.proto)
		}
		s.proto = proto
		for p.more() {
			k, err := p.keyword("port", "source-port")
			if err != nil {
				return err
			}
			v, err := p.single(k)
			if err != nil {
				return err
			}
			if _, err := parsePorts(v); err != nil {
				return fmt.Errorf("service %q %s: %v", name, k, err)
			}
			if k == "port" {
				s.port = v
			} else {
				s.sourcePort = v
			}
		}
	}
	return nil
}

// Keys a rule accepts: lists, single values and yes/no flags.
type ruleKeys struct {
	lists, singles, flags []string
}

var securityKeys = ruleKeys{
	lists:   []string{"from", "to", "source", "destination", "application", "service", "source-user", "category"},
	singles: []string{"action", "rule-type", "description"},
	flags:   []string{"log-start", "log-end", "disabled", "negate-source", "negate-destination"},
}

var decryptionKeys = ruleKeys{
	lists:   []string{"from", "to", "source", "destination", "service", "source-user", "category"},
	singles: []string{"action", "type", "description"},
	flags:   []string{"disabled", "negate-source", "negate-destination"},
}

func (p *setParser) setRule(r *rRule, keys ruleKeys) error {
	if !p.more() {
		return fmt.Errorf("rule %q: nothing to set", r.name)
	}
	all := append(append(append([]string(nil), keys.lists...), keys.singles...), keys.flags...)
	for p.more() {
		key, err := p.keyword(all...)
		if err != nil {
			return err
		}
		switch {
		case contains(keys.lists, key):
			v, err := p.value(key)
			if err != nil {
				return err
			}
			r.addList(key, v)
		case contains(keys.flags, key):
			b, err := p.yesNo(key)
			if err != nil {
				return err
			}
			r.flags[key] = b
		default:
			v, err := p.single(key)
			if err != nil {
				return err
			}
			switch key {
			case "action":
				r.action = v
			case "rule-type":
				r.ruleType = v
			case "type":
				if v != "ssl-forward-proxy" && v != "ssh-proxy" {
					return fmt.Errorf("rule %q: decryption type %q is not modelled", r.name, v)
				}
				r.decryptType = v
			case "description":
				r.description = v
			}
		}
	}
	return nil
}

func (p *setParser) move() error {
	if _, err := p.keyword(p.rulebaseKeyword()); err != nil {
		return err
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
	where, err := p.keyword("top", "bottom", "before", "after")
	if err != nil {
		return err
	}
	ref := ""
	if where == "before" || where == "after" {
		if ref, err = p.name("rule name"); err != nil {
			return err
		}
	}
	rb := &p.dev.security
	if base == "decryption" {
		rb = &p.dev.decryption
	}
	if base == "qos" {
		rb = &p.dev.qosState().rules
	}
	return rb.move(name, where, ref)
}
