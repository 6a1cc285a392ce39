package nftables

import (
	"fmt"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

// Backend is the nftables target.
type Backend struct{}

// ParamTable names the table turnwall owns.
var ParamTable = backends.Param{Name: "table", Default: "turnwall", Help: "name of the inet table turnwall owns and replaces"}

// Name implements backends.Backend.
func (Backend) Name() string { return "nftables" }

// Description implements backends.Backend.
func (Backend) Description() string {
	return "nft -f ruleset replacing one owned inet table atomically, with interval sets per family"
}

// Formats implements backends.Backend.
func (Backend) Formats() []string { return []string{"nft"} }

// Params implements backends.Backend.
func (Backend) Params() []backends.Param { return []backends.Param{ParamTable} }

// Emit implements backends.Backend.
func (Backend) Emit(p *ir.Program, opts backends.Options) ([]backends.File, error) {
	rs, err := Build(p, opts.Get(ParamTable)) // Build starts with Check
	if err != nil {
		return nil, err
	}
	return []backends.File{{Name: "nftables.nft", Data: rs.Text()}}, nil
}

// ifnamsiz is Linux's IFNAMSIZ: an interface name is at most 15 bytes and
// the terminating NUL.
const ifnamsiz = 16

// Check implements backends.Checker: interface names the kernel cannot
// have.
func (Backend) Check(p *ir.Program, _ backends.Options) []backends.Constraint {
	var out []backends.Constraint
	for _, z := range p.Zones {
		for _, i := range z.Interfaces {
			if len(i) >= ifnamsiz {
				out = append(out, backends.Constraint{At: z.Source, Summary: "interface name too long",
					Detail: fmt.Sprintf("Zone %q names interface %q, %d bytes; a Linux interface name is at most %d bytes (IFNAMSIZ), so the rule would never match. Use the interface's real name.", z.Name, i, len(i), ifnamsiz-1)})
			}
		}
	}
	return out
}
