package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"unicode"

	"github.com/apparentlymart/go-cidr/cidr"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/turnwall/turnwall/compiler/diag"
)

// functions returns the functions a policy may call: the go-cty standard
// library, the CIDR helpers and ranges_file.
func (e *evaluator) functions() map[string]function.Function {
	fns := e.stdFunctions()
	for name, f := range fns {
		if name != "ranges_file" {
			fns[name] = e.meter.limited(name, f)
		}
	}
	return fns
}

func (e *evaluator) stdFunctions() map[string]function.Function {
	return map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"ceil":            stdlib.CeilFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"formatlist":      stdlib.FormatListFunc,
		"indent":          stdlib.IndentFunc,
		"index":           stdlib.IndexFunc,
		"join":            stdlib.JoinFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"keys":            stdlib.KeysFunc,
		"length":          stdlib.LengthFunc,
		"lookup":          stdlib.LookupFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"range":           stdlib.RangeFunc,
		"regex":           stdlib.RegexFunc,
		"regexall":        stdlib.RegexAllFunc,
		"replace":         stdlib.ReplaceFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"split":           stdlib.SplitFunc,
		"substr":          stdlib.SubstrFunc,
		"title":           stdlib.TitleFunc,
		"tolist":          makeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":           makeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tonumber":        makeToFunc(cty.Number),
		"tostring":        makeToFunc(cty.String),
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"upper":           stdlib.UpperFunc,
		"values":          stdlib.ValuesFunc,
		"zipmap":          stdlib.ZipmapFunc,
		"cidrsubnet":      cidrSubnetFunc,
		"cidrhost":        cidrHostFunc,
		"cidrnetmask":     cidrNetmaskFunc,
		"cidrcontains":    cidrContainsFunc,
		"ranges_file":     e.rangesFileFunc(),
	}
}

func makeToFunc(want cty.Type) function.Function {
	return stdlib.MakeToFunc(want)
}

var cidrSubnetFunc = function.New(&function.Spec{
	Description: "cidrsubnet(prefix, newbits, netnum) returns the netnum-th subnet of prefix that is newbits longer.",
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "newbits", Type: cty.Number},
		{Name: "netnum", Type: cty.Number},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		_, network, err := net.ParseCIDR(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), fmt.Errorf("invalid CIDR prefix %q", args[0].AsString())
		}
		newbits, acc := args[1].AsBigFloat().Int64()
		if acc != big.Exact || newbits < 0 {
			return cty.UnknownVal(cty.String), fmt.Errorf("newbits must be a non-negative whole number")
		}
		netnum, acc := args[2].AsBigFloat().Int(nil)
		if acc != big.Exact || netnum.Sign() < 0 {
			return cty.UnknownVal(cty.String), fmt.Errorf("netnum must be a non-negative whole number")
		}
		ones, bits := network.Mask.Size()
		if int64(ones)+newbits > int64(bits) {
			return cty.UnknownVal(cty.String), fmt.Errorf("a /%d prefix cannot be extended by %d bits", ones, newbits)
		}
		if netnum.BitLen() > int(newbits) {
			return cty.UnknownVal(cty.String), fmt.Errorf("netnum %s does not fit in %d bits", netnum, newbits)
		}
		sub, err := cidr.SubnetBig(network, int(newbits), netnum)
		if err != nil {
			return cty.UnknownVal(cty.String), err
		}
		return cty.StringVal(sub.String()), nil
	},
})

var cidrHostFunc = function.New(&function.Spec{
	Description: "cidrhost(prefix, hostnum) returns the hostnum-th address of prefix; negative numbers count from the end.",
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "hostnum", Type: cty.Number},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		_, network, err := net.ParseCIDR(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), fmt.Errorf("invalid CIDR prefix %q", args[0].AsString())
		}
		hostnum, acc := args[1].AsBigFloat().Int(nil)
		if acc != big.Exact {
			return cty.UnknownVal(cty.String), fmt.Errorf("hostnum must be a whole number")
		}
		ip, err := cidr.HostBig(network, hostnum)
		if err != nil {
			return cty.UnknownVal(cty.String), err
		}
		return cty.StringVal(ip.String()), nil
	},
})

var cidrNetmaskFunc = function.New(&function.Spec{
	Description: "cidrnetmask(prefix) returns the dotted netmask of an IPv4 prefix.",
	Params:      []function.Parameter{{Name: "prefix", Type: cty.String}},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		_, network, err := net.ParseCIDR(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), fmt.Errorf("invalid CIDR prefix %q", args[0].AsString())
		}
		if network.IP.To4() == nil {
			return cty.UnknownVal(cty.String), fmt.Errorf("IPv6 prefixes have no dotted netmask")
		}
		return cty.StringVal(net.IP(network.Mask).String()), nil
	},
})

var cidrContainsFunc = function.New(&function.Spec{
	Description: "cidrcontains(prefix, address_or_prefix) reports whether the second argument lies wholly inside the first.",
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "other", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		outer, err := netip.ParsePrefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.Bool), fmt.Errorf("invalid CIDR prefix %q", args[0].AsString())
		}
		s := args[1].AsString()
		inner, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return cty.UnknownVal(cty.Bool), fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
			}
			inner = netip.PrefixFrom(a, a.BitLen())
		}
		if outer.Addr().Is4() != inner.Addr().Is4() {
			return cty.False, nil
		}
		return cty.BoolVal(inner.Bits() >= outer.Bits() && outer.Masked().Contains(inner.Addr())), nil
	},
})

// rangesFile is one file read by ranges_file, cached so a file named twice is
// read, checked and reported once. It holds the file's entries parsed once:
// the strings the function's list value holds and their prefix covers. The
// cty list is built only when an expression uses it as a value; an address
// attribute that is just a ranges_file call is decoded from entries
// directly (see directRangesFile), without a cty value per prefix.
type rangesFile struct {
	texts    []string       // the list's elements, normalised as the function returns them
	prefixes []netip.Prefix // their prefix covers, in file order
	size     int64          // valueSize of the list
	err      error
	list     cty.Value // built on first use by an expression
}

// value returns the list ranges_file returns for the file.
func (f *rangesFile) value() (cty.Value, error) {
	if f.err != nil {
		return cty.UnknownVal(cty.List(cty.String)), f.err
	}
	if f.list == cty.NilVal {
		if len(f.texts) == 0 {
			f.list = cty.ListValEmpty(cty.String)
		} else {
			vals := make([]cty.Value, len(f.texts))
			for i, t := range f.texts {
				vals[i] = cty.StringVal(t)
			}
			f.list = cty.ListVal(vals)
		}
	}
	return f.list, nil
}

// rangesFileFunc reads a JSON array of strings, or a text file with one entry per
// line (# starts a comment), of IPs, CIDR prefixes and a-b ranges. Paths are
// relative to the policy root. Invalid entries are reported as diagnostics at
// their own line in the ranges file; the call then fails.
func (e *evaluator) rangesFileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "ranges_file(path) reads a list of IPs, CIDR prefixes and a-b ranges from a JSON or text file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.List(cty.String)),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			f := e.rangesFile(args[0].AsString())
			e.rangesMu.Lock()
			defer e.rangesMu.Unlock()
			return f.value()
		},
	})
}

// rangesFile reads, checks and caches the ranges file at rel.
func (e *evaluator) rangesFile(rel string) *rangesFile {
	e.rangesMu.Lock()
	defer e.rangesMu.Unlock()
	if c, ok := e.rangesFiles[rel]; ok {
		return c
	}
	c := e.readRangesFile(rel)
	e.rangesFiles[rel] = c
	return c
}

func (e *evaluator) readRangesFile(rel string) *rangesFile {
	path, data, err := e.cfg.ReadFile(rel)
	if err != nil {
		return &rangesFile{err: err}
	}
	e.cfg.Files[path] = &hcl.File{Bytes: data}
	pos := posTracker{filename: path, data: data, line: 1, col: 1}
	out := &rangesFile{size: elemWeight}
	bad, reported := 0, 0
	// add checks one entry, at byte offset start of the file.
	add := func(entry string, start int) {
		var problem *AddrProblem
		n := len(out.prefixes)
		out.prefixes, problem = appendAddress(out.prefixes, entry)
		text := strings.TrimSpace(entry)
		if problem != nil {
			sev := hcl.DiagError
			if problem.Warning {
				sev = hcl.DiagWarning
			} else {
				bad++
			}
			if reported++; reported <= maxFileDiags {
				e.diags = append(e.diags, diag.New(sev, problem.Code, pos.rangeAt(start, len(entry)), problem.Summary, problem.Detail))
			}
			if !problem.Warning {
				out.prefixes = out.prefixes[:n]
				return
			}
			text = out.prefixes[n].String()
		}
		out.texts = append(out.texts, text)
		out.size += elemWeight + int64(len(text))
	}
	src := string(data) // entries are substrings of it
	trimmed := strings.TrimSpace(src)
	if strings.HasPrefix(trimmed, "[") {
		var list []string
		if err := json.Unmarshal(data, &list); err != nil {
			return &rangesFile{err: fmt.Errorf("%s is not a JSON array of strings: %v", path, err)}
		}
		out.texts = make([]string, 0, len(list))
		out.prefixes = make([]netip.Prefix, 0, len(list))
		// Locate each string in the file so diagnostics point at it.
		offset := 0
		for _, s := range list {
			quoted, _ := json.Marshal(s)
			i := bytes.Index(data[offset:], quoted)
			start := offset
			if i >= 0 {
				start = offset + i + 1
				offset = start + len(quoted) - 1
			}
			add(s, start)
		}
	} else {
		lines := strings.Count(src, "\n") + 1
		out.texts = make([]string, 0, lines)
		out.prefixes = make([]netip.Prefix, 0, lines)
		lineStart := 0
		for lineStart <= len(src) {
			end := strings.IndexByte(src[lineStart:], '\n')
			if end < 0 {
				end = len(src) - lineStart
			}
			line := src[lineStart : lineStart+end]
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			if t := strings.TrimSpace(line); t != "" {
				// t starts where the leading space ends.
				add(t, lineStart+len(line)-len(strings.TrimLeftFunc(line, unicode.IsSpace)))
			}
			lineStart += end + 1
		}
	}
	if bad > 0 {
		entries := "entries"
		if bad == 1 {
			entries = "entry"
		}
		shown := "reported at their lines"
		if reported > maxFileDiags {
			shown = fmt.Sprintf("the first %d problems reported at their lines", maxFileDiags)
		}
		return &rangesFile{err: fmt.Errorf("%s has %d invalid %s, %s; fix them", path, bad, entries, shown)}
	}
	out.prefixes = out.prefixes[:len(out.prefixes):len(out.prefixes)]
	return out
}

// MaxInputFile bounds what `turnwall ranges` reads (a published list, on
// stdin or from a file). Files a policy reads are bounded by
// load.MaxInputFile.
const MaxInputFile = 64 << 20

// maxFileDiags bounds the diagnostics one ranges file adds: a file of a
// million bad lines is reported by its first entries and a count.
const maxFileDiags = 100

// posTracker turns increasing byte offsets of data into line/column ranges in
// one pass over the file.
type posTracker struct {
	filename  string
	data      []byte
	offset    int
	line, col int
}

func (p *posTracker) rangeAt(offset, length int) hcl.Range {
	for ; p.offset < offset && p.offset < len(p.data); p.offset++ {
		if p.data[p.offset] == '\n' {
			p.line++
			p.col = 1
		} else {
			p.col++
		}
	}
	return hcl.Range{
		Filename: p.filename,
		Start:    hcl.Pos{Line: p.line, Column: p.col, Byte: offset},
		End:      hcl.Pos{Line: p.line, Column: p.col + length, Byte: offset + length},
	}
}
