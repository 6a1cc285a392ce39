package nftables

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Reader re-reads an emitted ruleset, independently of the emitter: it parses
// the subset of nft syntax turnwall writes and evaluates packets the way the
// kernel's forward hook would for the first packet of a connection.
func (Backend) Reader() backends.Reader { return reader{} }

type reader struct{}

type nftSet struct {
	v6       bool
	prefixes []netip.Prefix
	fqdns    []string
}

type nftRule struct {
	line         int
	iif, oif     []string
	family       int
	saddr, daddr string
	proto        string
	sport, dport []ir.PortRange
	ct           []string
	verdict      string
	comment      string
	ctdir        string // ct direction original|reply
	dscp         int    // DSCP set by the rule; -1 when none
	// limited: `limit rate over`: the rule matches only packets over a
	// rate, and takes the verdict of the rule after it (turnwall writes it
	// only to rate-limit the default rule's log), so a first packet goes on
	// to that rule.
	limited bool
}

type nftConfig struct {
	zones  map[string][]string
	sets   map[string]*nftSet
	chains map[string][]nftRule
	base   string
	policy string
	qos    string // the marking chain (priority mangle), if any
}

func (reader) Read(files []backends.File) (backends.Config, error) {
	if len(files) != 1 {
		return nil, fmt.Errorf("expected one file, got %d", len(files))
	}
	c := &nftConfig{zones: map[string][]string{}, sets: map[string]*nftSet{}, chains: map[string][]nftRule{}}
	sc := bufio.NewScanner(bytes.NewReader(files[0].Data))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	n := 0
	var set *nftSet
	var chain string
	inElements, inTable := false, false
	fail := func(format string, args ...any) error {
		return fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "# zone "):
			toks, err := tokenize(strings.TrimPrefix(line, "# zone "))
			if err != nil || len(toks) < 3 || toks[1] != "interfaces" {
				return nil, fail("bad zone comment")
			}
			name, err := strconv.Unquote(toks[0])
			if err != nil {
				return nil, fail("zone name: %v", err)
			}
			for _, q := range toks[2:] {
				i, err := strconv.Unquote(q)
				if err != nil {
					return nil, fail("interface name: %v", err)
				}
				c.zones[name] = append(c.zones[name], i)
			}
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		switch {
		case inElements:
			if line == "}" {
				inElements = false
				continue
			}
			p, err := netip.ParsePrefix(strings.TrimSuffix(line, ","))
			if err != nil || p.Addr().Is6() != set.v6 {
				return nil, fail("bad set element %q", line)
			}
			set.prefixes = append(set.prefixes, p)
		case set != nil:
			switch {
			case line == "}":
				set = nil
			case line == "type ipv4_addr":
			case line == "type ipv6_addr":
				set.v6 = true
			case line == "flags interval":
			case line == "elements = {":
				inElements = true
			case strings.HasPrefix(line, "comment "):
				text, err := strconv.Unquote(strings.TrimPrefix(line, "comment "))
				if err != nil {
					return nil, fail("bad comment")
				}
				if strings.HasPrefix(text, "fqdn ") {
					set.fqdns = strings.Fields(strings.TrimPrefix(text, "fqdn "))
				}
			default:
				return nil, fail("unexpected %q in a set", line)
			}
		case chain != "":
			switch {
			case line == "}":
				chain = ""
			case line == "type filter hook forward priority mangle; policy accept;":
				c.qos = chain
			case strings.HasPrefix(line, "type filter hook forward priority filter; policy "):
				c.base = chain
				c.policy = strings.TrimSuffix(strings.TrimPrefix(line, "type filter hook forward priority filter; policy "), ";")
			default:
				r, err := parseRule(line)
				if err != nil {
					return nil, fail("%v", err)
				}
				r.line = n
				c.chains[chain] = append(c.chains[chain], r)
			}
		case !inTable:
			t := strings.Fields(line)
			switch {
			case len(t) == 3 && t[0] == "table" && t[1] == "inet":
			case len(t) == 4 && t[0] == "delete" && t[1] == "table" && t[2] == "inet":
			case len(t) == 4 && t[0] == "table" && t[1] == "inet" && t[3] == "{":
				inTable = true
			default:
				return nil, fail("unexpected %q outside the table", line)
			}
		default:
			t := strings.Fields(line)
			switch {
			case line == "}":
				inTable = false
			case len(t) == 3 && t[0] == "set" && t[2] == "{":
				set = &nftSet{}
				c.sets[t[1]] = set
			case len(t) == 3 && t[0] == "chain" && t[2] == "{":
				chain = t[1]
				c.chains[chain] = nil
			default:
				return nil, fail("unexpected %q in the table", line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if c.base == "" {
		return nil, fmt.Errorf("no base chain on the forward hook")
	}
	for name, rules := range c.chains {
		for _, r := range rules {
			for _, s := range []string{r.saddr, r.daddr} {
				if s != "" && c.sets[s] == nil {
					return nil, fmt.Errorf("line %d: unknown set @%s", r.line, s)
				}
			}
			if j, ok := strings.CutPrefix(r.verdict, "jump "); ok {
				if _, ok := c.chains[j]; !ok {
					return nil, fmt.Errorf("line %d: chain %s jumps to unknown chain %s", r.line, name, j)
				}
			}
		}
	}
	return c, nil
}

// tokenize splits a rule into words, keeping "quoted strings" and { sets }
// as single tokens.
func tokenize(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		switch {
		case s[i] == ' ':
			i++
		case s[i] == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			end := j + 1
			if end < len(s) && s[end] == ',' {
				end++ // keep a list separator with its string
			}
			out = append(out, s[i:end])
			i = end
		case s[i] == '{':
			j, quoted := i+1, false
			for ; j < len(s) && (quoted || s[j] != '}'); j++ {
				switch {
				case s[j] == '\\' && quoted:
					j++
				case s[j] == '"':
					quoted = !quoted
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated set")
			}
			out = append(out, s[i:j+1])
			i = j + 1
		default:
			j := strings.IndexByte(s[i:], ' ')
			if j < 0 {
				j = len(s) - i
			}
			out = append(out, s[i:i+j])
			i += j
		}
	}
	return out, nil
}

func parseRule(line string) (nftRule, error) {
	toks, err := tokenize(line)
	if err != nil {
		return nftRule{}, err
	}
	r := nftRule{dscp: -1}
	next := func(i int) (string, error) {
		if i+1 >= len(toks) {
			return "", fmt.Errorf("%q needs a value", toks[i])
		}
		return toks[i+1], nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t {
		case "iifname", "oifname":
			v, err := next(i)
			if err != nil {
				return r, err
			}
			names, err := stringList(v)
			if err != nil {
				return r, err
			}
			if t == "iifname" {
				r.iif = names
			} else {
				r.oif = names
			}
			i++
		case "ip", "ip6":
			if i+3 < len(toks) && toks[i+1] == "dscp" && toks[i+2] == "set" {
				v, ok := parseDSCP(toks[i+3])
				if !ok || r.dscp >= 0 {
					return r, fmt.Errorf("bad %s dscp set %s", t, toks[i+3])
				}
				if fam := map[string]int{"ip": 4, "ip6": 6}[t]; r.family != fam {
					return r, fmt.Errorf("%s dscp set in a rule of family %d", t, r.family)
				}
				r.dscp = int(v)
				i += 3
				continue
			}
			if i+2 >= len(toks) || (toks[i+1] != "saddr" && toks[i+1] != "daddr") || !strings.HasPrefix(toks[i+2], "@") {
				return r, fmt.Errorf("expected %s saddr|daddr @set", t)
			}
			fam := 4
			if t == "ip6" {
				fam = 6
			}
			if r.family != 0 && r.family != fam {
				return r, fmt.Errorf("rule mixes ip and ip6")
			}
			r.family = fam
			if toks[i+1] == "saddr" {
				r.saddr = toks[i+2][1:]
			} else {
				r.daddr = toks[i+2][1:]
			}
			i += 2
		case "udp", "tcp":
			if i+2 >= len(toks) || (toks[i+1] != "sport" && toks[i+1] != "dport") {
				return r, fmt.Errorf("expected %s sport|dport PORTS", t)
			}
			if r.proto != "" && r.proto != t {
				return r, fmt.Errorf("rule mixes protocols")
			}
			r.proto = t
			ports, err := portList(toks[i+2])
			if err != nil {
				return r, err
			}
			if toks[i+1] == "sport" {
				r.sport = ports
			} else {
				r.dport = ports
			}
			i += 2
		case "meta":
			if i+2 >= len(toks) || toks[i+1] != "l4proto" || (toks[i+2] != "udp" && toks[i+2] != "tcp") {
				return r, fmt.Errorf("expected meta l4proto udp|tcp")
			}
			r.proto = toks[i+2]
			i += 2
		case "ct":
			if i+2 < len(toks) && toks[i+1] == "direction" && (toks[i+2] == "original" || toks[i+2] == "reply") {
				r.ctdir = toks[i+2]
				i += 2
				continue
			}
			if i+2 >= len(toks) || toks[i+1] != "state" {
				return r, fmt.Errorf("expected ct state")
			}
			r.ct = strings.Split(toks[i+2], ",")
			i += 2
		case "limit":
			// limit rate over N/UNIT burst N packets
			if i+6 >= len(toks) || toks[i+1] != "rate" || toks[i+2] != "over" || !strings.Contains(toks[i+3], "/") || toks[i+4] != "burst" || toks[i+6] != "packets" {
				return r, fmt.Errorf("expected limit rate over N/UNIT burst N packets")
			}
			r.limited = true
			i += 6
		case "counter":
		case "log":
			if i+2 >= len(toks) || toks[i+1] != "prefix" || !strings.HasPrefix(toks[i+2], `"`) {
				return r, fmt.Errorf("expected log prefix \"...\"")
			}
			i += 2
		case "accept", "drop":
			r.verdict = t
		case "jump":
			v, err := next(i)
			if err != nil {
				return r, err
			}
			r.verdict = "jump " + v
			i++
		case "comment":
			v, err := next(i)
			if err != nil {
				return r, err
			}
			if r.comment, err = strconv.Unquote(v); err != nil {
				return r, fmt.Errorf("bad comment %s", v)
			}
			i++
		default:
			return r, fmt.Errorf("unexpected %q", t)
		}
	}
	if r.verdict == "" {
		return r, fmt.Errorf("rule has no verdict")
	}
	return r, nil
}

func stringList(v string) ([]string, error) {
	if strings.HasPrefix(v, "{") {
		toks, err := tokenize(strings.TrimSuffix(strings.TrimPrefix(v, "{"), "}"))
		if err != nil {
			return nil, err
		}
		var out []string
		for i, t := range toks {
			if i < len(toks)-1 {
				if !strings.HasSuffix(t, ",") {
					return nil, fmt.Errorf("bad name list %s", v)
				}
				t = strings.TrimSuffix(t, ",")
			}
			s, err := strconv.Unquote(t)
			if err != nil {
				return nil, fmt.Errorf("bad name %q", t)
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := strconv.Unquote(v)
	if err != nil {
		return nil, fmt.Errorf("bad name %q", v)
	}
	return []string{s}, nil
}

func portList(v string) ([]ir.PortRange, error) {
	var out []ir.PortRange
	for _, part := range strings.Split(strings.Trim(v, "{} "), ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err1 := strconv.ParseUint(a, 10, 16)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.ParseUint(b, 10, 16)
		}
		if err1 != nil || err2 != nil || last < first {
			return nil, fmt.Errorf("bad port %q", part)
		}
		out = append(out, ir.PortRange{First: uint16(first), Last: uint16(last)})
	}
	return out, nil
}

// Decide follows the forward hook for the first packet of a connection: the
// base chain, jumps, and the first rule with a verdict.
func (c *nftConfig) Decide(pkt ir.Packet) backends.Decision {
	iif, oif := first(c.zones[pkt.FromZone]), first(c.zones[pkt.ToZone])
	if d, ok := c.run(c.base, pkt, iif, oif, 0); ok {
		return d
	}
	return backends.Decision{Action: verdictAction(c.policy)}
}

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

func verdictAction(v string) ir.Action {
	if v == "accept" {
		return ir.Allow
	}
	return ir.Deny
}

func (c *nftConfig) run(chain string, pkt ir.Packet, iif, oif string, depth int) (backends.Decision, bool) {
	if depth > 8 {
		return backends.Decision{Action: ir.Deny}, true
	}
	for _, r := range c.chains[chain] {
		if r.limited || !c.matches(r, pkt, iif, oif) {
			continue
		}
		if j, ok := strings.CutPrefix(r.verdict, "jump "); ok {
			if d, ok := c.run(j, pkt, iif, oif, depth+1); ok {
				return d, true
			}
			continue
		}
		d := backends.Decision{Action: verdictAction(r.verdict)}
		if r.saddr != "" || r.proto != "" { // a policy rule, not plumbing or the default
			if i := strings.LastIndexByte(r.comment, ' '); i >= 0 {
				d.Rule, d.Source = r.comment[:i], r.comment[i+1:]
			}
		}
		return d, true
	}
	return backends.Decision{}, false
}

func (c *nftConfig) matches(r nftRule, pkt ir.Packet, iif, oif string) bool {
	if len(r.ct) > 0 && !contains(r.ct, "new") {
		return false // a first packet is in state new
	}
	if len(r.iif) > 0 && !contains(r.iif, iif) {
		return false
	}
	if len(r.oif) > 0 && !contains(r.oif, oif) {
		return false
	}
	if r.family == 4 && !pkt.Src.Is4() || r.family == 6 && pkt.Src.Is4() {
		return false
	}
	if r.saddr != "" && !c.inSet(r.saddr, pkt.Src, "") {
		return false
	}
	if r.daddr != "" && !c.inSet(r.daddr, pkt.Dst, pkt.DstHost) {
		return false
	}
	if r.proto != "" && r.proto != string(pkt.Proto) {
		return false
	}
	return ir.ContainsPort(r.sport, pkt.SrcPort) && ir.ContainsPort(r.dport, pkt.DstPort)
}

func (c *nftConfig) inSet(name string, a netip.Addr, host string) bool {
	s := c.sets[name]
	if a.Is4() == s.v6 {
		return false
	}
	for _, p := range s.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return host != "" && contains(s.fqdns, host)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
