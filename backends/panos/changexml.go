package panos

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// renderChangeXML renders a change script as PAN-OS XML API configuration
// requests, in order: one <request> per step, each to be sent as
// `/api/?type=config&action=ACTION&xpath=XPATH` with `&element=` the
// request's element children (action=set merges them into the node, as
// `set` does), `&where=...&dst=...` (action=move) or `&newname=...`
// (action=rename); action=delete removes the node at the xpath, down to
// one list member (`.../static/member[text()='M']`). (XML API Set, Delete,
// Move and Rename Configuration,
// https://docs.paloaltonetworks.com/pan-os/10-1/pan-os-panorama-api/pan-os-xml-api-request-types/configuration-api.)
// Then commit. The steps and their order are those of the set form.
func renderChangeXML(steps []step, where place) ([]byte, error) {
	base := "/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='" + where.vsys + "']"
	doc := xChange{API: "PAN-OS XML API, type=config; send each request in order, then commit"}
	for _, s := range steps {
		r, err := xmlRequest(base, s)
		if err != nil {
			return nil, err
		}
		doc.Requests = append(doc.Requests, r)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	buf.WriteString("\n")
	return buf.Bytes(), nil
}

type xChange struct {
	XMLName  xml.Name   `xml:"turnwall-change"`
	API      string     `xml:"api,attr"`
	Requests []xRequest `xml:"request"`
}

type xRequest struct {
	Action  string    `xml:"action,attr"`
	XPath   string    `xml:"xpath,attr"`
	Where   string    `xml:"where,attr,omitempty"`
	Dst     string    `xml:"dst,attr,omitempty"`
	NewName string    `xml:"newname,attr,omitempty"`
	Element *xElement `xml:"element,omitempty"`
}

// xElement holds the element children of a set request.
type xElement struct {
	Nodes []xNode `xml:",any"`
}

// xNode is one element: text, or children.
type xNode struct {
	XMLName xml.Name
	Text    string  `xml:",chardata"`
	Nodes   []xNode `xml:",any"`
}

func leafNode(name, text string) xNode { return xNode{XMLName: xml.Name{Local: name}, Text: text} }

func parentNode(name string, children ...xNode) xNode {
	return xNode{XMLName: xml.Name{Local: name}, Nodes: children}
}

func membersNode(name string, members []string) xNode {
	n := parentNode(name)
	for _, m := range members {
		n.Nodes = append(n.Nodes, leafNode("member", m))
	}
	return n
}

// values splits a rendered set value: "[ a b ]" into its members, a quoted
// string into its text, a word into itself.
func values(v string) []string {
	if strings.HasPrefix(v, "[ ") && strings.HasSuffix(v, " ]") {
		return strings.Fields(strings.TrimSuffix(strings.TrimPrefix(v, "[ "), " ]"))
	}
	return []string{strings.Trim(v, `"`)}
}

func entry(name string) string { return "entry[@name='" + name + "']" }

// vsysOf is the vsys name at the end of a vsys xpath.
func vsysOf(base string) string {
	i := strings.LastIndex(base, "[@name='")
	return strings.TrimSuffix(base[i+len("[@name='"):], "']")
}

// ruleLists are the list fields of security and decryption rules.
var ruleLists = map[string]bool{"from": true, "to": true, "source": true, "destination": true,
	"source-user": true, "application": true, "service": true, "category": true}

func xmlRequest(base string, s step) (xRequest, error) {
	r := xRequest{Action: s.verb}
	p := s.path
	var xpath string
	switch p[0] {
	case "address", "address-group", "service", "service-group", "external-list":
		xpath = base + "/" + p[0] + "/" + entry(p[1])
		if len(p) > 2 { // a member or a sub-node
			rest := p[2:]
			switch {
			case p[0] == "service":
				xpath += "/" + strings.Join(rest, "/")
			default:
				xpath += "/" + rest[0] + "/member[text()='" + rest[1] + "']"
			}
		}
	case "network": // network qos profile P [class C] | network qos interface I
		xpath = strings.TrimSuffix(base, "/vsys/"+entry(vsysOf(base))) + "/network/qos/" + p[2] + "/" + entry(strings.Trim(p[3], `"`))
		if len(p) > 5 {
			xpath += "/class/" + entry(p[5])
		}
	default: // rulebase security|decryption|qos rules NAME [qos [marking]]
		xpath = base + "/rulebase/" + p[1] + "/rules/" + entry(p[3])
		if len(p) > 4 {
			xpath += "/" + strings.Join(p[4:], "/")
		}
	}
	r.XPath = xpath
	switch s.verb {
	case "delete":
		if len(s.args) == 2 { // a rule's list member
			r.XPath += "/" + s.args[0] + "/member[text()='" + s.args[1] + "']"
		}
		return r, nil
	case "move":
		r.Where = s.args[0]
		if len(s.args) > 1 {
			r.Dst = s.args[1]
		}
		return r, nil
	case "rename":
		r.NewName = s.args[1]
		return r, nil
	case "set":
	default:
		return r, fmt.Errorf("xml change form: unknown step %q", s.verb)
	}
	el := &xElement{}
	a := s.args
	switch p[0] {
	case "network":
		if p[2] == "interface" { // enabled yes regular-traffic default-group qos-profile P
			el.Nodes = append(el.Nodes, leafNode("enabled", a[1]),
				parentNode("regular-traffic", parentNode("default-group", leafNode("qos-profile", a[5]))))
		} else { // priority P
			el.Nodes = append(el.Nodes, leafNode(a[0], a[1]))
		}
	case "address":
		el.Nodes = append(el.Nodes, leafNode(a[0], a[1]))
	case "address-group", "service-group":
		el.Nodes = append(el.Nodes, membersNode(a[0], values(a[1])))
	case "external-list": // type ip url U recurring R
		el.Nodes = append(el.Nodes, parentNode("type", parentNode("ip",
			leafNode("url", a[3]), parentNode("recurring", parentNode(a[5])))))
	case "service": // protocol P port X [source-port Y]
		ports := []xNode{leafNode("port", a[3])}
		if len(a) > 5 {
			ports = append(ports, leafNode("source-port", a[5]))
		}
		el.Nodes = append(el.Nodes, parentNode("protocol", parentNode(a[1], ports...)))
	default: // rule: key value pairs
		for i := 0; i+1 < len(a); i += 2 {
			key, v := a[i], a[i+1]
			switch {
			case key == "action" && v == "class" && i+2 < len(a): // a QoS rule's action class N
				el.Nodes = append(el.Nodes, parentNode("action", leafNode("class", a[i+2])))
				i++
			case ruleLists[key]:
				el.Nodes = append(el.Nodes, membersNode(key, values(v)))
			case key == "type":
				el.Nodes = append(el.Nodes, parentNode("type", parentNode(v)))
			default:
				el.Nodes = append(el.Nodes, leafNode(key, values(v)[0]))
			}
		}
	}
	r.Element = el
	return r, nil
}
