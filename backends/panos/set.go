package panos

import (
	"strings"
)

// list renders one member bare and several as "[ a b ]".
func list(members []string, brackets bool) string {
	if len(members) == 1 && !brackets {
		return members[0]
	}
	if len(members) == 0 {
		return "[  ]"
	}
	n := 3
	for _, m := range members {
		n += len(m) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString("[ ")
	for _, m := range members {
		b.WriteString(m)
		b.WriteByte(' ')
	}
	b.WriteByte(']')
	return b.String()
}

func quote(s string) string { return `"` + s + `"` }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
