package ranges

import (
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// A pair list holds inclusive start-end address ranges, as providers publish
// them in HTML tables (Twilio's Network Traversal Service ranges, for one):
// one or more pairs a line, separated by commas or semicolons, each written
// START-END, START - END or START END. # starts a comment. Each pair becomes
// its exact prefix cover (13.210.2.128-13.210.2.159 is 13.210.2.128/27).

func parsePairs(c *collector) error {
	index := 0
	forEachLine(c.data, func(lineStart int, line string) {
		for _, item := range splitItems(line) {
			c.res.Read++
			r, err := parsePair(item.text)
			if err != nil {
				c.problem(lineStart+item.col, index, "", false, "pair %s: %v", quote(item.text), err)
			} else {
				c.res.Matched++
				c.add(r.Prefixes()...)
			}
			index++
		}
	})
	return nil
}

type item struct {
	text string
	col  int // byte offset in the line
}

// splitItems splits a line at commas and semicolons into trimmed, non-empty
// items.
func splitItems(line string) []item {
	var out []item
	start := 0
	for i := 0; i <= len(line); i++ {
		if i < len(line) && line[i] != ',' && line[i] != ';' {
			continue
		}
		raw := line[start:i]
		if t := strings.TrimSpace(raw); t != "" {
			out = append(out, item{t, start + strings.Index(raw, t)})
		}
		start = i + 1
	}
	return out
}

// parsePair parses START-END, START - END or START END.
func parsePair(s string) (netipx.IPRange, error) {
	var a, b string
	if x, y, ok := strings.Cut(s, "-"); ok {
		a, b = strings.TrimSpace(x), strings.TrimSpace(y)
	} else if f := strings.Fields(s); len(f) == 2 {
		a, b = f[0], f[1]
	} else {
		return netipx.IPRange{}, fmt.Errorf("expected a start-end pair such as 192.0.2.0-192.0.2.63")
	}
	from, err := pairAddr(a)
	if err != nil {
		return netipx.IPRange{}, err
	}
	to, err := pairAddr(b)
	if err != nil {
		return netipx.IPRange{}, err
	}
	if from.Is4() != to.Is4() {
		return netipx.IPRange{}, fmt.Errorf("starts in one address family and ends in the other; give one pair per family")
	}
	if to.Less(from) {
		return netipx.IPRange{}, fmt.Errorf("starts above its end; write it as %s-%s", to, from)
	}
	return netipx.IPRangeFrom(from, to), nil
}

func pairAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Contains(s, "/") {
			return netip.Addr{}, fmt.Errorf("%s is a CIDR prefix, not an address: a pair list holds start-end addresses (use --format-in text for prefixes)", quote(s))
		}
		return netip.Addr{}, fmt.Errorf("%s is not an IP address", quote(s))
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s carries an interface zone (%%...): firewall rules need plain addresses", quote(s))
	}
	return a, nil
}

// allPairs reports whether input that is not JSON is a pair list: it has at
// least one entry and every entry is a start-end pair.
func allPairs(data []byte) bool {
	n, ok := 0, true
	forEachLine(data, func(_ int, line string) {
		for _, it := range splitItems(line) {
			n++
			if _, err := parsePair(it.text); err != nil {
				ok = false
			}
		}
	})
	return ok && n > 0
}
