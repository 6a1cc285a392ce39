package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turnwall/turnwall/backends/graph"
)

func (a *app) graphCmd() *cobra.Command {
	var f policyFlags
	var format, output string
	cmd := &cobra.Command{
		Use:   "graph [POLICY]",
		Short: "Draw the policy's flows (Mermaid, DOT, SVG, PNG)",
		Long: `Graph draws what the compiled policy allows: zones as clusters; agents groups,
providers (with their range counts), relays, public STUN servers (by name) and
explicit rules' address sets as boxes; one arrow per flow purpose labelled
with its services; deny rules in red with a bar end; the relay's return path
to the agents dashed in blue.

--format mermaid (default; GitHub and GitLab render it in markdown), dot
(Graphviz source), svg or png (run Graphviz's dot, which must be installed).
Output goes to stdout, or with -o to a file written atomically. png is not
written to a terminal.

Exit status: 0 drawn, 1 policy errors or a failed render, 2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			valid := false
			for _, x := range graph.Formats {
				valid = valid || x == format
			}
			if !valid {
				return usageError{fmt.Errorf("--format %q: use %s", format, strings.Join(graph.Formats, ", "))}
			}
			if format == "png" && output == "" {
				if fd, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
					return usageError{errors.New("--format png writes binary data: use -o FILE or redirect stdout")}
				}
			}
			f.format = "text"
			res, err := a.compilePolicy(policyArg(args), &f)
			if err != nil {
				return err
			}
			if res.HasErrors() {
				fmt.Fprintf(a.stderr, "nothing drawn: %s\n", summary(res))
				return exitError{exitPolicy}
			}
			data, err := graph.Render(context.Background(), res.Program, format)
			if err != nil {
				return err
			}
			if output == "" {
				_, err = a.stdout.Write(data)
				return err
			}
			return writeFilesAtomic([]string{output}, map[string][]byte{output: data})
		},
	}
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set an input variable, NAME=VALUE (repeatable)")
	cmd.Flags().BoolVar(&f.strict, "strict", false, "treat warnings as errors")
	cmd.Flags().StringVar(&format, "format", "mermaid", strings.Join(graph.Formats, ", "))
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	return cmd
}
