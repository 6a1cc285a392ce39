// Package load reads a policy (one file or a directory of *.hcl and *.hcl.json
// files) into a typed configuration: blocks with their declaration ranges and
// their attribute expressions kept unevaluated for the evaluate stage.
package load

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// Config is a loaded, not yet evaluated, policy.
type Config struct {
	// Root is the directory relative paths in the policy (ranges_file, tls_cert)
	// are resolved against, and the base of Source file names in the IR.
	Root string
	// Files maps each file name, as used in diagnostics, to its parsed file.
	Files map[string]*hcl.File
	// FS reads the files the policy names (ranges_file, tls_cert): its top
	// is Root, and nothing outside it can be read. See ReadFile.
	FS fs.FS
	// SyntaxErrors is set when a file did not parse. Later stages then do not
	// run: a partly parsed policy gives misleading follow-on errors.
	SyntaxErrors bool

	Policies  []*Block
	Variables []*Block
	Locals    []*Local
	Zones     []*Block
	Agents    []*Block
	Providers []*Block
	Relays    []*Block
	Platforms []*Block
	Rules     []*Block
	Devices   []*Block
	// QoS holds the classes of every qos block, in file and block order.
	QoS []*Block
}

// Block is one labelled block with its attributes and nested blocks.
type Block struct {
	Type      string
	Name      string
	DeclRange hcl.Range
	NameRange hcl.Range
	Attrs     hcl.Attributes
	Nested    map[string]*Block // at most one nested block per type
}

// Local is one entry of a locals block.
type Local struct {
	Name string
	Attr *hcl.Attribute
}

// Source is one policy file held in memory.
type Source struct {
	Name  string // file name as shown in diagnostics
	Bytes []byte
}

// Path loads a policy file or directory from disk. Everything the policy
// reads (its files, ranges files, certificates) is read from inside its root
// (the directory, or a single file's directory) through DirFS.
func Path(path string) (*Config, hcl.Diagnostics) {
	path = filepath.Clean(path)
	info, err := os.Stat(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read policy",
			Detail:   fmt.Sprintf("%v. Give a policy file (*.hcl, *.hcl.json) or a directory that holds some.", err),
		}}
	}
	if info.IsDir() {
		return FS(DirFS(path), path, "")
	}
	return FS(DirFS(filepath.Dir(path)), filepath.Dir(path), filepath.Base(path))
}

// FS loads a policy from a file system whose top is the policy root: the
// policy files are file (one file) or, when file is "", every *.hcl and
// *.hcl.json file at its top. root is the root as shown in diagnostics and
// the IR (a path on disk, even when fsys reads a git revision). Files the
// policy names are read from fsys too, so one loader serves the disk and
// `diff --base` alike.
func FS(fsys fs.FS, root, file string) (*Config, hcl.Diagnostics) {
	var names []string
	if file == "" {
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read policy directory",
				Detail: fmt.Sprintf("%s: %v", root, trimPathError(err))}}
		}
		for _, e := range entries {
			if !e.IsDir() && IsPolicyFile(e.Name()) {
				names = append(names, e.Name())
			}
		}
		if len(names) == 0 {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "No policy files",
				Detail:   fmt.Sprintf("Directory %s holds no *.hcl or *.hcl.json file.", root),
			}}
		}
		if len(names) > MaxPolicyFiles {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Too many policy files",
				Detail:   fmt.Sprintf("Directory %s holds %d policy files; the limit is %d.", root, len(names), MaxPolicyFiles),
				Extra:    diag.Extra{Code: diag.ResourceLimit},
			}}
		}
	} else {
		names = []string{file}
	}
	sort.Strings(names)
	var diags hcl.Diagnostics
	sources := make([]Source, 0, len(names))
	total := 0
	for _, n := range names {
		shown := filepath.Join(root, filepath.FromSlash(n))
		b, err := ReadFile(fsys, n, shown, MaxPolicyFile)
		if err == nil && total+len(b) > MaxPolicyBytes {
			err = &FileError{Code: diag.ResourceLimit, Name: shown,
				Msg: fmt.Sprintf("the policy's files together are larger than %s, the limit", sizeString(MaxPolicyBytes))}
		}
		if err != nil {
			diags = append(diags, fileDiag(shown, "Cannot read policy file", err))
			continue
		}
		total += len(b)
		sources = append(sources, Source{Name: shown, Bytes: b})
	}
	cfg, d := Sources(root, sources)
	cfg.FS = fsys
	if diags.HasErrors() {
		cfg.SyntaxErrors = true
	}
	return cfg, append(diags, d...)
}

// fileDiag reports a file that could not be read, positioned at the file
// itself (line 1) so that every refusal names where it is.
func fileDiag(shown, summary string, err error) *hcl.Diagnostic {
	code := CodeOf(err)
	switch code {
	case diag.FileOutsidePolicy:
		summary = "File outside the policy"
	case diag.ResourceLimit:
		summary = "Policy file too large"
	}
	d := &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   err.Error() + ".",
		Subject:  &hcl.Range{Filename: shown, Start: hcl.InitialPos, End: hcl.InitialPos},
	}
	if code != "" {
		d.Extra = diag.Extra{Code: code}
	}
	return d
}

// IsPolicyFile reports whether a file name is one a policy directory loads.
func IsPolicyFile(name string) bool {
	return strings.HasSuffix(name, ".hcl") || strings.HasSuffix(name, ".hcl.json")
}

// Sources loads a policy from files held in memory. Files are merged like a
// Terraform module: in name order, whatever order they are given in. Files
// the policy names are read from the directory root on disk, confined to it.
func Sources(root string, sources []Source) (*Config, hcl.Diagnostics) {
	sorted := append([]Source(nil), sources...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	parser := hclparse.NewParser()
	cfg := &Config{Root: root, Files: map[string]*hcl.File{}, FS: DirFS(root)}
	var diags hcl.Diagnostics
	for _, src := range sorted {
		json := strings.HasSuffix(src.Name, ".json")
		if d := checkSource(src, json); d != nil {
			diags = append(diags, d)
			cfg.Files[src.Name] = &hcl.File{Bytes: src.Bytes}
			cfg.SyntaxErrors = true
			continue
		}
		var f *hcl.File
		var d hcl.Diagnostics
		if json {
			f, d = parser.ParseJSON(src.Bytes, src.Name)
			d = dropFollowOn(d)
		} else {
			f, d = parser.ParseHCL(src.Bytes, src.Name)
		}
		diags = append(diags, d...)
		if f == nil {
			cfg.SyntaxErrors = true
			continue
		}
		cfg.Files[src.Name] = f
		if d.HasErrors() {
			cfg.SyntaxErrors = true
			continue
		}
		diags = append(diags, cfg.addFile(f)...)
	}
	diags = append(diags, cfg.checkDuplicates()...)
	return cfg, diags
}

// checkSource refuses, before parsing, a file the parser could not handle in
// bounded stack and time: over the size limit, or nested too deeply.
func checkSource(src Source, json bool) *hcl.Diagnostic {
	if len(src.Bytes) > MaxPolicyFile {
		return diag.Errorf(diag.ResourceLimit, hcl.Range{Filename: src.Name, Start: hcl.InitialPos, End: hcl.InitialPos},
			"Policy file too large", "%s is larger than %s, the limit for one policy file.", src.Name, sizeString(MaxPolicyFile))
	}
	depth, at := NestingDepth(src.Bytes, json)
	if depth <= MaxNesting {
		return nil
	}
	pos := PosAt(src.Bytes, at)
	end := pos
	end.Byte++
	end.Column++
	return diag.Errorf(diag.ResourceLimit, hcl.Range{Filename: src.Name, Start: pos, End: end}, "Nesting too deep",
		"Brackets, parentheses, strings or operators nest more than %d levels deep here. A policy never needs that; flatten the expression.", MaxNesting)
}

// PosAt returns the line and column of a byte offset, in one pass.
func PosAt(src []byte, offset int) hcl.Pos {
	line, col := 1, 1
	for i := 0; i < offset && i < len(src); i++ {
		if src[i] == '\n' {
			line++
			col = 1
		} else if src[i]&0xC0 != 0x80 {
			col++
		}
	}
	return hcl.Pos{Line: line, Column: col, Byte: offset}
}

// dropFollowOn removes the JSON parser's "Root value must be object", which it
// adds after any other syntax error and which then only misleads.
func dropFollowOn(diags hcl.Diagnostics) hcl.Diagnostics {
	if len(diags) < 2 {
		return diags
	}
	out := diags[:0:0]
	for _, d := range diags {
		if d.Summary != "Root value must be object" {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return diags
	}
	return out
}

func (cfg *Config) addFile(f *hcl.File) hcl.Diagnostics {
	content, diags := f.Body.Content(fileSchema)
	for _, hb := range content.Blocks {
		if hb.Type == TypeLocals {
			attrs, d := hb.Body.JustAttributes()
			diags = append(diags, d...)
			names := make([]string, 0, len(attrs))
			for n := range attrs {
				names = append(names, n)
			}
			sort.Slice(names, func(i, j int) bool { return attrs[names[i]].Range.Start.Byte < attrs[names[j]].Range.Start.Byte })
			for _, n := range names {
				cfg.Locals = append(cfg.Locals, &Local{Name: n, Attr: attrs[n]})
			}
			continue
		}
		if hb.Type == TypeQoS {
			diags = append(diags, cfg.addQoS(hb)...)
			continue
		}
		b, d := decodeBlock(hb)
		diags = append(diags, d...)
		if b == nil {
			continue
		}
		switch b.Type {
		case TypePolicy:
			cfg.Policies = append(cfg.Policies, b)
		case TypeVariable:
			cfg.Variables = append(cfg.Variables, b)
		case TypeZone:
			cfg.Zones = append(cfg.Zones, b)
		case TypeAgents:
			cfg.Agents = append(cfg.Agents, b)
		case TypeProvider:
			cfg.Providers = append(cfg.Providers, b)
		case TypeRelay:
			cfg.Relays = append(cfg.Relays, b)
		case TypePlatform:
			cfg.Platforms = append(cfg.Platforms, b)
		case TypeRule:
			cfg.Rules = append(cfg.Rules, b)
		case TypeDevice:
			cfg.Devices = append(cfg.Devices, b)
		}
	}
	return diags
}

func decodeBlock(hb *hcl.Block) (*Block, hcl.Diagnostics) {
	var content *hcl.BodyContent
	var diags hcl.Diagnostics
	if hb.Type == TypeDevice {
		// Any attribute: the target's parameters, checked by the target.
		attrs, d := hb.Body.JustAttributes()
		content, diags = &hcl.BodyContent{Attributes: attrs}, d
	} else {
		content, diags = hb.Body.Content(blockSchemas[hb.Type])
	}
	b := &Block{
		Type:      hb.Type,
		DeclRange: hb.DefRange,
		Attrs:     content.Attributes,
		Nested:    map[string]*Block{},
	}
	if len(hb.Labels) > 0 {
		b.Name = hb.Labels[0]
		b.NameRange = hb.LabelRanges[0]
		diags = append(diags, checkName(hb.Type, b.Name, b.NameRange)...)
	}
	for _, nb := range content.Blocks {
		if prev, ok := b.Nested[nb.Type]; ok {
			diags = append(diags, diag.Errorf(diag.DuplicateName, nb.DefRange, "Duplicate "+nb.Type+" block",
				"A %s block may hold one %s block; another is at %s. Merge them.", hb.Type, nb.Type, rangeLine(prev.DeclRange)))
			continue
		}
		inner, d := decodeBlock(nb)
		diags = append(diags, d...)
		b.Nested[nb.Type] = inner
	}
	return b, diags
}

// portableName is what every target can carry: PAN-OS names start with an
// alphanumeric and zones allow 31 characters; FortiOS and ASA forbid spaces and
// quotes; nftables names may not start with a digit.
var portableName = lazyre.New(`^[A-Za-z][A-Za-z0-9_-]{0,30}$`)

// reservedNames are words some target reserves or treats specially as object
// names (FortiOS all/none/always, ASA any/host/object/interface, PAN-OS
// intrazone-default, nftables keywords).
var reservedNames = map[string]bool{
	"all": true, "all6": true, "none": true, "always": true, "any": true, "any4": true, "any6": true,
	"host": true, "object": true, "object-group": true, "interface": true, "intrazone-default": true,
	"interzone-default": true, "ip": true, "ip6": true, "inet": true, "tcp": true, "udp": true,
	"icmp": true, "counter": true, "fwd": true, "accept": true, "drop": true, "reject": true,
	"table": true, "chain": true, "set": true, "map": true, "meta": true, "ct": true, "log": true,
	"default": true, "permit": true, "deny": true, "established": true,
}

func checkName(typ, name string, rng hcl.Range) hcl.Diagnostics {
	if !portableName.MatchString(name) {
		return hcl.Diagnostics{diag.Errorf(diag.UnportableName, rng, "Name not valid for every target",
			"%s name %q must be 1-31 characters of letters, digits, '-' or '_', starting with a letter, so that nftables, PAN-OS, FortiOS and ASA can all carry it.", typ, name)}
	}
	if reservedNames[strings.ToLower(name)] {
		return hcl.Diagnostics{diag.Errorf(diag.UnportableName, rng, "Reserved name",
			"%s name %q is a reserved word on at least one target (nftables, PAN-OS, FortiOS or ASA). Choose another name.", typ, name)}
	}
	return nil
}

func (cfg *Config) checkDuplicates() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, list := range [][]*Block{cfg.Variables, cfg.Zones, cfg.Agents, cfg.Providers, cfg.Relays, cfg.Platforms, cfg.Rules, cfg.QoS} {
		seen := map[string]*Block{}
		for _, b := range list {
			if prev, ok := seen[b.Name]; ok {
				diags = append(diags, diag.Errorf(diag.DuplicateName, b.NameRange, "Duplicate "+b.Type+" name",
					"A %s named %q was already declared at %s. Names must be unique per block type across all files; rename one.", b.Type, b.Name, rangeLine(prev.DeclRange)))
				continue
			}
			seen[b.Name] = b
		}
	}
	seen := map[string]*Local{}
	for _, l := range cfg.Locals {
		if prev, ok := seen[l.Name]; ok {
			diags = append(diags, diag.Errorf(diag.DuplicateName, l.Attr.NameRange, "Duplicate local value",
				"local.%s was already defined at %s. Rename one.", l.Name, rangeLine(prev.Attr.Range)))
			continue
		}
		seen[l.Name] = l
	}
	if len(cfg.Policies) > 1 {
		for _, b := range cfg.Policies[1:] {
			diags = append(diags, diag.Errorf(diag.DuplicateName, b.DeclRange, "More than one policy block",
				"A policy has exactly one policy block; the first is at %s. Remove this one.", rangeLine(cfg.Policies[0].DeclRange)))
		}
	}
	return diags
}

func rangeLine(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// Blocks returns every labelled block of a referenceable type.
func (cfg *Config) Blocks(typ string) []*Block {
	switch typ {
	case TypeZone:
		return cfg.Zones
	case TypeAgents:
		return cfg.Agents
	case TypeProvider:
		return cfg.Providers
	case TypeRelay:
		return cfg.Relays
	case TypePlatform:
		return cfg.Platforms
	case TypeRule:
		return cfg.Rules
	case TypeDevice:
		return cfg.Devices
	case TypeVariable:
		return cfg.Variables
	}
	return nil
}
