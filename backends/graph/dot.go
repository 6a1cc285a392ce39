package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Formats are the formats Render accepts, the default first.
var Formats = []string{"mermaid", "dot", "svg", "png"}

// DotTimeout bounds one run of Graphviz's dot.
const DotTimeout = 30 * time.Second

// maxImage bounds what dot may write before it is stopped.
const maxImage = 64 << 20

// ErrNoGraphviz is returned for svg and png when Graphviz's dot is not
// installed.
var ErrNoGraphviz = errors.New("--format svg and png run Graphviz's dot, which is not installed " +
	"(Debian: apt-get install graphviz); --format mermaid and dot need nothing")

// Render draws a program in one of Formats. svg and png run Graphviz's dot
// (found in $PATH) on the DOT text, bounded by DotTimeout.
func Render(ctx context.Context, p *ir.Program, format string) ([]byte, error) {
	g := Build(p)
	switch format {
	case "mermaid":
		return g.Mermaid(), nil
	case "dot":
		return g.DOT(), nil
	case "svg", "png":
		out, _, err := RunDot(ctx, g.DOT(), format)
		return out, err
	}
	return nil, fmt.Errorf("unknown format %q: use %s", format, strings.Join(Formats, ", "))
}

// RunDot runs `dot -TFORMAT` on DOT text and returns its output and its
// standard error (warnings), failing when dot is missing, fails, runs past
// DotTimeout or writes more than 64 MiB.
func RunDot(ctx context.Context, dot []byte, format string) (out, warnings []byte, err error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, nil, ErrNoGraphviz
	}
	ctx, cancel := context.WithTimeout(ctx, DotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-T"+format)
	cmd.Stdin = bytes.NewReader(dot)
	stdout := &limitedBuffer{max: maxImage}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &limitedBuffer{max: 1 << 20, w: &stderr}
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, stderr.Bytes(), fmt.Errorf("graphviz dot took longer than %s", DotTimeout)
	case stdout.over:
		return nil, stderr.Bytes(), fmt.Errorf("graphviz dot wrote more than %d MiB", maxImage>>20)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, stderr.Bytes(), fmt.Errorf("graphviz dot failed: %s", msg)
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}

// limitedBuffer keeps at most max bytes and then refuses more, which ends
// the writing process with a broken pipe.
type limitedBuffer struct {
	bytes.Buffer
	w    *bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	buf := &l.Buffer
	if l.w != nil {
		buf = l.w
	}
	if buf.Len()+len(p) > l.max {
		l.over = true
		return 0, errors.New("output too large")
	}
	return buf.Write(p)
}
