// Package peerfilter decides which peers a TURN relay may reach. It is the
// relay's security core: a relay that can reach arbitrary addresses is an open
// proxy into the network it sits in ("SSRF through TURN").
//
// A peer address is checked in this order:
//
//  1. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are unmapped, so that
//     ::ffff:127.0.0.1 is judged as 127.0.0.1 (coturn CVE-2026-27624).
//  2. Addresses that are never peers are refused whatever the policy says:
//     this network (0.0.0.0/8), loopback, link-local (169.254.0.0/16, whose
//     169.254.169.254 is the cloud metadata service, and fe80::/10), cloud
//     metadata addresses elsewhere, multicast, 240.0.0.0/4 and the limited
//     broadcast address, the unspecified address ::, and IPv4-compatible
//     ::a.b.c.d.
//  3. The relay's own addresses yield RelayAddress: the relay allows them
//     to its relayed port range only (another allocation on the same relay,
//     as when two browsers use the same TURN server), never to its listeners
//     or other services on the host.
//  4. Addresses that embed an IPv4 address (NAT64 64:ff9b::/96, /96 NAT64
//     prefixes in 64:ff9b:1::/48, 6to4 2002::/16) are refused
//     when the embedded address would be refused as an IPv4 peer, so
//     64:ff9b::7f00:1 is loopback.
//  5. The other IANA special-purpose ranges (RFC 1918, CGNAT, documentation,
//     benchmarking, ULA fc00::/7, NAT64, ...) are refused unless the policy
//     names the address as a peer.
//  6. Everything else must be in the policy's peer set.
//
// The peer set a relay enforces is Effective's: a broad peer prefix
// (0.0.0.0/0) does not open the special-purpose ranges it covers, and no
// peer opens a never-class address. backends/coturn writes the same set.
package peerfilter

import (
	"net"
	"net/netip"
	"sort"

	"go4.org/netipx"
)

// Reason says why a peer is refused. Reasons are short, fixed words: they are
// metric label values and log fields.
type Reason string

// Reasons. A NAT64 or 6to4 address refused for what it embeds gets the
// embedded address's reason with the prefix "nat64-" or "6to4-".
const (
	Allowed        Reason = ""
	Invalid        Reason = "invalid"           // not an IP address, or an IPv6 zone
	RelayAddress   Reason = "relay-address"     // the relay itself: only its relayed ports
	ThisNetwork    Reason = "this-network"      // 0.0.0.0/8
	Unspecified    Reason = "unspecified"       // ::
	Loopback       Reason = "loopback"          // 127.0.0.0/8, ::1
	LinkLocal      Reason = "link-local"        // 169.254.0.0/16, fe80::/10
	Metadata       Reason = "metadata"          // cloud instance metadata services
	Multicast      Reason = "multicast"         // 224.0.0.0/4, ff00::/8
	Reserved       Reason = "reserved"          // 240.0.0.0/4, 255.255.255.255
	IPv4Compatible Reason = "ipv4-compatible"   // ::a.b.c.d (deprecated, RFC 4291)
	IPv4Mapped     Reason = "ipv4-mapped"       // ::ffff:0:0/96 (only seen unmapped)
	Private        Reason = "private"           // RFC 1918
	CGNAT          Reason = "cgnat"             // 100.64.0.0/10 (RFC 6598)
	ULA            Reason = "ula"               // fc00::/7
	Documentation  Reason = "documentation"     // 192.0.2.0/24, 2001:db8::/32, ...
	Benchmarking   Reason = "benchmarking"      // 198.18.0.0/15
	NAT64          Reason = "nat64"             // 64:ff9b::/96, 64:ff9b:1::/48
	SixToFour      Reason = "6to4"              // 2002::/16
	OtherSpecial   Reason = "special-purpose"   // other IANA special-purpose ranges
	NotAPeer       Reason = "not-a-policy-peer" // public, but not among the policy's peers
)

// Class is one special-purpose range and what it is.
type Class struct {
	Prefix netip.Prefix
	Reason Reason
	// Never: refused even when the policy names the range as a peer.
	Never bool

	text string // the prefix as IANA writes it (::ffff:0:0/96)
}

func c(prefix string, r Reason, never bool) Class {
	return Class{Prefix: netip.MustParsePrefix(prefix), Reason: r, Never: never, text: prefix}
}

// Classes lists the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890 and updates) and the extra addresses a relay must never reach, in
// the order coturn's configuration lists them.
var Classes = []Class{
	c("0.0.0.0/8", ThisNetwork, true),
	c("10.0.0.0/8", Private, false),
	c("100.64.0.0/10", CGNAT, false),
	c("127.0.0.0/8", Loopback, true),
	c("169.254.0.0/16", LinkLocal, true),
	c("172.16.0.0/12", Private, false),
	c("192.0.0.0/24", OtherSpecial, false),
	c("192.0.2.0/24", Documentation, false),
	c("192.31.196.0/24", OtherSpecial, false),
	c("192.52.193.0/24", OtherSpecial, false),
	c("192.88.99.0/24", OtherSpecial, false),
	c("192.168.0.0/16", Private, false),
	c("192.175.48.0/24", OtherSpecial, false),
	c("198.18.0.0/15", Benchmarking, false),
	c("198.51.100.0/24", Documentation, false),
	c("203.0.113.0/24", Documentation, false),
	c("224.0.0.0/4", Multicast, true),
	c("240.0.0.0/4", Reserved, true),
	c("::/128", Unspecified, true),
	c("::1/128", Loopback, true),
	c("::ffff:0:0/96", IPv4Mapped, true),
	c("64:ff9b::/96", NAT64, false),
	c("64:ff9b:1::/48", NAT64, false),
	c("100::/64", OtherSpecial, false),
	c("2001::/23", OtherSpecial, false),
	c("2001:db8::/32", Documentation, false),
	c("2002::/16", SixToFour, false),
	c("3fff::/20", Documentation, false),
	c("5f00::/16", OtherSpecial, false),
	c("fc00::/7", ULA, false),
	c("fe80::/10", LinkLocal, true),
	c("ff00::/8", Multicast, true),
	// Cloud instance metadata and platform services: never peers, even
	// inside a range the policy names.
	c("169.254.169.254/32", Metadata, true), // AWS, GCP, Azure, OCI, DigitalOcean
	c("100.100.100.200/32", Metadata, true), // Alibaba Cloud
	c("168.63.129.16/32", Metadata, true),   // Azure WireServer (public address)
	c("192.0.0.192/32", Metadata, true),     // Oracle Cloud Classic
	c("fd00:ec2::254/128", Metadata, true),  // AWS IPv6
	c("::/96", IPv4Compatible, true),
}

// SpecialPurpose is every class as a prefix, in the order of Classes: the
// ranges backends/coturn writes as denied-peer-ip, so that coturn and the
// bundled relay refuse the same addresses.
var SpecialPurpose = func() []string {
	var out []string
	for _, cl := range Classes {
		out = append(out, cl.text)
	}
	return out
}()

// never is the set of the never-class ranges.
var never = func() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, cl := range Classes {
		if cl.Never {
			b.AddPrefix(cl.Prefix)
		}
	}
	s, _ := b.IPSet()
	return s
}()

// Never returns the addresses no relay may reach whatever the policy says
// (the never-class ranges of Classes).
func Never() *netipx.IPSet { return never }

// Effective returns the peers a relay enforces, from the policy's peer set
// and the policy's own agents and provider ranges:
//
//   - never-class addresses are removed, so that no allow ever covers them;
//   - a special-purpose range (RFC 1918, CGNAT, ULA, NAT64, ...) counts as
//     named only when a peer prefix lies inside it (10.30.0.0/17 names part of
//     10.0.0.0/8) or the policy's own agents or provider ranges hold it; a
//     broad peer prefix that merely covers it (0.0.0.0/0, ::/0, 8.0.0.0/5)
//     does not open it.
//
// peers nil gives nil (no peer); own may be nil.
func Effective(peers, own *netipx.IPSet) *netipx.IPSet {
	if peers == nil {
		return nil
	}
	var b netipx.IPSetBuilder
	for _, p := range peers.Prefixes() {
		b.AddPrefix(p)
		for _, cl := range Classes {
			if !cl.Never && cl.Prefix.Bits() > p.Bits() && p.Contains(cl.Prefix.Addr()) {
				b.RemovePrefix(cl.Prefix)
			}
		}
	}
	if own != nil {
		var named netipx.IPSetBuilder
		named.AddSet(own)
		named.Intersect(peers)
		b.AddSet(mustSet(&named))
	}
	b.RemoveSet(never)
	return mustSet(&b)
}

func mustSet(b *netipx.IPSetBuilder) *netipx.IPSet {
	s, _ := b.IPSet() // only valid prefixes are added
	return s
}

// byLength holds Classes from the most to the least specific prefix, so the
// first match is the most specific.
var byLength = func() []Class {
	out := append([]Class(nil), Classes...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Prefix.Bits() > out[j].Prefix.Bits() })
	return out
}()

// Classify returns the most specific special-purpose class holding a, if any.
// a should already be unmapped.
func Classify(a netip.Addr) (Class, bool) {
	for _, cl := range byLength {
		if cl.Prefix.Contains(a) {
			return cl, true
		}
	}
	return Class{}, false
}

// Filter decides peers for one relay. It is immutable and safe for
// concurrent use.
type Filter struct {
	peers *netipx.IPSet // nil: the policy names no peer
	self  *netipx.IPSet
}

// New returns a filter allowing the policy's peers (nil or empty: none) and
// refusing the relay's own addresses.
func New(peers *netipx.IPSet, self []netip.Addr) *Filter {
	var b netipx.IPSetBuilder
	for _, a := range self {
		b.Add(a.Unmap())
	}
	s, _ := b.IPSet()
	return &Filter{peers: peers, self: s}
}

// HasPeers reports whether any peer can ever be allowed.
func (f *Filter) HasPeers() bool {
	return f.peers != nil && len(f.peers.Prefixes()) > 0
}

func (f *Filter) isPeer(a netip.Addr) bool { return f.peers != nil && f.peers.Contains(a) }

// Check decides one peer address. It returns Allowed ("") or why the address
// is refused, except RelayAddress, which is no refusal by itself: the relay
// allows its own address to its relayed ports only.
func (f *Filter) Check(a netip.Addr) Reason {
	if !a.IsValid() || a.Zone() != "" {
		return Invalid
	}
	a = a.Unmap()
	cl, special := Classify(a)
	if special && cl.Never {
		return cl.Reason
	}
	if f.self.Contains(a) {
		return RelayAddress
	}
	if embedded, prefix := embeddedIPv4(a); prefix != "" {
		for _, e := range embedded {
			if r := f.checkEmbedded(e); r != Allowed {
				return Reason(prefix) + "-" + r
			}
		}
	}
	if f.isPeer(a) {
		return Allowed
	}
	if special {
		return cl.Reason
	}
	return NotAPeer
}

// checkEmbedded judges an IPv4 address carried inside an IPv6 one: refused
// if never a peer, or special-purpose and not a policy peer. A public
// embedded address is fine here; the IPv6 address itself must still be a
// peer.
func (f *Filter) checkEmbedded(a netip.Addr) Reason {
	cl, special := Classify(a)
	switch {
	case special && cl.Never:
		return cl.Reason
	case f.self.Contains(a):
		return RelayAddress
	case !special:
		return Allowed
	case f.isPeer(a):
		return Allowed
	default:
		return cl.Reason
	}
}

var (
	nat64WKP   = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address may carry and the
// translation's name, or no prefix name when it carries none.
func embeddedIPv4(a netip.Addr) ([]netip.Addr, string) {
	if !a.Is6() {
		return nil, ""
	}
	b := a.As16()
	v4 := func(x [4]byte) netip.Addr { return netip.AddrFrom4(x) }
	switch {
	case nat64WKP.Contains(a):
		return []netip.Addr{v4([4]byte{b[12], b[13], b[14], b[15]})}, "nat64"
	case nat64Local.Contains(a):
		// RFC 8215 carves /96 NAT64 prefixes out of the /48. Other RFC 6052
		// layouts are possible but cannot be told apart; the address must be
		// a policy peer either way.
		return []netip.Addr{v4([4]byte{b[12], b[13], b[14], b[15]})}, "nat64"
	case sixToFour.Contains(a):
		return []netip.Addr{v4([4]byte{b[2], b[3], b[4], b[5]})}, "6to4"
	}
	return nil, ""
}

// CheckIP decides a net.IP as pion/turn hands it over (16-byte IPv4-mapped
// form included).
func (f *Filter) CheckIP(ip net.IP) Reason {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return Invalid
	}
	return f.Check(a)
}
