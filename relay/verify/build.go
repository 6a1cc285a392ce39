package verify

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
	iface                *Iface
	port                 string // its port on the zone's switch
	portNum              int
}

// RangeAddr is an address the lab put in one range of a block.
type RangeAddr struct {
	Addr  netip.Addr
	Range netip.Prefix
}

// Name renders `agents "floor3"`, or `agents "hq" via bond0.111`.
func (h *Host) Name() string {
	if h.Via != "" {
		return fmt.Sprintf("%s %q via %s", h.Kind, h.Block, h.Via)
	}
	return fmt.Sprintf("%s %q", h.Kind, h.Block)
}

// Lab is a policy's network in namespaces.
type Lab struct {
	Prog  *ir.Program
	GW    *netns.NS
	Hosts []*Host
	NAT   bool // SourceNAT is on

	nss     []*netns.NS
	applied *nftables.Ruleset // what Apply loaded
}

// New plans the network of prog and builds it. On error everything built
// so far is removed.
func New(prog *ir.Program) (*Lab, error) {
	p, err := PlanTopology(prog)
	if err != nil {
		return nil, err
	}
	return Build(p)
}

// Build builds a plan in namespaces: the gateway, a switch per zone with a
// bridge per interface, a namespace per host, addresses and routes. On
// error everything built so far is removed.
func Build(p *Plan) (_ *Lab, err error) {
	l := &Lab{Prog: p.Prog, Hosts: p.Hosts}
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
	switches := make([]*netns.NS, len(p.Switches))
	for i := range p.Switches {
		if switches[i], err = ns("sw"); err != nil {
			return nil, err
		}
	}
	for _, in := range p.Ifaces {
		sw := switches[in.Switch]
		if err = sw.IP("link", "add", in.Bridge, "type", "bridge"); err != nil {
			return nil, err
		}
		if err = sw.IP("link", "set", in.Bridge, "up"); err != nil {
			return nil, err
		}
		if err = netns.Link(l.GW, in.Dev, sw, in.Uplink); err != nil {
			return nil, err
		}
		if err = sw.IP("link", "set", in.Uplink, "master", in.Bridge); err != nil {
			return nil, err
		}
		if err = l.GW.Addr(in.Dev, netip.PrefixFrom(in.GW4, in.Net4.Bits()).String()); err != nil {
			return nil, err
		}
		if err = l.GW.Addr(in.Dev, netip.PrefixFrom(in.GW6, in.Net6.Bits()).String()); err != nil {
			return nil, err
		}
	}
	for _, h := range p.Hosts {
		if h.NS, err = ns(h.Kind); err != nil {
			return nil, err
		}
		if err = l.buildHost(h, switches[h.iface.Switch]); err != nil {
			return nil, err
		}
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

// buildHost joins a planned host to its switch, gives it its addresses and
// routes it through the gateway, and the gateway to it.
func (l *Lab) buildHost(h *Host, sw *netns.NS) error {
	in := h.iface
	if err := netns.Link(sw, h.port, h.NS, "eth0"); err != nil {
		return err
	}
	if err := sw.IP("link", "set", h.port, "master", in.Bridge); err != nil {
		return err
	}
	cidrs := []string{
		netip.PrefixFrom(h.transfer4, in.Net4.Bits()).String(),
		netip.PrefixFrom(h.transfer6, in.Net6.Bits()).String(),
	}
	for _, a := range []netip.Addr{h.V4, h.V6, h.Media4, h.Media6} {
		if a.IsValid() {
			cidrs = append(cidrs, netip.PrefixFrom(a, a.BitLen()).String())
		}
	}
	for _, x := range h.Extra {
		cidrs = append(cidrs, netip.PrefixFrom(x.Addr, x.Addr.BitLen()).String())
	}
	if h.Outside.IsValid() {
		cidrs = append(cidrs, netip.PrefixFrom(h.Outside, h.Outside.BitLen()).String())
	}
	for _, c := range cidrs {
		if err := h.NS.Addr("eth0", c); err != nil {
			return err
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
	if err := route(in.GW4, h.V4); err != nil {
		return err
	}
	if err := route(in.GW6, h.V6); err != nil {
		return err
	}
	var dsts []netip.Addr
	for _, a := range []netip.Addr{h.V4, h.Media4, h.V6, h.Media6} {
		if a.IsValid() {
			dsts = append(dsts, a)
		}
	}
	for _, x := range h.Extra {
		dsts = append(dsts, x.Addr)
	}
	if h.Outside.IsValid() {
		dsts = append(dsts, h.Outside)
	}
	for _, a := range dsts {
		via, fam := h.transfer4, "-4"
		if a.Is6() {
			via, fam = h.transfer6, "-6"
		}
		if err := l.GW.IP(fam, "route", "add", netip.PrefixFrom(a, a.BitLen()).String(), "via", via.String(), "dev", in.Dev); err != nil {
			return err
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
	if err == nil {
		l.applied = rs
	}
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
