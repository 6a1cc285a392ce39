package ranges_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler/ranges"
	"github.com/turnwall/turnwall/compiler/testkit"
)

// TestShippedRangesFiles re-runs, for every generated ranges file of the
// example policies, the import command its header records, on the sample file
// shipped beside it: the file must be exactly that command's output. So the
// examples stay in sync with their samples, and the refresh command in each
// header is known to work. -update regenerates them.
func TestShippedRangesFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "policies", "*", "*.ranges"))
	checked := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		args, ok := refreshCommand(data)
		if !ok {
			continue // a hand-kept ranges file
		}
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			src, style := parseImportArgs(t, args)
			input, err := os.ReadFile(filepath.Join(filepath.Dir(path), src.Name))
			if err != nil {
				t.Fatalf("the header names %s: %v", src.Name, err)
			}
			res, err := ranges.Parse(input, src.Format, src.Filter)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors() > 0 || len(ranges.Unmatched(src.Filter, res)) > 0 || res.Matched == 0 {
				t.Fatalf("the sample does not import cleanly: %v %v", res.Problems, ranges.Unmatched(src.Filter, res))
			}
			testkit.File(t, path, ranges.Render(res, src, style))
		})
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d generated ranges files under policies/", checked)
	}
}

// refreshCommand returns the arguments of the "turnwall ranges import" line
// in a generated file's header.
func refreshCommand(data []byte) ([]string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		if rest, ok := strings.CutPrefix(line, "#   turnwall ranges import "); ok {
			return strings.Fields(rest), true
		}
	}
	return nil, false
}

func parseImportArgs(t *testing.T, args []string) (ranges.Source, ranges.Style) {
	t.Helper()
	src := ranges.Source{}
	style := ranges.StyleText
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "--") {
			src.Name = arg
			continue
		}
		if i+1 == len(args) {
			t.Fatalf("flag %s without a value", arg)
		}
		i++
		values := strings.Split(args[i], ",")
		switch arg {
		case "--format-in":
			f, err := ranges.ParseFormat(args[i])
			if err != nil {
				t.Fatal(err)
			}
			src.Format = f
		case "--format":
			style = ranges.Style(args[i])
		case "--service":
			src.Filter.Service = values
		case "--region":
			src.Filter.Region = values
		case "--direction":
			src.Filter.Direction = values
		case "--category":
			src.Filter.Category = values
		case "--service-area":
			src.Filter.ServiceArea = values
		default:
			t.Fatalf("unknown flag %s", arg)
		}
	}
	return src, style
}
