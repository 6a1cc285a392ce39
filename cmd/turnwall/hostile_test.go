package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Limits every command must keep on hostile input (testdata/hostile): 2 s
// of CPU time (user + system: the work the input costs, which other tests
// running on the same cores cannot inflate), 10 s of wall time (nothing
// waits on a FIFO or a device), 1 GiB of memory.
const (
	hostileCPU  = 2 * time.Second
	hostileWall = 10 * time.Second
	hostileRSS  = 1 << 30 // bytes
)

// hostileCases names what each case of testdata/hostile must be reported
// as ("" is any positioned diagnostic: syntax errors of random input), and
// what the test adds at run time (symbolic links, FIFOs, big files: things
// git does not carry well or that would bloat the repository).
var hostileCases = map[string]struct {
	code  string
	setup func(t *testing.T, root, policy string)
	noGit bool // cannot be committed (a FIFO) or too big to commit quickly
}{
	"ranges-proc-environ": {code: "TW118"},
	"ranges-dotdot":       {code: "TW118"},
	"ranges-etc-shadow":   {code: "TW118"},
	"ranges-absolute":     {code: "TW118"},
	"ranges-pagemap":      {code: "TW118"},
	"symlink-policy-environ": {code: "TW118", setup: func(t *testing.T, root, policy string) {
		symlink(t, "/proc/self/environ", filepath.Join(policy, "zz.hcl"))
	}},
	"symlink-policy-secret": {code: "TW118", setup: func(t *testing.T, root, policy string) {
		symlink(t, "../secret.hcl", filepath.Join(policy, "zz.hcl"))
	}},
	"symlink-policy-dev-zero": {code: "TW118", setup: func(t *testing.T, root, policy string) {
		symlink(t, "/dev/zero", filepath.Join(policy, "zz.hcl"))
	}},
	"symlink-ranges": {code: "TW118", setup: func(t *testing.T, root, policy string) {
		symlink(t, "../secret.txt", filepath.Join(policy, "ranges.txt"))
	}},
	"symlink-cert": {code: "TW118", setup: func(t *testing.T, root, policy string) {
		symlink(t, "../secret.pem", filepath.Join(policy, "cert.pem"))
		writeFile(t, filepath.Join(policy, "key.pem"), "key")
	}},
	"fifo-policy": {code: "TW118", noGit: true, setup: func(t *testing.T, root, policy string) {
		mkfifo(t, filepath.Join(policy, "zz.hcl"))
	}},
	"fifo-ranges": {code: "TW118", noGit: true, setup: func(t *testing.T, root, policy string) {
		mkfifo(t, filepath.Join(policy, "ranges.txt"))
	}},
	"big-ranges": {code: "TW119", noGit: true, setup: func(t *testing.T, root, policy string) {
		writeFile(t, filepath.Join(policy, "ranges.txt"), strings.Repeat("10.0.0.0/8\n", 5<<20/11))
	}},
	"big-policy": {code: "TW119", noGit: true, setup: func(t *testing.T, root, policy string) {
		writeFile(t, filepath.Join(policy, "zz.hcl"), strings.Repeat("x = ((((\x00\xff\n", 50<<20/16))
	}},
	"setproduct":         {code: "TW119"},
	"doubling-locals":    {code: "TW119"},
	"template-amplify":   {code: "TW119"},
	"for-nested":         {code: "TW119"},
	"format-width":       {code: "TW119"},
	"join-amplify":       {code: "TW119"},
	"replace-amplify":    {code: "TW119"},
	"jsondecode-deep":    {code: "TW119"},
	"deep-parens":        {code: "TW119"},
	"deep-json":          {code: "TW119"},
	"deep-json-template": {code: "TW119"},
	"unary-chain":        {code: "TW119"},
	"escape-sequences":   {code: "TW115"},
	"escape-syntax":      {},
	"random-binary":      {},
	"random-json":        {},
	"huge-line":          {},
}

const hostileValid = `policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
provider "acs" {
  zone   = zone.wan
  ranges = ["20.202.0.0/16"]
  https  = true
  media  = { udp = ["3478-3481"] }
}
`

// TestHostilePolicies runs every command that reads a policy (validate,
// validate --format json, compile -o, diff OLD NEW, diff --base REV in a git
// repository) on every case of testdata/hostile, as a separate process, and
// checks that each: exits 1 with a positioned diagnostic of the expected
// code; never prints a secret planted outside the policy directory (in a
// file beside it and in the environment); prints no raw terminal escape;
// does not panic; takes under 2 s and 1 GiB; writes no output file.
func TestHostilePolicies(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	entries, err := os.ReadDir("../../testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(hostileCases) {
		t.Errorf("testdata/hostile has %d cases, the test knows %d", len(entries), len(hostileCases))
	}
	bin := filepath.Join(t.TempDir(), "turnwall")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	secret := fmt.Sprintf("TWSECRET%d", time.Now().UnixNano())
	for _, e := range entries {
		name := e.Name()
		c, ok := hostileCases[name]
		if !ok {
			t.Errorf("testdata/hostile/%s: no expectation in hostileCases", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			root := filepath.Join(work, "root")
			policy := filepath.Join(root, "policy")
			plant := func(dir string) {
				writeFile(t, filepath.Join(dir, "secret.txt"), secret+"\n"+secret+"-2\n")
				writeFile(t, filepath.Join(dir, "secret.hcl"), "password = \""+secret+"\"\n"+secret+"\n")
				writeFile(t, filepath.Join(dir, "secret.pem"), "-----BEGIN CERTIFICATE-----\n"+secret+"\n-----END CERTIFICATE-----\n")
			}
			setup := func(root, policy string) {
				if err := os.MkdirAll(policy, 0o755); err != nil {
					t.Fatal(err)
				}
				plant(root)
				copyCase(t, filepath.Join("../../testdata/hostile", name), policy, filepath.Join(root, "secret.txt"))
				if c.setup != nil {
					c.setup(t, root, policy)
				}
			}
			setup(root, policy)
			valid := filepath.Join(work, "valid.hcl")
			writeFile(t, valid, hostileValid)
			out := filepath.Join(work, "out")

			runs := [][]string{
				{"validate", policy},
				{"validate", "--format", "json", policy},
				{"compile", "--target", "nftables", "-o", out, policy},
				{"diff", valid, policy},
			}
			for _, args := range runs {
				checkHostile(t, bin, root, secret, c.code, args)
			}
			if _, err := os.Lstat(out); err == nil {
				t.Errorf("compile wrote %s", out)
			}

			if c.noGit {
				return
			}
			// diff --base: the hostile version is committed; the working
			// tree holds a valid policy.
			repo := filepath.Join(work, "repo")
			setup(repo, filepath.Join(repo, "policy"))
			gitRun(t, repo, "init", "-q")
			gitRun(t, repo, "add", "-A", "policy")
			gitRun(t, repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "hostile")
			if err := os.RemoveAll(filepath.Join(repo, "policy")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(repo, "policy", "policy.hcl"), hostileValid)
			checkHostile(t, bin, repo, secret, c.code, []string{"diff", "--base", "HEAD", "policy"})
		})
	}
}

var hostilePositioned = regexp.MustCompile(`(?m)^Error: [^\n]*\.(hcl|json|txt|pem):\d+:\d+: `)

func checkHostile(t *testing.T, bin, dir, secret, code string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TURNWALL_HOSTILE_SECRET="+secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	all := stdout.String() + stderr.String()
	label := strings.Join(args, " ")
	if ctx.Err() != nil {
		t.Fatalf("%s: hung (killed after %v)", label, wall)
	}
	if wall > hostileWall {
		t.Errorf("%s: took %v, limit %v", label, wall, hostileWall)
	}
	if cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(); cpu > hostileCPU {
		t.Errorf("%s: used %v of CPU, limit %v", label, cpu, hostileCPU)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss := int64(ru.Maxrss) * 1024
		t.Logf("%s %s: %v (CPU %v), max RSS %d MiB", args[0], args[1], wall.Round(time.Millisecond),
			(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Round(time.Millisecond), rss>>20)
		if rss > hostileRSS {
			t.Errorf("%s: max RSS %d MiB, limit %d MiB", label, rss>>20, hostileRSS>>20)
		}
	}
	if got := cmd.ProcessState.ExitCode(); got != 1 {
		t.Errorf("%s: exit %d (%v), want 1\n%s", label, got, err, clipOut(all))
	}
	if strings.Contains(all, secret) {
		t.Errorf("%s: output shows the secret planted outside the policy:\n%s", label, clipOut(all))
	}
	for _, bad := range []string{"panic", "goroutine ", "fatal error", "\x1b", "\x07", "\u202e"} {
		if strings.Contains(all, bad) {
			t.Errorf("%s: output holds %q:\n%s", label, bad, clipOut(all))
		}
	}
	if len(all) > 200_000 {
		t.Errorf("%s: %d bytes of output", label, len(all))
	}
	if args[1] == "--format" {
		if !regexp.MustCompile(`"range": \{\s*"filename"`).MatchString(all) || code != "" && !strings.Contains(all, `"code": "`+code) {
			t.Errorf("%s: no positioned %s diagnostic in JSON:\n%s", label, code, clipOut(all))
		}
		return
	}
	if !hostilePositioned.MatchString(all) {
		t.Errorf("%s: no positioned diagnostic:\n%s", label, clipOut(all))
	}
	if code != "" && !regexp.MustCompile(`:\d+:\d+: `+code+`: `).MatchString(all) {
		t.Errorf("%s: no %s diagnostic:\n%s", label, code, clipOut(all))
	}
}

func clipOut(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "\n[...]"
	}
	return s
}

// copyCase copies a case's files, writing the planted secret's absolute
// path where a case says @SECRET@.
func copyCase(t *testing.T, from, to, secretPath string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("@SECRET@"), []byte(secretPath))
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}
