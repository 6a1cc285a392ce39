// Package diff compares generated rule sets for change requests: unified
// text diffs per target (sergi/go-diff in line mode) and a semantic summary
// of what changed in the IR, the part a reviewer reads first.
package diff

import (
	"fmt"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// Line is one line of a unified diff: ' ' context, '-' removed, '+' added.
type Line struct {
	Op   byte
	Text string
}

// Hunk is a run of changes with context, as in `diff -u`.
type Hunk struct {
	OldStart, OldLines int
	NewStart, NewLines int
	Lines              []Line
}

// Header renders "@@ -a,b +c,d @@".
func (h Hunk) Header() string {
	return fmt.Sprintf("@@ -%s +%s @@", span(h.OldStart, h.OldLines), span(h.NewStart, h.NewLines))
}

func span(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	if n == 0 {
		start-- // diff -u names the line before an empty range
	}
	return fmt.Sprintf("%d,%d", start, n)
}

// Hunks computes a line diff of two texts and groups it into hunks with
// `context` unchanged lines around each change. Equal texts give no hunks.
func Hunks(oldText, newText string, context int) []Hunk {
	if oldText == newText {
		return nil
	}
	script := lineScript(oldText, newText)

	var hunks []Hunk
	oldLine, newLine := 1, 1
	var cur *Hunk
	lastChange := -1
	for i, l := range script {
		if l.Op != ' ' {
			if cur == nil || i-lastChange > 2*context {
				if cur != nil {
					trim(cur, lastChange, script, context)
					hunks = append(hunks, *cur)
				}
				start := i - context
				if start < 0 {
					start = 0
				}
				cur = &Hunk{OldStart: oldLine - (i - start), NewStart: newLine - (i - start)}
				for _, c := range script[start:i] {
					cur.Lines = append(cur.Lines, c)
				}
			} else {
				cur.Lines = append(cur.Lines, script[lastChange+1:i]...)
			}
			cur.Lines = append(cur.Lines, l)
			lastChange = i
		}
		switch l.Op {
		case ' ':
			oldLine++
			newLine++
		case '-':
			oldLine++
		case '+':
			newLine++
		}
	}
	if cur != nil {
		trim(cur, lastChange, script, context)
		hunks = append(hunks, *cur)
	}
	for i := range hunks {
		for _, l := range hunks[i].Lines {
			if l.Op != '+' {
				hunks[i].OldLines++
			}
			if l.Op != '-' {
				hunks[i].NewLines++
			}
		}
	}
	return hunks
}

// lineScript diffs two texts line by line: each distinct line becomes one
// rune (skipping the surrogate range, which does not survive a string) and
// go-diff's Myers diff runs on those runes.
func lineScript(oldText, newText string) []Line {
	index := map[string]rune{}
	var lines []string
	toRunes := func(text string) []rune {
		text = strings.TrimSuffix(text, "\n")
		if text == "" {
			return nil
		}
		parts := strings.Split(text, "\n")
		out := make([]rune, len(parts))
		for i, l := range parts {
			r, ok := index[l]
			if !ok {
				n := rune(len(lines))
				if n >= 0xD800 {
					n += 0x800
				}
				r = n
				index[l] = r
				lines = append(lines, l)
			}
			out[i] = r
		}
		return out
	}
	a, b := toRunes(oldText), toRunes(newText)
	line := func(r rune) string {
		if r >= 0xE000 {
			r -= 0x800
		}
		return lines[r]
	}
	var script []Line
	for _, d := range diffmatchpatch.New().DiffMainRunes(a, b, false) {
		op := byte(' ')
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = '-'
		case diffmatchpatch.DiffInsert:
			op = '+'
		}
		for _, r := range d.Text {
			script = append(script, Line{op, line(r)})
		}
	}
	return script
}

// trim appends the trailing context after the last change of a hunk.
func trim(h *Hunk, lastChange int, script []Line, context int) {
	end := lastChange + 1 + context
	if end > len(script) {
		end = len(script)
	}
	h.Lines = append(h.Lines, script[lastChange+1:end]...)
}

// Unified renders a unified diff with file headers; "" when equal.
func Unified(oldName, newName, oldText, newText string, context int) string {
	return Render(oldName, newName, Hunks(oldText, newText, context))
}

// Render writes hunks as a unified diff with file headers; "" for none.
func Render(oldName, newName string, hunks []Hunk) string {
	if len(hunks) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", oldName, newName)
	for _, h := range hunks {
		b.WriteString(h.Header())
		b.WriteByte('\n')
		for _, l := range h.Lines {
			b.WriteByte(l.Op)
			b.WriteString(l.Text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
