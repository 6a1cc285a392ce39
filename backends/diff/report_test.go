package diff

import (
	"strings"
	"testing"
)

// TestMarkdownNeutralisesProse: text from descriptions and rule names
// cannot add HTML, mention people, or link and load images in the markdown
// report; inside code (inline or fenced) it stays as written, inert.
func TestMarkdownNeutralisesProse(t *testing.T) {
	hostile := `<img src=x onerror=alert(1)> @octocat [click](https://evil.example) ![p](https://evil.example/p.png) a|b`
	r := &Report{Old: "a", New: "b", Changed: true, Summary: &Summary{
		RulesAdded: []RuleRef{{Name: "r@x", Action: "allow", What: hostile, Source: "policy.hcl:1"}},
		Policy:     []string{"description: " + hostile},
	}, Files: []FileDiff{{Target: "ir", File: "ir.txt", Status: "changed", Unified: "+comment \"<b>@team</b>\"\n"}}}
	var b strings.Builder
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	before, fenced, _ := strings.Cut(out, "```diff\n")
	for _, bad := range []string{"<img", "@octocat", "[click](", "![", " a|b", `a\\|b`} {
		if strings.Contains(before, bad) {
			t.Errorf("markdown outside code has %q:\n%s", bad, before)
		}
	}
	if !strings.Contains(before, "&lt;img") || !strings.Contains(before, "&#64;octocat") || !strings.Contains(before, "`r@x`") {
		t.Errorf("escaped text missing:\n%s", before)
	}
	if !strings.Contains(fenced, `+comment "<b>@team</b>"`) {
		t.Errorf("fenced diff changed:\n%s", fenced)
	}
}
