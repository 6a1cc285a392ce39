package eval

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
	"github.com/turnwall/turnwall/compiler/load"
)

// elem is one element of a list attribute with the range it was written at.
type elem struct {
	val cty.Value
	rng hcl.Range
}

func (e *evaluator) decode() *Policy {
	cfg := e.cfg
	pol := &Policy{Root: cfg.Root, DefaultAction: ir.Deny}
	if len(cfg.Policies) == 0 {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No policy block",
			Detail:   "A policy needs one `policy \"NAME\" { ... }` block naming it.",
			Subject:  e.firstFileRange().Ptr(),
			Extra:    diag.Extra{Code: diag.NoPolicyBlock},
		})
	} else {
		b := cfg.Policies[0]
		pol.Name = b.Name
		pol.DeclRange = b.DeclRange
		pol.Description = e.text(b, "description")
		pol.ActionRange = b.DeclRange
		if s, rng, ok := e.str(b, "default_action"); ok {
			pol.DefaultAction = e.action(s, rng)
			pol.ActionRange = rng
		}
		pol.LogDefault = e.boolean(b, "log_default", false)
		pol.AckDefaultAllow = e.boolean(b, "acknowledge_default_allow", false)
	}
	for _, b := range e.declared(cfg.Zones) {
		z := &Zone{Block: e.block(b)}
		for _, el := range e.elems(b, "interface") {
			if s, ok := e.elemString(el, "interface name"); ok {
				if !interfaceName.MatchString(s) {
					e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "Invalid interface name",
						"%q is not an interface name: use 1-32 letters, digits and . _ / : -, starting with a letter or digit (vlan20, ethernet1/1, port3).", s))
					continue
				}
				z.Interfaces = append(z.Interfaces, s)
			}
		}
		if v, a, ok := e.val(b, "interface"); ok && v.CanIterateElements() && v.LengthInt() == 0 {
			e.diags = append(e.diags, diag.Errorf(diag.EmptySet, a.Expr.Range(), "Zone has no interface", "Zone %q needs at least one interface.", b.Name))
		}
		pol.Zones = append(pol.Zones, z)
	}
	for _, b := range e.declared(cfg.Agents) {
		a := &Agents{Block: e.block(b), Description: e.text(b, "description")}
		a.Zone = e.zoneRef(b, "zone")
		a.Subnets = e.addrs(b, "subnets")
		a.WebRTCOnly = e.boolean(b, "webrtc_only", true)
		pol.Agents = append(pol.Agents, a)
	}
	for _, b := range e.declared(cfg.Providers) {
		pol.Providers = append(pol.Providers, e.provider(b))
	}
	for _, b := range e.declared(cfg.Relays) {
		pol.Relays = append(pol.Relays, e.relay(b))
	}
	for _, b := range e.declared(cfg.Platforms) {
		pol.Platforms = append(pol.Platforms, e.platform(b))
	}
	for _, b := range cfg.Rules {
		pol.Rules = append(pol.Rules, e.rule(b))
	}
	seenDevice := map[string]*load.Block{}
	for _, b := range cfg.Devices {
		if prev := seenDevice[b.Name]; prev != nil {
			e.diags = append(e.diags, diag.Errorf(diag.DuplicateName, b.NameRange, "Duplicate device block",
				"A device block for target %q was already declared at %s:%d; merge them.", b.Name, prev.DeclRange.Filename, prev.DeclRange.Start.Line))
			continue
		}
		seenDevice[b.Name] = b
		pol.Devices = append(pol.Devices, e.device(b))
	}
	for _, b := range e.uniqueClasses(cfg.QoS) {
		pol.QoS = append(pol.QoS, e.qosClass(b))
	}
	return pol
}

// device decodes a device block: every attribute a string, a list of
// strings (joined with ",") or a map of strings (key=value, sorted, joined
// with ","). Values may not hold control characters, "," inside list items
// or "=" inside map keys: they could not be told apart from the joins.
func (e *evaluator) device(b *load.Block) *Device {
	d := &Device{Block: e.block(b), Target: b.Name, Settings: map[string]string{}}
	for _, a := range sortedAttrs(b.Attrs) {
		v, _, ok := e.val(b, a.Name)
		if !ok {
			continue
		}
		s, why := settingString(v)
		if why == "" {
			if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
				why = "it contains a control character"
			}
		}
		if why != "" {
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, a.Expr.Range(), "Invalid device setting",
				"%s: %s. A device setting is a string, number or bool, a list of them, or a map of them.", a.Name, why))
			continue
		}
		d.Settings[a.Name] = s
	}
	return d
}

func settingString(v cty.Value) (string, string) {
	prim := func(v cty.Value) (string, bool) {
		if v.IsNull() || !v.IsKnown() {
			return "", false
		}
		switch v.Type() {
		case cty.String:
			return v.AsString(), true
		case cty.Number:
			return v.AsBigFloat().Text('f', -1), true
		case cty.Bool:
			return strconv.FormatBool(v.True()), true
		}
		return "", false
	}
	if s, ok := prim(v); ok {
		return s, ""
	}
	t := v.Type()
	switch {
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			s, ok := prim(ev)
			if !ok || strings.Contains(s, ",") {
				return "", "list items must be strings, numbers or bools without \",\""
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), ""
	case t.IsMapType() || t.IsObjectType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			kv, ev := it.Element()
			s, ok := prim(ev)
			k := kv.AsString()
			if !ok || strings.ContainsAny(s, ",") || strings.ContainsAny(k, ",=") {
				return "", "map values must be strings, numbers or bools; keys and values without \",\" (and keys without \"=\")"
			}
			parts = append(parts, k+"="+s)
		}
		sort.Strings(parts)
		return strings.Join(parts, ","), ""
	}
	return "", "unsupported value"
}

var (
	interfaceName = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._/:-]{0,31}$`)
	hostName      = lazyre.New(`^(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*\.?$`)
)

// declared drops blocks that redeclare a name (already reported by load): they
// were never evaluated.
func (e *evaluator) declared(blocks []*load.Block) []*load.Block {
	out := make([]*load.Block, 0, len(blocks))
	for _, b := range blocks {
		if n, ok := e.byKey[b.Type+"."+b.Name]; ok && n.block == b {
			out = append(out, b)
		}
	}
	return out
}

func (e *evaluator) firstFileRange() hcl.Range {
	names := make([]string, 0, len(e.cfg.Files))
	for n, f := range e.cfg.Files {
		if f.Body != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return hcl.Range{}
	}
	return hcl.Range{Filename: names[0], Start: hcl.InitialPos, End: hcl.InitialPos}
}

func (e *evaluator) block(b *load.Block) Block {
	out := Block{Name: b.Name, DeclRange: b.DeclRange, AttrRanges: map[string]hcl.Range{}}
	for n, a := range b.Attrs {
		out.AttrRanges[n] = a.Expr.Range()
	}
	for _, nb := range b.Nested {
		out.AttrRanges[nb.Type] = nb.DeclRange
		for n, a := range nb.Attrs {
			out.AttrRanges[nb.Type+"."+n] = a.Expr.Range()
		}
	}
	return out
}

func (e *evaluator) provider(b *load.Block) *Provider {
	p := &Provider{Block: e.block(b), Description: e.text(b, "description")}
	p.Zone = e.zoneRef(b, "zone")
	p.Ranges = e.addrs(b, "ranges")
	p.Agents = e.refNames(b, "agents", load.TypeAgents)
	p.HTTPS = e.boolean(b, "https", false)
	p.TURN = e.ports(b, "turn", true)
	p.Media = e.ports(b, "media", false)
	p.SIP = e.ports(b, "sip", false)
	p.STUN = e.ports(b, "stun", false)
	for _, el := range e.elems(b, "stun_fqdns") {
		if s, ok := e.elemString(el, "FQDN"); ok {
			if !hostName.MatchString(s) {
				e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "Invalid FQDN", "%q is not a host name such as stun.l.google.com.", s))
				continue
			}
			p.STUNFQDNs = append(p.STUNFQDNs, strings.ToLower(strings.TrimSuffix(s, ".")))
		}
	}
	p.STUNAddresses = e.addrs(b, "stun_addresses")
	if b.Attrs["stun"] == nil && (len(p.STUNFQDNs) > 0 || len(p.STUNAddresses) > 0) {
		p.STUN = Ports{UDP: []PortEntry{{Ports: ir.PortRange{First: 19302, Last: 19302}, Range: b.DeclRange}}}
	}
	if b.Attrs["ranges"] == nil && len(p.STUNFQDNs) == 0 && len(p.STUNAddresses) == 0 {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "Provider has no destinations",
			"Provider %q needs `ranges` (its media/signalling networks), `stun_fqdns` or `stun_addresses`.", b.Name))
	}
	needRanges := p.HTTPS || len(p.TURN.UDP)+len(p.TURN.TCP)+len(p.TURN.TLS)+len(p.Media.UDP)+len(p.Media.TCP)+len(p.SIP.UDP)+len(p.SIP.TCP) > 0
	if needRanges && b.Attrs["ranges"] == nil {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "Provider flows need ranges",
			"Provider %q opens https/turn/media/sip flows but has no `ranges` to send them to. Add the provider's published ranges.", b.Name))
	}
	return p
}

func (e *evaluator) relay(b *load.Block) *Relay {
	r := &Relay{Block: e.block(b), Description: e.text(b, "description")}
	r.Zone = e.zoneRef(b, "zone")
	r.Addresses = e.addrs(b, "addresses")
	if s, rng, ok := e.str(b, "fqdn"); ok {
		if !hostName.MatchString(s) {
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "Invalid FQDN", "%q is not a host name such as turn.example.com.", s))
		} else {
			r.FQDN = strings.ToLower(strings.TrimSuffix(s, "."))
		}
	}
	r.Realm = e.text(b, "realm")
	if b.Attrs["realm"] != nil && r.Realm == "" {
		if _, _, ok := e.str(b, "realm"); ok {
			e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.Attrs["realm"].Expr.Range(), "Empty realm", "Relay %q needs a realm: TURN long-term credentials are bound to it.", b.Name))
		}
	}
	r.RelayPorts = ir.PortRange{First: 49152, Last: 65535}
	if el, ok := e.single(b, "relay_ports"); ok {
		if pr, ok := e.portElem(el); ok {
			r.RelayPorts = pr
		}
	}
	if lb, ok := b.Nested["listen"]; ok {
		r.Listen = e.listen(lb)
	} else {
		r.Listen = Ports{
			UDP: []PortEntry{{ir.PortRange{First: 3478, Last: 3478}, b.DeclRange}},
			TCP: []PortEntry{{ir.PortRange{First: 3478, Last: 3478}, b.DeclRange}},
		}
	}
	r.Clients = e.refNames(b, "clients", load.TypeAgents)
	r.Peers = e.endpoints(b, "peers")
	r.TCPRelay = e.boolean(b, "tcp_relay", false)
	r.LabOnly = e.boolean(b, "lab_only", false)
	r.TLSCert = e.text(b, "tls_cert")
	r.TLSKey = e.text(b, "tls_key")
	if r.TLSCert != "" {
		r.CertPath = r.TLSCert
		if !filepath.IsAbs(r.CertPath) {
			r.CertPath = filepath.Join(e.cfg.Root, r.CertPath)
		}
		selfSigned, err := e.certFacts(r.TLSCert)
		r.CertSelfSigned = selfSigned
		switch {
		case err != nil && load.CodeOf(err) != "" && (!filepath.IsAbs(r.TLSCert) || load.CodeOf(err) == diag.ResourceLimit):
			// A certificate named relative to the policy must be a
			// regular file inside it. (An absolute path outside the
			// root is where the relay host keeps it: not read, and
			// reported by lint as not checked.)
			rng := b.DeclRange
			if a, ok := b.Attrs["tls_cert"]; ok {
				rng = a.Expr.Range()
			}
			e.diags = append(e.diags, diag.Errorf(load.CodeOf(err), rng, "Cannot use certificate", "%s.", err))
		case err != nil:
			r.CertError = err.Error()
		}
	}
	if s, rng, ok := e.str(b, "store"); ok {
		if why := storeURLProblem(s); why != "" {
			shown := "this URL"
			if u, err := url.Parse(s); err == nil {
				shown = strconv.Quote(u.Redacted())
			}
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "Invalid store", "store %s: %s.", shown, why))
		} else {
			r.Store = s
		}
	}
	for _, el := range e.elems(b, "alternates") {
		if s, ok := e.elemString(el, "alternate server"); ok {
			ap, err := netip.ParseAddrPort(s)
			if err != nil || ap.Port() == 0 {
				e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "Invalid alternate server",
					"%q is not ADDRESS:PORT (192.0.2.11:3478, [2001:db8::11]:3478): another node of this relay's pool.", s))
				continue
			}
			r.Alternates = append(r.Alternates, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	if (r.TLSCert == "") != (r.TLSKey == "") && !e.unknown(b, "tls_cert") && !e.unknown(b, "tls_key") {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "Certificate and key go together",
			"Relay %q sets only one of tls_cert and tls_key. Set both.", b.Name))
	}
	return r
}

// storeURLProblem says what is wrong with a relay's store URL, or "": a
// redis:// or postgres:// URL with a host, and no password: secrets never
// come from the policy (the relay reads it from --store-password-file).
func storeURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "postgres" && u.Scheme != "postgresql":
		return "use redis://HOST:PORT/DB or postgres://USER@HOST:PORT/DATABASE"
	case u.Host == "":
		return "the URL names no host"
	case u.User != nil:
		if _, has := u.User.Password(); has {
			return "a password in the policy would be in git and in every generated file: remove it and give it to the relay with --store-password-file"
		}
	}
	return ""
}

func (e *evaluator) listen(b *load.Block) Ports {
	var p Ports
	p.Range = b.DeclRange
	for _, tr := range []struct {
		name string
		dst  *[]PortEntry
	}{{"udp", &p.UDP}, {"tcp", &p.TCP}, {"tls", &p.TLS}} {
		for _, el := range e.elems(b, tr.name) {
			if pr, ok := e.portElem(el); ok {
				if pr.First != pr.Last {
					e.diags = append(e.diags, diag.Errorf(diag.InvalidPort, el.rng, "Listener port must be a single port",
						"A relay listens on single ports (3478, 5349, 443), not on range %s.", pr))
					continue
				}
				*tr.dst = append(*tr.dst, PortEntry{pr, el.rng})
			}
		}
	}
	return p
}

func (e *evaluator) platform(b *load.Block) *Platform {
	p := &Platform{Block: e.block(b), Description: e.text(b, "description")}
	p.UseTURN = e.boolean(b, "use_turn", true)
	p.PreferredTransport = "udp"
	if s, rng, ok := e.str(b, "preferred_transport"); ok {
		switch strings.ToLower(s) {
		case "udp", "tcp":
			p.PreferredTransport = strings.ToLower(s)
		default:
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "Invalid preferred_transport", "preferred_transport is %q; use \"udp\" or \"tcp\".", s))
		}
	}
	p.ICECheckPriority = 100
	if n, rng, ok := e.integer(b, "ice_check_priority"); ok {
		if n < 0 || n > 100 {
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "ice_check_priority out of range", "ice_check_priority is %d; it is a value from 0 (favour relay candidates) to 100 (favour direct paths).", n))
		} else {
			p.ICECheckPriority = n
		}
	}
	p.TCPFallback = e.boolean(b, "tcp_fallback", true)
	if s, rng, ok := e.str(b, "turn_server_override"); ok && s != "" {
		if !hostName.MatchString(s) {
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "Invalid turn_server_override", "%q is not a host name; give the FQDN of the TURN server.", s))
		} else {
			p.TURNServerOverride = strings.ToLower(strings.TrimSuffix(s, "."))
		}
	}
	p.TenantRealm = e.text(b, "tenant_realm")
	return p
}

func (e *evaluator) rule(b *load.Block) *Rule {
	r := &Rule{Block: e.block(b), Description: e.text(b, "description"), Action: ir.Allow}
	r.From = e.endpoints(b, "from")
	r.To = e.endpoints(b, "to")
	if b.Attrs["from_zone"] != nil {
		r.FromZone = e.zoneRef(b, "from_zone")
	}
	if b.Attrs["to_zone"] != nil {
		r.ToZone = e.zoneRef(b, "to_zone")
	}
	for _, el := range e.elems(b, "udp") {
		if pr, ok := e.portElem(el); ok {
			r.UDP = append(r.UDP, PortEntry{pr, el.rng})
		}
	}
	for _, el := range e.elems(b, "tcp") {
		if pr, ok := e.portElem(el); ok {
			r.TCP = append(r.TCP, PortEntry{pr, el.rng})
		}
	}
	if b.Attrs["udp"] == nil && b.Attrs["tcp"] == nil {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "Rule matches no protocol",
			"Rule %q needs `udp` and/or `tcp` ports (use [\"1-65535\"] for every port).", b.Name))
	}
	if s, rng, ok := e.str(b, "action"); ok {
		r.Action = e.action(s, rng)
	}
	r.Log = e.boolean(b, "log", false)
	return r
}

func (e *evaluator) action(s string, rng hcl.Range) ir.Action {
	switch s {
	case "allow":
		return ir.Allow
	case "deny":
		return ir.Deny
	}
	e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, rng, "Invalid action", "Action is %q; use \"allow\" or \"deny\".%s", s, diag.DidYouMean(s, []string{"allow", "deny"})))
	return ir.Deny
}

// --- value helpers ---------------------------------------------------------

func (e *evaluator) val(b *load.Block, name string) (cty.Value, *hcl.Attribute, bool) {
	a, ok := b.Attrs[name]
	if !ok {
		return cty.NilVal, nil, false
	}
	v := e.attrVals[b][name]
	if v == cty.NilVal || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, a, false
	}
	return v, a, true
}

func (e *evaluator) unknown(b *load.Block, name string) bool {
	if _, ok := b.Attrs[name]; !ok {
		return false
	}
	v := e.attrVals[b][name]
	return v == cty.NilVal || !v.IsWhollyKnown()
}

func (e *evaluator) str(b *load.Block, name string) (string, hcl.Range, bool) {
	v, a, ok := e.val(b, name)
	if !ok {
		return "", hcl.Range{}, false
	}
	s, ok := e.elemString(elem{v, a.Expr.Range()}, name)
	return s, a.Expr.Range(), ok
}

// text is a free-text string attribute; control characters are refused so that
// no user text can start a new line in a generated rule set.
func (e *evaluator) text(b *load.Block, name string) string {
	s, rng, ok := e.str(b, name)
	if !ok {
		return ""
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		e.diags = append(e.diags, diag.Errorf(diag.UnsafeText, rng, "Control character in "+name,
			"%s contains %q at byte %d. Generated rule sets must never gain a line from user text: remove newlines, tabs and other control characters.", name, s[i:i+1], i))
		return strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	return s
}

func (e *evaluator) boolean(b *load.Block, name string, def bool) bool {
	v, a, ok := e.val(b, name)
	if !ok {
		return def
	}
	c, err := convert.Convert(v, cty.Bool)
	if err != nil {
		e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, a.Expr.Range(), "Expected true or false", "%s must be a bool (true or false), not %s.", name, v.Type().FriendlyName()))
		return def
	}
	return c.True()
}

func (e *evaluator) integer(b *load.Block, name string) (int, hcl.Range, bool) {
	v, a, ok := e.val(b, name)
	if !ok {
		return 0, hcl.Range{}, false
	}
	c, err := convert.Convert(v, cty.Number)
	if err == nil {
		if i, acc := c.AsBigFloat().Int64(); acc == big.Exact && i >= -1<<31 && i < 1<<31 {
			return int(i), a.Expr.Range(), true
		}
	}
	e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, a.Expr.Range(), "Expected a whole number", "%s must be a whole number.", name))
	return 0, a.Expr.Range(), false
}

func (e *evaluator) elemString(el elem, what string) (string, bool) {
	if !el.val.IsKnown() || el.val.IsNull() {
		return "", false
	}
	if el.val.Type() != cty.String && el.val.Type() != cty.Number && el.val.Type() != cty.Bool {
		e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "Expected a string", "A %s must be a string, not %s.", what, el.val.Type().FriendlyName()))
		return "", false
	}
	c, _ := convert.Convert(el.val, cty.String)
	return c.AsString(), true
}

// elems flattens a list attribute into elements with the most precise range
// available: an element's own range when the attribute is a list literal
// (in native or JSON syntax), the whole expression otherwise. A single value is
// a list of one.
func (e *evaluator) elems(b *load.Block, name string) []elem {
	v, a, ok := e.val(b, name)
	if !ok {
		return nil
	}
	return flatten(a.Expr, v)
}

func flatten(expr hcl.Expression, v cty.Value) []elem {
	return appendFlat(nil, expr, v)
}

func appendFlat(out []elem, expr hcl.Expression, v cty.Value) []elem {
	if !v.IsKnown() || v.IsNull() {
		return out
	}
	ty := v.Type()
	if !(ty.IsListType() || ty.IsTupleType() || ty.IsSetType()) {
		return append(out, elem{v, expr.Range()})
	}
	if out == nil {
		out = make([]elem, 0, v.LengthInt())
	}
	exprs, d := hcl.ExprList(expr)
	if !d.HasErrors() && ty.IsTupleType() && len(exprs) == v.LengthInt() {
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			_, ev := it.Element()
			out = appendFlat(out, exprs[i], ev)
		}
		return out
	}
	whole := wholeRange{expr.Range()}
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		out = appendFlat(out, whole, ev)
	}
	return out
}

// wholeRange is an expression stand-in that only carries a range, used when an
// element's own position is unknown.
type wholeRange struct{ rng hcl.Range }

func (w wholeRange) Value(*hcl.EvalContext) (cty.Value, hcl.Diagnostics) { return cty.DynamicVal, nil }
func (w wholeRange) Variables() []hcl.Traversal                          { return nil }
func (w wholeRange) Range() hcl.Range                                    { return w.rng }
func (w wholeRange) StartRange() hcl.Range                               { return w.rng }

func (e *evaluator) single(b *load.Block, name string) (elem, bool) {
	v, a, ok := e.val(b, name)
	if !ok {
		return elem{}, false
	}
	return elem{v, a.Expr.Range()}, true
}

func (e *evaluator) addrs(b *load.Block, name string) []AddrEntry {
	if f, ok := e.fileAttrs[attrKey{b, name}]; ok {
		// A direct ranges_file call is one entry as written: the
		// call, covering every prefix of the file. (Each element
		// of a computed list is located at the whole expression.)
		if _, a, ok := e.val(b, name); ok {
			return []AddrEntry{{Prefixes: f.prefixes, Range: a.Expr.Range()}}
		}
	}
	if lits, ok := e.literalAttrs[attrKey{b, name}]; ok {
		// A list of string literals: each element at its own range.
		if _, _, ok := e.val(b, name); ok {
			out := make([]AddrEntry, 0, len(lits))
			for _, el := range lits {
				if entry, ok := e.addrEntry(literalString(el), el.Range()); ok {
					out = append(out, entry)
				}
			}
			return out
		}
	}
	var out []AddrEntry
	els := e.elems(b, name)
	for _, el := range els {
		s, ok := e.elemString(el, "address")
		if !ok {
			continue
		}
		if entry, ok := e.addrEntry(s, el.rng); ok {
			out = append(out, entry)
		}
	}
	if v, _, ok := e.val(b, name); ok && len(els) == 0 && v.CanIterateElements() {
		kind := "addresses"
		e.diags = append(e.diags, diag.Errorf(diag.EmptySet, b.Attrs[name].Expr.Range(), "Empty "+name,
			"%s %q has no %s in %s, so nothing is allowed for it. Add %s or remove the block.", b.Type, b.Name, kind, name, kind))
	}
	return out
}

func (e *evaluator) addrEntry(s string, rng hcl.Range) (AddrEntry, bool) {
	prefixes, problem := ParseAddress(s)
	if problem != nil {
		sev := hcl.DiagError
		if problem.Warning {
			sev = hcl.DiagWarning
		}
		e.diags = append(e.diags, diag.New(sev, problem.Code, rng, problem.Summary, problem.Detail))
		if !problem.Warning {
			return AddrEntry{}, false
		}
	}
	return AddrEntry{Prefixes: prefixes, Range: rng}, true
}

func (e *evaluator) portElem(el elem) (ir.PortRange, bool) {
	s, ok := e.elemString(el, "port")
	if !ok {
		return ir.PortRange{}, false
	}
	pr, problem := ParsePort(s)
	if problem != nil {
		e.diags = append(e.diags, diag.New(hcl.DiagError, problem.Code, el.rng, problem.Summary, problem.Detail))
		return ir.PortRange{}, false
	}
	return pr, true
}

// ports decodes an object attribute such as `turn = { udp = [3478], tcp = [3478] }`.
func (e *evaluator) ports(b *load.Block, name string, allowTLS bool) Ports {
	v, a, ok := e.val(b, name)
	if !ok {
		return Ports{}
	}
	out := Ports{Range: a.Expr.Range()}
	if !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, a.Expr.Range(), "Expected an object of ports",
			"%s must be an object such as { udp = [3478], tcp = [3478] }, not %s.", name, v.Type().FriendlyName()))
		return out
	}
	keyExprs := map[string]hcl.Expression{}
	if pairs, d := hcl.ExprMap(a.Expr); !d.HasErrors() {
		for _, p := range pairs {
			if k, d := p.Key.Value(nil); !d.HasErrors() && k.Type() == cty.String {
				keyExprs[k.AsString()] = p.Value
			}
		}
	}
	allowed := []string{"udp", "tcp"}
	if allowTLS {
		allowed = append(allowed, "tls")
	}
	keys := make([]string, 0)
	for it := v.ElementIterator(); it.Next(); {
		k, _ := it.Element()
		keys = append(keys, k.AsString())
	}
	sort.Strings(keys)
	for _, k := range keys {
		var ev cty.Value
		if v.Type().IsObjectType() {
			ev = v.GetAttr(k)
		} else {
			ev = v.Index(cty.StringVal(k))
		}
		expr, ok := keyExprs[k]
		if !ok {
			expr = wholeRange{a.Expr.Range()}
		}
		var dst *[]PortEntry
		switch k {
		case "udp":
			dst = &out.UDP
		case "tcp":
			dst = &out.TCP
		case "tls":
			if allowTLS {
				dst = &out.TLS
			}
		}
		if dst == nil {
			e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, expr.Range(), "Unknown transport "+fmt.Sprintf("%q", k),
				"%s takes the transports %s.%s", name, strings.Join(allowed, ", "), diag.DidYouMean(k, allowed)))
			continue
		}
		for _, el := range flatten(expr, ev) {
			if pr, ok := e.portElem(el); ok {
				*dst = append(*dst, PortEntry{pr, el.rng})
			}
		}
	}
	return out
}

// zoneRef decodes `zone = zone.agents` (or the zone's name as a string).
func (e *evaluator) zoneRef(b *load.Block, name string) string {
	v, a, ok := e.val(b, name)
	if !ok {
		return ""
	}
	if kind, n, ok := refOf(v); ok {
		if kind != load.TypeZone {
			e.diags = append(e.diags, diag.Errorf(diag.WrongKind, a.Expr.Range(), "Expected a zone", "%s must be a zone (zone.NAME), not %s %q.", name, kind, n))
			return ""
		}
		return n
	}
	s, ok := e.elemString(elem{v, a.Expr.Range()}, "zone")
	if !ok {
		return ""
	}
	if _, ok := e.byKey["zone."+s]; !ok {
		e.diags = append(e.diags, diag.Errorf(diag.UnknownReference, a.Expr.Range(), "Reference to undeclared zone",
			"No zone named %q is declared.%s", s, diag.DidYouMean(s, e.names(load.TypeZone))))
		return ""
	}
	return s
}

// refOf recognises a block value (an object with kind and name).
func refOf(v cty.Value) (kind, name string, ok bool) {
	if !v.Type().IsObjectType() || !v.Type().HasAttribute("kind") || !v.Type().HasAttribute("name") {
		return "", "", false
	}
	k, n := v.GetAttr("kind"), v.GetAttr("name")
	if k.Type() != cty.String || n.Type() != cty.String || !k.IsKnown() || !n.IsKnown() || k.IsNull() || n.IsNull() {
		return "", "", false
	}
	return k.AsString(), n.AsString(), true
}

// refNames decodes a list of references to blocks of one kind (or their names).
// It returns nil when the attribute is absent, meaning "all".
func (e *evaluator) refNames(b *load.Block, name, kind string) []string {
	if _, ok := b.Attrs[name]; !ok {
		return nil
	}
	out := []string{}
	for _, el := range e.elems(b, name) {
		if k, n, ok := refOf(el.val); ok {
			if k != kind {
				e.diags = append(e.diags, diag.Errorf(diag.WrongKind, el.rng, "Expected "+kind, "%s lists %s blocks (%s.NAME), not %s %q.", name, kind, kind, k, n))
				continue
			}
			out = append(out, n)
			continue
		}
		s, ok := e.elemString(el, kind+" name")
		if !ok {
			continue
		}
		if _, ok := e.byKey[kind+"."+s]; !ok {
			e.diags = append(e.diags, diag.Errorf(diag.UnknownReference, el.rng, "Reference to undeclared "+kind,
				"No %s named %q is declared.%s", kind, s, diag.DidYouMean(s, e.names(kind))))
			continue
		}
		out = append(out, s)
	}
	return out
}

// endpoints decodes from/to/peers: references to agents, providers or relays,
// and literal addresses.
func (e *evaluator) endpoints(b *load.Block, name string) []Endpoint {
	var out []Endpoint
	for _, el := range e.elems(b, name) {
		if kind, n, ok := refOf(el.val); ok {
			switch kind {
			case load.TypeAgents, load.TypeProvider, load.TypeRelay:
				out = append(out, Endpoint{Kind: kind, Name: n, Range: el.rng})
			default:
				hint := ""
				if kind == load.TypeZone {
					hint = " To match a zone, use from_zone/to_zone."
				}
				e.diags = append(e.diags, diag.Errorf(diag.WrongKind, el.rng, "Not an endpoint",
					"%s lists agents, providers, relays or addresses, not %s %q.%s", name, kind, n, hint))
			}
			continue
		}
		s, ok := e.elemString(el, "address")
		if !ok {
			continue
		}
		if entry, ok := e.addrEntry(s, el.rng); ok {
			out = append(out, Endpoint{Addrs: []AddrEntry{entry}, Range: el.rng})
		}
	}
	if v, a, ok := e.val(b, name); ok && len(out) == 0 && v.CanIterateElements() && v.LengthInt() == 0 {
		e.diags = append(e.diags, diag.Errorf(diag.EmptySet, a.Expr.Range(), "Empty "+name, "%s is empty, so the block matches nothing. Add entries.", name))
	}
	return out
}

// certFacts reads a certificate the policy names, from inside the policy
// root only (load.Config.ReadFile).
func (e *evaluator) certFacts(name string) (bool, error) {
	path, data, err := e.cfg.ReadFile(name)
	if err != nil {
		return false, err
	}
	return certFacts(path, data)
}

// CertFacts reads a PEM certificate and reports whether it is self-signed.
func CertFacts(path string) (selfSigned bool, err error) {
	data, err := load.ReadFile(load.DirFS(filepath.Dir(path)), filepath.Base(path), path, load.MaxInputFile)
	if err != nil {
		return false, err
	}
	return certFacts(path, data)
}

func certFacts(path string, data []byte) (bool, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return false, fmt.Errorf("%s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false, fmt.Errorf("%s: %v", path, err)
	}
	// CheckSignature, not CheckSignatureFrom: a self-signed leaf is not a CA.
	if string(cert.RawIssuer) == string(cert.RawSubject) && cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil {
		return true, nil
	}
	return false, nil
}
