package graph

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Colours, shared by both renderers.
const (
	colourDeny    = "#c62828"
	colourReturn  = "#1565c0"
	colourAdded   = "#2e7d32"
	colourRemoved = "#c62828"
	colourChanged = "#ef6c00"
)

var kindFill = map[Kind]string{
	KindAgents:   "#e3f2fd",
	KindProvider: "#fff3e0",
	KindSTUN:     "#f3e5f5",
	KindRelay:    "#e8f5e9",
	KindSet:      "#f5f5f5",
}

// clean makes one line of user text safe to place anywhere: invalid UTF-8 is
// replaced, and every control, format and line or paragraph separator
// character becomes a space, so no text can start a new line or hide
// characters in either output. Escaping for the output's syntax comes after.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return ' '
		}
		return r
	}, s)
}

// dotString quotes label lines for DOT: backslashes and quotes escaped, lines
// joined with DOT's centred line break.
func dotString(lines []string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, l := range lines {
		if i > 0 {
			b.WriteString(`\n`)
		}
		for _, r := range clean(l) {
			switch r {
			case '\\', '"':
				b.WriteByte('\\')
				b.WriteRune(r)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// mermaidString quotes label lines for Mermaid. Inside a quoted Mermaid
// string only letters, digits, spaces and a few plain punctuation marks are
// written as they are; every other character is an entity code (#35;), which
// Mermaid decodes for display and never reads as syntax (quotes, brackets,
// pipes, markdown backticks, HTML, comments). Lines are joined with <br/>.
func mermaidString(lines []string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, l := range lines {
		if i > 0 {
			b.WriteString("<br/>")
		}
		for _, r := range clean(l) {
			if r == ' ' || (r > 127 && (unicode.IsLetter(r) || unicode.IsDigit(r))) ||
				('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') ||
				strings.ContainsRune(".,:/-_()+=@*!?", r) {
				b.WriteRune(r)
				continue
			}
			fmt.Fprintf(&b, "#%d;", r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ids gives every node a generated identifier (n1, n2, ...) in drawing order.
func (g *Graph) ids() map[string]string {
	ids := make(map[string]string, len(g.Nodes))
	for i, n := range g.Nodes {
		ids[n.Key] = fmt.Sprintf("n%d", i+1)
	}
	return ids
}

func title(g *Graph) []string {
	return []string{"policy " + g.Policy + " (default " + string(g.DefaultAction) + ")"}
}

func zoneLabel(z Zone) []string {
	label := []string{"zone " + z.Name}
	if len(z.Interfaces) > 0 {
		label[0] += " (" + strings.Join(z.Interfaces, ", ") + ")"
	}
	return label
}

// DOT renders the graph for Graphviz.
func (g *Graph) DOT() []byte {
	ids := g.ids()
	var b bytes.Buffer
	b.WriteString("digraph turnwall {\n")
	fmt.Fprintf(&b, "  graph [rankdir=LR, newrank=true, nodesep=0.5, ranksep=1.4, fontname=\"Helvetica\", labelloc=t, label=%s];\n", dotString(title(g)))
	b.WriteString("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=9];\n")
	node := func(indent string, n *Node) {
		fmt.Fprintf(&b, "%s%s [label=%s, fillcolor=\"%s\"];\n", indent, ids[n.Key], dotString(n.Label), kindFill[n.Kind])
	}
	for i, z := range g.Zones {
		fmt.Fprintf(&b, "  subgraph cluster_z%d {\n", i+1)
		fmt.Fprintf(&b, "    label=%s;\n    style=\"rounded,dashed\";\n    color=\"#607d8b\";\n", dotString(zoneLabel(z)))
		if len(z.Nodes) == 0 {
			// An empty cluster is not drawn; a point keeps the zone visible.
			fmt.Fprintf(&b, "    z%d_empty [shape=point, style=invis];\n", i+1)
		}
		for _, k := range z.Nodes {
			node("    ", g.Node(k))
		}
		b.WriteString("  }\n")
	}
	for i := range g.Nodes {
		if g.Nodes[i].Zone == "" {
			node("  ", &g.Nodes[i])
		}
	}
	for _, e := range g.Edges {
		attrs := "label=" + dotString(e.Label())
		switch {
		case e.Action == ir.Deny:
			attrs += fmt.Sprintf(", color=\"%s\", fontcolor=\"%s\", style=bold, arrowhead=tee", colourDeny, colourDeny)
		case e.Return:
			attrs += fmt.Sprintf(", color=\"%s\", fontcolor=\"%s\", style=dashed", colourReturn, colourReturn)
		}
		fmt.Fprintf(&b, "  %s -> %s [%s];\n", ids[e.From], ids[e.To], attrs)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// mermaidWriter collects a flowchart's lines and its link styles (Mermaid
// numbers links in the order they appear).
type mermaidWriter struct {
	b      bytes.Buffer
	links  int
	styles []string
	class  map[string][]string // class -> node ids
}

func newMermaid() *mermaidWriter {
	w := &mermaidWriter{class: map[string][]string{}}
	w.b.WriteString("flowchart LR\n")
	return w
}

func (w *mermaidWriter) link(from, arrow, label, to, style string) {
	fmt.Fprintf(&w.b, "  %s %s|%s| %s\n", from, arrow, label, to)
	if style != "" {
		w.styles = append(w.styles, fmt.Sprintf("  linkStyle %d %s", w.links, style))
	}
	w.links++
}

func (w *mermaidWriter) finish(classDefs []string) []byte {
	for _, s := range w.styles {
		w.b.WriteString(s + "\n")
	}
	for _, c := range classDefs {
		name, _, _ := strings.Cut(c, " ")
		if ids := w.class[name]; len(ids) > 0 {
			fmt.Fprintf(&w.b, "  classDef %s\n  class %s %s\n", c, strings.Join(ids, ","), name)
		}
	}
	return w.b.Bytes()
}

func kindClassDefs() []string {
	var out []string
	for _, k := range []Kind{KindAgents, KindProvider, KindSTUN, KindRelay, KindSet} {
		out = append(out, fmt.Sprintf("%s fill:%s,stroke:#455a64", kindClass(k), kindFill[k]))
	}
	return out
}

func kindClass(k Kind) string {
	if k == KindSet {
		return "addrset"
	}
	return string(k)
}

// Mermaid renders the graph as a Mermaid flowchart.
func (g *Graph) Mermaid() []byte {
	ids := g.ids()
	w := newMermaid()
	node := func(indent string, n *Node) {
		fmt.Fprintf(&w.b, "%s%s[%s]\n", indent, ids[n.Key], mermaidString(n.Label))
		w.class[kindClass(n.Kind)] = append(w.class[kindClass(n.Kind)], ids[n.Key])
	}
	for i, z := range g.Zones {
		if len(z.Nodes) == 0 {
			continue
		}
		fmt.Fprintf(&w.b, "  subgraph z%d[%s]\n", i+1, mermaidString(zoneLabel(z)))
		for _, k := range z.Nodes {
			node("    ", g.Node(k))
		}
		w.b.WriteString("  end\n")
	}
	for i := range g.Nodes {
		if g.Nodes[i].Zone == "" {
			node("  ", &g.Nodes[i])
		}
	}
	for _, e := range g.Edges {
		switch {
		case e.Action == ir.Deny:
			w.link(ids[e.From], "--x", mermaidString(e.Label()), ids[e.To],
				fmt.Sprintf("stroke:%s,stroke-width:3px,color:%s", colourDeny, colourDeny))
		case e.Return:
			w.link(ids[e.From], "-.->", mermaidString(e.Label()), ids[e.To],
				fmt.Sprintf("stroke:%s,color:%s", colourReturn, colourReturn))
		default:
			w.link(ids[e.From], "-->", mermaidString(e.Label()), ids[e.To], "")
		}
	}
	return w.finish(kindClassDefs())
}
