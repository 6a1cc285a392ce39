package asa

// Placement: turnwall's entries go into the interface ACLs the box already
// has (named per zone by the acl parameter), as one block at a fixed line,
// instead of replacing those ACLs. Every line turnwall adds is marked as its
// own: remarks start with "turnwall ", ACEs name only turnwall's object
// groups (the prefix parameter), and the optional default ACE names the
// group PREFIXdefault-all. Groups keep stable names (no content hash), so a
// change script edits their members in place.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

var (
	paramACL = backends.Param{
		Name: "acl",
		Help: "ZONE=ACL,... (or ZONE:ACL): insert into each zone's existing inbound ACL (show running-config access-group) " +
			"instead of binding ACLs of turnwall's own; every zone needs one (a zone name holding , : or \" Go-quoted)",
	}
	paramPosition = backends.Param{
		Name:    "position",
		Default: "line:1",
		Help: "where turnwall's block sits in each existing ACL: line:N (it starts at line N, remarks counted) " +
			"or before-remark:TEXT@N (the box's remark TEXT, now at line N; the script names it in a check line)",
	}
	paramDefaultRule = backends.Param{
		Name:    "default-rule",
		Default: "none",
		Help: "none: no any-any ACE (in an existing ACL, what turnwall's rules do not match goes on to the box's " +
			"own entries); emit: end turnwall's block with the policy default as permit|deny ip any any",
	}
)

// maxLine bounds the position's line number (an ACL of more lines than this
// is not one turnwall places into; it also bounds what trace builds).
const maxLine = 100000

// ownMark starts every remark turnwall writes in a box's ACL.
const ownMark = "turnwall "

// placement is the parsed placement parameters.
type placement struct {
	prefix      string
	acls        map[string]string // zone -> ACL name
	line        int               // first line of the block
	remark      string            // before-remark anchor, "" for line:N
	emitDefault bool
}

func placed(opts backends.Options) bool { return strings.TrimSpace(opts.Get(paramACL)) != "" }

// parsePlacement reads the placement parameters; zones are checked against
// the programs by checkPlacement.
func parsePlacement(opts backends.Options) (*placement, error) {
	pl := &placement{prefix: opts.Get(paramPrefix), acls: map[string]string{}}
	if err := checkPrefix(pl.prefix); err != nil {
		return nil, err
	}
	rest := opts.Get(paramACL)
	for rest != "" {
		// A zone name holding ',', ':' or '"' is given Go-quoted.
		var item, zone, acl string
		ok := false
		rest = strings.TrimLeft(rest, " ,")
		if rest == "" {
			break
		}
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("acl: %.40q: the quoted zone name does not end", rest)
			}
			zone, _ = strconv.Unquote(q)
			item, rest, _ = strings.Cut(rest[len(q):], ",")
			if acl, ok = strings.CutPrefix(item, ":"); !ok {
				acl, ok = strings.CutPrefix(item, "=")
			}
			item = q + item
		} else {
			// ZONE=ACL, as every map parameter (and a device block's map)
			// is written, or ZONE:ACL; zone names hold neither.
			item, rest, _ = strings.Cut(rest, ",")
			if i := strings.IndexAny(item, ":="); i >= 0 {
				zone, acl, ok = item[:i], item[i+1:], true
			}
			zone = strings.TrimSpace(zone)
		}
		acl = strings.TrimSpace(acl)
		if !ok || zone == "" || acl == "" {
			return nil, fmt.Errorf("acl: %q is not ZONE:ACL (or ZONE=ACL)", item)
		}
		if !aclNameRE.MatchString(acl) {
			return nil, fmt.Errorf("acl: %q is not an ACL name (printable ASCII without spaces or '?')", acl)
		}
		if strings.HasPrefix(acl, pl.prefix) {
			return nil, fmt.Errorf("acl: %s starts with turnwall's prefix %q; name the box's existing ACL", acl, pl.prefix)
		}
		if _, dup := pl.acls[zone]; dup {
			return nil, fmt.Errorf("acl: zone %q given twice", zone)
		}
		pl.acls[zone] = acl
	}
	if len(pl.acls) == 0 {
		return nil, fmt.Errorf("acl: no ZONE=ACL given")
	}
	pos := opts.Get(paramPosition)
	switch {
	case strings.HasPrefix(pos, "line:"):
		n, err := strconv.Atoi(strings.TrimPrefix(pos, "line:"))
		if err != nil || n < 1 || n > maxLine {
			return nil, fmt.Errorf("position %q: line:N takes a line number from 1 to %d", pos, maxLine)
		}
		pl.line = n
	case strings.HasPrefix(pos, "before-remark:"):
		rest := strings.TrimPrefix(pos, "before-remark:")
		i := strings.LastIndex(rest, "@")
		if i < 0 {
			return nil, fmt.Errorf("position %q: the ASA inserts by line number; give the remark's line now "+
				"as before-remark:TEXT@N (show access-list ACL | include remark TEXT)", pos)
		}
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n < 1 || n > maxLine {
			return nil, fmt.Errorf("position %q: @N takes a line number from 1 to %d", pos, maxLine)
		}
		text := strings.TrimSpace(rest[:i])
		if text == "" || len(text) > maxRemark || strings.HasPrefix(text, ownMark) {
			return nil, fmt.Errorf("position %q: the remark text is empty, longer than %d characters or one of turnwall's", pos, maxRemark)
		}
		for _, r := range text {
			if r < ' ' || r >= 0x7f || r == '?' {
				return nil, fmt.Errorf("position %q: the remark text must be printable ASCII without '?'", pos)
			}
		}
		pl.line, pl.remark = n, text
	default:
		return nil, fmt.Errorf("position %q: expected line:N or before-remark:TEXT@N", pos)
	}
	switch opts.Get(paramDefaultRule) {
	case "none":
	case "emit":
		pl.emitDefault = true
	default:
		return nil, fmt.Errorf("default-rule %q: expected none or emit", opts.Get(paramDefaultRule))
	}
	return pl, nil
}

// checkPlacement returns the constraints of the placement parameters for p:
// every zone needs an existing ACL, and two zones cannot share one.
func checkPlacement(p *ir.Program, opts backends.Options) []backends.Constraint {
	if !placed(opts) {
		if v, ok := opts.Params[paramDefaultRule.Name]; ok && v != "none" && v != "emit" {
			return []backends.Constraint{{At: p.Policy.Source, Summary: "default-rule parameter",
				Detail: fmt.Sprintf("default-rule %q: expected none or emit.", v)}}
		}
		return nil
	}
	pl, err := parsePlacement(opts)
	if err != nil {
		return []backends.Constraint{{At: p.Policy.Source, Summary: "placement parameters", Detail: err.Error() + "."}}
	}
	var out []backends.Constraint
	zones := map[string]bool{}
	byACL := map[string]string{}
	for _, z := range p.Zones {
		zones[z.Name] = true
		acl, ok := pl.acls[z.Name]
		if !ok {
			out = append(out, backends.Constraint{At: z.Source, Summary: "zone without an ACL",
				Detail: fmt.Sprintf("Zone %q has no entry in the acl parameter; give its interfaces' existing inbound ACL as %s:ACL.", z.Name, quote(z.Name))})
			continue
		}
		if other, dup := byACL[acl]; dup {
			out = append(out, backends.Constraint{At: z.Source, Summary: "ACL of two zones",
				Detail: fmt.Sprintf("Zones %q and %q both name ACL %s; turnwall places one block per ACL. Give each zone its own ACL.", other, z.Name, acl)})
		}
		byACL[acl] = z.Name
	}
	var unknown []string
	for z := range pl.acls {
		if !zones[z] {
			unknown = append(unknown, z)
		}
	}
	sort.Strings(unknown)
	for _, z := range unknown {
		out = append(out, backends.Constraint{At: p.Policy.Source, Summary: "acl names an unknown zone",
			Detail: fmt.Sprintf("acl names zone %q, which the policy does not declare.", z)})
	}
	return out
}

// ownedState is turnwall's part of a box for one program: its objects and
// groups and its block in each existing ACL. A nil program has none.
type ownedState struct {
	// objs maps name to kind ("object network", "object-group network",
	// "object-group service") and lines; order lists names in creation
	// order (objects before the groups that use them).
	objs  map[string]*ownedObj
	order []string
	// blocks maps an ACL name to turnwall's block in it: "remark TEXT" and
	// "extended ..." items.
	blocks map[string][]string
	// qos is the qos block's part (qoschange.go); nil without one.
	qos *qosState
}

type ownedObj struct {
	kind  string
	lines []string
	index map[string]bool // the model's member index
}

func (s *ownedState) add(name, kind string, lines []string) {
	if _, ok := s.objs[name]; ok {
		return
	}
	s.objs[name] = &ownedObj{kind: kind, lines: lines}
	s.order = append(s.order, name)
}

// desired plans turnwall's part of the box for p.
func desired(p *ir.Program, pl *placement) (*ownedState, error) {
	st := &ownedState{objs: map[string]*ownedObj{}, blocks: map[string][]string{}}
	if p == nil {
		return st, nil
	}
	e := &emitter{p: p, prefix: pl.prefix, stable: true}
	if err := e.plan(); err != nil {
		return nil, err
	}
	// Set names are prefixed net-, svc- or fqdn by the namer, so this name
	// cannot collide with theirs.
	defaultAll := pl.prefix + "default-all"
	used := map[string]bool{}
	for _, z := range e.zones {
		acl, ok := pl.acls[z.Name]
		if !ok {
			return nil, fmt.Errorf("zone %q: no ACL in the acl parameter", z.Name)
		}
		var block []string
		seen := map[string]bool{}
		remark := func(t string) {
			t = cut(ownMark+t, maxRemark)
			for i := 2; seen["remark "+t]; i++ {
				suffix := " #" + strconv.Itoa(i)
				t = cut(t, maxRemark-len(suffix)) + suffix
			}
			seen["remark "+t] = true
			block = append(block, "remark "+t)
		}
		for _, r := range p.Rules {
			if r.FromZone != "" && r.FromZone != z.Name {
				continue
			}
			if sets, err := p.RuleSets(&r); err != nil || !sets.CanMatch() {
				continue
			}
			action := "permit"
			if r.Action == ir.Deny {
				action = "deny"
			}
			svc, src, dst := e.svcGroups[r.Service], e.netGroups[r.Src], e.netGroups[r.Dst]
			ace := "extended " + action + " object-group " + svc.name + " object-group " + src.name + " object-group " + dst.name
			if r.Log {
				ace += " log"
			}
			if seen[ace] {
				// The same ACE earlier in the block decides every packet this one
				// would: the ASA refuses a duplicate entry.
				continue
			}
			head := sourceToken(r.Origin.Source) + " " + text(r.Name, maxRemark)
			if pu := text(string(r.Purpose), 20); pu != "" {
				head += " (" + pu + ")"
			}
			remark(head)
			if c := text(r.Comment, maxRemark); c != "" {
				remark("- " + c)
			}
			seen[ace] = true
			block = append(block, ace)
			for _, g := range []*groupPlan{src, dst} {
				for _, k := range g.fqdns {
					used["fqdn "+k] = true
				}
				used["net "+g.name] = true
			}
			used["svc "+svc.name] = true
		}
		if pl.emitDefault {
			action := "deny"
			if p.Policy.DefaultAction == ir.Allow {
				action = "permit"
			}
			remark("default " + string(p.Policy.DefaultAction) + ": policy " + text(p.Policy.Name, 60) + " (" + sourceToken(p.Policy.Source) + ")")
			ace := "extended " + action + " ip object-group " + defaultAll + " object-group " + defaultAll
			if p.Policy.LogDefault {
				ace += " log"
			}
			block = append(block, ace)
			used["default"] = true
		}
		st.blocks[acl] = block
	}
	// The QoS ACLs name groups too (an allow rule's, which its ACE names
	// unless another ACE of the block decides for it).
	st.qos = qosDesired(e)
	if st.qos != nil {
		for _, items := range st.qos.acls {
			for _, it := range items {
				for _, r := range refs(strings.Fields(it)) {
					used["net "+r], used["svc "+r] = true, true
				}
			}
		}
		for _, s := range p.AddressSets {
			if g := e.netGroups[s.Name]; used["net "+g.name] {
				for _, k := range g.fqdns {
					used["fqdn "+k] = true
				}
			}
		}
	}
	// Objects in IR order: FQDN objects, network groups, service groups.
	for _, s := range p.AddressSets {
		for _, k := range e.netGroups[s.Name].fqdns {
			if used["fqdn "+k] {
				o := e.fqdnObjs[k]
				st.add(o.name, "object network", o.lines)
			}
		}
	}
	if used["default"] {
		st.add(defaultAll, "object-group network", []string{"network-object 0.0.0.0 0.0.0.0", "network-object ::/0"})
	}
	for _, s := range p.AddressSets {
		if g := e.netGroups[s.Name]; used["net "+g.name] {
			st.add(g.name, "object-group network", g.lines)
		}
	}
	for _, s := range p.Services {
		if g := e.svcGroups[s.Name]; used["svc "+g.name] {
			st.add(g.name, "object-group service", g.lines)
		}
	}
	if e.qos != nil {
		for _, g := range e.qos.revSvcs {
			if used["svc "+g.name] {
				st.add(g.name, "object-group service", g.lines)
			}
		}
	}
	return st, nil
}
