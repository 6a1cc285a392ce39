package main

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"

	"github.com/turnwall/turnwall/compiler/diag"
)

func (a *app) validateCmd() *cobra.Command {
	var f policyFlags
	cmd := &cobra.Command{
		Use:   "validate [POLICY]",
		Short: "Check a policy and lint it for WebRTC firewall traps",
		Long: `Validate loads POLICY (a file or a directory of *.hcl / *.hcl.json files; the
current directory by default), checks it, compiles it to the IR, lints it, and
checks it against what every target can carry (TW213).
Diagnostics name file:line:col, the code, and what to do.

Exit status: 0 no errors, 1 errors (warnings too with --strict), 2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "text" && f.format != "json" {
				return usageError{fmt.Errorf("--format %q: use text or json", f.format)}
			}
			path := policyArg(args)
			reg := registry()
			all, _ := reg.Resolve("all")
			f.check = func(p *ir.Program, root string) hcl.Diagnostics {
				return append(backends.CheckDevices(reg.Names(), p, root), backends.Check(all, nil, p, root)...)
			}
			res, err := a.compilePolicy(path, &f)
			if err != nil {
				return err
			}
			if f.format == "json" {
				errs, warns := diag.Count(res.Diags)
				out := struct {
					Valid       bool                  `json:"valid"`
					Errors      int                   `json:"errors"`
					Warnings    int                   `json:"warnings"`
					Diagnostics []diag.JSONDiagnostic `json:"diagnostics"`
				}{!res.HasErrors(), errs, warns, diag.ToJSON(res.Diags)}
				if err := writeJSON(a, out); err != nil {
					return err
				}
			} else if !res.HasErrors() {
				p := res.Program
				fmt.Fprintf(a.stdout, "policy %q is valid: %s, %s, %s; %s\n", p.Policy.Name,
					count(len(p.Rules), "rule"), count(len(p.AddressSets), "address set"), count(len(p.Services), "service"), summary(res))
			} else {
				fmt.Fprintf(a.stderr, "policy %s is not valid: %s\n", path, summary(res))
			}
			if res.HasErrors() {
				return exitError{exitPolicy}
			}
			return nil
		},
	}
	f.add(cmd, "diagnostics format: text or json")
	return cmd
}
