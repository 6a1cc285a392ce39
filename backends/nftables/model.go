// Package nftables emits the IR as an nftables ruleset for a Linux gateway.
//
// The ruleset lives in one table turnwall owns (inet family, default name
// "turnwall") and is replaced atomically: the emitted file is one `nft -f`
// transaction of `table` / `delete table` / `table { ... }`, so re-applying it
// never duplicates rules and a failing load leaves the old table untouched.
//
// Scope: the forward hook jumps to the policy chain only for packets that enter
// or leave through an interface of one of the policy's zones. Traffic between
// interfaces the policy never mentions is not touched (this table accepts it;
// other tables still decide). Inside the scope the policy's default_action
// applies after the rules. The gateway's own input and output are not touched.
//
// Ruleset is the model; Text renders it for nft -f (and the netlink applier
// renders the same model), so the two can never disagree.
package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/version"
)

// Ruleset is one table of sets and chains.
type Ruleset struct {
	Table  string
	Header []string // comment lines at the top of the file
	Sets   []Set
	Chains []Chain
}

// Set is a named interval set of one address family.
type Set struct {
	Name     string
	V6       bool
	Prefixes []netip.Prefix
	// FQDNs are names whose addresses a resolver adds to this (otherwise
	// empty) set at run time, e.g. dnsmasq's nftset= option.
	FQDNs   []string
	Comment string
	// IRSet is the name of the IR address set this set renders (one IR set
	// gives up to four: its IPv4 and IPv6 prefixes and FQDN members).
	IRSet string
}

// Type is the nftables set type.
func (s Set) Type() string {
	if s.V6 {
		return "ipv6_addr"
	}
	return "ipv4_addr"
}

// Chain is a base chain (Hook set) or a regular chain.
type Chain struct {
	Name   string
	Hook   string // "forward" for the base chain
	Policy string // base chain policy
	// Priority of a base chain: "filter" when empty, or "mangle" (the QoS
	// marking chain, which runs before the filter chains of the hook).
	Priority string
	Rules    []Rule
}

// Rule is one nftables rule. Empty fields match everything.
type Rule struct {
	IIF, OIF []string // interface names
	Family   int      // 4 or 6 when addresses are matched
	SrcSet   string
	DstSet   string
	Proto    ir.Proto
	SPorts   []ir.PortRange
	DPorts   []ir.PortRange
	CtState  []string
	Counter  bool
	Log      string // log prefix; empty for no log
	Verdict  string // accept, drop, or "jump CHAIN"
	Comment  string
	IRRule   string // the IR rule this implements; empty for plumbing
	// AddrsFirst is the match order of rulesets written by earlier
	// versions (interfaces, addresses, then protocol and ports). Build
	// never sets it; it marks such rules read back from the kernel, so that
	// they differ from the current order and get replaced.
	AddrsFirst bool
	// CtDir matches the packet's conntrack direction ("original" or
	// "reply"); MarkDSCP sets the IP (Family 4) or IPv6 (Family 6) DSCP
	// field to DSCP (qos.go).
	CtDir    string
	MarkDSCP bool
	DSCP     uint8
	// LimitOver matches only packets over this rate ("10/second" with
	// burst LimitBurst packets): the default rule's log is rate-limited by
	// a rule before it that takes the same verdict, without logging, for
	// the packets over the rate.
	LimitOver  string
	LimitBurst int
}

// Limits from nft and the kernel: object names up to 255 bytes (not starting
// with a digit, no keywords), comments up to 128 bytes, log prefixes up to
// 127 bytes.
const (
	maxName      = 255
	maxComment   = 128
	maxLogPrefix = 127
	// DefaultLogRate and DefaultLogBurst bound the default rule's log
	// lines: 10 a second, bursts of 20.
	DefaultLogRate  = "10/second"
	DefaultLogBurst = 20
)

// keywords that cannot be object names in nft's grammar (a conservative list).
var keywords = []string{"table", "chain", "set", "map", "rule", "element", "elements", "type", "flags", "policy",
	"hook", "priority", "accept", "drop", "reject", "jump", "goto", "return", "counter", "log", "ip", "ip6",
	"inet", "tcp", "udp", "ct", "meta", "fwd", "dup", "comment", "filter", "nat", "interval", "timeout",
	"state", "limit", "quota", "queue", "continue", "define", "include", "delete", "flush", "add", "insert",
	"replace", "create", "list", "reset", "describe", "monitor", "export", "import", "netdev", "arp", "bridge",
	"vlan", "ether", "icmp", "icmpv6", "sctp", "dccp", "udplite", "th", "iif", "oif", "iifname", "oifname",
	"mark", "saddr", "daddr", "sport", "dport", "protocol", "nexthdr", "length", "auto-merge", "size", "elem"}

// Build turns the program into the ruleset model.
func Build(p *ir.Program, table string) (*Ruleset, error) {
	if table == "" {
		table = "turnwall"
	}
	if !validIdent(table) {
		return nil, fmt.Errorf("table name %q is not a valid nftables identifier", table)
	}
	// apply and verify build from here too: the kernel's limits hold for them.
	if err := backends.FirstConstraint(Backend{}.Check(p, backends.Options{})); err != nil {
		return nil, err
	}
	names := naming.New(naming.Rules{MaxLen: maxName - 5, Allowed: naming.ASCIIWord("._-"), First: naming.Letter, Replace: '_', Reserved: keywords})
	rs := &Ruleset{Table: table}
	rs.Header = []string{
		fmt.Sprintf("turnwall nftables ruleset for policy %s (%s)", naming.Comment(p.Policy.Name, "", 100), naming.Comment(p.Policy.Source.String(), "", 100)),
		"Generated by turnwall " + naming.Comment(version.String(), "", 60) + " from the policy; do not edit. Load with: nft -f FILE",
		"Replaces table inet " + table + " atomically and touches no other table.",
		"Zones and their interfaces (Go-quoted):",
	}

	// Address sets: one per IR set and family that has addresses, and one
	// per family for FQDN members (filled by a resolver).
	setsOf := map[string]famSets{}
	for i := range p.AddressSets {
		s := &p.AddressSets[i]
		base := names.Name(s.Name)
		var fs famSets
		comment := naming.Comment(fmt.Sprintf("%s %s (%s)", s.Origin.Kind, s.Origin.Name, s.Origin.Source), `"\`, maxComment)
		if len(s.V4) > 0 {
			fs.v4 = base + "_v4"
			rs.Sets = append(rs.Sets, Set{Name: fs.v4, Prefixes: s.V4, Comment: comment, IRSet: s.Name})
		}
		if len(s.V6) > 0 {
			fs.v6 = base + "_v6"
			rs.Sets = append(rs.Sets, Set{Name: fs.v6, V6: true, Prefixes: s.V6, Comment: comment, IRSet: s.Name})
		}
		if len(s.FQDNs) > 0 {
			fq := naming.Comment("fqdn "+strings.Join(s.FQDNs, " "), `"\`, maxComment)
			fs.fq4, fs.fq6 = base+"_fq4", base+"_fq6"
			rs.Sets = append(rs.Sets, Set{Name: fs.fq4, FQDNs: s.FQDNs, Comment: fq, IRSet: s.Name}, Set{Name: fs.fq6, V6: true, FQDNs: s.FQDNs, Comment: fq, IRSet: s.Name})
		}
		setsOf[s.Name] = fs
	}

	ifaces := map[string][]string{}
	var allIfaces []string
	for _, z := range p.Zones {
		var list, quoted []string
		for _, i := range z.Interfaces {
			list = append(list, ifname(i))
			quoted = append(quoted, strconv.Quote(ifname(i)))
		}
		ifaces[z.Name] = list
		allIfaces = append(allIfaces, list...)
		rs.Header = append(rs.Header, fmt.Sprintf("zone %s interfaces %s", strconv.Quote(z.Name), strings.Join(quoted, " ")))
	}
	sort.Strings(allIfaces)
	allIfaces = slices.Compact(allIfaces)

	policyChain := "policy_rules"
	base := Chain{Name: "forward", Hook: "forward", Policy: "accept"}
	// Replies and related flows are accepted first, in the base chain: most
	// packets of a call are media of an established flow, and they leave
	// after one conntrack test, before the interface lookups and the jump.
	// The base chain's policy accepts what is out of scope anyway, so this
	// decides exactly as the same rule at the top of the policy chain.
	if len(allIfaces) > 0 {
		base.Rules = []Rule{
			{CtState: []string{"established", "related"}, Verdict: "accept", Comment: "replies and related flows of allowed connections"},
			{IIF: allIfaces, Verdict: "jump " + policyChain, Comment: "traffic entering a policy zone"},
			{OIF: allIfaces, Verdict: "jump " + policyChain, Comment: "traffic leaving through a policy zone"},
		}
	}
	pc := Chain{Name: policyChain, Rules: []Rule{
		{CtState: []string{"invalid"}, Counter: true, Verdict: "drop", Comment: "packets no connection explains"},
	}}
	for _, r := range p.Rules {
		sets, err := p.RuleSets(&r)
		if err != nil {
			return nil, err
		}
		svc := sets.Service
		src, dst := setsOf[r.Src], setsOf[r.Dst]
		verdict := "accept"
		if r.Action == ir.Deny {
			verdict = "drop"
		}
		// The comment ends with the policy location, which turnwall status and
		// the reader use to trace a rule back to its block.
		source := naming.Comment(r.Origin.Source.String(), `"\`, maxComment/2)
		comment := naming.Comment(r.Name, `"\ `, maxComment-len(source)-1) + " " + source
		log := ""
		if r.Log {
			log = naming.Comment("turnwall "+string(r.Action)+" "+r.Name, `"\`, maxLogPrefix-2) + ": "
		}
		type pair struct {
			fam      int
			src, dst string
		}
		var pairs []pair
		for _, d := range []struct {
			fam      int
			src, dst string
		}{{4, src.v4, dst.v4}, {4, src.v4, dst.fq4}, {6, src.v6, dst.v6}, {6, src.v6, dst.fq6}} {
			if d.src != "" && d.dst != "" {
				pairs = append(pairs, pair(d))
			}
		}
		for _, pr := range pairs {
			for _, e := range svc.Entries {
				pc.Rules = append(pc.Rules, Rule{
					IIF: ifaces[r.FromZone], OIF: ifaces[r.ToZone], Family: pr.fam,
					SrcSet: pr.src, DstSet: pr.dst, Proto: e.Proto, SPorts: e.SrcPorts, DPorts: e.Ports,
					Counter: true, Log: log, Verdict: verdict, Comment: comment, IRRule: r.Name,
				})
			}
		}
	}
	def := Rule{Counter: true, Verdict: "drop", Comment: "default_action " + string(p.Policy.DefaultAction)}
	if p.Policy.DefaultAction == ir.Allow {
		def.Verdict = "accept"
	}
	if p.Policy.LogDefault {
		// A flood must not flood the log: packets over the rate take the
		// same verdict unlogged; the rest are logged.
		over := def
		over.LimitOver, over.LimitBurst = DefaultLogRate, DefaultLogBurst
		pc.Rules = append(pc.Rules, over)
		def.Log = "turnwall default " + string(p.Policy.DefaultAction) + ": "
	}
	pc.Rules = append(pc.Rules, def)
	rs.Chains = []Chain{base, pc}
	if qc := qosChain(p, setsOf, ifaces); qc != nil {
		rs.Chains = append(rs.Chains, *qc)
	}

	// Keep only the sets a rule uses (the relays' peer lists, for example,
	// are for the relay, not the gateway).
	used := map[string]bool{}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			used[r.SrcSet], used[r.DstSet] = true, true
		}
	}
	kept := rs.Sets[:0]
	for _, s := range rs.Sets {
		if used[s.Name] {
			kept = append(kept, s)
		}
	}
	rs.Sets = kept
	return rs, nil
}

// famSets are the nftables sets of one IR address set.
type famSets struct{ v4, v6, fq4, fq6 string }

// ifname keeps an interface name safe inside double quotes.
func ifname(s string) string {
	return naming.Comment(s, "\"\\", 32)
}

func validIdent(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for i, r := range s {
		if !(naming.AlphaNum(r) || r == '_' || (i > 0 && (r == '-' || r == '.'))) || (i == 0 && !naming.Letter(r)) {
			return false
		}
	}
	for _, k := range keywords {
		if k == s {
			return false
		}
	}
	return true
}
