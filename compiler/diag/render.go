package diag

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	wordwrap "github.com/mitchellh/go-wordwrap"
	"github.com/zclconf/go-cty/cty"
)

// MaxShown bounds the diagnostics a rendering shows; the rest are counted
// in a last line ("and N more"). A hostile or broken file can cause
// millions of diagnostics; the first ones say what is wrong.
const MaxShown = 50

// maxSnippetLine bounds how much of one source line a snippet shows: a
// window around the highlighted range.
const maxSnippetLine = 200

// WriteText renders diagnostics with file:line:col, the code, a source
// snippet and the detail, in the layout of HCL's text writer (colour when
// color is set). At most MaxShown are shown. Lines are indexed once per
// file, so rendering is linear in the input; control characters of the
// source and of messages are shown escaped, never written raw.
func WriteText(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint, color bool) error {
	bw := bufio.NewWriter(w)
	r := &textRenderer{w: bw, files: files, width: width, color: color, lines: map[string][]int{}}
	for i, d := range diags {
		if i == MaxShown {
			errs, warns := Count(diags[i:])
			fmt.Fprintf(bw, "... and %d more diagnostic%s not shown (%d error%s, %d warning%s).\n\n",
				len(diags)-i, plural(len(diags)-i), errs, plural(errs), warns, plural(warns))
			break
		}
		c := *d
		if code := CodeOf(d); code != "" {
			c.Summary = fmt.Sprintf("%s: %s", code, d.Summary)
		}
		if d.Subject != nil {
			c.Summary = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, c.Summary)
		}
		r.write(&c)
	}
	return bw.Flush()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

type textRenderer struct {
	w     *bufio.Writer
	files map[string]*hcl.File
	width uint
	color bool
	lines map[string][]int // file -> offsets where lines start
}

func (r *textRenderer) lineStarts(name string, src []byte) []int {
	if ls, ok := r.lines[name]; ok {
		return ls
	}
	ls := []int{0}
	for i, c := range src {
		if c == '\n' {
			ls = append(ls, i+1)
		}
	}
	r.lines[name] = ls
	return ls
}

func (r *textRenderer) write(d *hcl.Diagnostic) {
	var colorCode, highlightCode, resetCode string
	if r.color {
		switch d.Severity {
		case hcl.DiagError:
			colorCode = "\x1b[31m"
		case hcl.DiagWarning:
			colorCode = "\x1b[33m"
		}
		resetCode = "\x1b[0m"
		highlightCode = "\x1b[1;4m"
	}
	sev := "Error"
	if d.Severity == hcl.DiagWarning {
		sev = "Warning"
	}
	fmt.Fprintf(r.w, "%s%s%s: %s\n\n", colorCode, sev, resetCode, Escape(d.Summary, false))
	if d.Subject != nil {
		r.snippet(d, highlightCode, resetCode)
		r.values(d)
	}
	if d.Detail != "" {
		detail := Escape(d.Detail, true)
		if r.width != 0 {
			detail = wordwrap.WrapString(detail, r.width)
		}
		fmt.Fprintf(r.w, "%s\n\n", detail)
	}
}

func (r *textRenderer) snippet(d *hcl.Diagnostic, highlightCode, resetCode string) {
	subj := *d.Subject
	snip, high := subj, subj
	if d.Context != nil {
		snip = hcl.RangeOver(snip, *d.Context)
	}
	if snip.Empty() {
		snip.End.Byte++
	}
	if high.Empty() {
		high.End.Byte++
	}
	name := Escape(subj.Filename, false)
	file := r.files[subj.Filename]
	if file == nil || file.Bytes == nil {
		fmt.Fprintf(r.w, "  on %s line %d:\n  (source code not available)\n\n", name, subj.Start.Line)
		return
	}
	ctx := ""
	if cs, ok := file.Nav.(interface{ ContextString(int) string }); ok {
		if s := cs.ContextString(subj.Start.Byte); s != "" {
			ctx = ", in " + Escape(s, false)
		}
	}
	fmt.Fprintf(r.w, "  on %s line %d%s:\n", name, subj.Start.Line, ctx)
	src := file.Bytes
	ls := r.lineStarts(subj.Filename, src)
	// The first line that may overlap the snippet.
	first := sort.Search(len(ls), func(i int) bool { return ls[i] > snip.Start.Byte }) - 1
	if first < 0 {
		first = 0
	}
	for i := first; i < len(ls) && ls[i] < snip.End.Byte && ls[i] < len(src); i++ {
		start := ls[i]
		end := len(src)
		if i+1 < len(ls) {
			end = ls[i+1] - 1
		}
		tokEnd := end
		if tokEnd > start && src[tokEnd-1] == '\r' {
			tokEnd--
		}
		if tokEnd == start || !(snip.Start.Byte < tokEnd && start < snip.End.Byte) {
			continue // empty lines, and lines beside the snippet
		}
		hs, he := max(start, high.Start.Byte), min(tokEnd, high.End.Byte)
		line := i + 1
		if hs >= he {
			fmt.Fprintf(r.w, "%4d: %s\n", line, clip(src[start:tokEnd], 0, 0))
			continue
		}
		before, mid, after := window(src[start:tokEnd], hs-start, he-start)
		fmt.Fprintf(r.w, "%4d: %s%s%s%s%s\n", line, before, highlightCode, mid, resetCode, after)
	}
	r.w.WriteByte('\n')
}

// window cuts a long line to about maxSnippetLine bytes around [hs, he) and
// escapes each part.
func window(line []byte, hs, he int) (before, mid, after string) {
	from, to := 0, len(line)
	if len(line) > maxSnippetLine {
		from = max(0, hs-maxSnippetLine/4)
		to = min(len(line), max(he, from+maxSnippetLine))
		if he-hs > maxSnippetLine {
			he = hs + maxSnippetLine
			to = he
		}
	}
	before = Escape(string(line[from:hs]), false)
	mid = Escape(string(line[hs:he]), false)
	after = Escape(string(line[he:to]), false)
	if from > 0 {
		before = "…" + before
	}
	if to < len(line) {
		after += "…"
	}
	return before, mid, after
}

func clip(line []byte, _, _ int) string {
	if len(line) > maxSnippetLine {
		return Escape(string(line[:maxSnippetLine]), false) + "…"
	}
	return Escape(string(line), false)
}

// values prints "with NAME as VALUE" for the variables of a failed
// expression, as HCL does, with long strings cut.
func (r *textRenderer) values(d *hcl.Diagnostic) {
	if d.Expression == nil || d.EvalContext == nil {
		return
	}
	vars := d.Expression.Variables()
	stmts := make([]string, 0, len(vars))
	seen := map[string]bool{}
	for _, tr := range vars {
		val, diags := tr.TraverseAbs(d.EvalContext)
		if diags.HasErrors() {
			continue
		}
		name := traversalStr(tr)
		if seen[name] {
			continue
		}
		switch {
		case !val.IsKnown():
			continue
		case val.IsNull():
			stmts = append(stmts, fmt.Sprintf("%s set to null", name))
		case val.IsMarked():
			continue
		default:
			stmts = append(stmts, fmt.Sprintf("%s as %s", name, valueStr(val)))
		}
		seen[name] = true
	}
	sort.Strings(stmts)
	for i, s := range stmts {
		if i == 0 {
			r.w.WriteString("with ")
		} else {
			r.w.WriteString("     ")
		}
		r.w.WriteString(Escape(s, false))
		if i == len(stmts)-1 {
			r.w.WriteString(".\n\n")
		} else {
			r.w.WriteString(",\n")
		}
	}
}

func traversalStr(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteByte('.')
			b.WriteString(s.Name)
		case hcl.TraverseIndex:
			b.WriteByte('[')
			if s.Key.Type().IsPrimitiveType() {
				b.WriteString(valueStr(s.Key))
			} else {
				b.WriteString("...")
			}
			b.WriteByte(']')
		}
	}
	return b.String()
}

func valueStr(val cty.Value) string {
	ty := val.Type()
	switch {
	case val.IsNull():
		return "null"
	case !val.IsKnown():
		return "(not yet known)"
	case ty == cty.Bool:
		if val.True() {
			return "true"
		}
		return "false"
	case ty == cty.Number:
		return val.AsBigFloat().Text('g', 10)
	case ty == cty.String:
		s := val.AsString()
		if len(s) > maxSnippetLine {
			return fmt.Sprintf("%q (%d bytes)", s[:maxSnippetLine]+"…", len(s))
		}
		return fmt.Sprintf("%q", s)
	case ty.IsCollectionType() || ty.IsTupleType():
		switch l := val.LengthInt(); l {
		case 0:
			return "empty " + ty.FriendlyName()
		case 1:
			return ty.FriendlyName() + " with 1 element"
		default:
			return fmt.Sprintf("%s with %d elements", ty.FriendlyName(), l)
		}
	case ty.IsObjectType():
		atys := ty.AttributeTypes()
		switch len(atys) {
		case 0:
			return "object with no attributes"
		case 1:
			for k := range atys {
				return fmt.Sprintf("object with 1 attribute %q", k)
			}
		}
		return fmt.Sprintf("object with %d attributes", len(atys))
	}
	return ty.FriendlyName()
}

// Escape makes text safe to print on a terminal or in a log: control
// characters (ESC, CR, C1 controls, DEL), bidirectional overrides and bytes
// that are not UTF-8 are written as Go escapes (\x1b, \u202e). Tabs are
// kept; newlines too when keepNewlines is set.
func Escape(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) && !(r == '\n' && keepNewlines) {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && keepNewlines:
			b.WriteByte('\n')
		case unsafeRune(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// JSONDiagnostic is the machine-readable form of one diagnostic.
type JSONDiagnostic struct {
	Severity string     `json:"severity"` // error, warning; info for the count of those not shown
	Code     string     `json:"code,omitempty"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *JSONRange `json:"range,omitempty"`
}

// JSONRange is a source range, 1-based lines and columns.
type JSONRange struct {
	Filename string  `json:"filename"`
	Start    JSONPos `json:"start"`
	End      JSONPos `json:"end"`
}

// JSONPos is a position in a file.
type JSONPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// ToJSON converts diagnostics to their JSON form: at most MaxShown, then
// one entry of severity "info" counting the rest. Text is escaped as in
// WriteText.
func ToJSON(diags hcl.Diagnostics) []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, min(len(diags), MaxShown+1))
	for i, d := range diags {
		if i == MaxShown {
			out = append(out, JSONDiagnostic{Severity: "info",
				Summary: fmt.Sprintf("%d more diagnostic%s not shown", len(diags)-i, plural(len(diags)-i))})
			break
		}
		jd := JSONDiagnostic{Summary: Escape(d.Summary, false), Detail: Escape(d.Detail, true), Code: string(CodeOf(d)), Severity: "error"}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			jd.Range = &JSONRange{
				Filename: Escape(r.Filename, false),
				Start:    JSONPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      JSONPos{r.End.Line, r.End.Column, r.End.Byte},
			}
		}
		out = append(out, jd)
	}
	return out
}
