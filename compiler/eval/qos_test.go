package eval_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler/ir"
)

func TestQoSClassDSCP(t *testing.T) {
	for _, tc := range []struct {
		dscp string
		want uint8
		err  string
	}{
		{`"EF"`, 46, ""}, {`"ef"`, 46, ""}, {`"AF41"`, 34, ""}, {`"af11"`, 10, ""}, {`"CS5"`, 40, ""},
		{`"CS0"`, 0, ""}, {`"DF"`, 0, ""}, {`"VA"`, 44, ""}, {`"LE"`, 1, ""}, {`46`, 46, ""}, {`"40"`, 40, ""},
		{`0`, 0, ""}, {`63`, 63, ""},
		{`64`, 0, "TW111 DSCP out of range"}, {`-1`, 0, "TW111 DSCP out of range"}, {`4.5`, 0, "TW111 DSCP out of range"},
		{`"AF44"`, 0, "TW111 Unknown DSCP"}, {`"EX"`, 0, `Did you mean "EF"?`}, {`"CS8"`, 0, "TW111 Unknown DSCP"},
	} {
		t.Run(tc.dscp, func(t *testing.T) {
			pol, msgs := evaluate(t, t.TempDir(), fmt.Sprintf(`
agents "g" {
  zone    = zone.a
  subnets = ["10.0.0.0/24"]
}
provider "p" {
  zone   = zone.w
  ranges = ["192.0.2.0/24"]
  media  = { udp = ["16384-65535"] }
}
qos {
  class "c" {
    flows = [provider.p]
    dscp  = %s
  }
}
`, tc.dscp), nil)
			if tc.err != "" {
				if len(msgs) != 1 || !strings.Contains(msgs[0], tc.err) {
					t.Fatalf("diagnostics %q, want one with %q", msgs, tc.err)
				}
				return
			}
			if len(msgs) > 0 {
				t.Fatalf("unexpected diagnostics: %v", msgs)
			}
			c := pol.QoS[0]
			if c.DSCP != tc.want || !c.Replies || len(c.Flows) != 1 || c.Flows[0].Kind != "provider" || c.Purposes != nil {
				t.Fatalf("class %+v, want DSCP %d", c, tc.want)
			}
		})
	}
}

func TestQoSClassPurposesAndReplies(t *testing.T) {
	pol, msgs := evaluate(t, t.TempDir(), `
agents "g" {
  zone    = zone.a
  subnets = ["10.0.0.0/24"]
}
qos {
  class "c" {
    flows    = [agents.g]
    purposes = ["media", "relay-return"]
    dscp     = "EF"
    replies  = false
  }
}
`, nil)
	if len(msgs) > 0 {
		t.Fatalf("unexpected diagnostics: %v", msgs)
	}
	c := pol.QoS[0]
	if c.Replies || len(c.Purposes) != 2 || c.Purposes[0] != ir.PurposeMedia || c.Purposes[1] != ir.PurposeRelayReturn {
		t.Fatalf("class %+v", c)
	}
}
