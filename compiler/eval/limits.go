package eval

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load"
)

// Limits on evaluation, so that an untrusted policy cannot make turnwall use
// unbounded memory or time. Sizes are in units: one per byte of a string and
// elemWeight per value (an element of a list, a number, an attribute), which
// is about what the value costs in memory.
const (
	// MaxValueSize bounds one value: a local, an attribute, a function's
	// arguments or result, or what one expression may produce.
	MaxValueSize = 64 << 20
	// MaxTotalSize bounds the values of all locals and attributes together.
	MaxTotalSize = 256 << 20
	// MaxWork bounds the work of all function calls together: the sizes of
	// their arguments and results.
	MaxWork = 256 << 20
	// MaxRange bounds the elements range() returns (go-cty's own limit).
	MaxRange = 1024
	// MaxFormatWidth bounds a width or precision in a format() verb.
	MaxFormatWidth = 1000
	elemWeight     = 64
)

// limitError is a resource-limit failure; addDiags reports it as TW119.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

func isLimit(err error) bool {
	var le *limitError
	return errors.As(err, &le)
}

func limitf(format string, args ...any) error {
	return &limitError{fmt.Sprintf(format, args...)}
}

// valueSize returns v's size in units, stopping early once it exceeds max.
func valueSize(v cty.Value, max int64) int64 {
	var n int64
	var walk func(v cty.Value)
	walk = func(v cty.Value) {
		if n > max {
			return
		}
		n += elemWeight
		if !v.IsKnown() || v.IsNull() {
			return
		}
		v, _ = v.Unmark()
		ty := v.Type()
		switch {
		case ty == cty.String:
			n += int64(len(v.AsString()))
		case ty == opaqueListType:
			n += v.EncapsulatedValue().(*opaqueList).size - elemWeight
		case ty.IsListType() || ty.IsSetType() || ty.IsMapType() || ty.IsTupleType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, e := it.Element()
				if ty.IsMapType() || ty.IsObjectType() {
					n += int64(len(k.AsString()))
				}
				walk(e)
				if n > max {
					return
				}
			}
		}
	}
	walk(v)
	return n
}

func sizeText(units int64) string {
	return fmt.Sprintf("%d MiB", (units+1<<20-1)>>20)
}

// meter counts the work of function calls and the size of evaluated values.
type meter struct {
	work  int64
	total int64
	over  bool // the total was exceeded: evaluation stops
}

// charge adds the sizes of a call's arguments (before) or result (after).
func (m *meter) charge(name string, vals ...cty.Value) error {
	for _, v := range vals {
		s := valueSize(v, MaxValueSize)
		if s > MaxValueSize {
			return limitf("%s: a value is larger than %s, the limit for one value", name, sizeText(MaxValueSize))
		}
		m.work += s
	}
	if m.work > MaxWork {
		return limitf("%s: the policy's function calls together handle more than %s of values, the limit", name, sizeText(MaxWork))
	}
	return nil
}

// limited wraps f so that its arguments, its result and everything it could
// produce are checked against the limits, before the work is done where the
// size can be known in advance (range, setproduct, format widths, join,
// replace, indent, jsondecode nesting).
func (m *meter) limited(name string, f function.Function) function.Function {
	spec := &function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		Type: func(args []cty.Value) (cty.Type, error) {
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if err := m.charge(name, args...); err != nil {
				return cty.DynamicVal, err
			}
			if err := precheck(name, args); err != nil {
				return cty.DynamicVal, err
			}
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if err := m.charge(name, v); err != nil {
				return cty.DynamicVal, err
			}
			return v, nil
		},
	}
	return function.New(spec)
}

// precheck refuses calls whose result would exceed MaxValueSize, before
// computing it.
func precheck(name string, args []cty.Value) error {
	for _, a := range args {
		if !a.IsWhollyKnown() {
			return nil
		}
	}
	var est float64
	switch name {
	case "range":
		nums := make([]float64, 0, 3)
		for _, a := range args {
			if a.Type() != cty.Number || a.IsNull() {
				return nil
			}
			f, _ := a.AsBigFloat().Float64()
			nums = append(nums, f)
		}
		start, limit, step := 0.0, 0.0, 1.0
		switch len(nums) {
		case 1:
			limit = nums[0]
		case 2:
			start, limit = nums[0], nums[1]
		case 3:
			start, limit, step = nums[0], nums[1], nums[2]
		}
		if step == 0 {
			return nil
		}
		if n := math.Abs((limit - start) / step); n > MaxRange {
			return limitf("range: %.0f elements; the limit is %d", n, MaxRange)
		}
	case "setproduct":
		est = elemWeight
		for _, a := range args {
			if !a.CanIterateElements() {
				return nil
			}
			est *= float64(a.LengthInt()) + 1
		}
		est *= float64(len(args))
	case "format", "formatlist":
		if len(args) > 0 && args[0].Type() == cty.String && !args[0].IsNull() {
			if err := checkFormat(args[0].AsString()); err != nil {
				return err
			}
			// Each result is the format with its widths, plus the
			// arguments; formatlist repeats a scalar argument for
			// each element.
			verbs := strings.Count(args[0].AsString(), "%")
			n := 1
			if name == "formatlist" {
				for _, a := range args[1:] {
					if a.CanIterateElements() && a.LengthInt() > n {
						n = a.LengthInt()
					}
				}
			}
			est = (float64(len(args[0].AsString())) + float64(verbs)*MaxFormatWidth) * float64(n)
			for _, a := range args[1:] {
				size := float64(valueSize(a, MaxValueSize))
				if name == "formatlist" && !a.CanIterateElements() {
					size *= float64(n)
				}
				est += size
			}
		}
	case "join":
		if len(args) > 0 && args[0].Type() == cty.String && !args[0].IsNull() {
			n := 0
			for _, a := range args[1:] {
				if a.CanIterateElements() {
					n += a.LengthInt()
				}
			}
			est = float64(len(args[0].AsString())) * float64(n)
		}
	case "replace":
		if len(args) == 3 && args[0].Type() == cty.String && args[2].Type() == cty.String && !args[0].IsNull() && !args[2].IsNull() {
			est = float64(len(args[0].AsString())+1) * float64(len(args[2].AsString())+1)
		}
	case "indent":
		if len(args) == 2 && args[0].Type() == cty.Number && args[1].Type() == cty.String && !args[0].IsNull() && !args[1].IsNull() {
			spaces, _ := args[0].AsBigFloat().Float64()
			lines := strings.Count(args[1].AsString(), "\n") + 1
			est = math.Abs(spaces) * float64(lines)
		}
	case "jsondecode":
		if len(args) == 1 && args[0].Type() == cty.String && !args[0].IsNull() {
			if d, _ := load.NestingDepth([]byte(args[0].AsString()), true); d > load.MaxNesting {
				return limitf("jsondecode: the JSON nests more than %d levels deep", load.MaxNesting)
			}
		}
	}
	if est > MaxValueSize {
		return limitf("%s: the result would be larger than %s, the limit for one value", name, sizeText(MaxValueSize))
	}
	return nil
}

// checkFormat refuses widths and precisions over MaxFormatWidth
// (format("%999999999d", 1) would allocate a gigabyte).
func checkFormat(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		n := 0
		for i++; i < len(f); i++ {
			c := f[i]
			if c >= '0' && c <= '9' {
				n = n*10 + int(c-'0')
				if n > MaxFormatWidth {
					return limitf("format: a width or precision above %d is not allowed", MaxFormatWidth)
				}
				continue
			}
			if c == '.' || c == '-' || c == '+' || c == '#' || c == ' ' || c == '[' || c == ']' {
				n = 0
				continue
			}
			break
		}
	}
	return nil
}

// estimate returns an upper bound, in units, of what evaluating expr may
// produce, without evaluating it: template concatenation and for
// expressions multiply sizes without calling a function, so the meter alone
// cannot see them. References are sized from the values already evaluated.
func (e *evaluator) estimate(expr hcl.Expression) float64 {
	return e.est(expr, map[string]float64{})
}

func (e *evaluator) est(expr hcl.Expression, scope map[string]float64) float64 {
	sum := func(exprs ...hclsyntax.Expression) float64 {
		t := 0.0
		for _, x := range exprs {
			if x != nil {
				t += e.est(x, scope)
			}
		}
		return t
	}
	switch x := expr.(type) {
	case nil:
		return 0
	case *hclsyntax.LiteralValueExpr:
		return float64(valueSize(x.Val, MaxValueSize))
	case *hclsyntax.ScopeTraversalExpr:
		return e.traversalSize(x.Traversal, scope)
	case *hclsyntax.RelativeTraversalExpr:
		return sum(x.Source)
	case *hclsyntax.TemplateExpr:
		return sum(x.Parts...) + elemWeight
	case *hclsyntax.TemplateWrapExpr:
		return sum(x.Wrapped)
	case *hclsyntax.TemplateJoinExpr:
		return sum(x.Tuple)
	case *hclsyntax.ParenthesesExpr:
		return sum(x.Expression)
	case *hclsyntax.FunctionCallExpr:
		return e.estCall(x, scope, sum(x.Args...)+elemWeight)
	case *hclsyntax.ConditionalExpr:
		return sum(x.Condition) + math.Max(sum(x.TrueResult), sum(x.FalseResult))
	case *hclsyntax.IndexExpr:
		return sum(x.Collection, x.Key)
	case *hclsyntax.SplatExpr:
		src := sum(x.Source)
		return src * (1 + sum(x.Each)/elemWeight)
	case *hclsyntax.TupleConsExpr:
		return sum(x.Exprs...) + elemWeight
	case *hclsyntax.ObjectConsExpr:
		t := float64(elemWeight)
		for _, it := range x.Items {
			t += sum(it.KeyExpr, it.ValueExpr)
		}
		return t
	case *hclsyntax.ObjectConsKeyExpr:
		return sum(x.Wrapped)
	case *hclsyntax.BinaryOpExpr:
		return sum(x.LHS, x.RHS)
	case *hclsyntax.UnaryOpExpr:
		return sum(x.Val)
	case *hclsyntax.ForExpr:
		n, elem := e.estColl(x.CollExpr, scope)
		inner := map[string]float64{}
		for k, v := range scope {
			inner[k] = v
		}
		if x.KeyVar != "" {
			inner[x.KeyVar] = elem
		}
		inner[x.ValVar] = elem
		body := float64(elemWeight)
		for _, b := range []hclsyntax.Expression{x.KeyExpr, x.ValExpr, x.CondExpr} {
			if b != nil {
				body += e.est(b, inner)
			}
		}
		return n * body
	case hclsyntax.Expression:
		return elemWeight
	}
	// JSON syntax: its strings are templates, parsed when evaluated. Parse
	// them here too and estimate each.
	v, d := expr.Value(nil)
	if d.HasErrors() {
		return MaxValueSize + 1
	}
	rng := expr.Range()
	t := 0.0
	var walk func(v cty.Value)
	walk = func(v cty.Value) {
		t += elemWeight
		if !v.IsKnown() || v.IsNull() || t > MaxValueSize {
			return
		}
		switch ty := v.Type(); {
		case ty == cty.String:
			src := v.AsString()
			if !strings.Contains(src, "{") {
				t += float64(len(src))
				return
			}
			tmpl, d := hclsyntax.ParseTemplate([]byte(src), rng.Filename, rng.Start)
			if d.HasErrors() {
				t += float64(len(src))
				return
			}
			t += e.est(tmpl, scope)
		case ty.IsCollectionType() || ty.IsTupleType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, el := it.Element()
				if k.Type() == cty.String {
					t += float64(len(k.AsString()))
				}
				walk(el)
			}
		}
	}
	walk(v)
	return t
}

// estColl bounds the number of elements of a for expression's collection and
// the size of its largest element (or key). A collection that uses no
// for-expression variable and is small enough is evaluated and measured;
// otherwise both are bounded by its estimate.
func (e *evaluator) estColl(coll hclsyntax.Expression, scope map[string]float64) (n, elem float64) {
	c := e.est(coll, scope)
	usesScope := false
	for _, tr := range coll.Variables() {
		if _, ok := scope[tr.RootName()]; ok {
			usesScope = true
		}
	}
	if !usesScope && c <= MaxValueSize {
		if v, d := coll.Value(e.ctx); !d.HasErrors() && v.IsWhollyKnown() && v.CanIterateElements() {
			n = float64(v.LengthInt())
			for it := v.ElementIterator(); it.Next(); {
				k, el := it.Element()
				s := float64(valueSize(el, MaxValueSize))
				if k.Type() == cty.String {
					s = math.Max(s, float64(valueSize(k, MaxValueSize)))
				}
				elem = math.Max(elem, s)
			}
			return n, elem
		}
	}
	if call, ok := coll.(*hclsyntax.FunctionCallExpr); ok && call.Name == "range" {
		return MaxRange, elemWeight // numbers
	}
	return c / elemWeight, c
}

// estCall estimates a function call. A call that uses no for-expression
// variable and whose arguments are small is evaluated (within the meter's
// limits) and its real size used; otherwise the size is bounded from the
// arguments' by what the function can do with them.
func (e *evaluator) estCall(x *hclsyntax.FunctionCallExpr, scope map[string]float64, args float64) float64 {
	usesScope := false
	for _, tr := range x.Variables() {
		if _, ok := scope[tr.RootName()]; ok {
			usesScope = true
		}
	}
	if !usesScope && args <= MaxValueSize {
		if v, d := x.Value(e.ctx); !d.HasErrors() {
			return float64(valueSize(v, MaxValueSize*2))
		}
		return args // the real call fails too, and says why
	}
	switch x.Name {
	case "range":
		return MaxRange * elemWeight
	case "split", "regexall", "chunklist", "formatlist", "keys", "values":
		return args * elemWeight
	case "setproduct", "replace", "indent", "join":
		p := 1.0
		for _, a := range x.Args {
			p *= e.est(a, scope)
		}
		return p
	}
	return args
}

func (e *evaluator) traversalSize(tr hcl.Traversal, scope map[string]float64) float64 {
	if s, ok := scope[tr.RootName()]; ok {
		return s
	}
	key := traversalKey(tr)
	if s, ok := e.sizes[key]; ok {
		return s
	}
	v, d := tr.TraverseAbs(e.ctx)
	exact := !d.HasErrors()
	if !exact {
		// Part of an object: size the whole root.
		v, d = hcl.Traversal{tr[0]}.TraverseAbs(e.ctx)
		if d.HasErrors() {
			return elemWeight
		}
	}
	s := float64(valueSize(v, MaxValueSize*2))
	if exact && v.IsWhollyKnown() {
		// Known values never change once evaluated; unknown ones are
		// placeholders for what is evaluated later.
		e.sizes[key] = s
	}
	return s
}

// traversalKey identifies a traversal for the size cache.
func traversalKey(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type().IsPrimitiveType() && s.Key.IsKnown() && !s.Key.IsNull() {
				b.WriteString(fmt.Sprintf("[%#v]", s.Key.GoString()))
			} else {
				b.WriteString("[?]")
			}
		default:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

// evalExpr evaluates one local or attribute within the limits: it refuses
// expressions whose estimate is over MaxValueSize, and values over it or
// over the total, with a TW119 diagnostic at the expression.
func (e *evaluator) evalExpr(expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
	rng := expr.Range()
	if e.meter.over {
		return cty.DynamicVal, nil // reported once already
	}
	if est := e.estimate(expr); est > MaxValueSize {
		return cty.DynamicVal, hcl.Diagnostics{diag.Errorf(diag.ResourceLimit, rng, "Value too large",
			"This expression could produce more than %s (templates and for expressions multiply what they refer to); the limit for one value is %s. Simplify it.",
			sizeText(int64(math.Min(est, 1<<62))), sizeText(MaxValueSize))}
	}
	v, d := expr.Value(e.ctx)
	if d.HasErrors() {
		return v, d
	}
	s := valueSize(v, MaxValueSize)
	if s > MaxValueSize {
		return cty.DynamicVal, append(d, diag.Errorf(diag.ResourceLimit, rng, "Value too large",
			"This value is larger than %s, the limit for one value. Simplify the expression.", sizeText(MaxValueSize)))
	}
	e.meter.total += s
	if e.meter.total > MaxTotalSize {
		e.meter.over = true
		return cty.DynamicVal, append(d, diag.Errorf(diag.ResourceLimit, rng, "Values too large",
			"The policy's values together are larger than %s, the limit. Simplify the policy.", sizeText(MaxTotalSize)))
	}
	return v, d
}
