package diag

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// WriteText renders diagnostics with file:line:col, the code, a source snippet
// and the detail, using HCL's text writer (colour when color is set).
func WriteText(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint, color bool) error {
	tw := hcl.NewDiagnosticTextWriter(w, files, width, color)
	for _, d := range diags {
		c := *d
		if code := CodeOf(d); code != "" {
			c.Summary = fmt.Sprintf("%s: %s", code, d.Summary)
		}
		if d.Subject != nil {
			c.Summary = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, c.Summary)
		}
		if err := tw.WriteDiagnostic(&c); err != nil {
			return err
		}
	}
	return nil
}

// JSONDiagnostic is the machine-readable form of one diagnostic.
type JSONDiagnostic struct {
	Severity string     `json:"severity"`
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

// ToJSON converts diagnostics to their JSON form.
func ToJSON(diags hcl.Diagnostics) []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, len(diags))
	for _, d := range diags {
		jd := JSONDiagnostic{Summary: d.Summary, Detail: d.Detail, Code: string(CodeOf(d)), Severity: "error"}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			jd.Range = &JSONRange{
				Filename: r.Filename,
				Start:    JSONPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End:      JSONPos{r.End.Line, r.End.Column, r.End.Byte},
			}
		}
		out = append(out, jd)
	}
	return out
}
