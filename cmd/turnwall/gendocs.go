package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/turnwall/turnwall/compiler/version"
)

// genDocsCmd writes the man pages, the Markdown CLI reference and the shell
// completions from the command tree itself, so they never disagree with the
// binary (hidden: the Debian package build runs it, see `make man`).
func (a *app) genDocsCmd() *cobra.Command {
	var manDir, mdDir, complDir string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write man pages, the Markdown CLI reference and shell completions",
		Hidden: true,
		Args:   cobra.NoArgs,
		Long: `gen-docs writes, from the commands themselves:
  --man DIR          turnwall.1 and one page per command (turnwall-apply.1, ...)
  --markdown DIR     turnwall.md and one page per command
  --completions DIR  turnwall.bash, _turnwall (zsh) and turnwall.fish

Dates come from $SOURCE_DATE_EPOCH when set, so a package build is
reproducible.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manDir == "" && mdDir == "" && complDir == "" {
				return usageError{errors.New("give at least one of --man, --markdown, --completions")}
			}
			root := cmd.Root()
			date, err := sourceDate()
			if err != nil {
				return usageError{err}
			}
			disableAutoGenTag(root)
			if manDir != "" {
				if err := os.MkdirAll(manDir, 0o755); err != nil {
					return err
				}
				hdr := &doc.GenManHeader{Title: "TURNWALL", Section: "1", Source: "turnwall " + version.String(), Manual: "turnwall manual", Date: date}
				if err := doc.GenManTree(root, hdr, manDir); err != nil {
					return fmt.Errorf("man pages: %w", err)
				}
			}
			if mdDir != "" {
				if err := os.MkdirAll(mdDir, 0o755); err != nil {
					return err
				}
				if err := doc.GenMarkdownTree(root, mdDir); err != nil {
					return fmt.Errorf("markdown: %w", err)
				}
			}
			if complDir != "" {
				if err := os.MkdirAll(complDir, 0o755); err != nil {
					return err
				}
				for name, gen := range map[string]func(string) error{
					"turnwall.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
					"_turnwall":     root.GenZshCompletionFile,
					"turnwall.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
				} {
					if err := gen(filepath.Join(complDir, name)); err != nil {
						return fmt.Errorf("completion %s: %w", name, err)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "write man pages (section 1) to this directory")
	cmd.Flags().StringVar(&mdDir, "markdown", "", "write the Markdown CLI reference to this directory")
	cmd.Flags().StringVar(&complDir, "completions", "", "write bash, zsh and fish completions to this directory")
	return cmd
}

// sourceDate is $SOURCE_DATE_EPOCH as a time (UTC), or nil when unset.
func sourceDate() (*time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a number of seconds", s)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, s := range c.Commands() {
		disableAutoGenTag(s)
	}
}
