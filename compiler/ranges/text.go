package ranges

import (
	"bytes"
	"strings"

	"github.com/turnwall/turnwall/compiler/eval"
)

// A text list is what ranges_file() reads: one IP, CIDR prefix or a-b range a
// line, # starting a comment, blank lines ignored; or a JSON array of such
// strings. Zoom, for one, publishes plain text lists of CIDR prefixes. Every
// entry is checked exactly as a policy checks it (eval.ParseAddress), so an
// imported file never holds what ranges_file() would refuse.

func parseText(c *collector) error {
	if firstByte(c.data) == '[' {
		return parseTextJSON(c)
	}
	index := 0
	forEachLine(c.data, func(lineStart int, line string) {
		if t := strings.TrimSpace(line); t != "" {
			col := strings.Index(line, t)
			c.res.Read++
			textEntry(c, lineStart+col, index, "", t)
			index++
		}
	})
	return nil
}

func parseTextJSON(c *collector) error {
	root, err := parseJSON(c.data)
	if err != nil {
		return err
	}
	if root.kind != jsonArray {
		return c.fatal(root.off, "$", "expected a JSON array of address strings, found %s", root.kind)
	}
	for i, v := range root.elems {
		c.res.Read++
		path := jsonPath("$", i)
		if v.kind != jsonString {
			c.problem(v.off, i, path, false, "expected an address string, found %s", v.kind)
			continue
		}
		textEntry(c, v.off, i, path, v.text)
	}
	return nil
}

// textEntry checks one entry as ranges_file() would and adds it.
func textEntry(c *collector, off, index int, path, entry string) {
	prefixes, problem := eval.ParseAddress(entry)
	if problem != nil {
		c.problem(off, index, path, problem.Warning, "%s: %s", problem.Summary, problem.Detail)
		if !problem.Warning {
			return
		}
	}
	c.res.Matched++
	c.add(prefixes...)
}

// forEachLine calls fn with each line's offset and its text before any #
// comment (and without the line ending).
func forEachLine(data []byte, fn func(lineStart int, line string)) {
	for start := 0; start <= len(data); {
		end := bytes.IndexByte(data[start:], '\n')
		if end < 0 {
			end = len(data) - start
		}
		line := string(data[start : start+end])
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fn(start, line)
		start += end + 1
	}
}
