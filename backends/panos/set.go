package panos

import (
	"bytes"
	"strings"

	"github.com/turnwall/turnwall/backends"
)

// renderSet writes the plan as configure-mode commands, one per line, to be
// pasted (or loaded) into a candidate configuration and reviewed with
// `show config diff` before `commit`. Every name is a single token of
// [A-Za-z0-9._-] and every description a double-quoted string with no quote,
// backslash or control character, so no policy text can end a command early
// or start another.
//
// Syntax: `set address N ip-netmask P|fqdn F`, `set address-group N static
// [ ... ]`, `set service N protocol tcp|udp port P source-port S`,
// `set service-group N members [ ... ]`, `set rulebase security rules N from
// Z to Z source A destination A source-user any application any service S
// action A`, and
// `move rulebase security rules N top|bottom|before R|after R` (PAN-OS CLI,
// as in ../shared/reference/vendors.md; new rules are appended at the bottom,
// so the order is made explicit with one move per rule). A vsys other than
// vsys1 is addressed as `set vsys NAME ...`.
func renderSet(pl *plan) ([]byte, error) {
	var buf bytes.Buffer
	w := &backends.Writer{W: &buf}
	scope := ""
	if pl.vsys != "vsys1" {
		scope = "vsys " + pl.vsys + " "
	}
	for _, a := range pl.addresses {
		w.Line("set %saddress %s %s %s", scope, a.name, a.kind, a.value)
	}
	for _, g := range pl.groups {
		w.Line("set %saddress-group %s static %s", scope, g.name, list(g.members, true))
	}
	for _, s := range pl.services {
		line := "set " + scope + "service " + s.name + " protocol " + s.proto + " port " + s.port
		if s.sourcePort != "" {
			line += " source-port " + s.sourcePort
		}
		w.Line("%s", line)
	}
	for _, g := range pl.svcGroups {
		w.Line("set %sservice-group %s members %s", scope, g.name, list(g.members, true))
	}
	for _, r := range pl.rules {
		w.Line("set %srulebase security rules %s from %s to %s source %s destination %s source-user any application any service %s action %s log-end %s rule-type universal description %s",
			scope, r.name, r.from, r.to, r.source, r.destination, r.service, r.action, yesNo(r.logEnd), quote(r.description))
	}
	for _, r := range pl.rules {
		w.Line("move %srulebase security rules %s bottom", scope, r.name)
	}
	renderQoSSet(w, pl, scope)
	if d := pl.decrypt; d != nil {
		// Decryption rule: from/to/source/destination/service/category,
		// action no-decrypt, type ssl-forward-proxy (pan-os-codegen
		// specs/policies/decryption-policy.yaml), moved above every other
		// decryption rule.
		w.Line("set %srulebase decryption rules %s from any to any source any destination %s service any category any action no-decrypt type ssl-forward-proxy description %s",
			scope, d.name, list(d.destinations, false), quote(d.description))
		w.Line("move %srulebase decryption rules %s top", scope, d.name)
	}
	return buf.Bytes(), w.Err
}

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
