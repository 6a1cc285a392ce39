package asa

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// site is a box's own configuration around turnwall's block: for every
// zone an existing inbound ACL with two lines above the block (a DNS permit
// using the box's own group) and entries below it, bound to the zone's
// interfaces.
type site struct {
	zones  []ir.Zone
	acls   map[string]string // zone -> ACL
	above  string            // objects and the lines above the block
	below  string            // the lines below it
	bind   string
	prefix *Model // box with only the lines above the block
	suffix *Model // box with only the lines below it
	pre    backends.Config
	suf    backends.Config
	empty  *Model // the whole site, without turnwall
}

const siteObjects = "object-group network SITE-DNS\n network-object host 10.1.1.53\n network-object 2001:db8:53::/48\n" +
	"object network SITE-HOST\n host 192.0.2.66\n"

// siteQoS is the box's own Modular Policy Framework: the default global
// inspection policy, and a voice class of its own queued on its management
// interface.
const siteQoS = "access-list SITE_VOICE extended permit udp 10.1.1.0 255.255.255.0 any\n" +
	"class-map inspection_default\n match default-inspection-traffic\n" +
	"class-map site-voice\n match access-list SITE_VOICE\n" +
	"policy-map global_policy\n class inspection_default\n  inspect dns\n" +
	"policy-map site-qos\n class site-voice\n  priority\n" +
	"service-policy global_policy global\n" +
	"priority-queue mgmt0\n" +
	"service-policy site-qos interface mgmt0\n"

func newSite(t testing.TB, zones []ir.Zone) *site {
	t.Helper()
	s := &site{zones: zones, acls: map[string]string{}}
	names := make([]string, 0, len(zones))
	for _, z := range zones {
		names = append(names, z.Name)
	}
	sort.Strings(names)
	var above, below, bind strings.Builder
	above.WriteString(siteObjects)
	for i, z := range names {
		acl := fmt.Sprintf("SITE_Z%d_IN", i)
		s.acls[z] = acl
		fmt.Fprintf(&above, "access-list %s remark site: DNS to the resolvers\n", acl)
		fmt.Fprintf(&above, "access-list %s extended permit udp any object-group SITE-DNS eq 53\n", acl)
		fmt.Fprintf(&below, "access-list %s remark site: below turnwall\n", acl)
		fmt.Fprintf(&below, "access-list %s extended deny ip object SITE-HOST any\n", acl)
		fmt.Fprintf(&below, "access-list %s extended permit udp 10.0.0.0 255.0.0.0 any\n", acl)
		fmt.Fprintf(&below, "access-list %s extended permit tcp any any range 1 1024\n", acl)
		for _, zz := range zones {
			if zz.Name == z {
				for _, itf := range zz.Interfaces {
					fmt.Fprintf(&bind, "access-group %s in interface %s\n", acl, itf)
				}
			}
		}
	}
	bind.WriteString(siteQoS)
	s.above, s.below, s.bind = above.String(), below.String(), bind.String()
	s.prefix = s.box(t, s.above+s.bind)
	s.suffix = s.box(t, siteObjects+s.below+s.bind)
	s.empty = s.box(t, s.above+s.below+s.bind)
	s.pre, s.suf = s.prefix.Config(), s.suffix.Config()
	return s
}

func (s *site) box(t testing.TB, text string) *Model {
	t.Helper()
	m := NewModel(s.zones, "TW-")
	if err := m.Apply([]byte(text), nil); err != nil {
		t.Fatalf("site configuration: %v", err)
	}
	return m
}

func (s *site) params(defaultRule string) map[string]string {
	var acl []string
	for z, a := range s.acls {
		if strings.ContainsAny(z, `,:" `) || z != strings.TrimSpace(z) {
			z = strconv.Quote(z)
		}
		acl = append(acl, z+":"+a)
	}
	sort.Strings(acl)
	return map[string]string{"acl": strings.Join(acl, ","), "position": "line:3", "default-rule": defaultRule}
}

// ref is what the box must decide with p's block in place: the box's lines
// above, else the first rule of p that matches (the egress zone is left to
// routing), else p's default when default-rule=emit, else the box's lines
// below.
func (s *site) ref(p *ir.Program, emitDefault bool, pkt ir.Packet) ir.Action {
	if d := s.pre.Decide(pkt); d.Rule != "" {
		return d.Action
	}
	if p != nil {
		q := pkt
		q.ToZone = ""
		for i := range p.Rules {
			if p.Matches(&p.Rules[i], q) {
				return p.Rules[i].Action
			}
		}
		if emitDefault {
			return p.Policy.DefaultAction
		}
	}
	return s.suf.Decide(pkt).Action
}

func change(t testing.TB, old, new *ir.Program, params map[string]string) []byte {
	t.Helper()
	files, err := Backend{}.Change(old, new, backends.Options{Params: params})
	if err != nil {
		t.Fatalf("change: %v", err)
	}
	again, _ := Backend{}.Change(old, new, backends.Options{Params: params})
	if len(files) != 1 || len(again) != 1 || string(files[0].Data) != string(again[0].Data) {
		t.Fatal("change script is not deterministic")
	}
	return files[0].Data
}

// commands counts a script's command lines (not comments).
func commands(script []byte) int {
	n := 0
	for _, l := range strings.Split(string(script), "\n") {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, ":") {
			n++
		}
	}
	return n
}

func (s *site) install(t testing.TB, p *ir.Program, params map[string]string) *Model {
	t.Helper()
	m := s.box(t, s.above+s.below+s.bind)
	if err := m.Apply(change(t, nil, p, params), nil); err != nil {
		t.Fatalf("first install: %v", err)
	}
	return m
}

type pairStats struct {
	pairs, steps, packets, implLines, backLines, maxLines int
	qos, qosScripts                                       int // results whose QoS was checked, scripts changing QoS
}

// checkPair proves Change(old, new) and Change(new, old) on the box model:
// exact end states, the box's own configuration untouched, and at every
// step every packet both versions decide alike decided so.
func checkPair(t *testing.T, s *site, old, new *ir.Program, params map[string]string, st *pairStats) {
	t.Helper()
	emitDefault := params["default-rule"] == "emit"
	var pkts []ir.Packet
	for _, p := range []*ir.Program{old, new} {
		if p != nil {
			pkts = append(pkts, backendtest.Packets(p, 3, 120)...)
		}
	}
	var agree []ir.Packet
	var want []ir.Action
	for _, pkt := range pkts {
		if pkt.Src.Is4() != pkt.Dst.Is4() && pkt.DstHost == "" {
			continue
		}
		a, b := s.ref(old, emitDefault, pkt), s.ref(new, emitDefault, pkt)
		if a == b {
			agree, want = append(agree, pkt), append(want, a)
		}
	}
	mOld, mNew := s.install(t, old, params), s.install(t, new, params)
	for _, c := range []struct {
		m *Model
		p *ir.Program
	}{{mOld, old}, {mNew, new}} {
		if c.m.Foreign() != s.empty.Foreign() {
			t.Fatalf("install changed the box's own configuration:\n%s\nwant\n%s", c.m.Foreign(), s.empty.Foreign())
		}
		cfg := c.m.Config()
		for _, pkt := range pkts {
			if pkt.Src.Is4() != pkt.Dst.Is4() && pkt.DstHost == "" {
				continue
			}
			if got, w := cfg.Decide(pkt).Action, s.ref(c.p, emitDefault, pkt); got != w {
				t.Fatalf("installed: %+v decided %s, want %s", pkt, got, w)
			}
		}
	}
	for _, dir := range []struct {
		name       string
		from, to   *ir.Program
		start, end *Model
	}{{"implementation", old, new, mOld, mNew}, {"backout", new, old, mNew, mOld}} {
		script := change(t, dir.from, dir.to, params)
		m := s.install(t, dir.from, params)
		step := 0
		err := m.Apply(script, func(cfg backends.Config) {
			step++
			for i, pkt := range agree {
				if got := cfg.Decide(pkt).Action; got != want[i] {
					t.Fatalf("%s step %d: %+v decided %s; both versions %s\n%s", dir.name, step, pkt, got, want[i], script)
				}
			}
		})
		if err != nil {
			t.Fatalf("%s: %v\n%s", dir.name, err, script)
		}
		if m.Owned() != dir.end.Owned() {
			t.Fatalf("%s: running(from)+script is not running(to):\n%s\nwant\n%s\nscript\n%s", dir.name, m.Owned(), dir.end.Owned(), script)
		}
		if m.Foreign() != s.empty.Foreign() {
			t.Fatalf("%s changed the box's own configuration", dir.name)
		}
		if dir.to != nil && backendtest.QoSSampled(dir.to, 300) {
			backendtest.CheckQoS(t, dir.to, m.Config(), backendtest.EquivOptions{QoSPerPacket: true, QoSClassOnly: true}, 300, true)
			st.qos++
		}
		if strings.Contains(string(script), "policy-map ") || strings.Contains(string(script), "access-list TW-qos") {
			st.qosScripts++
		}
		n := commands(script)
		st.steps += step
		if dir.name == "implementation" {
			st.implLines += n
		} else {
			st.backLines += n
		}
		st.maxLines = max(st.maxLines, n)
	}
	// Full removal leaves the site as it was.
	if old != nil {
		m := s.install(t, old, params)
		if err := m.Apply(change(t, old, nil, params), nil); err != nil {
			t.Fatalf("removal: %v", err)
		}
		if m.Owned() != "" || m.Foreign() != s.empty.Foreign() {
			t.Fatalf("removal left:\n%s", m.Owned())
		}
	}
	st.pairs++
	st.packets += len(agree)
}

// clone copies a program through its JSON form.
func clone(t testing.TB, p *ir.Program) *ir.Program {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q ir.Program
	if err := json.Unmarshal(data, &q); err != nil {
		t.Fatal(err)
	}
	q.Root = p.Root
	q.Index()
	return &q
}

// mutate changes a copy of p n times: a range added to or removed from an
// address set, a rule removed, added (a copy of another with the other
// action, zone or logging) or its logging toggled, a port added to a
// service.
func mutate(t testing.TB, p *ir.Program, rng *rand.Rand, n int) *ir.Program {
	q := clone(t, p)
	for k := 0; k < n; k++ {
		switch rng.IntN(7) {
		case 0, 1: // add a range
			if len(q.AddressSets) == 0 {
				continue
			}
			s := &q.AddressSets[rng.IntN(len(q.AddressSets))]
			var b netipx.IPSetBuilder
			for _, pf := range append(append([]netip.Prefix(nil), s.V4...), s.V6...) {
				b.AddPrefix(pf)
			}
			if rng.IntN(3) == 0 {
				b.AddPrefix(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(rng.IntN(256))}), 40))
			} else {
				b.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + rng.IntN(200)), byte(rng.IntN(256)), byte(rng.IntN(256))}), 24))
			}
			set, _ := b.IPSet()
			s.V4, s.V6 = nil, nil
			for _, pf := range set.Prefixes() {
				if pf.Addr().Is4() {
					s.V4 = append(s.V4, pf)
				} else {
					s.V6 = append(s.V6, pf)
				}
			}
		case 2: // remove a range
			s := &q.AddressSets[rng.IntN(len(q.AddressSets))]
			if len(s.V4) > 0 {
				i := rng.IntN(len(s.V4))
				s.V4 = append(s.V4[:i:i], s.V4[i+1:]...)
			}
		case 3: // remove a rule
			if len(q.Rules) > 1 {
				i := rng.IntN(len(q.Rules))
				q.Rules = append(q.Rules[:i:i], q.Rules[i+1:]...)
			}
		case 4: // add a rule
			if len(q.Rules) == 0 {
				continue
			}
			r := q.Rules[rng.IntN(len(q.Rules))]
			r.Name = fmt.Sprintf("added-%d", rng.IntN(1000))
			r.Origin.Source.Line = 900 + rng.IntN(100)
			switch rng.IntN(3) {
			case 0:
				if r.Action == ir.Allow {
					r.Action = ir.Deny
				} else {
					r.Action = ir.Allow
				}
			case 1:
				if len(q.Zones) > 0 {
					r.FromZone = q.Zones[rng.IntN(len(q.Zones))].Name
				}
			default:
				r.Log = !r.Log
			}
			i := rng.IntN(len(q.Rules) + 1)
			q.Rules = append(q.Rules[:i:i], append([]ir.Rule{r}, q.Rules[i:]...)...)
		case 5: // a port more, or logging toggled
			if rng.IntN(2) == 0 && len(q.Rules) > 0 {
				i := rng.IntN(len(q.Rules))
				q.Rules[i].Log = !q.Rules[i].Log
				continue
			}
			if len(q.Services) == 0 {
				continue
			}
			s := &q.Services[rng.IntN(len(q.Services))]
			if len(s.Entries) == 0 {
				continue
			}
			e := &s.Entries[rng.IntN(len(s.Entries))]
			if len(e.Ports) > 0 {
				port := uint16(1025 + rng.IntN(60000))
				e.Ports = mergePorts(append(e.Ports, ir.PortRange{First: port, Last: port}))
			}
		case 6: // the qos block: a class's DSCP, replies, order, rules
			backendtest.MutateQoS(q, rng)
		}
	}
	q.Index()
	return clone(t, q)
}

func mergePorts(rs []ir.PortRange) []ir.PortRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].First < rs[j].First })
	var out []ir.PortRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.First) <= uint32(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestChangeExamples: for every example, first install, removal, and a
// change to a mutated version and back, both default-rule settings.
func TestChangeExamples(t *testing.T) {
	var st pairStats
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s := newSite(t, c.Program.Zones)
			rng := rand.New(rand.NewPCG(17, 1))
			for _, def := range []string{"none", "emit"} {
				checkPair(t, s, nil, c.Program, s.params(def), &st)
				checkPair(t, s, c.Program, mutate(t, c.Program, rng, 2), s.params(def), &st)
				checkPair(t, s, c.Program, c.Program, s.params(def), &st)
			}
		})
	}
	t.Logf("examples: %d pairs, %d script steps, %d agreeing packets checked per step; implementation %d lines, backout %d, largest script %d",
		st.pairs, st.steps, st.packets, st.implLines, st.backLines, st.maxLines)
}

// TestChangeRandomPairs: 200 pairs of mutated example IRs (deterministic
// seed), checked as TestChangeExamples.
func TestChangeRandomPairs(t *testing.T) {
	cases := backendtest.Cases(t)
	rng := rand.New(rand.NewPCG(2026, 17))
	var st pairStats
	sites := map[string]*site{}
	for i := 0; i < 200; i++ {
		c := cases[i%len(cases)]
		s := sites[c.Name]
		if s == nil {
			s = newSite(t, c.Program.Zones)
			sites[c.Name] = s
		}
		a := mutate(t, c.Program, rng, rng.IntN(3))
		b := mutate(t, a, rng, 1+rng.IntN(3))
		def := "none"
		if i%3 == 2 {
			def = "emit"
		}
		t.Run(fmt.Sprintf("%03d-%s", i, c.Name), func(t *testing.T) {
			checkPair(t, s, a, b, s.params(def), &st)
		})
	}
	if st.pairs != 200 {
		t.Fatalf("%d pairs checked", st.pairs)
	}
	t.Logf("random: %d pairs, %d script steps, %d agreeing packets checked per step; implementation %d lines (mean %.1f), backout %d, largest script %d; %d scripts change QoS, %d results' QoS decisions checked",
		st.pairs, st.steps, st.packets, st.implLines, float64(st.implLines)/float64(st.pairs), st.backLines, st.maxLines, st.qosScripts, st.qos)
	if st.qosScripts < st.pairs/10 {
		t.Errorf("only %d scripts change QoS", st.qosScripts)
	}
}

// TestQoSChangeMinimal: the ASA sets no DSCP, so a DSCP change of one class
// is its ACLs' remark replaced (two commands per zone of the class); two
// classes swapped are turnwall's policy-maps edited in place (the later
// class removed and appended again), never a second service-policy; each
// script is proved on the box model with the site's own MPF configuration.
func TestQoSChangeMinimal(t *testing.T) {
	old := backendtest.CaseProgram(t, "case-qos")
	s := newSite(t, old.Zones)
	params := s.params("none")
	video := backendtest.QoSClass(t, old, "video")
	var st pairStats
	af31 := clone(t, old)
	af31.QoS[video].DSCP = 26
	sc := string(change(t, old, af31, params))
	if n := commands([]byte(sc)); n != 4 || strings.Count(sc, "dscp AF31") != 2 || strings.Count(sc, "no access-list TW-qos-video-") != 2 {
		t.Errorf("AF41 -> AF31: %d commands:\n%s", n, sc)
	}
	checkPair(t, s, old, af31, params, &st)

	swapped := clone(t, old)
	swapped.QoS[0], swapped.QoS[1] = swapped.QoS[1], swapped.QoS[0]
	sc = ""
	for _, l := range strings.Split(string(change(t, old, swapped, params)), "\n") {
		if !strings.HasPrefix(l, ":") {
			sc += l + "\n"
		}
	}
	if strings.Contains(sc, "service-policy") || strings.Contains(sc, "class-map") || !strings.Contains(sc, " no class TW-qos-audio-") {
		t.Errorf("classes swapped:\n%s", sc)
	}
	checkPair(t, s, old, swapped, params, &st)

	replies := clone(t, old)
	replies.QoS[video].Replies = !replies.QoS[video].Replies
	checkPair(t, s, old, replies, params, &st)
	none := clone(t, old)
	none.QoS = nil
	checkPair(t, s, old, none, params, &st)
	if st.qos != 7 { // both directions of each pair, but the one to no qos block
		t.Errorf("%d results had their QoS checked", st.qos)
	}
}
