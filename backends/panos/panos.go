// Package panos emits a Palo Alto Networks PAN-OS firewall configuration from
// the IR: address objects and groups, service objects and groups, security
// rules in the IR's order with an explicit final default rule, and a
// no-decrypt rule that keeps TLS inspection away from TURN/TLS. It renders
// either `set` commands for configure mode or the equivalent XML under the
// vsys node, and re-reads both forms (Reader) for turnwall trace and the
// property tests.
package panos

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// Backend is the panos target. The zero value is ready to use.
type Backend struct{}

// Output formats.
const (
	FormatSet = "set"
	FormatXML = "xml"
)

var (
	paramVsys = backends.Param{Name: "vsys", Default: "vsys1",
		Help: "virtual system the objects and rules go into (vsys1 on a single-vsys firewall)"}
	paramPrefix = backends.Param{Name: "rule-prefix", Default: "tw-",
		Help: "prefix of every security and decryption rule name, to tell turnwall's rules apart (may be empty)"}
)

var (
	vsysPattern   = lazyre.New(`^vsys[1-9][0-9]{0,2}$`)
	prefixPattern = lazyre.New(`^([A-Za-z0-9][A-Za-z0-9._-]{0,15})?$`)
)

// Name implements backends.Backend.
func (Backend) Name() string { return "panos" }

// Description implements backends.Backend.
func (Backend) Description() string {
	return "Palo Alto PAN-OS security rules, objects and a TURN/TLS no-decrypt rule (set commands or XML)"
}

// Formats implements backends.Backend.
func (Backend) Formats() []string { return []string{FormatSet, FormatXML} }

// Params implements backends.Backend.
func (Backend) Params() []backends.Param {
	return []backends.Param{paramVsys, paramPrefix, paramObjectPrefix, paramZones, paramPosition, paramDeviceGroup, paramDefaultRule,
		paramModel, paramFeedAbove, paramFeedSets, paramFeedURL, paramFeedRefresh}
}

// Emit implements backends.Backend.
func (Backend) Emit(p *ir.Program, opts backends.Options) ([]backends.File, error) {
	if err := backends.FirstConstraint(Backend{}.Check(p, opts)); err != nil {
		return nil, err
	}
	format := opts.Format
	if format == "" {
		format = FormatSet
	}
	if format != FormatSet && format != FormatXML {
		return nil, fmt.Errorf("panos target has no format %q (set, xml)", opts.Format)
	}
	where, err := parsePlace(opts)
	if err != nil {
		return nil, err
	}
	pl, err := buildPlan(p, where)
	if err != nil {
		return nil, err
	}
	if format == FormatXML {
		if where.deviceGroup != "" {
			return nil, fmt.Errorf("--param panos.device-group=%q: the xml form is written for a firewall's vsys; use the set form for a Panorama device group", where.deviceGroup)
		}
		data, err := renderXML(pl)
		if err != nil {
			return nil, err
		}
		return append([]backends.File{{Name: "panos.xml", Data: data}}, feedFiles(pl)...), nil
	}
	data, err := renderSet(nil, pl)
	if err != nil {
		return nil, err
	}
	if pl.qos != nil {
		// The QoS profile and policy follow the objects and rules they use.
		var buf bytes.Buffer
		w := &backends.Writer{W: &buf}
		renderQoSSet(w, pl, where.scope())
		if w.Err != nil {
			return nil, w.Err
		}
		data = append(data, buf.Bytes()...)
	}
	return append([]backends.File{{Name: "panos.set", Data: data}}, feedFiles(pl)...), nil
}

// Check implements backends.Checker: PAN-OS names are case-insensitive, so
// two zones whose names differ only in case are one zone on the firewall.
func (Backend) Check(p *ir.Program, opts backends.Options) []backends.Constraint {
	out := append(checkPlace(p, opts), checkLimits(p, opts)...)
	seen := map[string]string{}
	for _, z := range p.Zones {
		name, ok := ZoneName(z.Name), true
		if where, err := parsePlace(opts); err == nil {
			name, ok = where.zone(z.Name)
		}
		if !ok {
			continue
		}
		key := strings.ToLower(name)
		if other, dup := seen[key]; dup {
			out = append(out, backends.Constraint{At: z.Source, Summary: "zone names collide",
				Detail: fmt.Sprintf("Zones %q and %q are the same PAN-OS zone: PAN-OS names are case-insensitive. Rename one.", other, z.Name)})
			continue
		}
		seen[key] = z.Name
	}
	return out
}
