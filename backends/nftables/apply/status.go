package apply

import (
	"strings"
)

// RuleStatus is one kernel rule with its counter, mapped back to the policy
// rule its comment names.
type RuleStatus struct {
	Chain   string `json:"chain"`
	Handle  uint64 `json:"handle"`
	Rule    string `json:"rule,omitempty"`   // policy rule; empty for turnwall's own plumbing
	Source  string `json:"source,omitempty"` // policy FILE:LINE
	Comment string `json:"comment,omitempty"`
	Text    string `json:"text"`
	Verdict string `json:"verdict"`
	Counter bool   `json:"counter"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// PolicyRuleStatus sums the kernel rules of one policy rule (one per
// address family and protocol).
type PolicyRuleStatus struct {
	Rule     string `json:"rule"`
	Source   string `json:"source"`
	Verdict  string `json:"verdict"`
	NftRules int    `json:"nft_rules"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}

// SetStatus is one set's size.
type SetStatus struct {
	Name      string `json:"name"`
	Family    int    `json:"family"`
	Intervals int    `json:"intervals"`
	Comment   string `json:"comment,omitempty"`
}

// Status is the live owned table.
type Status struct {
	Table      string       `json:"table"`
	NetNS      string       `json:"netns,omitempty"`
	Exists     bool         `json:"exists"`
	Generation uint32       `json:"generation"`
	Sets       []SetStatus  `json:"sets"`
	Rules      []RuleStatus `json:"rules"`
}

// StatusOf reads the owned table with its counters.
func StatusOf(t Target) (*Status, error) {
	snap, err := Read(t)
	if err != nil {
		return nil, err
	}
	st := &Status{Table: t.Table, NetNS: t.NetNS, Exists: snap.Exists, Generation: snap.genID}
	if !snap.Exists {
		return st, nil
	}
	for _, s := range snap.Ruleset.Sets {
		fam := 4
		if s.V6 {
			fam = 6
		}
		st.Sets = append(st.Sets, SetStatus{Name: s.Name, Family: fam, Intervals: len(snap.Ranges[s.Name]), Comment: s.Comment})
	}
	for _, c := range snap.Ruleset.Chains {
		for i, r := range c.Rules {
			cnt := snap.Counters[c.Name][i]
			rs := RuleStatus{Chain: c.Name, Handle: cnt.Handle, Rule: r.IRRule, Comment: r.Comment, Text: r.Text(),
				Verdict: r.Verdict, Counter: cnt.Counter, Packets: cnt.Packets, Bytes: cnt.Bytes}
			if rs.Rule != "" {
				_, rs.Source, _ = strings.Cut(r.Comment, " ")
			}
			st.Rules = append(st.Rules, rs)
		}
	}
	return st, nil
}

// PolicyRules groups the counted kernel rules by policy rule, in table
// order.
func (s *Status) PolicyRules() []PolicyRuleStatus {
	var out []PolicyRuleStatus
	index := map[string]int{}
	for _, r := range s.Rules {
		if r.Rule == "" {
			continue
		}
		i, ok := index[r.Rule]
		if !ok {
			i = len(out)
			index[r.Rule] = i
			out = append(out, PolicyRuleStatus{Rule: r.Rule, Source: r.Source, Verdict: r.Verdict})
		}
		out[i].NftRules++
		out[i].Packets += r.Packets
		out[i].Bytes += r.Bytes
	}
	return out
}
