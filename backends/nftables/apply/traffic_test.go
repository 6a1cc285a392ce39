package apply

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns/nstest"
)

// lab is the issue example's network: agents on vlan20, the provider on

// without returns a copy of rs without the rules whose comment contains s.
func without(rs *nftables.Ruleset, s string) *nftables.Ruleset {
	out := clone(rs)
	for i := range out.Chains {
		kept := out.Chains[i].Rules[:0]
		for _, r := range out.Chains[i].Rules {
			if !strings.Contains(r.Comment, s) {
				kept = append(kept, r)
			}
		}
		out.Chains[i].Rules = kept
	}
	return out
}

// TestTraffic applies the issue example through netlink on a gateway and
// sends real traffic across veth pairs: allowed flows pass with their
// replies, others are dropped; status maps the counters back to the policy
// rules; a one-prefix delta opens a new destination without resetting
// counters; and a change that cuts a flow is rolled back when its confirm
// window ends.
func TestTraffic(t *testing.T) {
	needKernel(t)
	l := nstest.ExampleLab(t)
	target := Target{Table: "turnwall", NetNS: l.GW.Name}
	rs := caseRuleset(t, "case-issue-example")
	mustApply(t, l.GW, rs)

	const agent, agent6 = "10.20.0.10", "fd00:20::10"
	const provider, extra, relay, relay6 = "52.129.96.10", "203.0.113.70", "198.51.100.10", "2001:db8::10"
	nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 3478, true)   // STUN/TURN
	nstest.TCPFlow(t, l.Agent, agent, l.Provider, provider, 443, true)       // signalling
	nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 16384, true)  // media
	nstest.UDPFlow(t, l.Agent, agent6, 0, l.Relay, relay6, 3478, true)       // TURN to the relay over IPv6
	nstest.TCPFlow(t, l.Agent, agent, l.Relay, relay, 5349, true)            // TURN/TLS to the relay
	nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, provider, 5000, false)  // not a media port
	nstest.TCPFlow(t, l.Agent, agent, l.Relay, relay, 22, false)             // ssh to the relay
	nstest.UDPFlow(t, l.Provider, provider, 0, l.Agent, agent, 40000, false) // unsolicited
	nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, extra, 3478, false)     // outside the provider's ranges
	if t.Failed() {
		t.FailNow()
	}

	status, err := StatusOf(target)
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]uint64{}
	for _, r := range status.PolicyRules() {
		counted[r.Rule] = r.Packets
	}
	for _, name := range []string{"floor3.genesys.stun-turn", "floor3.genesys.signalling", "floor3.genesys.media", "floor3.corp.turn", "floor3.corp.turn-tls"} {
		if counted[name] == 0 {
			t.Errorf("status: rule %s carried no packets (%v)", name, counted)
		}
	}
	if counted["genesys.corp.relay-in"] != 0 {
		t.Errorf("status: genesys.corp.relay-in counted packets")
	}
	var defaultDrops uint64
	for _, r := range status.Rules {
		if r.Comment == "default_action deny" {
			defaultDrops = r.Packets
		}
	}
	if defaultDrops < 4 {
		t.Errorf("status: the default drop counted %d packets, want at least the 4 dropped flows", defaultDrops)
	}

	// A delta opens the extra address and keeps handles and counters.
	before, _ := Read(target)
	res := mustApply(t, l.GW, withPrefix(rs, "provider.genesys_v4", "203.0.113.64/26"))
	if res.Plan.Action != Delta {
		t.Fatalf("adding a prefix: %s", res.Plan.Action)
	}
	after, _ := Read(target)
	for chain, cs := range before.Counters {
		for i, c := range cs {
			a := after.Counters[chain][i]
			if a.Handle != c.Handle || a.Packets < c.Packets {
				t.Errorf("chain %s rule %d: handle %d -> %d, packets %d -> %d", chain, i, c.Handle, a.Handle, c.Packets, a.Packets)
			}
		}
	}
	nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, extra, 3478, true)

	// An operator applies a change that cuts signalling, with a confirm
	// window, and cannot confirm: the window ends and the flow is back.
	st := State{Dir: t.TempDir()}
	cut := without(rs, ".signalling ")
	_, p, err := st.ApplyConfirmed(target, cut, ConfirmOptions{Window: 2 * time.Second, Watcher: func(id string) *exec.Cmd {
		return child("watch", "TW_STATE="+st.Dir, "TW_NETNS="+l.GW.Name, "TW_TABLE=turnwall", "TW_ID="+id)
	}})
	if err != nil {
		t.Fatal(err)
	}
	nstest.TCPFlow(t, l.Agent, agent, l.Provider, provider, 443, false)
	waitGone(t, st.pendingPath(target), 10*time.Second)
	if p.Previous == nil {
		t.Fatal("nothing saved")
	}
	nstest.TCPFlow(t, l.Agent, agent, l.Provider, provider, 443, true)
	nstest.UDPFlow(t, l.Agent, agent, 0, l.Provider, extra, 3478, true)
}
