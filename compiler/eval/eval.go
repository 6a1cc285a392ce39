package eval

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load"
)

// Options are the inputs from outside the policy.
type Options struct {
	// Vars sets input variables, as given on the command line (--var name=value).
	// A string is taken as is for string variables and parsed as an HCL
	// expression for variables of other types.
	Vars map[string]string
}

// node is one referenceable thing: var.X, local.X or TYPE.NAME.
type node struct {
	kind, name string
	block      *load.Block // nil for locals
	local      *load.Local
}

func (n *node) key() string { return n.kind + "." + n.name }

func (n *node) declRange() hcl.Range {
	if n.local != nil {
		return n.local.Attr.NameRange
	}
	return n.block.DeclRange
}

type evaluator struct {
	cfg   *load.Config
	opts  Options
	diags hcl.Diagnostics
	ctx   *hcl.EvalContext

	nodes    []*node
	byKey    map[string]*node
	values   map[string]map[string]cty.Value // namespace -> name -> value
	attrVals map[*load.Block]map[string]cty.Value
	reported map[hcl.Pos]bool // unknown references already reported
	meter    meter
	sizes    map[string]float64 // estimate: sizes of evaluated references

	rangesMu    sync.Mutex
	rangesFiles map[string]*rangesFile // ranges_file reads, by path as written
	// fileAttrs are the address attributes that are just a ranges_file call
	// (see directRangesFile), decoded from the file's parsed entries.
	fileAttrs map[attrKey]*rangesFile
	// literalAttrs are the address attributes written as lists of string
	// literals, decoded from their syntax.
	literalAttrs map[attrKey][]hclsyntax.Expression
	// opaqueFiles: no expression can see the value of such an attribute
	// (see canHideFileLists), so it holds an opaque value, not a list.
	opaqueFiles bool
}

type attrKey struct {
	block *load.Block
	name  string
}

// Evaluate resolves and decodes a loaded policy. It keeps going past errors so
// that every problem is reported at once; the Policy is nil only when there is
// nothing to decode.
func Evaluate(cfg *load.Config, opts Options) (*Policy, hcl.Diagnostics) {
	e := &evaluator{
		cfg:      cfg,
		opts:     opts,
		byKey:    map[string]*node{},
		values:   map[string]map[string]cty.Value{},
		attrVals: map[*load.Block]map[string]cty.Value{},
		reported: map[hcl.Pos]bool{},
		sizes:    map[string]float64{},

		rangesFiles: map[string]*rangesFile{},
		fileAttrs:   map[attrKey]*rangesFile{},

		literalAttrs: map[attrKey][]hclsyntax.Expression{},
	}
	e.ctx = &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: e.functions()}
	for _, ns := range append([]string{"var", "local"}, load.ReferenceableTypes...) {
		e.values[ns] = map[string]cty.Value{}
		e.ctx.Variables[ns] = cty.EmptyObjectVal
	}
	e.collectNodes()
	e.checkUnknownVars()
	e.opaqueFiles = e.canHideFileLists()
	for _, n := range e.order() {
		e.evalNode(n)
	}
	for _, b := range cfg.Policies {
		e.evalBlockAttrs(b)
	}
	for _, b := range cfg.Rules {
		e.checkRefs(blockExprs(b))
		e.evalBlockAttrs(b)
	}
	for _, b := range cfg.Devices {
		e.checkRefs(blockExprs(b))
		e.evalBlockAttrs(b)
	}
	for _, b := range cfg.QoS {
		e.checkRefs(blockExprs(b))
		e.evalBlockAttrs(b)
	}
	pol := e.decode()
	return pol, e.diags
}

func (e *evaluator) collectNodes() {
	add := func(n *node) {
		if _, dup := e.byKey[n.key()]; dup {
			return // reported by load
		}
		e.nodes = append(e.nodes, n)
		e.byKey[n.key()] = n
	}
	for _, b := range e.cfg.Variables {
		add(&node{kind: "var", name: b.Name, block: b})
	}
	for _, l := range e.cfg.Locals {
		add(&node{kind: "local", name: l.Name, local: l})
	}
	for _, typ := range load.ReferenceableTypes {
		for _, b := range e.cfg.Blocks(typ) {
			add(&node{kind: typ, name: b.Name, block: b})
		}
	}
}

// checkUnknownVars reports CLI variables the policy does not declare.
func (e *evaluator) checkUnknownVars() {
	names := make([]string, 0, len(e.opts.Vars))
	for n := range e.opts.Vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := e.byKey["var."+n]; !ok {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("--var %s was given but the policy declares no variable %q.%s", n, n, diag.DidYouMean(n, e.names("var"))),
				Extra:    diag.Extra{Code: diag.UnknownReference},
			})
		}
	}
}

func (e *evaluator) names(kind string) []string {
	var out []string
	for _, n := range e.nodes {
		if n.kind == kind {
			out = append(out, n.name)
		}
	}
	return out
}

// nodeExprs returns every expression of a node, nested blocks included.
func nodeExprs(n *node) []hcl.Expression {
	if n.local != nil {
		return []hcl.Expression{n.local.Attr.Expr}
	}
	if n.kind == "var" {
		return nil // defaults are constants
	}
	return blockExprs(n.block)
}

func blockExprs(b *load.Block) []hcl.Expression {
	var out []hcl.Expression
	for _, a := range sortedAttrs(b.Attrs) {
		out = append(out, a.Expr)
	}
	for _, nb := range sortedNested(b) {
		out = append(out, blockExprs(nb)...)
	}
	return out
}

func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}

func sortedNested(b *load.Block) []*load.Block {
	out := make([]*load.Block, 0, len(b.Nested))
	for _, nb := range b.Nested {
		out = append(out, nb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeclRange.Start.Byte < out[j].DeclRange.Start.Byte })
	return out
}

// refs returns the nodes the expressions refer to, reporting references to
// undeclared names (with a suggestion) once each.
func (e *evaluator) checkRefs(exprs []hcl.Expression) []*node {
	var deps []*node
	for _, expr := range exprs {
		for _, tr := range expr.Variables() {
			root := tr.RootName()
			if _, known := e.values[root]; !known {
				continue // HCL reports unknown variables itself, with a suggestion
			}
			if len(tr) < 2 {
				deps = append(deps, e.allOf(root)...)
				continue
			}
			attr, ok := tr[1].(hcl.TraverseAttr)
			if !ok {
				deps = append(deps, e.allOf(root)...)
				continue
			}
			if n, ok := e.byKey[root+"."+attr.Name]; ok {
				deps = append(deps, n)
				continue
			}
			rng := tr.SourceRange()
			if e.reported[rng.Start] {
				continue
			}
			e.reported[rng.Start] = true
			e.diags = append(e.diags, diag.Errorf(diag.UnknownReference, rng, "Reference to undeclared "+describeNS(root),
				"No %s named %q is declared.%s", describeNS(root), attr.Name, diag.DidYouMean(attr.Name, e.names(root))))
			// Evaluate the undeclared name as unknown, so that HCL does not
			// report the same mistake again as an unsupported attribute.
			if _, ok := e.values[root][attr.Name]; !ok {
				e.values[root][attr.Name] = cty.DynamicVal
				e.ctx.Variables[root] = cty.ObjectVal(e.values[root])
			}
		}
	}
	return deps
}

func describeNS(ns string) string {
	switch ns {
	case "var":
		return "variable"
	case "local":
		return "local value"
	}
	return ns
}

func (e *evaluator) allOf(kind string) []*node {
	var out []*node
	for _, n := range e.nodes {
		if n.kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// order sorts the nodes so that each comes after what it refers to. Nodes on a
// cycle are reported and left out (their references evaluate as unknown).
func (e *evaluator) order() []*node {
	deps := map[*node][]*node{}
	for _, n := range e.nodes {
		deps[n] = e.checkRefs(nodeExprs(n))
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[*node]int{}
	var out []*node
	var stack []*node
	var visit func(n *node) bool
	visit = func(n *node) bool {
		switch state[n] {
		case done:
			return true
		case visiting:
			start := 0
			for i, s := range stack {
				if s == n {
					start = i
				}
			}
			path := make([]string, 0, len(stack)-start+1)
			for _, s := range stack[start:] {
				path = append(path, s.key())
			}
			path = append(path, n.key())
			e.diags = append(e.diags, diag.Errorf(diag.ReferenceCycle, n.declRange(), "Reference cycle",
				"%s refer to each other in a cycle, so none can be evaluated. Break the cycle.", strings.Join(path, " -> ")))
			return false
		}
		state[n] = visiting
		stack = append(stack, n)
		ok := true
		for _, d := range deps[n] {
			if !visit(d) {
				ok = false
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		if ok {
			out = append(out, n)
		} else {
			e.setValue(n, cty.DynamicVal)
		}
		return ok
	}
	for _, n := range e.nodes {
		if state[n] == unvisited {
			visit(n)
		}
	}
	return out
}

func (e *evaluator) setValue(n *node, v cty.Value) {
	e.values[n.kind][n.name] = v
	e.ctx.Variables[n.kind] = cty.ObjectVal(e.values[n.kind])
}

func (e *evaluator) evalNode(n *node) {
	switch {
	case n.kind == "var":
		e.setValue(n, e.evalVariable(n.block))
	case n.local != nil:
		v, d := e.evalExpr(n.local.Attr.Expr)
		e.addDiags(d)
		if d.HasErrors() {
			v = cty.DynamicVal
		}
		e.setValue(n, v)
	default:
		attrs := e.evalBlockAttrs(n.block)
		obj := map[string]cty.Value{"kind": cty.StringVal(n.kind), "name": cty.StringVal(n.name)}
		for k, v := range attrs {
			obj[k] = v
		}
		for _, nb := range sortedNested(n.block) {
			obj[nb.Type] = cty.ObjectVal(e.evalBlockAttrs(nb))
		}
		e.setValue(n, cty.ObjectVal(obj))
	}
}

func (e *evaluator) evalBlockAttrs(b *load.Block) map[string]cty.Value {
	if vals, ok := e.attrVals[b]; ok {
		return vals
	}
	vals := make(map[string]cty.Value, len(b.Attrs))
	for _, a := range sortedAttrs(b.Attrs) {
		if v, ok := e.evalRangesFileAttr(b, a); ok {
			vals[a.Name] = v
			continue
		}
		v, d := e.evalExpr(a.Expr)
		e.addDiags(d)
		if d.HasErrors() {
			v = cty.DynamicVal
		}
		vals[a.Name] = v
	}
	e.attrVals[b] = vals
	for _, nb := range b.Nested {
		e.evalBlockAttrs(nb)
	}
	return vals
}

// addDiags records expression diagnostics. A failed ranges_file call gets its
// own code: HCL reports function failures with a generic summary.
func (e *evaluator) addDiags(diags hcl.Diagnostics) {
	for _, d := range diags {
		if call, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](d); ok && d.Severity == hcl.DiagError {
			err := call.FunctionCallError()
			c := *d
			switch code := load.CodeOf(err); {
			case code == diag.FileOutsidePolicy:
				c.Summary = "File outside the policy"
				c.Extra = diag.Extra{Code: code}
			case code == diag.ResourceLimit || isLimit(err):
				c.Summary = "Resource limit exceeded"
				c.Extra = diag.Extra{Code: diag.ResourceLimit}
			case call.CalledFunctionName() == "ranges_file":
				c.Summary = "Cannot use ranges file"
				c.Extra = diag.Extra{Code: diag.RangesFile}
			}
			d = &c
		}
		e.diags = append(e.diags, d)
	}
}

func (e *evaluator) evalVariable(b *load.Block) cty.Value {
	ty := cty.DynamicPseudoType
	if a, ok := b.Attrs["type"]; ok {
		t, d := typeexpr.TypeConstraint(a.Expr)
		e.diags = append(e.diags, d...)
		if !d.HasErrors() {
			ty = t
		}
	}
	var val cty.Value
	var rng hcl.Range
	if raw, ok := e.opts.Vars[b.Name]; ok {
		rng = b.DeclRange
		if ty == cty.String || ty == cty.DynamicPseudoType {
			val = cty.StringVal(raw)
		} else {
			expr, d := hclsyntax.ParseExpression([]byte(raw), "--var "+b.Name, hcl.InitialPos)
			if d.HasErrors() {
				e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, b.DeclRange, "Invalid value for variable",
					"--var %s=%q is not a valid HCL expression for a variable of type %s.", b.Name, raw, ty.FriendlyName()))
				return cty.DynamicVal
			}
			v, d := expr.Value(nil)
			if d.HasErrors() {
				e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, b.DeclRange, "Invalid value for variable",
					"--var %s=%q must be a constant of type %s.", b.Name, raw, ty.FriendlyName()))
				return cty.DynamicVal
			}
			val = v
		}
	} else if a, ok := b.Attrs["default"]; ok {
		rng = a.Expr.Range()
		v, d := a.Expr.Value(nil)
		e.diags = append(e.diags, d...)
		if d.HasErrors() {
			return cty.DynamicVal
		}
		val = v
	} else {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "Variable has no value",
			"Variable %q has no default. Give it one, or pass --var %s=VALUE.", b.Name, b.Name))
		return cty.DynamicVal
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "Invalid value for variable",
			"Variable %q must be %s: %s.", b.Name, ty.FriendlyName(), err))
		return cty.DynamicVal
	}
	return conv
}
