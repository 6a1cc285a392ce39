package naming

import (
	"strings"
	"testing"
)

func TestNamer(t *testing.T) {
	rules := Rules{MaxLen: 20, Allowed: ASCIIWord("-_."), First: Letter, Replace: '_', Reserved: []string{"any", "tcp"}}
	n := New(rules)
	cases := map[string]string{}
	for _, in := range []string{"agents.floor3", "floor3.genesys.media", "any", "3rd", "a b", "a_b", "x;y\n}", "agents.a-very-long-name-indeed.stun", "ünïcode"} {
		got := n.Name(in)
		cases[in] = got
		if len(got) > rules.MaxLen {
			t.Errorf("%q -> %q: longer than %d", in, got, rules.MaxLen)
		}
		for i, r := range got {
			if !rules.Allowed(r) || (i == 0 && !rules.First(r)) {
				t.Errorf("%q -> %q: character %q not allowed", in, got, r)
			}
		}
		if strings.EqualFold(got, "any") || strings.EqualFold(got, "tcp") {
			t.Errorf("%q -> reserved %q", in, got)
		}
		if again := n.Name(in); again != got {
			t.Errorf("%q not stable: %q then %q", in, got, again)
		}
	}
	if cases["agents.floor3"] != "agents.floor3" {
		t.Errorf("a valid name was changed: %q", cases["agents.floor3"])
	}
	if cases["a b"] == cases["a_b"] {
		t.Errorf("%q and %q collide", "a b", "a_b")
	}
	// A fresh namer gives the same names: stable between runs.
	m := New(rules)
	for in, want := range cases {
		if got := m.Name(in); got != want {
			t.Errorf("%q: %q in one run, %q in another", in, want, got)
		}
	}
}

func TestComment(t *testing.T) {
	got := Comment("line1\nline2\r\"quoted\" ; } é\u2028end", `"`, 40)
	if strings.ContainsAny(got, "\n\r\"\u2028") {
		t.Fatalf("unsafe characters left: %q", got)
	}
	if got != "line1 line2 quoted ; } é end" {
		t.Fatalf("got %q", got)
	}
	if got := Comment(strings.Repeat("é", 100), "", 9); got != "éééé" {
		t.Fatalf("cut mid-rune: %q", got)
	}
}

// TestCommentDropsFormatCharacters: bidi overrides and isolates, zero
// widths and the BOM (Unicode category Cf) never reach a comment, where
// they would reorder or hide text in a reviewer's view.
func TestCommentDropsFormatCharacters(t *testing.T) {
	in := "allow \u202eevil\u202c \u2066x\u2069 zero\u200bwidth \ufeffbom \u00adsoft"
	if got, want := Comment(in, "", 200), "allow evil x zerowidth bom soft"; got != want {
		t.Errorf("Comment(%q) = %q, want %q", in, got, want)
	}
}
