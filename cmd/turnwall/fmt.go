package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/diag"
)

func (a *app) fmtCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite policy files in canonical HCL style",
		Long: `Fmt rewrites *.hcl files (PATH may be files or directories; the current
directory by default) in canonical style, atomically. With --check it changes
nothing and lists the files that need formatting.

Exit status: 0 all formatted, 1 files need formatting (--check) or do not
parse, 2 usage errors. JSON policy files are left alone.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := hclFiles(args)
			if err != nil {
				return usageError{err}
			}
			code := exitOK
			for _, path := range files {
				src, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if _, d := hclsyntax.ParseConfig(src, path, hcl.InitialPos); d.HasErrors() {
					parsed := map[string]*hcl.File{path: {Bytes: src}}
					diag.WriteText(a.stderr, parsed, d, a.width(), a.useColor())
					code = exitPolicy
					continue
				}
				out := hclwrite.Format(src)
				if bytes.Equal(out, src) {
					continue
				}
				if check {
					fmt.Fprintln(a.stdout, path)
					code = exitPolicy
					continue
				}
				if err := writeFilesAtomic([]string{path}, map[string][]byte{path: out}); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, path)
			}
			if code != exitOK {
				return exitError{code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "list files that need formatting; change nothing")
	return cmd
}

func hclFiles(args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			// JSON-syntax policies have no canonical HCL style to apply.
			if !strings.HasSuffix(arg, ".json") {
				out = append(out, arg)
			}
			continue
		}
		err = filepath.WalkDir(arg, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != arg && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".hcl") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
