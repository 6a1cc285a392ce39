// Package compiler runs turnwall's front half: load -> evaluate -> lower -> lint.
// Each stage is its own package and returns hcl.Diagnostics; this package only
// chains them and keeps going past errors where that still gives useful
// findings, so a user sees every problem at once.
package compiler

import (
	"io/fs"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lint"
	"github.com/turnwall/turnwall/compiler/load"
	"github.com/turnwall/turnwall/compiler/lower"
)

// Options control a compilation.
type Options struct {
	Vars   map[string]string // input variables (--var)
	Strict bool              // warnings are errors
	// Check, when set, checks the linted program against what output
	// targets can carry (backends.Check); root is the policy root.
	Check func(p *ir.Program, root string) hcl.Diagnostics
}

// Result is a compilation's outcome. Program is nil when there were errors.
type Result struct {
	Program *ir.Program
	// Lowered is the program even when only lint findings are errors (nil
	// when the policy could not be evaluated and lowered). `turnwall verify`
	// builds its lab from it to show what such errors do to real traffic;
	// nothing is ever emitted from it.
	Lowered *ir.Program
	Files   map[string]*hcl.File // for rendering diagnostics with snippets
	Diags   hcl.Diagnostics
}

// HasErrors reports whether the policy failed to compile.
func (r *Result) HasErrors() bool { return r.Diags.HasErrors() }

// Compile compiles the policy file or directory at path.
func Compile(path string, opts Options) *Result {
	cfg, diags := load.Path(path)
	return finish(cfg, diags, opts)
}

// CompileFS compiles the policy at the top of fsys (see load.FS): every
// file it has or names is read from fsys, confined to it. root is the
// policy root as shown in diagnostics; file names a single policy file, or
// is "" for every policy file at the top. `turnwall diff --base` passes a
// git revision (load/gitfs).
func CompileFS(fsys fs.FS, root, file string, opts Options) *Result {
	cfg, diags := load.FS(fsys, root, file)
	return finish(cfg, diags, opts)
}

// CompileSources compiles a policy held in memory.
func CompileSources(root string, sources []load.Source, opts Options) *Result {
	cfg, diags := load.Sources(root, sources)
	return finish(cfg, diags, opts)
}

func finish(cfg *load.Config, diags hcl.Diagnostics, opts Options) *Result {
	res := &Result{Diags: diags}
	if cfg == nil {
		return res
	}
	res.Files = cfg.Files
	if cfg.SyntaxErrors {
		diag.Sort(res.Diags)
		return res
	}
	pol, d := eval.Evaluate(cfg, eval.Options{Vars: opts.Vars})
	res.Diags = append(res.Diags, d...)
	if pol != nil && !res.Diags.HasErrors() {
		prog, d := lower.Lower(pol)
		res.Diags = append(res.Diags, d...)
		if !d.HasErrors() {
			prog.Root = cfg.Root
			if abs, err := filepath.Abs(cfg.Root); err == nil && cfg.Root != "" {
				prog.Root = abs
			}
			res.Diags = append(res.Diags, lint.Run(prog, cfg.Root)...)
			if opts.Check != nil {
				res.Diags = append(res.Diags, opts.Check(prog, cfg.Root)...)
			}
			res.Program = prog
			res.Lowered = prog
		}
	}
	if opts.Strict {
		res.Diags = diag.Strict(res.Diags)
	}
	diag.Sort(res.Diags)
	if res.Diags.HasErrors() {
		res.Program = nil
	}
	return res
}
