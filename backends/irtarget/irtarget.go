// Package irtarget emits the IR itself, as readable text or JSON: the form to
// review what a policy compiles to before any vendor syntax.
package irtarget

import (
	"bytes"
	"fmt"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/naming"
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

// Params implements backends.Backend.
func (Backend) Params() []backends.Param { return nil }

// Emit implements backends.Backend.
func (Backend) Emit(p *ir.Program, opts backends.Options) ([]backends.File, error) {
	var buf bytes.Buffer
	switch opts.Format {
	case "", "text":
		if err := p.WriteText(&buf); err != nil {
			return nil, err
		}
		return []backends.File{{Name: "ir.txt", Data: buf.Bytes()}}, nil
	case "json":
		if err := p.WriteJSON(&buf); err != nil {
			return nil, err
		}
		return []backends.File{{Name: "ir.json", Data: naming.EscapeJSONFormat(buf.Bytes())}}, nil
	}
	return nil, fmt.Errorf("ir target has no format %q (text, json)", opts.Format)
}
