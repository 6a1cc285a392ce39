// Package ir is turnwall's target-independent intermediate representation: named
// address sets (IPv4 and IPv6 apart, aggregated to a minimal prefix cover), named
// service sets, and an ordered list of stateful rules. Backends see only this.
//
// A Program is plain data. Build one with the lower package (or by hand in tests),
// call Index once, then use Allows to ask what the policy does with a packet.
package ir

import (
	"fmt"
	"iter"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"go4.org/netipx"
)

// Version is the IR schema version written into JSON output.
const Version = 1

// Action is what a rule or the default does with a new connection.
type Action string

// Actions. Allow accepts the first packet and, statefully, its replies.
const (
	Allow Action = "allow"
	Deny  Action = "deny"
)

// Proto is a transport protocol carried by a service entry.
type Proto string

// Protocols turnwall rules match. TLS is TCP on the wire and never appears here.
const (
	UDP Proto = "udp"
	TCP Proto = "tcp"
)

// Purpose says why a rule exists; backends use it for naming and for special
// handling (for example a TLS-inspection exemption for TURN/TLS rules).
type Purpose string

// Purposes of generated and explicit rules.
const (
	PurposeSignalling  Purpose = "signalling"   // TCP 443: HTTPS/WSS and TURN/TLS fallback
	PurposeSTUNTURN    Purpose = "stun-turn"    // STUN/TURN ports at a provider
	PurposeMedia       Purpose = "media"        // provider media port range
	PurposeSTUN        Purpose = "stun"         // public STUN by FQDN or address
	PurposeSIP         Purpose = "sip"          // SIP signalling
	PurposeTURN        Purpose = "turn"         // agents to a relay's listeners
	PurposeTURNTLS     Purpose = "turn-tls"     // agents to a relay's TLS listeners
	PurposeRelayMedia  Purpose = "relay-media"  // relay's allocations to and from its peers
	PurposeRelayReturn Purpose = "relay-return" // relay's allocations back to agents (one-way audio fix)
	PurposeCustom      Purpose = "custom"       // an explicit rule block
)

// Source is where in the policy a piece of IR came from. File is relative to the
// policy root so that output does not depend on where the policy is checked out.
type Source struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	// Byte offsets of the start and end, for diagnostics with source snippets.
	Byte    int `json:"-"`
	EndByte int `json:"-"`
	EndLine int `json:"-"`
	EndCol  int `json:"-"`
}

// Range is the source as an HCL range for diagnostics, its file joined to
// root, the policy root the source is relative to.
func (s Source) Range(root string) hcl.Range {
	return hcl.Range{
		Filename: filepath.Join(root, filepath.FromSlash(s.File)),
		Start:    hcl.Pos{Line: s.Line, Column: s.Col, Byte: s.Byte},
		End:      hcl.Pos{Line: s.EndLine, Column: s.EndCol, Byte: s.EndByte},
	}
}

// String renders the source as file:line, the form used in rule comments.
func (s Source) String() string {
	if s.File == "" {
		return "generated"
	}
	return s.File + ":" + strconv.Itoa(s.Line)
}

// Origin names the policy block that produced an IR object.
type Origin struct {
	Kind   string `json:"kind"` // block type: agents, provider, relay, rule, ...
	Name   string `json:"name"` // block label
	Source Source `json:"source"`
	// Attrs locates the block's attributes ("ice_check_priority", "listen.tls")
	// so that lints can point at the attribute rather than the block.
	Attrs map[string]Source `json:"-"`
}

// At returns the source of an attribute, or of the block when it is absent.
func (o Origin) At(attr string) Source {
	if s, ok := o.Attrs[attr]; ok {
		return s
	}
	return o.Source
}

// String renders the origin as `kind "name" (file:line)`.
func (o Origin) String() string {
	return fmt.Sprintf("%s %q (%s)", o.Kind, o.Name, o.Source)
}

// PortRange is an inclusive range of ports; First == Last is a single port.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// AnyPort covers every port.
var AnyPort = PortRange{First: 0, Last: 65535}

// String renders "443" or "16384-65535".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// Contains reports whether port lies in r.
func (r PortRange) Contains(port uint16) bool { return port >= r.First && port <= r.Last }

// Program is the whole compiled policy.
type Program struct {
	Policy      Policy       `json:"policy"`
	Zones       []Zone       `json:"zones"`
	AddressSets []AddressSet `json:"address_sets"`
	Services    []ServiceSet `json:"services"`
	Rules       []Rule       `json:"rules"`
	Agents      []AgentGroup `json:"agents"`
	Providers   []Provider   `json:"providers"`
	Relays      []Relay      `json:"relays"`
	Platforms   []Platform   `json:"platforms"`
	// Devices are the policy's `device "TARGET"` blocks: each target's
	// parameters for a box that already holds a configuration.
	Devices []Device `json:"devices,omitempty"`

	// Root is the policy root directory, absolute when the compiler set it:
	// Source files and relative paths in the policy (tls_cert, tls_key) are
	// relative to it. It is where the policy was compiled, not part of the
	// IR's output.
	Root string `json:"-"`
	// QoS holds the policy's traffic classes (qos.go); nil without a qos block.
	QoS []QoSClass `json:"qos,omitempty"`

	addrIndex map[string]*AddressSet
	svcIndex  map[string]*ServiceSet
	ruleIndex map[string]int // qos.go: Rule
}

// Policy holds the policy-wide settings.
type Policy struct {
	Name          string `json:"name"`
	Description   string `json:"description,omitempty"`
	DefaultAction Action `json:"default_action"`
	LogDefault    bool   `json:"log_default"`
	Source        Source `json:"source"`
	// DefaultAllowAcknowledged is acknowledge_default_allow (see TW214).
	DefaultAllowAcknowledged bool `json:"default_allow_acknowledged,omitempty"`
	// ActionSource locates default_action.
	ActionSource Source `json:"-"`
}

// Zone is a named group of gateway interfaces.
type Zone struct {
	Name       string   `json:"name"`
	Interfaces []string `json:"interfaces"`
	Source     Source   `json:"source"`
}

// AddressSet is a named set of destinations or sources. V4 and V6 are the exact
// minimal prefix cover of the addresses the policy gave, sorted. FQDNs are names a
// target resolves itself (for example public STUN servers).
type AddressSet struct {
	Name   string         `json:"name"`
	Origin Origin         `json:"origin"`
	V4     []netip.Prefix `json:"v4,omitempty"`
	V6     []netip.Prefix `json:"v6,omitempty"`
	FQDNs  []string       `json:"fqdns,omitempty"`

	set *netipx.IPSet
	// lazy builds set on first use after Index (addrset.go).
	lazy *lazySet
	// setOf identifies the V4 and V6 slices set, lazy and cover were made
	// from (SetIPSet, SetPrefixes): they hold while the set still has them.
	setOf [2]prefixesID
	// cover: V4 and V6 are a sorted minimal cover (SetIPSet, SetPrefixes).
	cover bool
}

// prefixesID identifies a slice of prefixes by its array and length.
type prefixesID struct {
	first *netip.Prefix
	n     int
}

func idOf(ps []netip.Prefix) prefixesID {
	if len(ps) == 0 {
		return prefixesID{}
	}
	return prefixesID{&ps[0], len(ps)}
}

// SetIPSet makes s hold exactly the addresses of set: V4 and V6 become its
// minimal prefix cover, sorted, and IPSet (and Index, while V4 and V6 are
// not replaced) returns set rather than building it again.
func (s *AddressSet) SetIPSet(set *netipx.IPSet) {
	ranges := set.Ranges()
	all := make([]netip.Prefix, 0, len(ranges)) // a range is one prefix or more
	for _, r := range ranges {
		all = r.AppendPrefixes(all)
	}
	s.setCover(all) // IPv4 sorts before IPv6 in the ranges too
	s.set = set
}

// Prefixes yields the set's IPv4 prefixes, then its IPv6 ones, without
// copying them into one slice.
func (s *AddressSet) Prefixes() iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		for _, list := range [2][]netip.Prefix{s.V4, s.V6} {
			for _, pf := range list {
				if !yield(pf) {
					return
				}
			}
		}
	}
}

// Empty reports whether the set matches nothing at all.
func (s *AddressSet) Empty() bool { return len(s.V4) == 0 && len(s.V6) == 0 && len(s.FQDNs) == 0 }

// IPSet returns the set's addresses as an immutable netipx.IPSet. After
// Index it is built at most once, whichever goroutine asks first.
func (s *AddressSet) IPSet() *netipx.IPSet {
	if s.set != nil {
		return s.set
	}
	if s.lazy != nil {
		return s.lazy.get()
	}
	if id := [2]prefixesID{idOf(s.V4), idOf(s.V6)}; id != s.setOf {
		s.setOf, s.cover = id, false
	}
	s.set = buildIPSet(s.V4, s.V6)
	return s.set
}

// ServiceSet is a named set of protocol/port entries, at most one entry per
// protocol and source-port list, with merged, sorted port ranges.
type ServiceSet struct {
	Name    string         `json:"name"`
	Entries []ServiceEntry `json:"entries"`
}

// ServiceEntry matches one protocol. Empty Ports or SrcPorts match any port.
type ServiceEntry struct {
	Proto    Proto       `json:"proto"`
	Ports    []PortRange `json:"ports,omitempty"`
	SrcPorts []PortRange `json:"src_ports,omitempty"`
}

// Rule is one stateful rule: a new connection from FromZone/Src to ToZone/Dst that
// matches Service gets Action. An empty zone matches every zone.
type Rule struct {
	Name     string  `json:"name"`
	Purpose  Purpose `json:"purpose"`
	Action   Action  `json:"action"`
	FromZone string  `json:"from_zone,omitempty"`
	ToZone   string  `json:"to_zone,omitempty"`
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	Service  string  `json:"service"`
	Log      bool    `json:"log"`
	Comment  string  `json:"comment"`
	Origin   Origin  `json:"origin"`
}

// AgentGroup is a group of agent subnets.
type AgentGroup struct {
	Name       string `json:"name"`
	Zone       string `json:"zone"`
	Addresses  string `json:"addresses"` // address set name
	WebRTCOnly bool   `json:"webrtc_only"`
	Origin     Origin `json:"origin"`
}

// Provider is a CCaaS platform's networks.
type Provider struct {
	Name      string `json:"name"`
	Zone      string `json:"zone"`
	Addresses string `json:"addresses,omitempty"` // address set of its ranges
	STUN      string `json:"stun,omitempty"`      // address set of its STUN servers
	Origin    Origin `json:"origin"`
}

// Relay is a TURN relay the policy describes; backends emit its configuration
// (coturn, the bundled relay) from this.
type Relay struct {
	Name       string    `json:"name"`
	Zone       string    `json:"zone"`
	Addresses  string    `json:"addresses"` // address set name
	FQDN       string    `json:"fqdn,omitempty"`
	Realm      string    `json:"realm"`
	RelayPorts PortRange `json:"relay_ports"`
	Listen     Listen    `json:"listen"`
	TLS        TLS       `json:"tls"`
	Peers      string    `json:"peers,omitempty"` // address set of permitted peers
	Clients    []string  `json:"clients"`         // agents groups served
	TCPRelay   bool      `json:"tcp_relay"`
	LabOnly    bool      `json:"lab_only"`
	Origin     Origin    `json:"origin"`
	// Store is the pool's shared credential store URL (no password).
	Store string `json:"store,omitempty"`
	// Alternates are the pool's other nodes (ADDRESS:PORT) for 300 Try
	// Alternate.
	Alternates []netip.AddrPort `json:"alternates,omitempty"`
}

// Listen holds a relay's listener ports per transport.
type Listen struct {
	UDP []uint16 `json:"udp,omitempty"`
	TCP []uint16 `json:"tcp,omitempty"`
	TLS []uint16 `json:"tls,omitempty"`
}

// TLS describes a relay's certificate as the compiler found it.
type TLS struct {
	Cert       string `json:"cert,omitempty"`
	Key        string `json:"key,omitempty"`
	SelfSigned bool   `json:"self_signed,omitempty"`
	CertError  string `json:"cert_error,omitempty"` // why the certificate could not be checked
}

// Device is a `device "TARGET"` block: settings under the target's
// parameter names (with "_" for "-"), which --param TARGET.NAME overrides.
type Device struct {
	Target   string            `json:"target"`
	Settings map[string]string `json:"settings"`
	Origin   Origin            `json:"origin"`
}

// Device returns the device block of target, or nil.
func (p *Program) Device(target string) *Device {
	for i := range p.Devices {
		if p.Devices[i].Target == target {
			return &p.Devices[i]
		}
	}
	return nil
}

// Platform holds a CCaaS platform's WebRTC settings.
type Platform struct {
	Name               string `json:"name"`
	UseTURN            bool   `json:"use_turn"`
	PreferredTransport string `json:"preferred_transport"`
	ICECheckPriority   int    `json:"ice_check_priority"`
	TCPFallback        bool   `json:"tcp_fallback"`
	TURNServerOverride string `json:"turn_server_override,omitempty"`
	TenantRealm        string `json:"tenant_realm,omitempty"`
	Origin             Origin `json:"origin"`
}

// Index builds the lookup tables used by AddressSet and Service and readies
// every set's IPSet (built on first use). Whoever builds or changes a program calls it once, before the
// program is shared: afterwards the program is only read, and any number of
// goroutines (backends emitting in parallel, for example) may use it. It
// must not run while others read the program; it is idempotent.
func (p *Program) Index() {
	p.addrIndex = make(map[string]*AddressSet, len(p.AddressSets))
	for i := range p.AddressSets {
		s := &p.AddressSets[i]
		p.addrIndex[s.Name] = s
		if s.setOf != [2]prefixesID{idOf(s.V4), idOf(s.V6)} {
			s.set, s.lazy, s.cover = nil, nil, false
		}
		if s.set == nil && s.lazy == nil {
			// Built when first asked for: a big set nobody asks about as
			// an IPSet (the emitters, the checks that use the set's own
			// Contains and Overlaps) never builds one.
			s.lazy = &lazySet{v4: s.V4, v6: s.V6}
			s.setOf = [2]prefixesID{idOf(s.V4), idOf(s.V6)}
		}
	}
	p.svcIndex = make(map[string]*ServiceSet, len(p.Services))
	for i := range p.Services {
		p.svcIndex[p.Services[i].Name] = &p.Services[i]
	}
	p.ruleIndex = make(map[string]int, len(p.Rules))
	for i := len(p.Rules) - 1; i >= 0; i-- {
		p.ruleIndex[p.Rules[i].Name] = i
	}
}

// AddressSet returns the named set, or nil. A program that was never indexed
// is indexed on first use (single-goroutine use only, as in tests).
func (p *Program) AddressSet(name string) *AddressSet {
	if p.addrIndex == nil {
		p.Index()
	}
	return p.addrIndex[name]
}

// Service returns the named service set, or nil.
func (p *Program) Service(name string) *ServiceSet {
	if p.svcIndex == nil {
		p.Index()
	}
	return p.svcIndex[name]
}

// Path resolves a path the policy gives (a certificate, a key) against the
// policy root: absolute paths are kept, relative ones are joined to Root.
// It returns "" for a relative path when the program has no root.
func (p *Program) Path(path string) string {
	switch {
	case path == "" || filepath.IsAbs(path):
		return path
	case p.Root == "":
		return ""
	}
	return filepath.Join(p.Root, path)
}

// LookupAddressSet returns the named set, or an error saying it is not in the
// program (a program built by hand or edited after lowering).
func (p *Program) LookupAddressSet(name string) (*AddressSet, error) {
	if s := p.AddressSet(name); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("address set %q is not in the program", name)
}

// RelayAddrs returns a relay's own addresses, IPv4 first. A relay's address
// set holds single addresses; a network or an empty set is an error (the
// caller names the relay).
func (p *Program) RelayAddrs(r *Relay) ([]netip.Addr, error) {
	set, err := p.LookupAddressSet(r.Addresses)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for pf := range set.Prefixes() {
		if !pf.IsSingleIP() {
			return nil, fmt.Errorf("address %s is a network; give the relay's own addresses", pf)
		}
		out = append(out, pf.Addr())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address")
	}
	return out, nil
}

// RuleSets are the sets one rule refers to.
type RuleSets struct {
	Src, Dst *AddressSet
	Service  *ServiceSet
}

// CanMatch reports whether any packet can match the rule: both address sets
// and the service hold something. A rule that cannot match is one every
// target may leave out or disable.
func (s RuleSets) CanMatch() bool {
	return !s.Src.Empty() && !s.Dst.Empty() && len(s.Service.Entries) > 0
}

// RuleSets returns the sets rule r refers to, or an error naming the rule,
// its policy location and the set that is not in the program. Every target
// resolves a rule's sets with it.
func (p *Program) RuleSets(r *Rule) (RuleSets, error) {
	var s RuleSets
	var err error
	if s.Src, err = p.LookupAddressSet(r.Src); err == nil {
		s.Dst, err = p.LookupAddressSet(r.Dst)
	}
	if err == nil {
		if s.Service = p.Service(r.Service); s.Service == nil {
			err = fmt.Errorf("service set %q is not in the program", r.Service)
		}
	}
	if err != nil {
		return RuleSets{}, fmt.Errorf("rule %q (%s): %w", r.Name, r.Origin.Source, err)
	}
	return s, nil
}

// AgentICE is what the platform blocks let agents' browsers use, the one
// reading every consumer shares (verify's lab, the readiness page): TURN
// servers only when no platform sets use_turn = false, TURN over TCP or TLS
// only when none sets tcp_fallback = false, and the first
// turn_server_override ("" for none). Without a platform block agents get
// every server.
type AgentICE struct {
	UseTURN     bool
	TCPFallback bool
	Override    string
}

// AgentICE returns the platforms' combined WebRTC settings.
func (p *Program) AgentICE() AgentICE {
	a := AgentICE{UseTURN: true, TCPFallback: true}
	for _, pl := range p.Platforms {
		a.UseTURN = a.UseTURN && pl.UseTURN
		a.TCPFallback = a.TCPFallback && pl.TCPFallback
		if a.Override == "" {
			a.Override = pl.TURNServerOverride
		}
	}
	return a
}
