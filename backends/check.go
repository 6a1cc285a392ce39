package backends

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Constraint is one thing a target cannot carry, at the policy location
// that asks for it.
type Constraint struct {
	At      ir.Source
	Summary string // short, without the target's name
	Detail  string // what the target allows and what to do
}

// Error renders the constraint as an error: the policy location, the
// summary and the detail.
func (c Constraint) Error() string {
	return c.At.String() + ": " + c.Summary + ": " + c.Detail
}

// FirstConstraint returns the first constraint as an error, or nil: Emit of
// a Checker starts with it, so that no output is written for a program its
// target cannot carry, whoever calls Emit.
func FirstConstraint(cs []Constraint) error {
	if len(cs) == 0 {
		return nil
	}
	return cs[0]
}

// Checker is a backend that knows its limits before emitting: every
// constraint Emit would trip over (or would silently mangle) is found from
// the IR, so that validate reports it with a position and compile fails
// with the same diagnostic instead of writing output the device rejects.
type Checker interface {
	Check(p *ir.Program, opts Options) []Constraint
}

// Check runs the checks of the given backends that have them and returns
// their constraints as TW213 errors naming the target. root is the policy
// root the IR's source files are relative to; params holds each target's
// parameters (SplitParams).
func Check(bs []Backend, params map[string]map[string]string, p *ir.Program, root string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, b := range bs {
		opts, bad := DeviceOptions(p, b, Options{Params: params[b.Name()]})
		for _, k := range bad {
			out = append(out, diag.Errorf(diag.TargetConstraint, k.At.Range(root), "Target "+b.Name()+": "+k.Summary, "%s", k.Detail))
		}
		c, ok := b.(Checker)
		if !ok {
			continue
		}
		for _, k := range c.Check(p, opts) {
			k = AtSetting(p, b, opts, k)
			out = append(out, diag.Errorf(diag.TargetConstraint, k.At.Range(root), "Target "+b.Name()+": "+k.Summary, "%s", k.Detail))
		}
	}
	return out
}

// DeviceOptions returns opts with the settings of the policy's device
// block for b (each attribute a parameter, "_" read as "-"), except those
// --param gave already: the policy says where turnwall's part sits on the
// box, and a command line can override it. Settings b does not know are
// returned as constraints at their attribute.
func DeviceOptions(p *ir.Program, b Backend, opts Options) (Options, []Constraint) {
	d := p.Device(b.Name())
	if d == nil || len(d.Settings) == 0 {
		return opts, nil
	}
	known := map[string]bool{}
	var names []string
	for _, prm := range b.Params() {
		known[prm.Name] = true
		names = append(names, prm.Name)
	}
	merged := make(map[string]string, len(opts.Params)+len(d.Settings))
	for k, v := range opts.Params {
		merged[k] = v
	}
	keys := make([]string, 0, len(d.Settings))
	for k := range d.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var bad []Constraint
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		if !known[name] {
			bad = append(bad, Constraint{At: d.Origin.At(k), Summary: "unknown device setting " + strconv.Quote(k),
				Detail: fmt.Sprintf("Target %s has no parameter %q. Its parameters: %s (see turnwall targets).", b.Name(), name, strings.Join(names, ", "))})
			continue
		}
		if _, set := merged[name]; !set {
			merged[name] = d.Settings[k]
			if opts.Device == nil {
				opts.Device = map[string]DeviceSetting{}
			}
			opts.Device[name] = DeviceSetting{Attr: k, At: d.Origin.At(k)}
		}
	}
	opts.Params = merged
	return opts, bad
}

// CheckDevices reports device blocks naming no target of names (the
// registry), at the block.
func CheckDevices(names []string, p *ir.Program, root string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range p.Devices {
		if !slices.Contains(names, d.Target) {
			out = append(out, diag.Errorf(diag.TargetConstraint, d.Origin.Source.Range(root), "Unknown target in device block",
				"device %q names no target; the targets are %s.%s", d.Target, strings.Join(names, ", "), diag.DidYouMean(d.Target, names)))
		}
	}
	return out
}

// AtSetting moves a constraint about one of b's parameters to where its
// value was written. Targets word a bad parameter at the policy block, as
// `--param TARGET.NAME=VALUE: ...` or starting with the parameter's name
// (`NAME "VALUE": ...`); constraints with a place of their own, such as a
// zone's declaration, stay where they are. When opts took the value from
// the policy's device block (DeviceOptions records it in opts.Device), the
// constraint is placed at that attribute and names it as
// `device "TARGET" NAME`; otherwise it names `--param TARGET.NAME`.
func AtSetting(p *ir.Program, b Backend, opts Options, c Constraint) Constraint {
	if c.At != p.Policy.Source {
		return c
	}
	target := b.Name()
	isParam := func(name string) bool {
		for _, prm := range b.Params() {
			if prm.Name == name {
				return true
			}
		}
		return false
	}
	nameEnd := func(s string) int {
		n := strings.IndexFunc(s, func(r rune) bool { return !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
		if n < 0 {
			return len(s)
		}
		return n
	}
	var at int // where the reference starts in Detail
	var name, rest string
	if i := strings.Index(c.Detail, "--param "+target+"."); i >= 0 {
		at = i
		tail := c.Detail[i+len("--param "+target+"."):]
		n := nameEnd(tail)
		name, rest = tail[:n], tail[n:]
	} else {
		n := nameEnd(c.Detail)
		name, rest = c.Detail[:n], c.Detail[n:]
		if !isParam(name) || !(strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "=")) {
			return c
		}
	}
	if name == "" {
		return c
	}
	// The value: `=VALUE` or ` "VALUE"` right after the name.
	value := ""
	switch {
	case strings.HasPrefix(rest, "="):
		rest = rest[1:]
		fallthrough
	case strings.HasPrefix(rest, " \""):
		v := strings.TrimPrefix(rest, " ")
		if uq, err := strconv.QuotedPrefix(v); err == nil {
			value, rest = uq, v[len(uq):]
		}
	}
	ref := "--param " + target + "." + name
	if value != "" {
		ref += "="
	}
	if d, ok := opts.Device[name]; ok {
		c.At = d.At
		ref = "device " + strconv.Quote(target) + " " + d.Attr
		if value != "" {
			ref += " = "
		}
	}
	c.Detail = c.Detail[:at] + ref + value + rest
	return c
}

// Placed is AtSetting for an error a target's Emit or Change returned: a
// Constraint (the first one its checks found) is moved to its setting; any
// other error is returned as it is.
func Placed(err error, p *ir.Program, b Backend, opts Options) error {
	var c Constraint
	if p == nil || !errors.As(err, &c) {
		return err
	}
	return AtSetting(p, b, opts, c)
}
