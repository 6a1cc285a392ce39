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
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/verify"
)

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

// --format json prints the report as data on stdout, progress on stderr.
func TestVerifyJSON(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	code, out, errOut := runCLI("verify", "../../testdata/golden/cases/issue-example.hcl", "--format", "json", "--no-calls", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !rep.OK || rep.Flows == 0 || rep.Ran != rep.Flows || rep.Calls != 0 || !strings.HasSuffix(rep.Policy, "issue-example.hcl") {
		t.Errorf("report: %+v", rep)
	}
	if !strings.Contains(errOut, "verify: flow matrix:") {
		t.Errorf("no progress on stderr:\n%s", errOut)
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

// A verify killed with SIGKILL cannot clean up: its namespaces (with the
// gateway's tables), bind mounts under /run/netns and the coturn directory
// holding the lab's secret stay. The next verify removes them before it
// builds its own lab, and so does verify --cleanup, which lists them.
func TestVerifyKilledLeavesNothing(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft", "turnserver")
	bin := filepath.Join(t.TempDir(), "turnwall")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// kill starts a verify with coturn relays and SIGKILLs it once its calls
	// have started; it returns the dead verify's pid after checking the
	// state it left.
	kill := func(t *testing.T) int {
		t.Helper()
		cmd := exec.Command(bin, "verify", "../../policies/private-relay", "--relay-server", "coturn")
		stderr := &nstest.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(stderr.String(), "verify: call agents") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no call started within 60 s:\n%s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		ns, dirs := labStateOf(pid)
		if len(ns) == 0 || len(dirs) == 0 {
			t.Fatalf("the killed verify left %d namespaces and %d coturn directories: nothing to clean up", len(ns), len(dirs))
		}
		t.Cleanup(func() { // should there be anything left after a failure
			for _, n := range ns {
				exec.Command("ip", "netns", "del", n).Run()
			}
			for _, d := range dirs {
				os.RemoveAll(d)
			}
		})
		return pid
	}
	assertGone := func(t *testing.T, pid int) {
		t.Helper()
		if ns, dirs := labStateOf(pid); len(ns)+len(dirs) > 0 {
			t.Errorf("left of verify %d: namespaces %q, coturn directories %q", pid, ns, dirs)
		}
		if _, err := os.Stat(filepath.Join("/run/turnwall/verify", fmt.Sprint(pid))); err == nil {
			t.Errorf("the owner marker of verify %d is left", pid)
		}
		// Its turnservers died with it (they run with a parent-death
		// signal): none runs with a configuration of the killed verify.
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, c := range cmdlines {
			b, _ := os.ReadFile(c)
			if strings.Contains(string(b), fmt.Sprintf("turnwall-lab-coturn-%d-", pid)) {
				t.Errorf("a turnserver of verify %d still runs: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
	}

	t.Run("next verify", func(t *testing.T) {
		pid := kill(t)
		out, err := exec.Command(bin, "verify", "../../testdata/verify/deny-everything", "--no-calls").CombinedOutput()
		if err != nil {
			t.Fatalf("next verify: %v\n%s", err, out)
		}
		// Verifies of other tests (other packages run at the same time)
		// also clean up when they start: one of them may have removed the
		// state first. The next verify then has nothing to say, but the
		// state must be gone either way.
		cleanedByOther := !strings.Contains(string(out), "removed lab state") && !markerExists(pid)
		if !cleanedByOther && !strings.Contains(string(out), fmt.Sprintf("removed lab state that killed verifies left behind: namespace tw-%d-", pid)) {
			t.Errorf("the next verify does not say what it removed:\n%s", out)
		}
		assertGone(t, pid)
	})
	t.Run("cleanup", func(t *testing.T) {
		pid := kill(t)
		ns, dirs := labStateOf(pid)
		out, err := exec.Command(bin, "verify", "--cleanup").CombinedOutput()
		if err != nil {
			t.Fatalf("verify --cleanup: %v\n%s", err, out)
		}
		// Every piece it removed is listed; pieces a verify of another
		// test (other packages run at the same time, and every verify
		// cleans up when it starts) removed first are not.
		for _, n := range ns {
			if removedByOther := !strings.Contains(string(out), "removed namespace "+n); removedByOther && markerExists(pid) {
				t.Errorf("verify --cleanup left namespace %s unlisted while the owner marker stays:\n%s", n, out)
			}
		}
		if len(dirs) > 0 && strings.Contains(string(out), "removed namespace") && !strings.Contains(string(out), "removed coturn directory "+filepath.Join(os.TempDir(), fmt.Sprintf("turnwall-lab-coturn-%d-", pid))) {
			if _, err := os.Stat(dirs[0]); err == nil {
				t.Errorf("verify --cleanup kept the coturn directory %s:\n%s", dirs[0], out)
			}
		}
		if !strings.Contains(string(out), "of killed verifies") {
			t.Errorf("verify --cleanup says nothing of what it did:\n%s", out)
		}
		assertGone(t, pid)
		// Nothing stale is left: a second cleanup removes nothing.
		out, err = exec.Command(bin, "verify", "--cleanup").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "removed 0 pieces") {
			t.Errorf("second cleanup: %v\n%s", err, out)
		}
	})
}

// labStateOf lists the namespaces and coturn directories of process pid.
func labStateOf(pid int) (ns, dirs []string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("tw-%d-", pid)) {
			ns = append(ns, e.Name())
		}
	}
	dirs, _ = filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("turnwall-lab-coturn-%d-*", pid)))
	return ns, dirs
}

// markerExists reports whether verify pid's owner marker is still there.
func markerExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/run/turnwall/verify", fmt.Sprint(pid)))
	return err == nil
}
