package diff

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
)

func compiled(t *testing.T, name string) *ir.Program {
	t.Helper()
	res := compiler.Compile(filepath.Join(backendtest.Root(), "policies", name), compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	return res.Program
}

func markdown(t *testing.T, oldP, newP *ir.Program) string {
	t.Helper()
	r, err := Build(Side{Label: "old", Program: oldP}, Side{Label: "new", Program: newP}, nil,
		func(backends.Backend) backends.Options { return backends.Options{} })
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestMarkdownFlows: a change of flows puts one mermaid block in the
// markdown; a change of nothing, or of no flow, puts none.
func TestMarkdownFlows(t *testing.T) {
	md := markdown(t, compiled(t, "genesys-cloud"), compiled(t, "private-relay"))
	if strings.Count(md, "### Flows") != 1 || strings.Count(md, "```mermaid\nflowchart LR\n") != 1 {
		t.Fatalf("no single Flows section with a mermaid block:\n%s", md)
	}
	for _, want := range []string{"==>|\"added: TURN", "-.->|\"removed: public STUN", "linkStyle 0 "} {
		if !strings.Contains(md, want) {
			t.Errorf("flows lack %q", want)
		}
	}
	// The block ends before the next section.
	_, after, _ := strings.Cut(md, "```mermaid\n")
	block, rest, ok := strings.Cut(after, "\n```\n")
	if !ok || strings.Contains(block, "```") || !strings.Contains(rest, "### Rules") {
		t.Errorf("mermaid block not closed where expected:\n%s", md)
	}
	if md := markdown(t, compiled(t, "twilio-flex"), compiled(t, "twilio-flex")); strings.Contains(md, "mermaid") {
		t.Errorf("no change drew flows:\n%s", md)
	}
}
