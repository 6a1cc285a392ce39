package asa

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// TestPlacementGolden: the first install into the box's existing ACLs for
// every example: goldens, only inserts at line N, every remark marked as
// turnwall's, no any-any entry unless default-rule=emit.
func TestPlacementGolden(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s := newSite(t, c.Program.Zones)
			files := backendtest.Emit(t, Backend{}, c.Program, backends.Options{Params: s.params("none")})
			backendtest.Golden(t, "asa", "placed-"+c.Name, files)
			out := string(files[0].Data)
			checkSafeText(t, files[0].Data)
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, " any") {
					t.Errorf("any-any without default-rule=emit: %q", l)
				}
				if strings.HasPrefix(l, "access-list ") {
					f := strings.Fields(l)
					if strings.HasPrefix(f[1], "TW-qos-") {
						// A class ACL of the qos block: turnwall's own ACL,
						// named with its prefix, written whole.
						continue
					}
					if f[2] != "line" {
						t.Errorf("not an insert: %q", l)
					}
					if f[4] == "remark" && f[5] != "turnwall" {
						t.Errorf("remark without the ownership mark: %q", l)
					}
				}
				if strings.HasPrefix(l, "access-group") || strings.HasPrefix(l, "clear ") {
					t.Errorf("placement rebinds or clears: %q", l)
				}
			}
			emit := backendtest.Emit(t, Backend{}, c.Program, backends.Options{Params: s.params("emit")})
			if !strings.Contains(string(emit[0].Data), " ip object-group TW-default-all object-group TW-default-all") {
				t.Errorf("default-rule=emit wrote no default entry")
			}
			// turnwall trace re-reads the install: it decides as the IR (the
			// examples' default is deny, which the ASA's implicit deny gives
			// without default-rule=emit too), tracing rules to policy lines.
			for _, f := range [][]backends.File{files, emit} {
				cfg, err := Backend{}.Reader().Read(f)
				if err != nil {
					t.Fatalf("re-reading the install: %v", err)
				}
				backendtest.CheckEquivalent(t, c.Program, cfg, backendtest.EquivOptions{IgnoreEgressZone: true, CheckSource: true}, 2000)
			}
		})
	}
}

// TestPlacementHostile: hostile names and texts change no line of the
// install script's structure, and the box takes it.
func TestPlacementHostile(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			hostile, benign := backendtest.HostilePairPlainInterfaces(c.Program)
			sh, sb := newSite(t, hostile.Zones), newSite(t, benign.Zones)
			hf := backendtest.Emit(t, Backend{}, hostile, backends.Options{Params: sh.params("emit")})
			bf := backendtest.Emit(t, Backend{}, benign, backends.Options{Params: sb.params("emit")})
			if h, b := backendtest.CountLines(hf[0].Data), backendtest.CountLines(bf[0].Data); h != b {
				t.Fatalf("hostile text changed the structure: %d lines against %d", h, b)
			}
			checkSafeText(t, hf[0].Data)
			if err := sh.box(t, sh.above+sh.below+sh.bind).Apply(hf[0].Data, nil); err != nil {
				t.Fatalf("the box refuses the hostile install: %v", err)
			}
		})
	}
}

// bigProvider is program() with a provider of n ranges that no cover merges.
func bigProvider(n int) *ir.Program {
	p := program()
	var v4 []netip.Prefix
	for i := 0; i < n; i++ {
		v4 = append(v4, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + i/32768), byte(i / 128 % 256), byte(i % 128 * 2)}), 32))
	}
	p.AddressSets[1].V4 = v4
	p.Index()
	return p
}

// TestOnePrefixChange: on a 10,000-range provider, adding, removing or
// replacing one range is one group's lines, at most 3, proven on the box.
func TestOnePrefixChange(t *testing.T) {
	base := bigProvider(10000)
	s := newSite(t, base.Zones)
	params := s.params("none")
	added := clone(t, base)
	added.AddressSets[1].V4 = append(added.AddressSets[1].V4, netip.MustParsePrefix("203.0.113.0/24"))
	added.Index()
	removed := clone(t, base)
	removed.AddressSets[1].V4 = removed.AddressSets[1].V4[1:]
	removed.Index()
	replaced := clone(t, removed)
	replaced.AddressSets[1].V4 = append(replaced.AddressSets[1].V4, netip.MustParsePrefix("203.0.113.0/24"))
	replaced.Index()
	for _, c := range []struct {
		name string
		p    *ir.Program
		want string
	}{
		{"add", added, "object-group network TW-net-provider\n network-object 203.0.113.0 255.255.255.0\n"},
		{"remove", removed, "object-group network TW-net-provider\n no network-object host 100.64.0.0\n"},
		{"replace", replaced, "object-group network TW-net-provider\n network-object 203.0.113.0 255.255.255.0\n no network-object host 100.64.0.0\n"},
	} {
		script := change(t, base, c.p, params)
		if n := commands(script); n > 3 || !strings.HasSuffix(string(script), c.want) {
			t.Errorf("%s: %d command lines:\n%s", c.name, n, script)
		}
		var st pairStats
		checkPair(t, s, base, c.p, params, &st)
		t.Logf("%s: %d command lines, backout %d", c.name, commands(script), st.backLines)
	}
}

// TestBeforeRemark: the block goes right above the box's remark, and the
// script says how to check the remark's line first.
func TestBeforeRemark(t *testing.T) {
	p := program()
	s := newSite(t, p.Zones)
	params := s.params("none")
	params["position"] = "before-remark:site: below turnwall@3"
	script := change(t, nil, p, params)
	if !strings.Contains(string(script), ": check first: show access-list SITE_Z0_IN | include remark site: below turnwall\n:   must show it at line 3;") {
		t.Errorf("no check line:\n%s", script)
	}
	m := s.box(t, s.above+s.below+s.bind)
	if err := m.Apply(script, nil); err != nil {
		t.Fatal(err)
	}
	for _, acl := range s.acls {
		entries := m.acls[acl]
		last := -1
		for i, e := range entries {
			if m.ownedEntry(e) {
				last = i
			}
		}
		if last < 0 || entries[last+1] != "remark site: below turnwall" {
			t.Errorf("%s: block not right above the remark: %q", acl, entries)
		}
	}
	// A change afterwards checks the remark below the grown block.
	q := clone(t, p)
	q.Rules = q.Rules[:1]
	q.Index()
	back := change(t, p, q, params)
	if !strings.Contains(string(back), "must show it at line 8;") {
		t.Errorf("check line does not follow the block:\n%s", back)
	}
}

// TestPlacementRejects: bad placement parameters are errors naming what to
// do, from Check (positioned) and from Emit and Change (nothing written).
func TestPlacementRejects(t *testing.T) {
	good := map[string]string{"acl": "inside:INSIDE_IN,outside:OUTSIDE_IN"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := map[string]struct {
		params map[string]string
		want   string
	}{
		"zone missing":       {with("acl", "inside:INSIDE_IN"), `Zone "outside" has no entry in the acl parameter`},
		"unknown zone":       {with("acl", "inside:INSIDE_IN,outside:OUTSIDE_IN,dmz:DMZ_IN"), `names zone "dmz"`},
		"shared ACL":         {with("acl", "inside:IN,outside:IN"), "both name ACL IN"},
		"not zone:acl":       {with("acl", "INSIDE_IN"), "not ZONE:ACL"},
		"acl with space":     {with("acl", "inside:A B,outside:C"), "not an ACL name"},
		"acl injection":      {with("acl", "inside:A\nclear configure all,outside:C"), "not an ACL name"},
		"turnwall's own acl": {with("acl", "inside:TW-x,outside:C"), "turnwall's prefix"},
		"line 0":             {with("position", "line:0"), "line number from 1"},
		"line too far":       {with("position", "line:100001"), "line number from 1 to 100000"},
		"top":                {with("position", "top"), "expected line:N or before-remark:TEXT@N"},
		"remark without @N":  {with("position", "before-remark:site rules"), "give the remark's line"},
		"remark injection":   {with("position", "before-remark:x\nno access-list@3"), "printable ASCII"},
		"default-rule":       {with("default-rule", "maybe"), "expected none or emit"},
	}
	for name, c := range cases {
		p := program()
		cs := Backend{}.Check(p, backends.Options{Params: c.params})
		if len(cs) == 0 || !strings.Contains(cs[0].Error(), c.want) {
			t.Errorf("%s: check gave %v, want %q", name, cs, c.want)
			continue
		}
		if files, err := (Backend{}).Emit(p, backends.Options{Params: c.params}); err == nil || files != nil {
			t.Errorf("%s: emitted", name)
		}
		if files, err := (Backend{}).Change(p, p, backends.Options{Params: c.params}); err == nil || files != nil {
			t.Errorf("%s: change script written", name)
		}
	}
	if _, err := (Backend{}).Change(nil, program(), backends.Options{}); err == nil || !strings.Contains(err.Error(), "acl parameter") {
		t.Errorf("change without acl: %v", err)
	}
	// A line past the end of the box's ACL: the box refuses the first line.
	s := newSite(t, program().Zones)
	params := s.params("none")
	params["position"] = "line:50"
	err := s.box(t, s.above+s.below+s.bind).Apply(change(t, nil, program(), params), nil)
	if err == nil || !strings.Contains(err.Error(), "has 6 lines") {
		t.Errorf("line past the end: %v", err)
	}
}

// TestModelSemantics: the box model's ASA rules, one by one.
func TestModelSemantics(t *testing.T) {
	zones := []ir.Zone{{Name: "z", Interfaces: []string{"in0"}}}
	base := "object-group network G\n network-object host 10.0.0.1\n" +
		"access-list A extended permit ip object-group G any\naccess-group A in interface in0\n"
	bad := map[string]string{
		"duplicate ACE":           "access-list A extended permit ip object-group G any\n",
		"line past the end":       "access-list A line 3 remark x\n",
		"remove absent ACE":       "no access-list A extended deny ip any any\n",
		"remove group in use":     "no object-group network G\n",
		"empty a group in use":    "object-group network G\n no network-object host 10.0.0.1\n",
		"remove absent member":    "object-group network G\n no network-object host 10.0.0.2\n",
		"unknown group in an ACE": "access-list A extended permit ip object-group H any\n",
		"kind clash":              "object network G\n",
		"unknown command":         "write erase\n",
	}
	for name, cmds := range bad {
		m := NewModel(zones, "TW-")
		if err := m.Apply([]byte(base), nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Apply([]byte(cmds), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	m := NewModel(zones, "TW-")
	steps := 0
	err := m.Apply([]byte(base+"object-group network G\n network-object host 10.0.0.1\n network-object 10.1.0.0 255.255.0.0\n"+
		"access-list A line 1 extended deny ip host 10.1.2.3 any\naccess-list A line 1 remark r\n"), func(backends.Config) { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	if steps != 9 {
		t.Errorf("%d steps, want one per command line (9)", steps)
	}
	if got := strings.Join(m.acls["A"], "|"); got != "remark r|extended deny ip host 10.1.2.3 any|extended permit ip object-group G any" {
		t.Errorf("ACL %s", got)
	}
	if got := strings.Join(m.objs["G"].lines, "|"); got != "network-object host 10.0.0.1|network-object 10.1.0.0 255.255.0.0" {
		t.Errorf("a member entered twice is kept once: %s", got)
	}
	pkt := func(src string) ir.Packet {
		return ir.Packet{FromZone: "z", Proto: ir.TCP, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("192.0.2.1"), DstPort: 1}
	}
	cfg := m.Config()
	for src, want := range map[string]ir.Action{"10.1.2.3": ir.Deny, "10.1.2.4": ir.Allow, "10.0.0.1": ir.Allow, "10.2.0.1": ir.Deny} {
		if got := cfg.Decide(pkt(src)).Action; got != want {
			t.Errorf("%s: %s, want %s", src, got, want)
		}
	}
	if m.Owned() != "" || !strings.Contains(m.Foreign(), "access-list A remark r\n") {
		t.Errorf("owned %q foreign %q", m.Owned(), m.Foreign())
	}
}

// TestMaxElements: a 50,000-range provider on a model holding fewer
// expanded elements is a positioned error naming the numbers; within the
// limit it compiles.
func TestMaxElements(t *testing.T) {
	p := bigProvider(50000)
	opts := backends.Options{Params: map[string]string{"max-elements": "25000"}}
	cs := Backend{}.Check(p, opts)
	if len(cs) == 0 {
		t.Fatal("no constraint")
	}
	// block: 2 service entries x 2 agent prefixes x 50,000 provider ranges.
	want := `policy.hcl:7: ACL elements above the model's limit: Zone "inside": with rule "block" (200000 elements) turnwall's entries expand to 200000 ACL elements, above max-elements 25000.`
	if !strings.HasPrefix(cs[0].Error(), want) {
		t.Errorf("got  %s\nwant %s", cs[0].Error(), want)
	}
	if files, err := (Backend{}).Emit(p, opts); err == nil || files != nil {
		t.Error("emitted above the limit")
	}
	if cs := (Backend{}).Check(p, backends.Options{Params: map[string]string{"max-elements": "1000000"}}); len(cs) != 0 {
		t.Errorf("within the limit: %v", cs)
	}
	if cs := (Backend{}).Check(p, backends.Options{Params: map[string]string{"max-elements": "many"}}); len(cs) != 1 {
		t.Errorf("bad max-elements: %v", cs)
	}
	if cs := (Backend{}).Check(p, backends.Options{Params: map[string]string{"model": "asa5506"}}); len(cs) != 1 || !strings.Contains(cs[0].Error(), "max-elements=N") {
		t.Errorf("model: %v", cs)
	}
}

// FuzzPlacementParams: any acl, position and default-rule values give an
// error or a script whose every line is a comment or a command turnwall
// writes, which the box takes after the site's own lines; never a panic.
func FuzzPlacementParams(f *testing.F) {
	f.Add("inside:INSIDE_IN,outside:OUTSIDE_IN", "line:1", "none")
	f.Add(`"inside":A,outside:B`, "before-remark:site rules@2", "emit")
	f.Add("inside:A\nclear configure all,outside:B", "line:3\nwrite erase", "emit\n")
	f.Add(`"in\"side":A,outside:B`, "before-remark:x@y@3", "none")
	f.Add("inside:A,outside:B", "line:100000", "none")
	f.Fuzz(func(t *testing.T, acl, position, def string) {
		p := program()
		params := map[string]string{"acl": acl, "position": position, "default-rule": def}
		files, err := Backend{}.Change(nil, p, backends.Options{Params: params})
		if err != nil {
			return
		}
		out := string(files[0].Data)
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			ok := strings.HasPrefix(l, ": ") || l == ":" || strings.HasPrefix(l, "access-list ") ||
				strings.HasPrefix(l, "object network ") || strings.HasPrefix(l, "object-group ") ||
				strings.HasPrefix(l, " network-object ") || strings.HasPrefix(l, " service-object ") || strings.HasPrefix(l, " fqdn ")
			if !ok {
				t.Fatalf("line %q in\n%s", l, out)
			}
		}
		checkSafeText(t, files[0].Data)
		if _, err := (Backend{}).Reader().Read(files); err != nil {
			t.Fatalf("install does not re-read: %v", err)
		}
	})
}

// ZONE=ACL, as a device block's map is written, places exactly as ZONE:ACL.
func TestPlacementEqualsForm(t *testing.T) {
	p := program()
	colon, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"acl": "inside:INSIDE_IN,outside:OUTSIDE_IN"}})
	if err != nil {
		t.Fatal(err)
	}
	equals, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"acl": "inside=INSIDE_IN,outside=OUTSIDE_IN"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(colon) != len(equals) || string(colon[0].Data) != string(equals[0].Data) {
		t.Errorf("ZONE=ACL placed otherwise than ZONE:ACL")
	}
}
