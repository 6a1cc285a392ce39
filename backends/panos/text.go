package panos

import (
	"strings"

	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/ir"
)

// maxDescription is PAN-OS's limit on a description: "up to 1,023
// characters" (Objects > Addresses, Objects > Services; 1023 in pan-os-codegen
// specs/policies/security-policy-rule.yaml).
const maxDescription = 1023

// cleanText makes user text safe for a double-quoted CLI value and an XML text
// node alike: control and line-separator characters become spaces (so nothing
// can start a new line or command), the quote characters and the backslash
// are dropped (the CLI has no documented escape inside quotes), '?' is
// dropped (an interactive CLI takes it as a request for help, even in a
// pasted line), and anything outside printable ASCII becomes '_', so that the
// text reads the same over a serial console, SSH paste and the XML API. Runs
// of spaces become one. The result is at most max bytes.
func cleanText(s string, max int) string {
	s = naming.Comment(s, "\"'`\\?", 4*max+16)
	var b strings.Builder
	space := false
	for _, r := range s {
		if r > '~' {
			r = '_'
		}
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		if b.Len() == max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// sourceTag renders where a rule came from as the reader recovers it: the
// description of every policy rule starts with "[file:line] ". Square
var noBrackets = strings.NewReplacer("[", "", "]", "")

// brackets are dropped from the file name so that the first ']' ends the tag.
func sourceTag(src ir.Source) string {
	s := cleanText(src.String(), 200)
	return noBrackets.Replace(s)
}

// ruleDescription is "[policy.hcl:12] comment", cut to the PAN-OS limit with
// the source tag always kept whole.
func ruleDescription(r ir.Rule) string {
	tag := "[" + sourceTag(r.Origin.Source) + "] "
	text := r.Comment
	if strings.TrimSpace(text) == "" {
		text = string(r.Purpose) + " rule " + r.Name
	}
	return strings.TrimSpace(tag + cleanText(text, maxDescription-len(tag)))
}
