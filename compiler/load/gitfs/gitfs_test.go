package gitfs_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load"
	"github.com/turnwall/turnwall/compiler/load/gitfs"
)

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func repo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	files := map[string]string{
		"secret.txt":          "SECRET\n",
		"policy/policy.hcl":   "policy \"p\" {}\n",
		"policy/ranges.txt":   "10.0.0.0/8\n",
		"policy/sub/deep.txt": "deep\n",
		"policy/notes.md":     "notes\n",
	}
	for n, s := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../secret.txt", filepath.Join(dir, "policy", "link.txt")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "v1")
	// The working tree moves on; the FS reads the commit.
	if err := os.WriteFile(filepath.Join(dir, "policy", "ranges.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFS: the revision passes the standard library's file system checks.
func TestFS(t *testing.T) {
	dir := repo(t)
	fsys, err := gitfs.Open(dir, "HEAD", "policy")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "policy.hcl", "ranges.txt", "sub/deep.txt", "notes.md"); err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "ranges.txt")
	if err != nil || string(data) != "10.0.0.0/8\n" {
		t.Errorf("ranges.txt at HEAD: %q, %v", data, err)
	}
}

// TestConfined: the loader's reads through a revision are confined like
// reads from disk: a committed link out of the directory is refused, and
// .. cannot climb to the rest of the repository.
func TestConfined(t *testing.T) {
	dir := repo(t)
	fsys, err := gitfs.Open(dir, "HEAD", "policy")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := load.FS(fsys, filepath.Join(dir, "policy"), "")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for name, want := range map[string]diag.Code{
		"ranges.txt":    "",
		"link.txt":      diag.FileOutsidePolicy,
		"../secret.txt": diag.FileOutsidePolicy,
		"sub":           diag.FileOutsidePolicy,
		"missing.txt":   "",
	} {
		_, data, err := cfg.ReadFile(name)
		if strings.Contains(string(data), "SECRET") {
			t.Errorf("%s: read the secret", name)
		}
		if want != "" && load.CodeOf(err) != want {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
	if _, _, err := cfg.ReadFile("missing.txt"); err == nil {
		t.Error("missing.txt read")
	}
}

func TestOpenRefusesOptions(t *testing.T) {
	dir := repo(t)
	for _, rev := range []string{"", "--output=/tmp/x", "nosuch"} {
		if _, err := gitfs.Open(dir, rev, ""); err == nil {
			t.Errorf("Open(%q) succeeded", rev)
		}
	}
}
