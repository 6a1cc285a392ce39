package nftables

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
)

// listing is the kernel's view of a table, without handles (which change on
// every load).
func listing(t *testing.T, ns *netns.NS, table string) []any {
	t.Helper()
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(nstest.Nft(t, ns, "-j", "list", "table", "inet", table), &doc); err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, obj := range doc.Nftables {
		if _, meta := obj["metainfo"]; meta {
			continue
		}
		out = append(out, nstest.StripHandles(obj))
	}
	return out
}

// TestKernelLoad loads every case's ruleset into a namespace with Debian's
// nft: check mode, then twice for real. The second load must change nothing
// (no duplicated rules), the kernel must hold exactly the intended sets and
// rules, and another tool's table must survive untouched.
func TestKernelLoad(t *testing.T) {
	nstest.NeedKernel(t, "nft")
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			rs, err := Build(c.Program, "turnwall")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "ruleset.nft")
			if err := os.WriteFile(file, rs.Text(), 0o644); err != nil {
				t.Fatal(err)
			}
			ns := nstest.NewNS(t, "load")
			other := filepath.Join(t.TempDir(), "other.nft")
			os.WriteFile(other, []byte("table inet other {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 22 counter accept comment \"operator ssh\"\n\t}\n}\n"), 0o644)
			nstest.Nft(t, ns, "-f", other)
			before := listing(t, ns, "other")

			nstest.Nft(t, ns, "-c", "-f", file)
			nstest.Nft(t, ns, "-f", file)
			first := listing(t, ns, "turnwall")
			nstest.Nft(t, ns, "-f", file)
			second := listing(t, ns, "turnwall")
			if !reflect.DeepEqual(first, second) {
				t.Fatal("loading the ruleset twice changed the kernel's table")
			}
			if !reflect.DeepEqual(before, listing(t, ns, "other")) {
				t.Fatal("another tool's table changed")
			}
			checkKernelMatchesModel(t, rs, first)
		})
	}
}

// checkKernelMatchesModel compares the kernel's listing with the model: the
// same sets holding the same addresses, the same chains with the same rules
// (by comment) in the same order.
func checkKernelMatchesModel(t *testing.T, rs *Ruleset, objs []any) {
	t.Helper()
	gotSets := map[string]*netipx.IPSet{}
	gotRules := map[string][]string{}
	for _, o := range objs {
		m := o.(map[string]any)
		if s, ok := m["set"].(map[string]any); ok {
			gotSets[s["name"].(string)] = elemSet(t, s["elem"])
		}
		if r, ok := m["rule"].(map[string]any); ok {
			comment, _ := r["comment"].(string)
			gotRules[r["chain"].(string)] = append(gotRules[r["chain"].(string)], comment)
		}
	}
	if len(gotSets) != len(rs.Sets) {
		t.Errorf("kernel has %d sets, meant %d", len(gotSets), len(rs.Sets))
	}
	for _, s := range rs.Sets {
		var b netipx.IPSetBuilder
		for _, p := range s.Prefixes {
			b.AddPrefix(p)
		}
		want, _ := b.IPSet()
		got, ok := gotSets[s.Name]
		if !ok {
			t.Errorf("set %s missing in the kernel", s.Name)
			continue
		}
		if !reflect.DeepEqual(want.Ranges(), got.Ranges()) {
			t.Errorf("set %s: kernel holds %v, meant %v", s.Name, got.Ranges(), want.Ranges())
		}
	}
	for _, c := range rs.Chains {
		var want []string
		for _, r := range c.Rules {
			want = append(want, r.Comment)
		}
		if !reflect.DeepEqual(want, gotRules[c.Name]) {
			t.Errorf("chain %s: kernel has %d rules %q, meant %d %q", c.Name, len(gotRules[c.Name]), gotRules[c.Name], len(want), want)
		}
	}
}

func elemSet(t *testing.T, v any) *netipx.IPSet {
	var b netipx.IPSetBuilder
	list, _ := v.([]any)
	for _, e := range list {
		switch x := e.(type) {
		case string:
			b.Add(netip.MustParseAddr(x))
		case map[string]any:
			if p, ok := x["prefix"].(map[string]any); ok {
				b.AddPrefix(netip.PrefixFrom(netip.MustParseAddr(p["addr"].(string)), int(p["len"].(float64))))
			} else if r, ok := x["range"].([]any); ok {
				b.AddRange(netipx.IPRangeFrom(netip.MustParseAddr(r[0].(string)), netip.MustParseAddr(r[1].(string))))
			} else {
				t.Fatalf("unexpected set element %v", x)
			}
		default:
			t.Fatalf("unexpected set element %v", x)
		}
	}
	s, _ := b.IPSet()
	return s
}

// TestKernelTraffic applies the issue example's ruleset on a gateway namespace
// and sends real traffic: every allowed flow passes (and its replies come
// back), and the flows the guide's traps are about are dropped.
func TestKernelTraffic(t *testing.T) {
	nstest.NeedKernel(t, "nft")
	prog := backendtest.CaseProgram(t, "case-issue-example")
	l := nstest.ExampleLab(t)
	files, err := Backend{}.Emit(prog, backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ruleset.nft")
	os.WriteFile(file, files[0].Data, 0o644)
	nstest.Nft(t, l.GW, "-f", file)

	const agent, agent6 = "10.20.0.10", "fd00:20::10"
	const provider, relay, relay6, dmzOther = "52.129.96.10", "198.51.100.10", "2001:db8::10", "198.51.100.20"
	t.Run("allowed", func(t *testing.T) {
		nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 3478, true)     // STUN/TURN
		nstest.TCPFlow(t, l.Agent, agent, l.Provider, provider, 3478, true)        // TURN over TCP
		nstest.TCPFlow(t, l.Agent, agent, l.Provider, provider, 443, true)         // signalling, TURN/TLS fallback
		nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 16384, true)    // media, first port
		nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 65535, true)    // media, last port
		nstest.UDPFlow(t, l.Agent, agent, 0, l.Relay, relay, 3478, true)           // TURN to the relay
		nstest.UDPFlow(t, l.Agent, agent6, 0, l.Relay, relay6, 3478, true)         // ... over IPv6
		nstest.TCPFlow(t, l.Agent, agent, l.Relay, relay, 5349, true)              // TURN/TLS to the relay
		nstest.UDPFlow(t, l.Relay, relay, 49152, l.Agent, agent, 40000, true)      // relayed media back to agents
		nstest.UDPFlow(t, l.Relay, relay6, 65535, l.Agent, agent6, 1024, true)     // ... IPv6, range edges
		nstest.UDPFlow(t, l.Provider, provider, 5004, l.Relay, relay, 50000, true) // provider to the relay's allocation
		nstest.UDPFlow(t, l.Relay, relay, 60000, l.Provider, provider, 5000, true) // relay's allocation to the provider
	})
	t.Run("dropped", func(t *testing.T) {
		nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 5000, false)     // UDP to another port
		nstest.TCPFlow(t, l.Agent, agent, l.Provider, provider, 22, false)          // TCP 22
		nstest.TCPFlow(t, l.Agent, agent, l.Relay, relay, 22, false)                // TCP 22 to the relay
		nstest.UDPFlow(t, l.Relay, relay, 3000, l.Agent, agent, 40000, false)       // relay to agent from outside the relay range
		nstest.UDPFlow(t, l.Relay, dmzOther, 50000, l.Agent, agent, 40000, false)   // a DMZ host that is not the relay
		nstest.UDPFlow(t, l.Relay, relay, 49152, l.Agent, agent, 1023, false)       // relayed media to a privileged agent port
		nstest.UDPFlow(t, l.Provider, provider, 3478, l.Agent, agent, 40000, false) // unsolicited provider to agent
		nstest.TCPFlow(t, l.Provider, provider, l.Agent, agent, 443, false)         // unsolicited TCP from the provider
	})
}
