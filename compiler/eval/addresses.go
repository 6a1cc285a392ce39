package eval

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

// AddrProblem is what is wrong with an address entry; Code says which check.
type AddrProblem struct {
	Code    diag.Code
	Summary string
	Detail  string
	Warning bool // the entry is still usable (normalised)
}

// ParseAddress parses one address entry: an IP, a CIDR prefix, or an inclusive
// range "a-b" of two addresses of one family. It returns the exact prefix cover
// of the entry. Host bits set in a prefix are a warning and are masked off.
func ParseAddress(text string) ([]netip.Prefix, *AddrProblem) {
	out, problem := appendAddress(nil, text)
	if len(out) == 0 {
		out = nil
	}
	return out, problem
}

// appendAddress is ParseAddress appending the prefix cover to dst, so that
// a file of entries needs one array for all of them. On an error dst is
// returned unchanged.
func appendAddress(dst []netip.Prefix, text string) ([]netip.Prefix, *AddrProblem) {
	s := strings.TrimSpace(text)
	if s == "" {
		return dst, &AddrProblem{Code: diag.InvalidAddress, Summary: "Empty address", Detail: "An address entry is empty. Give an IP, a CIDR prefix such as 10.20.0.0/16, or a range such as 10.0.0.1-10.0.0.9."}
	}
	// One pass for the characters that tell the forms apart.
	var pct, dash, slash bool
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			pct = true
		case '-':
			dash = true
		case '/':
			slash = true
		}
	}
	if pct {
		return dst, &AddrProblem{Code: diag.InvalidAddress, Summary: "Scoped address not allowed", Detail: fmt.Sprintf("%q carries an interface zone (%%...). Firewall rules need plain addresses; remove the zone.", s)}
	}
	if dash {
		a, b, _ := strings.Cut(s, "-")
		from, err1 := netip.ParseAddr(strings.TrimSpace(a))
		to, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil {
			return dst, &AddrProblem{Code: diag.InvalidAddress, Summary: "Invalid address range", Detail: fmt.Sprintf("%q is not a range of two IP addresses (a-b).", s)}
		}
		if from.Is4() != to.Is4() {
			return dst, &AddrProblem{Code: diag.FamilyMismatch, Summary: "Range mixes IPv4 and IPv6", Detail: fmt.Sprintf("%q starts in one address family and ends in the other. Give one range per family.", s)}
		}
		if to.Less(from) {
			return dst, &AddrProblem{Code: diag.InvertedRange, Summary: "Inverted address range", Detail: fmt.Sprintf("%q starts above its end. Write it as %s-%s.", s, to, from)}
		}
		return netipx.IPRangeFrom(from, to).AppendPrefixes(dst), nil
	}
	if slash {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return dst, &AddrProblem{Code: diag.InvalidAddress, Summary: "Invalid CIDR prefix", Detail: fmt.Sprintf("%q is not a valid CIDR prefix: %s. Write it like 10.20.0.0/16 or fd00:20::/48.", s, trimErr(err))}
		}
		if m := p.Masked(); m != p {
			return append(dst, m), &AddrProblem{Code: diag.HostBitsSet, Warning: true, Summary: "Prefix has host bits set", Detail: fmt.Sprintf("%q has bits set below its /%d mask; it is read as %s. Write %s to say what you mean.", s, p.Bits(), m, m)}
		}
		return append(dst, p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return dst, &AddrProblem{Code: diag.InvalidAddress, Summary: "Invalid IP address", Detail: fmt.Sprintf("%q is not an IP address, a CIDR prefix or an a-b range.", s)}
	}
	return append(dst, netip.PrefixFrom(a, a.BitLen())), nil
}

func trimErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// ParsePort parses "443" or "16384-65535" into a range of ports in 1-65535.
func ParsePort(text string) (ir.PortRange, *AddrProblem) {
	s := strings.TrimSpace(text)
	a, b, isRange := strings.Cut(s, "-")
	first, err1 := parsePortNumber(a)
	last := first
	var err2 error
	if isRange {
		last, err2 = parsePortNumber(b)
	}
	if err1 != nil || err2 != nil {
		return ir.PortRange{}, &AddrProblem{Code: diag.InvalidPort, Summary: "Invalid port", Detail: fmt.Sprintf("%q is not a port or port range: ports are whole numbers 1-65535, ranges are written 16384-65535.", s)}
	}
	if last < first {
		return ir.PortRange{}, &AddrProblem{Code: diag.InvertedRange, Summary: "Inverted port range", Detail: fmt.Sprintf("%q starts above its end. Write it as %d-%d.", s, last, first)}
	}
	return ir.PortRange{First: first, Last: last}, nil
}

func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port")
	}
	return uint16(n), nil
}
