// Package ranges reads the IP range files providers publish (AWS
// ip-ranges.json, the Genesys Cloud /api/v2/ipranges response, the Microsoft
// 365 endpoints web service JSON, plain text lists and start-end pair lists),
// filters their entries, and aggregates the addresses into the minimal prefix
// cover that a ranges file for ranges_file() holds. It also compares two
// such sets (Compare).
//
// Parsing never stops at the first bad entry: every problem is reported with
// the entry's line and column, its index and, for JSON, its JSON path, so a
// security engineer can fix or report all of them at once.
package ranges

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go4.org/netipx"
)

// Format is an input format.
type Format string

// The input formats.
const (
	AWS     Format = "aws"     // AWS ip-ranges.json
	Genesys Format = "genesys" // Genesys Cloud GET /api/v2/ipranges
	M365    Format = "m365"    // Microsoft 365 endpoints web service JSON
	Text    Format = "text"    // one IP, CIDR prefix or a-b range a line (or a JSON array of strings)
	Pairs   Format = "pairs"   // start-end address pairs, several a line allowed
)

// Formats lists the input formats in the order the CLI documents them.
func Formats() []Format { return []Format{AWS, Genesys, M365, Text, Pairs} }

// Describe names a format for people: what file it is.
func (f Format) Describe() string {
	switch f {
	case AWS:
		return "AWS ip-ranges.json"
	case Genesys:
		return "Genesys Cloud /api/v2/ipranges"
	case M365:
		return "Microsoft 365 endpoints JSON"
	case Text:
		return "text list"
	case Pairs:
		return "start-end pair list"
	}
	return string(f)
}

// ParseFormat checks a format name given by the user.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if strings.EqualFold(s, string(f)) {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown input format %q: use %s", s, formatNames())
}

func formatNames() string {
	var names []string
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// Filter fields: the entry attributes a Filter can select on. Their names are
// the CLI flags.
const (
	FieldService     = "service"
	FieldRegion      = "region"
	FieldDirection   = "direction"
	FieldCategory    = "category"
	FieldServiceArea = "service-area"
)

// Fields lists the filter fields a format's entries carry; text and pair
// lists have none.
func (f Format) Fields() []string {
	switch f {
	case AWS:
		return []string{FieldService, FieldRegion}
	case Genesys:
		return []string{FieldService, FieldRegion, FieldDirection}
	case M365:
		return []string{FieldCategory, FieldServiceArea}
	}
	return nil
}

// Filter selects the entries of a structured format. Within a field any value
// may match (case-insensitively); every field given must match. A nil or
// empty field selects every entry. The zero Filter selects everything.
type Filter struct {
	Service     []string
	Region      []string
	Direction   []string
	Category    []string
	ServiceArea []string
}

// values returns the filter's values for a field.
func (f Filter) values(field string) []string {
	switch field {
	case FieldService:
		return f.Service
	case FieldRegion:
		return f.Region
	case FieldDirection:
		return f.Direction
	case FieldCategory:
		return f.Category
	case FieldServiceArea:
		return f.ServiceArea
	}
	return nil
}

// allFields is every filter field, in flag order.
var allFields = []string{FieldService, FieldRegion, FieldDirection, FieldCategory, FieldServiceArea}

// Given lists the fields the filter sets, in flag order.
func (f Filter) Given() []string {
	var out []string
	for _, field := range allFields {
		if len(f.values(field)) > 0 {
			out = append(out, field)
		}
	}
	return out
}

// IsZero reports whether the filter selects everything.
func (f Filter) IsZero() bool { return len(f.Given()) == 0 }

// FilterError is a filter that cannot apply: a field the format's entries do
// not carry, or a value no entry can have. It is a usage error.
type FilterError struct {
	Msg string
}

func (e *FilterError) Error() string { return e.Msg }

// CheckFilter reports a filter field the format's entries do not carry, or a
// direction that is not inbound, outbound or both, as a *FilterError.
func CheckFilter(format Format, f Filter) error {
	for _, field := range f.Given() {
		if !contains(format.Fields(), field) {
			return &FilterError{fmt.Sprintf("--%s selects %s entries; %s input has %s", field, formatsWith(field), format.Describe(), fieldList(format))}
		}
	}
	for _, d := range f.Direction {
		if !isDirection(d) {
			return &FilterError{fmt.Sprintf("--direction %q: use inbound, outbound or both", d)}
		}
	}
	return nil
}

func formatsWith(field string) string {
	var names []string
	for _, f := range Formats() {
		if contains(f.Fields(), field) {
			names = append(names, string(f))
		}
	}
	return strings.Join(names, " and ")
}

func fieldList(format Format) string {
	fields := format.Fields()
	if len(fields) == 0 {
		return "no fields to filter on (it is already a list)"
	}
	var flags []string
	for _, f := range fields {
		flags = append(flags, "--"+f)
	}
	return "only " + strings.Join(flags, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Problem is what is wrong with one entry of the input (or, for a fatal
// problem, with the input as a whole).
type Problem struct {
	Line, Col int    // 1-based position in the input (bytes for the column)
	Index     int    // 0-based index of the entry in its list (JSON) or among the file's entries (text); -1 for the whole input
	Path      string // JSON path of the value ($.prefixes[3].ip_prefix); "" for text input
	Message   string // a sentence naming the entry and what to do
	Warning   bool   // the entry is still used (normalised)
}

// Error formats the problem as LINE:COL: [PATH: ]MESSAGE.
func (p *Problem) Error() string {
	return fmt.Sprintf("%d:%d: %s", p.Line, p.Col, p.Text())
}

// Text is the problem without its position: [PATH: ]MESSAGE.
func (p *Problem) Text() string {
	if p.Path != "" {
		return p.Path + ": " + p.Message
	}
	return p.Message
}

// Result is what Parse found.
type Result struct {
	Format   Format
	Read     int // address entries in the input
	Matched  int // address entries that passed the filter
	Problems []*Problem
	set      *netipx.IPSet
	// values holds, per filter field, the distinct values the entries carry
	// (lower-cased key -> as written), to tell a mistyped filter value from one
	// that selects nothing.
	values map[string]map[string]string
}

// Set is the aggregated set of the matched entries' addresses.
func (r *Result) Set() *netipx.IPSet { return r.set }

// Prefixes is the minimal sorted prefix cover of the matched entries, IPv4
// before IPv6.
func (r *Result) Prefixes() []netip.Prefix { return r.set.Prefixes() }

// Errors counts the problems that are not warnings.
func (r *Result) Errors() int {
	n := 0
	for _, p := range r.Problems {
		if !p.Warning {
			n++
		}
	}
	return n
}

// Values lists the distinct values of a filter field in the input, sorted.
func (r *Result) Values(field string) []string {
	var out []string
	for _, v := range r.values[field] {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// Unmatched reports filter values that no entry of any of the results carries
// (a mistyped --service AMAZON_CONECT), each with the values the input has.
// Results of formats without the field are ignored.
func Unmatched(f Filter, results ...*Result) []string {
	var out []string
	for _, field := range f.Given() {
		seen := map[string]string{}
		applies := false
		for _, r := range results {
			if contains(r.Format.Fields(), field) {
				applies = true
				for k, v := range r.values[field] {
					seen[k] = v
				}
			}
		}
		if !applies {
			continue
		}
		var have []string
		for _, v := range seen {
			have = append(have, v)
		}
		sort.Strings(have)
		for _, want := range f.values(field) {
			if _, ok := seen[strings.ToLower(want)]; ok {
				continue
			}
			if field == FieldDirection && isDirection(want) && len(seen) > 0 {
				// inbound/outbound also select "both" entries.
				if _, ok := seen["both"]; ok {
					continue
				}
			}
			list := valueList(have)
			out = append(out, fmt.Sprintf("--%s %q matches no entry; the input has: %s", field, want, list))
		}
	}
	return out
}

// maxValuesListed bounds the values a message lists: a damaged file can
// carry thousands.
const maxValuesListed = 20

// valueList formats values read from the input for a message: odd ones
// (empty, or with characters outside names) quoted, so that no value from a
// file can forge a line of turnwall's output.
func valueList(values []string) string {
	if len(values) == 0 {
		return "none"
	}
	var parts []string
	for i, v := range values {
		if i == maxValuesListed {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(values)-i))
			break
		}
		if v == "" || strings.ContainsFunc(v, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:/", r))
		}) {
			v = quote(v)
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, ", ")
}

// Parse reads data in the given format (detected when format is empty) and
// returns the aggregated addresses of the entries the filter selects, with
// every problem found. The error is for input that cannot be read at all (not
// JSON, the wrong structure, a filter the format does not carry); it is a
// *Problem when it has a position.
func Parse(data []byte, format Format, f Filter) (*Result, error) {
	if format == "" {
		var err error
		if format, err = Detect(data); err != nil {
			return nil, err
		}
	}
	if err := CheckFilter(format, f); err != nil {
		return nil, err
	}
	c := newCollector(data, format, f)
	var err error
	switch format {
	case AWS:
		err = parseAWS(c)
	case Genesys:
		err = parseGenesys(c)
	case M365:
		err = parseM365(c)
	case Text:
		err = parseText(c)
	case Pairs:
		err = parsePairs(c)
	default:
		return nil, fmt.Errorf("unknown input format %q: use %s", format, formatNames())
	}
	if err != nil {
		return nil, err
	}
	return c.result(), nil
}

// Detect tells the format of data from its structure: a JSON object with
// prefixes/ipv6_prefixes is AWS, one with entities is Genesys, a JSON array
// of objects is Microsoft 365, a JSON array of strings is a text list; other
// input is a pair list when every entry is a start-end pair, else a text
// list. Input that fits none, or more than one, is an error asking for
// --format-in.
func Detect(data []byte) (Format, error) {
	body := trimBOM(data)
	first := firstByte(body)
	switch first {
	case 0:
		return "", &Problem{Line: 1, Col: 1, Index: -1, Message: "the input is empty"}
	case '{', '[':
		root, err := parseJSON(body)
		if err != nil {
			return "", err
		}
		return detectJSON(root)
	}
	if allPairs(body) {
		return Pairs, nil
	}
	return Text, nil
}

func detectJSON(root *jsonValue) (Format, error) {
	switch root.kind {
	case jsonObject:
		aws := root.get("prefixes") != nil || root.get("ipv6_prefixes") != nil
		genesys := root.get("entities") != nil
		switch {
		case aws && genesys:
			return "", &Problem{Line: 1, Col: 1, Index: -1, Message: "the JSON object has both prefixes (AWS) and entities (Genesys Cloud): give --format-in aws or --format-in genesys"}
		case aws:
			return AWS, nil
		case genesys:
			return Genesys, nil
		}
		return "", &Problem{Line: 1, Col: 1, Index: -1, Message: "the JSON object is neither an AWS ip-ranges.json (prefixes, ipv6_prefixes) nor a Genesys Cloud ipranges response (entities): give --format-in"}
	case jsonArray:
		strs, objs := 0, 0
		for _, e := range root.elems {
			switch e.kind {
			case jsonString:
				strs++
			case jsonObject:
				objs++
			}
		}
		switch {
		case objs == 0:
			return Text, nil // a JSON array of strings, as ranges_file() reads
		case strs == 0:
			return M365, nil
		}
		return "", &Problem{Line: 1, Col: 1, Index: -1, Message: "the JSON array mixes strings (a ranges list) and objects (Microsoft 365 endpoint sets): give --format-in"}
	}
	return "", &Problem{Line: 1, Col: 1, Index: -1, Message: "the JSON value is neither an object nor an array: give --format-in"}
}

// trimBOM drops a UTF-8 byte order mark, which some Windows tools write.
func trimBOM(data []byte) []byte {
	return bytes.TrimPrefix(data, []byte("\ufeff"))
}

// firstByte is the first byte that is not white space, or 0.
func firstByte(data []byte) byte {
	for _, b := range data {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b
	}
	return 0
}

func isDirection(s string) bool {
	switch strings.ToLower(s) {
	case "inbound", "outbound", "both":
		return true
	}
	return false
}
