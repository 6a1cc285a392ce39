package verify

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/relay/netns/nstest"
)

// deadPID returns the id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// fakeNS creates namespace name as a lab would, with an nftables table in
// it, and removes it when the test ends if it is still there.
func fakeNS(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "netns", "exec", name, "nft", "add", "table", "inet", "turnwall").CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", name, err, out)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Cleanup removes the namespaces (tables in them), /etc/netns entries and
// coturn directories of an owner that died, and its marker; it leaves the
// state of a live owner, of a process that never marked itself, and of a
// marker whose PID now names another process (reused PID) goes.
func TestCleanupStaleOwners(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	owners, tmp, etc := t.TempDir(), t.TempDir(), t.TempDir()
	oldOwner, oldTemp, oldEtc := ownerDir, tempDir, etcNetns
	ownerDir, tempDir, etcNetns = owners, func() string { return tmp }, etc
	t.Cleanup(func() { ownerDir, tempDir, etcNetns = oldOwner, oldTemp, oldEtc })

	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	liveStart, err := startTime(live.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	dead, unmarked := deadPID(t), deadPID(t)
	reused := live.Process.Pid // marked with another start time below

	state := func(pid int) (ns, dir, etcDir string) {
		ns = "tw-" + strconv.Itoa(pid) + "-1-gw"
		dir = filepath.Join(tmp, coturnDirPrefix+strconv.Itoa(pid)+"-123")
		etcDir = filepath.Join(etc, "tw-"+strconv.Itoa(pid)+"-2-relay")
		return
	}
	mark := func(pid int, start string) {
		if err := os.WriteFile(filepath.Join(owners, strconv.Itoa(pid)), []byte(start+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, pid := range []int{dead, unmarked, live.Process.Pid} {
		ns, dir, etcDir := state(pid)
		fakeNS(t, ns)
		for _, d := range []string{dir, etcDir} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "turnserver.conf"), []byte("static-auth-secret=s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mark(dead, "12345")
	mark(live.Process.Pid, liveStart)

	removed, err := Cleanup()
	if err != nil {
		t.Fatal(err)
	}
	ns, dir, etcDir := state(dead)
	want := []string{"coturn directory " + dir, "directory " + etcDir, "namespace " + ns}
	got := slices.Clone(removed)
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("removed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range []string{filepath.Join(netnsDir, ns), dir, etcDir, filepath.Join(owners, strconv.Itoa(dead))} {
		if exists(p) {
			t.Errorf("%s is left", p)
		}
	}
	for _, pid := range []int{unmarked, live.Process.Pid} {
		ns, dir, etcDir := state(pid)
		for _, p := range []string{filepath.Join(netnsDir, ns), dir, etcDir} {
			if !exists(p) {
				t.Errorf("%s of process %d (live or never marked) was removed", p, pid)
			}
		}
	}
	if !exists(filepath.Join(owners, strconv.Itoa(live.Process.Pid))) {
		t.Error("the live owner's marker was removed")
	}

	// The same PID, started at another time: the marked owner is gone.
	mark(reused, "1")
	if removed, err = Cleanup(); err != nil || len(removed) != 3 {
		t.Errorf("reused PID: removed %q, %v", removed, err)
	}
	if again, err := Cleanup(); err != nil || len(again) != 0 {
		t.Errorf("a second cleanup removed %q, %v", again, err)
	}
}

// claim and release keep one marker per process while any verify runs.
func TestClaimRelease(t *testing.T) {
	owners := t.TempDir()
	old := ownerDir
	ownerDir = owners
	t.Cleanup(func() { ownerDir = old })
	marker := filepath.Join(owners, strconv.Itoa(os.Getpid()))
	if err := claim(); err != nil {
		t.Fatal(err)
	}
	if err := claim(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(marker)
	if err != nil || !alive(os.Getpid(), string(b)) {
		t.Fatalf("marker %q, %v: not this process", b, err)
	}
	release()
	if !exists(marker) {
		t.Error("marker removed while a verify still runs")
	}
	release()
	if exists(marker) {
		t.Error("marker left after the last verify")
	}
	if removed, err := Cleanup(); err != nil || len(removed) != 0 {
		t.Errorf("cleanup with no stale owner: %q, %v", removed, err)
	}
}
