package fortios

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// Placement in a FortiGate that already holds policies of its own: which
// interfaces (or FortiOS zones) a policy zone is on the box, where turnwall's
// block of policies sits in the policy list, and whether it adds a catch-all
// default policy. Every setting is a target parameter, so a policy's
// `device "fortios" { ... }` block and --param give it alike.
var (
	paramInterfaces = backends.Param{
		Name:    "interfaces",
		Default: "",
		Help: "ZONE=NAME[+NAME...][,ZONE=...]: the FortiOS interfaces or zones each policy zone is on the box " +
			"(agents=port2+vlan20,internet=wan1). Empty takes the interfaces the policy gives its zones; " +
			"when set, every zone a rule uses needs an entry.",
	}
	paramPosition = backends.Param{
		Name:    "position",
		Default: "bottom",
		Help: "bottom|before:ID|after:ID: where turnwall's block of policies goes in the policy list on the first install. " +
			"bottom leaves it where FortiOS puts new policies; before:ID and after:ID move it next to the box's own policy ID " +
			"(outside policy-ids). Later changes keep every policy next to its neighbours in the block.",
	}
	paramDefaultRule = backends.Param{
		Name:    "default-rule",
		Default: "none",
		Help: "none|emit: none adds no catch-all policy, so traffic no turnwall policy matches goes on to the box's own " +
			"policies and FortiOS's implicit deny; emit adds the policy's default action as an any-to-any policy on the last id of policy-ids.",
	}
)

// placement is the parsed placement settings.
type placement struct {
	ifmap       map[string][]string // nil: the IR's interfaces
	position    string              // "bottom", "before", "after"
	anchor      uint64              // the box's policy id for before/after
	defaultRule bool
}

var boxName = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._/:-]{0,34}$`)

func parsePlacement(opts backends.Options, s *settings) error {
	pl := &s.place
	if v := strings.TrimSpace(opts.Get(paramInterfaces)); v != "" {
		pl.ifmap = map[string][]string{}
		for _, item := range strings.Split(v, ",") {
			zone, names, ok := strings.Cut(strings.TrimSpace(item), "=")
			zone = strings.TrimSpace(zone)
			if !ok || zone == "" || names == "" {
				return fmt.Errorf("interfaces %q: expected ZONE=NAME[+NAME...] entries separated by commas, for example agents=port2+vlan20,internet=wan1", v)
			}
			if _, dup := pl.ifmap[zone]; dup {
				return fmt.Errorf("interfaces: zone %q is given twice", zone)
			}
			var list []string
			for _, n := range strings.Split(names, "+") {
				n = strings.TrimSpace(n)
				if !boxName.MatchString(n) || strings.EqualFold(n, anyInterface) {
					return fmt.Errorf("interfaces: zone %q: %q is not a FortiOS interface or zone name (1-35 letters, digits and . _ / : -, not \"any\")", zone, n)
				}
				list = append(list, n)
			}
			pl.ifmap[zone] = list
		}
	}
	switch pos := strings.TrimSpace(opts.Get(paramPosition)); {
	case pos == "bottom" || pos == "":
		pl.position = "bottom"
	case strings.HasPrefix(pos, "before:") || strings.HasPrefix(pos, "after:"):
		kind, id, _ := strings.Cut(pos, ":")
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil || n < 1 || n > maxPolicyID {
			return fmt.Errorf("position %q: %q is not a policy id (1-%d)", pos, id, maxPolicyID)
		}
		if n >= s.firstID && n <= s.lastID {
			return fmt.Errorf("position %q: policy %d is in turnwall's policy-ids %d-%d; name one of the box's own policies", pos, n, s.firstID, s.lastID)
		}
		pl.position, pl.anchor = kind, n
	default:
		return fmt.Errorf("position %q: expected bottom, before:ID or after:ID", pos)
	}
	switch d := opts.Get(paramDefaultRule); d {
	case "none", "":
	case "emit":
		pl.defaultRule = true
	default:
		return fmt.Errorf("default-rule %q: expected none or emit", d)
	}
	return nil
}

// zoneInterfaces is what a zone is on the box: the interfaces map's entry,
// or the policy's own interfaces when no map is given.
func (s settings) zoneInterfaces(p *ir.Program) map[string][]string {
	out := map[string][]string{}
	for _, z := range p.Zones {
		if s.place.ifmap == nil {
			out[z.Name] = z.Interfaces
		} else if ifs, ok := s.place.ifmap[z.Name]; ok {
			out[z.Name] = ifs
		}
	}
	return out
}

// placementConstraints: with an interfaces map, every zone a rule uses needs
// an entry, and the map names no zone the policy lacks.
func placementConstraints(p *ir.Program, s settings) []backends.Constraint {
	if s.place.ifmap == nil {
		return nil
	}
	var out []backends.Constraint
	known := map[string]bool{}
	for _, z := range p.Zones {
		known[z.Name] = true
	}
	reported := map[string]bool{}
	for _, r := range p.Rules {
		for _, z := range []string{r.FromZone, r.ToZone} {
			if z == "" || reported[z] {
				continue
			}
			if _, ok := s.place.ifmap[z]; !ok {
				reported[z] = true
				out = append(out, backends.Constraint{At: r.Origin.Source, Summary: "zone missing from the interfaces map",
					Detail: fmt.Sprintf("Rule %s uses zone %q, which --param fortios.interfaces does not map to interfaces on the box. Add %s=NAME to it.", r.Name, z, z)})
			}
		}
	}
	var extra []string
	for z := range s.place.ifmap {
		if !known[z] {
			extra = append(extra, z)
		}
	}
	sort.Strings(extra)
	for _, z := range extra {
		out = append(out, backends.Constraint{At: p.Policy.Source, Summary: "unknown zone in the interfaces map",
			Detail: fmt.Sprintf("--param fortios.interfaces maps zone %q, which the policy does not define. Remove it or fix its spelling.", z)})
	}
	return out
}

// allocateIDs gives each policy name a fixed id in the range, from the name
// alone: a hash of the name picks a slot and a taken slot moves on to the
// next free one, names taken in sorted order. Adding or removing a rule
// leaves every other rule's id in place (unless two names hash to one slot,
// which moves only the later of them). The last id stays for the default
// policy. Check has made sure the range holds every name.
func allocateIDs(names []string, first, last uint64) map[string]uint64 {
	slots := last - first // ids first .. last-1
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	taken := map[uint64]bool{}
	out := map[string]uint64{}
	for _, n := range sorted {
		h := fnv.New64a()
		h.Write([]byte(n))
		slot := h.Sum64() % slots
		for taken[slot] {
			slot = (slot + 1) % slots
		}
		taken[slot] = true
		out[n] = first + slot
	}
	return out
}
