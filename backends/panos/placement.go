package panos

import (
	"fmt"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// Placement parameters: where turnwall's part goes on a firewall that
// already holds a rulebase of its own, and how it is told apart.
var (
	paramObjectPrefix = backends.Param{Name: "object-prefix", Default: "tw-",
		Help: "prefix of every address, address group, service and service group name turnwall creates: with rule-prefix, the mark of what turnwall owns (change scripts never touch a name without it)"}
	paramZones = backends.Param{Name: "zones", Default: "",
		Help: "policy zone to PAN-OS zone, as ZONE=PANZONE,...; when given, every zone the policy uses must be listed (empty: the policy's zone names)"}
	paramPosition = backends.Param{Name: "position", Default: "bottom",
		Help: "where turnwall's security rules sit in the rulebase: top, bottom, before:RULE or after:RULE (RULE an existing rule of the box); the rules stay together in policy order"}
	paramDeviceGroup = backends.Param{Name: "device-group", Default: "",
		Help: "Panorama device group: the objects go into it and the rules into its pre-rulebase (set form only; empty: a firewall's vsys)"}
	paramDefaultRule = backends.Param{Name: "default-rule", Default: "none",
		Help: "none: leave packets no turnwall rule matches to the box's own rules and defaults; emit: close turnwall's rules with an any-to-any rule carrying the policy's default action (a whole-box snapshot)"}
)

// place is the validated placement of one run.
type place struct {
	vsys         string
	deviceGroup  string
	rulePrefix   string
	objectPrefix string
	zones        map[string]string // IR zone -> PAN-OS zone; nil: ZoneName
	where        string            // top, bottom, before, after
	ref          string            // the rule of before/after
	defaultRule  bool
	feed         feedPlace
	model        *modelLimits // nil: no model given
}

var (
	zoneTarget = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$`)
	ruleRef    = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$`)
	dgPattern  = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$`)
)

// parsePlace checks the placement parameters; errors name the parameter and
// say what is expected.
func parsePlace(opts backends.Options) (place, error) {
	pl := place{
		vsys:         opts.Get(paramVsys),
		deviceGroup:  opts.Get(paramDeviceGroup),
		rulePrefix:   opts.Get(paramPrefix),
		objectPrefix: opts.Get(paramObjectPrefix),
	}
	if !vsysPattern.MatchString(pl.vsys) {
		return pl, fmt.Errorf("--param panos.vsys=%q: expected a virtual system name such as vsys1", pl.vsys)
	}
	if !prefixPattern.MatchString(pl.rulePrefix) {
		return pl, fmt.Errorf("--param panos.rule-prefix=%q: use at most 16 letters, digits, '.', '_' or '-', starting with a letter or digit", pl.rulePrefix)
	}
	if !prefixPattern.MatchString(pl.objectPrefix) {
		return pl, fmt.Errorf("--param panos.object-prefix=%q: use at most 16 letters, digits, '.', '_' or '-', starting with a letter or digit", pl.objectPrefix)
	}
	if pl.deviceGroup != "" && !dgPattern.MatchString(pl.deviceGroup) {
		return pl, fmt.Errorf("--param panos.device-group=%q: expected a device group name of letters, digits, '.', '_' or '-' (31 at most)", pl.deviceGroup)
	}
	var err error
	switch d := opts.Get(paramDefaultRule); d {
	case "none":
	case "emit":
		pl.defaultRule = true
	default:
		return pl, fmt.Errorf("--param panos.default-rule=%q: expected none or emit", d)
	}
	pos := opts.Get(paramPosition)
	where, ref, hasRef := strings.Cut(pos, ":")
	switch {
	case (where == "top" || where == "bottom") && !hasRef:
	case (where == "before" || where == "after") && hasRef:
		if !ruleRef.MatchString(ref) || strings.TrimSpace(ref) != ref {
			return pl, fmt.Errorf("--param panos.position=%q: %s: must name a rule of the box (letters, digits, '.', '_', '-', space; 63 at most)", pos, where)
		}
		if pl.owns(ref) {
			return pl, fmt.Errorf("--param panos.position=%q: %q carries turnwall's rule prefix; name a rule of the box, not one of turnwall's", pos, ref)
		}
	default:
		return pl, fmt.Errorf("--param panos.position=%q: expected top, bottom, before:RULE or after:RULE", pos)
	}
	pl.where, pl.ref = where, ref
	if pl.feed, err = parseFeeds(opts); err != nil {
		return pl, err
	}
	if pl.model, err = parseModel(opts); err != nil {
		return pl, err
	}
	if z := opts.Get(paramZones); z != "" {
		pl.zones = map[string]string{}
		for _, pair := range strings.Split(z, ",") {
			from, to, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || from == "" || !zoneTarget.MatchString(to) {
				return pl, fmt.Errorf("--param panos.zones=%q: %q: expected ZONE=PANZONE, PANZONE of letters, digits, '.', '_' or '-' (31 at most)", z, pair)
			}
			if _, dup := pl.zones[from]; dup {
				return pl, fmt.Errorf("--param panos.zones=%q: zone %q given twice", z, from)
			}
			pl.zones[from] = to
		}
	}
	return pl, nil
}

// owns reports whether a rule name carries turnwall's rule prefix.
func (pl place) owns(rule string) bool {
	return pl.rulePrefix != "" && strings.HasPrefix(strings.ToLower(rule), strings.ToLower(pl.rulePrefix))
}

// zone maps an IR zone to the PAN-OS zone; ok is false for a zone the zone
// map leaves out.
func (pl place) zone(irZone string) (string, bool) {
	if pl.zones == nil {
		return ZoneName(irZone), true
	}
	z, ok := pl.zones[irZone]
	return z, ok
}

// scope is the set-command path before the object kind: "", "vsys vsys2 "
// or "device-group DG ".
func (pl place) scope() string {
	switch {
	case pl.deviceGroup != "":
		return "device-group " + pl.deviceGroup + " "
	case pl.vsys != "vsys1":
		return "vsys " + pl.vsys + " "
	}
	return ""
}

// rulebase is "rulebase", or "pre-rulebase" in a Panorama device group.
func (pl place) rulebase() string {
	if pl.deviceGroup != "" {
		return "pre-rulebase"
	}
	return "rulebase"
}

// checkPlace reports placement problems that belong to a place in the
// policy: a zone the zone map leaves out, at the zone's declaration.
func checkPlace(p *ir.Program, opts backends.Options) []backends.Constraint {
	pl, err := parsePlace(opts)
	if err != nil {
		return []backends.Constraint{{At: p.Policy.Source, Summary: "bad placement parameter", Detail: err.Error()}}
	}
	if pl.zones == nil {
		return nil
	}
	var out []backends.Constraint
	used := map[string]bool{}
	for _, r := range p.Rules {
		used[r.FromZone], used[r.ToZone] = true, true
	}
	var known []string
	for k := range pl.zones {
		known = append(known, k)
	}
	sort.Strings(known)
	for _, z := range p.Zones {
		if !used[z.Name] {
			continue
		}
		if _, ok := pl.zones[z.Name]; !ok {
			out = append(out, backends.Constraint{At: z.Source, Summary: "zone missing from the zone map",
				Detail: fmt.Sprintf("Zone %q is used by rules but panos.zones maps only %s. Add %s=PANZONE to the zones parameter (device block or --param panos.zones).", z.Name, strings.Join(known, ", "), z.Name)})
		}
	}
	return out
}
