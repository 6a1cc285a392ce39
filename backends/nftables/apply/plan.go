package apply

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends/diff"
	"github.com/turnwall/turnwall/backends/nftables"
)

// Action is what an apply does to the kernel.
type Action string

// Actions, from cheapest to most disruptive.
const (
	// NoChange: the kernel already holds the ruleset; nothing is sent.
	NoChange Action = "no change"
	// Delta: only set elements differ; they are added and deleted in one
	// batch, so rules keep their handles and counters.
	Delta Action = "delta"
	// Create: the table does not exist yet.
	Create Action = "create"
	// Replace: declarations, chains or rules differ; the table is deleted
	// and created again in one batch, as `nft -f` of the text does.
	Replace Action = "replace"
)

// SetDelta is the change of one set's elements, as whole intervals.
type SetDelta struct {
	Set         string
	V6          bool
	Add, Delete []netipx.IPRange
	// addMarker/delMarker add or delete nft's zero end marker, which is
	// there exactly when the first interval does not start at zero.
	addMarker, delMarker bool
}

// Plan is what applying a ruleset to the live table would do.
type Plan struct {
	Table  string
	Action Action
	// Reason says why the table is replaced: the first line of the
	// canonical listings that differs, ignoring set elements.
	Reason string
	Deltas []SetDelta

	live       *Snapshot
	want       *nftables.Ruleset
	wantRanges map[string][]netipx.IPRange
	fqdn       map[string]bool // sets filled at run time by a resolver
}

// Changed reports whether applying would change the kernel.
func (p *Plan) Changed() bool { return p.Action != NoChange }

// Old is the canonical rendering (Ruleset.Text without the header) of the
// live table, "" when it does not exist. Addresses a resolver added to the
// policy's FQDN sets are left out.
func (p *Plan) Old() string {
	if !p.live.Exists {
		return ""
	}
	return string(canonical(p.live.Ruleset, p.live.Ranges, true, p.fqdn).Text())
}

// New is the canonical rendering of the intended table.
func (p *Plan) New() string {
	return string(canonical(p.want, p.wantRanges, true, p.fqdn).Text())
}

// Diff is a unified diff of the live table against the intended one.
func (p *Plan) Diff(oldName, newName string) string {
	return diff.Unified(oldName, newName, p.Old(), p.New(), 3)
}

// Summary is one line saying what an apply would do.
func (p *Plan) Summary() string {
	switch p.Action {
	case NoChange:
		return fmt.Sprintf("no change: table inet %s already holds this ruleset", p.Table)
	case Create:
		return fmt.Sprintf("create table inet %s (%s)", p.Table, counts(p.want, p.wantRanges))
	case Replace:
		return fmt.Sprintf("replace table inet %s in one transaction (%s; first difference: %s); counters restart", p.Table, counts(p.want, p.wantRanges), p.Reason)
	}
	var parts []string
	for _, d := range p.Deltas {
		parts = append(parts, fmt.Sprintf("%s +%d -%d", d.Set, len(d.Add), len(d.Delete)))
	}
	return fmt.Sprintf("delta of set elements in one transaction (%s intervals); rules, handles and counters are kept", strings.Join(parts, ", "))
}

func counts(rs *nftables.Ruleset, ranges map[string][]netipx.IPRange) string {
	n, rules := 0, 0
	for _, r := range ranges {
		n += len(r)
	}
	for _, c := range rs.Chains {
		rules += len(c.Rules)
	}
	return fmt.Sprintf("%d sets, %d intervals, %d chains, %d rules", len(rs.Sets), n, len(rs.Chains), rules)
}

// canonical copies a ruleset for comparison and display: no header,
// interface lists sorted (a set has no order), and each set's elements
// either its exact ranges' cover, or none (elements false).
func canonical(rs *nftables.Ruleset, ranges map[string][]netipx.IPRange, elements bool, hide map[string]bool) *nftables.Ruleset {
	out := &nftables.Ruleset{Table: rs.Table}
	for _, s := range rs.Sets {
		s.Prefixes = nil
		s.FQDNs = nil
		if elements && !hide[s.Name] {
			for _, r := range ranges[s.Name] {
				s.Prefixes = append(s.Prefixes, r.Prefixes()...)
			}
		}
		out.Sets = append(out.Sets, s)
	}
	for _, c := range rs.Chains {
		rules := make([]nftables.Rule, len(c.Rules))
		for i, r := range c.Rules {
			r.IIF = sortedCopy(r.IIF)
			r.OIF = sortedCopy(r.OIF)
			r.IRRule = ""
			rules[i] = r
		}
		c.Rules = rules
		out.Chains = append(out.Chains, c)
	}
	return out
}

func sortedCopy(s []string) []string {
	if len(s) < 2 {
		return s
	}
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// prefixRanges is one range per prefix (adjacent prefixes stay apart, as
// nft loads them). The prefixes must be sorted and must not overlap.
func prefixRanges(s nftables.Set) ([]netipx.IPRange, error) {
	out := make([]netipx.IPRange, 0, len(s.Prefixes))
	for i, p := range s.Prefixes {
		if !p.IsValid() || p.Addr().Is6() != s.V6 || p.Addr().Is4In6() {
			return nil, fmt.Errorf("set %s: %v is not an address of the set's family", s.Name, p)
		}
		r := netipx.RangeOfPrefix(p.Masked())
		if i > 0 && !out[i-1].To().Less(r.From()) {
			return nil, fmt.Errorf("set %s: %v overlaps or precedes %v (the kernel would reject conflicting intervals)", s.Name, p, s.Prefixes[i-1])
		}
		out = append(out, r)
	}
	return out, nil
}

// NewPlan compares the live table with the intended ruleset.
func NewPlan(live *Snapshot, want *nftables.Ruleset) (*Plan, error) {
	if live.Table != want.Table {
		return nil, fmt.Errorf("the live table is %s, the ruleset's %s", live.Table, want.Table)
	}
	p := &Plan{Table: want.Table, live: live, want: want, wantRanges: map[string][]netipx.IPRange{}, fqdn: map[string]bool{}}
	liveSets := map[string]nftables.Set{}
	if live.Exists {
		for _, s := range live.Ruleset.Sets {
			liveSets[s.Name] = s
		}
	}
	for _, s := range want.Sets {
		if len(s.FQDNs) > 0 {
			// A resolver fills this set at run time: its addresses are
			// not the policy's, so they are kept, never compared.
			p.fqdn[s.Name] = true
			if ls, ok := liveSets[s.Name]; ok && ls.V6 == s.V6 && ls.Comment == s.Comment {
				p.wantRanges[s.Name] = live.Ranges[s.Name]
			}
			continue
		}
		r, err := prefixRanges(s)
		if err != nil {
			return nil, err
		}
		p.wantRanges[s.Name] = r
	}
	if !live.Exists {
		p.Action = Create
		return p, nil
	}
	oldSchema := string(canonical(live.Ruleset, nil, false, nil).Text())
	newSchema := string(canonical(want, nil, false, nil).Text())
	if oldSchema != newSchema {
		p.Action = Replace
		p.Reason = firstDifference(oldSchema, newSchema)
		return p, nil
	}
	for _, s := range want.Sets {
		if p.fqdn[s.Name] {
			continue
		}
		d := setDelta(s, live.Ranges[s.Name], p.wantRanges[s.Name], live.markers[s.Name])
		if len(d.Add)+len(d.Delete) > 0 || d.addMarker || d.delMarker {
			p.Deltas = append(p.Deltas, d)
		}
	}
	p.Action = NoChange
	if len(p.Deltas) > 0 {
		p.Action = Delta
	}
	return p, nil
}

// firstDifference names the first line where two renderings differ,
// shortened for a one-line summary.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = strings.TrimSpace(al[i])
		}
		if i < len(bl) {
			y = strings.TrimSpace(bl[i])
		}
		if x == y {
			continue
		}
		switch {
		case i >= len(al):
			return fmt.Sprintf("%s is new", excerpt(y, 0))
		case i >= len(bl):
			return fmt.Sprintf("%s goes", excerpt(x, 0))
		}
		common := 0
		for common < len(x) && common < len(y) && x[common] == y[common] {
			common++
		}
		return fmt.Sprintf("%s becomes %s", excerpt(x, common), excerpt(y, common))
	}
	return "the rulesets differ"
}

// excerpt quotes about 60 bytes of a line around byte at.
func excerpt(s string, at int) string {
	start := 0
	if at > 24 {
		start = at - 20
	}
	end := min(len(s), start+60)
	out := s[start:end]
	if start > 0 {
		out = "..." + out
	}
	if end < len(s) {
		out += "..."
	}
	return strconv.Quote(out)
}

// setDelta compares two sorted, non-overlapping interval lists.
func setDelta(s nftables.Set, old, want []netipx.IPRange, oldMarker bool) SetDelta {
	d := SetDelta{Set: s.Name, V6: s.V6}
	i, j := 0, 0
	for i < len(old) || j < len(want) {
		switch {
		case j == len(want) || (i < len(old) && old[i].From().Less(want[j].From())):
			d.Delete = append(d.Delete, old[i])
			i++
		case i == len(old) || want[j].From().Less(old[i].From()):
			d.Add = append(d.Add, want[j])
			j++
		case old[i] == want[j]:
			i++
			j++
		default: // same start, different end
			d.Delete = append(d.Delete, old[i])
			d.Add = append(d.Add, want[j])
			i++
			j++
		}
	}
	wantMarker := len(want) > 0 && !isZeroAddr(want[0].From())
	d.addMarker = wantMarker && !oldMarker
	d.delMarker = oldMarker && !wantMarker
	return d
}

func isZeroAddr(a netip.Addr) bool { return a.IsUnspecified() }

// elements are the deletions and the additions of the delta.
func (d SetDelta) elements() (del, add []element) {
	zero := netip.IPv4Unspecified()
	if d.V6 {
		zero = netip.IPv6Unspecified()
	}
	if d.delMarker {
		del = append(del, element{key: zero.AsSlice(), end: true})
	}
	for _, r := range d.Delete {
		del = append(del, rangeElements(r)...)
	}
	if d.addMarker {
		add = append(add, element{key: zero.AsSlice(), end: true})
	}
	for _, r := range d.Add {
		add = append(add, rangeElements(r)...)
	}
	return del, add
}

// matches reports whether a snapshot holds exactly the plan's intended
// table: the same declarations, chains and rules, and the same intervals in
// every set but those a resolver fills.
func (p *Plan) matches(s *Snapshot) error {
	if !s.Exists {
		return fmt.Errorf("table inet %s is missing", p.Table)
	}
	got := string(canonical(s.Ruleset, nil, false, nil).Text())
	want := string(canonical(p.want, nil, false, nil).Text())
	if got != want {
		return fmt.Errorf("the kernel's table differs: %s", firstDifference(want, got))
	}
	for _, set := range p.want.Sets {
		if p.fqdn[set.Name] {
			continue
		}
		if err := sameRanges(set.Name, s.Ranges[set.Name], p.wantRanges[set.Name]); err != nil {
			return err
		}
	}
	return nil
}

func sameRanges(set string, got, want []netipx.IPRange) error {
	if len(got) != len(want) {
		return fmt.Errorf("set %s holds %d intervals, meant %d", set, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("set %s: interval %d is %v, meant %v", set, i+1, got[i], want[i])
		}
	}
	return nil
}

// sameSnapshot reports whether b holds exactly what a held.
func sameSnapshot(a, b *Snapshot) error {
	if a.Exists != b.Exists {
		if a.Exists {
			return fmt.Errorf("table inet %s is missing", a.Table)
		}
		return fmt.Errorf("table inet %s exists", a.Table)
	}
	if !a.Exists {
		return nil
	}
	x := string(canonical(a.Ruleset, nil, false, nil).Text())
	y := string(canonical(b.Ruleset, nil, false, nil).Text())
	if x != y {
		return fmt.Errorf("the kernel's table differs: %s", firstDifference(x, y))
	}
	for _, s := range a.Ruleset.Sets {
		if err := sameRanges(s.Name, b.Ranges[s.Name], a.Ranges[s.Name]); err != nil {
			return err
		}
	}
	return nil
}
