package diag

// Codes of the semantic checks (TW1xx) and of the lints for the deployment traps
// the field guide describes (TW2xx). Codes are stable: never renumber or reuse one.
const (
	DuplicateName     Code = "TW101"
	UnknownReference  Code = "TW102"
	InvalidAddress    Code = "TW103"
	HostBitsSet       Code = "TW104"
	InvalidPort       Code = "TW105"
	InvertedRange     Code = "TW106"
	FamilyMismatch    Code = "TW107"
	EmptySet          Code = "TW108"
	AgentOverlap      Code = "TW109"
	UnportableName    Code = "TW110"
	InvalidValue      Code = "TW111"
	MissingValue      Code = "TW112"
	ReferenceCycle    Code = "TW113"
	RangesFile        Code = "TW114"
	UnsafeText        Code = "TW115"
	NoPolicyBlock     Code = "TW116"
	WrongKind         Code = "TW117"
	FileOutsidePolicy Code = "TW118"
	ResourceLimit     Code = "TW119"
	UDPBlocked        Code = "TW201"
	NoTCP443Fallback  Code = "TW202"
	LowICEPriority    Code = "TW203"
	RealmMismatch     Code = "TW204"
	TLSCertificate    Code = "TW205"
	RelayPortRange    Code = "TW206"
	OneWayAudio       Code = "TW207"
	STUNLiteralIP     Code = "TW208"
	SIPForWebRTC      Code = "TW209"
	WideProviderRange Code = "TW210"
	ShadowedRule      Code = "TW211"
	BroadPeers        Code = "TW212"
	TargetConstraint  Code = "TW213"
	DefaultAllow      Code = "TW214"
	// QoS lints (the qos block).
	QoSTCP443ByPort Code = "TW215"
	QoSNotAllowed   Code = "TW216"
	QoSOverlap      Code = "TW217"
)

// CodeInfo documents one code.
type CodeInfo struct {
	Code    Code
	Name    string // short slug, stable like the code
	Explain string // what it means and what to do
}

// Catalogue lists every code in order; the README's table is generated from it.
var Catalogue = []CodeInfo{
	{DuplicateName, "duplicate-name", "Two blocks of the same type share a name. Rename one; names must be unique per block type across all files of the policy."},
	{UnknownReference, "unknown-reference", "A reference names a block that is not declared. Declare it or fix the name (a suggestion is given when one is close)."},
	{InvalidAddress, "invalid-address", "An address is not an IP, a CIDR prefix, or an `a-b` range of two addresses. Fix the entry."},
	{HostBitsSet, "host-bits-set", "A prefix has host bits set (10.20.1.5/16). It is normalised to the network (10.20.0.0/16); write it that way to say what you mean."},
	{InvalidPort, "invalid-port", "A port is not a whole number in 1-65535. Fix the entry."},
	{InvertedRange, "inverted-range", "A range's start is above its end (`5000-4000`, `10.0.0.9-10.0.0.1`). Swap the ends."},
	{FamilyMismatch, "family-mismatch", "An IPv4 and an IPv6 address are mixed where one family is required (the two ends of a range). Split the entry per family."},
	{EmptySet, "empty-set", "A set of addresses or ports is empty, so the rules built from it match nothing. Add entries or remove the block."},
	{AgentOverlap, "agent-overlap", "Agent subnets overlap a provider's or relay's addresses: rules would treat the same hosts as both agents and platform. Fix the ranges."},
	{UnportableName, "unportable-name", "A block name cannot be carried by every target (PAN-OS, FortiOS, ASA, nftables limits on length, characters and reserved words). Use 1-31 letters, digits, `-` or `_`, starting with a letter, and not a reserved word."},
	{InvalidValue, "invalid-value", "An attribute has a value outside what it accepts. The detail lists the accepted values."},
	{MissingValue, "missing-value", "A required attribute or block is missing, or a variable has no value. Add it."},
	{ReferenceCycle, "reference-cycle", "Blocks, locals or variables refer to each other in a cycle, so none can be evaluated. Break the cycle."},
	{RangesFile, "ranges-file", "An entry of a file read by ranges_file() is invalid, or the file cannot be read or parsed. Fix the named entry."},
	{UnsafeText, "unsafe-text", "A description or other free text contains a control character (newline, tab, escape). Generated rule sets must never gain a line from user text: remove it."},
	{NoPolicyBlock, "no-policy-block", "A policy needs exactly one `policy` block naming it."},
	{WrongKind, "wrong-kind", "A reference names a block of the wrong type (a zone where agents are expected, for example)."},
	{FileOutsidePolicy, "file-outside-policy", "A file the policy loads or names (a policy file, ranges_file(), tls_cert) is outside the policy's directory, is a symbolic link leading out of it, or is not a regular file (a FIFO, a device). turnwall reads only regular files inside the policy directory, so an untrusted policy cannot read the machine's secrets. Move the file into the policy directory."},
	{ResourceLimit, "resource-limit", "The policy exceeds a limit that keeps turnwall's time and memory bounded on untrusted input: a file too large, nesting too deep, or a value or computation too large (see \"Untrusted policies\" in the README). Simplify the policy."},
	{UDPBlocked, "udp-blocked", "An agents group has no UDP path for media, STUN or TURN to any provider or relay. WebRTC then falls back to TCP/TLS at best; with no fallback agents hear silence or hang on \"Connecting\". Allow the provider's UDP media/STUN/TURN ports or a relay's UDP listener."},
	{NoTCP443Fallback, "no-tcp-443-fallback", "An agents group cannot reach any provider or relay on TCP 443. When UDP is dropped or throttled, ICE has no TURN/TLS fallback and calls fail (ice:connection-state failed). Set `https = true` on the provider or add a relay TLS listener on 443."},
	{LowICEPriority, "low-ice-priority", "`ice_check_priority` is low for every agent: every call is forced through the relay even where direct UDP works, adding latency and load on the TURN servers. Raise it unless UDP was verified failing at this site."},
	{RealmMismatch, "realm-mismatch", "A relay's realm differs from the platform's tenant realm. TURN long-term authentication then fails with valid credentials. Make them identical."},
	{TLSCertificate, "tls-certificate", "A relay's TLS listener has no certificate, an unreadable one, a self-signed one, or a relative key path with no file in the policy directory (the relay would serve no TLS). Browsers refuse untrusted TURN/TLS certificates. Configure a CA-issued certificate, or mark the relay `lab_only = true`."},
	{RelayPortRange, "relay-port-range", "A relay's relay port range reaches below 1024 or outside 49152-65535 (RFC 8656 section 7.2). Use 49152-65535 or a subrange of it."},
	{OneWayAudio, "one-way-audio", "A relay in a zone other than its clients' has no rule letting its relay ports reach the agents. Media relayed towards an agent is dropped: the guide's one-way-audio case. Add the agents group to the relay's `peers`."},
	{STUNLiteralIP, "stun-literal-ip", "Public STUN (port 19302) is allowed to literal IP addresses. Google's STUN addresses change without notice: use `stun_fqdns` (stun.l.google.com) instead."},
	{SIPForWebRTC, "sip-for-webrtc", "SIP (5060/5061) is opened for an agents group marked WebRTC-only. Pure WebRTC agents signal over HTTPS/WSS and need no SIP. Remove the rule or set `webrtc_only = false`."},
	{WideProviderRange, "wide-provider-range", "A provider range is wider than /8 (IPv4) or /16 (IPv6), or any-any. That opens far more than the platform. Use the provider's published ranges."},
	{ShadowedRule, "shadowed-rule", "A rule can never match because earlier rules cover all it matches. Remove it, or narrow the earlier rule."},
	{BroadPeers, "broad-peers", "A relay's peers include a prefix wider than /8 (IPv4) or /16 (IPv6), or private addresses (RFC 1918, CGNAT, ULA) that are no agents or provider range of the policy. A TURN relay reaching them is an open proxy into the network (SSRF). Both relays refuse metadata, loopback and link-local addresses and the special-purpose ranges a broad prefix only covers; name the peers the relay serves instead."},
	{TargetConstraint, "target-constraint", "A target cannot carry what the policy says (an interface name longer than 15 bytes, zone names that differ only in case, more rules or zones than the target numbers, a value with spaces in a coturn file). The detail names the target. Fix the policy, or leave that target out."},
	{DefaultAllow, "default-allow", "default_action = \"allow\" makes every target add an allow-everything rule in the policy's scope: on a gateway or a vendor box that already has a rulebase it overrides what the box decides (DNS, CRM, web browsing) for the agents' zones. Use \"deny\", or set acknowledge_default_allow = true in the policy block to say this is meant."},
	{QoSTCP443ByPort, "qos-tcp-443-by-port", "A QoS class marks TCP 443 to any destination (or one wider than /8, /16 for IPv6). TCP 443 is also every agent's web browsing, so that prioritises browsing as much as the TURN/TLS fallback. Mark TCP 443 only towards the provider's or relay's addresses: name provider.NAME or relay.NAME in `flows`."},
	{QoSNotAllowed, "qos-not-allowed", "A QoS class names a block (or a purpose) for which the policy allows no flow, so the class marks nothing there. Name blocks whose flows the policy allows, or fix `purposes`."},
	{QoSOverlap, "qos-overlap", "A QoS class selects flows an earlier class already marks. A flow takes the first class that names it; narrow the purposes of one class."},
}
