// Package diag holds turnwall's diagnostic codes and the helpers every compiler
// stage uses to report problems as hcl.Diagnostics. Reporting is data; rendering
// (Text, JSON) is separate and only the CLI prints.
package diag

import (
	"fmt"
	"sort"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// Code is a stable diagnostic code, such as "TW201".
type Code string

// Extra is attached to every turnwall diagnostic in hcl.Diagnostic.Extra.
type Extra struct {
	Code Code
}

// CodeOf returns the turnwall code of d, or "" for diagnostics from HCL itself
// (syntax errors, unsupported arguments, type errors).
func CodeOf(d *hcl.Diagnostic) Code {
	if x, ok := d.Extra.(Extra); ok {
		return x.Code
	}
	return ""
}

// New makes a diagnostic with a code. Summary is terse; detail says what to do.
func New(sev hcl.DiagnosticSeverity, code Code, subject hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: sev,
		Summary:  summary,
		Detail:   detail,
		Subject:  subject.Ptr(),
		Extra:    Extra{Code: code},
	}
}

// Errorf is New with severity error and a formatted detail.
func Errorf(code Code, subject hcl.Range, summary, detailFormat string, args ...any) *hcl.Diagnostic {
	return New(hcl.DiagError, code, subject, summary, fmt.Sprintf(detailFormat, args...))
}

// Warnf is New with severity warning and a formatted detail.
func Warnf(code Code, subject hcl.Range, summary, detailFormat string, args ...any) *hcl.Diagnostic {
	return New(hcl.DiagWarning, code, subject, summary, fmt.Sprintf(detailFormat, args...))
}

// Suggest returns the candidate nearest to given, or "" when none is close enough
// to be a likely typo.
func Suggest(given string, candidates []string) string {
	best, bestDist := "", 4
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein.Distance(given, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// DidYouMean returns ` Did you mean "x"?` or "".
func DidYouMean(given string, candidates []string) string {
	if s := Suggest(given, candidates); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// Sort orders diagnostics by file, line, column, then severity, so output does
// not depend on the order stages ran in.
func Sort(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil && b == nil:
			return false
		case a == nil:
			return false
		case b == nil:
			return true
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Byte != b.Start.Byte:
			return a.Start.Byte < b.Start.Byte
		}
		return diags[i].Severity < diags[j].Severity
	})
}

// Strict turns warnings into errors (validate --strict).
func Strict(diags hcl.Diagnostics) hcl.Diagnostics {
	out := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		if c.Severity == hcl.DiagWarning {
			c.Severity = hcl.DiagError
		}
		out[i] = &c
	}
	return out
}

// Count returns the number of errors and warnings.
func Count(diags hcl.Diagnostics) (errors, warnings int) {
	for _, d := range diags {
		switch d.Severity {
		case hcl.DiagError:
			errors++
		case hcl.DiagWarning:
			warnings++
		}
	}
	return
}

// ErrorsOnly returns the diagnostics of severity error.
func ErrorsOnly(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}
