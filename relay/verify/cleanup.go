package verify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

// Lab state a verify killed with SIGKILL leaves behind: its namespaces
// (tw-PID-N-role, with the gateway's nftables tables in them) and their bind
// mounts under /run/netns (and /etc/netns, where a tool made one), and its
// coturn directories (turnwall-lab-coturn-PID-*, with the lab's TURN secret
// in the configuration). A verify marks its process as their owner in
// ownerDir while it runs; Cleanup removes the state of owners that are gone
// and nothing else: namespaces of live processes, or of processes that
// never marked themselves (tests, other tools), stay.

// Where the state lives; variables so tests can point them elsewhere.
var (
	ownerDir  = "/run/turnwall/verify"
	netnsDir  = "/run/netns"
	etcNetns  = "/etc/netns"
	tempDir   = os.TempDir
	procDir   = "/proc"
	ownerMu   sync.Mutex
	ownerRefs int
)

const coturnDirPrefix = "turnwall-lab-coturn-"

// claim marks this process as the owner of lab state; release undoes it
// when the last verify of the process ends.
func claim() error {
	ownerMu.Lock()
	defer ownerMu.Unlock()
	if ownerRefs == 0 {
		start, err := startTime(os.Getpid())
		if err != nil {
			return err
		}
		if err := os.MkdirAll(ownerDir, 0o700); err != nil {
			return fmt.Errorf("verify: marking the lab's owner: %w", err)
		}
		if err := os.WriteFile(filepath.Join(ownerDir, strconv.Itoa(os.Getpid())), []byte(start+"\n"), 0o600); err != nil {
			return fmt.Errorf("verify: marking the lab's owner: %w", err)
		}
	}
	ownerRefs++
	return nil
}

func release() {
	ownerMu.Lock()
	defer ownerMu.Unlock()
	if ownerRefs--; ownerRefs == 0 {
		os.Remove(filepath.Join(ownerDir, strconv.Itoa(os.Getpid())))
	}
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks since boot. With the PID it names one process for good.
func startTime(pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("%s/%d/stat: unexpected format", procDir, pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("%s/%d/stat: unexpected format", procDir, pid)
	}
	return f[19], nil
}

// alive reports whether the process that wrote a marker still runs: its
// PID exists and started when the marker says (not a reused PID).
func alive(pid int, marker string) bool {
	start, err := startTime(pid)
	return err == nil && start == strings.TrimSpace(marker)
}

// Cleanup removes the lab state of verifies that were killed: every
// namespace, /etc/netns entry and coturn directory of a process that marked
// itself as a lab owner and no longer runs, and then its marker. It
// returns what it removed, one line each ("namespace tw-123-4-gw"). A
// verify runs it before building its own lab; `turnwall verify --cleanup`
// runs it alone.
func Cleanup() ([]string, error) {
	entries, err := os.ReadDir(ownerDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Verifies starting at once clean up one after the other: each sees
	// what the one before left, never half of another's removal.
	lock, err := os.OpenFile(filepath.Join(ownerDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if entries, err = os.ReadDir(ownerDir); err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		marker := filepath.Join(ownerDir, e.Name())
		b, err := os.ReadFile(marker)
		if errors.Is(err, os.ErrNotExist) {
			continue // cleaned by a verify that held the lock before us
		}
		if err != nil || alive(pid, string(b)) {
			continue
		}
		r, err := removeStateOf(pid)
		removed = append(removed, r...)
		if err != nil {
			errs = append(errs, err)
			continue // keep the marker: the next cleanup tries again
		}
		if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// removeStateOf removes the namespaces and coturn directories of process
// pid.
func removeStateOf(pid int) ([]string, error) {
	var removed []string
	var errs []error
	nsPrefix := fmt.Sprintf("tw-%d-", pid)
	names := map[string]bool{}
	for _, dir := range []string{netnsDir, etcNetns} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), nsPrefix) {
				names[e.Name()] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		if _, err := os.Lstat(filepath.Join(netnsDir, n)); err == nil {
			// ip netns del unmounts the bind mount and removes the file;
			// the namespace (and its nftables tables) goes with its last
			// reference.
			// A process of the killed verify (a turnserver on its way out)
			// may still hold the namespace for a moment: try a few times.
			var err error
			for try := 0; try < 5; try++ {
				if err = (&netns.NS{Name: n}).Close(); err == nil {
					break
				}
				if _, gone := os.Lstat(filepath.Join(netnsDir, n)); errors.Is(gone, os.ErrNotExist) {
					break // removed meanwhile by another tool
				}
				time.Sleep(200 * time.Millisecond)
			}
			if _, gone := os.Lstat(filepath.Join(netnsDir, n)); err != nil && errors.Is(gone, os.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, "namespace "+n)
		}
		if _, err := os.Lstat(filepath.Join(etcNetns, n)); err == nil {
			if err := os.RemoveAll(filepath.Join(etcNetns, n)); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, "directory "+filepath.Join(etcNetns, n))
		}
	}
	dirPrefix := fmt.Sprintf("%s%d-", coturnDirPrefix, pid)
	entries, _ := os.ReadDir(tempDir())
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), dirPrefix) {
			p := filepath.Join(tempDir(), e.Name())
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, "coturn directory "+p)
		}
	}
	return removed, errors.Join(errs...)
}
