package apply

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
)

// killWatcher SIGKILLs a window's watcher and waits until it is gone.
func killWatcher(t *testing.T, p *Pending) {
	t.Helper()
	if !WatcherAlive(p) {
		t.Fatalf("the watcher (pid %d) is not running before it is killed", p.Watcher)
	}
	if err := syscall.Kill(p.Watcher, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for WatcherAlive(p) {
		if time.Now().After(deadline) {
			t.Fatal("the watcher survived SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lockedApplyConfirmed(t *testing.T, st State, target Target, rs *nftables.Ruleset, o ConfirmOptions) *Pending {
	t.Helper()
	unlock, err := st.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, p, err := st.ApplyConfirmed(target, rs, o)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Fatal("no window opened")
	}
	return p
}

func recoverLocked(t *testing.T, st State, target Target) *Recovery {
	t.Helper()
	rec, err := st.RecoverLocking(target, time.Second, "the test")
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestConfirmWatcherKilled: a rollback does not depend on the watcher surviving.
// With the watcher SIGKILLed the window stays on disk; the next turnwall
// after the deadline (Recover, Confirm) rolls back first and says so; a
// confirm before the deadline keeps the change; Rollback restores at once;
// and a record from another boot is dropped without touching the kernel.
func TestConfirmWatcherKilled(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "killwatch")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	a := caseRuleset(t, "case-issue-example")
	b := caseRuleset(t, "policies-private-relay")
	all := []*nftables.Ruleset{a, b}
	st := State{Dir: t.TempDir()}
	opts := ConfirmOptions{Window: time.Second, Policy: "private-relay", Watcher: func(id string) *exec.Cmd {
		return child("watch", "TW_STATE="+st.Dir, "TW_NETNS="+ns.Name, "TW_TABLE=turnwall", "TW_ID="+id)
	}}
	mustApply(t, ns, a)

	t.Run("recover", func(t *testing.T) {
		p := lockedApplyConfirmed(t, st, target, b, opts)
		killWatcher(t, p)
		rec := recoverLocked(t, st, target)
		if rec.Pending == nil || rec.WatcherAlive || rec.Closed != nil {
			t.Fatalf("before the deadline: %+v", rec)
		}
		time.Sleep(time.Until(p.Deadline) + 300*time.Millisecond)
		if got := which(t, target, all); got != 1 {
			t.Fatalf("with the watcher dead the kernel holds ruleset %d past the deadline, want the new one until a turnwall runs", got)
		}
		rec = recoverLocked(t, st, target)
		if rec.Closed == nil || rec.Pending != nil || !strings.HasPrefix(rec.Outcome, "expired: rolled back at ") || !strings.Contains(rec.Outcome, "was dead") {
			t.Fatalf("after the deadline: %+v", rec)
		}
		if got := which(t, target, all); got != 0 {
			t.Fatalf("after the recovery the kernel holds ruleset %d, want the previous one", got)
		}
		if o := st.Outcome(target); o != rec.Outcome {
			t.Fatalf("outcome %q, want %q", o, rec.Outcome)
		}
		if rec := recoverLocked(t, st, target); rec.Closed != nil || rec.Pending != nil {
			t.Fatalf("a second recovery: %+v", rec)
		}
	})

	t.Run("late confirm", func(t *testing.T) {
		p := lockedApplyConfirmed(t, st, target, b, opts)
		killWatcher(t, p)
		time.Sleep(time.Until(p.Deadline) + 100*time.Millisecond)
		_, err := st.Confirm(target)
		if err == nil || !strings.Contains(err.Error(), "too late to confirm: expired: rolled back") {
			t.Fatalf("a confirm after the deadline: %v", err)
		}
		if got := which(t, target, all); got != 0 {
			t.Fatalf("the kernel holds ruleset %d, want the previous one", got)
		}
	})

	t.Run("confirm after the watcher died", func(t *testing.T) {
		p := lockedApplyConfirmed(t, st, target, b, opts)
		killWatcher(t, p)
		if _, err := st.Confirm(target); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(p.Deadline) + 100*time.Millisecond)
		if rec := recoverLocked(t, st, target); rec.Closed != nil || rec.Pending != nil {
			t.Fatalf("recovery after a confirm: %+v", rec)
		}
		if got := which(t, target, all); got != 1 {
			t.Fatalf("after the confirm the kernel holds ruleset %d, want the new one", got)
		}
	})

	t.Run("rollback now", func(t *testing.T) {
		o := opts
		o.Window = time.Minute
		p := lockedApplyConfirmed(t, st, target, a, o)
		if _, msg, err := st.Rollback(target, RollbackOptions{IfExpired: true}); err != nil || !strings.HasPrefix(msg, "not due") {
			t.Fatalf("--if-expired before the deadline: %q, %v", msg, err)
		}
		if _, _, err := st.Rollback(target, RollbackOptions{ID: "other"}); err == nil {
			t.Fatal("a rollback of another window was accepted")
		}
		closed, msg, err := st.Rollback(target, RollbackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if closed == nil || closed.ID != p.ID || !strings.HasPrefix(msg, "rolled back at ") {
			t.Fatalf("rollback: %v %q", closed, msg)
		}
		if got := which(t, target, all); got != 1 {
			t.Fatalf("after the rollback the kernel holds ruleset %d, want the one before the window", got)
		}
		var none *NothingPendingError
		if _, _, err := st.Rollback(target, RollbackOptions{}); err == nil || !errors.As(err, &none) {
			t.Fatalf("a second rollback: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for WatcherAlive(p) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if WatcherAlive(p) {
			t.Fatal("the watcher did not exit after the rollback")
		}
	})

	t.Run("another boot", func(t *testing.T) {
		snap, err := Read(target)
		if err != nil {
			t.Fatal(err)
		}
		old := &Pending{ID: "0123456789abcdef", Table: "turnwall", NetNS: ns.Name, Applied: time.Now().Add(-time.Hour),
			Deadline: time.Now().Add(-59 * time.Minute), BootID: "not-this-boot", Previous: &Snapshot{Table: "turnwall"}}
		if err := st.writePending(old); err != nil {
			t.Fatal(err)
		}
		rec := recoverLocked(t, st, target)
		if rec.Closed == nil || !strings.HasPrefix(rec.Outcome, "dropped: the gateway restarted") {
			t.Fatalf("a record of another boot: %+v", rec)
		}
		after, err := Read(target)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameSnapshot(snap, after); err != nil || after.genID != snap.genID {
			t.Fatalf("dropping a stale record changed the kernel: %v", err)
		}
	})
}

// TestConfirmSystemdTimer: when systemd runs, the window gets a transient timer
// that rolls back at the deadline even with the watcher dead and no
// turnwall running again; confirm stops it. systemd-run and systemctl are
// stand-ins here: the fake systemd-run runs the command after --on-active,
// as the timer would.
func TestConfirmSystemdTimer(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "timer")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	a := caseRuleset(t, "case-issue-example")
	b := caseRuleset(t, "policies-private-relay")
	all := []*nftables.Ruleset{a, b}
	dir := t.TempDir()
	sysDir := filepath.Join(dir, "systemd-system")
	if err := os.Mkdir(sysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(dir, "calls")
	run := filepath.Join(dir, "systemd-run")
	ctl := filepath.Join(dir, "systemctl")
	// The fake timer: record the call, then run everything after -- once
	// --on-active has passed, in the background (at most 10 s).
	writeScript(t, run, `echo "systemd-run $*" >>`+calls+`
secs=1
while [ $# -gt 0 ]; do
	case "$1" in
	--on-active=*) secs=${1#--on-active=}; secs=${secs%s} ;;
	--) shift; break ;;
	esac
	shift
done
[ "$secs" -le 10 ] || exit 1
( sleep "$secs"; "$@" >>`+filepath.Join(dir, "timer.log")+` 2>&1 ) </dev/null >/dev/null 2>&1 &
`)
	writeScript(t, ctl, `echo "systemctl $*" >>`+calls+"\n")
	st := State{Dir: filepath.Join(dir, "state"), Systemctl: ctl}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{childEnv + "=rollback", "TW_STATE=" + st.Dir, "TW_NETNS=" + ns.Name, "TW_TABLE=turnwall"}
	opts := ConfirmOptions{Window: time.Second, Watcher: func(id string) *exec.Cmd {
		return child("watch", "TW_STATE="+st.Dir, "TW_NETNS="+ns.Name, "TW_TABLE=turnwall", "TW_ID="+id)
	}, Timer: &SystemdTimer{SystemDir: sysDir, Run: run, Command: func(id string) []string {
		return append([]string{"env"}, append(env, "TW_ID="+id, self, "-test.run=^$")...)
	}}}
	mustApply(t, ns, a)

	p := lockedApplyConfirmed(t, st, target, b, opts)
	if p.Timer != TimerUnit(p.ID) {
		t.Fatalf("timer %q, want %q", p.Timer, TimerUnit(p.ID))
	}
	data, _ := os.ReadFile(calls)
	if want := "systemd-run --quiet --collect --unit turnwall-rollback-" + p.ID + " "; !strings.HasPrefix(string(data), want) || !strings.Contains(string(data), " --on-active=2s ") {
		t.Fatalf("systemd-run called as\n%s\nwant %s... --on-active=2s", data, want)
	}
	killWatcher(t, p)
	waitGone(t, st.pendingPath(target), 10*time.Second)
	if got := which(t, target, all); got != 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "timer.log"))
		t.Fatalf("after the timer the kernel holds ruleset %d, want the previous one (timer log: %s)", got, log)
	}
	if o := st.Outcome(target); !strings.HasPrefix(o, "expired: rolled back at ") || !strings.Contains(o, "the test timer") {
		t.Fatalf("outcome %q", o)
	}

	// A confirmed window's timer is stopped.
	os.Remove(calls)
	p = lockedApplyConfirmed(t, st, target, b, opts)
	if _, err := st.Confirm(target); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(calls)
	if !strings.Contains(string(data), "systemctl stop "+TimerUnit(p.ID)+"\n") {
		t.Fatalf("confirm did not stop the timer:\n%s", data)
	}
	// The fake timer still fires (the stand-in ignores stop): it finds
	// nothing to roll back, and the kernel keeps the confirmed ruleset.
	time.Sleep(time.Until(p.Deadline) + 1500*time.Millisecond)
	if got := which(t, target, all); got != 1 {
		t.Fatalf("after a confirmed window the kernel holds ruleset %d, want the new one", got)
	}

	// Without systemd no timer is scheduled.
	os.Remove(calls)
	if err := os.Remove(sysDir); err != nil {
		t.Fatal(err)
	}
	p = lockedApplyConfirmed(t, st, target, a, opts)
	if p.Timer != "" {
		t.Fatalf("a timer without systemd: %q", p.Timer)
	}
	if _, err := os.Stat(calls); err == nil {
		t.Fatal("systemd-run was called without systemd")
	}
	if _, _, err := st.Rollback(target, RollbackOptions{}); err != nil {
		t.Fatal(err)
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestConfirmPendingRecord: the record round-trips through JSON (the saved
// ruleset included), and a window's watcher is told apart from a process
// that reused its pid.
func TestConfirmPendingRecord(t *testing.T) {
	st := State{Dir: t.TempDir()}
	p := &Pending{ID: "00ff", Table: "turnwall", NetNS: "lab", Applied: time.Unix(1700000000, 0).UTC(), Deadline: time.Unix(1700000060, 0).UTC(),
		Watcher: os.Getpid(), Timer: TimerUnit("00ff"), Policy: `policy "x"`, BootID: bootID(), NetNSID: "net:[1]",
		Previous: &Snapshot{Table: "turnwall"}}
	p.WatcherStart, _ = procStart(os.Getpid())
	if err := st.writePending(p); err != nil {
		t.Fatal(err)
	}
	got, err := st.ReadPending(Target{Table: "turnwall", NetNS: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(p)
		t.Fatalf("read back\n%s\nwant\n%s", a, b)
	}
	if !WatcherAlive(p) {
		t.Fatal("this process is not taken for alive")
	}
	p.WatcherStart++
	if WatcherAlive(p) {
		t.Fatal("a process with another start time is taken for the watcher")
	}
	if bootID() == "" {
		t.Fatal("no boot id")
	}
}

// TestApplyMissingInterfaces: names must exist; a pattern ending in '*' is
// there when any interface starts with its prefix.
func TestApplyMissingInterfaces(t *testing.T) {
	src := ir.Source{File: "policy.hcl", Line: 3}
	zones := []ir.Zone{
		{Name: "agents", Interfaces: []string{"vlan20", "vlan*"}, Source: src},
		{Name: "internet", Interfaces: []string{"wan0", "ppp*"}, Source: src},
		{Name: "dmz", Interfaces: []string{"dmz0"}, Source: src},
	}
	got := missingInterfaces(zones, []string{"dmz0", "lo", "vlan20", "wan01"})
	want := []MissingInterface{
		{Zone: "internet", Interface: "wan0", Source: src},
		{Zone: "internet", Interface: "ppp*", Wildcard: true, Source: src},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("missing %+v, want %+v", got, want)
	}
	if got := missingInterfaces(zones[:1], []string{"vlan100"}); len(got) != 1 || got[0].Interface != "vlan20" {
		t.Fatalf("vlan* matched by vlan100, vlan20 missing: got %+v", got)
	}
}

// TestConfirmStaleRecords: a window recorded in another network namespace is
// never rolled back into this one: Recover refuses for the caller's own
// namespace, and drops the record when the named namespace is gone.
func TestConfirmStaleRecords(t *testing.T) {
	st := State{Dir: t.TempDir()}
	past := time.Now().Add(-time.Minute)
	here := Target{Table: "turnwall"}
	if err := st.writePending(&Pending{ID: "01", Table: "turnwall", Applied: past, Deadline: past, BootID: bootID(), NetNSID: "net:[1]", Previous: &Snapshot{Table: "turnwall"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recover(here, "the test"); err == nil || !strings.Contains(err.Error(), "belongs to another network namespace (net:[1]") {
		t.Fatalf("a window of another namespace: %v", err)
	}
	if p, _ := st.ReadPending(here); p == nil {
		t.Fatal("the record of another namespace was removed")
	}
	gone := Target{Table: "turnwall", NetNS: filepath.Join(t.TempDir(), "no-such-netns")}
	if err := st.writePending(&Pending{ID: "02", Table: "turnwall", NetNS: gone.NetNS, Applied: past, Deadline: past, BootID: bootID(), NetNSID: "net:[1]", Previous: &Snapshot{Table: "turnwall"}}); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Recover(gone, "the test")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Closed == nil || !strings.HasPrefix(rec.Outcome, "dropped: network namespace "+gone.NetNS+" is gone") {
		t.Fatalf("a window of a namespace that is gone: %+v", rec)
	}
	if p, _ := st.ReadPending(gone); p != nil {
		t.Fatal("the record of a namespace that is gone stays")
	}
}

// TestApplyInterfacesInNamespace: the interfaces are listed inside the
// target's namespace, not the caller's.
func TestApplyInterfacesInNamespace(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "ifaces")
	got, err := Interfaces(Target{Table: "turnwall", NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"lo"}) {
		t.Fatalf("a new namespace has interfaces %q, want only lo", got)
	}
	missing, _, err := MissingInterfaces(Target{Table: "turnwall", NetNS: ns.Name}, []ir.Zone{{Name: "lan", Interfaces: []string{"lo", "l*", "eth0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || missing[0].Interface != "eth0" {
		t.Fatalf("missing %+v, want eth0", missing)
	}
}
