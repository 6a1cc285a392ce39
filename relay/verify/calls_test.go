package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/verify"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// One-way audio through the gateway: once the calls are connected, the
// gateway starts dropping media from the media server to the agents (a
// stateless filter in front of the conntrack accept, the way a router ACL
// without inspection behaves). The relayed call is untouched (its media
// comes from the provider's TURN address); the direct call keeps ICE alive
// (small packets pass) but the agent hears nothing, and verify says so.
func TestCallsDetectOneWayAudio(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	p := compile(t, "../../policies/genesys-cloud")
	rs, err := nftables.Build(p, "turnwall")
	if err != nil {
		t.Fatal(err)
	}
	l, err := verify.New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Apply(rs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	svc, err := l.StartServices(ctx, verify.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	far, ok := l.FarEnd("floor3")
	if !ok || !far.Host.Media4.IsValid() {
		t.Fatalf("no media server address: %+v", far)
	}
	// A group's calls run in order, relay-only first: the filter goes in once
	// the second (direct) call is connected, DTLS done.
	connected := 0
	opt := verify.CallOptions{MinMOS: 3.6, Call: call.Options{AfterConnect: func() {
		if connected++; connected != 2 {
			return
		}
		if _, err := l.GW.Exec(ctx, "nft", "insert", "rule", "inet", "turnwall", "forward",
			"ip", "saddr", far.Host.Media4.String(), "udp", "length", ">", "120", "drop"); err != nil {
			t.Error(err)
		}
	}}}
	calls := l.Calls(ctx, svc, nil, opt)
	if len(calls) != 2 {
		t.Fatalf("%d calls: %+v", len(calls), calls)
	}
	for _, c := range calls {
		t.Logf("%s: %s %s %s", c.Mode, c.Result.State, c.Result.Audio, c.Trouble)
		switch c.Mode {
		case "relay":
			if !c.OK || c.Result.Audio != call.AudioBoth {
				t.Errorf("relayed call: %+v", c)
			}
		case "all":
			r := c.Result
			if c.OK || r.State != call.StateConnected || r.Audio != call.AudioAgentDeaf ||
				r.FarToAgent.Received != 0 || r.AgentToFar.Received == 0 || !strings.Contains(c.Trouble, "agent hears nothing") {
				t.Errorf("direct call: want one-way audio (agent hears nothing), got %+v", c)
			}
			if r.Local == nil || r.Local.Type != "host" {
				t.Errorf("direct call did not use the host pair: %+v", r.Local)
			}
		}
	}
}
