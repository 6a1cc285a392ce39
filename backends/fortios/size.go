package fortios

import "sort"

// Output size. A provider with tens of thousands of ranges is as many
// address objects; what else the output holds per range is kept as small as
// a FortiOS administrator would write it:
//
//   - an address object is `edit NAME`, `set subnet A.B.C.D/N` (the CLI
//     takes CIDR notation; type ipmask is the default), `next`;
//   - an address group whose members include all of another group's (a
//     relay's peers that include a provider) holds that group as one member
//     instead of repeating its thousands of members: FortiOS address groups
//     may hold groups.

// minNested is the smallest group worth holding as a member.
const minNested = 2

// nestGroups rewrites groups that contain all members of another group to
// hold that group instead. Only groups that hold no group themselves are
// nested (one level), and a group is never nested in itself or in a group
// with the same members that comes first, so there is no cycle.
func nestGroups(groups []group) {
	// Member sets are built when a pair is first compared: most pairs differ
	// in size the wrong way, and a provider's group is large.
	sets := make([]map[string]bool, len(groups))
	set := func(i int) map[string]bool {
		if sets[i] == nil {
			sets[i] = make(map[string]bool, len(groups[i].members))
			for _, m := range groups[i].members {
				sets[i][m] = true
			}
		}
		return sets[i]
	}
	// Candidates: the largest first, so a group holds the biggest group it
	// contains.
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(groups[order[a]].members) > len(groups[order[b]].members) })
	holds := make([]bool, len(groups)) // holds a group
	held := make([]bool, len(groups))  // is held by a group
	for i := range groups {
		if held[i] {
			continue
		}
		for _, j := range order {
			nj, ni := len(groups[j].members), len(groups[i].members)
			if j == i || holds[j] || nj < minNested || nj > ni {
				continue
			}
			if nj == ni && j > i {
				continue // equal sets: the later one holds the earlier
			}
			if !subset(set(j), set(i)) {
				continue
			}
			members := []string{groups[j].name}
			for _, m := range groups[i].members {
				if !sets[j][m] {
					members = append(members, m)
				}
			}
			groups[i].members = members
			holds[i], held[j] = true, true
			break
		}
	}
}

func subset(a, b map[string]bool) bool {
	for m := range a {
		if !b[m] {
			return false
		}
	}
	return true
}
