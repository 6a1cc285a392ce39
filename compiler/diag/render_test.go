package diag_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/diag"
)

func manyDiags(file string, src []byte, n int) hcl.Diagnostics {
	var ds hcl.Diagnostics
	for i := 0; i < n; i++ {
		off := (i * 7919) % len(src)
		ds = append(ds, diag.Errorf(diag.InvalidValue, hcl.Range{Filename: file,
			Start: hcl.Pos{Line: 1, Column: off + 1, Byte: off}, End: hcl.Pos{Line: 1, Column: off + 2, Byte: off + 1}},
			"Bad \x1b[31mthing", "Detail with \x1b]0;title\x07 and\nnewline."))
	}
	return ds
}

// TestWriteTextBounded: 200,000 diagnostics on a 4 MB one-line file print
// the first MaxShown and a count, quickly, with no raw control bytes.
func TestWriteTextBounded(t *testing.T) {
	src := bytes.Repeat([]byte("a = \"\x1b[31m\x9b\u202e\" \r"), 4<<20/16)
	files := map[string]*hcl.File{"p.hcl": {Bytes: src}}
	ds := manyDiags("p.hcl", src, 200_000)
	start := time.Now()
	var out bytes.Buffer
	if err := diag.WriteText(&out, files, ds, 80, false); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("rendering took %v", el)
	}
	if n := strings.Count(out.String(), "Error: "); n != diag.MaxShown {
		t.Errorf("%d diagnostics shown, want %d", n, diag.MaxShown)
	}
	want := fmt.Sprintf("... and %d more diagnostics not shown (%d errors, 0 warnings).", 200_000-diag.MaxShown, 200_000-diag.MaxShown)
	if !strings.Contains(out.String(), want) {
		t.Errorf("no %q in output", want)
	}
	if out.Len() > 100_000 {
		t.Errorf("output is %d bytes", out.Len())
	}
	for _, b := range []string{"\x1b", "\r", "\x07", "\x9b", "\u202e"} {
		if strings.Contains(out.String(), b) {
			t.Errorf("output holds raw %q", b)
		}
	}
	if !strings.Contains(out.String(), `\x1b[31m`) {
		t.Errorf("escape not shown escaped:\n%s", out.String()[:2000])
	}

	js := diag.ToJSON(ds)
	if len(js) != diag.MaxShown+1 || js[diag.MaxShown].Severity != "info" {
		t.Fatalf("ToJSON gave %d entries", len(js))
	}
	b, _ := json.Marshal(js)
	if bytes.Contains(b, []byte("\x1b")) || !bytes.Contains(b, []byte(`\\x1b[31m`)) {
		t.Errorf("JSON not escaped: %s", b[:300])
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\tok":  "plain text\tok",
		"a\x1b[31mb":      `a\x1b[31mb`,
		"line\nbreak":     `line\x0abreak`,
		"bad\xffutf8":     `bad\xffutf8`,
		"c1 \u009b":       `c1 \u009b`,
		"bidi \u202e rev": `bidi \u202e rev`,
		"é and 日本":        "é and 日本",
	} {
		if got := diag.Escape(in, false); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := diag.Escape("a\nb", true); got != "a\nb" {
		t.Errorf("keepNewlines: %q", got)
	}
}
