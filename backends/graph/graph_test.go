package graph

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/testkit"
)

func emit(p *ir.Program) []backends.File {
	g := Build(p)
	return []backends.File{{Name: "graph.dot", Data: g.DOT()}, {Name: "graph.mmd", Data: g.Mermaid()}}
}

// TestGolden: every example's and test case's DOT and Mermaid, and the same
// output on a second build and from a second compilation.
func TestGolden(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			files := emit(c.Program)
			for i, f := range emit(c.Program) {
				if !bytes.Equal(f.Data, files[i].Data) {
					t.Fatalf("%s differs between two builds", f.Name)
				}
			}
			backendtest.Golden(t, "graph", c.Name, files)
		})
	}
}

func compile(t *testing.T, path string) *ir.Program {
	t.Helper()
	res := compiler.Compile(filepath.Join(backendtest.Root(), path), compiler.Options{})
	if res.HasErrors() {
		t.Fatalf("%s: %v", path, res.Diags)
	}
	return res.Program
}

// TestFlows checks what the picture says about the shipped examples: the
// nodes, the services on each edge, STUN by name, the return path marked.
func TestFlows(t *testing.T) {
	g := Build(compile(t, "policies/genesys-cloud"))
	stun := g.Node("stun:genesys")
	if stun == nil || !strings.Contains(strings.Join(stun.Label, "|"), "stun.l.google.com") {
		t.Fatalf("public STUN node by name missing: %+v", stun)
	}
	if p := g.Node("provider:genesys"); p == nil || p.Label[1] != "4 ranges" {
		t.Fatalf("provider node = %+v, want 4 ranges", p)
	}
	want := map[ir.Purpose][]string{
		ir.PurposeSignalling: {"TCP 443 (TLS fallback)"},
		ir.PurposeSTUNTURN:   {"TCP 3478", "UDP 3478"},
		ir.PurposeMedia:      {"UDP 16384-65535"},
		ir.PurposeSTUN:       {"TCP 19302", "UDP 19302"},
	}
	if len(g.Edges) != len(want) {
		t.Fatalf("%d edges, want one per purpose (%d): %+v", len(g.Edges), len(want), g.Edges)
	}
	for _, e := range g.Edges {
		if got := strings.Join(e.Services, ","); got != strings.Join(want[e.Purpose], ",") {
			t.Errorf("%s edge services %q, want %q", e.Purpose, got, want[e.Purpose])
		}
	}

	g = Build(compile(t, "policies/private-relay"))
	returns := 0
	for _, e := range g.Edges {
		if e.Return {
			returns++
			if !strings.HasPrefix(e.From, "relay:") || !strings.HasPrefix(e.To, "agents:") ||
				strings.Join(e.Services, ",") != "UDP from 49152-59999 to 1024-65535" {
				t.Errorf("return edge %+v", e)
			}
		}
	}
	if returns != 2 {
		t.Errorf("%d return edges, want one per agents group (2)", returns)
	}
	dot, mmd := string(g.DOT()), string(g.Mermaid())
	if n := strings.Count(dot, "style=dashed"); n != 2 {
		t.Errorf("DOT has %d dashed edges, want the 2 return paths", n)
	}
	if n := strings.Count(mmd, "-.->"); n != 2 {
		t.Errorf("Mermaid has %d dotted links, want the 2 return paths", n)
	}
	for _, z := range []string{"cluster_z1", "cluster_z2", "cluster_z3"} {
		if !strings.Contains(dot, "subgraph "+z+" {") {
			t.Errorf("DOT lacks zone cluster %s", z)
		}
	}
}

// TestDeny: a deny rule is drawn distinctly in both formats, and its link
// style points at its own link.
func TestDeny(t *testing.T) {
	g := Build(compile(t, "testdata/golden/cases/rules-and-functions.hcl"))
	var deny *Edge
	index := -1
	for i := range g.Edges {
		if g.Edges[i].Action == ir.Deny {
			deny, index = &g.Edges[i], i
		}
	}
	if deny == nil || deny.Rule != "block-printer" || deny.Label()[0] != "DENY rule block-printer" {
		t.Fatalf("deny edge = %+v", deny)
	}
	if n := strings.Count(string(g.DOT()), "arrowhead=tee"); n != 1 {
		t.Errorf("DOT has %d tee-ended edges, want 1", n)
	}
	mmd := string(g.Mermaid())
	if n := strings.Count(mmd, " --x|"); n != 1 {
		t.Errorf("Mermaid has %d cross-ended links, want 1", n)
	}
	if !strings.Contains(mmd, fmt.Sprintf("linkStyle %d stroke:%s", index, colourDeny)) {
		t.Errorf("no red link style for link %d:\n%s", index, mmd)
	}
}

func TestEscaping(t *testing.T) {
	for _, tt := range []struct{ in, dot, mmd string }{
		{`plain name-1.x`, `"plain name-1.x"`, `"plain name-1.x"`},
		{"x\ny", `"x y"`, `"x y"`},
		{`a"; drop}`, `"a\"; drop}"`, `"a#34;#59; drop#125;"`},
		{`back\slash \n`, `"back\\slash \\n"`, `"back#92;slash #92;n"`},
		{"\u2028line\u2029sep\u202e", `" line sep "`, `" line sep "`},
		{"ünïcödé名前", `"ünïcödé名前"`, `"ünïcödé名前"`},
		{"`md` <b>#x;</b> %%c |p|", "\"`md` <b>#x;</b> %%c |p|\"", `"#96;md#96; #60;b#62;#35;x#59;#60;/b#62; #37;#37;c #124;p#124;"`},
		{"bad\xffutf8", "\"bad\uFFFDutf8\"", `"bad#65533;utf8"`},
	} {
		if got := dotString([]string{tt.in}); got != tt.dot {
			t.Errorf("dotString(%q) = %s, want %s", tt.in, got, tt.dot)
		}
		if got := mermaidString([]string{tt.in}); got != tt.mmd {
			t.Errorf("mermaidString(%q) = %s, want %s", tt.in, got, tt.mmd)
		}
	}
	if got := dotString([]string{"a", "b"}); got != `"a\nb"` {
		t.Errorf("lines join as %s", got)
	}
	if got := mermaidString([]string{"a", "b"}); got != `"a<br/>b"` {
		t.Errorf("lines join as %s", got)
	}
}

// TestHostileStructure: hostile names give exactly the lines the benign
// twin gives, in both formats; Graphviz reads the same nodes and edges.
func TestHostileStructure(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		hostile, benign := backendtest.HostilePair(c.Program)
		h, b := emit(hostile), emit(benign)
		for i := range h {
			if hn, bn := strings.Count(string(h[i].Data), "\n"), strings.Count(string(b[i].Data), "\n"); hn != bn {
				t.Errorf("%s %s: hostile names give %d lines, benign %d:\n%s", c.Name, h[i].Name, hn, bn, h[i].Data)
			}
			if bytes.ContainsAny(h[i].Data, "\r\u2028\u2029") {
				t.Errorf("%s %s: a line break reached the output", c.Name, h[i].Name)
			}
		}
		// Mermaid: every quoted string holds no quote, bracket, pipe or
		// backtick of its own.
		for _, m := range regexp.MustCompile(`"[^"\n]*"`).FindAllString(string(h[1].Data), -1) {
			if strings.ContainsAny(strings.ReplaceAll(m[1:len(m)-1], "<br/>", ""), "[]{}|`<>%") {
				t.Errorf("%s: unescaped syntax in Mermaid label %s", c.Name, m)
			}
		}
	}
}

// needTool skips a test when a renderer is missing, and fails in CI.
func needTool(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("renderer missing in CI (run make deps): %v", err)
	}
	t.Skipf("renderer missing (make deps installs it): %v", err)
}

// TestDotRenders: Graphviz renders every case's DOT, and the hostile
// twins', to SVG without a warning, and reads the hostile twin as the same
// number of nodes and edges as the benign one.
func TestDotRenders(t *testing.T) {
	_, err := exec.LookPath("dot")
	needTool(t, err)
	for _, c := range backendtest.Cases(t) {
		svg, warnings, err := RunDot(context.Background(), Build(c.Program).DOT(), "svg")
		if err != nil || len(warnings) > 0 || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s: err %v, warnings %q", c.Name, err, warnings)
		}
		hostile, benign := backendtest.HostilePair(c.Program)
		hp, hw, herr := RunDot(context.Background(), Build(hostile).DOT(), "plain")
		bp, _, berr := RunDot(context.Background(), Build(benign).DOT(), "plain")
		if herr != nil || berr != nil || len(hw) > 0 {
			t.Fatalf("%s: hostile %v %q, benign %v", c.Name, herr, hw, berr)
		}
		if hs, bs := plainShape(hp), plainShape(bp); hs != bs {
			t.Errorf("%s: Graphviz reads the hostile graph as %s, the benign one as %s", c.Name, hs, bs)
		}
		// The SVG a browser would show is well-formed XML with the same
		// elements for both: no name became markup.
		hsvg, _, herr := RunDot(context.Background(), Build(hostile).DOT(), "svg")
		bsvg, _, berr := RunDot(context.Background(), Build(benign).DOT(), "svg")
		if herr != nil || berr != nil {
			t.Fatalf("%s: svg: %v, %v", c.Name, herr, berr)
		}
		if he, be := svgElements(t, hsvg), svgElements(t, bsvg); he != be {
			t.Errorf("%s: hostile SVG has elements %s, benign %s", c.Name, he, be)
		}
	}
}

// svgElements counts an SVG's elements by name (layout may order them
// differently for labels of other widths).
func svgElements(t *testing.T, svg []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	dec.Strict = true
	var names []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			names = append(names, se.Name.Local)
		}
	}
	sort.Strings(names)
	counts := map[string]int{}
	for _, n := range names {
		counts[n]++
	}
	return fmt.Sprint(counts)
}

// plainShape counts the nodes and edges of dot -Tplain output.
func plainShape(plain []byte) string {
	nodes, edges := 0, 0
	for _, l := range strings.Split(string(plain), "\n") {
		switch {
		case strings.HasPrefix(l, "node "):
			nodes++
		case strings.HasPrefix(l, "edge "):
			edges++
		}
	}
	return fmt.Sprintf("%d nodes, %d edges", nodes, edges)
}

func TestRenderFormats(t *testing.T) {
	p := compile(t, "policies/private-relay")
	if _, err := Render(context.Background(), p, "gif"); err == nil {
		t.Error("unknown format accepted")
	}
	for _, f := range []string{"mermaid", "dot"} {
		a, err := Render(context.Background(), p, f)
		if err != nil || len(a) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	t.Run("no graphviz", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if _, err := Render(context.Background(), p, "svg"); !errors.Is(err, ErrNoGraphviz) {
			t.Fatalf("err = %v, want ErrNoGraphviz", err)
		}
	})
	_, err := exec.LookPath("dot")
	needTool(t, err)
	png, err := Render(context.Background(), p, "png")
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("png: %v", err)
	}
	svg, err := Render(context.Background(), p, "svg")
	if err != nil || !bytes.Contains(svg, []byte("relay dmz")) {
		t.Fatalf("svg: %v", err)
	}
	if _, _, err := RunDot(context.Background(), []byte("digraph {"), "svg"); err == nil || !strings.Contains(err.Error(), "graphviz dot failed") {
		t.Errorf("bad DOT: err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if _, _, err := RunDot(ctx, []byte("digraph {}"), "svg"); err == nil {
		t.Error("an expired context still rendered")
	}
}

// TestLargePolicy: a provider with 100,000 ranges is still one node with its
// count of aggregated prefixes; drawing it is quick and its size does not grow with the ranges.
func TestLargePolicy(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), testkit.LargePolicy(100000), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(dir, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	start := time.Now()
	g := Build(res.Program)
	dot, mmd := g.DOT(), g.Mermaid()
	elapsed := time.Since(start)
	if len(dot) > 20000 || len(mmd) > 20000 {
		t.Errorf("DOT %d bytes, Mermaid %d bytes for one big provider", len(dot), len(mmd))
	}
	set := res.Program.AddressSet(res.Program.Providers[0].Addresses)
	want := fmt.Sprintf("provider big<br/>%d ranges", len(set.V4)+len(set.V6)) // aggregated prefixes
	if !bytes.Contains(mmd, []byte(want)) {
		t.Errorf("the provider's range count is not shown (%s):\n%s", want, mmd)
	}
	t.Logf("100,000 ranges: graph in %s, DOT %d bytes, Mermaid %d bytes", elapsed, len(dot), len(mmd))
}
