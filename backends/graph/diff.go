package graph

import (
	"fmt"
	"slices"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// EdgeChange is an edge that differs between two versions.
type EdgeChange struct {
	Status string // added, removed, changed
	Old    *Edge  // nil when added
	New    *Edge  // nil when removed
}

// Changes compares two graphs edge by edge (an edge is one flow purpose
// between two blocks), in the new graph's drawing order, removed edges
// after the ones still there.
func Changes(oldG, newG *Graph) []EdgeChange {
	oldBy := map[string]*Edge{}
	for i := range oldG.Edges {
		oldBy[oldG.Edges[i].Key()] = &oldG.Edges[i]
	}
	newBy := map[string]bool{}
	var out []EdgeChange
	for i := range newG.Edges {
		e := &newG.Edges[i]
		newBy[e.Key()] = true
		o, ok := oldBy[e.Key()]
		switch {
		case !ok:
			out = append(out, EdgeChange{Status: "added", New: e})
		case !slices.Equal(o.Services, e.Services):
			out = append(out, EdgeChange{Status: "changed", Old: o, New: e})
		}
	}
	for i := range oldG.Edges {
		if e := &oldG.Edges[i]; !newBy[e.Key()] {
			out = append(out, EdgeChange{Status: "removed", Old: e})
		}
	}
	return out
}

// DiffMermaid draws what changed between two versions of a policy as a
// Mermaid flowchart: added flows as thick green links, removed flows as
// dashed red links, flows whose services changed in orange with the
// services before and after, and blocks whose addresses changed in orange.
// It returns nil when no flow and no block changed.
func DiffMermaid(oldP, newP *ir.Program) []byte {
	oldG, newG := Build(oldP), Build(newP)
	changes := Changes(oldG, newG)

	// Nodes to draw: the ends of changed edges, and blocks whose label
	// changed (a provider's range count, a relay's port range).
	type drawn struct {
		node   Node
		status string // added, removed, changed, ""
	}
	var order []string
	nodes := map[string]*drawn{}
	want := func(key string) {
		if _, ok := nodes[key]; ok {
			return
		}
		d := &drawn{}
		n, o := newG.Node(key), oldG.Node(key)
		switch {
		case n != nil && o != nil:
			d.node = *n
			if !slices.Equal(n.Label, o.Label) {
				d.status = "changed"
				d.node.Label = changedLabel(o.Label, n.Label)
			}
		case n != nil:
			d.node, d.status = *n, "added"
		default:
			d.node, d.status = *o, "removed"
		}
		nodes[key] = d
		order = append(order, key)
	}
	for _, n := range newG.Nodes {
		if o := oldG.Node(n.Key); o == nil || !slices.Equal(o.Label, n.Label) {
			want(n.Key)
		}
	}
	for _, o := range oldG.Nodes {
		if newG.Node(o.Key) == nil {
			want(o.Key)
		}
	}
	for _, c := range changes {
		e := c.New
		if e == nil {
			e = c.Old
		}
		want(e.From)
		want(e.To)
	}
	if len(order) == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b string) int {
		ka, kb := kindOrder[nodes[a].node.Kind], kindOrder[nodes[b].node.Kind]
		if ka != kb {
			return ka - kb
		}
		return strings.Compare(a, b)
	})

	// Zones in the new version's order, then zones only the old one had.
	zones := append([]Zone{}, newG.Zones...)
	for _, z := range oldG.Zones {
		if !slices.ContainsFunc(zones, func(x Zone) bool { return x.Name == z.Name }) {
			zones = append(zones, z)
		}
	}
	ids := map[string]string{}
	var sorted []string
	for _, z := range zones {
		for _, k := range order {
			if nodes[k].node.Zone == z.Name {
				sorted = append(sorted, k)
			}
		}
	}
	for _, k := range order {
		if !slices.Contains(sorted, k) {
			sorted = append(sorted, k)
		}
	}
	for i, k := range sorted {
		ids[k] = fmt.Sprintf("n%d", i+1)
	}

	w := newMermaid()
	node := func(indent string, d *drawn) {
		id := ids[d.node.Key]
		label := d.node.Label
		if d.status == "added" || d.status == "removed" {
			label = append([]string{d.status + ":"}, label...)
		}
		fmt.Fprintf(&w.b, "%s%s[%s]\n", indent, id, mermaidString(label))
		class := kindClass(d.node.Kind)
		if d.status != "" {
			class = d.status
		}
		w.class[class] = append(w.class[class], id)
	}
	for i, z := range zones {
		var in []string
		for _, k := range sorted {
			if nodes[k].node.Zone == z.Name {
				in = append(in, k)
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&w.b, "  subgraph z%d[%s]\n", i+1, mermaidString(zoneLabel(z)))
		for _, k := range in {
			node("    ", nodes[k])
		}
		w.b.WriteString("  end\n")
	}
	for _, k := range sorted {
		if nodes[k].node.Zone == "" {
			node("  ", nodes[k])
		}
	}
	for _, c := range changes {
		switch c.Status {
		case "added":
			e := c.New
			w.link(ids[e.From], "==>", mermaidString(append([]string{"added: " + e.Label()[0]}, e.Label()[1:]...)), ids[e.To],
				fmt.Sprintf("stroke:%s,stroke-width:3px,color:%s", colourAdded, colourAdded))
		case "removed":
			e := c.Old
			w.link(ids[e.From], "-.->", mermaidString(append([]string{"removed: " + e.Label()[0]}, e.Label()[1:]...)), ids[e.To],
				fmt.Sprintf("stroke:%s,stroke-width:2px,stroke-dasharray:6 4,color:%s", colourRemoved, colourRemoved))
		case "changed":
			e := c.New
			label := []string{"changed: " + e.Label()[0]}
			for _, s := range c.Old.Services {
				if !slices.Contains(e.Services, s) {
					label = append(label, "- "+s)
				}
			}
			for _, s := range e.Services {
				if !slices.Contains(c.Old.Services, s) {
					label = append(label, "+ "+s)
				}
			}
			w.link(ids[e.From], "-->", mermaidString(label), ids[e.To],
				fmt.Sprintf("stroke:%s,stroke-width:3px,color:%s", colourChanged, colourChanged))
		}
	}
	defs := kindClassDefs()
	defs = append(defs,
		fmt.Sprintf("added fill:#e8f5e9,stroke:%s,stroke-width:2px", colourAdded),
		fmt.Sprintf("removed fill:#ffebee,stroke:%s,stroke-width:2px,stroke-dasharray:6 4", colourRemoved),
		fmt.Sprintf("changed fill:#fff3e0,stroke:%s,stroke-width:2px", colourChanged))
	return w.finish(defs)
}

// changedLabel keeps the new label and notes each line that was different.
func changedLabel(old, cur []string) []string {
	out := append([]string{}, cur...)
	for _, l := range old {
		if !slices.Contains(cur, l) {
			out = append(out, "was: "+l)
		}
	}
	return out
}
