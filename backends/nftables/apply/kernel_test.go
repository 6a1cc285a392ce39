package apply

import (
	"encoding/json"
	"errors"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
)

// edgeRuleset exercises what the shipped policies do not: a set starting at
// the zero address (no end marker), one running to the top of the address
// space (no end element), adjacent prefixes, an empty set, an interface
// wildcard, port sets with and without ranges up to 65535, a log prefix, a
// drop policy and a bare protocol match.
func edgeRuleset() *nftables.Ruleset {
	p := netip.MustParsePrefix
	return &nftables.Ruleset{
		Table: "turnwall",
		Sets: []nftables.Set{
			{Name: "low_v4", Prefixes: []netip.Prefix{p("0.0.0.0/8"), p("10.0.1.0/24"), p("10.0.2.0/24")}, Comment: "low"},
			{Name: "high_v4", Prefixes: []netip.Prefix{p("192.0.2.0/24"), p("255.255.255.0/24")}},
			{Name: "all_v6", V6: true, Prefixes: []netip.Prefix{p("::/1"), p("8000::/1")}, Comment: "every address, in two halves"},
			{Name: "empty_v6", V6: true, Comment: "fqdn stun.example.com", FQDNs: []string{"stun.example.com"}},
		},
		Chains: []nftables.Chain{
			{Name: "forward", Hook: "forward", Policy: "drop", Rules: []nftables.Rule{
				{IIF: []string{"veth*"}, Verdict: "jump checks", Comment: "wildcard"},
				{OIF: []string{"wan0", "dmz0", "a-b.c"}, Verdict: "jump checks"},
			}},
			{Name: "checks", Rules: []nftables.Rule{
				{CtState: []string{"established", "related"}, Verdict: "accept"},
				{CtState: []string{"invalid"}, Counter: true, Verdict: "drop"},
				{Family: 4, SrcSet: "low_v4", DstSet: "high_v4", Proto: ir.UDP, SPorts: []ir.PortRange{{First: 1, Last: 1}, {First: 3, Last: 3}},
					DPorts: []ir.PortRange{{First: 443, Last: 443}, {First: 3478, Last: 3481}, {First: 65000, Last: 65535}}, Counter: true, Verdict: "accept", Comment: "sets x.hcl:1"},
				{Family: 6, DstSet: "all_v6", Proto: ir.TCP, DPorts: []ir.PortRange{{First: 1, Last: 65535}}, Counter: true, Log: "turnwall allow all: ", Verdict: "accept", Comment: "all x.hcl:2"},
				{Family: 6, SrcSet: "empty_v6", Proto: ir.TCP, SPorts: []ir.PortRange{{First: 65535, Last: 65535}}, Verdict: "drop"},
				{Proto: ir.UDP, Counter: true, Verdict: "drop", Comment: "bare udp"},
				{Verdict: "return"},
			}},
		},
	}
}

// TestParity loads every case's ruleset twice, with `nft -f` of the text
// rendering and through netlink, and compares the kernel's listings
// (nft -j, without handles). Then it applies over the table nft loaded:
// turnwall reads it back as the same model, so nothing changes.
func TestParity(t *testing.T) {
	needKernel(t)
	all := cases(t)
	all["edge"] = edgeRuleset()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		rs := all[name]
		t.Run(name, func(t *testing.T) {
			text, nl := newNS(t, "text"), newNS(t, "netlink")
			nftFile(t, text, rs.Text())
			res := mustApply(t, nl, rs)
			if res.Plan.Action != Create {
				t.Fatalf("first apply: %s, want create", res.Plan.Action)
			}
			sameListing(t, "listings", listing(t, text, rs.Table), listing(t, nl, rs.Table))
			res = mustApply(t, text, rs)
			if res.Plan.Action != NoChange {
				t.Fatalf("apply over the nft-loaded table: %s (%s)\n%s", res.Plan.Action, res.Plan.Reason, res.Plan.Diff("live", "policy"))
			}
		})
	}
}

// otherTools is what other programs keep in the same kernel: an inet table,
// and an ip table with turnwall's own table name in another family.
const otherTools = `table inet other {
	set admins {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.0/28, 198.51.100.7 }
	}
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @admins tcp dport 22 counter accept comment "operator ssh"
	}
}
table ip turnwall {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
`

func otherState(t *testing.T, ns *netns.NS) string {
	return string(nft(t, ns, "-j", "list", "table", "inet", "other")) + string(nft(t, ns, "list", "table", "inet", "other")) +
		string(nft(t, ns, "-j", "list", "table", "ip", "turnwall"))
}

// TestOtherTablesUntouched: whatever apply does (create, no change,
// replace, delta, a batch the kernel refuses, a restore), other tables stay
// byte-identical, handles included.
func TestOtherTablesUntouched(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "others")
	nftFile(t, ns, []byte(otherTools))
	before := otherState(t, ns)
	check := func(step string) {
		t.Helper()
		if after := otherState(t, ns); after != before {
			t.Fatalf("after %s another tool's table changed:\n%s", step, strings.Join([]string{before, after}, "\n----\n"))
		}
	}
	a := caseRuleset(t, "case-issue-example")
	b := caseRuleset(t, "policies-private-relay")
	a2 := withPrefix(a, "provider.genesys_v4", "203.0.113.64/26")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	for _, step := range []struct {
		rs     *nftables.Ruleset
		action Action
	}{{a, Create}, {a, NoChange}, {b, Replace}, {a, Replace}, {a2, Delta}} {
		res := mustApply(t, ns, step.rs)
		if res.Plan.Action != step.action {
			t.Fatalf("apply: %s, want %s", res.Plan.Action, step.action)
		}
		check(string(step.action))
	}
	saved, err := Read(target)
	if err != nil {
		t.Fatal(err)
	}
	// A rule that jumps to a chain that does not exist: the kernel refuses
	// the whole batch and nothing changes.
	bad := clone(b)
	bad.Chains[0].Rules[0].Verdict = "jump nowhere"
	if _, err := Apply(target, bad); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("a batch the kernel refuses: %v", err)
	}
	check("a refused batch")
	now, err := Read(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameSnapshot(saved, now); err != nil {
		t.Fatalf("a refused batch changed the table: %v", err)
	}
	if err := Restore(target, &Snapshot{Table: "turnwall"}); err != nil {
		t.Fatal(err)
	}
	check("restoring no table")
	if err := Restore(target, saved); err != nil {
		t.Fatal(err)
	}
	check("restoring a snapshot")
}

func clone(rs *nftables.Ruleset) *nftables.Ruleset {
	data, err := json.Marshal(rs)
	if err != nil {
		panic(err)
	}
	var out nftables.Ruleset
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return &out
}

// withPrefix returns a copy of rs with one prefix added to (or, with a
// leading "-", removed from) a set, kept sorted.
func withPrefix(rs *nftables.Ruleset, set, prefix string) *nftables.Ruleset {
	out := clone(rs)
	for i := range out.Sets {
		s := &out.Sets[i]
		if s.Name != set {
			continue
		}
		if p, ok := strings.CutPrefix(prefix, "-"); ok {
			drop := netip.MustParsePrefix(p)
			kept := s.Prefixes[:0]
			for _, q := range s.Prefixes {
				if q != drop {
					kept = append(kept, q)
				}
			}
			s.Prefixes = kept
			return out
		}
		s.Prefixes = append(s.Prefixes, netip.MustParsePrefix(prefix))
		sort.Slice(s.Prefixes, func(a, b int) bool { return s.Prefixes[a].Addr().Less(s.Prefixes[b].Addr()) })
		return out
	}
	panic("no set " + set)
}

func handles(t *testing.T, target Target) map[string][]uint64 {
	t.Helper()
	snap, err := Read(target)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]uint64{}
	for chain, cs := range snap.Counters {
		for _, c := range cs {
			out[chain] = append(out[chain], c.Handle)
		}
	}
	return out
}

// TestReapplyAndDelta: applying the same ruleset again sends nothing (the
// kernel's ruleset generation does not move); a one-prefix change is one
// message of set elements that keeps every rule handle; and each delta
// leaves exactly the table `nft -f` of the new text loads.
func TestReapplyAndDelta(t *testing.T) {
	needKernel(t)
	ns, fresh := newNS(t, "delta"), newNS(t, "fresh")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	a := caseRuleset(t, "case-issue-example")
	first := mustApply(t, ns, a)
	again := mustApply(t, ns, a)
	if again.Plan.Action != NoChange || again.Messages != 0 || again.Generation != first.Generation {
		t.Fatalf("re-apply: %s, %d messages, generation %d -> %d", again.Plan.Action, again.Messages, first.Generation, again.Generation)
	}
	if snap, _ := Read(target); snap.Generation() != first.Generation {
		t.Fatalf("re-apply moved the ruleset generation %d -> %d", first.Generation, snap.Generation())
	}
	h := handles(t, target)
	steps := []struct {
		name string
		rs   *nftables.Ruleset
		msgs int
	}{
		{"add one v4 prefix", withPrefix(a, "provider.genesys_v4", "203.0.113.64/26"), 1},
		{"remove it", a, 1},
		{"remove the first prefix", withPrefix(a, "provider.genesys_v4", "-52.129.96.0/20"), 1},
		{"put it back", a, 1},
		{"add one v6 prefix", withPrefix(a, "relay.corp_v6", "2001:db8:1::/48"), 1},
		{"widen a prefix", withPrefix(withPrefix(a, "provider.genesys_v4", "-52.129.96.0/20"), "provider.genesys_v4", "52.129.96.0/19"), 3}, // and drops the v6 prefix
		{"add the zero prefix", withPrefix(a, "provider.genesys_v4", "0.0.0.0/8"), 2},
		{"and the top one", withPrefix(withPrefix(a, "provider.genesys_v4", "0.0.0.0/8"), "provider.genesys_v4", "240.0.0.0/4"), 1},
		{"back to the start", a, 2},
	}
	for _, step := range steps {
		res := mustApply(t, ns, step.rs)
		if res.Plan.Action != Delta || res.Messages != step.msgs {
			t.Fatalf("%s: %s in %d messages, want a delta in %d (%s)", step.name, res.Plan.Action, res.Messages, step.msgs, res.Plan.Summary())
		}
		if got := handles(t, target); !equalHandles(h, got) {
			t.Fatalf("%s: rule handles changed: %v -> %v", step.name, h, got)
		}
		// The delta leaves what a fresh load of the text would.
		nftFile(t, fresh, step.rs.Text())
		sameListing(t, step.name+": delta and fresh load", listing(t, fresh, "turnwall"), listing(t, ns, "turnwall"))
	}
}

func equalHandles(a, b map[string][]uint64) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestLargeSets applies 100,000-prefix IPv4 and IPv6 sets (200,000 kernel
// elements each; google/nftables v0.3.0 would truncate them silently),
// checks them with nft, and changes one prefix of each as a delta.
func TestLargeSets(t *testing.T) {
	needKernel(t)
	const n = 100_000
	ns := newNS(t, "large")
	rs := synthetic("turnwall", n, n, 0)
	start := time.Now()
	res := mustApply(t, ns, rs)
	t.Logf("apply: %v (read %v, send %v in %d messages of %d bytes, verify %v)", time.Since(start), res.Read, res.Send, res.Messages, res.Bytes, res.Verify)
	if res.Intervals != 2*n+2 || res.Messages < 100 {
		t.Fatalf("verified %d intervals in %d messages", res.Intervals, res.Messages)
	}
	checkWithNft(t, ns, rs, "big_v4", "big_v6")

	rs2 := withPrefix(withPrefix(rs, "big_v4", "-20.0.0.8/32"), "big_v6", "2600:1::/64")
	start = time.Now()
	res = mustApply(t, ns, rs2)
	t.Logf("delta: %v (read %v, send %v, verify %v)", time.Since(start), res.Read, res.Send, res.Verify)
	if res.Plan.Action != Delta || res.Messages != 2 {
		t.Fatalf("one-prefix changes: %s in %d messages", res.Plan.Action, res.Messages)
	}
	checkWithNft(t, ns, rs2, "big_v4", "big_v6")
}

// checkWithNft compares sets as nft lists them with the model.
func checkWithNft(t *testing.T, ns *netns.NS, rs *nftables.Ruleset, names ...string) {
	t.Helper()
	for _, name := range names {
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if err := json.Unmarshal(nft(t, ns, "-j", "list", "set", "inet", rs.Table, name), &doc); err != nil {
			t.Fatal(err)
		}
		var got netipx.IPSetBuilder
		count := 0
		for _, obj := range doc.Nftables {
			raw, ok := obj["set"]
			if !ok {
				continue
			}
			var set struct {
				Elem []json.RawMessage `json:"elem"`
			}
			if err := json.Unmarshal(raw, &set); err != nil {
				t.Fatal(err)
			}
			for _, e := range set.Elem {
				count++
				var s string
				var p struct {
					Prefix struct {
						Addr string `json:"addr"`
						Len  int    `json:"len"`
					} `json:"prefix"`
					Range []string `json:"range"`
				}
				switch {
				case json.Unmarshal(e, &s) == nil:
					got.Add(netip.MustParseAddr(s))
				case json.Unmarshal(e, &p) == nil && p.Prefix.Addr != "":
					got.AddPrefix(netip.PrefixFrom(netip.MustParseAddr(p.Prefix.Addr), p.Prefix.Len))
				case len(p.Range) == 2:
					got.AddRange(netipx.IPRangeFrom(netip.MustParseAddr(p.Range[0]), netip.MustParseAddr(p.Range[1])))
				default:
					t.Fatalf("set %s: unexpected element %s", name, e)
				}
			}
		}
		var want netipx.IPSetBuilder
		n := 0
		for _, s := range rs.Sets {
			if s.Name == name {
				n = len(s.Prefixes)
				for _, p := range s.Prefixes {
					want.AddPrefix(p)
				}
			}
		}
		g, _ := got.IPSet()
		w, _ := want.IPSet()
		if count != n || !g.Equal(w) {
			t.Fatalf("set %s: nft lists %d elements, meant %d (equal addresses: %v)", name, count, n, g.Equal(w))
		}
	}
}

// TestNotOwned: a table with turnwall's name holding something turnwall
// never writes is left alone: it could not be saved for a rollback.
func TestNotOwned(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "foreign")
	nftFile(t, ns, []byte("table inet turnwall {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 reject\n\t}\n}\n"))
	before := string(nft(t, ns, "-j", "list", "table", "inet", "turnwall"))
	_, err := Apply(Target{Table: "turnwall", NetNS: ns.Name}, caseRuleset(t, "case-issue-example"))
	var no *NotOwnedError
	if !errors.As(err, &no) {
		t.Fatalf("apply over a foreign table: %v", err)
	}
	t.Log(err)
	if after := string(nft(t, ns, "-j", "list", "table", "inet", "turnwall")); after != before {
		t.Fatal("the foreign table changed")
	}
}

// TestStaleBatch: a batch planned against a ruleset generation is refused
// whole when another program changed the ruleset since (here another
// table), and Apply then plans again and succeeds.
func TestStaleBatch(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "stale")
	a, b := caseRuleset(t, "case-issue-example"), caseRuleset(t, "policies-private-relay")
	mustApply(t, ns, a)
	s, err := Target{Table: "turnwall", NetNS: ns.Name}.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	live, err := read(s, "turnwall")
	if err != nil {
		t.Fatal(err)
	}
	nft(t, ns, "add", "table", "inet", "someone-else")
	batch := newBatch(s)
	plan, _ := NewPlan(live, b)
	if err := newEncoder(batch, "turnwall").replace(b, plan.wantRanges); err != nil {
		t.Fatal(err)
	}
	if err := batch.send(live.genID); !errors.Is(err, errStale) {
		t.Fatalf("a stale batch: %v", err)
	}
	now, _ := read(s, "turnwall")
	if err := sameSnapshot(live, now); err != nil {
		t.Fatalf("the stale batch changed the table: %v", err)
	}
	res := mustApply(t, ns, b)
	if res.Plan.Action != Replace {
		t.Fatalf("apply after the change: %s", res.Plan.Action)
	}
}

// TestResolverSets: addresses a resolver (dnsmasq nftset=) adds to a
// policy's FQDN sets are not the policy's: re-applying does not remove
// them, plan does not report them, and a table replacement keeps them.
func TestResolverSets(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "resolver")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	a := caseRuleset(t, "case-issue-example")
	mustApply(t, ns, a)
	nft(t, ns, "add", "element", "inet", "turnwall", "provider.genesys.stun_fq4", "{ 74.125.250.129 }")
	nft(t, ns, "add", "element", "inet", "turnwall", "provider.genesys.stun_fq6", "{ 2001:4860:4864:5:8000::1 }")
	resolved := func() int {
		snap, err := Read(target)
		if err != nil {
			t.Fatal(err)
		}
		return len(snap.Ranges["provider.genesys.stun_fq4"]) + len(snap.Ranges["provider.genesys.stun_fq6"])
	}
	res := mustApply(t, ns, a)
	if res.Plan.Action != NoChange || resolved() != 2 {
		t.Fatalf("re-apply with resolved addresses: %s, %d resolved", res.Plan.Action, resolved())
	}
	if d := res.Plan.Diff("a", "b"); d != "" {
		t.Fatalf("plan shows resolved addresses:\n%s", d)
	}
	res = mustApply(t, ns, without(a, "sip-trunk"))
	if res.Plan.Action != Replace || resolved() != 2 {
		t.Fatalf("replacement: %s, %d resolved addresses kept", res.Plan.Action, resolved())
	}
	res = mustApply(t, ns, withPrefix(without(a, "sip-trunk"), "provider.genesys_v4", "203.0.113.64/26"))
	if res.Plan.Action != Delta || resolved() != 2 {
		t.Fatalf("delta: %s, %d resolved addresses kept", res.Plan.Action, resolved())
	}
}

// TestEarlierMatchOrder: a table written by an earlier version (interfaces
// and address sets before the protocol and ports) reads back as such, and
// applying the policy replaces it with the current order.
func TestEarlierMatchOrder(t *testing.T) {
	needKernel(t)
	rs := caseRuleset(t, "policies-private-relay")
	old := clone(rs)
	legacy := 0
	for ci := range old.Chains {
		for ri := range old.Chains[ci].Rules {
			r := &old.Chains[ci].Rules[ri]
			if r.Proto != "" {
				r.AddrsFirst = true
				legacy++
			}
		}
	}
	if legacy == 0 {
		t.Fatal("no rule matches a protocol")
	}
	ns, fresh := newNS(t, "legacy"), newNS(t, "fresh")
	target := Target{Table: rs.Table, NetNS: ns.Name}
	nftFile(t, ns, old.Text())
	snap, err := Read(target)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, c := range snap.Ruleset.Chains {
		for _, r := range c.Rules {
			if r.AddrsFirst {
				got++
			}
		}
	}
	if got != legacy {
		t.Fatalf("read back %d rules in the earlier order, want %d", got, legacy)
	}
	res := mustApply(t, ns, rs)
	if res.Plan.Action != Replace {
		t.Fatalf("apply over the earlier order: %s, want replace", res.Plan.Action)
	}
	nftFile(t, fresh, rs.Text())
	sameListing(t, "replaced and fresh load", listing(t, fresh, rs.Table), listing(t, ns, rs.Table))
	if again := mustApply(t, ns, rs); again.Plan.Action != NoChange {
		t.Fatalf("re-apply: %s", again.Plan.Action)
	}
}
