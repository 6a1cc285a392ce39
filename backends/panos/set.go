package panos

import (
	"strings"
)

// list renders one member bare and several as "[ a b ]".
func list(members []string, brackets bool) string {
	if len(members) == 1 && !brackets {
		return members[0]
	}
	return "[ " + strings.Join(members, " ") + " ]"
}

func quote(s string) string { return `"` + s + `"` }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
