// Package lab is `turnwall verify`: it builds a policy's network in
// throwaway network namespaces, loads the compiled ruleset into the gateway
// and proves it with a flow matrix (matrix.go), the policy's relays and
// providers' STUN/TURN services (services.go, coturn.go) and real WebRTC
// calls (ice.go, package call).
//
// Topology. A gateway namespace has one veth per zone interface, named
// exactly as the policy names it, so the compiled ruleset applies unchanged.
// Every interface of a zone leads to its own bridge in the zone's switch
// namespace; the zone's hosts hang off the first interface's bridge, each in
// its own namespace with eth0, and every agents group gets one more host
// behind each further interface of its zone (Host.Via), which repeats the
// group's flows there.
//
// Addressing. Policy ranges are usually not on-link anywhere, so hosts carry
// their policy addresses as /32 (/128) on eth0, and each zone interface gets a
// small transfer network the gateway and its hosts share: 100.64.Z.0/24 and
// fd7e:7a11:0:Z::/64 (Z the zone's index for a first interface, numbers after
// every zone for further ones; other bases are tried when a policy range
// overlaps). The gateway is .1 / ::1, hosts .10, .11, ...; each host routes
// everything via the gateway with its policy address as the preferred
// source, and the gateway routes each host's policy addresses via that
// host's transfer address. Hosts behind the same interface reach each other
// directly. Packets are always sent from the policy addresses, never from
// the transfer addresses.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/backends/nftables/apply"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
)

// Host is one agent, provider or relay host of the lab.
type Host struct {
	Kind  string // agents, provider or relay
	Block string // the block's label
	Zone  string
	NS    *netns.NS
	V4    netip.Addr // invalid when the block has no IPv4 address
	V6    netip.Addr // invalid when the block has no IPv6 address
	// Outside is a provider host's extra address outside every address set
	// of the policy, routed to it through the gateway.
	Outside netip.Addr
	// Media4 and Media6 are a provider host's media server addresses: the
	// next addresses in its ranges, apart from V4/V6 where the provider's
	// TURN service runs (a relay does not relay to itself). Invalid when
	// the range has no room; the media server then uses V4/V6.
	Media4, Media6 netip.Addr

	// Extra are addresses in further ranges of the block (the last one and
	// up to six spread between, per family): the flow matrix repeats the
	// block's allowed flows from or to them, so a set the kernel holds only
	// in part (a truncated element list) fails.
	Extra []RangeAddr

	// Via is the gateway interface of an agents host behind a zone's
	// second or later interface ("" behind the first): such a host repeats
	// its group's flows there and takes no part in calls.
	Via string

	transfer4, transfer6 netip.Addr
	dev                  string // gateway interface the host sits behind
}

// RangeAddr is an address the lab put in one range of a block.
type RangeAddr struct {
	Addr  netip.Addr
	Range netip.Prefix
}

// sampleRanges picks the ranges after the first that the matrix covers: all
// of them up to seven, else six spread evenly and the last.
func sampleRanges(ps []netip.Prefix) []netip.Prefix {
	if len(ps) <= 1 {
		return nil
	}
	rest := ps[1:]
	if len(rest) <= 7 {
		return rest
	}
	var out []netip.Prefix
	for i := 0; i < 6; i++ {
		out = append(out, rest[i*(len(rest)-1)/6])
	}
	return append(out, rest[len(rest)-1])
}

// Name renders `agents "floor3"`, or `agents "hq" via bond0.111`.
func (h *Host) Name() string {
	if h.Via != "" {
		return fmt.Sprintf("%s %q via %s", h.Kind, h.Block, h.Via)
	}
	return fmt.Sprintf("%s %q", h.Kind, h.Block)
}

// zoneNet is one interface of a zone: its gateway device, the bridge its
// hosts share and its transfer networks.
type zoneNet struct {
	name       string
	dev        string // the gateway's interface
	bridge     string // in the zone's switch namespace
	gw4, gw6   netip.Addr
	net4, net6 netip.Prefix
	sw         *netns.NS
	hosts      *int // ports on the zone's switch, shared by its interfaces
}

// Lab is a policy's network in namespaces.
type Lab struct {
	Prog  *ir.Program
	GW    *netns.NS
	Hosts []*Host
	NAT   bool // SourceNAT is on

	nss []*netns.NS
}

// New builds the network of prog. On error everything built so far is
// removed.
func New(prog *ir.Program) (_ *Lab, err error) {
	prog.Index()
	l := &Lab{Prog: prog}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	ns := func(role string) (*netns.NS, error) {
		n, err := netns.New(role)
		if err != nil {
			return nil, err
		}
		l.nss = append(l.nss, n)
		return n, nil
	}
	if l.GW, err = ns("gw"); err != nil {
		return nil, err
	}
	if err = l.GW.Router(); err != nil {
		return nil, err
	}
	// zones: every interface of every zone, the first one first. The first
	// interface's transfer networks are numbered by the zone's index, further
	// interfaces' after every zone.
	zones := map[string][]*zoneNet{}
	extra := 0
	for i, z := range prog.Zones {
		if len(z.Interfaces) == 0 {
			continue
		}
		sw, err := ns("sw")
		if err != nil {
			return nil, err
		}
		ports := 0
		for j, ifname := range z.Interfaces {
			zn := &zoneNet{name: z.Name, dev: concreteIf(ifname), bridge: fmt.Sprintf("br%d", j), sw: sw, hosts: &ports}
			k := i
			if j > 0 {
				k = len(prog.Zones) + extra
				extra++
			}
			if zn.net4, zn.net6, err = transferNets(prog, k); err != nil {
				return nil, err
			}
			zn.gw4, zn.gw6 = zn.net4.Addr().Next(), zn.net6.Addr().Next()
			if err = sw.IP("link", "add", zn.bridge, "type", "bridge"); err != nil {
				return nil, err
			}
			if err = sw.IP("link", "set", zn.bridge, "up"); err != nil {
				return nil, err
			}
			port := fmt.Sprintf("up%d", j)
			if err = netns.Link(l.GW, zn.dev, sw, port); err != nil {
				return nil, err
			}
			if err = sw.IP("link", "set", port, "master", zn.bridge); err != nil {
				return nil, err
			}
			if err = l.GW.Addr(zn.dev, netip.PrefixFrom(zn.gw4, zn.net4.Bits()).String()); err != nil {
				return nil, err
			}
			if err = l.GW.Addr(zn.dev, netip.PrefixFrom(zn.gw6, zn.net6.Bits()).String()); err != nil {
				return nil, err
			}
			zones[z.Name] = append(zones[z.Name], zn)
		}
	}
	used := map[netip.Addr]bool{}
	// add builds the host of a block behind interface seg of its zone; the
	// n-th interface's host takes the n-th address after the first pick.
	add := func(kind, block, zone, set string, seg int) (*Host, error) {
		s := prog.AddressSet(set)
		if s == nil || seg >= len(zones[zone]) || (len(s.V4) == 0 && len(s.V6) == 0) {
			return nil, nil
		}
		zn := zones[zone][seg]
		h := &Host{Kind: kind, Block: block, Zone: zone, dev: zn.dev}
		if seg > 0 {
			h.Via = zn.dev
		}
		// The seg-th address after the first pick, skipping addresses
		// another host has (overlapping sets: a /27 and a /28 in it).
		free := func(p netip.Prefix) netip.Addr {
			a := nth(pick(p), seg)
			for i := 0; i < 256 && p.Contains(a); i, a = i+1, a.Next() {
				if !used[a] {
					used[a] = true
					return a
				}
			}
			return netip.Addr{}
		}
		if len(s.V4) > 0 {
			h.V4 = free(s.V4[0])
		}
		if len(s.V6) > 0 {
			h.V6 = free(s.V6[0])
		}
		if !h.V4.IsValid() && !h.V6.IsValid() {
			return nil, nil // no room in a tiny range for another host
		}
		if h.NS, err = ns(kind); err != nil {
			return nil, err
		}
		*zn.hosts++
		n := *zn.hosts
		port := fmt.Sprintf("h%d", n)
		if err := netns.Link(zn.sw, port, h.NS, "eth0"); err != nil {
			return nil, err
		}
		if err := zn.sw.IP("link", "set", port, "master", zn.bridge); err != nil {
			return nil, err
		}
		h.transfer4 = nth(zn.net4.Addr(), 9+n)
		h.transfer6 = nth(zn.net6.Addr(), 9+n)
		steps := [][2]string{
			{"eth0", netip.PrefixFrom(h.transfer4, zn.net4.Bits()).String()},
			{"eth0", netip.PrefixFrom(h.transfer6, zn.net6.Bits()).String()},
		}
		if kind == "provider" {
			if a := h.V4.Next(); len(s.V4) > 0 && s.V4[0].Contains(a) && !used[a] {
				h.Media4, used[a] = a, true
			}
			if a := h.V6.Next(); len(s.V6) > 0 && s.V6[0].Contains(a) && !used[a] {
				h.Media6, used[a] = a, true
			}
		}
		if seg == 0 && kind != "relay" {
			for _, p := range append(sampleRanges(s.V4), sampleRanges(s.V6)...) {
				if a := free(p); a.IsValid() {
					h.Extra = append(h.Extra, RangeAddr{Addr: a, Range: p})
				}
			}
		}
		for _, a := range []netip.Addr{h.V4, h.V6, h.Media4, h.Media6} {
			if a.IsValid() {
				steps = append(steps, [2]string{"eth0", netip.PrefixFrom(a, a.BitLen()).String()})
			}
		}
		for _, x := range h.Extra {
			steps = append(steps, [2]string{"eth0", netip.PrefixFrom(x.Addr, x.Addr.BitLen()).String()})
		}
		for _, s := range steps {
			if err := h.NS.Addr(s[0], s[1]); err != nil {
				return nil, err
			}
		}
		// Unbound sockets (a TURN client's, a browser's) send from the
		// policy address, never from the transfer address.
		route := func(gw, src netip.Addr) error {
			if src.IsValid() {
				return h.NS.DefaultRouteFrom("eth0", gw.String(), src.String())
			}
			return h.NS.DefaultRoute("eth0", gw.String())
		}
		if err := route(zn.gw4, h.V4); err != nil {
			return nil, err
		}
		if err := route(zn.gw6, h.V6); err != nil {
			return nil, err
		}
		for _, a := range []netip.Addr{h.V4, h.Media4} {
			if a.IsValid() {
				if err := l.GW.IP("-4", "route", "add", a.String()+"/32", "via", h.transfer4.String(), "dev", zn.dev); err != nil {
					return nil, err
				}
			}
		}
		for _, a := range []netip.Addr{h.V6, h.Media6} {
			if a.IsValid() {
				if err := l.GW.IP("-6", "route", "add", a.String()+"/128", "via", h.transfer6.String(), "dev", zn.dev); err != nil {
					return nil, err
				}
			}
		}
		for _, x := range h.Extra {
			via, fam := h.transfer4, "-4"
			if x.Addr.Is6() {
				via, fam = h.transfer6, "-6"
			}
			if err := l.GW.IP(fam, "route", "add", netip.PrefixFrom(x.Addr, x.Addr.BitLen()).String(), "via", via.String(), "dev", zn.dev); err != nil {
				return nil, err
			}
		}
		l.Hosts = append(l.Hosts, h)
		return h, nil
	}
	for _, g := range prog.Agents {
		if _, err = add("agents", g.Name, g.Zone, g.Addresses, 0); err != nil {
			return nil, err
		}
	}
	// Agents behind a zone's further interfaces: the same group again, so
	// that every interface the ruleset names carries real traffic.
	for _, g := range prog.Agents {
		for seg := 1; seg < len(zones[g.Zone]); seg++ {
			if _, err = add("agents", g.Name, g.Zone, g.Addresses, seg); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range prog.Providers {
		var h *Host
		if h, err = add("provider", p.Name, p.Zone, p.Addresses, 0); err != nil {
			return nil, err
		}
		if h == nil || !h.V4.IsValid() {
			continue
		}
		h.Outside = outsideAddr(prog, l.Hosts)
		if !h.Outside.IsValid() {
			continue
		}
		if err = h.NS.Addr("eth0", h.Outside.String()+"/32"); err != nil {
			return nil, err
		}
		if err = l.GW.IP("-4", "route", "add", h.Outside.String()+"/32", "via", h.transfer4.String(), "dev", h.dev); err != nil {
			return nil, err
		}
	}
	for _, r := range prog.Relays {
		if _, err = add("relay", r.Name, r.Zone, r.Addresses, 0); err != nil {
			return nil, err
		}
	}
	// Address sets that allow rules name but no block stands for (a SIP
	// trunk's `to`, a relay's literal peers) get a host of their own, so
	// that every flow the policy allows is exercised.
	if err = l.addressHosts(zones, add); err != nil {
		return nil, err
	}
	// Hosts of one zone reach each other directly over their switch, as
	// a provider's TURN service reaches its media servers: the gateway (and
	// the ruleset) only sees traffic between zones.
	for _, a := range l.Hosts {
		for _, b := range l.Hosts {
			if a == b || a.dev != b.dev {
				continue
			}
			for _, dst := range []netip.Addr{b.V4, b.V6, b.Outside, b.Media4, b.Media6} {
				if !dst.IsValid() {
					continue
				}
				via := b.transfer4
				if dst.Is6() {
					via = b.transfer6
				}
				if err = a.NS.IP("route", "add", netip.PrefixFrom(dst, dst.BitLen()).String(), "via", via.String(), "dev", "eth0"); err != nil {
					return nil, err
				}
			}
		}
	}
	return l, nil
}

// addressHosts adds a host (Kind "addresses", Block the set's name) for
// every address set an allow rule names on one side when no lab host stands
// for it, in the rule's zone for that side; for a rule open to any zone, in
// a zone other than the other side's, preferring one that holds a provider.
func (l *Lab) addressHosts(zones map[string][]*zoneNet, add func(kind, block, zone, set string, seg int) (*Host, error)) error {
	have := map[string]bool{}
	for _, h := range l.Hosts {
		have[l.setOf(h)] = true
	}
	providerZone := map[string]bool{}
	for _, pr := range l.Prog.Providers {
		providerZone[pr.Zone] = true
		if pr.STUN != "" {
			have[pr.STUN] = true // the services put STUN on the provider's host
		}
	}
	pickZone := func(zone, other string) string {
		if zone != "" {
			return zone
		}
		best := ""
		for _, z := range l.Prog.Zones {
			if z.Name == other || len(zones[z.Name]) == 0 {
				continue
			}
			if providerZone[z.Name] {
				return z.Name
			}
			if best == "" {
				best = z.Name
			}
		}
		return best
	}
	for i := range l.Prog.Rules {
		r := &l.Prog.Rules[i]
		if r.Action != ir.Allow {
			continue
		}
		for _, side := range []struct{ set, zone, other string }{{r.Dst, r.ToZone, r.FromZone}, {r.Src, r.FromZone, r.ToZone}} {
			if have[side.set] {
				continue
			}
			s := l.Prog.AddressSet(side.set)
			if s == nil || len(s.V4)+len(s.V6) == 0 {
				continue // FQDN-only: resolved by the services where they can
			}
			zone := pickZone(side.zone, side.other)
			if zone == "" {
				continue
			}
			h, err := add("addresses", side.set, zone, side.set, 0)
			if err != nil {
				return err
			}
			if h != nil {
				have[side.set] = true
			}
		}
	}
	return nil
}

// AgentHosts returns one host per agents group (behind the zone's first
// interface), in the policy's order.
func (l *Lab) AgentHosts() []*Host {
	var out []*Host
	for _, h := range l.Hosts {
		if h.Kind == "agents" && h.Via == "" {
			out = append(out, h)
		}
	}
	return out
}

// Apply loads rs into the gateway namespace with the code `turnwall apply`
// uses (netlink, one transaction, read back and compared).
func (l *Lab) Apply(rs *nftables.Ruleset) error {
	_, err := apply.Apply(apply.Target{Table: rs.Table, NetNS: l.GW.Name}, rs)
	return err
}

// SourceNAT masquerades agents' traffic leaving the gateway towards every
// zone that holds a provider, as most sites do at their internet edge: the
// far side sees the gateway's transfer address in that zone instead of the
// agent's. The NAT table is the lab's own (`inet turnwall-lab-nat`); the
// compiled ruleset filters before it, on the agents' real addresses.
func (l *Lab) SourceNAT() error {
	var devs []string
	seen := map[string]bool{}
	for _, h := range l.Hosts {
		if h.Kind == "provider" && !seen[h.dev] {
			seen[h.dev] = true
			devs = append(devs, fmt.Sprintf("%q", h.dev))
		}
	}
	var v4, v6 []string
	for _, g := range l.Prog.Agents {
		if s := l.Prog.AddressSet(g.Addresses); s != nil {
			for _, p := range s.V4 {
				v4 = append(v4, p.String())
			}
			for _, p := range s.V6 {
				v6 = append(v6, p.String())
			}
		}
	}
	if len(devs) == 0 || len(v4)+len(v6) == 0 {
		return errors.New("source NAT: the policy has no agents or no provider zone")
	}
	var b strings.Builder
	b.WriteString("table inet turnwall-lab-nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	if len(v4) > 0 {
		fmt.Fprintf(&b, "\t\toifname { %s } ip saddr { %s } masquerade\n", strings.Join(devs, ", "), strings.Join(v4, ", "))
	}
	if len(v6) > 0 {
		fmt.Fprintf(&b, "\t\toifname { %s } ip6 saddr { %s } masquerade\n", strings.Join(devs, ", "), strings.Join(v6, ", "))
	}
	b.WriteString("\t}\n}\n")
	f, err := os.CreateTemp("", "turnwall-lab-nat-*.nft")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = l.GW.Exec(context.Background(), "nft", "-f", f.Name())
	if err == nil {
		l.NAT = true
	}
	return err
}

// Close removes every namespace of the lab (and with them every interface).
func (l *Lab) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for i := len(l.nss) - 1; i >= 0; i-- {
		if err := l.nss[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.nss = nil
	return errors.Join(errs...)
}

// concreteIf turns an interface pattern ("vlan*") into a concrete name.
func concreteIf(name string) string {
	return strings.ReplaceAll(name, "*", "0")
}

// nth returns a advanced by n addresses.
func nth(a netip.Addr, n int) netip.Addr {
	for ; n > 0; n-- {
		a = a.Next()
	}
	return a
}

// pick chooses a host address inside p deterministically: the tenth address
// after the network address when the prefix is large enough, else the last
// one short of the broadcast, else the only one.
func pick(p netip.Prefix) netip.Addr {
	p = p.Masked()
	host := p.Addr().BitLen() - p.Bits()
	switch {
	case host == 0:
		return p.Addr()
	case host >= 4:
		return nth(p.Addr(), 10)
	default:
		return p.Addr().Next()
	}
}

// overlaps reports whether q overlaps any address set of prog.
func overlaps(prog *ir.Program, q netip.Prefix) bool {
	for _, s := range prog.AddressSets {
		for _, p := range append(append([]netip.Prefix{}, s.V4...), s.V6...) {
			if p.Overlaps(q) {
				return true
			}
		}
	}
	return false
}

// transferNets chooses zone i's transfer networks outside every policy range.
func transferNets(prog *ir.Program, i int) (v4, v6 netip.Prefix, err error) {
	for _, base := range []string{"100.64.%d.0/24", "198.18.%d.0/24", "10.254.%d.0/24", "172.31.%d.0/24"} {
		p := netip.MustParsePrefix(fmt.Sprintf(base, i%256))
		if !overlaps(prog, p) {
			v4 = p
			break
		}
	}
	for _, base := range []string{"fd7e:7a11:0:%x::/64", "fd7e:7a12:0:%x::/64", "fd7e:7a13:0:%x::/64"} {
		p := netip.MustParsePrefix(fmt.Sprintf(base, i))
		if !overlaps(prog, p) {
			v6 = p
			break
		}
	}
	if !v4.IsValid() || !v6.IsValid() {
		return v4, v6, errors.New("no transfer network outside the policy's ranges")
	}
	return v4, v6, nil
}

// outsideAddr is an address in no address set of the policy and not in a
// transfer network, or the zero Addr.
// Every provider host gets its own.
func outsideAddr(prog *ir.Program, hosts []*Host) netip.Addr {
next:
	for _, base := range []string{"192.0.2.77", "198.51.100.177", "203.0.113.177", "100.127.255.77"} {
		for a, i := netip.MustParseAddr(base), 0; i < 16; a, i = a.Next(), i+1 {
			if overlaps(prog, netip.PrefixFrom(a, 32)) {
				continue next
			}
			used := false
			for _, h := range hosts {
				used = used || h.Outside == a
			}
			if !used {
				return a
			}
		}
	}
	return netip.Addr{}
}
