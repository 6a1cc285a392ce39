package backendtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Packets returns a deterministic list of at most max packets that exercise p:
// for every rule, addresses at and just outside the edges of its sets' prefixes
// and ports at and just outside its services' ranges, every zone pair, both
// protocols and address families, FQDN members by name, plus random packets.
// Every packet names both zones.
func Packets(p *ir.Program, seed uint64, max int) []ir.Packet {
	rng := rand.New(rand.NewPCG(seed, 7))
	zones := []string{}
	for _, z := range p.Zones {
		zones = append(zones, z.Name)
	}
	if len(zones) == 0 {
		zones = []string{"z"}
	}
	var out []ir.Packet
	pick := func(list []netip.Addr) netip.Addr { return list[rng.IntN(len(list))] }
	addrsOf := func(name string) ([]netip.Addr, []string) {
		s := p.AddressSet(name)
		if s == nil {
			return nil, nil
		}
		return edgeAddrs(s, rng), s.FQDNs
	}
	random := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("::"),
		netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	for i := 0; i < 8; i++ {
		var a4 [4]byte
		var a6 [16]byte
		for j := range a4 {
			a4[j] = byte(rng.IntN(256))
		}
		for j := range a6 {
			a6[j] = byte(rng.IntN(256))
		}
		random = append(random, netip.AddrFrom4(a4), netip.AddrFrom16(a6))
	}
	for _, r := range p.Rules {
		srcs, _ := addrsOf(r.Src)
		dsts, fqdns := addrsOf(r.Dst)
		srcs = append(srcs, random[rng.IntN(len(random))])
		dsts = append(dsts, random[rng.IntN(len(random))])
		svc := p.Service(r.Service)
		var dports, sports []uint16
		protos := []ir.Proto{ir.UDP, ir.TCP}
		if svc != nil {
			for _, e := range svc.Entries {
				dports = append(dports, edgePorts(e.Ports)...)
				sports = append(sports, edgePorts(e.SrcPorts)...)
			}
		}
		dports = append(dports, uint16(1+rng.IntN(65535)))
		sports = append(sports, uint16(1024+rng.IntN(64512)), 3478)
		for n := 0; n < 40; n++ {
			src := pick(srcs)
			dst := pick(dsts)
			// A packet has one address family.
			for tries := 0; tries < 8 && src.Is4() != dst.Is4(); tries++ {
				dst = pick(dsts)
			}
			if src.Is4() != dst.Is4() {
				continue
			}
			pkt := ir.Packet{
				FromZone: zoneOr(r.FromZone, zones, rng), ToZone: zoneOr(r.ToZone, zones, rng),
				Src: src, Dst: dst, Proto: protos[rng.IntN(2)],
				SrcPort: sports[rng.IntN(len(sports))], DstPort: dports[rng.IntN(len(dports))],
			}
			if len(fqdns) > 0 && rng.IntN(2) == 0 {
				// A name resolves to some address outside every literal set.
				pkt.DstHost = fqdns[rng.IntN(len(fqdns))]
				pkt.Dst = random[0]
				if !src.Is4() {
					pkt.Dst = random[1]
				}
			}
			out = append(out, pkt)
		}
	}
	// Every zone pair with packets that match nothing in particular.
	for _, from := range zones {
		for _, to := range zones {
			for n := 0; n < 4; n++ {
				src, dst := random[rng.IntN(len(random))], random[rng.IntN(len(random))]
				if src.Is4() != dst.Is4() {
					continue
				}
				out = append(out, ir.Packet{FromZone: from, ToZone: to, Src: src,
					Dst: dst, Proto: []ir.Proto{ir.UDP, ir.TCP}[n%2],
					SrcPort: uint16(1 + rng.IntN(65535)), DstPort: uint16(1 + rng.IntN(65535))})
			}
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// zoneOr returns the rule's zone most of the time and any zone otherwise.
func zoneOr(z string, zones []string, rng *rand.Rand) string {
	if z != "" && rng.IntN(4) != 0 {
		return z
	}
	return zones[rng.IntN(len(zones))]
}

// edgeAddrs: first and last address of every prefix, the addresses just
// outside, and one inside; for big sets a sample.
func edgeAddrs(s *ir.AddressSet, rng *rand.Rand) []netip.Addr {
	var out []netip.Addr
	prefixes := append(append([]netip.Prefix(nil), s.V4...), s.V6...)
	if len(prefixes) > 64 {
		rng.Shuffle(len(prefixes), func(i, j int) { prefixes[i], prefixes[j] = prefixes[j], prefixes[i] })
		prefixes = prefixes[:64]
	}
	for _, p := range prefixes {
		r := netipx.RangeOfPrefix(p)
		out = append(out, r.From(), r.To())
		if prev := r.From().Prev(); prev.IsValid() {
			out = append(out, prev)
		}
		if next := r.To().Next(); next.IsValid() {
			out = append(out, next)
		}
		if p.Bits() < p.Addr().BitLen() {
			out = append(out, r.From().Next())
		}
	}
	return out
}

// edgePorts: each range's ends and the ports just outside.
func edgePorts(rs []ir.PortRange) []uint16 {
	var out []uint16
	for _, r := range rs {
		out = append(out, r.First, r.Last)
		if r.First > 1 {
			out = append(out, r.First-1)
		}
		if r.Last < 65535 {
			out = append(out, r.Last+1)
		}
	}
	return out
}

// EquivOptions adjust the property test to what a target can express.
type EquivOptions struct {
	// IgnoreEgressZone: the target decides on the ingress interface only and
	// leaves the egress zone to routing (Cisco ASA interface ACLs). The IR is
	// then asked with the egress zone unknown.
	IgnoreEgressZone bool
	// CheckSource: the deciding rule's comment must trace to the same policy
	// line as the IR rule.
	CheckSource bool
	// QoSClassOnly: the target classes and queues QoS flows but cannot
	// write DSCP (Cisco ASA); CheckQoS compares classes only.
	QoSClassOnly bool
	// QoSSession: the target classes and marks sessions, not directions
	// (PAN-OS): a session takes the class of its first packet, whatever a
	// class's replies say, and the DSCP marking of the rule that allows it.
	QoSSession bool
	// QoSPerPacket: the target classes packets, not connections, by ACLs
	// on the egress interface (Cisco ASA): a packet takes the first class
	// one of whose rules matches it in their first direction, or reversed
	// when the class marks replies; the ingress zone is not checked.
	QoSPerPacket bool
}

// CheckEquivalent asserts that cfg decides every generated packet as p.Allows.
func CheckEquivalent(t *testing.T, p *ir.Program, cfg backends.Config, opts EquivOptions, max int) {
	t.Helper()
	failures := 0
	var pkts []ir.Packet
	for seed := uint64(1); len(pkts) < max && seed <= 8; seed++ {
		pkts = append(pkts, Packets(p, seed, max-len(pkts))...)
	}
	for _, pkt := range pkts {
		q := pkt
		if opts.IgnoreEgressZone {
			q.ToZone = ""
		}
		want := p.Allows(q)
		got := cfg.Decide(pkt)
		wantSource := ""
		if want.Rule != nil {
			wantSource = want.Rule.Origin.Source.String()
		}
		if got.Action != want.Action || (opts.CheckSource && got.Source != wantSource) {
			wantRule := "(default)"
			if want.Rule != nil {
				wantRule = want.Rule.Name
			}
			t.Errorf("%s: target says %s by %q (%s), IR says %s by %s (%s)",
				describe(pkt), got.Action, got.Rule, got.Source, want.Action, wantRule, wantSource)
			if failures++; failures == 10 {
				t.Fatal("too many differences")
			}
		}
	}
}

func describe(p ir.Packet) string {
	host := ""
	if p.DstHost != "" {
		host = " (" + p.DstHost + ")"
	}
	return fmt.Sprintf("%s %s:%d -> %s:%d%s zones %s->%s", p.Proto, p.Src, p.SrcPort, p.Dst, p.DstPort, host, p.FromZone, p.ToZone)
}

// CheckTarget is the whole test of a traceable target: for every case, golden
// files, determinism, the property test against ir.Allows on the re-read
// output, and the injection test with hostile names and descriptions.
func CheckTarget(t *testing.T, b backends.Traceable, opts backends.Options, eq EquivOptions) {
	for _, c := range Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			files := Emit(t, b, c.Program, opts)
			Golden(t, goldenDir(b.Name(), opts), c.Name, files)
			cfg, err := b.Reader().Read(files)
			if err != nil {
				t.Fatalf("re-reading the output: %v", err)
			}
			withSource := eq
			withSource.CheckSource = true
			CheckEquivalent(t, c.Program, cfg, withSource, 4000)
			CheckQoS(t, c.Program, cfg, eq, 2000, true)
		})
		t.Run(c.Name+"/hostile", func(t *testing.T) {
			CheckHostile(t, b, opts, eq, c.Program)
		})
	}
}

func goldenDir(target string, opts backends.Options) string {
	if opts.Format != "" {
		return target + "-" + opts.Format
	}
	return target
}

// CheckHostile: hostile names and descriptions change no line structure, and
// the re-read hostile output still decides as the IR. A target may refuse
// hostile interface names (they must match the device's), but must then emit
// the program with every other name and text hostile.
func CheckHostile(t *testing.T, b backends.Traceable, opts backends.Options, eq EquivOptions, base *ir.Program) {
	t.Helper()
	hostile, benign := HostilePair(base)
	hf, err := b.Emit(hostile, opts)
	if err != nil {
		hostile, benign = HostilePairPlainInterfaces(base)
		if hf, err = b.Emit(hostile, opts); err != nil {
			t.Fatalf("hostile names and descriptions must be escaped, not refused: %v", err)
		}
	}
	bf := Emit(t, b, benign, opts)
	var h, g bytes.Buffer
	for _, f := range hf {
		h.Write(f.Data)
	}
	for _, f := range bf {
		g.Write(f.Data)
	}
	if hl, bl := CountLines(h.Bytes()), CountLines(g.Bytes()); hl != bl {
		t.Fatalf("hostile text changed the output's structure: %d lines against %d for plain names", hl, bl)
	}
	if r, ok := BidiFree(h.Bytes()); !ok {
		t.Fatalf("hostile text put %U into the output", r)
	}
	cfg, err := b.Reader().Read(hf)
	if err != nil {
		t.Fatalf("re-reading the hostile output: %v", err)
	}
	CheckEquivalent(t, hostile, cfg, eq, 1500)
	CheckQoS(t, hostile, cfg, eq, 500, false)
}
