// Package graph draws a compiled policy's flows: zones as clusters, agents
// groups, providers, relays, public STUN servers and other address sets as
// nodes, and one edge per flow purpose between two nodes, labelled with its
// services. It renders Graphviz DOT and Mermaid flowcharts, and SVG or PNG by
// running Graphviz's dot. It reads only the IR.
//
// Every piece of user text (names, descriptions, FQDNs) reaches a label only
// through the renderers' escaping, and never an identifier: node and cluster
// identifiers are generated (n1, z1).
package graph

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Kind is what a node stands for.
type Kind string

// Node kinds, in the order they are drawn inside a zone.
const (
	KindAgents   Kind = "agents"
	KindProvider Kind = "provider"
	KindSTUN     Kind = "stun"
	KindRelay    Kind = "relay"
	KindSet      Kind = "addresses" // an address set of an explicit rule
)

var kindOrder = map[Kind]int{KindAgents: 0, KindProvider: 1, KindSTUN: 2, KindRelay: 3, KindSet: 4}

// Node is one box of the picture.
type Node struct {
	// Key identifies the node across two versions of a policy
	// ("provider:genesys"); it never appears in rendered output.
	Key   string
	Kind  Kind
	Name  string
	Zone  string   // "" when the node belongs to no single zone
	Label []string // lines of the label, user text unescaped
}

// Edge is one flow purpose from one node to another.
type Edge struct {
	From, To string // node keys
	Purpose  ir.Purpose
	Action   ir.Action
	// Rule is the rule name for explicit rule blocks (each is its own
	// edge); empty for generated flows.
	Rule string
	// Services are the edge's services, rendered ("UDP 3478"), sorted.
	Services []string
	// Return marks the relay's path back to agents.
	Return bool
	// Rules are the IR rules the edge stands for.
	Rules []string
}

// Key identifies the edge across two versions of a policy.
func (e Edge) Key() string {
	return e.From + "\x00" + e.To + "\x00" + string(e.Purpose) + "\x00" + string(e.Action) + "\x00" + e.Rule
}

// Label returns the edge's label lines: what the flow is for, then its
// services.
func (e Edge) Label() []string {
	head := purposeText[e.Purpose]
	switch {
	case e.Rule != "" && head != "":
		head = "rule " + e.Rule + " (" + head + ")"
	case e.Rule != "":
		head = "rule " + e.Rule
	case head == "":
		head = string(e.Purpose)
	}
	if e.Action == ir.Deny {
		head = "DENY " + head
	}
	return append([]string{head}, e.Services...)
}

var purposeText = map[ir.Purpose]string{
	ir.PurposeSignalling:  "signalling",
	ir.PurposeSTUNTURN:    "STUN/TURN",
	ir.PurposeMedia:       "media",
	ir.PurposeSTUN:        "public STUN",
	ir.PurposeSIP:         "SIP",
	ir.PurposeTURN:        "TURN",
	ir.PurposeTURNTLS:     "TURN/TLS",
	ir.PurposeRelayMedia:  "relay media",
	ir.PurposeRelayReturn: "return path: relay media to agents",
}

// Zone is one cluster.
type Zone struct {
	Name       string
	Interfaces []string
	Nodes      []string // node keys, in drawing order
}

// Graph is the picture of one policy.
type Graph struct {
	Policy        string
	DefaultAction ir.Action
	Zones         []Zone
	Nodes         []Node // every node, zoned ones first in zone order
	Edges         []Edge

	byKey map[string]int
}

// Node returns the node with the given key, or nil.
func (g *Graph) Node(key string) *Node {
	if i, ok := g.byKey[key]; ok {
		return &g.Nodes[i]
	}
	return nil
}

// Build makes the graph of a program. The result depends only on the
// program: the same program always gives the same graph.
func Build(p *ir.Program) *Graph {
	g := &Graph{Policy: p.Policy.Name, DefaultAction: p.Policy.DefaultAction, byKey: map[string]int{}}
	type owner struct {
		key, zone string
		kind      Kind
		name      string
	}
	owners := map[string]owner{} // address set name -> block
	nodes := map[string]*Node{}
	addNode := func(n Node) {
		if _, ok := nodes[n.Key]; !ok {
			nodes[n.Key] = &n
		}
	}
	for _, a := range p.Agents {
		key := "agents:" + a.Name
		owners[a.Addresses] = owner{key, a.Zone, KindAgents, a.Name}
		addNode(Node{Key: key, Kind: KindAgents, Name: a.Name, Zone: a.Zone,
			Label: []string{"agents " + a.Name, count(prefixes(p, a.Addresses), "subnet")}})
	}
	for _, pr := range p.Providers {
		key := "provider:" + pr.Name
		if pr.Addresses != "" {
			owners[pr.Addresses] = owner{key, pr.Zone, KindProvider, pr.Name}
		}
		addNode(Node{Key: key, Kind: KindProvider, Name: pr.Name, Zone: pr.Zone,
			Label: []string{"provider " + pr.Name, count(prefixes(p, pr.Addresses), "range")}})
		if pr.STUN != "" {
			owners[pr.STUN] = owner{"stun:" + pr.Name, pr.Zone, KindSTUN, pr.Name}
		}
	}
	for _, r := range p.Relays {
		key := "relay:" + r.Name
		owners[r.Addresses] = owner{key, r.Zone, KindRelay, r.Name}
		label := []string{"relay " + r.Name}
		if r.FQDN != "" {
			label = append(label, r.FQDN)
		}
		label = append(label, "relay ports "+r.RelayPorts.String())
		addNode(Node{Key: key, Kind: KindRelay, Name: r.Name, Zone: r.Zone, Label: label})
	}
	// Sets that only rules use get a node of their own; their zone is the
	// one every rule using them agrees on.
	setZones := map[string]map[string]bool{}
	noteZone := func(set, zone string) {
		if setZones[set] == nil {
			setZones[set] = map[string]bool{}
		}
		setZones[set][zone] = true
	}
	for _, r := range p.Rules {
		noteZone(r.Src, r.FromZone)
		noteZone(r.Dst, r.ToZone)
	}
	nodeFor := func(set string) string {
		if o, ok := owners[set]; ok {
			if o.kind == KindSTUN {
				addNode(Node{Key: o.key, Kind: KindSTUN, Name: o.name, Zone: o.zone, Label: stunLabel(p, set)})
			}
			return o.key
		}
		key := "set:" + set
		zone := ""
		if zs := setZones[set]; len(zs) == 1 {
			for z := range zs {
				zone = z
			}
		}
		addNode(Node{Key: key, Kind: KindSet, Name: set, Zone: zone, Label: setLabel(p, set)})
		return key
	}
	edges := map[string]*Edge{}
	for _, r := range p.Rules {
		e := Edge{From: nodeFor(r.Src), To: nodeFor(r.Dst), Purpose: r.Purpose, Action: r.Action,
			Return: r.Purpose == ir.PurposeRelayReturn}
		if r.Purpose == ir.PurposeCustom || r.Purpose == "" || r.Origin.Kind == "rule" {
			e.Rule = r.Name
		}
		k := e.Key()
		if edges[k] == nil {
			edges[k] = &e
		}
		edges[k].Rules = append(edges[k].Rules, r.Name)
		if svc := p.Service(r.Service); svc != nil {
			for _, se := range svc.Entries {
				edges[k].Services = appendUnique(edges[k].Services, ServiceText(r.Purpose, se))
			}
		}
	}

	// Order: zones as the program lists them, nodes by kind then name
	// inside a zone, unzoned nodes last; edges by their ends' order.
	zoneIndex := map[string]int{}
	for i, z := range p.Zones {
		zoneIndex[z.Name] = i
		g.Zones = append(g.Zones, Zone{Name: z.Name, Interfaces: z.Interfaces})
	}
	var all []*Node
	for _, n := range nodes {
		if _, ok := zoneIndex[n.Zone]; !ok {
			n.Zone = ""
		}
		all = append(all, n)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		za, zb := zoneRank(zoneIndex, a.Zone), zoneRank(zoneIndex, b.Zone)
		if za != zb {
			return za < zb
		}
		if kindOrder[a.Kind] != kindOrder[b.Kind] {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Key < b.Key
	})
	for _, n := range all {
		g.byKey[n.Key] = len(g.Nodes)
		g.Nodes = append(g.Nodes, *n)
		if n.Zone != "" {
			z := &g.Zones[zoneIndex[n.Zone]]
			z.Nodes = append(z.Nodes, n.Key)
		}
	}
	for _, e := range edges {
		sort.Strings(e.Services)
		sort.Strings(e.Rules)
		g.Edges = append(g.Edges, *e)
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if g.byKey[a.From] != g.byKey[b.From] {
			return g.byKey[a.From] < g.byKey[b.From]
		}
		if g.byKey[a.To] != g.byKey[b.To] {
			return g.byKey[a.To] < g.byKey[b.To]
		}
		return a.Key() < b.Key()
	})
	return g
}

func zoneRank(idx map[string]int, z string) int {
	if i, ok := idx[z]; ok {
		return i
	}
	return len(idx)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func prefixes(p *ir.Program, set string) int {
	s := p.AddressSet(set)
	if s == nil {
		return 0
	}
	return len(s.V4) + len(s.V6)
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// stunLabel names public STUN servers by FQDN, and counts literal addresses.
func stunLabel(p *ir.Program, set string) []string {
	label := []string{"public STUN"}
	s := p.AddressSet(set)
	if s == nil {
		return label
	}
	label = append(label, s.FQDNs...)
	if n := len(s.V4) + len(s.V6); n > 0 {
		label = append(label, count(n, "literal address"))
	}
	return label
}

// setLabel shows an explicit rule's address set: its name and up to three of
// its members.
func setLabel(p *ir.Program, set string) []string {
	label := []string{set}
	s := p.AddressSet(set)
	if s == nil {
		return label
	}
	var members []string
	for _, pf := range append(append([]netip.Prefix{}, s.V4...), s.V6...) {
		members = append(members, pf.String())
	}
	members = append(members, s.FQDNs...)
	const shown = 3
	if len(members) > shown {
		label = append(label, members[:shown]...)
		return append(label, fmt.Sprintf("and %d more", len(members)-shown))
	}
	return append(label, members...)
}

// ServiceText renders one service entry for an edge of the given purpose:
// "UDP 3478", "TCP 443 (TLS fallback)" for signalling, "UDP 49152-65535",
// "UDP from 49152-65535 to 1024-65535" (source ports first).
func ServiceText(purpose ir.Purpose, e ir.ServiceEntry) string {
	proto := strings.ToUpper(string(e.Proto))
	ports := portsText(e.Ports)
	var s string
	if len(e.SrcPorts) > 0 {
		s = proto + " from " + portsText(e.SrcPorts) + " to " + ports
	} else {
		s = proto + " " + ports
	}
	if purpose == ir.PurposeSignalling && e.Proto == ir.TCP {
		s += " (TLS fallback)"
	}
	return s
}

func portsText(ranges []ir.PortRange) string {
	if len(ranges) == 0 {
		return "any port"
	}
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}
