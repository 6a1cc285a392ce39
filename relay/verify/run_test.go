package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/verify"
	"github.com/turnwall/turnwall/relay/verify/call"
)

// The orchestration of verify (Run) end to end: the shipped examples, the
// guide's traps and the options, each through the real kernel.

func TestRunExamplePolicies(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	paths, _ := filepath.Glob("../../policies/*")
	paths = append(paths, "../../testdata/golden/cases/issue-example.hcl")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			code, rep, errOut := runPolicy(t, path, 30*time.Second, verify.Options{})
			if code != 0 {
				t.Fatalf("exit %d: %q\n%s", code, rep.Troubles, errOut)
			}
			if !rep.OK || rep.Failed != 0 || rep.Flows == 0 || len(rep.Groups) == 0 {
				t.Errorf("report: %+v", rep)
			}
			// Every agents group placed a real call that connected with
			// audio both ways; every check of an ICE server held.
			if rep.Calls == 0 || rep.CallsFail != 0 || rep.ServersFail != 0 {
				t.Errorf("calls %d (%d failed), ICE servers %d (%d failed)", rep.Calls, rep.CallsFail, rep.Servers, rep.ServersFail)
			}
			for _, g := range rep.Groups {
				if g.Agents == "" {
					continue
				}
				connected := 0
				for _, c := range g.Calls {
					if c.Skipped == "" && c.Result.State == call.StateConnected && c.Result.Audio == call.AudioBoth && c.Result.Local != nil && c.MOS >= 4 {
						connected++
					}
				}
				if connected == 0 {
					t.Errorf("agents %q: no call connected with audio both ways: %+v", g.Agents, g.Calls)
				}
				udpTURN := false
				for _, sc := range g.Servers {
					udpTURN = udpTURN || (strings.HasPrefix(sc.URL, "turn:") && strings.Contains(sc.URL, "transport=udp") && sc.Got == "pass")
				}
				for _, c := range g.Calls {
					// Relay over UDP wins when it works, as in browsers.
					if c.Mode == "relay" && c.Skipped == "" && udpTURN && (c.Result.Local == nil || c.Result.Local.RelayProtocol != "udp") {
						t.Errorf("agents %q: relay-only call not over UDP although TURN/UDP works: %+v", g.Agents, c.Result.Local)
					}
					if c.Mode == "ipv6" && (c.Result.Local == nil || !strings.Contains(c.Result.Local.Address, ":") || !strings.Contains(c.Result.Remote.Address, ":")) {
						t.Errorf("agents %q: the IPv6 call did not use an IPv6 pair: %+v", g.Agents, c.Result)
					}
				}
			}
			if rep.Seconds > 30 {
				t.Errorf("verify took %.1f s; the budget is 30 s per example", rep.Seconds)
			}
		})
	}
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
}

// The guide's traps, one regression policy each (testdata/verify): verify
// shows what each does to real calls through the real kernel.
func TestRunTraps(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})

	t.Run("udp-blocked", func(t *testing.T) {
		t.Parallel()
		// UDP paths fail, decided by rule no-udp; TURN/TLS on 443 carries
		// the call, relay-only and with every candidate.
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/udp-blocked", verify.Options{})
		if code != 0 || !rep.OK {
			t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
		}
		g := groupOf(t, rep, "floor")
		udp := 0
		for _, c := range g.Servers {
			if strings.Contains(c.URL, "transport=udp") {
				udp++
				if c.Expected != "fail" || c.Got != "fail" || c.Rule != "no-udp" || !strings.Contains(c.Reason, "timed out") {
					t.Errorf("UDP server: %+v", c)
				}
			}
		}
		if udp == 0 {
			t.Error("no UDP TURN server was checked")
		}
		for _, c := range g.Cells {
			if strings.HasPrefix(c.Name, "udp agents ") && c.Expected != "drop" {
				t.Errorf("UDP flow from the agents expected to pass: %+v", c)
			}
		}
		for _, mode := range []string{"relay", "all"} {
			c := callOf(t, g, mode)
			r := c.Result
			if !c.OK || r.Local == nil || r.Local.Type != "relay" || r.Local.RelayProtocol != "tls" || !strings.Contains(r.Local.URL, ":443") || r.Audio != call.AudioBoth {
				t.Errorf("%s call: want relay via TLS 443 with audio both ways, got %+v %+v", mode, c, r.Local)
			}
		}
	})

	t.Run("tcp443-blocked", func(t *testing.T) {
		t.Parallel()
		// No path at all: both calls fail, verify fails and says why.
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/tcp443-blocked", verify.Options{})
		if code != 1 || rep.OK {
			t.Fatalf("exit %d, ok %v", code, rep.OK)
		}
		if !strings.Contains(errOut, "TW201") || rep.PolicyErrors != 1 {
			t.Errorf("the lint error is not shown: %d errors\n%s", rep.PolicyErrors, errOut)
		}
		g := groupOf(t, rep, "floor")
		for _, mode := range []string{"relay", "all"} {
			c := callOf(t, g, mode)
			if c.OK || c.Result.State == call.StateConnected || !strings.Contains(c.Trouble, "never connects") {
				t.Errorf("%s call: %+v", mode, c)
			}
		}
		relayOnly := callOf(t, g, "relay")
		if !strings.Contains(relayOnly.Result.Err, "no relay candidate") || !strings.Contains(relayOnly.Trouble, "timed out") {
			t.Errorf("relay-only call does not say why: %s / %s", relayOnly.Result.Err, relayOnly.Trouble)
		}
		for _, c := range g.Servers {
			if c.Expected != "fail" || c.Got != "fail" || (c.Rule != "no-udp" && c.Rule != "no-tls-443") {
				t.Errorf("server: %+v", c)
			}
		}
	})

	t.Run("realm-mismatch", func(t *testing.T) {
		t.Parallel()
		// The compiler's TW204 in practice: every allocation 401, the relayed
		// call fails with that reason.
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/realm-mismatch", verify.Options{})
		if code != 1 || rep.OK || !strings.Contains(errOut, "TW204") {
			t.Fatalf("exit %d, ok %v\n%s", code, rep.OK, errOut)
		}
		g := groupOf(t, rep, "floor")
		if len(g.Servers) == 0 {
			t.Fatal("no ICE server checked")
		}
		for _, c := range g.Servers {
			if !c.OK || c.Got != "fail" || !strings.Contains(c.Reason, "401") || !strings.Contains(c.Reason, `"example.com"`) || !strings.Contains(c.Reason, `"corp.example.com"`) {
				t.Errorf("server: %+v", c)
			}
		}
		c := callOf(t, g, "relay")
		if c.OK || !strings.Contains(c.Trouble, "401") {
			t.Errorf("relay-only call: %+v", c)
		}
	})

	t.Run("relay-not-opened-back", func(t *testing.T) {
		t.Parallel()
		// The agents' own relayed calls work, but media the relay sends
		// towards them from its relay range is dropped: one-way audio.
		code, rep, _ := verifyJSON(t, "../../testdata/verify/relay-not-opened-back", verify.Options{})
		if code != 1 || rep.OK {
			t.Fatalf("exit %d, ok %v", code, rep.OK)
		}
		oneWay := false
		for _, tr := range rep.Troubles {
			oneWay = oneWay || strings.Contains(tr, "one-way audio")
		}
		if !oneWay || len(rep.Troubles) != 1 {
			t.Errorf("troubles: %q", rep.Troubles)
		}
		g := groupOf(t, rep, "floor")
		failed := 0
		for _, c := range g.Cells {
			if !c.OK {
				failed++
				if !c.Required || c.Got != "drop" || c.Rule != "default deny" {
					t.Errorf("cell: %+v", c)
				}
			}
		}
		if failed != 2 { // IPv4 and IPv6
			t.Errorf("%d failing cells, want 2", failed)
		}
	})
}

// Two verifies of the same policy at once: their namespaces, interfaces,
// addresses and relays never clash.
func TestRunTwiceAtOnce(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	for i := 0; i < 2; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			code, rep, errOut := verifyJSON(t, "../../policies/private-relay", verify.Options{})
			if code != 0 || !rep.OK || rep.Calls == 0 {
				t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
			}
		})
	}
}

// With --snat the calls still connect, and the agent's server-reflexive
// candidates are the gateway's address, as behind a site's NAT.
func TestRunSourceNAT(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	code, rep, errOut := verifyJSON(t, "../../policies/genesys-cloud", verify.Options{SourceNAT: true})
	if code != 0 || !rep.OK || !rep.SourceNAT {
		t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
	}
	srflx := 0
	for _, c := range callOf(t, groupOf(t, rep, "floor3"), "all").Result.Gathered {
		if c.Type != "srflx" {
			continue
		}
		srflx++
		if strings.HasPrefix(c.Address, "10.20.") || strings.HasPrefix(c.Address, "fd00:20:") {
			t.Errorf("srflx candidate %s is the agent's own address: no NAT", c)
		}
	}
	if srflx == 0 {
		t.Error("no server-reflexive candidate")
	}
	if err := netns.WaitGone(5 * time.Second); err != nil {
		t.Error(err)
	}
}

// --relay-server coturn runs Debian's turnserver on the relay hosts with the
// configuration the coturn target emits: the example's calls connect through
// it, and the UDP-blocked trap's call goes over its TURN/TLS on 443.
func TestRunCoturn(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft", "turnserver")
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("private-relay", func(t *testing.T) {
		t.Parallel()
		code, rep, errOut := verifyJSON(t, "../../policies/private-relay", verify.Options{RelayServer: "coturn"})
		if code != 0 || !rep.OK || rep.RelayServer != "coturn" || rep.Calls != 4 || rep.Servers == 0 {
			t.Fatalf("exit %d, calls %d, servers %d, troubles %q\n%s", code, rep.Calls, rep.Servers, rep.Troubles, errOut)
		}
		// coturn's REST configuration cannot take the platform's users:
		// the report says so.
		if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "REST") {
			t.Errorf("notes: %q", rep.Notes)
		}
	})
	t.Run("udp-blocked", func(t *testing.T) {
		t.Parallel()
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/udp-blocked", verify.Options{RelayServer: "coturn"})
		if code != 0 || !rep.OK {
			t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
		}
		c := callOf(t, groupOf(t, rep, "floor"), "relay")
		if c.Result.Local == nil || c.Result.Local.RelayProtocol != "tls" {
			t.Errorf("relay-only call not over TLS: %+v", c.Result.Local)
		}
	})
}

// A relay that serves the agents but may not relay to the media server they
// call: the relay-only call fails, and verify names the missing peer.
func TestRunRelayMissingPeer(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	code, rep, errOut := verifyJSON(t, "../../testdata/golden/cases/rules-and-functions.hcl", verify.Options{})
	if code != 1 || rep.OK || rep.Failed != 0 {
		t.Fatalf("exit %d, ok %v, %d flows failed\n%s", code, rep.OK, rep.Failed, errOut)
	}
	g := groupOf(t, rep, "voice")
	relayOnly, all := callOf(t, g, "relay"), callOf(t, g, "all")
	if relayOnly.OK || !strings.Contains(relayOnly.Result.Err, `relay "lab" does not list provider "carrier"`) {
		t.Errorf("relay-only call: %+v", relayOnly)
	}
	if !all.OK {
		t.Errorf("the direct call should still work: %+v", all)
	}
}

// The platform's WebRTC settings shape what agents are given: with UDP
// blocked, tcp_fallback = false (no TURN over TCP/TLS) or use_turn = false
// (no TURN at all) leaves no path, and verify names the setting.
func TestRunPlatformSettings(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	src, err := os.ReadFile("../../testdata/verify/udp-blocked/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"tcp_fallback        = true", "tcp_fallback        = false", "tcp_fallback = false: agents get no TURN over TCP or TLS"},
		{"use_turn            = true", "use_turn            = false", "use_turn = false: agents get no TURN server"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if !bytes.Contains(src, []byte(tc.from)) {
				t.Fatalf("policy lacks %q", tc.from)
			}
			if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), bytes.Replace(src, []byte(tc.from), []byte(tc.to), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			code, rep, errOut := verifyJSON(t, dir, verify.Options{})
			if code != 1 || rep.OK {
				t.Fatalf("exit %d, ok %v\n%s", code, rep.OK, errOut)
			}
			g := groupOf(t, rep, "floor")
			for _, s := range g.Servers {
				if strings.HasPrefix(s.URL, "turns:") || strings.Contains(s.URL, "transport=tcp") {
					t.Errorf("agents were given %s", s.URL)
				}
			}
			all := callOf(t, g, "all")
			if all.OK || !strings.Contains(all.Trouble, tc.want) {
				t.Errorf("call: %s", all.Trouble)
			}
		})
	}
}

// verifyJSON runs verify on the policy at path (60 s at most) and returns
// what the CLI would: exit status 0 or 1, the report (through its JSON, as
// the CLI prints it) and the compiler's diagnostics, one line each with
// its code.
func verifyJSON(t *testing.T, path string, opt verify.Options) (int, verify.Report, string) {
	t.Helper()
	return runPolicy(t, path, time.Minute, opt)
}

func runPolicy(t *testing.T, path string, timeout time.Duration, opt verify.Options) (int, verify.Report, string) {
	t.Helper()
	res := compiler.Compile(path, compiler.Options{})
	if res.Lowered == nil {
		t.Fatalf("%s: %v", path, res.Diags)
	}
	var diags strings.Builder
	for _, d := range res.Diags {
		fmt.Fprintf(&diags, "%s %s: %s\n", diag.CodeOf(d), d.Summary, d.Detail)
	}
	errs, _ := diag.Count(res.Diags)
	opt.Policy, opt.PolicyErrors = path, errs
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rep, err := verify.Run(ctx, res.Lowered, opt)
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, diags.String())
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out verify.Report
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("%v:\n%s", err, buf.String())
	}
	code := 0
	if !out.OK {
		code = 1
	}
	return code, out, diags.String()
}

func groupOf(t *testing.T, rep verify.Report, agents string) verify.Group {
	t.Helper()
	for _, g := range rep.Groups {
		if g.Agents == agents {
			return g
		}
	}
	t.Fatalf("no group %q in %+v", agents, rep)
	return verify.Group{}
}

func callOf(t *testing.T, g verify.Group, mode string) verify.CallResult {
	t.Helper()
	for _, c := range g.Calls {
		if c.Mode == mode {
			return c
		}
	}
	t.Fatalf("agents %q: no %s call in %+v", g.Agents, mode, g.Calls)
	return verify.CallResult{}
}

// A rule denying something to 0.0.0.0/0 and ::/0: verify used to fail with
// "no transfer network outside the policy's ranges"; now the lab is built
// and the calls connect as without the rule.
func TestRunDenyEverything(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	code, rep, errOut := verifyJSON(t, "../../testdata/verify/deny-everything", verify.Options{})
	if code != 0 || !rep.OK || rep.Calls == 0 || rep.CallsFail != 0 || rep.Failed != 0 {
		t.Fatalf("exit %d, calls %d (%d failed), troubles %q\n%s", code, rep.Calls, rep.CallsFail, rep.Troubles, errOut)
	}
	outside := 0
	for _, c := range groupOf(t, rep, "floor").Cells {
		if strings.Contains(c.Why, "outside the provider's ranges") {
			outside++
			if c.Got != "drop" || c.Rule != "default deny" {
				t.Errorf("cell: %+v", c)
			}
		}
	}
	if outside == 0 {
		t.Error("no flow to an address outside the provider's ranges")
	}
	if err := netns.WaitGone(5 * time.Second); err != nil {
		t.Error(err)
	}
}
