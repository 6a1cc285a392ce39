package relay

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
)

// Alternates chooses another relay of the fleet for a client this relay
// redirects (RFC 8489 section 10, 300 Try Alternate): while it drains, or
// while its allocations are above the capacity threshold. Pick is given the
// client's transport (udp, tcp or tls) and the listener the client reached
// (self), and returns the alternate's listener for that transport, the
// domain name its certificate carries (for TLS: ALTERNATE-DOMAIN, RFC 8489
// section 14.16; "" to leave it out), and whether there is one. An
// implementation returns live nodes, least loaded first, never self; Pick
// runs on the request path and should answer in milliseconds (the relay
// gives it a deadline of AlternateTimeout).
type Alternates interface {
	Pick(ctx context.Context, transport string, self netip.AddrPort) (addr netip.AddrPort, domain string, ok bool)
}

// Alternate is one relay a StaticAlternates list redirects to.
type Alternate struct {
	Transport string // udp, tcp or tls; "" for every transport
	Addr      netip.AddrPort
	Domain    string // for TLS: the name on the alternate's certificate
}

func (a Alternate) String() string {
	s := a.Addr.String()
	if a.Transport != "" {
		s = a.Transport + "://" + s
	}
	if a.Domain != "" {
		s += "?domain=" + a.Domain
	}
	return s
}

// ParseAlternate parses ADDR:PORT (every transport), TRANSPORT://ADDR:PORT
// (udp, tcp or tls) and, for TLS, tls://ADDR:PORT?domain=NAME.
func ParseAlternate(s string) (Alternate, error) {
	var a Alternate
	rest := s
	if tr, after, ok := strings.Cut(s, "://"); ok {
		switch tr {
		case UDP, TCP, TLS:
			a.Transport, rest = tr, after
		default:
			return a, fmt.Errorf("alternate %q: transport %q: use udp, tcp or tls", s, tr)
		}
	}
	if hp, query, ok := strings.Cut(rest, "?"); ok {
		rest = hp
		q, err := url.ParseQuery(query)
		if err != nil || len(q) != 1 || len(q["domain"]) != 1 {
			return a, fmt.Errorf("alternate %q: the only parameter is ?domain=NAME", s)
		}
		if a.Transport != TLS {
			return a, fmt.Errorf("alternate %q: ?domain= is for tls:// alternates only", s)
		}
		a.Domain = q["domain"][0]
		if !validDomain(a.Domain) {
			return a, fmt.Errorf("alternate %q: %q is not a domain name", s, a.Domain)
		}
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || ap.Addr().IsUnspecified() {
		return a, fmt.Errorf("alternate %q: give ADDR:PORT, [IPv6]:PORT for IPv6, with a port", s)
	}
	a.Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return a, nil
}

// validDomain accepts host names (letters, digits, hyphens, dots, at most
// 253 bytes): ALTERNATE-DOMAIN carries at most 255 bytes, and the name ends
// up in logs and reports.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// StaticAlternates is a fixed list of alternates (`turnwall relay
// --alternate`). It knows nothing of their load: it hands them out in turn,
// skipping self and those of another transport or address family. A
// fleet store that knows the nodes' load implements Alternates itself.
type StaticAlternates struct {
	list []Alternate
	next atomic.Uint64
}

// NewStaticAlternates returns a list that picks from alts in turn.
func NewStaticAlternates(alts []Alternate) *StaticAlternates {
	return &StaticAlternates{list: append([]Alternate(nil), alts...)}
}

// Pick implements Alternates.
func (s *StaticAlternates) Pick(_ context.Context, transport string, self netip.AddrPort) (netip.AddrPort, string, bool) {
	n := len(s.list)
	if n == 0 {
		return netip.AddrPort{}, "", false
	}
	start := int(s.next.Add(1) % uint64(n))
	for i := range n {
		a := s.list[(start+i)%n]
		if a.Transport != "" && a.Transport != transport || a.Addr == self ||
			a.Addr.Addr().Is4() != self.Addr().Unmap().Is4() {
			continue
		}
		return a.Addr, a.Domain, true
	}
	return netip.AddrPort{}, "", false
}
