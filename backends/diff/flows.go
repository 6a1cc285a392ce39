package diff

import (
	"strings"

	"github.com/turnwall/turnwall/backends/graph"
	"github.com/turnwall/turnwall/compiler/ir"
)

// flowDiagram is the Mermaid picture of the flows that changed, or "" when
// none did (graph.DiffMermaid).
func flowDiagram(oldP, newP *ir.Program) string {
	return string(graph.DiffMermaid(oldP, newP))
}

// writeFlows adds the flow picture to a markdown report, in a mermaid block
// that GitHub and GitLab render. Labels are entity-encoded by the graph
// package, so no text can close the fence; the fence is chosen longer than
// any backtick run all the same.
func writeFlows(b *strings.Builder, mermaid string) {
	if mermaid == "" {
		return
	}
	fence := fenceFor(mermaid)
	b.WriteString("\n### Flows\n\nAdded flows are thick green arrows, removed ones dashed red, flows whose services changed orange (`-` before, `+` after); blocks that appeared, disappeared or whose addresses changed are outlined the same way.\n\n")
	b.WriteString(fence + "mermaid\n" + mermaid + fence + "\n")
}
