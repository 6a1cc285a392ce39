package backends

import (
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
		c, ok := b.(Checker)
		if !ok {
			continue
		}
		for _, k := range c.Check(p, Options{Params: params[b.Name()]}) {
			out = append(out, diag.Errorf(diag.TargetConstraint, k.At.Range(root), "Target "+b.Name()+": "+k.Summary, "%s", k.Detail))
		}
	}
	return out
}
