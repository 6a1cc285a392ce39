// Tests of the Debian package that `make deb` builds: its control data and
// contents, lintian, systemd-analyze verify of every unit, the failsafe
// table, the relay unit's ExecStart run as the unit would in a network
// namespace, and (root, in CI or with TURNWALL_INSTALL_TEST=1) install,
// remove and purge on this machine.
//
// The package is built once per run with `make deb` into a temporary
// directory; TURNWALL_DEB=path/to.deb tests a package built before instead.
// Tools that are missing skip a test, except in CI (CI=true), where `make
// deps` installs them and a skip would hide a failure.
package packaging

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/probe"
)

var inCI = os.Getenv("CI") == "true"

// need skips when a tool is missing, outside CI.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if inCI {
				t.Fatalf("%s is missing (make deps installs it)", tool)
			}
			t.Skipf("%s is missing (make deps installs it)", tool)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI {
			t.Fatal("this test needs root, as CI has")
		}
		t.Skip("needs root")
	}
}

var (
	debOnce sync.Once
	debPath string
	debErr  error
	debDir  string
)

// deb builds the package once (make deb) or returns $TURNWALL_DEB.
func deb(t *testing.T) string {
	t.Helper()
	need(t, "make", "dpkg-deb")
	debOnce.Do(func() {
		if p := os.Getenv("TURNWALL_DEB"); p != "" {
			debPath = p
			return
		}
		debDir, debErr = os.MkdirTemp("", "turnwall-deb-")
		if debErr != nil {
			return
		}
		cmd := exec.Command("make", "-C", "..", "deb", "DIST="+debDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			debErr = fmt.Errorf("make deb: %v\n%s", err, out)
			return
		}
		m, _ := filepath.Glob(filepath.Join(debDir, "turnwall_*.deb"))
		if len(m) != 1 {
			debErr = fmt.Errorf("make deb made %v\n%s", m, out)
			return
		}
		debPath = m[0]
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// extract unpacks the package into a fresh directory.
func extract(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb(t), dir)
	return dir
}

func field(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "dpkg-deb", "--field", deb(t), name))
}

// contents lists the package's paths (without the leading ".").
func contents(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, line := range strings.Split(run(t, "dpkg-deb", "--contents", deb(t)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		p := strings.TrimPrefix(strings.TrimSuffix(f[5], "/"), ".")
		if p != "" {
			files[p] = f[0]
		}
	}
	return files
}

func TestDebInfo(t *testing.T) {
	d := deb(t)
	info := run(t, "dpkg-deb", "--info", d)
	for _, want := range []string{"conffiles", "control", "md5sums", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("control archive has no %s:\n%s", want, info)
		}
	}
	if got := field(t, "Package"); got != "turnwall" {
		t.Errorf("Package %q", got)
	}
	version := field(t, "Version")
	if !regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`).MatchString(version) || !strings.Contains(filepath.Base(d), version) {
		t.Errorf("Version %q (file %s)", version, filepath.Base(d))
	}
	if got := field(t, "Architecture"); got != runtimeArch(t) {
		t.Errorf("Architecture %q, want %q", got, runtimeArch(t))
	}
	if got := field(t, "Depends"); !strings.Contains(got, "nftables") {
		t.Errorf("Depends %q lacks nftables (turnwall-failsafe.service runs nft)", got)
	}
	// The conffiles are exactly what /etc/turnwall ships.
	dir := t.TempDir()
	run(t, "dpkg-deb", "--control", d, dir)
	conf, err := os.ReadFile(filepath.Join(dir, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Fields(string(conf)), []string{"/etc/turnwall/apply.env", "/etc/turnwall/failsafe.nft"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("conffiles %v, want %v", got, want)
	}
}

func runtimeArch(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func TestDebContents(t *testing.T) {
	files := contents(t)
	for _, want := range []string{
		"/usr/bin/turnwall",
		"/usr/share/man/man1/turnwall.1.gz",
		"/usr/share/man/man1/turnwall-relay.1.gz",
		"/usr/share/man/man1/turnwall-apply.1.gz",
		"/usr/share/bash-completion/completions/turnwall",
		"/usr/share/zsh/vendor-completions/_turnwall",
		"/usr/share/fish/vendor_completions.d/turnwall.fish",
		"/usr/share/doc/turnwall/copyright",
		"/usr/share/doc/turnwall/changelog.gz",
		"/usr/share/doc/turnwall/README.md",
		"/usr/share/doc/turnwall/install.md",
		"/usr/share/doc/turnwall/cli/turnwall_relay.md",
		"/usr/share/doc/turnwall/examples/relay.env",
		"/usr/lib/systemd/system/turnwall-apply.service",
		"/usr/lib/systemd/system/turnwall-failsafe.service",
		"/usr/lib/systemd/system/turnwall-relay@.service",
		"/usr/lib/tmpfiles.d/turnwall.conf",
		"/usr/lib/sysusers.d/turnwall.conf",
		"/usr/share/lintian/overrides/turnwall",
		"/etc/turnwall/apply.env",
		"/etc/turnwall/failsafe.nft",
	} {
		if _, ok := files[want]; !ok {
			t.Errorf("package lacks %s", want)
		}
	}
	if files["/usr/bin/turnwall"] != "-rwxr-xr-x" {
		t.Errorf("/usr/bin/turnwall mode %s", files["/usr/bin/turnwall"])
	}
	// Every shipped example policy, with the files it reads.
	examples, _ := filepath.Glob("../policies/*/*")
	for _, e := range examples {
		p := "/usr/share/doc/turnwall/examples/" + strings.TrimPrefix(filepath.ToSlash(e), "../policies/")
		if _, ok := files[p]; !ok {
			t.Errorf("package lacks example %s", p)
		}
	}
	// Nothing outside the paths a package may own.
	for p := range files {
		ok := false
		for _, prefix := range []string{"/usr/bin", "/usr/lib/systemd/system", "/usr/lib/tmpfiles.d", "/usr/lib/sysusers.d", "/usr/share/", "/etc/turnwall"} {
			if strings.HasPrefix(p, prefix) || strings.HasPrefix(prefix, p+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("package ships %s, outside its paths", p)
		}
	}

	// The man pages are the binary's own commands, one page each.
	root := extract(t)
	bin := filepath.Join(root, "usr/bin/turnwall")
	gen := t.TempDir()
	run(t, bin, "gen-docs", "--man", gen)
	genPages, _ := filepath.Glob(filepath.Join(gen, "*.1"))
	var want, got []string
	for _, p := range genPages {
		want = append(want, filepath.Base(p)+".gz")
	}
	shipped, _ := filepath.Glob(filepath.Join(root, "usr/share/man/man1/*"))
	for _, p := range shipped {
		got = append(got, filepath.Base(p))
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("man pages %v, the binary's commands give %v", got, want)
	}
	// Every man: page a unit names is shipped.
	units, _ := filepath.Glob(filepath.Join(root, "usr/lib/systemd/system/*"))
	for _, u := range units {
		for _, doc := range unitValues(t, u, "Documentation") {
			for _, ref := range strings.Fields(doc) {
				if m := regexp.MustCompile(`^man:([a-z-]+)\(1\)$`).FindStringSubmatch(ref); m != nil {
					if _, ok := files["/usr/share/man/man1/"+m[1]+".1.gz"]; !ok {
						t.Errorf("%s names %s, not shipped", filepath.Base(u), ref)
					}
				} else if p, ok := strings.CutPrefix(ref, "file:"); ok {
					if _, ok := files[p]; !ok {
						t.Errorf("%s names %s, not shipped", filepath.Base(u), ref)
					}
				}
			}
		}
	}

	// The binary names the package version and the revision it was built from.
	out := run(t, bin, "version")
	version := field(t, "Version")
	if !strings.HasPrefix(out, "turnwall "+version) {
		t.Errorf("turnwall version = %q, want the package version %s", out, version)
	}
	if rev, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil && os.Getenv("TURNWALL_DEB") == "" {
		if !strings.Contains(out, "("+strings.TrimSpace(string(rev))) {
			t.Errorf("turnwall version = %q, want revision %s", out, rev)
		}
	}
}

// TestLintian: lintian finds nothing; every override says why.
func TestLintian(t *testing.T) {
	need(t, "lintian")
	d := deb(t)
	out, err := exec.Command("lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", d).CombinedOutput()
	var tags []string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.Contains(line, "running with root privileges") {
			tags = append(tags, line)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Errorf("lintian: %v\n%s", err, strings.Join(tags, "\n"))
	}
	data, err := os.ReadFile("lintian-overrides")
	if err != nil {
		t.Fatal(err)
	}
	comment := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			comment = true
		case strings.TrimSpace(line) == "":
			comment = false
		default:
			if !comment {
				t.Errorf("lintian override %q has no comment saying why", line)
			}
		}
	}
}

// verifyRoot is the package unpacked with what the units call on a gateway
// (nft, kill) and the host's systemd targets, for systemd-analyze --root.
func verifyRoot(t *testing.T) string {
	t.Helper()
	root := extract(t)
	for _, l := range []string{"bin", "sbin", "lib"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"nft", "kill"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		p, _ = filepath.EvalSymlinks(p)
		p = strings.TrimPrefix(p, "/usr")
		dst := filepath.Join(root, "usr", p)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		run(t, "cp", "-p", "/usr"+p, dst)
	}
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	if len(targets) == 0 {
		targets, _ = filepath.Glob("/lib/systemd/system/*.target")
	}
	run(t, "cp", append(append([]string{"-p"}, targets...), filepath.Join(root, "usr/lib/systemd/system"))...)
	return root
}

// TestUnitsVerify runs systemd-analyze verify on every unit of the package;
// it must say nothing. A unit with a misspelt key must fail the same check.
func TestUnitsVerify(t *testing.T) {
	need(t, "systemd-analyze", "nft", "kill")
	root := verifyRoot(t)
	units, _ := filepath.Glob(filepath.Join(root, "usr/lib/systemd/system/turnwall*"))
	if len(units) != 3 {
		t.Fatalf("units %v", units)
	}
	verify := func(unit string) (string, error) {
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, unit).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, u := range units {
		if out, err := verify(u); err != nil || out != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", filepath.Base(u), err, out)
		}
	}
	// systemd's own exposure rating (0 best, 10 worst), offline: the relay,
	// which faces the internet, must stay at 2.0 or better; the apply units
	// need CAP_NET_ADMIN and netlink and stay below 5.0.
	for unit, threshold := range map[string]int{"turnwall-relay@.service": 20, "turnwall-apply.service": 40, "turnwall-failsafe.service": 50} {
		out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--threshold="+strconv.Itoa(threshold), "--root="+root, filepath.Join(root, "usr/lib/systemd/system", unit)).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err != nil {
			t.Errorf("systemd-analyze security %s above %.1f: %v\n%s", unit, float64(threshold)/10, err, out)
		} else {
			t.Log(lines[len(lines)-1])
		}
	}

	// The check sees mistakes: a misspelt key, a missing binary.
	bad := filepath.Join(root, "usr/lib/systemd/system/turnwall-bad.service")
	os.WriteFile(bad, []byte("[Service]\nExecStart=/usr/bin/turnwall relay\nCapabilityBoundingSett=CAP_NET_ADMIN\n"), 0o644)
	if out, _ := verify(bad); !strings.Contains(out, "Unknown key") {
		t.Errorf("a misspelt key passed systemd-analyze verify: %q", out)
	}
	os.WriteFile(bad, []byte("[Service]\nExecStart=/usr/bin/turnwall-missing relay\n"), 0o644)
	if _, err := verify(bad); err == nil {
		t.Error("a missing ExecStart binary passed systemd-analyze verify")
	}
}

// unit is a parsed unit file: [Section] key -> values in order.
type unit map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		u[k] = append(u[k], v)
	}
	return u
}

func unitValues(t *testing.T, path, key string) []string { return parseUnit(t, path)[key] }

// specifiers replaces systemd's %i and %% in a unit value.
func specifiers(s, instance string) string {
	return strings.NewReplacer("%i", instance, "%I", instance, "%%", "%").Replace(s)
}

// envAssignments splits Environment= values: space-separated, optionally
// double-quoted VAR=VALUE words.
func envAssignments(s string) [][2]string {
	var out [][2]string
	for _, w := range splitQuoted(s) {
		if k, v, ok := strings.Cut(w, "="); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

func splitQuoted(s string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, in = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// readEnvFile reads an EnvironmentFile: VAR=VALUE lines, # and ; comments,
// optional quotes around the value.
func readEnvFile(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, [2]string{strings.TrimSpace(k), v})
	}
	return out
}

// execArgs expands an ExecStart= line as systemd does: ${VAR} is one word
// (empty included), $VAR alone is split on white space (nothing when empty).
func execArgs(line string, env map[string]string) []string {
	var args []string
	braced := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, w := range splitQuoted(line) {
		if m := regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)$`).FindStringSubmatch(w); m != nil {
			args = append(args, strings.Fields(env[m[1]])...)
			continue
		}
		args = append(args, braced.ReplaceAllStringFunc(w, func(s string) string { return env[braced.FindStringSubmatch(s)[1]] }))
	}
	return args
}

func TestExecArgs(t *testing.T) {
	env := map[string]string{"A": "x y", "E": "", "M": "1.2.3.4:9"}
	got := execArgs(`/bin/p ${A} --m=${M} --e=${E} $A $E "q r"`, env)
	want := []string{"/bin/p", "x y", "--m=1.2.3.4:9", "--e=", "x", "y", "q r"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("execArgs = %q, want %q", got, want)
	}
}

// capNames turns "CAP_NET_BIND_SERVICE CAP_X" into setpriv's "-all,+net_bind_service,+x".
func capNames(v string) string {
	s := "-all"
	for _, c := range strings.Fields(v) {
		s += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return s
}

// TestFailsafe loads the failsafe conffile in a namespace the way
// turnwall-failsafe.service does (twice: it must be idempotent), then runs
// turnwall-apply.service's ExecStartPost, which must remove it, also when it
// is not there.
func TestFailsafe(t *testing.T) {
	needRoot(t)
	need(t, "nft", "ip")
	if err := netns.Available(); err != nil {
		t.Fatal(err)
	}
	root := extract(t)
	ns, err := netns.New("failsafe")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nsRun := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args = mapPaths(args, root)
		out, err := ns.Exec(ctx, args[0], args[1:]...)
		return string(out), err
	}
	units := filepath.Join(root, "usr/lib/systemd/system")
	start := unitValues(t, filepath.Join(units, "turnwall-failsafe.service"), "ExecStart")
	post := unitValues(t, filepath.Join(units, "turnwall-apply.service"), "ExecStartPost")
	if len(start) != 1 || len(post) != 1 {
		t.Fatalf("ExecStart %q, ExecStartPost %q", start, post)
	}
	for i := 0; i < 2; i++ {
		if out, err := nsRun(execArgs(start[0], nil)...); err != nil {
			t.Fatalf("failsafe ExecStart: %v\n%s", err, out)
		}
	}
	out, err := nsRun("nft", "list", "table", "inet", "turnwall_failsafe")
	if err != nil || !regexp.MustCompile(`hook forward priority filter - 10; policy drop;`).MatchString(out) || strings.Count(out, "chain ") != 1 {
		t.Fatalf("failsafe table: %v\n%s", err, out)
	}
	for i := 0; i < 2; i++ {
		if out, err := nsRun(execArgs(post[0], nil)...); err != nil {
			t.Fatalf("apply ExecStartPost (run %d): %v\n%s", i+1, err, out)
		}
	}
	if out, _ := nsRun("nft", "list", "tables"); strings.Contains(out, "turnwall_failsafe") {
		t.Fatalf("failsafe table still there:\n%s", out)
	}
}

// mapPaths points the package's absolute paths (/usr/bin/turnwall,
// /etc/turnwall/...) at the unpacked package; other commands are the host's.
func mapPaths(args []string, root string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "/usr/bin/turnwall") || strings.HasPrefix(a, "/etc/turnwall/") {
			if _, err := os.Stat(filepath.Join(root, a)); err == nil {
				a = filepath.Join(root, a)
			}
		}
		out[i] = a
	}
	return out
}

// TestRelayUnitInNamespace runs turnwall-relay@dmz.service's ExecStart as
// systemd would: the unit's Environment= then the environment file (made from
// the shipped example, naming the shipped private-relay example policy with a
// key of this test), %i substituted, as the unit's unprivileged user with
// only the unit's capabilities and no new privileges (setpriv), in a network
// namespace holding the relay's addresses. The relay must answer a STUN
// Binding on both address families, accept TLS on 443 (a privileged port:
// CAP_NET_BIND_SERVICE at work), serve /healthz on the METRICS address, and
// stop cleanly on SIGTERM. Without the capability it must fail to start.
func TestRelayUnitInNamespace(t *testing.T) {
	needRoot(t)
	need(t, "ip", "setpriv")
	if err := netns.Available(); err != nil {
		t.Fatal(err)
	}
	root := extract(t)
	unitPath := filepath.Join(root, "usr/lib/systemd/system/turnwall-relay@.service")
	u := parseUnit(t, unitPath)
	const instance = "dmz"

	// The unit's user, or nobody when the package never ran its postinst here.
	uname, gname := u["User"][0], u["Group"][0]
	usr, err := user.Lookup(uname)
	grp, gerr := user.LookupGroup(gname)
	if err != nil || gerr != nil {
		usr, err = user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		grp, err = user.LookupGroupId(usr.Gid)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("no %s user here: running as %s:%s", uname, usr.Username, grp.Name)
	}
	gid, _ := strconv.Atoi(grp.Gid)

	// /etc/turnwall of the test: the example policy with a key of its own,
	// the secrets and the environment file, readable by the relay's group
	// only, as docs/install.md says to install them.
	etc := t.TempDir()
	for d := etc; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	policyDir := filepath.Join(etc, "policy")
	run(t, "cp", "-r", filepath.Join(root, "usr/share/doc/turnwall/examples/private-relay"), policyDir)
	certPEM, keyPEM, caPEM := testCert(t, "turn.example.com", netip.MustParseAddr("192.0.2.10"))
	writeOwned(t, filepath.Join(policyDir, "certs/turn.example.com.pem"), certPEM, gid)
	keyPath := filepath.Join(etc, "turn.example.com.key")
	writeOwned(t, keyPath, keyPEM, gid)
	policyFile := filepath.Join(policyDir, "policy.hcl")
	pol, _ := os.ReadFile(policyFile)
	pol2 := bytes.Replace(pol, []byte(`"/etc/turnwall/turn.example.com.key"`), []byte(strconv.Quote(keyPath)), 1)
	if bytes.Equal(pol, pol2) {
		t.Fatal("the private-relay example no longer names /etc/turnwall/turn.example.com.key")
	}
	writeOwned(t, policyFile, pol2, gid)
	for _, d := range []string{policyDir, filepath.Join(policyDir, "certs")} {
		os.Chown(d, 0, gid)
		os.Chmod(d, 0o750)
	}
	secrets := filepath.Join(etc, "relay-dmz.secrets")
	writeOwned(t, secrets, []byte("a-secret-0123456789abcdef\n"), gid)
	example, err := os.ReadFile(filepath.Join(root, "usr/share/doc/turnwall/examples/relay.env"))
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(etc, "relay-"+instance+".env")
	envText := regexp.MustCompile(`(?m)^POLICY=.*$`).ReplaceAllString(string(example), "POLICY="+policyDir)
	envText = regexp.MustCompile(`(?m)^SECRET_FILE=.*$`).ReplaceAllString(envText, "SECRET_FILE="+secrets)
	writeOwned(t, envFile, []byte(envText), gid)

	// The environment as systemd builds it.
	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, e := range u["Environment"] {
		for _, kv := range envAssignments(specifiers(e, instance)) {
			env[kv[0]] = kv[1]
		}
	}
	if len(u["EnvironmentFile"]) != 1 || specifiers(u["EnvironmentFile"][0], instance) != "/etc/turnwall/relay-dmz.env" {
		t.Fatalf("EnvironmentFile %q", u["EnvironmentFile"])
	}
	for _, kv := range readEnvFile(t, envFile) {
		env[kv[0]] = kv[1]
	}
	if env["RELAY"] != instance || env["METRICS"] == "" {
		t.Fatalf("environment %v", env)
	}
	args := execArgs(specifiers(u["ExecStart"][0], instance), env)
	if args[0] != "/usr/bin/turnwall" {
		t.Fatalf("ExecStart runs %s", args[0])
	}
	args = mapPaths(args, root)
	t.Logf("ExecStart: %q", args)

	// The relay host and a client on one link, as on a DMZ.
	ns, err := netns.New("relayunit")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	client, err := netns.New("relayclient")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := netns.Link(ns, "r0", client, "c0"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		n    *netns.NS
		dev  string
		cidr string
	}{{ns, "r0", "192.0.2.10/24"}, {ns, "r0", "2001:db8:30::10/64"}, {client, "c0", "192.0.2.20/24"}, {client, "c0", "2001:db8:30::20/64"}} {
		if err := step.n.Addr(step.dev, step.cidr); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(root, 0o755)

	setpriv := func(caps bool) []string {
		a := []string{"ip", "netns", "exec", ns.Name, "setpriv", "--reuid=" + usr.Uid, "--regid=" + grp.Gid, "--clear-groups"}
		if caps {
			a = append(a, "--inh-caps="+capNames(u["AmbientCapabilities"][0]), "--ambient-caps="+capNames(u["AmbientCapabilities"][0]))
		} else {
			a = append(a, "--inh-caps=-all", "--ambient-caps=-all")
		}
		a = append(a, "--bounding-set="+capNames(u["CapabilityBoundingSet"][0]))
		if u["NoNewPrivileges"][0] == "yes" {
			a = append(a, "--no-new-privs")
		}
		return append(a, args...)
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	// Without CAP_NET_BIND_SERVICE the TLS listener on 443 cannot bind.
	{
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		a := setpriv(false)
		cmd := exec.CommandContext(ctx, a[0], a[1:]...)
		cmd.Env = environ
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "permission denied") {
			t.Fatalf("relay without CAP_NET_BIND_SERVICE: %v\n%s", err, out)
		}
	}

	a := setpriv(true)
	cmd := exec.Command(a[0], a[1:]...)
	cmd.Env = environ
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("relay log:\n%s", logs.String())
		}
	}()

	// The relay's process runs as the unit's user with only its capability.
	if err := waitFor(10*time.Second, func() error {
		return client.Do(func() error {
			c, err := net.DialTimeout("tcp", "192.0.2.10:443", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}); err != nil {
		t.Fatalf("relay did not listen on 443: %v", err)
	}
	checkProcess(t, cmd.Process.Pid, usr.Uid, grp.Gid)

	err = client.Do(func() error {
		for _, dst := range []string{"192.0.2.10:3478", "[2001:db8:30::10]:3478"} {
			pc, err := net.ListenPacket("udp", ":0")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			mapped, _, _, err := probe.Binding(ctx, pc, netip.MustParseAddrPort(dst), 3*time.Second)
			cancel()
			pc.Close()
			if err != nil {
				return fmt.Errorf("STUN Binding to %s: %w", dst, err)
			}
			if !mapped.IsValid() {
				return fmt.Errorf("STUN Binding to %s: no mapped address", dst)
			}
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", "192.0.2.10:443", &tls.Config{RootCAs: pool, ServerName: "turn.example.com"})
		if err != nil {
			return fmt.Errorf("TLS on 443: %w", err)
		}
		c.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Metrics listen on the relay host's loopback.
	err = ns.Do(func() error {
		// net/http dials on goroutines of its own, outside the namespace:
		// dial here and speak HTTP over the connection.
		c, err := net.DialTimeout("tcp", env["METRICS"], 3*time.Second)
		if err != nil {
			return fmt.Errorf("healthz: %w", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n", env["METRICS"])
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return fmt.Errorf("healthz: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != "ok" {
			return fmt.Errorf("healthz said %q", body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// systemd stops it with SIGTERM (KillSignal's default); the signal goes
	// to the relay, the last of ip netns exec and setpriv's exec chain.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("relay exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("relay did not stop within 20 s of SIGTERM")
	}
}

// checkProcess reads the relay's /proc status: uid, gid and capabilities.
func checkProcess(t *testing.T, pid int, uid, gid string) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	const netBindService = "0000000000000400" // 1 << CAP_NET_BIND_SERVICE (10)
	for k, want := range map[string]string{"CapEff": netBindService, "CapBnd": netBindService, "CapAmb": netBindService, "NoNewPrivs": "1"} {
		if st[k] != want {
			t.Errorf("relay %s = %s, want %s", k, st[k], want)
		}
	}
	if f := strings.Fields(st["Uid"]); len(f) == 0 || f[0] != uid || f[1] != uid {
		t.Errorf("relay Uid %q, want %s", st["Uid"], uid)
	}
	if f := strings.Fields(st["Gid"]); len(f) == 0 || f[0] != gid {
		t.Errorf("relay Gid %q, want %s", st["Gid"], gid)
	}
	if st["Groups"] != "" {
		t.Errorf("relay supplementary groups %q", st["Groups"])
	}
}

func waitFor(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writeOwned(t *testing.T, path string, data []byte, gid int) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		t.Fatal(err)
	}
}

// testCert issues a certificate for name and ip from a throwaway CA (the
// relay refuses self-signed certificates, as browsers do): the leaf's PEM, its
// key's PEM and the CA's PEM.
func testCert(t *testing.T, name string, ip netip.Addr) (certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "turnwall package test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{ip.AsSlice()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInstallRemove installs the package on this machine, checks it, removes
// it (only the conffiles stay) and purges it (nothing stays). It changes the
// machine, so it runs only as root and in CI (or with
// TURNWALL_INSTALL_TEST=1), never over an installed turnwall, and puts
// back what it changed (the package, the turnwall user, directories of an
// earlier turnwall in /etc, /var/lib and /run) even on failure.
func TestInstallRemove(t *testing.T) {
	if !inCI && os.Getenv("TURNWALL_INSTALL_TEST") != "1" {
		t.Skip("installs a package on this machine: runs in CI or with TURNWALL_INSTALL_TEST=1")
	}
	needRoot(t)
	need(t, "dpkg", "dpkg-query", "systemd-analyze")
	d := deb(t)
	if status(t) != "" {
		t.Skipf("turnwall is installed here (%s): not replacing it", status(t))
	}
	_, userErr := user.Lookup("turnwall")
	// Directories of an earlier turnwall (state of apply runs, say) are moved
	// aside for the test and put back after it.
	var aside [][2]string
	for _, d := range []string{"/etc/turnwall", "/var/lib/turnwall", "/run/turnwall"} {
		if _, err := os.Lstat(d); err == nil {
			tmp := fmt.Sprintf("%s.pkgtest-%d", d, os.Getpid())
			if err := os.Rename(d, tmp); err != nil {
				t.Fatal(err)
			}
			aside = append(aside, [2]string{tmp, d})
		}
	}
	t.Cleanup(func() {
		if status(t) != "" {
			dpkg(t, "--purge", "turnwall")
		}
		for _, a := range aside {
			os.RemoveAll(a[1])
			if err := os.Rename(a[0], a[1]); err != nil {
				t.Errorf("putting back %s: %v", a[1], err)
			}
		}
		if userErr != nil {
			if _, err := user.Lookup("turnwall"); err == nil {
				exec.Command("userdel", "turnwall").Run()
				exec.Command("groupdel", "turnwall").Run()
			}
		}
	})
	files := contents(t)
	conffiles := map[string]bool{"/etc/turnwall/apply.env": true, "/etc/turnwall/failsafe.nft": true}

	dpkg(t, "--install", d)
	if s := status(t); s != "install ok installed" {
		t.Fatalf("after dpkg -i: %q", s)
	}
	for p, mode := range files {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("installed package lacks %s (%s)", p, mode)
		}
	}
	out := run(t, "/usr/bin/turnwall", "version")
	if !strings.HasPrefix(out, "turnwall "+field(t, "Version")) {
		t.Errorf("installed turnwall version: %q", out)
	}
	usr, err := user.Lookup("turnwall")
	if err != nil {
		t.Fatalf("postinst made no turnwall user: %v", err)
	}
	if usr.HomeDir != "/nonexistent" {
		t.Errorf("turnwall user home %q", usr.HomeDir)
	}
	grp, err := user.LookupGroup("turnwall")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/etc/turnwall": "drwxr-x--- 0:" + grp.Gid, "/var/lib/turnwall": "drwx------ 0:0"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if got := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid); got != want {
			t.Errorf("%s is %s, want %s", p, got, want)
		}
	}
	// The installed units verify against this machine, man pages included
	// where man is installed.
	manCheck := "--man=no"
	if _, err := exec.LookPath("man"); err == nil {
		manCheck = "--man=yes"
	}
	for _, u := range []string{"turnwall-apply.service", "turnwall-failsafe.service", "turnwall-relay@.service"} {
		out, err := exec.Command("systemd-analyze", "verify", manCheck, "/usr/lib/systemd/system/"+u).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify %s (installed): %v\n%s", u, err, out)
		}
	}
	// An operator's change to a conffile survives dpkg -r.
	edited := []byte("POLICY=/etc/turnwall/site\nAPPLY_ARGS=\n")
	if err := os.WriteFile("/etc/turnwall/apply.env", edited, 0o644); err != nil {
		t.Fatal(err)
	}

	dpkg(t, "--remove", "turnwall")
	if s := status(t); s != "deinstall ok config-files" {
		t.Fatalf("after dpkg -r: %q", s)
	}
	for p, mode := range files {
		_, err := os.Lstat(p)
		switch {
		case conffiles[p] || p == "/etc/turnwall":
			if err != nil {
				t.Errorf("dpkg -r removed %s", p)
			}
		case mode[0] != 'd' || strings.Contains(p, "turnwall"):
			if err == nil {
				t.Errorf("dpkg -r left %s", p)
			}
		}
	}
	if got, _ := os.ReadFile("/etc/turnwall/apply.env"); !bytes.Equal(got, edited) {
		t.Errorf("dpkg -r changed the edited conffile: %q", got)
	}

	dpkg(t, "--purge", "turnwall")
	if s := status(t); s != "" {
		t.Fatalf("after dpkg -P: %q", s)
	}
	for _, p := range []string{"/etc/turnwall", "/var/lib/turnwall", "/run/turnwall", "/usr/share/doc/turnwall"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("dpkg -P left %s", p)
		}
	}
}

// status is the package's dpkg status ("install ok installed", ...), or ""
// when dpkg knows nothing of it.
func status(t *testing.T) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "turnwall").Output()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(out))
	if s == "unknown ok not-installed" || s == "purge ok not-installed" {
		return ""
	}
	return s
}

// dpkg runs dpkg, waiting up to two minutes for another package manager's
// lock (apt of other work on this machine).
func dpkg(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cmd := exec.Command("dpkg", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		if strings.Contains(string(out), "lock") && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestApplyUnitFailsClosed runs turnwall-apply.service's commands in a
// network namespace as systemd would at boot: the unit's Environment= and
// the shipped apply.env pointing at a shipped example policy load the
// turnwall table; a policy that does not compile makes ExecStart fail, and
// then turnwall-failsafe.service's ExecStart (the unit's OnFailure=) drops
// forwarded traffic; once the policy is fixed, ExecStart and ExecStartPost
// load the policy and lift the failsafe. The apply state goes to a
// temporary directory ($TURNWALL_STATE_DIR) instead of the host's /run.
func TestApplyUnitFailsClosed(t *testing.T) {
	needRoot(t)
	need(t, "nft", "ip")
	if err := netns.Available(); err != nil {
		t.Fatal(err)
	}
	root := extract(t)
	units := filepath.Join(root, "usr/lib/systemd/system")
	apply := parseUnit(t, filepath.Join(units, "turnwall-apply.service"))
	failsafe := parseUnit(t, filepath.Join(units, "turnwall-failsafe.service"))
	if got := apply["OnFailure"]; len(got) != 1 || got[0] != "turnwall-failsafe.service" {
		t.Fatalf("OnFailure %q", got)
	}
	etc := t.TempDir()
	policyDir := filepath.Join(etc, "policy")
	run(t, "cp", "-r", filepath.Join(root, "usr/share/doc/turnwall/examples/genesys-cloud"), policyDir)
	shipped, err := os.ReadFile(filepath.Join(root, "etc/turnwall/apply.env"))
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(etc, "apply.env")
	os.WriteFile(envFile, []byte(regexp.MustCompile(`(?m)^POLICY=.*$`).ReplaceAllString(string(shipped), "POLICY="+policyDir)), 0o644)
	env := map[string]string{}
	for _, e := range apply["Environment"] {
		for _, kv := range envAssignments(e) {
			env[kv[0]] = kv[1]
		}
	}
	for _, kv := range readEnvFile(t, envFile) {
		env[kv[0]] = kv[1]
	}
	environ := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TURNWALL_STATE_DIR=" + t.TempDir()}

	ns, err := netns.New("applyunit")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	exe := func(line string) (string, error) {
		args := mapPaths(execArgs(line, env), root)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, args...)...)
		cmd.Env = environ
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	tables := func() string {
		out, _ := exe("/usr/sbin/nft list tables")
		return out
	}
	start := func() (string, error) {
		out, err := exe(apply["ExecStart"][0])
		if err != nil {
			return out, err
		}
		post, err := exe(apply["ExecStartPost"][0])
		return out + post, err
	}

	// Boot with a good policy.
	if out, err := start(); err != nil {
		t.Fatalf("ExecStart with the example policy: %v\n%s", err, out)
	}
	if got := tables(); !strings.Contains(got, "table inet turnwall\n") || strings.Contains(got, "failsafe") {
		t.Fatalf("tables after a good boot:\n%s", got)
	}

	// A fresh boot (empty ruleset) with a policy that does not compile.
	exe("/usr/sbin/nft flush ruleset")
	hcl := filepath.Join(policyDir, "policy.hcl")
	good, _ := os.ReadFile(hcl)
	os.WriteFile(hcl, append(append([]byte{}, good...), []byte("\nzone \"broken\" {\n")...), 0o644)
	out, err := start()
	if err == nil {
		t.Fatalf("ExecStart with a broken policy succeeded:\n%s", out)
	}
	if !strings.Contains(out, "policy.hcl:") {
		t.Errorf("the failure does not name the policy line:\n%s", out)
	}
	if out, err := exe(failsafe["ExecStart"][0]); err != nil {
		t.Fatalf("failsafe ExecStart: %v\n%s", err, out)
	}
	if got := tables(); strings.TrimSpace(got) != "table inet turnwall_failsafe" {
		t.Fatalf("tables after a failed boot: %q", got)
	}

	// The operator fixes the policy and restarts the unit.
	os.WriteFile(hcl, good, 0o644)
	if out, err := start(); err != nil {
		t.Fatalf("ExecStart after the fix: %v\n%s", err, out)
	}
	if got := tables(); strings.TrimSpace(got) != "table inet turnwall" {
		t.Fatalf("tables after the fix: %q", got)
	}
}

// TestDebReproducible builds the package a second time: the same commit
// gives the same bytes (file times from the commit, -trimpath, no build id).
func TestDebReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package again")
	}
	if os.Getenv("TURNWALL_DEB") != "" {
		t.Skip("$TURNWALL_DEB given: not built here")
	}
	first, err := os.ReadFile(deb(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run(t, "make", "-C", "..", "deb", "DIST="+dir)
	second, err := os.ReadFile(filepath.Join(dir, filepath.Base(deb(t))))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("two builds of one commit differ (%d and %d bytes)", len(first), len(second))
	}
}
