// Package backends holds the interface every emitter implements and the
// explicit registry the CLI wires targets into. Backends see only the IR.
package backends

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Options are the per-run choices a backend may honour.
type Options struct {
	// Format selects a rendering where a target has more than one (ir: text,
	// json). Empty means the target's default.
	Format string
}

// Backend emits one target from the IR.
type Backend interface {
	// Name is the target name used with --target.
	Name() string
	// Description is one line for the CLI reference.
	Description() string
	// Formats lists the accepted Options.Format values, the default first.
	Formats() []string
	// FileName is the output file name used with -o DIR.
	FileName(opts Options) string
	// Emit writes the target's output. It must be deterministic.
	Emit(w io.Writer, p *ir.Program, opts Options) error
}

// Registry maps target names to backends. It is filled explicitly by main.
type Registry struct {
	byName map[string]Backend
}

// NewRegistry returns a registry holding the given backends.
func NewRegistry(bs ...Backend) *Registry {
	r := &Registry{byName: map[string]Backend{}}
	for _, b := range bs {
		if _, dup := r.byName[b.Name()]; dup {
			panic("backends: duplicate target " + b.Name())
		}
		r.byName[b.Name()] = b
	}
	return r
}

// Names returns the registered target names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Resolve turns a --target value ("ir", "nftables,panos", "all") into backends
// in the order given, without duplicates.
func (r *Registry) Resolve(spec string) ([]Backend, error) {
	var out []Backend
	seen := map[string]bool{}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		names := []string{name}
		if name == "all" {
			names = r.Names()
		}
		for _, n := range names {
			b, ok := r.byName[n]
			if !ok {
				return nil, fmt.Errorf("unknown target %q; targets are %s, or all", n, strings.Join(r.Names(), ", "))
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, b)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no target given; targets are %s, or all", strings.Join(r.Names(), ", "))
	}
	return out, nil
}
