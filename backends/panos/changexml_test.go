package panos

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// xtree is a configuration tree as the XML API edits it.
type xtree struct {
	name     string
	attrName string // the name attribute of an entry
	text     string
	children []*xtree
}

func (n *xtree) find(step string, create bool) *xtree {
	name, attr, text := step, "", ""
	if i := strings.Index(step, "[@name='"); i >= 0 {
		name, attr = step[:i], strings.TrimSuffix(step[i+len("[@name='"):], "']")
	} else if i := strings.Index(step, "[text()='"); i >= 0 {
		name, text = step[:i], strings.TrimSuffix(step[i+len("[text()='"):], "']")
	}
	for _, c := range n.children {
		if c.name == name && c.attrName == attr && (text == "" || c.text == text) {
			return c
		}
	}
	if !create {
		return nil
	}
	c := &xtree{name: name, attrName: attr, text: text}
	n.children = append(n.children, c)
	return c
}

func (n *xtree) walk(xpath string, create bool) (parent, node *xtree) {
	steps := strings.Split(strings.TrimPrefix(xpath, "/"), "/")
	cur := n
	for _, s := range steps {
		parent = cur
		if cur = cur.find(s, create); cur == nil {
			return parent, nil
		}
	}
	return parent, cur
}

// merge adds src's children into n as action=set does: members are added
// when new, entries merged by name, other elements merged or replaced.
func (n *xtree) merge(src xNode) {
	for _, c := range src.Nodes {
		if c.XMLName.Local == "member" {
			if n.find("member[text()='"+c.Text+"']", false) == nil {
				n.children = append(n.children, &xtree{name: "member", text: c.Text})
			}
			continue
		}
		dst := n.find(c.XMLName.Local, true)
		if len(c.Nodes) == 0 {
			dst.text = c.Text
		} else {
			dst.merge(c)
		}
	}
}

func (n *xtree) rename(old, new string) {
	for _, c := range n.children {
		if c.name == "member" && c.text == old {
			c.text = new
		}
		c.rename(old, new)
	}
}

// applyXMLChange runs the XML change form's requests on a tree.
func applyXMLChange(root *xtree, data []byte) error {
	var doc struct {
		Requests []struct {
			Action  string `xml:"action,attr"`
			XPath   string `xml:"xpath,attr"`
			Where   string `xml:"where,attr"`
			Dst     string `xml:"dst,attr"`
			NewName string `xml:"newname,attr"`
			Element *xNode `xml:"element"`
		} `xml:"request"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return err
	}
	for i, r := range doc.Requests {
		switch r.Action {
		case "set":
			_, n := root.walk(r.XPath, true)
			n.merge(*r.Element)
		case "delete", "move", "rename":
			parent, n := root.walk(r.XPath, false)
			if n == nil {
				return fmt.Errorf("request %d: %s of %s, which does not exist", i+1, r.Action, r.XPath)
			}
			at := -1
			for j, c := range parent.children {
				if c == n {
					at = j
				}
			}
			switch r.Action {
			case "delete":
				parent.children = append(parent.children[:at:at], parent.children[at+1:]...)
			case "rename":
				root.rename(n.attrName, r.NewName)
				n.attrName = r.NewName
			case "move":
				rest := append(parent.children[:at:at], parent.children[at+1:]...)
				pos := len(rest)
				switch r.Where {
				case "top":
					pos = 0
				case "before", "after":
					pos = -1
					for j, c := range rest {
						if c.attrName == r.Dst {
							pos = j
							if r.Where == "after" {
								pos++
							}
						}
					}
					if pos < 0 {
						return fmt.Errorf("request %d: move %s %q, which does not exist", i+1, r.Where, r.Dst)
					}
				}
				parent.children = append(rest[:pos:pos], append([]*xtree{n}, rest[pos:]...)...)
			}
		default:
			return fmt.Errorf("request %d: unknown action %q", i+1, r.Action)
		}
	}
	return nil
}

func (n *xtree) write(b *bytes.Buffer) {
	b.WriteString("<" + n.name)
	if n.attrName != "" {
		b.WriteString(` name="`)
		xml.EscapeText(b, []byte(n.attrName))
		b.WriteString(`"`)
	}
	b.WriteString(">")
	xml.EscapeText(b, []byte(n.text))
	for _, c := range n.children {
		c.write(b)
	}
	b.WriteString("</" + n.name + ">")
}

func (n *xtree) document() []byte {
	var b bytes.Buffer
	n.children[0].write(&b) // <config>
	return b.Bytes()
}

// TestXMLChangeForm: the XML API requests, applied with the API's merge
// semantics, take an empty vsys to the snapshot's configuration of every
// example, and a box holding a version to the next (random mutations),
// as turnwall's reader and pango read both.
func TestXMLChangeForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	xmlOpts := backends.Options{Format: FormatXML}
	snapshotOf := func(p *ir.Program) string {
		files := backendtest.Emit(t, Backend{}, p, xmlOpts)
		return fromReader(t, files)
	}
	requests, qosSteps := 0, 0
	for _, c := range backendtest.Cases(t) {
		root := &xtree{}
		_, vs := root.walk("/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='vsys1']", true)
		vs.find("rulebase", true).find("security", true).find("rules", true)
		next := mutate(c.Program, rng, 3)
		for _, step := range []struct {
			from, to *ir.Program
		}{{nil, c.Program}, {c.Program, next}, {next, c.Program}} {
			files, err := Backend{}.Change(step.from, step.to, xmlOpts)
			if err != nil {
				t.Fatal(err)
			}
			if files[0].Name != "panos-change.xml" {
				t.Fatalf("file %s", files[0].Name)
			}
			requests += strings.Count(string(files[0].Data), "<request ")
			if err := applyXMLChange(root, files[0].Data); err != nil {
				t.Fatalf("%s: %v\n%s", c.Name, err, files[0].Data)
			}
			doc := root.document()
			got := fromReader(t, []backends.File{{Name: "applied.xml", Data: doc}})
			if want := snapshotOf(step.to); got != want {
				t.Fatalf("%s: the XML requests give\n%s\nthe snapshot\n%s", c.Name, got, want)
			}
			gotQoS, wantQoS := qosOf(t, doc), qosOf(t, backendtest.Emit(t, Backend{}, step.to, xmlOpts)[0].Data)
			if len(step.to.QoS) > 0 {
				qosSteps++
				if !strings.Contains(wantQoS, "qos profile turnwall-qos") || !strings.Contains(wantQoS, "marking ") {
					t.Fatalf("%s: the snapshot reads without its QoS:\n%s", c.Name, wantQoS)
				}
			}
			if gotQoS != wantQoS {
				t.Fatalf("%s: the XML requests give the QoS configuration\n%s\nthe snapshot\n%s", c.Name, gotQoS, wantQoS)
			}
			if p := pangoRead(t, doc, "vsys1"); p != got {
				t.Fatalf("%s: pango reads the result otherwise:\n%s", c.Name, p)
			}
		}
	}
	t.Logf("%d XML API requests applied, %d results with a qos block", requests, qosSteps)
}

// qosOf is the QoS part of an XML configuration as the reader reads it:
// profiles, interfaces, QoS rules in order, markings.
func qosOf(t *testing.T, doc []byte) string {
	t.Helper()
	d, err := parseXML("qos.xml", doc)
	if err != nil {
		t.Fatal(err)
	}
	m := &Model{dev: d, where: place{rulePrefix: "tw-", objectPrefix: "tw-"}}
	var b strings.Builder
	m.qosCanonical(&b, true)
	m.qosCanonical(&b, false)
	if d.qos != nil {
		for _, r := range sortedKeys(d.qos.marking) {
			fmt.Fprintf(&b, "marking %s %s\n", r, d.qos.marking[r])
		}
	}
	return b.String()
}
