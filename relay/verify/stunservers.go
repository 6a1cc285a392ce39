package verify

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
)

// stunPorts returns the public STUN ports the IR opens to a STUN set.
func stunPorts(p *ir.Program, set string) (udp, tcp []uint16) {
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Dst != set || r.Action != ir.Allow || r.Purpose != ir.PurposeSTUN {
			continue
		}
		svc := p.Service(r.Service)
		if svc == nil {
			continue
		}
		for _, e := range svc.Entries {
			for _, pr := range e.Ports {
				key := string(e.Proto) + strconv.Itoa(int(pr.First))
				if pr.First == 0 || seen[key] {
					continue
				}
				seen[key] = true
				if e.Proto == ir.UDP {
					udp = append(udp, pr.First)
				} else {
					tcp = append(tcp, pr.First)
				}
			}
		}
	}
	return udp, tcp
}

// stunHost is where a provider's public STUN servers run: its own host, or
// else another host of its zone (a provider with only STUN names has none).
func (l *Lab) stunHost(p *ir.Provider) *Host {
	if h := l.host("provider", p.Name); h != nil {
		return h
	}
	var other *Host
	for _, h := range l.Hosts {
		if h.Zone != p.Zone {
			continue
		}
		if h.Kind == "provider" {
			return h
		}
		if other == nil {
			other = h
		}
	}
	return other
}

// place puts address a on host h and routes it there from the gateway,
// unless a lab host already has it; it returns the host that has it.
func (s *Services) place(h *Host, a netip.Addr) (*Host, error) {
	for _, o := range s.lab.Hosts {
		if o.V4 == a || o.V6 == a || o.Outside == a {
			return o, nil
		}
	}
	s.mu.Lock()
	for _, p := range s.placed {
		if p == a {
			s.mu.Unlock()
			return h, nil
		}
	}
	s.mu.Unlock()
	cidr := netip.PrefixFrom(a, a.BitLen()).String()
	fam, via := "-4", h.transfer4
	args := []string{"addr", "replace", cidr, "dev", "eth0"}
	if a.Is6() {
		fam, via = "-6", h.transfer6
		args = append(args, "nodad")
	}
	if err := h.NS.IP(args...); err != nil {
		return nil, err
	}
	if err := s.lab.GW.IP(fam, "route", "replace", cidr, "via", via.String(), "dev", h.dev); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.placed = append(s.placed, a)
	s.mu.Unlock()
	return h, nil
}

// resolvedAddr chooses the address the lab resolves a set's names to: in
// no address set of the policy (or no range but wide ones), on no host,
// not yet used.
func (s *Services) resolvedAddr(v6 bool) netip.Addr {
	bases := []string{"192.0.2.177", "198.51.100.77", "203.0.113.77", "100.127.254.77"}
	if v6 {
		bases = []string{"2001:db8:7e57::77", "3fff:7e57::77", "fd7e:7a1f::77"}
	}
	used := map[netip.Addr]bool{}
	for _, h := range s.lab.Hosts {
		used[h.V4], used[h.V6], used[h.Outside] = true, true, true
	}
	s.mu.Lock()
	for _, a := range s.placed {
		used[a] = true
	}
	s.mu.Unlock()
	return spareAddr(s.lab.Prog, bases, func(a netip.Addr) bool { return used[a] })
}

// fqdnSets returns the gateway's nftables sets that hold the resolved
// addresses of each IR address set with names: [0] IPv4, [1] IPv6. They
// are the sets of the ruleset Lab.Apply loaded (each records the IR set it
// renders), or of the program's own ruleset when none was applied.
func (l *Lab) fqdnSets(table string) (map[string][2]string, error) {
	rs := l.applied
	if rs == nil {
		var err error
		if rs, err = nftables.Build(l.Prog, table); err != nil {
			return nil, err
		}
	}
	out := map[string][2]string{}
	for _, set := range rs.Sets {
		if len(set.FQDNs) == 0 {
			continue
		}
		names := out[set.IRSet]
		if set.V6 {
			names[1] = set.Name
		} else {
			names[0] = set.Name
		}
		out[set.IRSet] = names
	}
	return out, nil
}

// startSTUN runs each provider's public STUN servers.
func (s *Services) startSTUN(ctx context.Context) error {
	l := s.lab
	var sets map[string][2]string
	for i := range l.Prog.Providers {
		p := &l.Prog.Providers[i]
		set := l.Prog.AddressSet(p.STUN)
		if p.STUN == "" || set == nil {
			continue
		}
		udp, tcp := stunPorts(l.Prog, p.STUN)
		if len(udp)+len(tcp) == 0 {
			continue
		}
		h := l.stunHost(p)
		if h == nil {
			s.note("provider %q: no lab host in zone %q for its STUN servers", p.Name, p.Zone)
			continue
		}
		type target struct {
			addr netip.Addr
			fqdn string
			host *Host
		}
		var targets []target
		for _, pfx := range [][]netip.Prefix{set.V4, set.V6} {
			if len(pfx) == 0 {
				continue
			}
			th, err := s.place(h, pick(pfx[0]))
			if err != nil {
				return fmt.Errorf("provider %q STUN address: %w", p.Name, err)
			}
			targets = append(targets, target{addr: pick(pfx[0]), host: th})
		}
		if len(set.FQDNs) > 0 {
			if sets == nil {
				var err error
				if sets, err = l.fqdnSets(s.table); err != nil {
					return err
				}
			}
			names, ok := sets[set.Name]
			if !ok {
				s.note("provider %q: the ruleset has no set for the STUN names %s (no rule uses them); not served", p.Name, strings.Join(set.FQDNs, ", "))
			}
			for fam, nftSet := range names {
				if nftSet == "" {
					continue
				}
				a := s.resolvedAddr(fam == 1)
				if !a.IsValid() {
					s.note("provider %q: no free address to resolve %s to", p.Name, set.FQDNs[0])
					continue
				}
				th, err := s.place(h, a)
				if err != nil {
					return fmt.Errorf("provider %q STUN address: %w", p.Name, err)
				}
				if _, err := l.GW.Exec(ctx, "nft", "add", "element", "inet", s.table, nftSet, "{ "+a.String()+" }"); err != nil {
					s.note("provider %q: cannot add %s (resolved %s) to the gateway's set %s: %v", p.Name, a, set.FQDNs[0], nftSet, err)
				}
				targets = append(targets, target{addr: a, fqdn: set.FQDNs[0], host: th})
			}
		}
		owner := fmt.Sprintf("provider %q", p.Name)
		for _, t := range targets {
			ports := append([]uint16(nil), udp...)
			for _, port := range tcp {
				if !containsPort(ports, port) {
					ports = append(ports, port)
				}
			}
			for _, port := range ports {
				ap := netip.AddrPortFrom(t.addr, port)
				s.mu.Lock()
				wantUDP := containsPort(udp, port) && !s.listening["udp/"+ap.String()]
				wantTCP := containsPort(tcp, port) && !s.listening["tcp/"+ap.String()]
				s.mu.Unlock()
				if !wantUDP && !wantTCP {
					continue // a TURN service there answers Binding requests itself
				}
				r, err := startSTUN(t.host.NS, ap, wantUDP, wantTCP)
				if err != nil {
					return fmt.Errorf("provider %q: %w", p.Name, err)
				}
				s.mu.Lock()
				s.stuns = append(s.stuns, r)
				if wantUDP {
					s.listening["udp/"+ap.String()] = true
				}
				if wantTCP {
					s.listening["tcp/"+ap.String()] = true
				}
				s.mu.Unlock()
			}
			// Browsers use STUN over UDP only (stun: URIs have no transport).
			for _, ah := range l.AgentHosts() {
				if ah.Zone == t.host.Zone || !ah.source(t.addr).IsValid() {
					continue
				}
				for _, port := range udp {
					s.addServer(ah.Block, ICEServer{
						URL: fmt.Sprintf("stun:%s:%d", urlHost(t.addr), port), Host: t.host, Proto: ir.UDP,
						Addr: netip.AddrPortFrom(t.addr, port), Kind: "stun", Owner: owner, FQDN: t.fqdn,
					})
				}
			}
		}
	}
	return nil
}

func containsPort(list []uint16, port uint16) bool {
	for _, p := range list {
		if p == port {
			return true
		}
	}
	return false
}
