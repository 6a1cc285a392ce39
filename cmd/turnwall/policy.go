package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
)

// policyFlags are shared by every command that compiles a policy.
type policyFlags struct {
	vars   []string
	strict bool
	format string
	// errorsOnly hides warnings (trace prints a verdict, not a review).
	errorsOnly bool
	// check adds the targets' constraints (validate: every target;
	// compile: the chosen ones).
	check func(p *ir.Program, root string) hcl.Diagnostics
}

func (f *policyFlags) add(cmd *cobra.Command, formats string) {
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set an input variable, NAME=VALUE (repeatable)")
	cmd.Flags().BoolVar(&f.strict, "strict", false, "treat warnings as errors")
	cmd.Flags().StringVar(&f.format, "format", "text", formats)
}

func (f *policyFlags) options() (compiler.Options, error) {
	opts := compiler.Options{Strict: f.strict, Vars: map[string]string{}, Check: f.check}
	for _, v := range f.vars {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return opts, usageError{fmt.Errorf("--var %q: expected NAME=VALUE", v)}
		}
		opts.Vars[name] = value
	}
	return opts, nil
}

func policyArg(args []string) string {
	if len(args) == 0 {
		return "."
	}
	return args[0]
}

// compilePolicy compiles and reports diagnostics on stderr (text) or stdout
// (json, together with the result where there is one).
func (a *app) compilePolicy(path string, f *policyFlags) (*compiler.Result, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	res := compiler.Compile(path, opts)
	if f.format != "json" {
		shown := res.Diags
		if f.errorsOnly {
			shown = diag.ErrorsOnly(res.Diags)
		}
		if err := diag.WriteText(a.stderr, res.Files, shown, a.width(), a.useColor()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func summary(res *compiler.Result) string {
	errs, warns := diag.Count(res.Diags)
	return fmt.Sprintf("%d error%s, %d warning%s", errs, plural(errs), warns, plural(warns))
}

func count(n int, noun string) string {
	return fmt.Sprintf("%d %s%s", n, noun, plural(n))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
