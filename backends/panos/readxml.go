package panos

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// node is one XML element with the line it starts on.
type node struct {
	name     string
	attrs    []xml.Attr
	children []*node
	text     strings.Builder
	line     int
}

// parseXML reads the vsys subtree PAN-OS keeps under
// /config/devices/entry[@name='localhost.localdomain']/vsys/entry. Every
// element is checked against the nodes the reader knows; anything else is
// an error naming its line.
func parseXML(file string, data []byte) (*device, error) {
	root, err := xmlTree(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	x := &xmlReader{file: file, dev: newDevice()}
	if err := x.config(root); err != nil {
		return nil, err
	}
	return x.dev, nil
}

func xmlTree(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		line, _ := d.InputPos()
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local, attrs: t.Attr, line: line}
			if t.Name.Space != "" {
				return nil, fmt.Errorf("line %d: namespaced element <%s:%s>", line, t.Name.Space, t.Name.Local)
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("line %d: a second root element <%s>", line, n.name)
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if strings.TrimSpace(string(t)) != "" {
					return nil, fmt.Errorf("line %d: text outside the root element", line)
				}
				continue
			}
			stack[len(stack)-1].text.Write(t)
		case xml.Comment:
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, fmt.Errorf("line %d: processing instruction <?%s?>", line, t.Target)
			}
		case xml.Directive:
			return nil, fmt.Errorf("line %d: <!%s> is not allowed in a PAN-OS configuration", line, firstWord(string(t)))
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no XML element found")
	}
	return root, nil
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

type xmlReader struct {
	file string
	dev  *device
}

func (x *xmlReader) errAt(n *node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", x.file, n.line, fmt.Sprintf(format, args...))
}

// container checks that n holds only elements (no text) with the allowed
// names and no attributes but those allowed.
func (x *xmlReader) container(n *node, attrs []string, allowed ...string) error {
	if strings.TrimSpace(n.text.String()) != "" {
		return x.errAt(n, "<%s> holds text %q where elements were expected", n.name, strings.TrimSpace(n.text.String()))
	}
	for _, a := range n.attrs {
		if !contains(attrs, a.Name.Local) || a.Name.Space != "" {
			return x.errAt(n, "<%s> has an unknown attribute %s", n.name, a.Name.Local)
		}
	}
	for _, c := range n.children {
		if !contains(allowed, c.name) {
			return x.errAt(c, "unknown element <%s> in <%s>", c.name, n.name)
		}
	}
	return nil
}

// leaf returns the text of an element that must hold text only.
func (x *xmlReader) leaf(n *node) (string, error) {
	if len(n.children) > 0 {
		return "", x.errAt(n.children[0], "unknown element <%s> in <%s>", n.children[0].name, n.name)
	}
	if len(n.attrs) > 0 {
		return "", x.errAt(n, "<%s> has an unknown attribute %s", n.name, n.attrs[0].Name.Local)
	}
	return strings.TrimSpace(n.text.String()), nil
}

// members reads <x><member>a</member>...</x>.
func (x *xmlReader) members(n *node) ([]string, error) {
	if err := x.container(n, nil, "member"); err != nil {
		return nil, err
	}
	var out []string
	for _, c := range n.children {
		v, err := x.leaf(c)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, x.errAt(c, "empty <member>")
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, x.errAt(n, "<%s> has no members", n.name)
	}
	return out, nil
}

// entries checks that n holds <entry name="..."> elements only, with unique
// names, and returns them.
func (x *xmlReader) entries(n *node) ([]*node, []string, error) {
	if err := x.container(n, nil, "entry"); err != nil {
		return nil, nil, err
	}
	var names []string
	for _, e := range n.children {
		name := ""
		for _, a := range e.attrs {
			if a.Name.Local == "name" && a.Name.Space == "" {
				name = a.Value
			}
		}
		if name == "" {
			return nil, nil, x.errAt(e, "<entry> without a name")
		}
		if contains(names, name) {
			return nil, nil, x.errAt(e, "a second <entry name=%q> in <%s>", name, n.name)
		}
		names = append(names, name)
	}
	return n.children, names, nil
}

func only(n *node, name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (x *xmlReader) unique(n *node) error {
	seen := map[string]bool{}
	for _, c := range n.children {
		if seen[c.name] {
			return x.errAt(c, "a second <%s> in <%s>", c.name, n.name)
		}
		seen[c.name] = true
	}
	return nil
}

func (x *xmlReader) config(root *node) error {
	if root.name != "config" {
		return x.errAt(root, "root element <%s>, expected <config>", root.name)
	}
	if err := x.container(root, []string{"version", "urldb", "detail-version"}, "devices"); err != nil {
		return err
	}
	if err := x.unique(root); err != nil {
		return err
	}
	devices := only(root, "devices")
	if devices == nil {
		return x.errAt(root, "<config> has no <devices>")
	}
	ents, names, err := x.entries(devices)
	if err != nil {
		return err
	}
	if len(ents) != 1 || names[0] != "localhost.localdomain" {
		return x.errAt(devices, "expected one <entry name=\"localhost.localdomain\"> in <devices>")
	}
	dev := ents[0]
	if err := x.container(dev, []string{"name"}, "vsys", "network"); err != nil {
		return err
	}
	if err := x.unique(dev); err != nil {
		return err
	}
	if nw := only(dev, "network"); nw != nil {
		if err := x.networkQoS(nw); err != nil {
			return err
		}
	}
	vsysList := only(dev, "vsys")
	if vsysList == nil {
		return x.errAt(dev, "no <vsys> in the device entry")
	}
	ents, names, err = x.entries(vsysList)
	if err != nil {
		return err
	}
	if len(ents) != 1 {
		return x.errAt(vsysList, "expected one vsys entry, found %d", len(ents))
	}
	x.dev.vsys = names[0]
	vsys := ents[0]
	if err := x.container(vsys, []string{"name"}, "address", "external-list", "address-group", "service", "service-group", "rulebase"); err != nil {
		return err
	}
	if err := x.unique(vsys); err != nil {
		return err
	}
	for _, c := range vsys.children {
		var err error
		switch c.name {
		case "address":
			err = x.addresses(c)
		case "external-list":
			err = x.externalLists(c)
		case "address-group":
			err = x.groups(c, x.dev.groups, "static")
		case "service":
			err = x.services(c)
		case "service-group":
			err = x.groups(c, x.dev.svcGroups, "members")
		case "rulebase":
			err = x.rulebase(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (x *xmlReader) addresses(n *node) error {
	ents, names, err := x.entries(n)
	if err != nil {
		return err
	}
	for i, e := range ents {
		if err := x.container(e, []string{"name"}, "ip-netmask", "fqdn", "description"); err != nil {
			return err
		}
		if err := x.unique(e); err != nil {
			return err
		}
		a := &rAddress{line: e.line}
		kinds := 0
		for _, c := range e.children {
			v, err := x.leaf(c)
			if err != nil {
				return err
			}
			switch c.name {
			case "ip-netmask":
				kinds++
				pf, err := netip.ParsePrefix(v)
				if err != nil {
					addr, err2 := netip.ParseAddr(v)
					if err2 != nil {
						return x.errAt(c, "%q is not an IP address or prefix", v)
					}
					pf = netip.PrefixFrom(addr, addr.BitLen())
				}
				if pf != pf.Masked() {
					return x.errAt(c, "%s has host bits set", v)
				}
				a.prefix = pf
			case "fqdn":
				kinds++
				if v == "" {
					return x.errAt(c, "empty <fqdn>")
				}
				a.fqdn = v
			}
		}
		if kinds != 1 {
			return x.errAt(e, "address %q needs exactly one of <ip-netmask> and <fqdn>", names[i])
		}
		x.dev.addresses[names[i]] = a
	}
	return nil
}

func (x *xmlReader) groups(n *node, into map[string]*rGroup, listName string) error {
	ents, names, err := x.entries(n)
	if err != nil {
		return err
	}
	for i, e := range ents {
		if err := x.container(e, []string{"name"}, listName, "description"); err != nil {
			return err
		}
		if err := x.unique(e); err != nil {
			return err
		}
		g := &rGroup{line: e.line}
		for _, c := range e.children {
			if c.name == "description" {
				if _, err := x.leaf(c); err != nil {
					return err
				}
				continue
			}
			if g.members, err = x.members(c); err != nil {
				return err
			}
		}
		into[names[i]] = g
	}
	return nil
}

func (x *xmlReader) services(n *node) error {
	ents, names, err := x.entries(n)
	if err != nil {
		return err
	}
	for i, e := range ents {
		if err := x.container(e, []string{"name"}, "protocol", "description"); err != nil {
			return err
		}
		if err := x.unique(e); err != nil {
			return err
		}
		s := &rService{line: e.line}
		for _, c := range e.children {
			if c.name == "description" {
				if _, err := x.leaf(c); err != nil {
					return err
				}
				continue
			}
			if err := x.container(c, nil, "tcp", "udp"); err != nil {
				return err
			}
			if len(c.children) != 1 {
				return x.errAt(c, "<protocol> needs exactly one of <tcp> and <udp>")
			}
			proto := c.children[0]
			if err := x.container(proto, nil, "port", "source-port"); err != nil {
				return err
			}
			if err := x.unique(proto); err != nil {
				return err
			}
			s.proto = proto.name
			for _, pc := range proto.children {
				v, err := x.leaf(pc)
				if err != nil {
					return err
				}
				if _, err := parsePorts(v); err != nil {
					return x.errAt(pc, "%v", err)
				}
				if pc.name == "port" {
					s.port = v
				} else {
					s.sourcePort = v
				}
			}
		}
		x.dev.services[names[i]] = s
	}
	return nil
}

func (x *xmlReader) rulebase(n *node) error {
	if err := x.container(n, nil, "security", "decryption", "qos"); err != nil {
		return err
	}
	if err := x.unique(n); err != nil {
		return err
	}
	for _, c := range n.children {
		if err := x.container(c, nil, "rules"); err != nil {
			return err
		}
		if err := x.unique(c); err != nil {
			return err
		}
		rules := only(c, "rules")
		if rules == nil {
			continue
		}
		ents, names, err := x.entries(rules)
		if err != nil {
			return err
		}
		rb, keys := &x.dev.security, securityKeys
		if c.name == "decryption" {
			rb, keys = &x.dev.decryption, decryptionKeys
		}
		if c.name == "qos" {
			for i, e := range ents {
				if err := x.qosRule(e, names[i]); err != nil {
					return err
				}
			}
			continue
		}
		for i, e := range ents {
			if c.name == "security" {
				var err error
				if e, err = x.marking(e, names[i]); err != nil {
					return err
				}
			}
			if err := x.rule(e, rb.rule(names[i], e.line), keys); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *xmlReader) rule(e *node, r *rRule, keys ruleKeys) error {
	all := append(append(append([]string(nil), keys.lists...), keys.singles...), keys.flags...)
	if err := x.container(e, []string{"name", "uuid"}, all...); err != nil {
		return err
	}
	if err := x.unique(e); err != nil {
		return err
	}
	for _, c := range e.children {
		switch {
		case contains(keys.lists, c.name):
			v, err := x.members(c)
			if err != nil {
				return err
			}
			r.addList(c.name, v)
		case c.name == "type":
			if err := x.container(c, nil, "ssl-forward-proxy", "ssh-proxy"); err != nil {
				return err
			}
			if len(c.children) != 1 {
				return x.errAt(c, "<type> needs exactly one decryption type")
			}
			if _, err := x.leaf(c.children[0]); err != nil {
				return err
			}
			r.decryptType = c.children[0].name
		default:
			v, err := x.leaf(c)
			if err != nil {
				return err
			}
			if contains(keys.flags, c.name) {
				if v != "yes" && v != "no" {
					return x.errAt(c, "<%s> takes yes or no, not %q", c.name, v)
				}
				r.flags[c.name] = v == "yes"
				continue
			}
			switch c.name {
			case "action":
				r.action = v
			case "rule-type":
				r.ruleType = v
			case "description":
				r.description = v
			}
		}
	}
	return nil
}

// externalLists reads <external-list><entry name=N><type><ip><recurring>
// <hourly/></recurring><url>U</url></ip></type></entry>.
func (x *xmlReader) externalLists(n *node) error {
	ents, names, err := x.entries(n)
	if err != nil {
		return err
	}
	for i, e := range ents {
		if err := x.container(e, []string{"name"}, "type", "description"); err != nil {
			return err
		}
		typ := only(e, "type")
		if typ == nil {
			return x.errAt(e, "external list %q has no <type>", names[i])
		}
		if err := x.container(typ, nil, "ip"); err != nil {
			return err
		}
		ip := only(typ, "ip")
		if ip == nil {
			return x.errAt(typ, "external list %q: only type ip is modelled", names[i])
		}
		if err := x.container(ip, nil, "url", "recurring", "description"); err != nil {
			return err
		}
		r := &rEDL{line: e.line}
		for _, c := range ip.children {
			switch c.name {
			case "url":
				if r.url, err = x.leaf(c); err != nil {
					return err
				}
			case "recurring":
				if len(c.children) != 1 {
					return x.errAt(c, "<recurring> needs one interval")
				}
				r.refresh = c.children[0].name
			}
		}
		x.dev.edls[names[i]] = r
	}
	return nil
}
