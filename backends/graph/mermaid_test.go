package graph

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// diffPair changes a program three ways: the media rule's ports narrowed,
// the public STUN rule gone, a deny rule added.
func diffPair(t *testing.T) (oldP, newP *ir.Program) {
	return compile(t, "policies/genesys-cloud"), mutate(compile(t, "policies/genesys-cloud"), "deny-x")
}

// mutate makes the three changes of diffPair to a program of the
// genesys-cloud example's shape (or its hostile or benign twin).
func mutate(p *ir.Program, denyName string) *ir.Program {
	var rules []ir.Rule
	var agents, provider, https string
	for _, r := range p.Rules {
		switch r.Purpose {
		case ir.PurposeSTUN:
			continue
		case ir.PurposeMedia:
			p.Service(r.Service).Entries[0].Ports = []ir.PortRange{{First: 16384, Last: 32767}}
		case ir.PurposeSignalling:
			agents, provider, https = r.Src, r.Dst, r.Service
		}
		rules = append(rules, r)
	}
	p.Rules = append([]ir.Rule{{Name: denyName, Purpose: ir.PurposeCustom, Action: ir.Deny,
		Src: agents, Dst: provider, Service: https, Origin: ir.Origin{Kind: "rule", Name: denyName}}}, rules...)
	p.Index()
	return p
}

func TestDiffMermaid(t *testing.T) {
	oldP, newP := diffPair(t)
	if got := DiffMermaid(oldP, oldP); got != nil {
		t.Fatalf("no change drew:\n%s", got)
	}
	changes := Changes(Build(oldP), Build(newP))
	var got []string
	for _, c := range changes {
		e := c.New
		if e == nil {
			e = c.Old
		}
		got = append(got, c.Status+" "+string(e.Purpose)+" "+string(e.Action))
	}
	want := []string{"added custom deny", "changed media allow", "removed stun allow"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
	m := string(DiffMermaid(oldP, newP))
	for _, s := range []string{
		`==>|"added: DENY rule deny-x<br/>TCP 443"|`,
		`-->|"changed: media<br/>- UDP 16384-65535<br/>+ UDP 16384-32767"|`,
		`-.->|"removed: public STUN<br/>TCP 19302<br/>UDP 19302"|`,
		`["removed:<br/>public STUN<br/>stun.l.google.com`,
		"stroke-dasharray:6 4",
		"class n3 removed",
	} {
		if !strings.Contains(m, s) {
			t.Errorf("diff diagram lacks %s:\n%s", s, m)
		}
	}
	if n := strings.Count(m, "linkStyle "); n != 3 {
		t.Errorf("%d link styles, want 3", n)
	}
	if !bytes.Equal(DiffMermaid(oldP, newP), []byte(m)) {
		t.Error("diff diagram differs between two runs")
	}
}

// mmdc returns the pinned Mermaid CLI that make deps installs in
// deploy/mermaid, and its puppeteer configuration (Debian's chromium).
func mmdc(t *testing.T) (bin, config string) {
	dir := filepath.Join(backendtest.Root(), "deploy", "mermaid")
	bin = filepath.Join(dir, "node_modules", ".bin", "mmdc")
	config = filepath.Join(dir, "puppeteer-config.json")
	if _, err := os.Stat(bin); err != nil {
		needTool(t, fmt.Errorf("mermaid-cli: %v (make deps runs npm ci in deploy/mermaid)", err))
	}
	if _, err := exec.LookPath("node"); err != nil {
		needTool(t, err)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		needTool(t, fmt.Errorf("chromium: %v", err))
	}
	return bin, config
}

// renderMermaid renders every diagram with the real Mermaid library in
// headless Chromium, in one run; a diagram Mermaid cannot parse fails it.
// On failure each diagram is rendered alone to name the one at fault.
func renderMermaid(t *testing.T, diagrams map[string][]byte) {
	t.Helper()
	bin, config := mmdc(t)
	var names []string
	for n := range diagrams {
		names = append(names, n)
	}
	slices.Sort(names)
	run := func(names []string) (string, error) {
		dir := t.TempDir()
		var md bytes.Buffer
		for _, n := range names {
			fmt.Fprintf(&md, "## %s\n\n```mermaid\n%s```\n\n", n, diagrams[n])
		}
		in, out := filepath.Join(dir, "in.md"), filepath.Join(dir, "out.md")
		if err := os.WriteFile(in, md.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--quiet", "-p", config, "-i", in, "-o", out)
		cmd.Env = append(os.Environ(), "PUPPETEER_SKIP_DOWNLOAD=1")
		cmd.WaitDelay = 5 * time.Second
		output, err := cmd.CombinedOutput()
		if err != nil {
			return string(output), err
		}
		// One SVG per diagram, and none is Mermaid's error picture.
		svgs, _ := filepath.Glob(filepath.Join(dir, "out-*.svg"))
		if len(svgs) != len(names) {
			return string(output), fmt.Errorf("%d SVGs for %d diagrams", len(svgs), len(names))
		}
		for _, s := range svgs {
			data, _ := os.ReadFile(s)
			if bytes.Contains(data, []byte("Syntax error in text")) {
				return "", fmt.Errorf("%s is Mermaid's syntax error picture", s)
			}
		}
		return "", nil
	}
	output, err := run(names)
	if err == nil {
		return
	}
	t.Errorf("mmdc: %v\n%s", err, output)
	if len(names) > 1 {
		for _, n := range names {
			if output, err := run([]string{n}); err != nil {
				t.Errorf("%s: %v\n%s\n%s", n, err, output, diagrams[n])
			}
		}
	}
}

// TestMermaidCLIRenders: the pinned Mermaid CLI (mmdc), as a user would
// run it on a markdown file, renders every shipped example's picture and a
// diff picture with an added deny, a changed and a removed flow.
func TestMermaidCLIRenders(t *testing.T) {
	diagrams := map[string][]byte{}
	for _, c := range backendtest.Cases(t) {
		if strings.HasPrefix(c.Name, "policies-") {
			diagrams[c.Name] = Build(c.Program).Mermaid()
		}
	}
	oldP, newP := diffPair(t)
	diagrams["diff-genesys-cloud-changed"] = DiffMermaid(oldP, newP)
	renderMermaid(t, diagrams)
}

// mermaidShape counts what Mermaid drew: nodes, links, clusters.
func mermaidShape(svg []byte) string {
	return fmt.Sprintf("%d nodes, %d links, %d clusters", bytes.Count(svg, []byte(`<g class="node `)),
		bytes.Count(svg, []byte(`data-edge="true"`)), bytes.Count(svg, []byte(`<g class="cluster`)))
}

// TestMermaidLibraryRenders renders, with the same pinned Mermaid library in
// one Chromium page (deploy/mermaid/render.mjs), every case's picture, its
// hostile-name and benign twins, diff pictures between all cases, and the
// twins' diff pictures; Mermaid must draw each hostile twin with exactly the
// nodes, links and clusters of its benign twin, and no name may become an
// element.
func TestMermaidLibraryRenders(t *testing.T) {
	bin, _ := mmdc(t) // the same installation
	script := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(bin))), "render.mjs")
	cases := backendtest.Cases(t)
	diagrams := map[string][]byte{}
	for i, c := range cases {
		next := cases[(i+1)%len(cases)]
		hostile, benign := backendtest.HostilePair(c.Program)
		nextHostile, _ := backendtest.HostilePair(next.Program)
		diagrams[c.Name] = Build(c.Program).Mermaid()
		diagrams[c.Name+"-hostile"] = Build(hostile).Mermaid()
		diagrams[c.Name+"-benign"] = Build(benign).Mermaid()
		diagrams["diff-"+c.Name+"-to-"+next.Name] = DiffMermaid(c.Program, next.Program)
		diagrams["diff-"+c.Name+"-to-"+next.Name+"-hostile"] = DiffMermaid(hostile, nextHostile)
	}
	// A diff between twins renamed alike: the changes of diffPair, made
	// to the hostile and the benign twin of the same program.
	base := compile(t, "policies/genesys-cloud")
	hostile, benign := backendtest.HostilePair(base)
	hostileNew, benignNew := backendtest.HostilePair(base)
	diagrams["diff-changed-hostile"] = DiffMermaid(hostile, mutate(hostileNew, "deny\"x|y`<b>\n}"))
	diagrams["diff-changed-benign"] = DiffMermaid(benign, mutate(benignNew, "deny-x"))
	in, out := t.TempDir(), t.TempDir()
	var files []string
	for n, d := range diagrams {
		if len(d) == 0 {
			t.Fatalf("%s: empty diagram", n)
		}
		f := filepath.Join(in, n+".mmd")
		if err := os.WriteFile(f, d, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	slices.Sort(files)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script, out}, files...)...)
	cmd.WaitDelay = 5 * time.Second
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("render.mjs: %v\n%s", err, output)
	}
	svg := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(out, name+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for n := range diagrams {
		if data := svg(n); bytes.Contains(data, []byte("<entry")) || bytes.Contains(data, []byte("Syntax error")) {
			t.Errorf("%s: a name became markup, or Mermaid drew its error picture", n)
		}
	}
	pairs := []string{"diff-changed"}
	for _, c := range cases {
		pairs = append(pairs, c.Name)
	}
	for _, n := range pairs {
		h, b := svg(n+"-hostile"), svg(n+"-benign")
		if hs, bs := mermaidShape(h), mermaidShape(b); hs != bs || strings.HasPrefix(hs, "0 nodes") {
			t.Errorf("%s: Mermaid drew the hostile twin as %s, the benign one as %s", n, hs, bs)
		}
	}
	// Hostile text is shown as text, exactly: decoded entities, escaped HTML.
	for name, want := range map[string]string{
		"policies-private-relay-hostile": `&lt;/entry&gt;&lt;entry name="evil"&gt;`,
		"diff-changed-hostile":           "DENY rule deny\"x|y`&lt;b&gt; }",
	} {
		if !bytes.Contains(svg(name), []byte(want)) {
			t.Errorf("%s: the SVG does not show %s as text", name, want)
		}
	}
	t.Logf("%d diagrams rendered", len(diagrams))
}
