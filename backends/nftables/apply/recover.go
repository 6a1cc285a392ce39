package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Recovery is what Recover found or did about a target's confirm window.
type Recovery struct {
	// Pending is the window still open, or nil.
	Pending *Pending
	// WatcherAlive: the open window's watcher process is still running.
	WatcherAlive bool
	// Closed is a window that Recover closed now (rolled back, or dropped
	// because the kernel or namespace it was opened in is gone); Outcome
	// says what was done.
	Closed  *Pending
	Outcome string
}

// Recover makes sure no confirm window outlives its deadline because its
// watcher died: a window whose deadline has passed is rolled back now (the
// previous ruleset restored, read back and verified), and a window opened
// before a reboot, or in a network namespace that no longer exists, is
// dropped without touching the kernel. by names the caller for the record
// ("turnwall status"). The caller holds the lock.
func (st State) Recover(t Target, by string) (*Recovery, error) {
	p, err := st.ReadPending(t)
	if err != nil || p == nil {
		return &Recovery{}, err
	}
	if msg, err := st.stale(t, p); err != nil {
		return nil, err
	} else if msg != "" {
		st.cancel(p)
		st.writeOutcome(t, "%s", msg)
		if err := st.removePending(t); err != nil {
			return nil, err
		}
		return &Recovery{Closed: p, Outcome: msg}, nil
	}
	alive := WatcherAlive(p)
	if time.Now().Before(p.Deadline) {
		return &Recovery{Pending: p, WatcherAlive: alive}, nil
	}
	who := fmt.Sprintf("%s (pid %d); the watcher, pid %d, was %s", by, os.Getpid(), p.Watcher, map[bool]string{true: "alive", false: "dead"}[alive])
	msg, err := st.rollback(t, p, true, who)
	if err != nil {
		return nil, err
	}
	return &Recovery{Closed: p, Outcome: msg}, nil
}

// RecoverLocking is Recover for a caller that does not hold the lock (status,
// plan): it takes the lock, waiting up to wait, only when a window must be
// closed.
func (st State) RecoverLocking(t Target, wait time.Duration, by string) (*Recovery, error) {
	p, err := st.ReadPending(t)
	if err != nil || p == nil {
		return &Recovery{}, err
	}
	if msg, err := st.stale(t, p); err != nil {
		return nil, err
	} else if msg == "" && time.Now().Before(p.Deadline) {
		return &Recovery{Pending: p, WatcherAlive: WatcherAlive(p)}, nil
	}
	unlock, err := st.Lock(wait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return st.Recover(t, by)
}

// stale says why a pending record no longer describes the kernel it was
// made for ("" when it does), or fails when it belongs to another network
// namespace that may still exist.
func (st State) stale(t Target, p *Pending) (string, error) {
	if p.BootID != "" && p.BootID != bootID() {
		return fmt.Sprintf("dropped: the gateway restarted after the apply of %s (rollback due at %s); the kernel holds what the boot loaded, nothing was rolled back",
			p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339)), nil
	}
	if p.NetNSID == "" {
		return "", nil
	}
	id, err := netnsID(t)
	if errors.Is(err, os.ErrNotExist) && t.NetNS != "" {
		return fmt.Sprintf("dropped: network namespace %s is gone since the apply of %s (rollback due at %s), and its ruleset with it; nothing was rolled back",
			t.NetNS, p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339)), nil
	}
	if err != nil {
		return "", err
	}
	if id == p.NetNSID {
		return "", nil
	}
	if t.NetNS != "" {
		return fmt.Sprintf("dropped: network namespace %s was created again since the apply of %s (rollback due at %s); the old one and its ruleset are gone, nothing was rolled back",
			t.NetNS, p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339)), nil
	}
	return "", fmt.Errorf("the confirm window in %s belongs to another network namespace (%s; this process is in %s): run turnwall in that namespace or with --netns, or remove the file if that namespace is gone",
		st.pendingPath(t), p.NetNSID, id)
}

// RollbackOptions configure Rollback.
type RollbackOptions struct {
	// ID, when set, names the window to roll back: another one is left
	// alone (a timer of an older window).
	ID string
	// IfExpired rolls back only a window whose deadline has passed (the
	// systemd timer, the watcher).
	IfExpired bool
	// By names who rolls back, for the record.
	By string
}

// Rollback restores the previous ruleset of the pending apply now, reads it
// back and verifies it, and closes the window. It returns the window and
// the outcome; with nothing pending, a *NothingPendingError. A window not
// yet due under IfExpired, or another window than ID, is left alone: the
// returned Pending is nil and the message says why. The caller holds the
// lock.
func (st State) Rollback(t Target, o RollbackOptions) (*Pending, string, error) {
	p, err := st.ReadPending(t)
	if err != nil {
		return nil, "", err
	}
	if p == nil || (o.ID != "" && p.ID != o.ID) {
		return nil, "", &NothingPendingError{Verb: "roll back", Target: t, Last: st.Outcome(t)}
	}
	if msg, err := st.stale(t, p); err != nil {
		return nil, "", err
	} else if msg != "" {
		st.cancel(p)
		st.writeOutcome(t, "%s", msg)
		if err := st.removePending(t); err != nil {
			return nil, "", err
		}
		return p, msg, nil
	}
	if o.IfExpired && time.Now().Before(p.Deadline) {
		return nil, fmt.Sprintf("not due: the apply of %s waits for confirmation until %s", p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339)), nil
	}
	by := o.By
	if by == "" {
		by = "turnwall rollback"
	}
	msg, err := st.rollback(t, p, !time.Now().Before(p.Deadline), fmt.Sprintf("%s (pid %d)", by, os.Getpid()))
	if err != nil {
		return nil, "", err
	}
	return p, msg, nil
}

// rollback restores p's previous ruleset and closes the window. When the
// restore fails the window stays open (the next turnwall tries again) and
// the error says what to do.
func (st State) rollback(t Target, p *Pending, expired bool, by string) (string, error) {
	now := time.Now().Format(time.RFC3339)
	if err := Restore(t, p.Previous); err != nil {
		st.writeOutcome(t, "restoring the previous ruleset FAILED at %s (%s): %v", now, by, err)
		return "", fmt.Errorf("restoring the ruleset from before the apply of %s failed: %w; the window stays open: 'turnwall rollback' tries again, 'turnwall confirm' keeps the current ruleset", p.Applied.Format(time.RFC3339), err)
	}
	var msg string
	if expired {
		msg = fmt.Sprintf("expired: rolled back at %s by %s: the apply of %s was not confirmed by %s; %s holds the previous ruleset again (read back and verified)",
			now, by, p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339), t)
	} else {
		msg = fmt.Sprintf("rolled back at %s by %s: the apply of %s (window until %s) was undone; %s holds the previous ruleset again (read back and verified)",
			now, by, p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339), t)
	}
	if p.Timer != "" {
		if err := st.cancelErr(p); err != nil {
			msg += fmt.Sprintf("; stopping the timer %s failed (%v): when it runs it finds nothing to roll back", p.Timer, err)
		}
	}
	// The outcome is written before the record goes: whoever sees the
	// record gone finds the outcome.
	st.writeOutcome(t, "%s", msg)
	if err := st.removePending(t); err != nil {
		return "", err
	}
	return msg, nil
}

func (st State) cancel(p *Pending) { st.cancelErr(p) }

func (st State) cancelErr(p *Pending) error {
	if p.Timer == "" {
		return nil
	}
	return cancelTimer(st.systemctl(), p.Timer)
}

func (st State) systemctl() string {
	if st.Systemctl != "" {
		return st.Systemctl
	}
	return "systemctl"
}

// WatcherAlive reports whether a pending window's watcher process still
// runs (a zombie, or another process that got its pid, does not count).
func WatcherAlive(p *Pending) bool {
	if p.Watcher <= 0 {
		return false
	}
	start, ok := procStart(p.Watcher)
	return ok && (p.WatcherStart == 0 || start == p.WatcherStart)
}

// procStart returns a live (not zombie) process's start time in clock ticks
// since boot, from /proc/PID/stat.
func procStart(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name is in parentheses and may hold anything: the
	// fields after the last ')' are state (3) ... starttime (22).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

// bootID identifies this boot of the kernel.
func bootID() string {
	data, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(data))
}

// netnsID identifies the network namespace of a target ("net:[INODE]").
func netnsID(t Target) (string, error) {
	path := t.nsPath()
	if path == "" {
		path = "/proc/self/ns/net"
	}
	return nsInode(path)
}

func nsInode(path string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", &os.PathError{Op: "network namespace", Path: path, Err: err}
	}
	return fmt.Sprintf("net:[%d]", st.Ino), nil
}

// SystemdTimer schedules a transient systemd timer that runs the rollback
// command when a confirm window ends: the rollback then happens even if the
// watcher is killed and no turnwall runs again.
type SystemdTimer struct {
	// SystemDir exists when systemd runs the system ("/run/systemd/system").
	SystemDir string
	// Run is systemd-run.
	Run string
	// Command returns the rollback command of a window, an absolute path
	// first (turnwall rollback --if-expired --id ID ...).
	Command func(id string) []string
}

// DefaultSystemdTimer is systemd's transient timers, with the rollback
// command given.
func DefaultSystemdTimer(command func(id string) []string) *SystemdTimer {
	return &SystemdTimer{SystemDir: "/run/systemd/system", Run: "systemd-run", Command: command}
}

// usable: systemd runs, systemd-run is there, and a command run by it (in
// PID 1's network namespace) reaches the target's table: the target names
// its namespace, or this process is in PID 1's.
func (s *SystemdTimer) usable(t Target) bool {
	if s.Command == nil {
		return false
	}
	if info, err := os.Stat(s.SystemDir); err != nil || !info.IsDir() {
		return false
	}
	if _, err := exec.LookPath(s.Run); err != nil {
		return false
	}
	if t.NetNS != "" {
		return true
	}
	self, err1 := nsInode("/proc/self/ns/net")
	init, err2 := nsInode("/proc/1/ns/net")
	return err1 == nil && err2 == nil && self == init
}

// TimerUnit is the name of a window's systemd timer.
func TimerUnit(id string) string { return "turnwall-rollback-" + id + ".timer" }

// schedule starts the transient timer for p's deadline (a second late, so
// the deadline has passed when it fires) and returns its unit.
func (s *SystemdTimer) schedule(p *Pending) (string, error) {
	secs := int64(math.Ceil(time.Until(p.Deadline).Seconds())) + 1
	if secs < 1 {
		secs = 1
	}
	unit := "turnwall-rollback-" + p.ID
	args := []string{"--quiet", "--collect", "--unit", unit,
		"--description", "turnwall: roll back " + p.Table + " unless confirmed",
		"--on-active=" + strconv.FormatInt(secs, 10) + "s",
		"--timer-property=AccuracySec=1s", "--timer-property=RemainAfterElapse=no", "--"}
	args = append(args, s.Command(p.ID)...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.Run, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", s.Run, err, strings.TrimSpace(string(out)))
	}
	return unit + ".timer", nil
}

// cancelTimer stops a window's timer (a timer already gone is fine).
func cancelTimer(systemctl, unit string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, systemctl, "stop", unit).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "not loaded") {
		return fmt.Errorf("%s stop %s: %v: %s", systemctl, unit, err, strings.TrimSpace(string(out)))
	}
	return nil
}
