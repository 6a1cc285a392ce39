package apply

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
)

// DefaultStateDir is where apply keeps its lock and the rulesets saved for
// confirm windows. It is on disk, so a pending rollback survives every
// process; a record from before a reboot is recognised by the boot id it
// carries and dropped (the kernel's ruleset did not survive either).
// TURNWALL_STATE_DIR overrides it.
func DefaultStateDir() string {
	if d := os.Getenv("TURNWALL_STATE_DIR"); d != "" {
		return d
	}
	return "/var/lib/turnwall"
}

// State is apply's state directory.
type State struct {
	Dir string
	// Systemctl stops the systemd timer of a closed window (default
	// "systemctl").
	Systemctl string
}

func (st State) ensure() error {
	if st.Dir == "" {
		return errors.New("no state directory")
	}
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// Lock takes the lock that keeps two turnwall processes from changing the
// ruleset at once, waiting up to wait. The kernel drops the lock when the
// process dies, so a killed apply never leaves it held.
func (st State) Lock(wait time.Duration) (unlock func(), err error) {
	if err := st.ensure(); err != nil {
		return nil, err
	}
	path := filepath.Join(st.Dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(path)
			f.Close()
			return nil, fmt.Errorf("another turnwall process (pid %s) is changing the ruleset and still held %s after %v; try again when it has finished", strings.TrimSpace(string(holder)), path, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// Pending is an apply waiting for `turnwall confirm`.
type Pending struct {
	ID      string    `json:"id"`
	Table   string    `json:"table"`
	NetNS   string    `json:"netns,omitempty"`
	Applied time.Time `json:"applied"`
	// Deadline is when Previous is restored unless confirmed: by the
	// watcher, by the systemd timer, or by the next turnwall that runs.
	Deadline time.Time `json:"deadline"`
	Watcher  int       `json:"watcher_pid"`
	// WatcherStart is the watcher's start time (/proc/PID/stat, clock ticks
	// since boot), so that a reused pid is not taken for the watcher.
	WatcherStart uint64 `json:"watcher_start,omitempty"`
	// Timer is the systemd timer unit that rolls back at the deadline, if
	// one was scheduled.
	Timer  string `json:"timer,omitempty"`
	Policy string `json:"policy,omitempty"`
	// BootID and NetNSID say which kernel and network namespace the table
	// lives in: a record from before a reboot, or read from another
	// namespace, is never rolled back into the wrong ruleset.
	BootID   string    `json:"boot_id,omitempty"`
	NetNSID  string    `json:"netns_id,omitempty"`
	Previous *Snapshot `json:"previous"`
}

func key(t Target) string {
	ns := t.NetNS
	if ns == "" {
		ns = "-"
	}
	return url.PathEscape(ns) + "_" + url.PathEscape(t.Table)
}

func (st State) pendingPath(t Target) string {
	return filepath.Join(st.Dir, "pending-"+key(t)+".json")
}

func (st State) outcomePath(t Target) string {
	return filepath.Join(st.Dir, "outcome-"+key(t)+".txt")
}

// ReadPending returns the pending confirm of a target, or nil.
func (st State) ReadPending(t Target) (*Pending, error) {
	data, err := os.ReadFile(st.pendingPath(t))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Pending
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", st.pendingPath(t), err)
	}
	return &p, nil
}

func (st State) writePending(p *Pending) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeAtomic(st.pendingPath(Target{Table: p.Table, NetNS: p.NetNS}), data)
}

func (st State) removePending(t Target) error {
	err := os.Remove(st.pendingPath(t))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Outcome is the last confirm or rollback of a target, for messages.
func (st State) Outcome(t Target) string {
	data, _ := os.ReadFile(st.outcomePath(t))
	return strings.TrimSpace(string(data))
}

// writeOutcome records how a window ended (the message says when).
func (st State) writeOutcome(t Target, format string, args ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ") + "\n"
	writeAtomic(st.outcomePath(t), []byte(msg))
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	for _, e := range []error{werr, serr, cerr} {
		if e != nil {
			os.Remove(tmp.Name())
			return e
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// ConfirmOptions configure ApplyConfirmed.
type ConfirmOptions struct {
	Window time.Duration
	Policy string // shown by status
	// Watcher returns the command that watches the window: a process that
	// must outlive this one and run Watch(state, target, id). ApplyConfirmed
	// starts it in its own session.
	Watcher func(id string) *exec.Cmd
	// Timer, when set and usable, schedules a systemd timer that rolls back
	// at the deadline even if the watcher dies and no turnwall runs again.
	Timer *SystemdTimer
}

// ApplyConfirmed applies want with a confirm window: the previous table is
// saved on disk and a detached watcher restores it when the window ends,
// unless Confirm is called first. The watcher starts before the ruleset
// changes, so even if this process dies half-way the previous table comes
// back. Should the watcher die too, a systemd timer (when there is one) or
// the next turnwall invocation (Recover) rolls back. The caller holds the
// lock.
func (st State) ApplyConfirmed(t Target, want *nftables.Ruleset, o ConfirmOptions) (*Result, *Pending, error) {
	if o.Window <= 0 {
		return nil, nil, errors.New("the confirm window must be positive")
	}
	if err := st.ensure(); err != nil {
		return nil, nil, err
	}
	if p, err := st.ReadPending(t); err != nil {
		return nil, nil, err
	} else if p != nil {
		return nil, nil, fmt.Errorf("an apply of %s is waiting for `turnwall confirm` until %s; confirm it or let it roll back first", t, p.Deadline.Format(time.RFC3339))
	}
	nsID, err := netnsID(t)
	if err != nil {
		return nil, nil, err
	}
	rec := st.readRecord(t)
	prev, fromRec, err := readWithRecord(t, rec)
	if err != nil {
		return nil, nil, err
	}
	plan, err := NewPlan(prev, want)
	if err != nil {
		return nil, nil, err
	}
	if !plan.Changed() {
		return &Result{Plan: plan, Previous: prev, Generation: prev.genID, Attempts: 1, FromRecord: fromRec}, nil, nil
	}
	idb := make([]byte, 8)
	rand.Read(idb)
	p := &Pending{ID: hex.EncodeToString(idb), Table: t.Table, NetNS: t.NetNS, Applied: time.Now(),
		Deadline: time.Now().Add(o.Window), Policy: o.Policy, BootID: bootID(), NetNSID: nsID, Previous: prev}
	if err := st.writePending(p); err != nil {
		return nil, nil, fmt.Errorf("saving the previous ruleset: %w", err)
	}
	cmd := o.Watcher(p.ID)
	if err := startDetached(cmd, filepath.Join(st.Dir, "watch-"+key(t)+".log")); err != nil {
		st.removePending(t)
		return nil, nil, fmt.Errorf("starting the confirm watcher: %w", err)
	}
	p.Watcher = cmd.Process.Pid
	p.WatcherStart, _ = procStart(p.Watcher)
	res, held, err := apply(t, want, rec)
	st.keepRecord(t, res, held, err)
	if err != nil {
		// Nothing to roll back when the kernel still holds the previous
		// table (the batch was refused, or the read-back restored it);
		// otherwise the watcher restores it when the window ends.
		if cur, rerr := Read(t); rerr == nil && sameSnapshot(prev, cur) == nil {
			st.removePending(t)
		} else {
			st.writePending(p) // the watcher's pid, for status
		}
		return res, nil, err
	}
	p.Applied = time.Now()
	p.Deadline = p.Applied.Add(o.Window)
	if o.Timer != nil && o.Timer.usable(t) {
		// Best effort: without the timer the watcher and the next turnwall
		// invocation still roll back.
		if unit, terr := o.Timer.schedule(p); terr == nil {
			p.Timer = unit
		} else {
			res.Warnings = append(res.Warnings, fmt.Sprintf("no systemd timer for the rollback (%v); the watcher and the next turnwall invocation roll back", terr))
		}
	}
	if err := st.writePending(p); err != nil {
		return res, p, fmt.Errorf("the ruleset was applied but the confirm deadline could not be saved (the rollback comes at %s): %w", p.Deadline.Format(time.RFC3339), err)
	}
	return res, p, nil
}

// startDetached starts a process in its own session, its output in a log
// file, and does not wait for it.
func startDetached(cmd *exec.Cmd, logPath string) error {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it if this process lives longer
	return nil
}

// NothingPendingError: no apply of the target waits for a confirm.
type NothingPendingError struct {
	Verb   string // "confirm", "roll back"
	Target Target
	Last   string // the last outcome, if any
}

func (e *NothingPendingError) Error() string {
	msg := fmt.Sprintf("nothing to %s: no apply of %s is waiting for confirmation", e.Verb, e.Target)
	if e.Last != "" {
		msg += " (last: " + e.Last + ")"
	}
	return msg
}

// Confirm keeps the ruleset of a pending apply: the record is removed (the
// watcher sees it gone and exits) and the systemd timer is stopped. A
// window whose deadline has passed is rolled back instead, as the watcher
// would have done, and Confirm fails saying so. The caller holds the lock.
func (st State) Confirm(t Target) (*Pending, error) {
	rec, err := st.Recover(t, "turnwall confirm")
	if err != nil {
		return nil, err
	}
	if rec.Closed != nil {
		return nil, fmt.Errorf("too late to confirm: %s", rec.Outcome)
	}
	p := rec.Pending
	if p == nil {
		return nil, &NothingPendingError{Verb: "confirm", Target: t, Last: st.Outcome(t)}
	}
	msg := fmt.Sprintf("confirmed at %s: the apply of %s (window until %s) stays", time.Now().Format(time.RFC3339), p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339))
	if p.Timer != "" {
		if err := st.cancelErr(p); err != nil {
			msg += fmt.Sprintf("; stopping the timer %s failed (%v): when it runs it finds nothing to roll back", p.Timer, err)
		}
	}
	st.writeOutcome(t, "%s", msg)
	if err := st.removePending(t); err != nil {
		return nil, err
	}
	return p, nil
}

// Watch waits for a pending apply's window to end and restores the previous
// table unless it was confirmed (its record is gone or replaced). It returns
// when done; the loop is bounded by the deadline, re-read on every turn.
func (st State) Watch(t Target, id string, lockWait time.Duration) error {
	var seen os.FileInfo
	var p *Pending
	for {
		// The record holds the saved ruleset (megabytes for big sets): it
		// is parsed again only when it was replaced (a new deadline).
		info, err := os.Stat(st.pendingPath(t))
		if errors.Is(err, os.ErrNotExist) {
			return nil // confirmed
		}
		if err != nil {
			return err
		}
		if seen == nil || !os.SameFile(seen, info) || !seen.ModTime().Equal(info.ModTime()) {
			if p, err = st.ReadPending(t); err != nil {
				return err
			}
			seen = info
		}
		if p == nil || p.ID != id {
			return nil // confirmed, or superseded
		}
		left := time.Until(p.Deadline)
		if left > 0 {
			time.Sleep(min(left, 200*time.Millisecond))
			continue
		}
		unlock, err := st.Lock(lockWait)
		if err != nil {
			return err
		}
		_, _, err = st.Rollback(t, RollbackOptions{ID: id, IfExpired: true, By: "the confirm watcher"})
		unlock()
		var none *NothingPendingError
		if errors.As(err, &none) {
			return nil // another turnwall closed the window meanwhile
		}
		return err
	}
}
