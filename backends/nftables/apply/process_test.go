package apply

import (
	"bufio"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
)

// which reports which of the rulesets the kernel holds exactly, or -1.
func which(t *testing.T, target Target, candidates []*nftables.Ruleset) int {
	t.Helper()
	snap, err := Read(target)
	if err != nil {
		t.Fatal(err)
	}
	for i, rs := range candidates {
		p, err := NewPlan(snap, rs)
		if err != nil {
			t.Fatal(err)
		}
		if p.Action == NoChange {
			return i
		}
	}
	return -1
}

// TestKillDuringApply kills an applying process with SIGKILL at random
// points, 20 times: the kernel always holds the old or the new ruleset,
// never a mix, and the lock is free again at once.
func TestKillDuringApply(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "kill")
	dir := t.TempDir()
	target := Target{Table: "turnwall", NetNS: ns.Name}
	// Two rulesets that differ in rules and sets (a replacement), and a
	// third that differs from the first in one set's elements (a delta).
	a := synthetic("turnwall", 12_000, 4_000, 0)
	b := synthetic("turnwall", 8_000, 6_000, 1)
	c := withPrefix(a, "big_v4", "-20.0.0.8/32")
	all := []*nftables.Ruleset{a, b, c}
	files := make([]string, len(all))
	for i, rs := range all {
		data, _ := json.Marshal(rs)
		files[i] = filepath.Join(dir, string(rune('a'+i))+".json")
		if err := os.WriteFile(files[i], data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// How long an apply takes here, from process start.
	start := time.Now()
	if out, err := child("noop").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	startup := time.Since(start)
	mustApply(t, ns, a)
	start = time.Now()
	mustApply(t, ns, b)
	mustApply(t, ns, a)
	perApply := time.Since(start) / 2
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("process start %v, apply %v, seed %d", startup, perApply, seed)
	st := State{Dir: filepath.Join(dir, "state")}
	outcomes := map[string]int{}
	cur := which(t, target, all)
	for i := 0; i < 20; i++ {
		next := (cur + 1 + i%2) % len(all)
		cmd := child("apply", "TW_STATE="+st.Dir, "TW_NETNS="+ns.Name, "TW_RULESET="+files[next])
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(startup + perApply*3/2)))
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		got := which(t, target, all)
		switch got {
		case cur:
			outcomes["old"]++
		case next:
			outcomes["new"]++
		default:
			t.Fatalf("kill %d after %v (exit %v): the kernel holds neither the old nor the new ruleset", i, delay, err)
		}
		unlock, err := st.Lock(0)
		if err != nil {
			t.Fatalf("kill %d: the lock is still held: %v", i, err)
		}
		unlock()
		cur = got
	}
	t.Logf("after 20 kills the kernel held the old ruleset %d times, the new one %d times", outcomes["old"], outcomes["new"])
}

// TestLock: one process at a time; a killed holder frees the lock.
func TestLock(t *testing.T) {
	st := State{Dir: t.TempDir()}
	holder := child("lock", "TW_STATE="+st.Dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("the holder said %q", line)
	}
	_, err = st.Lock(100 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "another turnwall process (pid ") {
		t.Fatalf("a second lock: %v", err)
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	unlock, err := st.Lock(2 * time.Second)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	unlock()
}

// waitGone waits (bounded) until a file no longer exists.
func waitGone(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after %v", path, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pidGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestConfirm: with a confirm window the previous ruleset comes back when
// the window ends unconfirmed (here after the applying process has moved
// on), and stays replaced when confirmed.
func TestConfirm(t *testing.T) {
	needKernel(t)
	ns := newNS(t, "confirm")
	target := Target{Table: "turnwall", NetNS: ns.Name}
	a := caseRuleset(t, "case-issue-example")
	b := caseRuleset(t, "policies-private-relay")
	all := []*nftables.Ruleset{a, b}
	st := State{Dir: t.TempDir()}
	opts := ConfirmOptions{Window: 1500 * time.Millisecond, Policy: "private-relay", Watcher: func(id string) *exec.Cmd {
		return child("watch", "TW_STATE="+st.Dir, "TW_NETNS="+ns.Name, "TW_TABLE=turnwall", "TW_ID="+id)
	}}
	mustApply(t, ns, a)

	t.Run("expires", func(t *testing.T) {
		unlock, err := st.Lock(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		res, p, err := st.ApplyConfirmed(target, b, opts)
		unlock()
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan.Action != Replace || p == nil {
			t.Fatalf("apply: %s, pending %v", res.Plan.Action, p)
		}
		if got := which(t, target, all); got != 1 {
			t.Fatalf("during the window the kernel holds ruleset %d", got)
		}
		if _, _, err := st.ApplyConfirmed(target, a, opts); err == nil {
			t.Fatal("a second apply during the window was accepted")
		}
		waitGone(t, st.pendingPath(target), 10*time.Second)
		if got := which(t, target, all); got != 0 {
			t.Fatalf("after the window the kernel holds ruleset %d, want the previous one", got)
		}
		if o := st.Outcome(target); !strings.Contains(o, "rolled back") {
			t.Fatalf("outcome %q", o)
		}
		if _, err := st.Confirm(target); err == nil || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("a late confirm: %v", err)
		}
	})

	t.Run("confirmed", func(t *testing.T) {
		_, p, err := st.ApplyConfirmed(target, b, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Confirm(target); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !pidGone(p.Watcher) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !pidGone(p.Watcher) {
			t.Fatal("the watcher did not exit after the confirm")
		}
		time.Sleep(time.Until(p.Deadline) + 300*time.Millisecond)
		if got := which(t, target, all); got != 1 {
			t.Fatalf("after a confirmed window the kernel holds ruleset %d, want the new one", got)
		}
		if o := st.Outcome(target); !strings.Contains(o, "confirmed") {
			t.Fatalf("outcome %q", o)
		}
	})
}
