package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

func (a *app) compileCmd() *cobra.Command {
	var f policyFlags
	var target, output string
	var params []string
	reg := registry()
	cmd := &cobra.Command{
		Use:   "compile [POLICY]",
		Short: "Compile a policy to one or more targets",
		Long: fmt.Sprintf(`Compile checks POLICY like validate and, when it has no errors, emits each
--target (comma-separated, or all; targets: %v).

Output goes to stdout, or with -o to a file (one target) or a directory (one
file per target). Files are written atomically and never when there are errors.

Exit status: 0 compiled, 1 policy errors, 2 usage errors.`, reg.Names()),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := reg.Resolve(target)
			if err != nil {
				return usageError{err}
			}
			byTarget, err := reg.SplitParams(params)
			if err != nil {
				return usageError{err}
			}
			format := ""
			if cmd.Flags().Changed("format") {
				format = f.format
			}
			// A format applies to the targets that have it; it is an error only
			// when none of the chosen targets does.
			if format != "" {
				taken := false
				for _, b := range targets {
					taken = taken || containsString(b.Formats(), format)
				}
				if !taken {
					return usageError{fmt.Errorf("no chosen target has format %q (%s)", format, formatList(targets))}
				}
			}
			diagFlags := f
			diagFlags.format = "text"
			diagFlags.check = func(p *ir.Program, root string) hcl.Diagnostics {
				return append(backends.CheckDevices(registry().Names(), p, root), backends.Check(targets, byTarget, p, root)...)
			}
			res, err := a.compilePolicy(policyArg(args), &diagFlags)
			if err != nil {
				return err
			}
			if res.HasErrors() {
				fmt.Fprintf(a.stderr, "nothing written: %s\n", summary(res))
				return exitError{exitPolicy}
			}
			var outputs []backends.File
			for _, b := range targets {
				opts, _ := backends.DeviceOptions(res.Program, b, backends.Options{Params: byTarget[b.Name()]})
				if containsString(b.Formats(), format) {
					opts.Format = format
				}
				files, err := b.Emit(res.Program, opts)
				if err != nil {
					return fmt.Errorf("target %s: %w", b.Name(), err)
				}
				outputs = append(outputs, files...)
			}
			return a.writeOutputs(output, outputs)
		},
	}
	f.add(cmd, "output format where a target has several (ir: text or json)")
	cmd.Flags().StringVarP(&target, "target", "t", "ir", "targets to emit, comma-separated, or all")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (one output file) or directory instead of stdout")
	cmd.Flags().StringArrayVar(&params, "param", nil, "set a target parameter, TARGET.NAME=VALUE (repeatable)")
	return cmd
}

func formatList(targets []backends.Backend) string {
	var parts []string
	for _, b := range targets {
		parts = append(parts, b.Name()+": "+strings.Join(b.Formats(), ", "))
	}
	return strings.Join(parts, "; ")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeOutputs writes to stdout, one file, or one file per target in a
// directory. Every file is first written in full to a temporary file beside its
// destination, then renamed, so readers never see a half-written rule set.
func (a *app) writeOutputs(dest string, outputs []backends.File) error {
	if dest == "" {
		for i, o := range outputs {
			if len(outputs) > 1 {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				fmt.Fprintf(a.stdout, "# ==> %s <==\n", o.Name)
			}
			if _, err := a.stdout.Write(o.Data); err != nil {
				return err
			}
		}
		return nil
	}
	info, err := os.Stat(dest)
	isDir := err == nil && info.IsDir()
	if (len(outputs) > 1 || strings.HasSuffix(dest, string(os.PathSeparator))) && !isDir {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		isDir = true
	}
	files := make(map[string][]byte, len(outputs))
	var order []string
	for _, o := range outputs {
		path := dest
		if isDir {
			path = filepath.Join(dest, o.Name)
		}
		if _, dup := files[path]; dup {
			return fmt.Errorf("two outputs are named %s", path)
		}
		files[path] = o.Data
		order = append(order, path)
	}
	return writeFilesAtomic(order, files)
}
