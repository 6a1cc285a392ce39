package apply

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/nftables/expr"
	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
)

// batchMessages splits a batch's bytes into (type, body) pairs.
func batchMessages(t *testing.T, b *batch) []message {
	t.Helper()
	var out []message
	buf := b.msgs
	for len(buf) > 0 {
		n := int(binary.NativeEndian.Uint32(buf))
		out = append(out, message{typ: binary.NativeEndian.Uint16(buf[4:]), flags: binary.NativeEndian.Uint16(buf[6:]), data: buf[nlmsgHeaderLen+nfgenHeaderLen : n]})
		buf = buf[(n+3)&^3:]
	}
	if len(out) != b.len() {
		t.Fatalf("%d messages parsed, %d added", len(out), b.len())
	}
	return out
}

// TestElementChunks: however big a set, every element goes out, in order,
// in messages whose element list fits the 16-bit attribute length.
func TestElementChunks(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		base := netip.MustParseAddr("20.0.0.0")
		if v6 {
			base = netip.MustParseAddr("2600::")
		}
		set := nftables.Set{Name: "big", V6: v6, Prefixes: spaced(base, 100_000, 2)}
		ranges, err := prefixRanges(set)
		if err != nil {
			t.Fatal(err)
		}
		b := newBatch(&sock{})
		e := newEncoder(b, "t")
		if err := e.addSet(set, ranges); err != nil {
			t.Fatal(err)
		}
		var got []element
		msgs := batchMessages(t, b)
		for _, m := range msgs[1:] {
			if m.typ != msgType(unix.NFT_MSG_NEWSETELEM) {
				t.Fatalf("message type %d", m.typ)
			}
			list, _ := parseAttrs(m.data)
			for _, a := range list {
				if a.typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
					continue
				}
				if len(a.data)+4 > 65535 {
					t.Fatalf("an element list of %d bytes", len(a.data)+4)
				}
				walkAttrs(a.data, func(_ uint16, item []byte) error {
					var el element
					walkAttrs(item, func(typ uint16, v []byte) error {
						switch typ {
						case unix.NFTA_SET_ELEM_KEY:
							walkAttrs(v, func(_ uint16, k []byte) error { el.key = append([]byte(nil), k...); return nil })
						case unix.NFTA_SET_ELEM_FLAGS:
							el.end = true
						}
						return nil
					})
					got = append(got, el)
					return nil
				})
			}
		}
		want, _ := addrElements(set, ranges)
		if len(msgs) < 50 || len(got) != len(want) || len(want) != 200_001 {
			t.Fatalf("v6=%v: %d messages carry %d elements, meant %d", v6, len(msgs)-1, len(got), len(want))
		}
		for i := range want {
			if string(got[i].key) != string(want[i].key) || got[i].end != want[i].end {
				t.Fatalf("v6=%v: element %d is %x/%v, meant %x/%v", v6, i, got[i].key, got[i].end, want[i].key, want[i].end)
			}
		}
	}
}

func TestAddrRanges(t *testing.T) {
	a := netip.MustParseAddr
	el := func(s string, end bool) addrElem { return addrElem{a(s), end} }
	for _, c := range []struct {
		name   string
		elems  []addrElem
		want   string
		marker bool
		err    bool
	}{
		{"marker and adjacent", []addrElem{el("10.0.2.0", false), el("0.0.0.0", true), el("10.0.1.0", false), el("10.0.2.0", true), el("10.0.3.0", true)}, "[10.0.1.0-10.0.1.255 10.0.2.0-10.0.2.255]", true, false},
		{"from zero to the top", []addrElem{el("0.0.0.0", false), el("1.0.0.0", true), el("255.0.0.0", false)}, "[0.0.0.0-0.255.255.255 255.0.0.0-255.255.255.255]", false, false},
		{"overlap", []addrElem{el("10.0.0.0", false), el("10.0.0.5", false), el("10.0.1.0", true)}, "", false, true},
		{"orphan end", []addrElem{el("10.0.0.0", true)}, "", false, true},
		{"empty", nil, "[]", false, false},
	} {
		got, marker, err := addrRanges(c.elems)
		if (err != nil) != c.err || (err == nil && (fmt.Sprint(got) != c.want || marker != c.marker)) {
			t.Errorf("%s: %v %v %v, want %s %v (error %v)", c.name, got, marker, err, c.want, c.marker, c.err)
		}
	}
}

// TestSetDelta: the delta between random interval sets, applied to the old
// set's elements, gives the new set's elements.
func TestSetDelta(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func() []netipx.IPRange {
		var b netipx.IPSetBuilder
		for i := 0; i < 40; i++ {
			b.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(4) * 64), byte(rng.IntN(256)), 0, 0}), 8+rng.IntN(9)).Masked())
		}
		s, _ := b.IPSet()
		var out []netipx.IPRange
		for _, p := range s.Prefixes() {
			out = append(out, netipx.RangeOfPrefix(p))
		}
		return out
	}
	set := nftables.Set{Name: "s"}
	for i := 0; i < 200; i++ {
		old, want := random(), random()
		oldElems, _ := addrElements(set, old)
		oldMarker := len(oldElems) > 0 && oldElems[0].end
		d := setDelta(set, old, want, oldMarker)
		del, add := d.elements()
		have := map[string]bool{}
		for _, e := range oldElems {
			have[fmt.Sprint(e.key, e.end)] = true
		}
		for _, e := range del {
			k := fmt.Sprint(e.key, e.end)
			if !have[k] {
				t.Fatalf("round %d: deletes %v, which is not there", i, k)
			}
			delete(have, k)
		}
		for _, e := range add {
			k := fmt.Sprint(e.key, e.end)
			if have[k] {
				t.Fatalf("round %d: adds %v, which is there", i, k)
			}
			have[k] = true
		}
		wantElems, _ := addrElements(set, want)
		if len(have) != len(wantElems) {
			t.Fatalf("round %d: %d elements after the delta, want %d", i, len(have), len(wantElems))
		}
		for _, e := range wantElems {
			if !have[fmt.Sprint(e.key, e.end)] {
				t.Fatalf("round %d: missing %v after the delta", i, e)
			}
		}
	}
}

// TestRuleRoundTrip decodes the encoder's expressions for every rule of every
// case (the kernel's anonymous sets simulated) back to the same rule.
func TestRuleRoundTrip(t *testing.T) {
	all := cases(t)
	all["edge"] = edgeRuleset()
	for name, rs := range all {
		d := &decoder{sets: map[string]liveSet{}, anon: map[string][]element{}}
		for _, s := range rs.Sets {
			d.sets[s.Name] = liveSet{name: s.Name, flags: unix.NFT_SET_INTERVAL}
		}
		e := newEncoder(nil, rs.Table)
		for _, c := range rs.Chains {
			for _, r := range c.Rules {
				exprs, anons, err := e.ruleExprs(r)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				// The kernel names anonymous sets __setN.
				for _, x := range exprs {
					if l, ok := x.(*expr.Lookup); ok && l.SetName == "__set%d" {
						for _, s := range anons {
							if s.id == l.SetID {
								l.SetName = fmt.Sprintf("__set%d", s.id)
								flags := uint32(unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT)
								if s.interval {
									flags |= unix.NFT_SET_INTERVAL
								}
								d.sets[l.SetName] = liveSet{name: l.SetName, flags: flags, keyType: s.keyType, keyLen: s.keyLen}
								d.anon[l.SetName] = s.elems
							}
						}
					}
				}
				var got nftables.Rule
				var cnt RuleCounter
				if err := d.match(&got, &cnt, exprs); err != nil {
					t.Fatalf("%s: %s: %v", name, r.Text(), err)
				}
				got.Comment = r.Comment
				want := canonical(&nftables.Ruleset{Chains: []nftables.Chain{{Rules: []nftables.Rule{r}}}}, nil, false, nil).Chains[0].Rules[0]
				if !reflect.DeepEqual(got.Text(), want.Text()) {
					t.Errorf("%s: %q reads back as %q", name, want.Text(), got.Text())
				}
			}
		}
	}
}

func TestInterfaceNames(t *testing.T) {
	for _, bad := range []string{"", "abcdefghijklmnop"} {
		if _, err := ifnameData(bad, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ifnameData("eth*", false); err == nil {
		t.Error("a wildcard in a set accepted")
	}
	if d, _ := ifnameData("eth*", true); string(d) != "eth" {
		t.Errorf("wildcard: %q", d)
	}
	if d, _ := ifnameData("abcdefghijklmno", true); len(d) != 16 || d[15] != 0 {
		t.Errorf("15 bytes: %q", d)
	}
}
