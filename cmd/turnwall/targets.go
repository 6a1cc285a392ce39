package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends"
)

func (a *app) targetsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "targets",
		Short: "List the compile targets, their formats and parameters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			reg := registry()
			for _, name := range reg.Names() {
				b, _ := reg.Get(name)
				trace := ""
				if _, ok := b.(backends.Traceable); ok {
					trace = ", traceable"
				}
				fmt.Fprintf(a.stdout, "%s: %s\n  formats: %s%s\n", name, b.Description(), strings.Join(b.Formats(), ", "), trace)
				for _, p := range b.Params() {
					def := p.Default
					if def == "" {
						def = "(none)"
					}
					fmt.Fprintf(a.stdout, "  --param %s.%s (default %s): %s\n", name, p.Name, def, p.Help)
				}
			}
			return nil
		},
	}
}
