package load_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load"
)

const minimal = "policy \"p\" {}\n"

func codes(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		out = append(out, string(diag.CodeOf(d))+" "+d.Summary+": "+d.Detail)
	}
	return out
}

func hasCode(diags hcl.Diagnostics, code diag.Code) bool {
	for _, d := range diags {
		if diag.CodeOf(d) == code && d.Subject != nil && d.Subject.Start.Line > 0 {
			return true
		}
	}
	return false
}

// TestFSIsTheLoader: a directory on disk and the same files in another
// fs.FS load to the same configuration (one loader for both).
func TestFSIsTheLoader(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.hcl":      minimal,
		"b.hcl.json": `{"zone": {"z": {"interface": "eth0"}}}`,
		"notes.txt":  "not a policy file",
	}
	mem := fstest.MapFS{}
	for n, s := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		mem[n] = &fstest.MapFile{Data: []byte(s), Mode: 0o644}
	}
	disk, d1 := load.Path(dir)
	inMem, d2 := load.FS(mem, dir, "")
	if d1.HasErrors() || d2.HasErrors() {
		t.Fatal(codes(d1), codes(d2))
	}
	for _, cfg := range []*load.Config{disk, inMem} {
		if len(cfg.Files) != 2 || len(cfg.Policies) != 1 || len(cfg.Zones) != 1 {
			t.Errorf("loaded %d files, %d policies, %d zones", len(cfg.Files), len(cfg.Policies), len(cfg.Zones))
		}
		if _, ok := cfg.Files[filepath.Join(dir, "b.hcl.json")]; !ok {
			t.Errorf("file names not shown under the root: %v", cfg.Files)
		}
	}
	// A single file: its directory is the root.
	one, d := load.Path(filepath.Join(dir, "a.hcl"))
	if d.HasErrors() || one.Root != dir || len(one.Files) != 1 {
		t.Errorf("single file: root %q, %d files, %v", one.Root, len(one.Files), codes(d))
	}
}

// TestConfinement: whatever a policy names, nothing outside its root and
// nothing but a regular file is read.
func TestConfinement(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "policy")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(top, "secret.txt"), "SECRET")
	write(filepath.Join(root, "policy.hcl"), minimal)
	write(filepath.Join(root, "sub", "ok.txt"), "10.0.0.0/8\n")
	for _, l := range [][2]string{
		{"../secret.txt", "out.txt"}, {"/proc/self/environ", "env.txt"}, {"sub/ok.txt", "in.txt"}, {"/dev/zero", "zero.txt"},
	} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := load.Path(root)
	if diags.HasErrors() {
		t.Fatal(codes(diags))
	}
	for _, c := range []struct {
		name string
		code diag.Code // "" means readable
	}{
		{"sub/ok.txt", ""},
		{"in.txt", ""}, // a link that stays inside
		{filepath.Join(root, "sub/ok.txt"), ""},
		{"../secret.txt", diag.FileOutsidePolicy},
		{"sub/../../secret.txt", diag.FileOutsidePolicy},
		{filepath.Join(top, "secret.txt"), diag.FileOutsidePolicy},
		{"/proc/self/environ", diag.FileOutsidePolicy},
		{"/etc/shadow", diag.FileOutsidePolicy},
		{"out.txt", diag.FileOutsidePolicy},
		{"env.txt", diag.FileOutsidePolicy},
		{"zero.txt", diag.FileOutsidePolicy},
		{"fifo.txt", diag.FileOutsidePolicy},
		{"sub", diag.FileOutsidePolicy}, // a directory
	} {
		start := time.Now()
		_, data, err := cfg.ReadFile(c.name)
		if time.Since(start) > time.Second {
			t.Errorf("%s: took %v", c.name, time.Since(start))
		}
		if c.code == "" {
			if err != nil || string(data) != "10.0.0.0/8\n" {
				t.Errorf("%s: %q, %v", c.name, data, err)
			}
			continue
		}
		if err == nil || load.CodeOf(err) != c.code {
			t.Errorf("%s: error %v (code %q), want code %s", c.name, err, load.CodeOf(err), c.code)
		}
		if strings.Contains(string(data), "SECRET") || (err != nil && strings.Contains(err.Error(), "SECRET")) {
			t.Errorf("%s: secret read", c.name)
		}
	}
}

// TestPolicyFileRefused: a policy file that is a link out of the directory,
// a FIFO, or too large is reported with its code at the file, and the rest
// of the policy is not evaluated.
func TestPolicyFileRefused(t *testing.T) {
	for name, make := range map[string]func(p string) error{
		"link-out": func(p string) error { return os.Symlink("/proc/self/environ", p) },
		"dev-zero": func(p string) error { return os.Symlink("/dev/zero", p) },
		"fifo":     func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"too-big": func(p string) error {
			return os.WriteFile(p, []byte(strings.Repeat("# padding\n", load.MaxPolicyFile/10+1)), 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a.hcl"), []byte(minimal), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := make(filepath.Join(dir, "zz.hcl")); err != nil {
				t.Fatal(err)
			}
			cfg, diags := load.Path(dir)
			want := diag.FileOutsidePolicy
			if name == "too-big" {
				want = diag.ResourceLimit
			}
			if !hasCode(diags, want) || !cfg.SyntaxErrors {
				t.Errorf("got %v, want %s and no evaluation", codes(diags), want)
			}
			if d := diags[0]; d.Subject == nil || d.Subject.Filename != filepath.Join(dir, "zz.hcl") {
				t.Errorf("diagnostic not at zz.hcl: %+v", d.Subject)
			}
		})
	}
}

func TestNestingDepth(t *testing.T) {
	for _, c := range []struct {
		src  string
		json bool
		want int
	}{
		{`a = [1, [2, (3)]]`, false, 3},
		{`a = "(((((" # ((((((`, false, 1},
		{"a = <<EOT\n((((\nEOT\n", false, 1},
		{`a = "${f(g(1))}"`, false, 4},
		{`a = "$${((((("`, false, 1},
		{`a = !!!!true`, false, 4},
		{`a = 1 - 2 - 3`, false, 1},
		{"# ------------------------------------------------\n", false, 0},
		{`{"a": [[["${(1)}"]]]}`, true, 6},
		{`{"a": "3478-3481"}`, true, 2}, // a minus counts, conservatively
	} {
		if got, _ := load.NestingDepth([]byte(c.src), c.json); got != c.want {
			t.Errorf("NestingDepth(%q) = %d, want %d", c.src, got, c.want)
		}
	}
}

// TestDeepNestingRefused: input nested deeper than MaxNesting is refused
// before the parser sees it, quickly, at the deepest point.
func TestDeepNestingRefused(t *testing.T) {
	for name, src := range map[string]string{
		"p.hcl":      "a = " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
		"q.hcl":      "a = " + strings.Repeat("!", 100000) + "true",
		"r.hcl":      "a = \"" + strings.Repeat("${\"", 10000) + "x",
		"s.hcl.json": strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
	} {
		start := time.Now()
		cfg, diags := load.Sources("/nonexistent", []load.Source{{Name: name, Bytes: []byte(src)}})
		// A bound (the hostile-input limit), not a speed target: parsing
		// 100,000 levels used to overflow the stack.
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("%s: took %v", name, el)
		}
		if !hasCode(diags, diag.ResourceLimit) || !cfg.SyntaxErrors {
			t.Errorf("%s: %v", name, codes(diags))
		}
	}
}
