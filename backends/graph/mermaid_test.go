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
	oldP = compile(t, "policies/genesys-cloud")
	newP = compile(t, "policies/genesys-cloud")
	var rules []ir.Rule
	var agents, provider, https string
	for _, r := range newP.Rules {
		switch r.Purpose {
		case ir.PurposeSTUN:
			continue
		case ir.PurposeMedia:
			newP.Service(r.Service).Entries[0].Ports = []ir.PortRange{{First: 16384, Last: 32767}}
		case ir.PurposeSignalling:
			agents, provider, https = r.Src, r.Dst, r.Service
		}
		rules = append(rules, r)
	}
	newP.Rules = append([]ir.Rule{{Name: "deny-x", Purpose: ir.PurposeCustom, Action: ir.Deny,
		Src: agents, Dst: provider, Service: https, Origin: ir.Origin{Kind: "rule", Name: "deny-x"}}}, rules...)
	newP.Index()
	return oldP, newP
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

// TestMermaidRenders: every case's picture, its hostile twin's, and diff
// pictures between cases (benign and hostile) render with Mermaid itself.
func TestMermaidRenders(t *testing.T) {
	cases := backendtest.Cases(t)
	diagrams := map[string][]byte{}
	oldP, newP := diffPair(t)
	diagrams["diff-genesys-cloud-changed"] = DiffMermaid(oldP, newP)
	for i, c := range cases {
		hostile, _ := backendtest.HostilePair(c.Program)
		next := cases[(i+1)%len(cases)]
		nextHostile, _ := backendtest.HostilePair(next.Program)
		diagrams[c.Name] = Build(c.Program).Mermaid()
		diagrams[c.Name+"-hostile"] = Build(hostile).Mermaid()
		if i < 5 {
			diagrams["diff-"+c.Name+"-to-"+next.Name] = DiffMermaid(c.Program, next.Program)
		}
		if i == 0 {
			// One hostile diff: every kind of node and link, hostile names.
			diagrams["diff-"+c.Name+"-hostile"] = DiffMermaid(hostile, nextHostile)
		}
	}
	for n, d := range diagrams {
		if len(d) == 0 {
			t.Fatalf("%s: empty diagram", n)
		}
	}
	renderMermaid(t, diagrams)
}
