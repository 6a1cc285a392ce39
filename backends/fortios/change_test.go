package fortios

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/testkit"
)

var _ backends.BoxModel = (*Box)(nil)

// foreignConfig is a box's own configuration: its addresses, groups and
// services, an intrazone policy above turnwall's block (1), a guest block
// (2), and below where the block goes (position=before:3) web browsing and
// DNS for everyone (3, 4) and a log-all deny (5), and a traffic shaper and
// shaping policy of its own (guests' traffic low, marked CS1). Its policies
// use the policy zones' interfaces, so that they see the same packets as
// turnwall's.
func foreignConfig(p *ir.Program) []byte {
	var ifs []string
	for _, z := range p.Zones {
		ifs = append(ifs, z.Interfaces...)
	}
	all := quoteAll(ifs)
	first := quote(p.Zones[0].Interfaces[0])
	return []byte(`config firewall address
    edit "guest-net"
        set subnet 172.31.0.0 255.255.0.0
    next
    edit "crm"
        set subnet 198.18.0.0 255.254.0.0
    next
end
config firewall addrgrp
    edit "corp-apps"
        set member "crm"
    next
end
config firewall service custom
    edit "crm-tcp"
        set tcp-portrange 8443
    next
end
config firewall policy
    edit 1
        set name "intrazone"
        set srcintf ` + first + `
        set dstintf ` + first + `
        set srcaddr "all"
        set dstaddr "all"
        set action accept
        set schedule "always"
        set service "ALL"
    next
    edit 2
        set name "guest-block"
        set srcintf "any"
        set dstintf "any"
        set srcaddr "guest-net"
        set dstaddr "all"
        set action deny
        set schedule "always"
        set service "ALL"
    next
    edit 3
        set name "crm"
        set srcintf ` + all + `
        set dstintf ` + all + `
        set srcaddr "all"
        set dstaddr "corp-apps"
        set action accept
        set schedule "always"
        set service "crm-tcp" "HTTPS"
    next
    edit 4
        set name "dns"
        set srcintf ` + all + `
        set dstintf ` + all + `
        set srcaddr "all"
        set dstaddr "all"
        set action accept
        set schedule "always"
        set service "DNS"
    next
    edit 5
        set name "deny-log"
        set srcintf "any"
        set dstintf "any"
        set srcaddr "all"
        set dstaddr "all"
        set srcaddr6 "all"
        set dstaddr6 "all"
        set action deny
        set schedule "always"
        set service "ALL"
        set logtraffic all
    next
end
config firewall shaper traffic-shaper
    edit "guest-low"
        set priority low
        set per-policy disable
    next
end
config firewall shaping-policy
    edit 1
        set name "guest-low"
        set status enable
        set srcintf "any"
        set dstintf "any"
        set srcaddr "guest-net"
        set dstaddr "all"
        set service "ALL"
        set traffic-shaper "guest-low"
        set diffserv-forward enable
        set diffservcode-forward 001000
    next
end
`)
}

var changeOpts = backends.Options{Params: map[string]string{"position": "before:3"}}

func zonesOf(p ...*ir.Program) map[string][]string {
	out := map[string][]string{}
	for _, q := range p {
		if q == nil {
			continue
		}
		for _, z := range q.Zones {
			out[z.Name] = z.Interfaces
		}
	}
	return out
}

// change runs Change and returns the script.
func change(t *testing.T, old, new *ir.Program, opts backends.Options) []byte {
	t.Helper()
	files, err := Backend{}.Change(old, new, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Backend{}.Change(old, new, opts)
	if len(files) != 1 || files[0].Name != changeFile || string(again[0].Data) != string(files[0].Data) {
		t.Fatal("Change is not deterministic or gave unexpected files")
	}
	return files[0].Data
}

// running is a box with its own configuration and turnwall's part of p
// (installed with Change(nil, p)).
func running(t *testing.T, base, p *ir.Program, zones map[string][]string, opts backends.Options) *Box {
	t.Helper()
	box, err := NewBox(foreignConfig(base), 10000, 10999, zones, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		if err := box.Apply(change(t, nil, p, opts), nil); err != nil {
			t.Fatalf("first install: %v", err)
		}
	}
	return box
}

type proofStats struct {
	pairs, tx, steps, checks int
	qos, qosScripts          int // results whose QoS was checked, scripts that change QoS
	lines                    []int
}

// proveChange: running(old)+Change(old,new) = running(new) in what turnwall
// owns, the box's own configuration untouched, and at every step no packet
// that both versions decide alike decided otherwise.
func proveChange(t *testing.T, old, new *ir.Program, st *proofStats) {
	t.Helper()
	base := old
	if base == nil {
		base = new
	}
	zones := zonesOf(old, new)
	script := change(t, old, new, changeOpts)
	box := running(t, base, old, zones, changeOpts)
	want := running(t, base, new, zones, changeOpts)
	foreign := box.Foreign()
	before, after := box.Config(), want.Config()
	var pkts []ir.Packet
	for _, p := range []*ir.Program{old, new} {
		if p != nil {
			pkts = append(pkts, backendtest.Packets(p, 7, 150)...)
		}
	}
	pkts = append(pkts, foreignPackets(base)...)
	type agreed struct {
		pkt    ir.Packet
		action ir.Action
	}
	var same []agreed
	for _, p := range pkts {
		if a, b := before.Decide(p), after.Decide(p); a.Action == b.Action {
			same = append(same, agreed{p, a.Action})
		}
	}
	steps := 0
	err := box.Apply(script, func(c backends.Config) {
		steps++
		for _, s := range same {
			if got := c.Decide(s.pkt).Action; got != s.action {
				t.Errorf("step %d: %v: %s, both versions say %s\n%s", steps, s.pkt, got, s.action, script)
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("applying the script: %v\n%s", err, script)
	}
	if got, w := box.Owned(), want.Owned(); got != w {
		t.Fatalf("running(old)+script differs from running(new):\n--- got\n%s\n--- want\n%s\n--- script\n%s", got, w, script)
	}
	if box.Foreign() != foreign {
		t.Fatalf("the box's own configuration changed:\n%s", script)
	}
	// The QoS decision after the script is new's.
	if new != nil && backendtest.QoSSampled(new, 300) {
		backendtest.CheckQoS(t, new, box.Config(), backendtest.EquivOptions{}, 300, true)
		st.qos++
	}
	if new == nil || len(new.QoS) == 0 {
		if strings.Contains(box.Owned(), "shaping") || strings.Contains(box.Owned(), "traffic-shaper") {
			t.Fatalf("turnwall's QoS is left on the box:\n%s", box.Owned())
		}
	}
	if strings.Contains(string(script), "config firewall shaping-policy") || strings.Contains(string(script), "config firewall shaper") {
		st.qosScripts++
	}
	st.pairs++
	st.steps += steps
	st.checks += steps * len(same)
	st.lines = append(st.lines, backendtest.CountLines(script))
	if strings.HasPrefix(string(script), "execute config-transaction start") {
		st.tx++
	}
}

// TestChangeExamples: for every example, the first install, the full
// removal, and the change to and from each mutated version.
func TestChangeExamples(t *testing.T) {
	var st proofStats
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			proveChange(t, nil, c.Program, &st)
			proveChange(t, c.Program, nil, &st)
			// running(new) decides as the IR where no box policy above the
			// block decides first: here, on a box of its own.
			box, err := NewBox(nil, 10000, 10999, zonesOf(c.Program), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := box.Apply(change(t, nil, c.Program, backends.Options{}), nil); err != nil {
				t.Fatal(err)
			}
			backendtest.CheckEquivalent(t, c.Program, box.Config(), backendtest.EquivOptions{CheckSource: true}, 2000)
		})
	}
	t.Logf("%d scripts proved, %d steps, %d packet checks, %d in a transaction", st.pairs, st.steps, st.checks, st.tx)
}

// TestChangeRandomPairs: 200+ pairs of mutated example policies (fixed
// seed): implementation and backout scripts proved both ways.
func TestChangeRandomPairs(t *testing.T) {
	cases := backendtest.Cases(t)
	rng := rand.New(rand.NewPCG(17, 2026))
	var st proofStats
	n := 0
	for n < 220 {
		c := cases[n%len(cases)]
		old := mutate(c.Program, rng, rng.IntN(3))
		new := mutate(old, rng, 1+rng.IntN(3))
		name := fmt.Sprintf("%s-%d", c.Name, n)
		t.Run(name, func(t *testing.T) {
			proveChange(t, old, new, &st)
			proveChange(t, new, old, &st)
		})
		n++
		if t.Failed() {
			break
		}
	}
	hist := map[string]int{}
	maxLines := 0
	for _, l := range st.lines {
		maxLines = max(maxLines, l)
		switch {
		case l <= 10:
			hist["<=10"]++
		case l <= 50:
			hist["11-50"]++
		default:
			hist[">50"]++
		}
	}
	t.Logf("%d pairs, %d scripts proved (implementation and backout), %d steps, %d packet checks, %d in a transaction; script lines %v, longest %d; %d scripts change QoS, %d results' QoS decisions checked",
		n, st.pairs, st.steps, st.checks, st.tx, hist, maxLines, st.qosScripts, st.qos)
	if st.qosScripts < st.pairs/10 {
		t.Errorf("only %d of %d scripts change QoS", st.qosScripts, st.pairs)
	}
}

// clone deep-copies a program.
func clone(p *ir.Program) *ir.Program {
	data, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	var q ir.Program
	if err := json.Unmarshal(data, &q); err != nil {
		panic(err)
	}
	q.Index()
	return &q
}

// mutate applies k random edits: ranges added to and removed from address
// sets, rules added, removed, swapped and their action flipped, ports added.
func mutate(p *ir.Program, rng *rand.Rand, k int) *ir.Program {
	q := clone(p)
	for i := 0; i < k; i++ {
		switch rng.IntN(8) {
		case 0, 1: // add a range
			s := &q.AddressSets[rng.IntN(len(q.AddressSets))]
			if rng.IntN(4) == 0 {
				s.V6 = append(s.V6, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(256)), byte(rng.IntN(256))}), 48))
			} else {
				s.V4 = append(s.V4, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + rng.IntN(64)), byte(rng.IntN(256)), 0}), 24))
			}
		case 2: // remove a range
			s := &q.AddressSets[rng.IntN(len(q.AddressSets))]
			if len(s.V4) > 0 {
				j := rng.IntN(len(s.V4))
				s.V4 = append(s.V4[:j:j], s.V4[j+1:]...)
			}
		case 3: // add a rule
			if len(q.Rules) == 0 {
				continue
			}
			r := q.Rules[rng.IntN(len(q.Rules))]
			r.Name = fmt.Sprintf("added-%d", rng.IntN(1000))
			if rng.IntN(2) == 0 {
				r.Action = flip(r.Action)
			}
			r.Origin.Source.Line = 900 + rng.IntN(99)
			j := rng.IntN(len(q.Rules) + 1)
			taken := false
			for _, x := range q.Rules {
				taken = taken || x.Name == r.Name
			}
			if taken {
				continue
			}
			q.Rules = append(q.Rules[:j:j], append([]ir.Rule{r}, q.Rules[j:]...)...)
		case 4: // remove a rule
			if len(q.Rules) > 1 {
				j := rng.IntN(len(q.Rules))
				q.Rules = append(q.Rules[:j:j], q.Rules[j+1:]...)
			}
		case 5: // swap two rules, or flip one's action
			if len(q.Rules) > 1 {
				a, b := rng.IntN(len(q.Rules)), rng.IntN(len(q.Rules))
				if rng.IntN(2) == 0 {
					q.Rules[a], q.Rules[b] = q.Rules[b], q.Rules[a]
				} else {
					q.Rules[a].Action = flip(q.Rules[a].Action)
				}
			}
		case 6: // a port added to a service
			s := &q.Services[rng.IntN(len(q.Services))]
			if len(s.Entries) > 0 {
				e := &s.Entries[rng.IntN(len(s.Entries))]
				if len(e.Ports) > 0 {
					port := uint16(20000 + rng.IntN(10000))
					e.Ports = append(e.Ports, ir.PortRange{First: port, Last: port})
				}
			}
		case 7: // the qos block: a class's DSCP, replies, order, rules
			backendtest.MutateQoS(q, rng)
		}
	}
	for i := range q.AddressSets {
		q.AddressSets[i].V4 = dedupe(q.AddressSets[i].V4)
		q.AddressSets[i].V6 = dedupe(q.AddressSets[i].V6)
	}
	q.Index()
	return q
}

func flip(a ir.Action) ir.Action {
	if a == ir.Allow {
		return ir.Deny
	}
	return ir.Allow
}

func dedupe(ps []netip.Prefix) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// largeProgram compiles testkit.LargePolicy(n).
func largeProgram(t testing.TB, n int) *ir.Program {
	t.Helper()
	path := filepath.Join(t.TempDir(), "large.hcl")
	if err := os.WriteFile(path, testkit.LargePolicy(n), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(path, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	return res.Program
}

// onePrefixMore is a copy of p whose largest address set has one more /24.
func onePrefixMore(p *ir.Program) *ir.Program {
	new := clone(p)
	big := 0
	for i := range new.AddressSets {
		if len(new.AddressSets[i].V4) > len(new.AddressSets[big].V4) {
			big = i
		}
	}
	new.AddressSets[big].V4 = append(new.AddressSets[big].V4, netip.MustParsePrefix("100.100.100.0/24"))
	new.Index()
	return new
}

// TestOnePrefixChange: one range added to (and removed from) a provider of
// 10,000 ranges is a script of two commands (the address object's subnet and
// the group's append member; unselect member and delete), with no
// transaction, proved on the box model.
func TestOnePrefixChange(t *testing.T) {
	old := largeProgram(t, 10_000)
	new := onePrefixMore(old)
	for _, pair := range [][2]*ir.Program{{old, new}, {new, old}} {
		script := change(t, pair[0], pair[1], backends.Options{})
		var commands []string
		for _, l := range strings.Split(strings.TrimSpace(string(script)), "\n") {
			w := strings.Fields(l)
			if w[0] != "config" && w[0] != "edit" && w[0] != "next" && w[0] != "end" {
				commands = append(commands, strings.TrimSpace(l))
			}
		}
		t.Logf("%d lines, %d commands:\n%s", backendtest.CountLines(script), len(commands), script)
		if len(commands) > 3 || strings.Contains(string(script), "config-transaction") {
			t.Errorf("a one-prefix change gave %d commands:\n%s", len(commands), script)
		}
		var st proofStats
		proveChange(t, pair[0], pair[1], &st)
	}
}

// TestChangeBadInput: a bad parameter or a zone the interfaces map lacks is
// an error before any script; a position naming no policy on the box is
// refused when the script is applied, with the line.
func TestChangeBadInput(t *testing.T) {
	p := smallProgram()
	for params, want := range map[string]string{
		"position=before:abc":                      "not a policy id",
		"position=middle":                          "expected bottom",
		"position=after:10005":                     "in turnwall's policy-ids",
		"default-rule=maybe":                       "expected none or emit",
		"interfaces=agents=port2":                  "zone \"internet\"",
		"interfaces=agents":                        "ZONE=NAME",
		"interfaces=agents=a b,internet=wan1":      "not a FortiOS interface",
		"interfaces=agents=p1,internet=wan1,dmz=x": "unknown zone in the interfaces map",
	} {
		k, v, _ := strings.Cut(params, "=")
		opts := backends.Options{Params: map[string]string{k: v}}
		if _, err := (Backend{}).Change(nil, p, opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Change gave %v, want %q", params, err, want)
		}
		if _, err := (Backend{}).Emit(p, opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Emit gave %v, want %q", params, err, want)
		}
	}
	cs := Backend{}.Check(p, backends.Options{Params: map[string]string{"interfaces": "agents=port2"}})
	if len(cs) != 1 || cs[0].At.Line != 10 {
		t.Errorf("constraints %v, want one at the rule using the unmapped zone (line 10)", cs)
	}
	script := change(t, nil, p, backends.Options{Params: map[string]string{"position": "before:77"}})
	box, _ := NewBox(foreignConfig(p), 10000, 10999, zonesOf(p), nil)
	if err := box.Apply(script, nil); err == nil || !strings.Contains(err.Error(), "no such policy") || !strings.Contains(err.Error(), "line ") {
		t.Errorf("a position naming no policy: %v", err)
	}
	// A script that edits the box's own entries is refused by the model.
	if err := box.Apply([]byte("config firewall policy\n    edit 3\n        set action deny\n    next\nend\n"), nil); err == nil || !strings.Contains(err.Error(), "does not own") {
		t.Errorf("editing a foreign policy: %v", err)
	}
}

// TestInterfacesMap: with the map, policies use the box's names.
func TestInterfacesMap(t *testing.T) {
	p := smallProgram()
	opts := backends.Options{Params: map[string]string{"interfaces": "agents=agents-zone,internet=wan1+wan2"}}
	script := string(change(t, nil, p, opts))
	if !strings.Contains(script, `set srcintf "agents-zone"`) || !strings.Contains(script, `set dstintf "wan1" "wan2"`) {
		t.Errorf("interfaces map not used:\n%s", script)
	}
	box, _ := NewBox(nil, 10000, 10999, map[string][]string{"agents": {"agents-zone"}, "internet": {"wan1", "wan2"}}, nil)
	if err := box.Apply([]byte(script), nil); err != nil {
		t.Fatal(err)
	}
	backendtest.CheckEquivalent(t, p, box.Config(), backendtest.EquivOptions{CheckSource: true}, 500)
}

// foreignPackets are flows the box's own policies decide: guests, the CRM,
// DNS, intrazone traffic.
func foreignPackets(p *ir.Program) []ir.Packet {
	var out []ir.Packet
	for _, from := range p.Zones {
		for _, to := range p.Zones {
			for _, tc := range []struct {
				src, dst string
				proto    ir.Proto
				port     uint16
			}{
				{"172.31.4.4", "192.0.2.1", ir.TCP, 443},
				{"10.9.9.9", "198.18.1.1", ir.TCP, 8443},
				{"10.9.9.9", "198.19.1.1", ir.TCP, 443},
				{"10.9.9.9", "9.9.9.9", ir.UDP, 53},
				{"10.9.9.9", "9.9.9.9", ir.TCP, 22},
			} {
				out = append(out, ir.Packet{FromZone: from.Name, ToZone: to.Name, Src: netip.MustParseAddr(tc.src),
					Dst: netip.MustParseAddr(tc.dst), Proto: tc.proto, SrcPort: 40000, DstPort: tc.port})
			}
		}
	}
	return out
}

// TestChangeHostile: hostile names and comments change no line of a change
// script's structure, and the installed script decides as the IR.
func TestChangeHostile(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		hostile, benign := backendtest.HostilePairPlainInterfaces(c.Program)
		hs, bs := change(t, nil, hostile, backends.Options{}), change(t, nil, benign, backends.Options{})
		if backendtest.CountLines(hs) != backendtest.CountLines(bs) {
			t.Fatalf("%s: hostile text changed the script's structure", c.Name)
		}
		if r, ok := backendtest.BidiFree(hs); !ok {
			t.Fatalf("%s: %U in the script", c.Name, r)
		}
		box, _ := NewBox(nil, 10000, 10999, zonesOf(hostile), nil)
		if err := box.Apply(hs, nil); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		backendtest.CheckEquivalent(t, hostile, box.Config(), backendtest.EquivOptions{CheckSource: true}, 1000)
	}
}

// TestLogFlags: each rule's log flag gives its policy's logtraffic, allow
// and deny alike; log_default goes to the default policy, which exists
// only with default-rule=emit.
func TestLogFlags(t *testing.T) {
	p := smallProgram()
	p.Rules[0].Log = true // an allow rule
	p.Rules[1].Log = false
	p.Index()
	for _, emit := range []bool{false, true} {
		opts := backends.Options{Params: map[string]string{}}
		if emit {
			opts.Params["default-rule"] = "emit"
		}
		blocks := policyBlocks(string(backendtest.Emit(t, Backend{}, p, opts)[0].Data))
		for name, want := range map[string]string{"tw-agents.web": "all", "tw-agents.turn-tls": "disable", "tw-block-printer": "all"} {
			if !strings.Contains(blocks[name], "set logtraffic "+want+"\n") {
				t.Errorf("%s: want logtraffic %s:\n%s", name, want, blocks[name])
			}
		}
		def, ok := blocks["tw-default"]
		if ok != emit || emit && !strings.Contains(def, "set logtraffic all\n") {
			t.Errorf("default-rule emit=%v: default policy %q", emit, def)
		}
	}
}

// TestChangeNoSpuriousMatch: a policy whose source gains a range while its
// destination loses one would, between the append and the unselect, match
// the new source with the old destination, which neither version allows.
// Such a change must not run command by command.
func TestChangeNoSpuriousMatch(t *testing.T) {
	old := smallProgram()
	old.AddressSets[2].V4 = append(old.AddressSets[2].V4, netip.MustParsePrefix("198.51.100.0/24"))
	old.Rules = old.Rules[:2] // two allow rules: the change is of one action
	old.Index()
	new := clone(old)
	new.AddressSets[0].V4 = append(new.AddressSets[0].V4, netip.MustParsePrefix("10.2.0.0/16")) // agents gain
	new.AddressSets[2].V4 = new.AddressSets[2].V4[:1]                                           // provider loses
	new.Index()
	pkt := ir.Packet{FromZone: "agents", ToZone: "internet", Src: netip.MustParseAddr("10.2.0.5"),
		Dst: netip.MustParseAddr("198.51.100.7"), Proto: ir.TCP, SrcPort: 40000, DstPort: 443}
	if old.Allows(pkt).Action != ir.Deny || new.Allows(pkt).Action != ir.Deny {
		t.Fatal("the packet should be denied by both versions")
	}
	for _, pair := range [][2]*ir.Program{{old, new}, {new, old}} {
		script := change(t, pair[0], pair[1], backends.Options{})
		box, _ := NewBox(nil, 10000, 10999, zonesOf(old), nil)
		if err := box.Apply(change(t, nil, pair[0], backends.Options{}), nil); err != nil {
			t.Fatal(err)
		}
		err := box.Apply(script, func(c backends.Config) {
			if d := c.Decide(pkt); d.Action != ir.Deny {
				t.Errorf("a step allows what both versions deny (%+v):\n%s", d, script)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		var st proofStats
		proveChange(t, pair[0], pair[1], &st)
	}
}

// TestChangeGolden: the first install, the full removal, and the
// implementation and backout of a small change (one range added to the
// first address set, the last rule removed) of every example, as goldens
// under testdata/golden/fortios-change.
func TestChangeGolden(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			next := clone(c.Program)
			for i := range next.AddressSets {
				if len(next.AddressSets[i].V4) > 0 {
					next.AddressSets[i].V4 = append(next.AddressSets[i].V4, netip.MustParsePrefix("100.64.1.0/24"))
					break
				}
			}
			next.Rules = next.Rules[:len(next.Rules)-1]
			next.Index()
			files := []backends.File{
				{Name: "fortios-install.conf", Data: change(t, nil, c.Program, changeOpts)},
				{Name: "fortios-removal.conf", Data: change(t, c.Program, nil, changeOpts)},
				{Name: "fortios-implementation.conf", Data: change(t, c.Program, next, changeOpts)},
				{Name: "fortios-backout.conf", Data: change(t, next, c.Program, changeOpts)},
			}
			backendtest.Golden(t, "fortios-change", c.Name, files)
			var st proofStats
			proveChange(t, c.Program, next, &st)
			proveChange(t, next, c.Program, &st)
		})
	}
}

// TestQoSChangeMinimal: a DSCP change of one class is the DSCP of its
// shaping policies (both directions when the class marks replies), with its
// shaper's priority when that changes; toggling replies is the reverse
// fields of the class's shaping policies; each script is proved.
func TestQoSChangeMinimal(t *testing.T) {
	old := backendtest.CaseProgram(t, "case-qos")
	video := backendtest.QoSClass(t, old, "video")
	if len(old.QoS[video].Rules) != 1 || !old.QoS[video].Replies {
		t.Fatal("case-qos has no class video of one rule marking replies")
	}
	var st proofStats
	af31 := clone(old)
	af31.QoS[video].DSCP = 26
	got := string(change(t, old, af31, changeOpts))
	if strings.Count(got, "\n") != 6 || !strings.Contains(got, "set diffservcode-forward 011010\n") || !strings.Contains(got, "set diffservcode-rev 011010\n") {
		t.Errorf("AF41 -> AF31:\n%s", got)
	}
	proveChange(t, old, af31, &st)
	proveChange(t, af31, old, &st)

	cs1 := clone(old)
	cs1.QoS[video].DSCP = 8 // a lower priority too
	got = string(change(t, old, cs1, changeOpts))
	if !strings.Contains(got, "config firewall shaper traffic-shaper\n    edit \"tw-qos-video\"\n        set priority low\n    next\nend\n") {
		t.Errorf("AF41 -> CS1:\n%s", got)
	}
	proveChange(t, old, cs1, &st)

	replies := clone(old)
	replies.QoS[video].Replies = false
	got = string(change(t, old, replies, changeOpts))
	for _, want := range []string{"unset diffservcode-rev", "unset traffic-shaper-reverse", "set diffserv-reverse disable"} {
		if !strings.Contains(got, want) {
			t.Errorf("replies off: no %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "unset diffservcode-rev") > strings.Index(got, "set diffserv-reverse disable") {
		t.Errorf("replies off: the code is unset after the switch that hides it:\n%s", got)
	}
	proveChange(t, old, replies, &st)
	proveChange(t, replies, old, &st)

	swapped := clone(old)
	swapped.QoS[0], swapped.QoS[1] = swapped.QoS[1], swapped.QoS[0]
	got = string(change(t, old, swapped, changeOpts))
	if n := strings.Count(got, "    move "); n != 1 {
		t.Errorf("audio and video swapped: %d moves, want 1:\n%s", n, got)
	}
	proveChange(t, old, swapped, &st)
	proveChange(t, swapped, old, &st)
	if st.qos != st.pairs {
		t.Errorf("%d of %d results had their QoS checked", st.qos, st.pairs)
	}
}

// TestOnePrefixChangeFeed: a 10,000-range provider is above every model's
// group size in the limit table (600-2,500 members), so on FortiOS it is a
// threat feed; one range added or removed is then one line of the feed file
// and no CLI command at all (the box fetches the file), and the box model
// decides from configuration and feed as the IR does.
func TestOnePrefixChangeFeed(t *testing.T) {
	old := largeProgram(t, 10_000)
	if cs := (Backend{}).Check(old, backends.Options{Params: map[string]string{"model": "FG-1000F"}}); len(cs) == 0 {
		t.Fatal("a 10,000-range group fits the largest model's table; the premise of this test is gone")
	}
	new := onePrefixMore(old)
	const base = "https://feeds.example.com/turnwall/"
	opts := backends.Options{Params: map[string]string{"model": "FG-1000F", "feed-above": "1000", "feed-url": base}}
	for _, pair := range [][2]*ir.Program{{old, new}, {new, old}} {
		files, err := Backend{}.Change(pair[0], pair[1], opts)
		if err != nil {
			t.Fatal(err)
		}
		if files[0].Name != changeFile || strings.TrimSpace(string(files[0].Data)) != "" {
			t.Errorf("a one-range change of a feed gave a script:\n%s", files[0].Data)
		}
		before, err := Backend{}.Change(nil, pair[0], opts)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for _, f := range files[1:] {
			for _, g := range before[1:] {
				if g.Name == f.Name {
					changed += diffLines(string(g.Data), string(f.Data))
				}
			}
		}
		if changed != 1 {
			t.Errorf("the feed files differ in %d lines, want 1", changed)
		}
		t.Logf("script %d bytes, %d feed files, %d feed lines changed", len(strings.TrimSpace(string(files[0].Data))), len(files)-1, changed)
		feeds, err := ReadFeeds(base, files)
		if err != nil {
			t.Fatal(err)
		}
		box, err := NewBox(nil, 10000, 10999, zonesOf(pair[1]), feeds)
		if err != nil {
			t.Fatal(err)
		}
		if err := box.Apply(before[0].Data, nil); err != nil {
			t.Fatal(err)
		}
		cfg := box.Config()
		for _, pkt := range backendtest.Packets(pair[1], 7, 2000) {
			if got, want := cfg.Decide(pkt).Action, pair[1].Allows(pkt).Action; got != want {
				t.Fatalf("%v: box with the new feed says %s, the IR %s", pkt, got, want)
			}
		}
	}
}

// diffLines counts the lines in one text and not the other (both sorted
// prefix lists).
func diffLines(a, b string) int {
	in := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		in[l]++
	}
	n := 0
	for _, l := range strings.Split(b, "\n") {
		if in[l] > 0 {
			in[l]--
		} else {
			n++
		}
	}
	for _, c := range in {
		n += c
	}
	return n
}
