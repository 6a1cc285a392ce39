package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/ranges"
)

// maxProblemsShown bounds the per-entry problems printed for one input: a
// file that is wrong throughout needs the first few lines, not ten thousand.
const maxProblemsShown = 50

// exitRangesChanged is ranges diff's status when the sets differ (like git
// diff --exit-code, with 1 kept for errors).
const exitRangesChanged = 2

func (a *app) rangesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ranges",
		Short: "Import provider IP range files and compare them",
		Long: `Ranges converts the IP range files providers publish into ranges files that a
policy reads with ranges_file(), and shows what changed between two of them.

Input formats (--format-in, detected when unambiguous):
  aws      AWS ip-ranges.json                    filters: --service, --region
  genesys  Genesys Cloud GET /api/v2/ipranges    filters: --service, --region, --direction
  m365     Microsoft 365 endpoints web service   filters: --category, --service-area
  text     one IP, CIDR or a-b range a line (# comments), or a JSON array of them
  pairs    start-end address pairs, several a line (START-END, START - END, START END)

Nothing is fetched: download the provider's file yourself and review it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.rangesImportCmd(), a.rangesDiffCmd())
	return cmd
}

// rangesFlags are the input flags import and diff share.
type rangesFlags struct {
	formatIn string
	filter   ranges.Filter
}

func (f *rangesFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.formatIn, "format-in", "", "input format: aws, genesys, m365, text or pairs (detected when omitted)")
	fl.StringSliceVar(&f.filter.Service, "service", nil, "select entries of these services (aws: AMAZON_CONNECT, EC2...; genesys: api, smtp...)")
	fl.StringSliceVar(&f.filter.Region, "region", nil, "select entries of these regions (aws: us-east-1, GLOBAL...; genesys)")
	fl.StringSliceVar(&f.filter.Direction, "direction", nil, "genesys: inbound, outbound or both (inbound and outbound also select both)")
	fl.StringSliceVar(&f.filter.Category, "category", nil, "m365: Optimize, Allow or Default")
	fl.StringSliceVar(&f.filter.ServiceArea, "service-area", nil, "m365: Exchange, SharePoint, Skype (Teams) or Common")
}

// format is the --format-in value, "" to detect.
func (f *rangesFlags) format() (ranges.Format, error) {
	if f.formatIn == "" {
		return "", nil
	}
	format, err := ranges.ParseFormat(f.formatIn)
	if err != nil {
		return "", usageError{fmt.Errorf("--format-in: %v", err)}
	}
	return format, nil
}

func (a *app) rangesImportCmd() *cobra.Command {
	var f rangesFlags
	var style, output string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Convert a provider's range file into a ranges file",
		Long: `Import reads FILE (- for stdin), keeps the entries the filters select, and
writes their addresses aggregated to the minimal prefix cover: a ranges file
for ranges_file() (one prefix a line, IPv4 then IPv6, sorted), or with
--format hcl an HCL list for ranges = [...]. A header of # comments says how
to regenerate it and what it holds; there are no timestamps, so the same input
gives the same bytes.

Every bad entry is reported as FILE:LINE:COL with its JSON path; nothing is
written when there is one, nor when the filters select nothing. Output goes to
stdout, or atomically to -o FILE.

Examples:
  turnwall ranges import --service AMAZON_CONNECT --region us-east-1,GLOBAL ip-ranges.json
  turnwall ranges import --category Optimize --service-area Skype -o teams.ranges endpoints.json
  turnwall ranges import --format-in pairs --format hcl nts.txt

Exit status: 0 written, 1 input errors, 2 usage errors.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if style != string(ranges.StyleText) && style != string(ranges.StyleHCL) {
				return usageError{fmt.Errorf("--format %q: use text or hcl", style)}
			}
			format, err := f.format()
			if err != nil {
				return err
			}
			in, err := a.readRangesInput(args[0], format, f.filter, true)
			if err != nil {
				return err
			}
			if in == nil {
				fmt.Fprintln(a.stderr, "nothing written")
				return exitError{exitPolicy}
			}
			if u := ranges.Unmatched(f.filter, in.res); len(u) > 0 {
				for _, msg := range u {
					fmt.Fprintf(a.stderr, "turnwall: %s: %s\n", in.name, msg)
				}
				fmt.Fprintln(a.stderr, "nothing written")
				return exitError{exitPolicy}
			}
			if in.res.Matched == 0 {
				what := "the input holds no addresses"
				if !f.filter.IsZero() {
					what = "no entry matches all the filters"
				}
				fmt.Fprintf(a.stderr, "turnwall: %s: %s; nothing written\n", in.name, what)
				return exitError{exitPolicy}
			}
			out := ranges.Render(in.res, ranges.Source{Name: in.base, Format: in.res.Format, Filter: f.filter}, ranges.Style(style))
			if output == "" {
				_, err := a.stdout.Write(out)
				return err
			}
			return writeFilesAtomic([]string{output}, map[string][]byte{output: out})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&style, "format", "text", "output: text (a ranges file) or hcl (an HCL list)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (atomically) instead of stdout")
	return cmd
}

func (a *app) rangesDiffCmd() *cobra.Command {
	var f rangesFlags
	cmd := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Show which addresses appeared and disappeared between two range files",
		Long: `Diff compares the addresses of OLD and NEW (- for stdin): ranges files, or any
input import reads, each detected on its own unless --format-in is given. The
filters apply to the inputs whose format has those fields, so a ranges file
in use can be compared with a provider's new publication.

It prints the removed ("- PREFIX") and added ("+ PREFIX") addresses, each
aggregated to the minimal prefix cover, in address order, then a summary line
with counts. Addresses are compared, not lines: a prefix split in two or
written as a range is no change.

Exit status: 0 no change, 2 changes, 1 errors (input errors and usage
errors alike), as git diff --exit-code, so that 2 always means the addresses
differ.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return a.rangesDiffUsage(fmt.Errorf("give OLD and NEW (two files, or one of them - for stdin); got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := f.format()
			if err != nil {
				return a.rangesDiffUsage(err)
			}
			if args[0] == "-" && args[1] == "-" {
				return a.rangesDiffUsage(errors.New("OLD and NEW cannot both be stdin"))
			}
			var inputs [2]*rangesInput
			failed := false
			for i, arg := range args {
				in, err := a.readRangesInput(arg, format, f.filter, false)
				var ue usageError
				if errors.As(err, &ue) {
					return a.rangesDiffUsage(ue.err)
				}
				if err != nil {
					return err
				}
				if in == nil {
					failed = true
				}
				inputs[i] = in
			}
			if failed {
				return exitError{exitPolicy}
			}
			old, new := inputs[0], inputs[1]
			if !f.filter.IsZero() && !appliesTo(f.filter, old.res.Format) && !appliesTo(f.filter, new.res.Format) {
				return a.rangesDiffUsage(fmt.Errorf("the filters apply to neither input: %s is a %s, %s is a %s",
					oneLine(old.name), old.res.Format.Describe(), oneLine(new.name), new.res.Format.Describe()))
			}
			if u := ranges.Unmatched(f.filter, old.res, new.res); len(u) > 0 {
				for _, msg := range u {
					fmt.Fprintf(a.stderr, "turnwall: %s\n", msg)
				}
				return exitError{exitPolicy}
			}
			d := ranges.Compare(old.res.Set(), new.res.Set())
			var b strings.Builder
			fmt.Fprintf(&b, "# old: %s (%s, %d of %d entries, %d prefixes)\n", oneLine(old.name), old.res.Format.Describe(), old.res.Matched, old.res.Read, len(old.res.Prefixes()))
			fmt.Fprintf(&b, "# new: %s (%s, %d of %d entries, %d prefixes)\n", oneLine(new.name), new.res.Format.Describe(), new.res.Matched, new.res.Read, len(new.res.Prefixes()))
			for _, line := range d.Lines() {
				b.WriteString(line + "\n")
			}
			b.WriteString("# " + d.Summary() + "\n")
			if _, err := io.WriteString(a.stdout, b.String()); err != nil {
				return err
			}
			if d.Changed() {
				return exitError{exitRangesChanged}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return a.rangesDiffUsage(err) })
	return cmd
}

// rangesDiffUsage reports a usage error of ranges diff, whose exit status 2
// means "the addresses differ": its usage errors exit 1, like its other
// errors (as turnwall diff does).
func (a *app) rangesDiffUsage(err error) error {
	fmt.Fprintf(a.stderr, "turnwall: %v\n", err)
	fmt.Fprintln(a.stderr, "Run 'turnwall ranges diff --help' for usage.")
	return exitError{exitPolicy}
}

func appliesTo(f ranges.Filter, format ranges.Format) bool {
	for _, field := range f.Given() {
		for _, have := range format.Fields() {
			if field == have {
				return true
			}
		}
	}
	return false
}

// rangesInput is one parsed input.
type rangesInput struct {
	name string // as given, for messages ("<stdin>" for -)
	base string // for the output's header
	res  *ranges.Result
}

// readRangesInput reads and parses one input, printing its problems. It
// returns nil (and no error) when the input has errors, already reported; an
// error for usage errors and unreadable files. strictFilter makes a filter
// the input's format lacks a usage error (import); otherwise (diff) filters
// apply only to the formats that carry them.
func (a *app) readRangesInput(arg string, format ranges.Format, filter ranges.Filter, strictFilter bool) (*rangesInput, error) {
	in := &rangesInput{name: arg, base: filepath.Base(arg)}
	var data []byte
	var err error
	if arg == "-" {
		in.name, in.base = "<stdin>", "-"
		data, err = io.ReadAll(io.LimitReader(a.stdin, eval.MaxInputFile+1))
		if err == nil && len(data) > eval.MaxInputFile {
			err = fmt.Errorf("stdin is larger than %d MiB", eval.MaxInputFile>>20)
		}
	} else {
		data, err = readInputFile(arg)
	}
	if err != nil {
		return nil, err
	}
	name := oneLine(in.name)
	if format == "" {
		detected, err := ranges.Detect(data)
		if err != nil {
			fmt.Fprintf(a.stderr, "%s:%s\n", name, positioned(err))
			return nil, nil
		}
		format = detected
	}
	if err := ranges.CheckFilter(format, filter); err != nil {
		if strictFilter || len(format.Fields()) > 0 {
			return nil, usageError{fmt.Errorf("%s: %v", name, err)}
		}
		filter = ranges.Filter{} // a list in a diff: nothing to filter
	}
	res, err := ranges.Parse(data, format, filter)
	if err != nil {
		fmt.Fprintf(a.stderr, "%s:%s\n", name, positioned(err))
		return nil, nil
	}
	in.res = res
	shown := 0
	for _, p := range res.Problems {
		if shown == maxProblemsShown {
			fmt.Fprintf(a.stderr, "%s: ... and %d more problems\n", name, len(res.Problems)-shown)
			break
		}
		kind := "error"
		if p.Warning {
			kind = "warning"
		}
		fmt.Fprintf(a.stderr, "%s:%d:%d: %s: %s\n", name, p.Line, p.Col, kind, p.Text())
		shown++
	}
	if n := res.Errors(); n > 0 {
		entries := "invalid entries"
		if n == 1 {
			entries = "invalid entry"
		}
		fmt.Fprintf(a.stderr, "turnwall: %s (%s): %d %s; fix or report them\n", name, format.Describe(), n, entries)
		return nil, nil
	}
	return in, nil
}

// positioned formats a fatal parse error to follow "FILE:": "LINE:COL: error:
// ..." when it has a position.
func positioned(err error) string {
	var p *ranges.Problem
	if errors.As(err, &p) {
		return fmt.Sprintf("%d:%d: error: %s", p.Line, p.Col, p.Text())
	}
	return " error: " + err.Error()
}

// readInputFile reads a regular file of at most eval.MaxInputFile bytes.
func readInputFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", oneLine(path), unwrapPath(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", oneLine(path))
	}
	if info.Size() > eval.MaxInputFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", oneLine(path), eval.MaxInputFile>>20)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", oneLine(path), unwrapPath(err))
	}
	return data, nil
}

// oneLine quotes a name that holds control characters, so that a file name
// cannot forge lines in turnwall's messages.
func oneLine(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' }) {
		return fmt.Sprintf("%q", s)
	}
	return s
}
