package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
)

// How long an allowed packet (and its reply) may take, and how long a packet
// that must be dropped is waited for.
const (
	WaitAllowed = 1500 * time.Millisecond
	WaitDropped = 300 * time.Millisecond
)

// Flow is one connection of the matrix.
type Flow struct {
	Group    string // agents group whose table shows it ("" when none takes part)
	Why      string // what the flow checks
	From, To *Host
	Src, Dst netip.Addr
	Proto    ir.Proto
	SrcPort  uint16
	DstPort  uint16
	// Required flows must pass whatever the policy says: the product's own
	// requirements (relayed media back to agents), not the IR's verdict.
	Required bool
	// Trouble names what users experience when the flow fails ("one-way
	// audio"); empty for ordinary cells.
	Trouble string

	srcFixed bool // the source port comes from the rule (relay ports, 3478)
}

// copyFlow is f for another pair of addresses, with a source port of its
// own unless the rule fixes it: a socket just closed on the same address and
// port would make the next bind fail.
func copyFlow(f Flow, nextPort func([]ir.PortRange) uint16) Flow {
	if !f.srcFixed {
		f.SrcPort = nextPort(nil)
	}
	return f
}

// String renders "udp agents "floor3" 10.20.0.10:20001 -> provider "genesys" 52.129.96.10:3478".
func (f Flow) String() string {
	return fmt.Sprintf("%s %s %s -> %s %s", f.Proto, f.From.Name(), netip.AddrPortFrom(f.Src, f.SrcPort), f.To.Name(), netip.AddrPortFrom(f.Dst, f.DstPort))
}

// Cell is a flow with what the IR expects and what the kernel did.
type Cell struct {
	Flow     Flow   `json:"-"`
	Group    string `json:"group"`
	Name     string `json:"flow"`
	Why      string `json:"why"`
	Expected string `json:"expected"` // pass or drop
	Got      string `json:"got"`      // pass, drop, reject, no reply, error: ...
	Rule     string `json:"rule"`     // deciding IR rule, or "default deny"
	Line     string `json:"line"`     // its policy line (file:line)
	Required bool   `json:"required,omitempty"`
	// Peer is the source address the receiving host saw (UDP cells that
	// arrived): the sender's own address, or the gateway's with source NAT.
	Peer    netip.Addr `json:"-"`
	Trouble string     `json:"trouble,omitempty"` // what a failure means to agents
	OK      bool       `json:"ok"`
}

// Matrix is the flow matrix of the lab's policy: one representative flow per
// service entry of every allow rule between hosts, in every address family
// both ends have, and generated flows that must be dropped.
func (l *Lab) Matrix() []Flow {
	p := l.Prog
	byset := map[string]*Host{}
	for _, h := range l.Hosts {
		if h.Via != "" {
			continue
		}
		if set := l.setOf(h); set != "" {
			byset[set] = h
		}
	}
	var flows []Flow
	sport := uint16(20000)
	nextPort := func(ranges []ir.PortRange) uint16 {
		sport++
		if len(ranges) == 0 {
			return sport
		}
		r := ranges[0]
		span := int(r.Last) - int(r.First) + 1
		return r.First + uint16(int(sport)%span)
	}
	add := func(from, to *Host, dstOverride netip.Addr, proto ir.Proto, srcPorts []ir.PortRange, dport uint16, why string) {
		group := ""
		if from.Kind == "agents" {
			group = from.Block
		} else if to.Kind == "agents" {
			group = to.Block
		}
		pairs := [][2]netip.Addr{{from.V4, to.V4}, {from.V6, to.V6}}
		if dstOverride.IsValid() {
			pairs = [][2]netip.Addr{{from.V4, dstOverride}}
		}
		for _, pr := range pairs {
			if !pr[0].IsValid() || !pr[1].IsValid() || pr[0].Is4() != pr[1].Is4() {
				continue
			}
			flows = append(flows, Flow{Group: group, Why: why, From: from, To: to, Src: pr[0], Dst: pr[1], Proto: proto, SrcPort: nextPort(srcPorts), DstPort: dport, srcFixed: len(srcPorts) > 0})
		}
	}
	first := func(r []ir.PortRange, dflt uint16) uint16 {
		if len(r) == 0 {
			return dflt
		}
		if r[0].First == 0 {
			return 1
		}
		return r[0].First
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		from, to := byset[r.Src], byset[r.Dst]
		svc := p.Service(r.Service)
		if r.Action != ir.Allow || from == nil || to == nil || svc == nil {
			continue
		}
		for _, e := range svc.Entries {
			add(from, to, netip.Addr{}, e.Proto, e.SrcPorts, first(e.Ports, 40000), fmt.Sprintf("rule %s: %s %s", r.Name, e.Proto, portsString(e.Ports)))
		}
	}
	// The same flows from and to the further ranges of each block.
	n := len(flows)
	for i := 0; i < n; i++ {
		f := flows[i]
		for _, x := range f.From.Extra {
			if x.Addr.Is4() == f.Src.Is4() {
				g := copyFlow(f, nextPort)
				g.Src, g.Why = x.Addr, f.Why+" (from range "+x.Range.String()+")"
				flows = append(flows, g)
			}
		}
		for _, x := range f.To.Extra {
			if x.Addr.Is4() == f.Dst.Is4() {
				g := copyFlow(f, nextPort)
				g.Dst, g.Why = x.Addr, f.Why+" (to range "+x.Range.String()+")"
				flows = append(flows, g)
			}
		}
	}
	// Generated flows that a sane policy drops; the IR decides what is expected.
	for _, a := range l.Hosts {
		if a.Kind != "agents" || a.Via != "" {
			continue
		}
		for _, pr := range l.Hosts {
			if pr.Kind != "provider" || pr.Zone == a.Zone {
				continue
			}
			if port, ok := l.deniedUDPPort(a, pr); ok {
				add(a, pr, netip.Addr{}, ir.UDP, nil, port, "another UDP port to the provider")
			}
			add(a, pr, netip.Addr{}, ir.TCP, nil, 22, "SSH to the provider")
			add(pr, a, netip.Addr{}, ir.UDP, []ir.PortRange{{First: 3478, Last: 3478}}, 40000, "unsolicited UDP from the provider")
			if pr.Outside.IsValid() {
				add(a, pr, pr.Outside, ir.UDP, nil, 3478, "UDP to an address outside the provider's ranges")
				add(a, pr, pr.Outside, ir.TCP, nil, 443, "TCP 443 to an address outside the provider's ranges")
			}
		}
		for _, rl := range l.Hosts {
			if rl.Kind != "relay" || rl.Zone == a.Zone {
				continue
			}
			var rel *ir.Relay
			for i := range p.Relays {
				if p.Relays[i].Name == rl.Block {
					rel = &p.Relays[i]
				}
			}
			if rel == nil {
				continue
			}
			out := ir.PortRange{First: rel.RelayPorts.First - 1, Last: rel.RelayPorts.First - 1}
			if rel.RelayPorts.First <= 1025 {
				out = ir.PortRange{First: rel.RelayPorts.Last + 1, Last: rel.RelayPorts.Last + 1}
			}
			if rel.RelayPorts.Last == 65535 && rel.RelayPorts.First <= 1025 {
				continue
			}
			add(rl, a, netip.Addr{}, ir.UDP, []ir.PortRange{out}, 40000, fmt.Sprintf("relay to agents from port %d, outside relay_ports %s", out.First, rel.RelayPorts))
			if !serves(rel, a.Block) {
				continue
			}
			// The guide's edge case 2: media a relay in another zone sends
			// towards an agent from its relay range (a remote party relayed
			// through it) must reach the agent, or the agent hears nothing.
			n := len(flows)
			add(rl, a, netip.Addr{}, ir.UDP, []ir.PortRange{{First: rel.RelayPorts.Last, Last: rel.RelayPorts.Last}}, 40002, fmt.Sprintf("relayed media back to agents from relay_ports %s (required)", rel.RelayPorts))
			for i := n; i < len(flows); i++ {
				flows[i].Required = true
				flows[i].Trouble = fmt.Sprintf("one-way audio: the gateway drops media relay %q sends towards agents %q from its relay ports %s (guide, edge case 2; TW207); a party relayed through it is not heard", rel.Name, a.Block, rel.RelayPorts)
			}
		}
	}
	// Agents behind a zone's further interfaces repeat every flow of their
	// group there: the ruleset must name every interface.
	for _, h := range l.Hosts {
		if h.Via == "" {
			continue
		}
		primary := byset[l.setOf(h)]
		n := len(flows)
		for i := 0; i < n; i++ {
			f := copyFlow(flows[i], nextPort)
			own := func(a netip.Addr) bool { return a == primary.V4 || a == primary.V6 }
			switch {
			case f.From == primary && own(f.Src):
				f.From, f.Src = h, h.source(f.Src)
			case f.To == primary && own(f.Dst):
				f.To, f.Dst = h, h.source(f.Dst)
			default:
				continue // other ranges are covered behind the first interface
			}
			if !f.Src.IsValid() || !f.Dst.IsValid() {
				continue
			}
			f.Why += " (via " + h.Via + ")"
			flows = append(flows, f)
		}
	}
	return flows
}

func serves(r *ir.Relay, group string) bool {
	for _, c := range r.Clients {
		if c == group {
			return true
		}
	}
	return false
}

func portsString(r []ir.PortRange) string {
	if len(r) == 0 {
		return "any"
	}
	return r[0].String()
}

// deniedUDPPort finds a UDP port the IR does not open from a to pr.
func (l *Lab) deniedUDPPort(a, pr *Host) (uint16, bool) {
	src, dst := a.V4, pr.V4
	if !src.IsValid() || !dst.IsValid() {
		src, dst = a.V6, pr.V6
	}
	if !src.IsValid() || !dst.IsValid() {
		return 0, false
	}
	for _, port := range []uint16{9, 7, 161, 1000, 2000, 5000, 8000, 9999} {
		v := l.Prog.Allows(ir.Packet{FromZone: a.Zone, ToZone: pr.Zone, Src: src, Dst: dst, Proto: ir.UDP, SrcPort: 20000, DstPort: port})
		if !v.Allowed() {
			return port, true
		}
	}
	return 0, false
}

// Expect computes what the IR does with a flow.
func (l *Lab) Expect(f Flow) (pass bool, rule, line string) {
	v := l.Prog.Allows(ir.Packet{FromZone: f.From.Zone, ToZone: f.To.Zone, Src: f.Src, Dst: f.Dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort})
	if v.Rule == nil {
		return v.Allowed(), "default " + string(v.Action), l.Prog.Policy.Source.String()
	}
	return v.Allowed(), v.Rule.Name, v.Rule.Origin.Source.String()
}

// Run sends every flow through the gateway and compares with expect (nil:
// the lab's own program). Flows run concurrently, but never two at once on
// the same address, protocol and port. It stops early when ctx is done; the
// cells not run are left out.
func (l *Lab) Run(ctx context.Context, flows []Flow, expect func(Flow) (bool, string, string)) []Cell {
	if expect == nil {
		expect = l.Expect
	}
	cells := make([]Cell, len(flows))
	done := make([]bool, len(flows))
	var locks keyedLocks
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, f := range flows {
		if ctx.Err() != nil {
			break
		}
		pass, rule, line := expect(f)
		c := Cell{Flow: f, Group: f.Group, Name: f.String(), Why: f.Why, Rule: rule, Line: line, Expected: "drop", Required: f.Required, Trouble: f.Trouble}
		if f.Required {
			pass = true
		}
		if pass {
			c.Expected = "pass"
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, c Cell) {
			defer wg.Done()
			defer func() { <-sem }()
			keys := []string{
				fmt.Sprintf("%s/%s/%d", f.Proto, f.Src, f.SrcPort),
				fmt.Sprintf("%s/%s/%d", f.Proto, f.Dst, f.DstPort),
			}
			unlock := locks.lock(keys)
			defer unlock()
			if ctx.Err() != nil {
				return
			}
			c.Got, c.Peer = send(f, pass)
			c.OK = (pass && c.Got == "pass") || (!pass && (c.Got == "drop" || c.Got == "reject"))
			cells[i], done[i] = c, true
		}(i, c)
	}
	wg.Wait()
	var out []Cell
	for i := range cells {
		if done[i] {
			out = append(out, cells[i])
		}
	}
	return out
}

type keyedLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock takes every key, in a fixed order so that no two callers deadlock.
func (k *keyedLocks) lock(keys []string) func() {
	sort.Strings(keys)
	if keys[0] == keys[1] {
		keys = keys[:1]
	}
	for _, key := range keys {
		for {
			k.mu.Lock()
			if k.held == nil {
				k.held = map[string]chan struct{}{}
			}
			ch, busy := k.held[key]
			if !busy {
				k.held[key] = make(chan struct{})
				k.mu.Unlock()
				break
			}
			k.mu.Unlock()
			<-ch
		}
	}
	return func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, key := range keys {
			close(k.held[key])
			delete(k.held, key)
		}
	}
}

// send runs one flow with real sockets in the hosts' namespaces.
func send(f Flow, allowed bool) (string, netip.Addr) {
	wait := WaitDropped
	if allowed {
		wait = WaitAllowed
	}
	if f.Proto == ir.TCP {
		return sendTCP(f, wait), netip.Addr{}
	}
	return sendUDP(f, wait)
}

// retry runs f again while the address is still in use by a socket another
// cell is closing, for at most half a second.
func retry(f func() error) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = f(); !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
	return err
}

func sendUDP(f Flow, wait time.Duration) (string, netip.Addr) {
	var server, client *net.UDPConn
	if err := retry(func() error {
		return f.To.NS.Do(func() (err error) {
			server, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.Dst, f.DstPort)))
			return err
		})
	}); err != nil {
		return "error: " + err.Error(), netip.Addr{}
	}
	defer server.Close()
	if err := retry(func() error {
		return f.From.NS.Do(func() (err error) {
			client, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.Src, f.SrcPort)))
			return err
		})
	}); err != nil {
		return "error: " + err.Error(), netip.Addr{}
	}
	defer client.Close()
	if _, err := client.WriteToUDPAddrPort([]byte("turnwall verify"), netip.AddrPortFrom(f.Dst, f.DstPort)); err != nil {
		return "error: " + err.Error(), netip.Addr{}
	}
	server.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	_, peer, err := server.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "drop", netip.Addr{}
	}
	if _, err := server.WriteToUDPAddrPort([]byte("reply"), peer); err != nil {
		return "error: " + err.Error(), netip.Addr{}
	}
	client.SetReadDeadline(time.Now().Add(WaitAllowed))
	if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
		return "no reply", peer.Addr().Unmap()
	}
	return "pass", peer.Addr().Unmap()
}

func sendTCP(f Flow, wait time.Duration) string {
	var ln *net.TCPListener
	if err := retry(func() error {
		return f.To.NS.Do(func() (err error) {
			ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(f.Dst, f.DstPort)))
			return err
		})
	}); err != nil {
		return "error: " + err.Error()
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var conn net.Conn
	err := retry(func() error {
		return f.From.NS.Do(func() (err error) {
			d := net.Dialer{Timeout: wait, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(f.Src, f.SrcPort))}
			conn, err = d.Dial("tcp", netip.AddrPortFrom(f.Dst, f.DstPort).String())
			return err
		})
	})
	if conn != nil {
		// RST rather than TIME_WAIT: the port is free for the next run.
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}
	switch {
	case err == nil:
		return "pass"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "reject"
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return "drop"
	}
	return "error: " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
