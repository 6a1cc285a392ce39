package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/readiness"
	"github.com/turnwall/turnwall/relay/verify"
)

func needChromium(t *testing.T) {
	t.Helper()
	nstest.NeedKernel(t, "ip", "nft")
	if readiness.Chromium() == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium (Debian package chromium) is missing; make deps installs it")
		}
		t.Skip("chromium is missing")
	}
}

// verify --agent chromium: headless Chromium on every agents host opens the
// readiness page; what the browser finds through the compiled gateway must
// match the IR server by server, and its verdict the lab's own calls. Every
// shipped example and the two traps of edge case 1, one after the other
// (a browser each is heavy on a small machine).
func TestRunChromium(t *testing.T) {
	needChromium(t)
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	paths, _ := filepath.Glob("../../policies/*")
	paths = append(paths, "../../testdata/verify/udp-blocked", "../../testdata/verify/tcp443-blocked")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, rep, errOut := runPolicy(t, path, 3*time.Minute, verify.Options{Agent: "chromium"})
			browsers := 0
			for _, g := range rep.Groups {
				b := g.Browser
				if g.Agents == "" || b == nil {
					continue
				}
				browsers++
				t.Logf("agents %q: %s in %.1f s: %s", g.Agents, b.Verdict, b.Seconds, b.Summary)
				if !b.OK {
					t.Errorf("agents %q: the browser disagrees: %s\n%s", g.Agents, b.Trouble, errOut)
				}
				if b.Verdict != "skipped" && b.Seconds > 30 {
					t.Errorf("agents %q: the page took %.1f s", g.Agents, b.Seconds)
				}
				switch filepath.Base(path) {
				case "udp-blocked":
					// UDP fails; TURN over TLS on 443 carries the call.
					if b.Verdict != readiness.Degraded || !strings.Contains(b.Summary, "UDP to the relays is blocked, so calls fall back to TURN over TLS") ||
						!strings.Contains(b.Summary, "the policy drops it (no-udp, policy.hcl:") {
						t.Errorf("udp-blocked: %s: %s", b.Verdict, b.Summary)
					}
					tls := false
					for _, c := range b.Calls {
						tls = tls || (c.Connected && strings.HasPrefix(c.URL, "turns:") && strings.Contains(c.URL, ":443"))
					}
					if !tls {
						t.Errorf("udp-blocked: no call through TURN/TLS 443: %+v", b.Calls)
					}
				case "tcp443-blocked":
					// Everything fails, and the page says which rule.
					if b.Verdict != readiness.NotReady || !strings.Contains(b.Summary, "No TURN server gave a relay candidate") ||
						!strings.Contains(b.Summary, "the policy drops it (no-udp, policy.hcl:") {
						t.Errorf("tcp443-blocked: %s: %s", b.Verdict, b.Summary)
					}
					for _, c := range b.Checks {
						if c.Got != "fail" || !strings.Contains(c.Explanation, "the policy drops it") {
							t.Errorf("tcp443-blocked: %+v", c)
						}
					}
				case "microsoft-teams":
					if b.Verdict != "skipped" {
						t.Errorf("teams gives agents no ICE server; got %s", b.Verdict)
					}
				default:
					if b.Verdict != readiness.Ready {
						t.Errorf("%s: %s", b.Verdict, b.Summary)
					}
				}
			}
			if browsers == 0 {
				t.Fatalf("no browser ran: %+v", rep.Troubles)
			}
		})
	}
}
