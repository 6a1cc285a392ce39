package diff

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnifiedAgainstGNUDiff(t *testing.T) {
	cases := []struct{ a, b string }{
		{"a\nb\nc\n", "a\nB\nc\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "1\n2\nx\n4\n5\n6\n7\n8\n9\n10\ny\n12\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n", "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n"},
		{"", "new\n"},
		{"old\n", ""},
		{"a\nb\n", "a\nb\nc\nd\n"},
		{"x\na\nb\nc\nd\ne\nf\ng\nh\ny\n", "a\nb\nc\nd\ne\nf\ng\nh\n"},
	}
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("no diff command to compare with")
	}
	dir := t.TempDir()
	for i, c := range cases {
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(a, []byte(c.a), 0o644)
		os.WriteFile(b, []byte(c.b), 0o644)
		out, _ := exec.Command("diff", "-U3", "--label", "old", "--label", "new", a, b).Output()
		got := Unified("old", "new", c.a, c.b, 3)
		if got != string(out) {
			t.Errorf("case %d:\ngot:\n%s\nGNU diff:\n%s", i, got, out)
		}
	}
	if Unified("a", "b", "same\n", "same\n", 3) != "" {
		t.Error("equal texts gave a diff")
	}
}

func TestOneLineChangeInLargeFile(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 10000; i++ {
		line := "element " + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		a.WriteString(line + "\n")
		b.WriteString(line + "\n")
		if i == 5000 {
			b.WriteString("inserted\n")
		}
	}
	h := Hunks(a.String(), b.String(), 3)
	if len(h) != 1 || h[0].NewLines-h[0].OldLines != 1 {
		t.Fatalf("hunks = %+v", h)
	}
}
