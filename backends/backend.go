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
	// Format selects a rendering where a target has more than one (ir: text or
	// json; panos: set or xml). Empty means the target's default.
	Format string
	// Params holds target parameters given as --param TARGET.NAME=VALUE, keyed
	// by NAME, already filtered to this target and checked against Params().
	Params map[string]string
	// Device records, for each parameter DeviceOptions took from the
	// policy's device block (keyed by parameter name), the attribute that
	// gave it, so a constraint about the value can point there (AtSetting).
	Device map[string]DeviceSetting
}

// DeviceSetting is a device block attribute that gave a parameter.
type DeviceSetting struct {
	Attr string    // as written in the block (policy_ids)
	At   ir.Source // the attribute
}

// Param documents one target parameter.
type Param struct {
	Name    string
	Default string
	Help    string
}

// Get returns a parameter's value or its default.
func (o Options) Get(p Param) string {
	if v, ok := o.Params[p.Name]; ok {
		return v
	}
	return p.Default
}

// File is one output file of a target.
type File struct {
	Name string // file name used with -o DIR
	Data []byte
}

// Backend emits one target from the IR.
type Backend interface {
	// Name is the target name used with --target.
	Name() string
	// Description is one line for the CLI reference.
	Description() string
	// Formats lists the accepted Options.Format values, the default first.
	Formats() []string
	// Params lists the target's parameters.
	Params() []Param
	// Emit renders the program. It must be deterministic, and no text from
	// the program may add a line or a statement to the output.
	Emit(p *ir.Program, opts Options) ([]File, error)
}

// Decision is what a re-read target configuration does with a packet.
type Decision struct {
	Action ir.Action
	// Rule is the target's name of the deciding rule; empty when the
	// target's default action applied.
	Rule string
	// Source is the policy location the rule's comment traces it to
	// ("policy.hcl:12"); empty for the default.
	Source string
}

// Config is a target configuration re-read from emitted text.
type Config interface {
	// Decide returns the verdict for the first packet of a connection.
	Decide(pkt ir.Packet) Decision
}

// Reader re-reads a target's output, independently of the emitter, so that
// the emitted text itself (not the emitter's intent) can be checked against
// the IR. It accepts the subset of the target's syntax that turnwall emits and
// rejects anything else with an error naming the line.
type Reader interface {
	Read(files []File) (Config, error)
}

// Traceable is a backend whose output can be re-read (used by turnwall trace
// and the property tests).
type Traceable interface {
	Backend
	Reader() Reader
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

// Get returns the named backend.
func (r *Registry) Get(name string) (Backend, bool) {
	b, ok := r.byName[name]
	return b, ok
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

// SplitParams checks --param values ("TARGET.NAME=VALUE") against the targets'
// declared parameters and returns them per target.
func (r *Registry) SplitParams(params []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, p := range params {
		key, value, ok := strings.Cut(p, "=")
		target, name, ok2 := strings.Cut(key, ".")
		if !ok || !ok2 {
			return nil, fmt.Errorf("--param %q: expected TARGET.NAME=VALUE", p)
		}
		b, ok := r.byName[target]
		if !ok {
			return nil, fmt.Errorf("--param %q: unknown target %q", p, target)
		}
		known := false
		var names []string
		for _, d := range b.Params() {
			names = append(names, d.Name)
			known = known || d.Name == name
		}
		if !known {
			if len(names) == 0 {
				return nil, fmt.Errorf("--param %q: target %s takes no parameters", p, target)
			}
			return nil, fmt.Errorf("--param %q: target %s has no parameter %q (it has %s)", p, target, name, strings.Join(names, ", "))
		}
		if out[target] == nil {
			out[target] = map[string]string{}
		}
		out[target][name] = value
	}
	return out, nil
}

// Writer writes output one line at a time and keeps the first error, so an
// emitter can write straight through and check once at the end.
type Writer struct {
	W   io.Writer
	Err error
}

// Line writes one line built from format and args.
func (w *Writer) Line(format string, args ...any) {
	if w.Err != nil {
		return
	}
	if len(args) == 0 {
		if _, w.Err = io.WriteString(w.W, format); w.Err == nil {
			_, w.Err = io.WriteString(w.W, "\n")
		}
		return
	}
	if _, w.Err = fmt.Fprintf(w.W, format, args...); w.Err == nil {
		_, w.Err = io.WriteString(w.W, "\n")
	}
}
