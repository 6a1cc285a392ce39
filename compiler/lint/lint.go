// Package lint checks the IR for the traps that break real WebRTC deployments
// behind firewalls: silent or one-way audio, no TCP fallback, realm mismatches,
// untrusted TURN/TLS certificates and rules that can never match. Each finding
// has a stable code (see diag.Catalogue), a severity, and says what to do.
package lint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/peerfilter"
)

// LowICEPriority is the ice_check_priority below which the platform prefers
// relay candidates over direct paths for every agent.
const LowICEPriority = 50

// Run lints a program. root is the policy root the IR's source files are
// relative to, so that findings point at the policy files.
func Run(p *ir.Program, root string) hcl.Diagnostics {
	c := &checker{p: p, root: root, subset: map[[2]string]bool{}}
	c.mediaPaths()
	c.platforms()
	c.relays()
	c.stunLiterals()
	c.sipForWebRTC()
	c.wideRanges()
	c.broadPeers()
	c.shadowed()
	c.defaultAllow()
	c.qos()
	return c.diags
}

// defaultAllow: default_action = "allow" becomes an allow-everything rule in
// every target; on a box with a rulebase of its own it overrides what the
// box decides. An error unless the policy acknowledges it (TW214).
func (c *checker) defaultAllow() {
	if c.p.Policy.DefaultAction != ir.Allow || c.p.Policy.DefaultAllowAcknowledged {
		return
	}
	at := c.p.Policy.ActionSource
	if at.File == "" {
		at = c.p.Policy.Source
	}
	c.err(diag.DefaultAllow, at, "default_action = \"allow\" adds an allow-everything rule",
		"Every target then ends turnwall's rules with an allow-any rule for the policy's zones: nftables accepts what no rule denies, and on PAN-OS, FortiOS and ASA boxes that already hold a rulebase it overrides what the box decides (DNS, CRM, web browsing on the agent VLANs). Use default_action = \"deny\", or set acknowledge_default_allow = true in the policy block to say this is meant.")
}

type checker struct {
	p      *ir.Program
	root   string
	diags  hcl.Diagnostics
	subset map[[2]string]bool
}

func (c *checker) rng(s ir.Source) hcl.Range { return s.Range(c.root) }

func (c *checker) warn(code diag.Code, at ir.Source, summary, format string, args ...any) {
	c.diags = append(c.diags, diag.Warnf(code, c.rng(at), summary, format, args...))
}

func (c *checker) err(code diag.Code, at ir.Source, summary, format string, args ...any) {
	c.diags = append(c.diags, diag.Errorf(code, c.rng(at), summary, format, args...))
}

// allowsFrom returns the allow rules whose source overlaps the set.
func (c *checker) allowsFrom(set string) []*ir.Rule {
	src := c.p.AddressSet(set)
	var out []*ir.Rule
	for i := range c.p.Rules {
		r := &c.p.Rules[i]
		if r.Action != ir.Allow {
			continue
		}
		if r.Src == set || (src != nil && c.p.AddressSet(r.Src) != nil && c.p.AddressSet(r.Src).Overlaps(src)) {
			out = append(out, r)
		}
	}
	return out
}

func (c *checker) hasEntry(r *ir.Rule, match func(ir.ServiceEntry) bool) bool {
	svc := c.p.Service(r.Service)
	if svc == nil {
		return false
	}
	for _, e := range svc.Entries {
		if match(e) {
			return true
		}
	}
	return false
}

// mediaPaths: every agents group needs a UDP path for media/STUN/TURN (TW201)
// and a TCP 443 fallback (TW202). Without either the call cannot connect.
func (c *checker) mediaPaths() {
	if c.p.Policy.DefaultAction == ir.Allow {
		return // nothing is blocked by default
	}
	for _, g := range c.p.Agents {
		rules := c.allowsFrom(g.Addresses)
		var udp, tcp443, anyTCP bool
		for _, r := range rules {
			if !c.mediaPeer(r) {
				continue // a STUN server yields a candidate, never a media path
			}
			// An entry a deny rule takes away entirely is no path.
			live := func(match func(ir.ServiceEntry) bool) func(ir.ServiceEntry) bool {
				return func(e ir.ServiceEntry) bool { return match(e) && !c.deniedEntry(r, e) }
			}
			udp = udp || c.hasEntry(r, live(func(e ir.ServiceEntry) bool { return e.Proto == ir.UDP }))
			tcp443 = tcp443 || c.hasEntry(r, live(func(e ir.ServiceEntry) bool { return e.Proto == ir.TCP && ir.ContainsPort(e.Ports, 443) }))
			anyTCP = anyTCP || c.hasEntry(r, live(func(e ir.ServiceEntry) bool {
				return e.Proto == ir.TCP && (ir.ContainsPort(e.Ports, 443) || ir.ContainsPort(e.Ports, 3478) || ir.ContainsPort(e.Ports, 5349))
			}))
		}
		at := g.Origin.Source
		if !udp {
			if anyTCP {
				c.warn(diag.UDPBlocked, at, "No UDP media path for agents "+g.Name,
					"No rule lets agents %q send UDP to a provider or relay: media, STUN and TURN over UDP are all dropped. Calls can only fall back to TURN over TCP/TLS, with more latency and jitter. Allow the provider's UDP media and STUN/TURN ports (turn, media) or a relay's UDP listener.", g.Name)
			} else {
				c.err(diag.UDPBlocked, at, "No media path at all for agents "+g.Name,
					"No rule lets agents %q reach a provider or relay over UDP, nor over TCP 443/3478/5349. ICE finds no candidate pair: agents hear silence and calls hang on \"Connecting\". Allow the provider's UDP media and STUN/TURN ports, and TCP 443.", g.Name)
			}
		}
		if !tcp443 {
			c.warn(diag.NoTCP443Fallback, at, "No TCP 443 fallback for agents "+g.Name,
				"No rule lets agents %q reach a provider or relay on TCP 443. When UDP is dropped or throttled, ICE has no TURN/TLS fallback and the call fails (ice:connection-state failed). Set `https = true` on the provider, or give a relay a TLS listener on 443.", g.Name)
		}
	}
}

// mediaPeer reports whether a rule reaches something that can carry media: a
// provider's media or TURN addresses, a relay, or an explicit rule to literal
// addresses. Public STUN servers (purpose stun, or destinations given only by
// name) answer Binding requests and give server-reflexive candidates, but no
// media flows to them: a UDP rule to a STUN server is not a media path.
func (c *checker) mediaPeer(r *ir.Rule) bool {
	if r.Purpose == ir.PurposeSTUN {
		return false
	}
	dst := c.p.AddressSet(r.Dst)
	return dst != nil && len(dst.V4)+len(dst.V6) > 0
}

func (c *checker) platforms() {
	for _, pl := range c.p.Platforms {
		if pl.ICECheckPriority < LowICEPriority {
			c.warn(diag.LowICEPriority, pl.Origin.At("ice_check_priority"), "ice_check_priority forces every call through TURN",
				"ice_check_priority = %d (below %d) makes every agent prefer relay candidates, even where direct UDP works: more latency and more load on the TURN servers. Raise it unless UDP was verified failing at this site.", pl.ICECheckPriority, LowICEPriority)
		}
		if pl.TenantRealm == "" {
			continue
		}
		for _, r := range c.relaysFor(pl) {
			if r.Realm != "" && r.Realm != pl.TenantRealm {
				c.err(diag.RealmMismatch, pl.Origin.At("tenant_realm"), "Relay realm differs from the tenant realm",
					"Platform %q uses tenant realm %q but relay %q has realm %q (%s). TURN authentication fails with valid credentials when they differ; make them identical.",
					pl.Name, pl.TenantRealm, r.Name, r.Realm, r.Origin.At("realm"))
			}
		}
	}
}

// relaysFor returns the relays a platform sends agents to: the one its TURN
// server override names, or every relay when it names none of them.
func (c *checker) relaysFor(pl ir.Platform) []ir.Relay {
	if pl.TURNServerOverride != "" {
		for _, r := range c.p.Relays {
			if r.FQDN == pl.TURNServerOverride {
				return []ir.Relay{r}
			}
		}
	}
	return c.p.Relays
}

func (c *checker) relays() {
	for _, r := range c.p.Relays {
		if len(r.Listen.TLS) > 0 && !r.LabOnly {
			switch {
			case r.TLS.Cert == "":
				c.err(diag.TLSCertificate, r.Origin.At("listen.tls"), "TLS listener without a certificate",
					"Relay %q listens for TURN/TLS but has no tls_cert/tls_key. Configure a certificate from a CA browsers trust, or mark the relay lab_only = true.", r.Name)
			case r.TLS.CertError != "":
				c.warn(diag.TLSCertificate, r.Origin.At("tls_cert"), "TLS certificate could not be checked",
					"%s. turnwall checks that the relay's certificate is not self-signed; make the file readable where you compile, or check it yourself.", r.TLS.CertError)
			case r.TLS.SelfSigned:
				c.err(diag.TLSCertificate, r.Origin.At("tls_cert"), "Self-signed TURN/TLS certificate",
					"Relay %q uses a self-signed certificate. Browsers refuse it and TURN/TLS fails (\"Secure Connection Failed\"). Use a CA-issued certificate whose name matches %q, or mark the relay lab_only = true.", r.Name, r.FQDN)
			}
		}
		c.relativeKey(r)
		rp := r.RelayPorts
		switch {
		case rp.First < 1024:
			c.err(diag.RelayPortRange, r.Origin.At("relay_ports"), "Relay port range reaches privileged ports",
				"relay_ports %s reaches below 1024: the firewall would open privileged ports and RFC 8656 section 7.2 says relayed addresses SHOULD NOT use 0-1023. Use 49152-65535 or a subrange of it.", rp)
		case rp.First < 49152:
			c.warn(diag.RelayPortRange, r.Origin.At("relay_ports"), "Relay port range outside 49152-65535",
				"relay_ports %s reaches outside 49152-65535, the range RFC 8656 section 7.2 recommends for relayed addresses; the firewall opens more ports than needed. Use 49152-65535 or a subrange of it.", rp)
		}
		c.oneWayAudio(r)
	}
}

// oneWayAudio: a relay outside its clients' zone must be able to send relayed
// media back to them from its relay range, or agents hear nothing.
func (c *checker) oneWayAudio(r ir.Relay) {
	if c.p.Policy.DefaultAction == ir.Allow {
		return
	}
	for _, name := range r.Clients {
		g := c.agentGroup(name)
		if g == nil || g.Zone == r.Zone {
			continue
		}
		found := false
		for _, rule := range c.allowsFrom(r.Addresses) {
			dst := c.p.AddressSet(rule.Dst)
			agents := c.p.AddressSet(g.Addresses)
			if dst == nil || agents == nil || !dst.Overlaps(agents) {
				continue
			}
			if c.hasEntry(rule, func(e ir.ServiceEntry) bool {
				return e.Proto == ir.UDP && ir.ContainsPort(e.SrcPorts, r.RelayPorts.First) && ir.ContainsPort(e.SrcPorts, r.RelayPorts.Last)
			}) {
				found = true
				break
			}
		}
		if !found {
			c.warn(diag.OneWayAudio, r.Origin.Source, "Relayed media cannot reach agents "+name,
				"Relay %q is in zone %q and agents %q in zone %q, but no rule lets UDP from the relay's ports %s reach the agents. Media relayed towards them is dropped: one-way audio. Add agents.%s to the relay's peers.",
				r.Name, r.Zone, name, g.Zone, r.RelayPorts, name)
		}
	}
}

func (c *checker) agentGroup(name string) *ir.AgentGroup {
	for i := range c.p.Agents {
		if c.p.Agents[i].Name == name {
			return &c.p.Agents[i]
		}
	}
	return nil
}

func hasExactPort(ranges []ir.PortRange, port uint16) bool {
	for _, r := range ranges {
		if r.First == port && r.Last == port {
			return true
		}
	}
	return false
}

// stunLiterals: public STUN (19302) must be reached by name.
func (c *checker) stunLiterals() {
	for i := range c.p.Rules {
		r := &c.p.Rules[i]
		if r.Action != ir.Allow || !c.hasEntry(r, func(e ir.ServiceEntry) bool { return e.Proto == ir.UDP && hasExactPort(e.Ports, 19302) }) {
			continue
		}
		dst := c.p.AddressSet(r.Dst)
		if dst == nil || len(dst.V4)+len(dst.V6) == 0 {
			continue
		}
		at := r.Origin.Source
		if r.Purpose == ir.PurposeSTUN {
			at = r.Origin.At("stun_addresses")
		}
		c.warn(diag.STUNLiteralIP, at, "Public STUN pinned to literal addresses",
			"Rule %s allows UDP 19302 to literal addresses. Google's STUN servers change addresses without notice; allow them by name with stun_fqdns = [\"stun.l.google.com\"] instead.", r.Name)
	}
}

func (c *checker) sipForWebRTC() {
	for _, g := range c.p.Agents {
		if !g.WebRTCOnly {
			continue
		}
		for _, r := range c.allowsFrom(g.Addresses) {
			if r.Purpose != ir.PurposeSIP {
				continue
			}
			at := r.Origin.Source
			if r.Origin.Kind == "provider" {
				at = r.Origin.At("sip")
			}
			c.warn(diag.SIPForWebRTC, at, "SIP opened for WebRTC-only agents",
				"Rule %s opens SIP for agents %q, which are WebRTC-only: browser softphones signal over HTTPS/WSS and need no SIP. Remove it, or set webrtc_only = false on agents %q.", r.Name, g.Name, g.Name)
		}
	}
}

func (c *checker) wideRanges() {
	for i := range c.p.AddressSets {
		s := &c.p.AddressSets[i]
		if s.Origin.Kind != "provider" {
			continue
		}
		for pf := range s.Prefixes() {
			limit := 8
			if !pf.Addr().Is4() {
				limit = 16
			}
			if pf.Bits() == 0 {
				c.err(diag.WideProviderRange, s.Origin.At("ranges"), "Provider range is the whole address space",
					"Provider %q includes %s: every destination on the internet. Use the provider's published ranges.", s.Origin.Name, pf)
			} else if pf.Bits() < limit {
				c.warn(diag.WideProviderRange, s.Origin.At("ranges"), "Provider range wider than /"+fmt.Sprint(limit),
					"Provider %q includes %s, far more than a CCaaS platform publishes. Use the provider's published ranges.", s.Origin.Name, pf)
			}
		}
	}
	for i := range c.p.Rules {
		r := &c.p.Rules[i]
		src, dst := c.p.AddressSet(r.Src), c.p.AddressSet(r.Dst)
		if r.Action == ir.Allow && src != nil && dst != nil && hasDefault(src) && hasDefault(dst) {
			c.warn(diag.WideProviderRange, r.Origin.Source, "Rule allows any to any",
				"Rule %s allows every source to every destination. Name the agents and the provider's ranges instead.", r.Name)
		}
	}
}

// broadPeers: a relay whose peers are broad, or reach private networks the
// policy does not describe, is a proxy into them (SSRF through TURN).
func (c *checker) broadPeers() {
	var own *netipx.IPSet
	for _, r := range c.p.Relays {
		set := c.p.AddressSet(r.Peers)
		if set == nil {
			continue
		}
		at := r.Origin.At("peers")
		for pf := range set.Prefixes() {
			limit := 8
			if !pf.Addr().Is4() {
				limit = 16
			}
			if pf.Bits() < limit {
				c.warn(diag.BroadPeers, at, "Relay peers wider than /"+fmt.Sprint(limit),
					"Relay %q may relay to %s: a TURN relay that reaches that much is an open proxy. Metadata, loopback and link-local addresses and the special-purpose ranges it only covers stay refused; name the agents and providers the relay serves instead.", r.Name, pf)
				break
			}
		}
		if own == nil {
			own = peerfilter.OwnRanges(c.p)
		}
		var b netipx.IPSetBuilder
		for _, cl := range peerfilter.Classes {
			if cl.Reason == peerfilter.Private || cl.Reason == peerfilter.CGNAT || cl.Reason == peerfilter.ULA {
				b.AddPrefix(cl.Prefix)
			}
		}
		b.Intersect(peerfilter.Effective(set.IPSet(), own))
		b.RemoveSet(own)
		if private, _ := b.IPSet(); len(private.Prefixes()) > 0 {
			c.warn(diag.BroadPeers, at, "Relay peers reach private networks",
				"Relay %q may relay to %s, private addresses that are no agents or provider range of the policy: anyone with relay credentials reaches them. Name only the agents and providers the relay serves.", r.Name, private.Prefixes()[0])
		}
	}
}

// relativeKey: a relative tls_key is written to coturn's configuration
// resolved against the policy directory; when no file is there, the relay
// will not find it either and serves no TLS (coturn only warns).
func (c *checker) relativeKey(r ir.Relay) {
	key := r.TLS.Key
	if len(r.Listen.TLS) == 0 || key == "" || filepath.IsAbs(key) || c.root == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(key))); errors.Is(err, fs.ErrNotExist) {
		c.warn(diag.TLSCertificate, r.Origin.At("tls_key"), "TLS key not found",
			"Relay %q: tls_key %q is relative to the policy directory, and no file is there. The relay would start without TLS. Give the key's absolute path on the relay host, or put the file there (coturn: --param coturn.cert-dir=DIR).", r.Name, key)
	}
}
