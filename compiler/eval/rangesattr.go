package eval

import (
	"reflect"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load"
)

// A published list of provider ranges has tens of thousands of entries. An
// address attribute that is just `ranges_file("FILE")` is decoded from the
// file's parsed entries rather than from a cty list of strings; and when no
// expression of the policy can see that attribute's value (see
// canHideFileLists), the attribute holds an opaque value standing for the
// list, so that evaluating, sizing and checking the values that refer to the
// block does not walk one cty value per prefix.
//
// A decoder that needs a block's addresses takes them from addrs (which
// knows both forms), never from the block's cty object: there the attribute
// may be the opaque value.

// opaqueList is the opaque value standing for a list of addresses that no
// expression can see. Its size, for the limits, is the size of the list
// it stands for (valueSize).
type opaqueList struct{ size int64 }

var opaqueListType = cty.Capsule("address list", reflect.TypeOf(opaqueList{}))

// literalList returns the elements of a list written as string literals
// (["10.0.0.0/8", "192.0.2.1"]), each evaluating to the string its one
// literal part holds.
func literalList(expr hcl.Expression) ([]hclsyntax.Expression, bool) {
	tuple, ok := expr.(*hclsyntax.TupleConsExpr)
	if !ok || len(tuple.Exprs) == 0 {
		return nil, false
	}
	for _, el := range tuple.Exprs {
		t, ok := el.(*hclsyntax.TemplateExpr)
		if !ok || !t.IsStringLiteral() {
			return nil, false
		}
		lit := t.Parts[0].(*hclsyntax.LiteralValueExpr).Val
		if lit.Type() != cty.String || !lit.IsKnown() || lit.IsNull() || lit.IsMarked() {
			return nil, false
		}
	}
	return tuple.Exprs, true
}

// literalString is the value of an element literalList accepted.
func literalString(el hclsyntax.Expression) string {
	return el.(*hclsyntax.TemplateExpr).Parts[0].(*hclsyntax.LiteralValueExpr).Val.AsString()
}

// isAddressAttr reports whether the attribute is decoded by addrs.
func isAddressAttr(blockType, name string) bool {
	switch blockType {
	case load.TypeAgents:
		return name == "subnets"
	case load.TypeProvider:
		return name == "ranges" || name == "stun_addresses"
	case load.TypeRelay:
		return name == "addresses"
	}
	return false
}

// directRangesFile returns the path of an expression that is exactly a call
// ranges_file("CONSTANT"): its value is the file's list, nothing else.
func directRangesFile(expr hcl.Expression) (string, bool) {
	call, ok := expr.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "ranges_file" || len(call.Args) != 1 || call.ExpandFinal {
		return "", false
	}
	arg := call.Args[0]
	if len(arg.Variables()) > 0 {
		return "", false
	}
	v, d := arg.Value(nil)
	if d.HasErrors() || v.Type() != cty.String || !v.IsKnown() || v.IsNull() || v.IsMarked() {
		return "", false
	}
	return v.AsString(), true
}

// canHideFileLists reports whether every reference to a block in the policy
// is a bare TYPE.NAME written as a whole attribute value or as an element of
// a list that is a whole attribute value, in a block other than locals. Such
// references are decoded as references (kind and name) only, so no
// expression can reach a block's attribute values. Anything else (a longer
// traversal, a reference inside a function call, a for or a template, in a
// local, or a policy file in JSON syntax) keeps every value a plain list.
func (e *evaluator) canHideFileLists() bool {
	blockRoot := map[string]bool{}
	for _, t := range load.ReferenceableTypes {
		blockRoot[t] = true
	}
	for _, f := range e.cfg.Files {
		if f == nil || f.Body == nil {
			continue
		}
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return false
		}
		if !bodyRefsAreBare(body, "", blockRoot) {
			return false
		}
	}
	return true
}

// bodyRefsAreBare checks the attributes of a body, of a block of type
// blockType ("" for a file's top level), and of its nested blocks.
func bodyRefsAreBare(body *hclsyntax.Body, blockType string, blockRoot map[string]bool) bool {
	for _, b := range body.Blocks {
		if !bodyRefsAreBare(b.Body, b.Type, blockRoot) {
			return false
		}
	}
	for _, a := range body.Attributes {
		allowed := map[*hclsyntax.ScopeTraversalExpr]bool{}
		if blockType != "" && blockType != load.TypeLocals {
			switch x := a.Expr.(type) {
			case *hclsyntax.ScopeTraversalExpr:
				allowed[x] = true
			case *hclsyntax.TupleConsExpr:
				for _, el := range x.Exprs {
					if t, ok := el.(*hclsyntax.ScopeTraversalExpr); ok {
						allowed[t] = true
					}
				}
			}
		}
		if !exprRefsAreBare(a.Expr, allowed, blockRoot) {
			return false
		}
	}
	return true
}

// exprRefsAreBare reports whether every reference to a block in expr is one
// of allowed and a bare TYPE.NAME. Lists of literals (a long list of
// addresses written in the policy) are checked without walking each
// element's syntax tree.
func exprRefsAreBare(expr hclsyntax.Expression, allowed map[*hclsyntax.ScopeTraversalExpr]bool, blockRoot map[string]bool) bool {
	switch x := expr.(type) {
	case *hclsyntax.LiteralValueExpr:
		return true
	case *hclsyntax.TemplateExpr:
		if x.IsStringLiteral() {
			return true
		}
	case *hclsyntax.TupleConsExpr:
		for _, el := range x.Exprs {
			if !exprRefsAreBare(el, allowed, blockRoot) {
				return false
			}
		}
		return true
	}
	bare := true
	hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		t, ok := n.(*hclsyntax.ScopeTraversalExpr)
		if !ok || !blockRoot[t.Traversal.RootName()] {
			return nil
		}
		if _, attr := traversalStep(t.Traversal, 1).(hcl.TraverseAttr); !allowed[t] || len(t.Traversal) != 2 || !attr {
			bare = false
		}
		return nil
	})
	return bare
}

func traversalStep(tr hcl.Traversal, i int) hcl.Traverser {
	if i < len(tr) {
		return tr[i]
	}
	return nil
}

// evalRangesFileAttr evaluates an address attribute that is a direct
// ranges_file call; ok is false for any other attribute. The file's entries
// are kept for addrs. With opaqueFiles the value is the opaque stand-in for
// the list, metered like the list; otherwise it is the list itself.
func (e *evaluator) evalRangesFileAttr(b *load.Block, a *hcl.Attribute) (cty.Value, bool) {
	if !isAddressAttr(b.Type, a.Name) {
		return cty.NilVal, false
	}
	key := attrKey{b, a.Name}
	rel, ok := directRangesFile(a.Expr)
	if !ok {
		return e.evalLiteralListAttr(key, a)
	}
	if e.opaqueFiles && !e.meter.over {
		f := e.rangesFile(rel)
		// A failed read is reported through the function call (with
		// its diagnostic at the call), an empty file as an empty list,
		// and a file over the size limit by evalExpr.
		if f.err == nil && len(f.texts) > 0 && f.size <= MaxValueSize {
			e.meter.total += f.size
			if e.meter.total > MaxTotalSize {
				e.meter.over = true
				e.diags = append(e.diags, diag.Errorf(diag.ResourceLimit, a.Expr.Range(), "Values too large",
					"The policy's values together are larger than %s, the limit. Simplify the policy.", sizeText(MaxTotalSize)))
				return cty.DynamicVal, true
			}
			e.fileAttrs[key] = f
			return cty.CapsuleVal(opaqueListType, &opaqueList{f.size}), true
		}
	}
	v, d := e.evalExpr(a.Expr)
	e.addDiags(d)
	if d.HasErrors() {
		return cty.DynamicVal, true
	}
	if f := e.rangesFile(rel); f.err == nil && len(f.texts) > 0 && v.IsKnown() && !v.IsNull() {
		e.fileAttrs[key] = f
	}
	return v, true
}

// evalLiteralListAttr evaluates an address attribute written as a list of
// string literals; ok is false for any other expression. addrs decodes its
// elements from the syntax, each at its own range. With opaqueFiles the
// value is an opaque stand-in for the list, checked and metered as
// evalExpr checks and meters the list.
func (e *evaluator) evalLiteralListAttr(key attrKey, a *hcl.Attribute) (cty.Value, bool) {
	els, ok := literalList(a.Expr)
	if !ok {
		return cty.NilVal, false
	}
	if !e.opaqueFiles || e.meter.over || e.estimate(a.Expr) > MaxValueSize {
		v, d := e.evalExpr(a.Expr)
		e.addDiags(d)
		if d.HasErrors() {
			return cty.DynamicVal, true
		}
		if v.IsKnown() && !v.IsNull() {
			e.literalAttrs[key] = els
		}
		return v, true
	}
	size := int64(elemWeight)
	for _, el := range els {
		size += elemWeight + int64(len(literalString(el)))
	}
	if size > MaxValueSize {
		return cty.DynamicVal, true // not reached: the estimate is larger
	}
	e.meter.total += size
	if e.meter.total > MaxTotalSize {
		e.meter.over = true
		e.diags = append(e.diags, diag.Errorf(diag.ResourceLimit, a.Expr.Range(), "Values too large",
			"The policy's values together are larger than %s, the limit. Simplify the policy.", sizeText(MaxTotalSize)))
		return cty.DynamicVal, true
	}
	e.literalAttrs[key] = els
	return cty.CapsuleVal(opaqueListType, &opaqueList{size}), true
}
