package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	pathpkg "path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/diff"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load/gitfs"
)

// exitChanges is diff's status when the versions differ (like git diff
// --exit-code).
const exitChanges = 2

func (a *app) diffCmd() *cobra.Command {
	var f policyFlags
	var target, base, script string
	var params []string
	reg := registry()
	cmd := &cobra.Command{
		Use:   "diff OLD NEW | diff --base REV [POLICY]",
		Short: "Show what a policy change does to every generated rule set",
		Long: `Diff compiles two versions of a policy and shows, first, a summary from the IR
(rules added, removed and changed by name; addresses added and removed per set,
aggregated; ports changed; lint findings that appeared or disappeared), then a
unified diff of each target's output.

OLD and NEW are policy files or directories. With --base REV, the old version
is POLICY (the current directory by default) as it is at git revision REV, read
through git without a checkout; the new version is the working tree.

--format text (colour on a terminal), markdown (to paste into a change
request) or json. Exit status: 0 no change, 2 changes, 1 errors (either
version does not compile, or a usage error), so that 2 always means the
versions differ.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return diffUsage{fmt.Errorf("too many arguments: give OLD and NEW, or --base REV and at most one POLICY")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch f.format {
			case "text", "markdown", "json":
			default:
				return diffUsage{fmt.Errorf("--format %q: use text, markdown or json", f.format)}
			}
			targets, err := reg.Resolve(target)
			if err != nil {
				return diffUsage{err}
			}
			byTarget, err := reg.SplitParams(params)
			if err != nil {
				return diffUsage{err}
			}
			opts, err := f.options()
			if err != nil {
				return diffUsage{err}
			}
			var oldSide, newSide diff.Side
			switch {
			case base != "" && len(args) <= 1:
				path := policyArg(args)
				oldSide, err = a.compileAtRevision(base, path, opts)
				if err != nil {
					return err
				}
				newSide, err = a.compileSide(path, path, opts)
			case base == "" && len(args) == 2:
				oldSide, err = a.compileSide(args[0], args[0], opts)
				if err == nil {
					newSide, err = a.compileSide(args[1], args[1], opts)
				}
			default:
				return diffUsage{fmt.Errorf("give OLD and NEW, or --base REV and at most one POLICY")}
			}
			if err != nil {
				return err
			}
			report, err := diff.Build(oldSide, newSide, targets, func(b backends.Backend) backends.Options {
				return backends.Options{Params: byTarget[b.Name()]}
			})
			if err != nil {
				return err
			}
			if script != "" || f.format != "text" {
				report.Scripts, err = diff.BuildScripts(oldSide, newSide, targets, func(b backends.Backend, side diff.Side) backends.Options {
					o, _ := backends.DeviceOptions(side.Program, b, backends.Options{Params: byTarget[b.Name()]})
					return o
				}, script != "")
				if err != nil {
					return err
				}
			}
			if script != "" {
				var files []backends.File
				for _, s := range report.Scripts {
					files = append(files, s.Files()...)
				}
				if len(files) == 0 {
					return diffUsage{fmt.Errorf("--script: no chosen target writes change scripts (those that do: panos, fortios, asa)")}
				}
				if err := a.writeOutputs(strings.TrimSuffix(script, "/")+"/", files); err != nil {
					return err
				}
			}
			switch f.format {
			case "json":
				err = report.WriteJSON(a.stdout)
			case "markdown":
				err = report.WriteMarkdown(a.stdout)
			default:
				err = report.WriteText(a.stdout, a.stdoutColor())
			}
			if err != nil {
				return err
			}
			if report.Changed {
				return exitError{exitChanges}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set an input variable for both versions, NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&f.format, "format", "text", "text, markdown or json")
	cmd.Flags().StringVarP(&target, "target", "t", "all", "targets to compare, comma-separated, or all")
	cmd.Flags().StringVar(&base, "base", "", "compare POLICY at this git revision with the working tree")
	cmd.Flags().StringVar(&script, "script", "", "also write each vendor target's change scripts into this directory: implement-FILE (OLD to NEW), backout-FILE (NEW to OLD), install-FILE and remove-FILE (NEW's first install and full removal)")
	cmd.Flags().StringArrayVar(&params, "param", nil, "set a target parameter, TARGET.NAME=VALUE (repeatable)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return diffUsage{err} })
	return cmd
}

// compileSide compiles one version; errors are reported and end the diff.
func (a *app) compileSide(label, path string, opts compiler.Options) (diff.Side, error) {
	return a.sideFrom(label, compiler.Compile(path, opts))
}

func (a *app) sideFrom(label string, res *compiler.Result) (diff.Side, error) {
	if res.HasErrors() {
		fmt.Fprintf(a.stderr, "%s does not compile:\n", label)
		diag.WriteText(a.stderr, res.Files, diag.ErrorsOnly(res.Diags), a.width(), a.useColor())
		return diff.Side{}, exitError{exitPolicy}
	}
	return diff.Side{Label: label, Program: res.Program, Diags: res.Diags}, nil
}

// compileAtRevision compiles the policy at path as it is at a git revision:
// its files and every file it reads (ranges files, certificates) come from
// git objects (gitfs), through the same loader as the working tree, so
// nothing is checked out and nothing is left behind.
func (a *app) compileAtRevision(rev, path string, opts compiler.Options) (diff.Side, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return diff.Side{}, err
	}
	info, err := os.Stat(abs)
	dir := abs
	if err == nil && !info.IsDir() {
		dir = filepath.Dir(abs)
	}
	top, err := git(dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return diff.Side{}, fmt.Errorf("--base needs a git repository: %v", err)
	}
	top = strings.TrimSpace(top)
	if resolved, err := filepath.EvalSymlinks(top); err == nil {
		top = resolved
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return diff.Side{}, fmt.Errorf("%s is outside the git repository %s", path, top)
	}
	rel = filepath.ToSlash(rel)
	// Is the path a directory (tree) or a file (blob) at that revision?
	whole, err := gitfs.Open(top, rev, "")
	if err != nil {
		return diff.Side{}, diffUsage{fmt.Errorf("--base %q is not a revision of %s", rev, top)}
	}
	st, err := fs.Stat(whole, rel)
	if err != nil {
		return diff.Side{}, fmt.Errorf("%s does not exist at %s", path, rev)
	}
	policyDir, file, root := rel, "", path
	if !st.IsDir() {
		policyDir, file, root = pathpkg.Dir(rel), pathpkg.Base(rel), filepath.Dir(path)
	}
	fsys, err := gitfs.Open(top, whole.Commit(), policyDir)
	if err != nil {
		return diff.Side{}, err
	}
	res := compiler.CompileFS(fsys, root, file, opts)
	return a.sideFrom(rev+":"+path, res)
}

// git runs a git command in dir and returns its standard output.
func git(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return out.String(), nil
}
