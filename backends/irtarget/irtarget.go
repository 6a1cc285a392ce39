// Package irtarget emits the IR itself, as readable text or JSON: the form to
// review what a policy compiles to before any vendor syntax.
package irtarget

import (
	"fmt"
	"io"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Backend is the ir target.
type Backend struct{}

// Name implements backends.Backend.
func (Backend) Name() string { return "ir" }

// Description implements backends.Backend.
func (Backend) Description() string {
	return "turnwall's target-independent rules, address and service sets (text or json)"
}

// Formats implements backends.Backend.
func (Backend) Formats() []string { return []string{"text", "json"} }

// FileName implements backends.Backend.
func (Backend) FileName(opts backends.Options) string {
	if opts.Format == "json" {
		return "ir.json"
	}
	return "ir.txt"
}

// Emit implements backends.Backend.
func (Backend) Emit(w io.Writer, p *ir.Program, opts backends.Options) error {
	switch opts.Format {
	case "", "text":
		return p.WriteText(w)
	case "json":
		return p.WriteJSON(w)
	}
	return fmt.Errorf("ir target has no format %q (text, json)", opts.Format)
}
