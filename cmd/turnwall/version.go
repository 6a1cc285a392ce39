package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/version"
)

func (a *app) versionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print turnwall's version",
		Long: `Version prints the version of this turnwall: the package version a release
build was given (make deb), or the module version (go install module@version),
or "(devel)"; then the VCS revision it was built from, when known.
--format json adds the Go version, the module path, the commit time and
whether the tree had uncommitted changes.

Exit status: 0, or 2 for usage errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := version.Get()
			switch format {
			case "json":
				out, err := json.MarshalIndent(in, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s\n", out)
			case "text":
				line := "turnwall " + in.Version
				if in.Revision != "" {
					rev := in.Revision
					if len(rev) > 12 {
						rev = rev[:12]
					}
					if in.Modified {
						rev += "-dirty"
					}
					line += " (" + rev + ")"
				}
				fmt.Fprintln(a.stdout, line)
			default:
				return usageError{fmt.Errorf("--format %q: use text or json", format)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}
