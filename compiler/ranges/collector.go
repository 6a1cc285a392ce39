package ranges

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go4.org/netipx"
)

// collector is what every format's parser fills: the addresses of the
// selected entries, the problems, and the values seen per filter field.
type collector struct {
	data   []byte
	lines  lineIndex
	format Format
	filter Filter
	res    *Result
	set    netipx.IPSetBuilder
}

func newCollector(data []byte, format Format, f Filter) *collector {
	body := trimBOM(data)
	return &collector{
		data:   body,
		lines:  newLineIndex(body),
		format: format,
		filter: f,
		res:    &Result{Format: format, values: map[string]map[string]string{}},
	}
}

func (c *collector) result() *Result {
	set, err := c.set.IPSet()
	if err != nil {
		// IPSetBuilder only fails on invalid prefixes, which are never added.
		panic(fmt.Sprintf("ranges: building the set: %v", err))
	}
	c.res.set = set
	// Problems in input order, as a reader goes through the file.
	sort.SliceStable(c.res.Problems, func(i, j int) bool {
		a, b := c.res.Problems[i], c.res.Problems[j]
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return c.res
}

// problem records a problem at a byte offset.
func (c *collector) problem(off, index int, path string, warning bool, format string, args ...any) {
	line, col := c.lines.pos(off)
	c.res.Problems = append(c.res.Problems, &Problem{
		Line: line, Col: col, Index: index, Path: path, Warning: warning,
		Message: fmt.Sprintf(format, args...),
	})
}

// fatal is a problem with the input as a whole.
func (c *collector) fatal(off int, path, format string, args ...any) error {
	line, col := c.lines.pos(off)
	return &Problem{Line: line, Col: col, Index: -1, Path: path, Message: fmt.Sprintf(format, args...)}
}

// see records a filter field's value in the input.
func (c *collector) see(field, value string) {
	m := c.res.values[field]
	if m == nil {
		m = map[string]string{}
		c.res.values[field] = m
	}
	key := strings.ToLower(value)
	if _, ok := m[key]; !ok {
		m[key] = value
	}
}

// selects reports whether the filter lets an entry with these field values
// through. A direction filter of inbound or outbound also selects entries
// used in both directions.
func (c *collector) selects(fields map[string]string) bool {
	for _, field := range c.filter.Given() {
		value, ok := fields[field]
		if !ok {
			return false
		}
		match := false
		for _, want := range c.filter.values(field) {
			if strings.EqualFold(want, value) ||
				(field == FieldDirection && strings.EqualFold(value, "both") && !strings.EqualFold(want, "both")) {
				match = true
				break
			}
		}
		if !match {
			return false
		}
	}
	return true
}

// add puts a selected entry's prefixes into the set.
func (c *collector) add(prefixes ...netip.Prefix) {
	for _, p := range prefixes {
		c.set.AddPrefix(p)
	}
}

// family is the address family a JSON field must hold.
type family int

const (
	anyFamily family = iota
	ipv4Only
	ipv6Only
)

// prefixField parses a JSON string holding a CIDR prefix. Host bits set are a
// warning and are masked, as in a policy (TW104); everything else wrong is an
// error. ok is false when the entry cannot be used.
func (c *collector) prefixField(v *jsonValue, index int, path string, fam family) (netip.Prefix, bool) {
	if v.kind != jsonString {
		c.problem(v.off, index, path, false, "expected a CIDR prefix string, found %s", v.kind)
		return netip.Prefix{}, false
	}
	s := v.text
	if strings.Contains(s, "%") {
		c.problem(v.off, index, path, false, "%s carries an interface zone (%%...): firewall rules need plain prefixes", quote(s))
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		hint := ""
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			hint = " (an address without /length)"
		}
		c.problem(v.off, index, path, false, "%s is not a CIDR prefix%s: write it like 192.0.2.0/24 or 2001:db8::/32", quote(s), hint)
		return netip.Prefix{}, false
	}
	switch {
	case fam == ipv4Only && !p.Addr().Is4():
		c.problem(v.off, index, path, false, "%s is not an IPv4 prefix; IPv6 prefixes belong in ipv6_prefix", quote(s))
		return netip.Prefix{}, false
	case fam == ipv6Only && p.Addr().Is4():
		c.problem(v.off, index, path, false, "%s is not an IPv6 prefix; IPv4 prefixes belong in ip_prefix", quote(s))
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		c.problem(v.off, index, path, true, "%s has host bits set below its /%d mask; read as %s", quote(s), p.Bits(), m)
		return m, true
	}
	return p, true
}

// stringField reads a required string member of an entry object.
func (c *collector) stringField(entry *jsonValue, key string, index int, path string) (string, bool) {
	v := entry.get(key)
	if v == nil {
		c.problem(entry.off, index, path, false, "the entry has no %q", key)
		return "", false
	}
	if v.kind != jsonString {
		c.problem(v.off, index, path+"."+key, false, "expected a string, found %s", v.kind)
		return "", false
	}
	return v.text, true
}

// quote writes user data for a message on one line: control characters and
// line separators are escaped.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// jsonPath builds $.a[1].b style paths.
func jsonPath(base string, parts ...any) string {
	var b strings.Builder
	b.WriteString(base)
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			b.WriteString("." + p)
		}
	}
	return b.String()
}
