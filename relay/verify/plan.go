package verify

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Plan is the lab's topology computed from the IR alone, before anything is
// built: every zone interface with its transfer networks, every host with
// its addresses and the switch port it hangs off. Build turns it into
// namespaces; planning needs no privileges, so it is unit-tested as is.
type Plan struct {
	Prog *ir.Program
	// Switches holds the zone of each switch namespace, in the order of
	// the policy's zones (zones without interfaces have none).
	Switches []string
	Ifaces   []*Iface
	Hosts    []*Host
}

// Iface is one gateway interface of a zone and the bridge behind it.
type Iface struct {
	Zone       string
	Dev        string // the gateway's interface, named as the policy names it
	Bridge     string // in the zone's switch namespace
	Uplink     string // the switch's end of the gateway's veth
	Switch     int    // index in Plan.Switches
	Net4, Net6 netip.Prefix
	GW4, GW6   netip.Addr // the gateway's transfer addresses

	index int  // numbers the transfer networks
	ports *int // hosts on the zone's switch, shared by its interfaces
}

// Transfer networks: the first base whose /24 (/64) for the interface
// overlaps no policy range wins.
var (
	transferBases4 = []string{"100.64.%d.0/24", "198.18.%d.0/24", "10.254.%d.0/24", "172.31.%d.0/24"}
	transferBases6 = []string{"fd7e:7a11:0:%x::/64", "fd7e:7a12:0:%x::/64", "fd7e:7a13:0:%x::/64"}
)

// PlanTopology plans the lab of prog (see the package documentation). It
// fails only when an interface can get no transfer network; the error
// names the policy blocks whose ranges are in the way.
func PlanTopology(prog *ir.Program) (*Plan, error) {
	prog.Index()
	p := &Plan{Prog: prog}
	// zones: every interface of every zone, the first one first. The first
	// interface's transfer networks are numbered by the zone's index, further
	// interfaces' after every zone.
	zones := map[string][]*Iface{}
	extra := 0
	for i, z := range prog.Zones {
		if len(z.Interfaces) == 0 {
			continue
		}
		sw := len(p.Switches)
		p.Switches = append(p.Switches, z.Name)
		ports := 0
		for j, ifname := range z.Interfaces {
			k := i
			if j > 0 {
				k = len(prog.Zones) + extra
				extra++
			}
			in := &Iface{Zone: z.Name, Dev: concreteIf(ifname), Bridge: fmt.Sprintf("br%d", j), Uplink: fmt.Sprintf("up%d", j), Switch: sw, index: k, ports: &ports}
			zones[z.Name] = append(zones[z.Name], in)
			p.Ifaces = append(p.Ifaces, in)
		}
	}
	used := map[netip.Addr]bool{}
	// add plans the host of a block behind interface seg of its zone; the
	// n-th interface's host takes the n-th address after the first pick.
	add := func(kind, block, zone, set string, seg int) *Host {
		s := prog.AddressSet(set)
		if s == nil || seg >= len(zones[zone]) || (len(s.V4) == 0 && len(s.V6) == 0) {
			return nil
		}
		in := zones[zone][seg]
		h := &Host{Kind: kind, Block: block, Zone: zone, iface: in, dev: in.Dev}
		if seg > 0 {
			h.Via = in.Dev
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
			return nil // no room in a tiny range for another host
		}
		*in.ports++
		h.portNum = *in.ports
		h.port = fmt.Sprintf("h%d", h.portNum)
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
		p.Hosts = append(p.Hosts, h)
		return h
	}
	for _, g := range prog.Agents {
		add("agents", g.Name, g.Zone, g.Addresses, 0)
	}
	// Agents behind a zone's further interfaces: the same group again, so
	// that every interface the ruleset names carries real traffic.
	for _, g := range prog.Agents {
		for seg := 1; seg < len(zones[g.Zone]); seg++ {
			add("agents", g.Name, g.Zone, g.Addresses, seg)
		}
	}
	for _, pr := range prog.Providers {
		if h := add("provider", pr.Name, pr.Zone, pr.Addresses, 0); h != nil && h.V4.IsValid() {
			h.Outside = outsideAddr(prog, p.Hosts)
		}
	}
	for _, r := range prog.Relays {
		add("relay", r.Name, r.Zone, r.Addresses, 0)
	}
	// Address sets that allow rules name but no block stands for (a SIP
	// trunk's `to`, a relay's literal peers) get a host of their own, so
	// that every flow the policy allows is exercised.
	p.addressHosts(zones, add)

	// Transfer networks last: they keep clear of every address a host
	// carries.
	var hostAddrs []netip.Addr
	for _, h := range p.Hosts {
		hostAddrs = append(hostAddrs, h.planned()...)
	}
	for _, in := range p.Ifaces {
		var err error
		if in.Net4, in.Net6, err = transferNets(prog, in, hostAddrs); err != nil {
			return nil, err
		}
		in.GW4, in.GW6 = in.Net4.Addr().Next(), in.Net6.Addr().Next()
	}
	for _, h := range p.Hosts {
		h.transfer4 = nth(h.iface.Net4.Addr(), 9+h.portNum)
		h.transfer6 = nth(h.iface.Net6.Addr(), 9+h.portNum)
	}
	return p, nil
}

// planned lists every address the plan puts on a host.
func (h *Host) planned() []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{h.V4, h.V6, h.Media4, h.Media6, h.Outside} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	for _, x := range h.Extra {
		out = append(out, x.Addr)
	}
	return out
}

// addressHosts plans a host (Kind "addresses", Block the set's name) for
// every address set an allow rule names on one side when no lab host stands
// for it, in the rule's zone for that side; for a rule open to any zone, in
// a zone other than the other side's, preferring one that holds a provider.
func (p *Plan) addressHosts(zones map[string][]*Iface, add func(kind, block, zone, set string, seg int) *Host) {
	prog := p.Prog
	have := map[string]bool{}
	for _, h := range p.Hosts {
		have[setOf(prog, h)] = true
	}
	providerZone := map[string]bool{}
	for _, pr := range prog.Providers {
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
		for _, z := range prog.Zones {
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
	for i := range prog.Rules {
		r := &prog.Rules[i]
		if r.Action != ir.Allow {
			continue
		}
		for _, side := range []struct{ set, zone, other string }{{r.Dst, r.ToZone, r.FromZone}, {r.Src, r.FromZone, r.ToZone}} {
			if have[side.set] {
				continue
			}
			s := prog.AddressSet(side.set)
			if s == nil || len(s.V4)+len(s.V6) == 0 {
				continue // FQDN-only: resolved by the services where they can
			}
			zone := pickZone(side.zone, side.other)
			if zone == "" {
				continue
			}
			if add("addresses", side.set, zone, side.set, 0) != nil {
				have[side.set] = true
			}
		}
	}
}

// setOf is the address set of the block a host stands for.
func setOf(p *ir.Program, h *Host) string {
	switch h.Kind {
	case "agents":
		for _, g := range p.Agents {
			if g.Name == h.Block {
				return g.Addresses
			}
		}
	case "provider":
		for _, pr := range p.Providers {
			if pr.Name == h.Block {
				return pr.Addresses
			}
		}
	case "relay":
		for _, r := range p.Relays {
			if r.Name == h.Block {
				return r.Addresses
			}
		}
	case "addresses":
		return h.Block
	}
	return ""
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
	return len(overlapping(prog, q, 0)) > 0
}

// overlapping returns the address sets of prog with a prefix of at least
// minBits bits that overlaps q.
func overlapping(prog *ir.Program, q netip.Prefix, minBits int) []*ir.AddressSet {
	var out []*ir.AddressSet
	for i := range prog.AddressSets {
		s := &prog.AddressSets[i]
		for _, p := range append(append([]netip.Prefix{}, s.V4...), s.V6...) {
			if p.Bits() >= minBits && p.Overlaps(q) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Wide ranges (shorter than these, as TW210 counts them: a deny to
// 0.0.0.0/0, say) may hold a transfer network when no narrower choice is
// left: transfer addresses never send or receive the policy's flows.
const (
	wideBits4 = 8
	wideBits6 = 16
)

// transferNets chooses an interface's transfer networks: the first
// candidate outside every policy range; failing that, the first that holds
// no host's address and overlaps no range but wide ones. When none is left
// the error names the blocks whose ranges cover the candidates.
func transferNets(prog *ir.Program, in *Iface, hosts []netip.Addr) (v4, v6 netip.Prefix, err error) {
	free := func(p netip.Prefix) bool {
		for _, a := range hosts {
			if p.Contains(a) {
				return false
			}
		}
		return true
	}
	choose := func(bases []string, n any, wide int) (netip.Prefix, []*ir.AddressSet) {
		var cands []netip.Prefix
		for _, base := range bases {
			cands = append(cands, netip.MustParsePrefix(fmt.Sprintf(base, n)))
		}
		for _, c := range cands {
			if !overlaps(prog, c) && free(c) {
				return c, nil
			}
		}
		var blockers []*ir.AddressSet
		for _, c := range cands {
			in := overlapping(prog, c, wide)
			if len(in) == 0 && free(c) {
				return c, nil
			}
			blockers = append(blockers, in...)
		}
		return netip.Prefix{}, blockers
	}
	v4, b4 := choose(transferBases4, in.index%256, wideBits4)
	v6, b6 := choose(transferBases6, in.index, wideBits6)
	if v4.IsValid() && v6.IsValid() {
		return v4, v6, nil
	}
	fam, bases, blockers := "IPv4", transferBases4, b4
	if v4.IsValid() {
		fam, bases, blockers = "IPv6", transferBases6, b6
	}
	var cands []string
	for _, b := range bases {
		n := any(in.index)
		if fam == "IPv4" {
			n = in.index % 256
		}
		cands = append(cands, fmt.Sprintf(b, n))
	}
	return v4, v6, fmt.Errorf("no %s transfer network for interface %q of zone %q outside the policy's ranges: %s all overlap %s; narrow those ranges",
		fam, in.Dev, in.Zone, strings.Join(cands, ", "), blockersText(blockers))
}

// blockersText names the policy blocks behind address sets, with their
// lines: `rule "deny-all" (policy.hcl:40), agents "floor" (policy.hcl:12)`.
func blockersText(sets []*ir.AddressSet) string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sets {
		t := fmt.Sprintf("%s %q (%s)", s.Origin.Kind, s.Origin.Name, s.Origin.Source)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "the lab's hosts"
	}
	return strings.Join(out, ", ")
}

// outsideAddr is an address in no address set of the policy (failing
// that, in no range but wide ones), or the zero Addr. Every provider host
// gets its own.
func outsideAddr(prog *ir.Program, hosts []*Host) netip.Addr {
	return spareAddr(prog, []string{"192.0.2.77", "198.51.100.177", "203.0.113.177", "100.127.255.77"}, func(a netip.Addr) bool {
		for _, h := range hosts {
			if h.Outside == a {
				return true
			}
		}
		return false
	})
}

// spareAddr returns the first of the 16 addresses from each base that is
// in no address set of prog and not used; failing that, the first in no
// range but wide ones (a deny to ::/0 leaves no address outside every
// range). The zero Addr when there is none.
func spareAddr(prog *ir.Program, bases []string, used func(netip.Addr) bool) netip.Addr {
	for _, wide := range []bool{false, true} {
	next:
		for _, base := range bases {
			for a, i := netip.MustParseAddr(base), 0; i < 16; a, i = a.Next(), i+1 {
				min := 0
				if wide {
					min = wideBits4
					if a.Is6() {
						min = wideBits6
					}
				}
				if len(overlapping(prog, netip.PrefixFrom(a, a.BitLen()), min)) > 0 {
					continue next
				}
				if !used(a) {
					return a
				}
			}
		}
	}
	return netip.Addr{}
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
