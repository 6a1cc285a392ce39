package ranges_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler/ranges"
)

// FuzzParse feeds any bytes to every parser (and to detection): no input may
// panic; problems have positions and stay on one line; the set is aggregated,
// renders deterministically and reads back as itself; a filter built from the
// input's own values selects a subset. The seed corpus is every fixture under
// testdata/ranges, good and malformed, with each format.
func FuzzParse(f *testing.F) {
	var files []string
	for _, g := range []string{"*", "malformed/*"} {
		m, _ := filepath.Glob(filepath.Join(fixtures, g))
		files = append(files, m...)
	}
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue // a directory
		}
		for which := range uint8(len(ranges.Formats()) + 1) {
			f.Add(data, which)
		}
		n++
	}
	if n == 0 {
		f.Fatal("no seed files under testdata/ranges")
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		var format ranges.Format // detect
		if i := int(which) % (len(ranges.Formats()) + 1); i > 0 {
			format = ranges.Formats()[i-1]
		}
		res, err := ranges.Parse(data, format, ranges.Filter{})
		if err != nil {
			if p, ok := err.(*ranges.Problem); ok {
				checkProblem(t, p)
			}
			return
		}
		checkResult(t, res)
		again, err := ranges.Parse(data, format, ranges.Filter{})
		if err != nil || !again.Set().Equal(res.Set()) || len(again.Problems) != len(res.Problems) {
			t.Fatal("parsing twice differs")
		}

		// A filter on the first value of each field the format carries.
		var filter ranges.Filter
		for _, field := range res.Format.Fields() {
			values := res.Values(field)
			if len(values) == 0 {
				continue
			}
			switch field {
			case ranges.FieldService:
				filter.Service = values[:1]
			case ranges.FieldRegion:
				filter.Region = values[:1]
			case ranges.FieldDirection:
				filter.Direction = values[:1]
			case ranges.FieldCategory:
				filter.Category = values[:1]
			case ranges.FieldServiceArea:
				filter.ServiceArea = values[:1]
			}
		}
		sub, err := ranges.Parse(data, res.Format, filter)
		if err != nil {
			t.Fatalf("filtered parse failed: %v", err)
		}
		checkResult(t, sub)
		if len(ranges.Unmatched(filter, sub)) > 0 {
			t.Fatalf("a value from the input is reported unmatched: %v", ranges.Unmatched(filter, sub))
		}
		for _, r := range sub.Set().Ranges() {
			if !res.Set().ContainsRange(r) {
				t.Fatalf("filtered set has %v, the whole set does not", r)
			}
		}
	})
}

func checkProblem(t *testing.T, p *ranges.Problem) {
	t.Helper()
	if p.Line < 1 || p.Col < 1 {
		t.Fatalf("problem without a position: %+v", p)
	}
	if strings.ContainsAny(p.Error(), "\n\r\u2028\u2029") {
		t.Fatalf("problem message spans lines: %q", p.Error())
	}
}

func checkResult(t *testing.T, res *ranges.Result) {
	t.Helper()
	for _, p := range res.Problems {
		checkProblem(t, p)
	}
	if res.Matched > res.Read {
		t.Fatalf("matched %d of %d", res.Matched, res.Read)
	}
	prefixes := res.Prefixes()
	for i, p := range prefixes {
		if !p.IsValid() || p.Masked() != p {
			t.Fatalf("prefix %v not valid and masked", p)
		}
		if i > 0 {
			prev := prefixes[i-1]
			if prev.Addr().Is4() && !p.Addr().Is4() {
				continue
			}
			if !prev.Addr().Is4() && p.Addr().Is4() {
				t.Fatalf("IPv6 %v before IPv4 %v", prev, p)
			}
			if prev.Overlaps(p) || !prev.Addr().Less(p.Addr()) {
				t.Fatalf("prefixes %v, %v unsorted or overlapping", prev, p)
			}
		}
	}
	src := ranges.Source{Name: "fuzz", Format: res.Format}
	for _, style := range []ranges.Style{ranges.StyleText, ranges.StyleHCL} {
		out := ranges.Render(res, src, style)
		if !bytes.Equal(out, ranges.Render(res, src, style)) {
			t.Fatal("rendering is not deterministic")
		}
	}
	back, err := ranges.Parse(ranges.Render(res, src, ranges.StyleText), ranges.Text, ranges.Filter{})
	if err != nil || back.Errors() > 0 || !back.Set().Equal(res.Set()) {
		t.Fatalf("rendered output does not read back as the same set: %v", err)
	}
}
