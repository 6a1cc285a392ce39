// Package coturn emits a turnserver.conf for each relay of the policy, for
// coturn, the reference TURN server: the same listeners, realm and relay port
// range the firewall rules open, TURN REST API authentication, and a peer
// filter that allows exactly the peers the bundled relay allows
// (peerfilter.PolicyPeers): every IANA special-purpose range and cloud
// metadata address is denied, and no allowed-peer-ip covers a denied address,
// so the relay can never become an open proxy into the network.
package coturn

import (
	"bytes"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/naming"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/version"
	"github.com/turnwall/turnwall/relay/peerfilter"
)

// Backend is the coturn target.
type Backend struct{}

// Parameters.
var (
	ParamUserQuota  = backends.Param{Name: "user-quota", Default: "12", Help: "concurrent allocations per user (user-quota)"}
	ParamTotalQuota = backends.Param{Name: "total-quota", Default: "1000", Help: "concurrent allocations in total (total-quota); the guide sizes one server at ~500 streams"}
	ParamLifetime   = backends.Param{Name: "max-allocate-lifetime", Default: "3600", Help: "longest allocation lifetime in seconds"}
	ParamCertDir    = backends.Param{Name: "cert-dir", Help: "absolute directory relative tls_cert/tls_key paths are resolved against on the relay host (default: the policy directory)"}
)

// Name implements backends.Backend.
func (Backend) Name() string { return "coturn" }

// Description implements backends.Backend.
func (Backend) Description() string {
	return "a turnserver.conf per relay: listeners, realm, relay ports, REST API auth, peer filter"
}

// Formats implements backends.Backend.
func (Backend) Formats() []string { return []string{"conf"} }

// Params implements backends.Backend.
func (Backend) Params() []backends.Param {
	return []backends.Param{ParamUserQuota, ParamTotalQuota, ParamLifetime, ParamCertDir}
}

// SpecialPurpose lists the IANA special-purpose address ranges and cloud
// metadata addresses a relay must never reach unless the policy names them
// as peers (IANA IPv4 and IPv6 Special-Purpose Address Registries, RFC 6890).
// IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48) IPv6
// ranges are denied whole, since they embed IPv4 addresses. The list lives in
// relay/peerfilter, shared with the bundled relay, which classifies each range.
var SpecialPurpose = peerfilter.SpecialPurpose

// Emit implements backends.Backend.
func (b Backend) Emit(p *ir.Program, opts backends.Options) ([]backends.File, error) {
	if err := backends.FirstConstraint(b.Check(p, opts)); err != nil {
		return nil, err
	}
	var files []backends.File
	names := naming.New(naming.Rules{MaxLen: 64, Allowed: naming.ASCIIWord("_-"), First: naming.AlphaNum, Replace: '_'})
	for _, r := range p.Relays {
		data, err := relayConf(p, r, opts)
		if err != nil {
			return nil, fmt.Errorf("relay %s: %w", r.Name, err)
		}
		files = append(files, backends.File{Name: "turnserver-" + names.Name(r.Name) + ".conf", Data: data})
	}
	return files, nil
}

// value refuses anything that could end a line or a value in turnserver.conf.
func value(what, s string) (string, error) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '#'
	}) >= 0 {
		return "", fmt.Errorf("%s %q cannot be written to turnserver.conf (empty, or contains spaces, control or format characters or #)", what, s)
	}
	return s, nil
}

func number(p backends.Param, opts backends.Options) (string, error) {
	v := opts.Get(p)
	if n, err := strconv.Atoi(v); err != nil || n < 0 {
		return "", fmt.Errorf("parameter %s=%q must be a whole number", p.Name, v)
	}
	return v, nil
}

// allowedPeers is what the relay enforces (peerfilter.PolicyPeers, shared
// with the bundled relay) minus the relay's own addresses: coturn cannot
// limit those to the relayed ports as the bundled relay does.
func allowedPeers(p *ir.Program, r *ir.Relay, self []netip.Addr) (*netipx.IPSet, error) {
	peers, err := peerfilter.PolicyPeers(p, r)
	if err != nil || peers == nil {
		return &netipx.IPSet{}, err
	}
	var b netipx.IPSetBuilder
	b.AddSet(peers)
	for _, a := range self {
		b.Remove(a)
	}
	return b.IPSet()
}

// coturnRanges returns the set as IPv4 ranges and IPv6 prefixes. coturn
// compares IPv6 addresses with a range byte by byte (each byte between the
// range's), which holds for every address of a prefix but not of an
// arbitrary range: 2a00:1::200 is not "in" 2a00:1::11-3ffe::.
func coturnRanges(s *netipx.IPSet) []netipx.IPRange {
	var out []netipx.IPRange
	for _, rg := range s.Ranges() {
		if rg.From().Is4() {
			out = append(out, rg)
			continue
		}
		for _, pf := range rg.Prefixes() {
			out = append(out, netipx.RangeOfPrefix(pf))
		}
	}
	return out
}

// tlsPath is the path written for a certificate or key: coturn resolves a
// relative path against the directory it was started from, finds nothing,
// and serves no TLS with only a warning, so every path is made absolute:
// against cert-dir when given, else against the policy directory.
func tlsPath(p *ir.Program, what, path string, opts backends.Options) (string, error) {
	if dir := opts.Get(ParamCertDir); dir != "" && !filepath.IsAbs(path) {
		if !filepath.IsAbs(dir) {
			return "", fmt.Errorf("parameter cert-dir=%q must be an absolute directory", dir)
		}
		path = filepath.Join(dir, path)
	} else if abs := p.Path(path); abs != "" {
		path = abs
	} else {
		return "", fmt.Errorf("%s %q is relative and the policy directory is not known; give --param coturn.cert-dir=DIR", what, path)
	}
	return value(what, path)
}

// listenError says why coturn cannot serve the listeners, or nil.
func listenError(l ir.Listen) error {
	udp, tcp := l.UDP, l.TCP
	switch {
	case len(udp) > 1 || len(tcp) > 1:
		return fmt.Errorf("coturn listens on one plain port for UDP and TCP; the policy gives udp %v, tcp %v", udp, tcp)
	case len(udp) == 1 && len(tcp) == 1 && udp[0] != tcp[0]:
		return fmt.Errorf("coturn serves UDP and TCP on the same listening-port; the policy gives udp %d, tcp %d", udp[0], tcp[0])
	case len(l.TLS) > 2:
		return fmt.Errorf("coturn has two TLS listening ports at most; the policy gives %v", l.TLS)
	}
	return nil
}

func relayConf(p *ir.Program, r ir.Relay, opts backends.Options) ([]byte, error) {
	var buf bytes.Buffer
	w := &backends.Writer{W: &buf}
	w.Line("# turnserver.conf for relay %s (%s), policy %s", naming.Comment(r.Name, "", 80), naming.Comment(r.Origin.Source.String(), "", 80), naming.Comment(p.Policy.Name, "", 80))
	w.Line("# Generated by turnwall %s from the same policy as the firewall rules; do not edit.", naming.Comment(version.String(), "", 60))
	w.Line("# Secrets are not in this file: add static-auth-secret in a file only the")
	w.Line("# turnserver user can read (or pass --static-auth-secret), one line per secret")
	w.Line("# being rotated.")
	w.Line("")

	w.Line("# Listeners: the ports the firewall opens to the relay's clients.")
	self, err := p.RelayAddrs(&r)
	if err != nil {
		return nil, err
	}
	for _, a := range self {
		w.Line("listening-ip=%s", a)
		w.Line("relay-ip=%s", a)
	}
	if err := listenError(r.Listen); err != nil {
		return nil, err
	}
	udp, tcp := r.Listen.UDP, r.Listen.TCP
	switch {
	case len(udp) == 1:
		w.Line("listening-port=%d", udp[0])
	case len(tcp) == 1:
		w.Line("listening-port=%d", tcp[0])
	}
	if len(udp) == 0 {
		w.Line("no-udp")
	}
	if len(tcp) == 0 {
		w.Line("no-tcp")
	}
	if len(r.Listen.TLS) == 0 {
		w.Line("no-tls")
	} else {
		w.Line("tls-listening-port=%d", r.Listen.TLS[0])
		if len(r.Listen.TLS) == 2 {
			w.Line("alt-tls-listening-port=%d", r.Listen.TLS[1])
		}
	}
	w.Line("# No DTLS: the firewall opens TURN/TLS over TCP only.")
	w.Line("no-dtls")
	w.Line("")

	w.Line("# Relayed addresses: RFC 8656 section 7.2 range, as opened on the firewall.")
	w.Line("min-port=%d", r.RelayPorts.First)
	w.Line("max-port=%d", r.RelayPorts.Last)
	if !r.TCPRelay {
		w.Line("no-tcp-relay")
	}
	w.Line("")

	w.Line("# Authentication: TURN REST API credentials (username expiry:user,")
	w.Line("# password base64(HMAC-SHA1(secret, username))) bound to the realm.")
	realm, err := value("realm", r.Realm)
	if err != nil {
		return nil, err
	}
	w.Line("realm=%s", realm)
	if r.FQDN != "" {
		fqdn, err := value("fqdn", r.FQDN)
		if err != nil {
			return nil, err
		}
		w.Line("server-name=%s", fqdn)
	}
	w.Line("use-auth-secret")
	if r.Store != "" {
		line, err := userDB(r.Store)
		if err != nil {
			return nil, err
		}
		w.Line("# The pool's shared store, in coturn's own schema: secrets and users are")
		w.Line("# read from it. Its password is not in the policy: add password=... inside")
		w.Line("# the quotes on the relay host (this file is then secret).")
		w.Line("%s", line)
	}
	if len(r.Alternates) > 0 {
		w.Line("# The pool's other nodes: Allocate gets 300 Try Alternate to one of them")
		w.Line("# when this node is over its quota.")
		for _, alt := range r.Alternates {
			w.Line("alternate-server=%s", alt)
			if len(r.Listen.TLS) > 0 {
				w.Line("tls-alternate-server=%s", netip.AddrPortFrom(alt.Addr(), r.Listen.TLS[0]))
			}
		}
	}
	w.Line("fingerprint")
	w.Line("stale-nonce=600")
	w.Line("")

	if len(r.Listen.TLS) > 0 && r.TLS.Cert != "" {
		w.Line("# TLS 1.2 or newer only.")
		cert, err := tlsPath(p, "tls_cert", r.TLS.Cert, opts)
		if err != nil {
			return nil, err
		}
		key, err := tlsPath(p, "tls_key", r.TLS.Key, opts)
		if err != nil {
			return nil, err
		}
		w.Line("cert=%s", cert)
		w.Line("pkey=%s", key)
		w.Line("no-tlsv1")
		w.Line("no-tlsv1_1")
		w.Line("")
	} else if len(r.Listen.TLS) > 0 {
		w.Line("# TLS 1.2 or newer only. The policy gives this lab_only relay no")
		w.Line("# certificate: turnserver serves no TLS until cert= and pkey= are added.")
		w.Line("no-tlsv1")
		w.Line("no-tlsv1_1")
		w.Line("")
	}

	w.Line("# Limits.")
	for _, q := range []struct {
		key string
		p   backends.Param
	}{{"user-quota", ParamUserQuota}, {"total-quota", ParamTotalQuota}, {"max-allocate-lifetime", ParamLifetime}} {
		v, err := number(q.p, opts)
		if err != nil {
			return nil, err
		}
		w.Line("%s=%s", q.key, v)
	}
	w.Line("")

	allowed, err := allowedPeers(p, &r, self)
	if err != nil {
		return nil, err
	}
	w.Line("# Peers: never an open proxy. Every IANA special-purpose range and cloud")
	w.Line("# metadata address is denied, then everything else; the policy's peers are")
	w.Line("# allowed, split around the ranges no relay may reach and the relay's own")
	w.Line("# addresses, since an allowed-peer-ip overrides every denied-peer-ip.")
	w.Line("no-multicast-peers")
	for _, s := range SpecialPurpose {
		rg := netipx.RangeOfPrefix(netip.MustParsePrefix(s))
		w.Line("denied-peer-ip=%s-%s", rg.From(), rg.To())
	}
	w.Line("denied-peer-ip=0.0.0.0-255.255.255.255")
	w.Line("denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	for _, rg := range coturnRanges(allowed) {
		if rg.From() == rg.To() {
			w.Line("allowed-peer-ip=%s", rg.From())
		} else {
			w.Line("allowed-peer-ip=%s-%s", rg.From(), rg.To())
		}
	}
	w.Line("")
	w.Line("# Operations.")
	w.Line("no-cli")
	w.Line("log-file=stdout")
	if w.Err != nil {
		return nil, w.Err
	}
	return buf.Bytes(), nil
}

// Check implements backends.Checker: the relay values turnserver.conf
// cannot hold and the listeners coturn cannot serve.
func (Backend) Check(p *ir.Program, opts backends.Options) []backends.Constraint {
	var out []backends.Constraint
	for _, r := range p.Relays {
		add := func(attr, summary string, err error) {
			if err != nil {
				out = append(out, backends.Constraint{At: r.Origin.At(attr), Summary: summary,
					Detail: fmt.Sprintf("Relay %q: %v.", r.Name, err)})
			}
		}
		_, err := p.RelayAddrs(&r)
		add("addresses", "relay addresses", err)
		_, err = value("realm", r.Realm)
		add("realm", "realm cannot be written", err)
		if r.FQDN != "" {
			_, err = value("fqdn", r.FQDN)
			add("fqdn", "fqdn cannot be written", err)
		}
		if len(r.Listen.TLS) > 0 && r.TLS.Cert != "" {
			_, err = tlsPath(p, "tls_cert", r.TLS.Cert, opts)
			add("tls_cert", "certificate path cannot be written", err)
			_, err = tlsPath(p, "tls_key", r.TLS.Key, opts)
			add("tls_key", "key path cannot be written", err)
		}
		add("listen", "listeners coturn cannot serve", listenError(r.Listen))
	}
	return out
}

// userDB renders a relay's store URL as coturn's redis-userdb or
// psql-userdb line, without a password (the policy never holds one).
func userDB(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("store %q is not a URL with a host", raw)
	}
	host, err := value("store", u.Hostname())
	if err != nil {
		return "", err
	}
	port := u.Port()
	db := strings.TrimPrefix(u.Path, "/")
	for _, part := range []string{port, db, u.User.Username()} {
		if _, err := value("store", part); (err != nil && part != "") || strings.ContainsAny(part, "\"\\") {
			return "", fmt.Errorf("store %q cannot be written to turnserver.conf", raw)
		}
	}
	switch u.Scheme {
	case "redis", "rediss":
		if port == "" {
			port = "6379"
		}
		if db == "" {
			db = "0"
		}
		return fmt.Sprintf("redis-userdb=\"ip=%s port=%s dbname=%s connect_timeout=30\"", host, port, db), nil
	default:
		if port == "" {
			port = "5432"
		}
		line := fmt.Sprintf("psql-userdb=\"host=%s port=%s dbname=%s", host, port, db)
		if user := u.User.Username(); user != "" {
			line += " user=" + user
		}
		return line + " connect_timeout=30\"", nil
	}
}
