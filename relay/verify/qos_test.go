package verify_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/verify"
)

// The qos block on the wire: verify reads the DSCP of each classified flow's
// first packet at the far end and of its reply back, and of browsing, which
// must stay unmarked.
func TestRunQoSMarks(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	code, rep, errOut := runPolicy(t, "../../testdata/verify/qos", time.Minute, verify.Options{NoCalls: true})
	if code != 0 || !rep.OK || rep.MarksFail != 0 {
		t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
	}
	seen := map[string]int{}
	for _, m := range rep.Marks {
		if !m.OK || m.Got != m.Want {
			t.Errorf("%+v", m)
		}
		key := m.Direction + "/" + strings.Fields(m.Class + " -")[0]
		if m.Want == m.Got {
			seen[key+"/"+strconv.Itoa(m.Got)]++
		}
	}
	// EF both ways for media and TURN; AF41 both ways for the video
	// service; CS5 on the first packet of signalling and the TCP 443
	// fallback and nothing on its replies (replies = false); browsing
	// unmarked both ways.
	for _, want := range []string{"first/audio/46", "reply/audio/46", "first/video/34", "reply/video/34",
		"first/signalling/40", "reply/signalling/0", "first/-/0", "reply/-/0"} {
		if seen[want] == 0 {
			t.Errorf("no mark %s in %v", want, seen)
		}
	}
}

// Without the marking chain the same check fails: verify sees DSCP 0 where
// the policy asks for EF, so a gateway that does not mark is caught.
func TestMarksCatchAnUnmarkedGateway(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	want := compile(t, "../../testdata/verify/qos")
	got := compile(t, "../../testdata/verify/qos")
	got.QoS = nil
	rs, err := nftables.Build(got, "turnwall")
	if err != nil {
		t.Fatal(err)
	}
	l, err := verify.New(want)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := l.Apply(rs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	marks := l.RunMarks(ctx, l.MarkFlows(l.Matrix()))
	failed, unmarkedOK := 0, 0
	for _, m := range marks {
		switch {
		case m.Want != 0 && !m.OK && m.Got == 0:
			failed++
		case m.Want == 0 && m.OK:
			unmarkedOK++
		}
	}
	if failed == 0 || unmarkedOK == 0 {
		t.Fatalf("an unmarking gateway: %d marks caught missing, %d unmarked flows fine; want both: %+v", failed, unmarkedOK, marks)
	}
}
