package ranges_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/turnwall/turnwall/compiler/eval"
	"github.com/turnwall/turnwall/compiler/ranges"
	"github.com/turnwall/turnwall/compiler/testkit"
)

var (
	fixtures = filepath.Join("..", "..", "testdata", "ranges")
	goldens  = filepath.Join("..", "..", "testdata", "golden", "ranges")
)

// importCase is one golden import: a fixture, the format detection must find,
// the filter, and the output styles kept under testdata/golden/ranges.
type importCase struct {
	name   string
	file   string
	format ranges.Format // what Detect must say
	filter ranges.Filter
	styles []ranges.Style
	// prefixes pins the result independently of the golden file.
	prefixes []string
}

var importCases = []importCase{
	{
		name: "aws-amazon-connect-us-east-1", file: "aws-ip-ranges.json", format: ranges.AWS,
		filter:   ranges.Filter{Service: []string{"AMAZON_CONNECT"}, Region: []string{"us-east-1", "GLOBAL"}},
		styles:   []ranges.Style{ranges.StyleText, ranges.StyleHCL},
		prefixes: []string{"15.193.0.0/19", "18.233.213.128/25", "52.55.191.224/27"},
	},
	{
		name: "aws-connect-web-us-east-1", file: "aws-ip-ranges.json", format: ranges.AWS,
		filter:   ranges.Filter{Service: []string{"EC2", "CLOUDFRONT"}, Region: []string{"us-east-1", "GLOBAL"}},
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"3.80.0.0/12", "13.32.0.0/15", "52.84.0.0/15", "2600:1f18::/33", "2600:9000::/28"},
	},
	{
		// Lower-case filter values select the same entries.
		name: "aws-amazon-connect-lowercase", file: "aws-ip-ranges.json", format: ranges.AWS,
		filter:   ranges.Filter{Service: []string{"amazon_connect"}},
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"15.193.0.0/19", "18.233.213.128/25", "35.158.127.64/26", "52.55.191.224/27", "54.190.198.32/28"},
	},
	{
		name: "aws-all", file: "aws-ip-ranges.json", format: ranges.AWS,
		styles: []ranges.Style{ranges.StyleText},
	},
	{
		name: "aws-later-amazon-connect-us-east-1", file: "aws-ip-ranges-later.json", format: ranges.AWS,
		filter:   ranges.Filter{Service: []string{"AMAZON_CONNECT"}, Region: []string{"us-east-1", "GLOBAL"}},
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"15.193.0.0/19", "18.233.213.128/25", "35.171.74.0/26"},
	},
	{
		// outbound also selects the api ranges used in both directions.
		name: "genesys-outbound-us-east-2", file: "genesys-ipranges.json", format: ranges.Genesys,
		filter:   ranges.Filter{Direction: []string{"outbound"}, Region: []string{"us-east-2"}},
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"3.13.200.0/24", "3.130.206.0/26", "13.58.42.0/24", "18.119.227.0/25", "2600:1f16:c3c:c100::/56"},
	},
	{
		name: "genesys-data-actions", file: "genesys-ipranges.json", format: ranges.Genesys,
		filter:   ranges.Filter{Service: []string{"data-actions"}},
		styles:   []ranges.Style{ranges.StyleText, ranges.StyleHCL},
		prefixes: []string{"3.64.191.0/25", "3.130.206.0/26", "13.58.42.0/24"},
	},
	{
		name: "genesys-both-only", file: "genesys-ipranges.json", format: ranges.Genesys,
		filter:   ranges.Filter{Direction: []string{"both"}},
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"3.13.200.0/24", "2600:1f16:c3c:c100::/56"},
	},
	{
		name: "m365-teams-media", file: "m365-endpoints.json", format: ranges.M365,
		filter:   ranges.Filter{Category: []string{"Optimize"}, ServiceArea: []string{"Skype"}},
		styles:   []ranges.Style{ranges.StyleText, ranges.StyleHCL},
		prefixes: []string{"52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"},
	},
	{
		name: "m365-optimize", file: "m365-endpoints.json", format: ranges.M365,
		filter: ranges.Filter{Category: []string{"optimize"}},
		styles: []ranges.Style{ranges.StyleText},
	},
	{
		name: "text-zoom", file: "zoom-ips.txt", format: ranges.Text,
		styles: []ranges.Style{ranges.StyleText, ranges.StyleHCL},
	},
	{
		name: "text-mixed", file: "mixed-list.txt", format: ranges.Text,
		styles: []ranges.Style{ranges.StyleText},
	},
	{
		name: "text-crlf", file: "crlf-list.txt", format: ranges.Text,
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"52.112.0.0/14", "52.122.0.0/15", "2603:1063::/38"},
	},
	{
		name: "text-json-array", file: "agents-list.json", format: ranges.Text,
		styles:   []ranges.Style{ranges.StyleText},
		prefixes: []string{"10.20.0.0/15", "192.0.2.1/32", "192.0.2.2/31", "192.0.2.4/31", "192.0.2.6/32", "fd00:20::/48", "fd00:21::/48"},
	},
	{
		name: "pairs-twilio-nts", file: "twilio-nts-regions.txt", format: ranges.Pairs,
		styles: []ranges.Style{ranges.StyleText},
	},
	{
		name: "pairs-odd", file: "odd-pairs.txt", format: ranges.Pairs,
		styles: []ranges.Style{ranges.StyleText},
	},
}

// goldenExt names golden files by what they hold.
var goldenExt = map[ranges.Style]string{ranges.StyleText: ".ranges", ranges.StyleHCL: ".hcl"}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGoldenImports(t *testing.T) {
	for _, c := range importCases {
		t.Run(c.name, func(t *testing.T) {
			data := readFixture(t, c.file)
			format, err := ranges.Detect(data)
			if err != nil || format != c.format {
				t.Fatalf("Detect = %q, %v; want %q", format, err, c.format)
			}
			res, err := ranges.Parse(data, "", c.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) > 0 {
				t.Fatalf("problems in a good fixture: %v", res.Problems)
			}
			if u := ranges.Unmatched(c.filter, res); len(u) > 0 {
				t.Fatalf("unmatched filter values: %v", u)
			}
			if res.Matched == 0 {
				t.Fatal("nothing selected")
			}
			if c.prefixes != nil {
				var got []string
				for _, p := range res.Prefixes() {
					got = append(got, p.String())
				}
				if strings.Join(got, " ") != strings.Join(c.prefixes, " ") {
					t.Errorf("prefixes\n got %v\nwant %v", got, c.prefixes)
				}
			}
			src := ranges.Source{Name: c.file, Format: format, Filter: c.filter}
			for _, style := range c.styles {
				out := ranges.Render(res, src, style)
				testkit.File(t, filepath.Join(goldens, c.name+goldenExt[style]), out)
				if !bytes.Equal(out, ranges.Render(res, src, style)) {
					t.Fatal("rendering twice gives different bytes")
				}
				checkOutput(t, out, style, res.Prefixes())
			}
		})
	}
}

// checkOutput reads a rendered output back the way a policy would and checks
// it holds exactly the result's prefixes: a text output through ranges_file()'s
// rules (every line an address or a comment), an HCL output as an expression.
func checkOutput(t *testing.T, out []byte, style ranges.Style, want []netip.Prefix) {
	t.Helper()
	var got []string
	switch style {
	case ranges.StyleText:
		for i, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			if _, problem := eval.ParseAddress(line); problem != nil {
				t.Fatalf("line %d %q: %s", i+1, line, problem.Summary)
			}
			got = append(got, line)
		}
		// Read back with the text parser: same set.
		back, err := ranges.Parse(out, ranges.Text, ranges.Filter{})
		if err != nil || len(back.Problems) > 0 {
			t.Fatalf("output does not read back: %v %v", err, back.Problems)
		}
		if !back.Set().Equal(setOf(want)) {
			t.Fatal("output reads back as a different set")
		}
	case ranges.StyleHCL:
		// Comments before the list: move them above the attribute.
		var comments, body []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "#") {
				comments = append(comments, line)
			} else {
				body = append(body, line)
			}
		}
		src := []byte(strings.Join(comments, "\n") + "\nranges = " + strings.Join(body, "\n"))
		f, diags := hclsyntax.ParseConfig(src, "out.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("HCL output does not parse: %v\n%s", diags, src)
		}
		attrs, diags := f.Body.JustAttributes()
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		val, diags := attrs["ranges"].Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		for it := val.ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.Type() != cty.String {
				t.Fatalf("element of type %s", v.Type().FriendlyName())
			}
			got = append(got, v.AsString())
		}
		// The list as a whole also parses on its own, comments and all.
		if _, diags := hclsyntax.ParseExpression(out, "out.hcl", hcl.InitialPos); diags.HasErrors() {
			t.Fatalf("HCL output is not an expression: %v", diags)
		}
	}
	var wantS []string
	for _, p := range want {
		wantS = append(wantS, p.String())
	}
	if strings.Join(got, " ") != strings.Join(wantS, " ") {
		t.Fatalf("output holds %v, want %v", got, wantS)
	}
}

// malformedCase is an input with errors: the golden .err file lists every
// problem (or the one fatal error) as the CLI prints it, after FILE:.
type malformedCase struct {
	file   string
	format ranges.Format // "" to detect
	filter ranges.Filter
	fatal  bool // Parse fails as a whole
	errors int  // problems that are errors (not warnings)
}

var malformedCases = []malformedCase{
	{file: "aws-bad-entries.json", errors: 9},
	{file: "aws-truncated.json", fatal: true},
	{file: "aws-not-a-list.json", fatal: true},
	{file: "genesys-bad-entries.json", errors: 4},
	{file: "m365-bad-entries.json", errors: 4},
	{file: "text-bad-entries.txt", errors: 5},
	{file: "pairs-bad-entries.txt", format: ranges.Pairs, errors: 5},
	{file: "json-deep.json", fatal: true},
	{file: "json-unknown.json", fatal: true},
	// The right file with the wrong format forced.
	{file: "genesys-bad-entries.json", format: ranges.AWS, fatal: true},
}

func TestMalformed(t *testing.T) {
	for _, c := range malformedCases {
		name := strings.TrimSuffix(c.file, filepath.Ext(c.file))
		if c.format != "" {
			name += "-as-" + string(c.format)
		}
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, filepath.Join("malformed", c.file))
			res, err := ranges.Parse(data, c.format, c.filter)
			var out bytes.Buffer
			if c.fatal {
				if err == nil {
					t.Fatalf("Parse succeeded; problems %v", res.Problems)
				}
				var p *ranges.Problem
				if !errors.As(err, &p) || p.Line < 1 || p.Col < 1 {
					t.Fatalf("fatal error without a position: %v", err)
				}
				out.WriteString(err.Error() + "\n")
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Errors(); got != c.errors {
					t.Errorf("%d errors, want %d: %v", got, c.errors, res.Problems)
				}
				for _, p := range res.Problems {
					if p.Line < 1 || p.Col < 1 {
						t.Errorf("problem without a position: %v", p)
					}
					kind := "error"
					if p.Warning {
						kind = "warning"
					}
					out.WriteString(kind + ": " + p.Error() + "\n")
				}
			}
			for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
				if strings.ContainsAny(line, "\r\u2028") {
					t.Errorf("message spans lines: %q", line)
				}
			}
			testkit.File(t, filepath.Join(goldens, "malformed-"+name+".err"), out.Bytes())
		})
	}
}

// Every problem names its entry precisely; a few are pinned here beside the
// golden files.
func TestProblemPositions(t *testing.T) {
	data := readFixture(t, "malformed/aws-bad-entries.json")
	res, err := ranges.Parse(data, "", ranges.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"$.prefixes[1].ip_prefix":        `6:19: $.prefixes[1].ip_prefix: "15.193.0.0/33" is not a CIDR prefix`,
		"$.prefixes[2].ip_prefix":        `7:19: $.prefixes[2].ip_prefix: "2600:1f18::/33" is not an IPv4 prefix`,
		"$.prefixes[4].region":           `9:49: $.prefixes[4].region: expected a string, found a number`,
		"$.prefixes[7]":                  `12:5: $.prefixes[7]: expected a prefix entry object, found a string`,
		"$.ipv6_prefixes[1].ipv6_prefix": `17:21: $.ipv6_prefixes[1].ipv6_prefix: "fe80::1%eth0/64" carries an interface zone`,
	}
	found := map[string]bool{}
	for _, p := range res.Problems {
		if w, ok := want[p.Path]; ok {
			found[p.Path] = true
			if !strings.HasPrefix(p.Error(), w) {
				t.Errorf("got  %s\nwant %s...", p.Error(), w)
			}
		}
	}
	for path := range want {
		if !found[path] {
			t.Errorf("no problem at %s", path)
		}
	}
	// Index is the entry's place in its list.
	for _, p := range res.Problems {
		if p.Path == "$.prefixes[7]" && p.Index != 7 {
			t.Errorf("index %d, want 7", p.Index)
		}
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		in   string
		want ranges.Format
		err  string
	}{
		{`{"prefixes": []}`, ranges.AWS, ""},
		{`{"ipv6_prefixes": []}`, ranges.AWS, ""},
		{`{"entities": []}`, ranges.Genesys, ""},
		{`[{"id": 1}]`, ranges.M365, ""},
		{`["192.0.2.0/24"]`, ranges.Text, ""},
		{`[]`, ranges.Text, ""},
		{"192.0.2.0/24\n", ranges.Text, ""},
		{"192.0.2.1-192.0.2.9\n", ranges.Pairs, ""},
		{"192.0.2.1 192.0.2.9, 198.51.100.0 - 198.51.100.9\n", ranges.Pairs, ""},
		{"192.0.2.1-192.0.2.9\n198.51.100.0/24\n", ranges.Text, ""},
		{"\ufeff{\"entities\": []}", ranges.Genesys, ""},
		{"", "", "the input is empty"},
		{"  \n\t", "", "the input is empty"},
		{`{"prefixes": [], "entities": []}`, "", "both prefixes (AWS) and entities"},
		{`{"items": []}`, "", "give --format-in"},
		{`["192.0.2.0/24", {"id": 1}]`, "", "mixes strings"},
		{`{"prefixes": [`, "", "invalid JSON"},
		{`42`, ranges.Text, ""}, // not JSON that starts an object or array: a (bad) text list
	}
	for _, c := range cases {
		got, err := ranges.Detect([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Detect(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Detect(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	cases := []struct {
		format ranges.Format
		filter ranges.Filter
		err    string
	}{
		{ranges.AWS, ranges.Filter{Service: []string{"EC2"}, Region: []string{"GLOBAL"}}, ""},
		{ranges.AWS, ranges.Filter{Direction: []string{"outbound"}}, "--direction selects genesys entries; AWS ip-ranges.json input has only --service, --region"},
		{ranges.M365, ranges.Filter{Service: []string{"Skype"}}, "--service selects aws and genesys entries; Microsoft 365 endpoints JSON input has only --category, --service-area"},
		{ranges.Text, ranges.Filter{Region: []string{"x"}}, "text list input has no fields to filter on"},
		{ranges.Pairs, ranges.Filter{Category: []string{"x"}}, "--category selects m365 entries"},
		{ranges.Genesys, ranges.Filter{Direction: []string{"sideways"}}, `--direction "sideways": use inbound, outbound or both`},
		{ranges.Genesys, ranges.Filter{Direction: []string{"Inbound"}}, ""},
	}
	for _, c := range cases {
		err := ranges.CheckFilter(c.format, c.filter)
		if c.err == "" {
			if err != nil {
				t.Errorf("%s %+v: %v", c.format, c.filter, err)
			}
			continue
		}
		var fe *ranges.FilterError
		if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &fe) {
			t.Errorf("%s %+v: got %v, want %q", c.format, c.filter, err, c.err)
		}
	}
}

func TestUnmatched(t *testing.T) {
	res, err := ranges.Parse(readFixture(t, "aws-ip-ranges.json"), "", ranges.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	f := ranges.Filter{Service: []string{"AMAZON_CONECT", "ec2"}, Region: []string{"us-east1"}}
	got := ranges.Unmatched(f, res)
	want := []string{
		`--service "AMAZON_CONECT" matches no entry; the input has: AMAZON, AMAZON_CONNECT, CLOUDFRONT, EC2, S3`,
		`--region "us-east1" matches no entry; the input has: GLOBAL, af-south-1, eu-central-1, eu-west-1, us-east-1, us-west-2`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A filter field the format lacks is not reported here (CheckFilter does).
	text, _ := ranges.Parse([]byte("192.0.2.0/24\n"), "", ranges.Filter{})
	if u := ranges.Unmatched(ranges.Filter{Service: []string{"x"}}, text); len(u) != 0 {
		t.Errorf("text result: %v", u)
	}
	// Values from the file are quoted when odd, and listed up to a limit.
	var entries []string
	for i := range 30 {
		entries = append(entries, fmt.Sprintf(`{"ip_prefix": "192.0.2.0/24", "region": "r", "service": "s%02d"}`, i))
	}
	entries = append(entries, `{"ip_prefix": "192.0.2.0/24", "region": "r", "service": ""}`, `{"ip_prefix": "192.0.2.0/24", "region": "r", "service": "a\nb"}`)
	odd, err := ranges.Parse([]byte(`{"prefixes": [`+strings.Join(entries, ",")+`]}`), "", ranges.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	u := ranges.Unmatched(ranges.Filter{Service: []string{"x"}}, odd)
	wantOdd := `--service "x" matches no entry; the input has: "", "a\nb", s00, s01, s02, s03, s04, s05, s06, s07, s08, s09, s10, s11, s12, s13, s14, s15, s16, s17, ... (12 more)`
	if len(u) != 1 || u[0] != wantOdd {
		t.Errorf("got  %q\nwant %q", u, wantOdd)
	}
	// inbound selects the "both" entries too, so it is not unmatched.
	gen, _ := ranges.Parse([]byte(`{"entities": [{"cidr": "192.0.2.0/24", "service": "api", "region": "r", "direction": "both"}]}`), "", ranges.Filter{})
	if u := ranges.Unmatched(ranges.Filter{Direction: []string{"inbound"}}, gen); len(u) != 0 {
		t.Errorf("direction: %v", u)
	}
}

// No user-given value can add a line to a rendered file: a new line in a
// ranges file would be a new address in the firewall.
func TestRenderQuotesUserText(t *testing.T) {
	res, err := ranges.Parse([]byte("192.0.2.0/24\n"), "", ranges.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{"x\n0.0.0.0/0", "a\r\n::/0", "\u20280.0.0.0/0", "$(reboot)", "it's", "tab\there", ""}
	for _, h := range hostile {
		for _, style := range []ranges.Style{ranges.StyleText, ranges.StyleHCL} {
			out := ranges.Render(res, ranges.Source{Name: h, Format: ranges.AWS, Filter: ranges.Filter{Service: []string{h}, Region: []string{h}}}, style)
			checkOutput(t, out, style, res.Prefixes())
			if n := bytes.Count(out, []byte("\n")); n != bytes.Count(ranges.Render(res, ranges.Source{Name: "plain", Format: ranges.AWS, Filter: ranges.Filter{Service: []string{"s"}, Region: []string{"r"}}}, style), []byte("\n")) {
				t.Errorf("%q: %d lines", h, n)
			}
			if bytes.ContainsRune(out, '\u2028') || bytes.Contains(out, []byte("\r")) {
				t.Errorf("%q: a line separator reached the output", h)
			}
		}
	}
	got := ranges.Command(ranges.Source{Name: "ip ranges.json", Format: ranges.AWS, Filter: ranges.Filter{Service: []string{"AMAZON_CONNECT"}, Region: []string{"us-east-1", "GLOBAL"}}}, ranges.StyleHCL)
	want := `turnwall ranges import --format-in aws --service AMAZON_CONNECT --region us-east-1,GLOBAL --format hcl "ip ranges.json"`
	if got != want {
		t.Errorf("Command = %s\nwant      %s", got, want)
	}
}

// The text parser agrees with ranges_file() on every entry of the fixtures:
// what an import accepts, a policy accepts.
func TestTextAgreesWithParseAddress(t *testing.T) {
	for _, name := range []string{"zoom-ips.txt", "mixed-list.txt", "malformed/text-bad-entries.txt"} {
		data := readFixture(t, name)
		res, err := ranges.Parse(data, ranges.Text, ranges.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var want []netip.Prefix
		bad := 0
		for _, line := range strings.Split(string(data), "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			prefixes, problem := eval.ParseAddress(line)
			if problem != nil && !problem.Warning {
				bad++
				continue
			}
			want = append(want, prefixes...)
		}
		if res.Errors() != bad {
			t.Errorf("%s: %d errors, ParseAddress finds %d", name, res.Errors(), bad)
		}
		if !res.Set().Equal(setOf(want)) {
			t.Errorf("%s: sets differ", name)
		}
	}
}
