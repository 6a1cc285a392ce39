package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/lab"
	"github.com/turnwall/turnwall/relay/lab/call"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
)

func TestVerifyExamplePolicies(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	paths, _ := filepath.Glob("../../policies/*")
	paths = append(paths, "../../testdata/golden/cases/issue-example.hcl")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI("verify", path, "--format", "json", "--timeout", "30s")
			if code != 0 {
				t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
			}
			var rep verifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v:\n%s", err, out)
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

func TestVerifyText(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	code, out, errOut := runCLI("verify", "../../testdata/golden/cases/issue-example.hcl", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{`agents "floor3"`, "corp.floor3.relay-return", "issue-example.hcl:25", "default deny", "as expected"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "--format", "yaml", "../../policies/genesys-cloud"},
		{"verify", "a", "b"},
		{"verify", "--bogus"},
	} {
		if code, _, errOut := runCLI(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}

// verifyJSON runs verify on path and decodes its report.
func verifyJSON(t *testing.T, path string, args ...string) (int, verifyReport, string) {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"verify", path, "--format", "json", "--timeout", "60s"}, args...)...)
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d: %v:\n%s\n%s", code, err, out, errOut)
	}
	return code, rep, errOut
}

func groupOf(t *testing.T, rep verifyReport, agents string) verifyGroup {
	t.Helper()
	for _, g := range rep.Groups {
		if g.Agents == agents {
			return g
		}
	}
	t.Fatalf("no group %q in %+v", agents, rep)
	return verifyGroup{}
}

func callOf(t *testing.T, g verifyGroup, mode string) lab.CallResult {
	t.Helper()
	for _, c := range g.Calls {
		if c.Mode == mode {
			return c
		}
	}
	t.Fatalf("agents %q: no %s call in %+v", g.Agents, mode, g.Calls)
	return lab.CallResult{}
}

// The guide's traps, one regression policy each (testdata/verify): verify
// shows what each does to real calls through the real kernel.
func TestVerifyTraps(t *testing.T) {
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
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/udp-blocked")
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
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/tcp443-blocked")
		if code != exitPolicy || rep.OK {
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
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/realm-mismatch")
		if code != exitPolicy || rep.OK || !strings.Contains(errOut, "TW204") {
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
		code, rep, _ := verifyJSON(t, "../../testdata/verify/relay-not-opened-back")
		if code != exitPolicy || rep.OK {
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
func TestVerifyTwiceAtOnce(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	for i := 0; i < 2; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			code, rep, errOut := verifyJSON(t, "../../policies/private-relay")
			if code != 0 || !rep.OK || rep.Calls == 0 {
				t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
			}
		})
	}
}

// A verify cut short by --timeout exits 1, says what was not run and
// leaves nothing behind.
func TestVerifyTimeoutCleansUp(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	code, out, errOut := runCLI("verify", "../../testdata/verify/tcp443-blocked", "--timeout", "4s")
	if code != exitPolicy {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "incomplete") {
		t.Errorf("report does not say it was cut short:\n%s", out)
	}
	if err := netns.WaitGone(5 * time.Second); err != nil {
		t.Error(err)
	}
}

// With --snat the calls still connect, and the agent's server-reflexive
// candidates are the gateway's address, as behind a site's NAT.
func TestVerifySourceNAT(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	code, rep, errOut := verifyJSON(t, "../../policies/genesys-cloud", "--snat")
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
func TestVerifyCoturn(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft", "turnserver")
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("private-relay", func(t *testing.T) {
		t.Parallel()
		code, rep, errOut := verifyJSON(t, "../../policies/private-relay", "--relay-server", "coturn")
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
		code, rep, errOut := verifyJSON(t, "../../testdata/verify/udp-blocked", "--relay-server", "coturn")
		if code != 0 || !rep.OK {
			t.Fatalf("exit %d, troubles %q\n%s", code, rep.Troubles, errOut)
		}
		c := callOf(t, groupOf(t, rep, "floor"), "relay")
		if c.Result.Local == nil || c.Result.Local.RelayProtocol != "tls" {
			t.Errorf("relay-only call not over TLS: %+v", c.Result.Local)
		}
	})
}

// Ctrl-C in the middle of the calls: the turnwall process exits 1, says the
// run is incomplete, and leaves no namespace and no turnserver behind.
func TestVerifyInterruptCleansUp(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft", "turnserver")
	bin := filepath.Join(t.TempDir(), "turnwall")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "verify", "../../policies/private-relay", "--relay-server", "coturn")
	var stdout bytes.Buffer
	stderr := &nstest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "verify: call agents") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no call started within 30 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The relays are coturn processes now: find them by their parent.
	if !hasChildNamed(pid, "turnserver") {
		t.Errorf("no turnserver runs under turnwall (pid %d)", pid)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitPolicy {
		t.Errorf("exit: %v, want status 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "incomplete") {
		t.Errorf("report does not say it was interrupted:\n%s", stdout.String())
	}
	if err := netns.WaitGoneOf(pid, 5*time.Second); err != nil {
		t.Error(err)
	}
	if hasChildNamed(pid, "turnserver") {
		t.Error("a turnserver outlived turnwall verify")
	}
}

// hasChildNamed reports whether a process named name has parent ppid.
func hasChildNamed(ppid int, name string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if s[open+1:close] == name && len(fields) > 1 && fields[1] == fmt.Sprint(ppid) {
			return true
		}
	}
	return false
}

// A relay that serves the agents but may not relay to the media server they
// call: the relay-only call fails, and verify names the missing peer.
func TestVerifyRelayMissingPeer(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	code, rep, errOut := verifyJSON(t, "../../testdata/golden/cases/rules-and-functions.hcl")
	if code != exitPolicy || rep.OK || rep.Failed != 0 {
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
func TestVerifyPlatformSettings(t *testing.T) {
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
			code, rep, errOut := verifyJSON(t, dir)
			if code != exitPolicy || rep.OK {
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
