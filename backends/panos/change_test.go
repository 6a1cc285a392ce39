package panos

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// foreignConfig is what the box holds before turnwall: a DNS rule above
// turnwall's rules, a web rule and a block rule below them, objects of its
// own, and QoS of its own (a profile, an interface using it, a QoS rule for
// its phones, a marking on its DNS rule). None of it carries turnwall's
// prefixes or its QoS profile.
const foreignConfig = `set address corp-dns ip-netmask 192.0.2.53/32
set address-group corp-dns-servers static [ corp-dns ]
set service corp-dns-udp protocol udp port 53
set service corp-web-tcp protocol tcp port 80,8080
set service-group corp-web members [ corp-web-tcp ]
set rulebase security rules allow-dns from any to any source any destination corp-dns-servers source-user any application any service corp-dns-udp action allow log-end yes
set rulebase security rules corp-web from any to any source any destination any source-user any application any service corp-web action allow log-end yes description "web browsing on every VLAN"
set rulebase security rules block-bad from any to any source [ 203.0.113.0/24 ] destination any source-user any application any service any action deny
set network qos profile site-qos class class1 priority real-time
set network qos profile site-qos class class4 priority low
set network qos interface ethernet1/8 enabled yes regular-traffic default-group qos-profile site-qos
set rulebase security rules allow-dns qos marking ip-dscp cs2
set rulebase qos rules site-voip from any to any source [ 198.18.0.0/15 ] destination any source-user any application any service any action class 1 description "the site's own phones"
`

// placed is the placement the property tests use: turnwall's rules between
// the box's DNS rule and its web rule.
var placed = map[string]string{"position": "before:corp-web"}

func script(t testing.TB, old, new *ir.Program, opts backends.Options) []byte {
	t.Helper()
	files, err := Backend{}.Change(old, new, opts)
	if err != nil {
		t.Fatalf("Change: %v", err)
	}
	if len(files) != 1 || files[0].Name != "panos-change.set" {
		t.Fatalf("Change files %v", files)
	}
	again, err := Backend{}.Change(old, new, opts)
	if err != nil || string(again[0].Data) != string(files[0].Data) {
		t.Fatal("Change is not deterministic")
	}
	return files[0].Data
}

// box is a model holding the foreign configuration and then prog's part.
func box(t testing.TB, prog *ir.Program, opts backends.Options) *Model {
	t.Helper()
	m, err := NewModel(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply([]byte(foreignConfig), nil); err != nil {
		t.Fatalf("foreign configuration: %v", err)
	}
	if prog != nil {
		if err := m.Apply(script(t, nil, prog, opts), nil); err != nil {
			t.Fatalf("first install: %v", err)
		}
	}
	return m
}

// pairStats is what one checked pair measured.
type pairStats struct {
	implLines, backoutLines, steps, packets int
	qosChecked                              int // scripts whose result's QoS was checked
}

// checkPair proves one change on the box model: implementation and backout
// exact, the foreign configuration byte for byte intact, and at every step
// no packet both versions decide alike decided otherwise.
func checkPair(t *testing.T, name string, old, new *ir.Program, opts backends.Options, maxPkts int) pairStats {
	t.Helper()
	var st pairStats
	foreignOnly := box(t, nil, opts)
	foreign := foreignOnly.Foreign()
	mOld, mNew := box(t, old, opts), box(t, new, opts)
	ownedOld, ownedNew := mOld.Owned(), mNew.Owned()
	if mOld.Foreign() != foreign || mNew.Foreign() != foreign {
		t.Fatalf("%s: the first install changed the foreign configuration:\n%s", name, mOld.Foreign())
	}
	cfgOld, cfgNew, cfgForeign := mOld.Config(), mNew.Config(), foreignOnly.Config()

	var pkts []ir.Packet
	for _, p := range []*ir.Program{old, new} {
		if p != nil {
			pkts = append(pkts, backendtest.Packets(p, 3, maxPkts/2)...)
		}
	}
	st.packets = len(pkts)
	dOld := make([]ir.Action, len(pkts))
	dNew := make([]ir.Action, len(pkts))
	for i, pkt := range pkts {
		dOld[i], dNew[i] = cfgOld.Decide(pkt).Action, cfgNew.Decide(pkt).Action
		// The box decides as the IR wherever a policy rule decides (but for
		// the box's own DNS rule above turnwall's), and as before turnwall
		// everywhere else.
		for _, v := range []struct {
			p   *ir.Program
			got ir.Action
		}{{old, dOld[i]}, {new, dNew[i]}} {
			if v.p == nil {
				continue
			}
			want := v.p.Allows(pkt)
			if want.Rule == nil || pkt.Dst == netip.MustParseAddr("192.0.2.53") {
				if want.Rule == nil && v.got != cfgForeign.Decide(pkt).Action {
					t.Fatalf("%s: %s: no policy rule matches, the box with turnwall says %s, the box alone %s", name, describe(pkt), v.got, cfgForeign.Decide(pkt).Action)
				}
				continue
			}
			if v.got != want.Action {
				t.Fatalf("%s: %s: the box says %s, the policy %s by %s", name, describe(pkt), v.got, want.Action, want.Rule.Name)
			}
		}
	}
	checkSteps := func(label string, m *Model, data []byte) {
		t.Helper()
		err := m.Apply(data, func(c backends.Config) {
			st.steps++
			for i, pkt := range pkts {
				if dOld[i] != dNew[i] {
					continue
				}
				if got := c.Decide(pkt).Action; got != dOld[i] {
					t.Fatalf("%s %s: after step %d a packet both versions %s is %s: %s\nscript:\n%s", name, label, st.steps, dOld[i], got, describe(pkt), data)
				}
			}
		})
		if err != nil {
			t.Fatalf("%s %s: %v\nscript:\n%s", name, label, err, data)
		}
	}
	checkQoS := func(label string, m *Model, p *ir.Program) {
		t.Helper()
		if p == nil || len(p.QoS) == 0 {
			if strings.Contains(m.Owned(), "qos ") {
				t.Fatalf("%s %s: turnwall's QoS is left on the box:\n%s", name, label, m.Owned())
			}
			return
		}
		if backendtest.QoSSampled(p, maxPkts/3) {
			backendtest.CheckQoS(t, p, m.Config(), backendtest.EquivOptions{QoSSession: true}, maxPkts/3, true)
			st.qosChecked++
		}
	}
	impl := script(t, old, new, opts)
	st.implLines = backendtest.CountLines(impl)
	checkSteps("implementation", mOld, impl)
	if got := mOld.Owned(); got != ownedNew {
		t.Fatalf("%s: running(OLD)+implementation differs from running(NEW):\n%s\nscript:\n%s", name, lineDiff(got, ownedNew), impl)
	}
	checkQoS("implementation", mOld, new)
	if mOld.Foreign() != foreign {
		t.Fatalf("%s: the implementation changed the foreign configuration", name)
	}
	backout := script(t, new, old, opts)
	st.backoutLines = backendtest.CountLines(backout)
	checkSteps("backout", mOld, backout)
	if got := mOld.Owned(); got != ownedOld {
		t.Fatalf("%s: running(NEW)+backout differs from running(OLD):\n%s\nscript:\n%s", name, lineDiff(got, ownedOld), backout)
	}
	checkQoS("backout", mOld, old)
	if mOld.Foreign() != foreign {
		t.Fatalf("%s: the backout changed the foreign configuration", name)
	}
	return st
}

func describe(p ir.Packet) string {
	return fmt.Sprintf("%s %s:%d -> %s:%d (%s) zones %s->%s", p.Proto, p.Src, p.SrcPort, p.Dst, p.DstPort, p.DstHost, p.FromZone, p.ToZone)
}

func lineDiff(got, want string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		g[l] = true
	}
	for _, l := range strings.Split(want, "\n") {
		w[l] = true
	}
	var out []string
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestChangeExamples: every example and golden case, installed on a box
// with a configuration of its own, removed again, and changed to and from a
// mutated version of itself.
func TestChangeExamples(t *testing.T) {
	opts := backends.Options{Params: placed}
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			st := checkPair(t, c.Name+" (install)", nil, c.Program, opts, 1500)
			rm := checkPair(t, c.Name+" (removal)", c.Program, nil, opts, 1500)
			m := box(t, c.Program, opts)
			if err := m.Apply(script(t, c.Program, nil, opts), nil); err != nil {
				t.Fatal(err)
			}
			if m.Owned() != "" {
				t.Errorf("after the full removal turnwall still owns:\n%s", m.Owned())
			}
			rng := rand.New(rand.NewPCG(99, uint64(len(c.Name))))
			mut := mutate(c.Program, rng, 3)
			ch := checkPair(t, c.Name+" (mutated)", c.Program, mut, opts, 1500)
			t.Logf("%s: install %d lines, removal %d lines, a 3-mutation change %d lines (backout %d), %d packets at each of %d steps",
				c.Name, st.implLines, rm.implLines, ch.implLines, ch.backoutLines, ch.packets, st.steps+rm.steps+ch.steps)
		})
	}
}

// TestChangeRandomPairs: 200 policy pairs made by mutating the examples
// (deterministic seed), each proved on the box model.
func TestChangeRandomPairs(t *testing.T) {
	cases := backendtest.Cases(t)
	opts := backends.Options{Params: placed}
	rng := rand.New(rand.NewPCG(17, 2026))
	const pairs = 200
	total, maxLines, steps, swaps, qosPairs, qosChecked := 0, 0, 0, 0, 0, 0
	for i := 0; i < pairs; i++ {
		base := cases[i%len(cases)]
		old := mutate(base.Program, rng, rng.IntN(3))
		new := mutate(old, rng, 1+rng.IntN(3))
		st := checkPair(t, fmt.Sprintf("pair %d (%s)", i, base.Name), old, new, opts, 300)
		sc := string(script(t, old, new, opts))
		if strings.Contains(sc, "\nrename ") {
			swaps++
		}
		if strings.Contains(sc, " qos ") {
			qosPairs++
		}
		qosChecked += st.qosChecked
		total += st.implLines
		steps += st.steps
		if st.implLines > maxLines {
			maxLines = st.implLines
		}
	}
	t.Logf("%d random pairs proved (%d changed in place, %d by building the new rules beside the old): implementation scripts %d lines in all (at most %d), %d steps checked; %d implementation scripts change QoS, %d results' QoS decisions checked", pairs, pairs-swaps, swaps, total, maxLines, steps, qosPairs, qosChecked)
	if qosPairs < pairs/10 {
		t.Errorf("only %d of %d pairs change QoS", qosPairs, pairs)
	}
}

// clone copies a program through its JSON form.
func clone(p *ir.Program) *ir.Program {
	data, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	var out ir.Program
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	out.Index()
	return &out
}

// mutate applies n random edits: a range added to or removed from an
// address set, a rule removed, added (a copy with the other action) or
// moved, a service's ports changed, a rule's destination changed.
func mutate(p *ir.Program, rng *rand.Rand, n int) *ir.Program {
	q := clone(p)
	for k := 0; k < n; k++ {
		switch rng.IntN(8) {
		case 0: // add a range
			if len(q.AddressSets) == 0 {
				continue
			}
			s := &q.AddressSets[rng.IntN(len(q.AddressSets))]
			var b netipx.IPSetBuilder
			for _, pf := range s.V4 {
				b.AddPrefix(pf)
			}
			set, _ := b.IPSet()
			pf := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + rng.IntN(63)), byte(rng.IntN(256)), 0}), 24)
			if set.OverlapsPrefix(pf) {
				continue
			}
			s.V4 = append(s.V4, pf)
			sortPrefixes(s.V4)
		case 1: // remove a range
			s := &q.AddressSets[rng.IntN(len(q.AddressSets))]
			if len(s.V4) > 1 {
				i := rng.IntN(len(s.V4))
				s.V4 = append(s.V4[:i:i], s.V4[i+1:]...)
			}
		case 2: // remove a rule
			if len(q.Rules) > 1 {
				i := rng.IntN(len(q.Rules))
				q.Rules = append(q.Rules[:i:i], q.Rules[i+1:]...)
			}
		case 3: // add a rule: a copy with the other action, somewhere
			r := q.Rules[rng.IntN(len(q.Rules))]
			r.Name = fmt.Sprintf("mut-%d", rng.IntN(1000))
			if r.Action == ir.Allow {
				r.Action = ir.Deny
			} else {
				r.Action = ir.Allow
			}
			i := rng.IntN(len(q.Rules) + 1)
			dup := false
			for _, x := range q.Rules {
				dup = dup || x.Name == r.Name
			}
			if !dup {
				q.Rules = append(q.Rules[:i:i], append([]ir.Rule{r}, q.Rules[i:]...)...)
			}
		case 4: // move a rule one up
			if len(q.Rules) > 1 {
				i := 1 + rng.IntN(len(q.Rules)-1)
				q.Rules[i-1], q.Rules[i] = q.Rules[i], q.Rules[i-1]
			}
		case 5: // change a service's ports
			s := &q.Services[rng.IntN(len(q.Services))]
			if len(s.Entries) == 0 {
				continue
			}
			e := &s.Entries[rng.IntN(len(s.Entries))]
			lo := uint16(20000 + rng.IntN(20000))
			e.Ports = append(append([]ir.PortRange(nil), e.Ports...), ir.PortRange{First: lo, Last: lo + uint16(rng.IntN(50))})
			sort.Slice(e.Ports, func(i, j int) bool { return e.Ports[i].First < e.Ports[j].First })
			e.Ports = mergePorts(e.Ports)
		case 6: // change a rule's destination
			r := &q.Rules[rng.IntN(len(q.Rules))]
			r.Dst = q.AddressSets[rng.IntN(len(q.AddressSets))].Name
		case 7: // the qos block: a class's DSCP, replies, order, rules
			backendtest.MutateQoS(q, rng)
		}
	}
	q.Index()
	return q
}

func mergePorts(rs []ir.PortRange) []ir.PortRange {
	var out []ir.PortRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.First) <= uint32(out[n-1].Last)+1 {
			if r.Last > out[n-1].Last {
				out[n-1].Last = r.Last
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Hostile names and descriptions change no line of a change script's
// structure (install, change, removal), and the box model still applies it.
func TestChangeHostile(t *testing.T) {
	opts := backends.Options{Params: placed}
	for _, c := range backendtest.Cases(t) {
		hostile, benign := backendtest.HostilePair(c.Program)
		hostileNext, benignNext := backendtest.HostilePair(mutate(c.Program, rand.New(rand.NewPCG(3, 3)), 2))
		for _, pair := range [][4]*ir.Program{{nil, hostile, nil, benign}, {hostile, hostileNext, benign, benignNext}, {hostile, nil, benign, nil}} {
			h, b := script(t, pair[0], pair[1], opts), script(t, pair[2], pair[3], opts)
			if hl, bl := backendtest.CountLines(h), backendtest.CountLines(b); hl != bl {
				t.Fatalf("%s: hostile text changed the script's structure: %d lines against %d", c.Name, hl, bl)
			}
			if r, ok := backendtest.BidiFree(h); !ok {
				t.Fatalf("%s: hostile text put %U into the script", c.Name, r)
			}
		}
		m := box(t, hostile, opts)
		if err := m.Apply(script(t, hostile, nil, opts), nil); err != nil || m.Owned() != "" {
			t.Fatalf("%s: hostile removal: %v\n%s", c.Name, err, m.Owned())
		}
	}
}

// TestQoSChangeMinimal: a DSCP change of one class is its class's priority
// and the marking of the class's security rules, nothing else; replies of a
// class do not exist on PAN-OS (sessions are marked both ways), so toggling
// them changes nothing; each script is proved on the box model.
func TestQoSChangeMinimal(t *testing.T) {
	old := backendtest.CaseProgram(t, "case-qos")
	opts := backends.Options{Params: placed}
	video := backendtest.QoSClass(t, old, "video")
	af31 := clone(old)
	af31.QoS[video].DSCP = 26
	got := string(script(t, old, af31, opts))
	want := "set network qos profile turnwall-qos class class2 priority medium\n" +
		"set rulebase security rules tw-floor3.video.media qos marking ip-dscp af31\n"
	if got != want {
		t.Errorf("AF41 -> AF31:\n%s\nwant\n%s", got, want)
	}
	checkPair(t, "AF41 -> AF31", old, af31, opts, 1500)

	af42 := clone(old)
	af42.QoS[video].DSCP = 36 // same priority (high): the marking only
	if got := string(script(t, old, af42, opts)); got != "set rulebase security rules tw-floor3.video.media qos marking ip-dscp af42\n" {
		t.Errorf("AF41 -> AF42:\n%s", got)
	}
	replies := clone(old)
	replies.QoS[video].Replies = !replies.QoS[video].Replies
	if got := script(t, old, replies, opts); len(got) != 0 {
		t.Errorf("replies toggled:\n%s", got)
	}
	swapped := clone(old)
	swapped.QoS[0], swapped.QoS[1] = swapped.QoS[1], swapped.QoS[0]
	st := checkPair(t, "classes swapped", old, swapped, opts, 1500)
	if st.implLines > 11 {
		t.Errorf("audio and video swapped: %d lines (2 priorities, 8 classes, 1 move)\n%s", st.implLines, script(t, old, swapped, opts))
	}
}

// TestQoSSnapshotIsInstall: the snapshot panos.set, loaded on the box, holds
// the same turnwall part as the first install Change(nil, p), QoS included.
func TestQoSSnapshotIsInstall(t *testing.T) {
	opts := backends.Options{Params: placed}
	for _, c := range backendtest.Cases(t) {
		m := box(t, nil, opts)
		if err := m.Apply(backendtest.Emit(t, Backend{}, c.Program, opts)[0].Data, nil); err != nil {
			t.Fatalf("%s: the snapshot: %v", c.Name, err)
		}
		if got, want := m.Owned(), box(t, c.Program, opts).Owned(); got != want {
			t.Errorf("%s: the snapshot and the first install differ:\n%s", c.Name, lineDiff(got, want))
		}
	}
}
