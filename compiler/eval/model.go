// Package eval evaluates a loaded policy: it resolves variables, locals and
// references between blocks in dependency order, calls functions, and decodes
// the values into typed, checked structures with source ranges for every entry.
package eval

import (
	"net/netip"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler/ir"
)

// Policy is an evaluated policy. Lists keep declaration order (files in name
// order, blocks in file order).
type Policy struct {
	Name          string
	Description   string
	DefaultAction ir.Action
	LogDefault    bool
	DeclRange     hcl.Range
	// ActionRange locates default_action (the policy block when absent).
	ActionRange hcl.Range
	// AckDefaultAllow is acknowledge_default_allow: the reviewer knows
	// default_action = "allow" adds an allow-everything rule to every target.
	AckDefaultAllow bool
	Root            string

	Zones     []*Zone
	Agents    []*Agents
	Providers []*Provider
	Relays    []*Relay
	Platforms []*Platform
	Rules     []*Rule
	Devices   []*Device
	QoS       []*QoSClass // the qos block's classes, in declaration order
}

// Block is what every evaluated block has: its name and where it and its
// attributes were declared.
type Block struct {
	Name      string
	DeclRange hcl.Range
	// AttrRanges maps attribute names ("ice_check_priority", "listen.tls") to the
	// ranges of their expressions, for diagnostics that point at the attribute.
	AttrRanges map[string]hcl.Range
}

// Zone is a named group of gateway interfaces.
type Zone struct {
	Block
	Interfaces []string
}

// AddrEntry is one address entry as written, with its prefix cover. An
// attribute that is just a ranges_file call is one entry: the call, covering
// every prefix of the file.
type AddrEntry struct {
	Prefixes []netip.Prefix
	Range    hcl.Range
}

// PortEntry is one port or port range as written.
type PortEntry struct {
	Ports ir.PortRange
	Range hcl.Range
}

// Ports is a set of ports per transport. TLS ports are TCP on the wire.
type Ports struct {
	UDP, TCP, TLS []PortEntry
	Range         hcl.Range // the whole attribute; zero when absent
}

// Agents is a group of agent subnets.
type Agents struct {
	Block
	Zone        string
	Subnets     []AddrEntry
	Description string
	WebRTCOnly  bool
}

// Provider is a SaaS platform's networks and the flows agents need to them.
type Provider struct {
	Block
	Zone          string
	Ranges        []AddrEntry
	Description   string
	Agents        []string // agents groups served; all when the attribute is absent
	HTTPS         bool
	TURN          Ports
	Media         Ports
	SIP           Ports
	STUN          Ports // ports to the STUN FQDNs/addresses; UDP 19302 by default
	STUNFQDNs     []string
	STUNAddresses []AddrEntry
}

// Relay is a TURN relay.
type Relay struct {
	Block
	Zone        string
	Addresses   []AddrEntry
	FQDN        string
	Realm       string
	RelayPorts  ir.PortRange
	Description string
	Listen      Ports
	Clients     []string // agents groups; all when absent
	Peers       []Endpoint
	TCPRelay    bool
	LabOnly     bool
	TLSCert     string // as written, relative to the policy root
	TLSKey      string
	CertPath    string // resolved path
	// What reading the certificate found; CertError says why it could not be checked.
	CertSelfSigned bool
	CertError      string
	// Store is the fleet's credential store (redis:// or postgres://, never
	// with a password); Alternates are the other nodes of the pool, as
	// ADDRESS:PORT, for Try-Alternate.
	Store      string
	Alternates []netip.AddrPort
}

// Platform holds a CCaaS platform's WebRTC settings.
type Platform struct {
	Block
	UseTURN            bool
	PreferredTransport string
	ICECheckPriority   int
	TCPFallback        bool
	TURNServerOverride string
	TenantRealm        string
	Description        string
}

// Endpoint is one element of a from/to/peers list: a reference to a block
// (Kind and Name set) or literal addresses.
type Endpoint struct {
	Kind  string // agents, provider, relay; "" for a literal
	Name  string
	Addrs []AddrEntry
	Range hcl.Range
}

// Device is a `device "TARGET"` block: the target's parameters for a box
// that already holds a configuration, each a string (lists joined with ",",
// maps as "key=value" pairs sorted by key and joined with ",").
type Device struct {
	Block
	Target   string
	Settings map[string]string
}

// Rule is an explicit rule block.
type Rule struct {
	Block
	From, To         []Endpoint
	FromZone, ToZone string
	UDP, TCP         []PortEntry
	Action           ir.Action
	Log              bool
	Description      string
}
