// Package naming maps IR names ("agents.floor3", "floor3.genesys.media") to
// names a target accepts: only allowed characters, within a length limit, not a
// reserved word, unique, and stable between runs. A name that must be changed
// keeps a readable prefix and gets a short hash of the original, so the same
// IR name always gives the same target name and two names never collide.
package naming

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Rules describe what a target accepts in one namespace.
type Rules struct {
	MaxLen int
	// Allowed reports whether r may appear in a name; First, when set, whether
	// it may start one.
	Allowed func(r rune) bool
	First   func(r rune) bool
	// Replace is written in place of a character that is not allowed.
	Replace rune
	// Reserved words, compared case-insensitively.
	Reserved []string
	// Prefix is prepended to every name (for example "tw-").
	Prefix string
	// Taken, when set, reports whether a lower-cased name was given out
	// besides the namer's own (a Block's); the namer never gives it again.
	Taken func(lower string) bool
}

// Namer hands out target names for one namespace. The zero value is not
// usable; use New.
type Namer struct {
	rules    Rules
	reserved map[string]bool
	byIR     map[string]string
	used     map[string]string // lower-cased target name -> IR name
	// plain[c]: ASCII c is allowed anywhere (1) and also first (2).
	plain [utf8.RuneSelf]uint8
}

// New returns a namer for the rules.
func New(r Rules) *Namer {
	n := &Namer{rules: r, reserved: map[string]bool{}, byIR: map[string]string{}, used: map[string]string{}}
	for _, w := range r.Reserved {
		n.reserved[strings.ToLower(w)] = true
	}
	for c := rune(0); c < utf8.RuneSelf; c++ {
		if c != utf8.RuneError && r.Allowed(c) {
			n.plain[c] = 1
			if r.First == nil || r.First(c) {
				n.plain[c] = 2
			}
		}
	}
	return n
}

// Name returns the target name for an IR name, the same on every call. A name
// that had to be changed (characters replaced, cut to length, reserved) carries
// a hash of the IR name, so two IR names that clean to the same text stay apart.
func (n *Namer) Name(irName string) string {
	if t, ok := n.byIR[irName]; ok {
		return t
	}
	t := n.Fresh(irName)
	n.byIR[irName] = t
	return t
}

// Fresh returns the name Name gives an IR name it has not named yet, and
// keeps it from every later name, but does not remember it for irName: for
// a caller that keeps the names it was given and asks for each IR name once
// (a later Name or Fresh of the same IR name gives another name).
func (n *Namer) Fresh(irName string) string {
	t := n.clean(irName)
	if p := n.rules.Prefix; len(t) != len(p)+len(irName) || t[:len(p)] != p || t[len(p):] != irName {
		t = n.hashed(irName, t)
	}
	for i := 2; ; i++ { // a collision within one namespace: practically never
		lower := strings.ToLower(t)
		if _, taken := n.used[lower]; !taken && (n.rules.Taken == nil || !n.rules.Taken(lower)) {
			break
		}
		t = n.hashed(fmt.Sprintf("%s#%d", irName, i), t)
	}
	n.used[strings.ToLower(t)] = irName
	return t
}

func (n *Namer) clean(irName string) string {
	if s, ok := n.cleanPlain(irName); ok {
		return s
	}
	var b strings.Builder
	b.WriteString(n.rules.Prefix)
	for _, r := range irName {
		if r == utf8.RuneError || !n.rules.Allowed(r) {
			r = n.rules.Replace
		}
		if b.Len() == 0 && n.rules.First != nil && !n.rules.First(r) {
			b.WriteString("x")
		}
		b.WriteRune(r)
	}
	s := b.String()
	if s == "" || n.reserved[strings.ToLower(s)] {
		s = "x" + string(n.rules.Replace) + s
	}
	if len(s) > n.rules.MaxLen {
		return s[:n.rules.MaxLen]
	}
	return s
}

// Plain returns the name an IR name gets when it needs no change (allowed
// ASCII characters only, within the length limit, not reserved): the
// prefix and the IR name.
func (n *Namer) Plain(irName string) (string, bool) { return n.cleanPlain(irName) }

// cleanPlain is clean for the common name that needs no change: allowed
// ASCII characters only, within the length limit, not reserved.
func (n *Namer) cleanPlain(irName string) (string, bool) {
	s := n.rules.Prefix + irName
	if s == "" || len(s) > n.rules.MaxLen {
		return "", false
	}
	if n.plain[s[0]&0x7f] != 2 || s[0] >= utf8.RuneSelf {
		return "", false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || n.plain[c] == 0 {
			return "", false
		}
	}
	if len(n.reserved) > 0 && n.reserved[strings.ToLower(s)] {
		return "", false
	}
	return s, true
}

// cleanPlainBytes is cleanPlain of a key being built.
func (n *Namer) cleanPlainBytes(irName []byte) (string, bool) {
	p := n.rules.Prefix
	if len(p)+len(irName) > n.rules.MaxLen || len(p)+len(irName) == 0 {
		return "", false
	}
	first := byte(0)
	if p != "" {
		first = p[0]
	} else {
		first = irName[0]
	}
	if first >= utf8.RuneSelf || n.plain[first] != 2 {
		return "", false
	}
	for i := 1; i < len(p); i++ {
		if c := p[i]; c >= utf8.RuneSelf || n.plain[c] == 0 {
			return "", false
		}
	}
	for i, c := range irName {
		if (p != "" || i > 0) && (c >= utf8.RuneSelf || n.plain[c] == 0) {
			return "", false
		}
	}
	s := p + string(irName)
	if len(n.reserved) > 0 && n.reserved[strings.ToLower(s)] {
		return "", false
	}
	return s, true
}

func (n *Namer) hashed(irName, cleaned string) string {
	sum := sha256.Sum256([]byte(irName))
	suffix := string(n.rules.Replace) + hex.EncodeToString(sum[:])[:8]
	keep := n.rules.MaxLen - len(suffix)
	if keep > len(cleaned) {
		keep = len(cleaned)
	}
	return cleaned[:keep] + suffix
}

// ASCIIWord allows letters, digits and the given punctuation.
func ASCIIWord(punct string) func(rune) bool {
	return func(r rune) bool {
		return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(punct, r))
	}
}

// Letter allows an ASCII letter.
func Letter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// AlphaNum allows an ASCII letter or digit.
func AlphaNum(r rune) bool { return Letter(r) || r >= '0' && r <= '9' }

// Comment makes free text safe for a one-line comment or quoted string: control
// characters become spaces, the characters in drop are removed, and the result
// is cut to max bytes at a rune boundary.
func Comment(s, drop string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			continue
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029':
			r = ' '
		case unicode.Is(unicode.Cf, r):
			// Format characters: bidi overrides and isolates (U+202E), zero
			// widths, BOM. They reorder or hide text in a reviewer's view.
			continue
		case strings.ContainsRune(drop, r):
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// EscapeJSONFormat writes Unicode format characters (category Cf: bidi overrides
// and isolates, zero widths, BOM) as JSON \uXXXX escapes, so that a reviewer
// reading the file sees them and the data stays the same. JSON's syntax is
// ASCII, so such a character can only be inside a string.
func EscapeJSONFormat(data []byte) []byte {
	if !bytes.ContainsFunc(data, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
		return data
	}
	var b bytes.Buffer
	for _, r := range string(data) {
		switch {
		case unicode.Is(unicode.Cf, r) && r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		case unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.Bytes()
}
