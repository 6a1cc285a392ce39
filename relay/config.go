package relay

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/peerfilter"
)

// FromIR builds a relay's configuration from a compiled policy: realm,
// listeners on each of the relay's addresses, relayed port range, TCP
// relaying, TLS certificate (paths relative to root, the policy's
// directory), lab-only flag and peers. Authentication, limits and the
// process's own settings (logger, metrics) are left to the caller.
func FromIR(p *ir.Program, name, root string) (Config, error) {
	var r *ir.Relay
	var names []string
	for i := range p.Relays {
		names = append(names, p.Relays[i].Name)
		if p.Relays[i].Name == name {
			r = &p.Relays[i]
		}
	}
	if r == nil {
		if len(names) == 0 {
			return Config{}, fmt.Errorf("the policy declares no relay")
		}
		sort.Strings(names)
		return Config{}, fmt.Errorf("the policy has no relay %q; relays: %s", name, strings.Join(names, ", "))
	}
	cfg := Config{Name: r.Name, Realm: r.Realm, RelayPorts: r.RelayPorts, TCPRelay: r.TCPRelay, LabOnly: r.LabOnly, FQDN: r.FQDN}
	ips, err := p.RelayAddrs(r)
	if err != nil {
		return Config{}, fmt.Errorf("relay %s: %w", r.Name, err)
	}
	cfg.RelayIPs = ips
	cfg.Listeners = Listen(cfg.RelayIPs, r.Listen)
	if len(cfg.Listeners) == 0 {
		return Config{}, fmt.Errorf("relay %s has no listener", r.Name)
	}
	if r.TLS.Cert != "" {
		cfg.CertFile, cfg.KeyFile = resolve(root, r.TLS.Cert), resolve(root, r.TLS.Key)
	}
	peers, err := peerfilter.PolicyPeers(p, r)
	if err != nil {
		return Config{}, fmt.Errorf("relay %s: %w", r.Name, err)
	}
	cfg.Peers = peers
	return cfg, nil
}

// Listen returns a listener per address and policy port.
func Listen(ips []netip.Addr, l ir.Listen) []Listener {
	var out []Listener
	for _, ip := range ips {
		for _, tr := range []struct {
			name  string
			ports []uint16
		}{{UDP, l.UDP}, {TCP, l.TCP}, {TLS, l.TLS}} {
			for _, port := range tr.ports {
				out = append(out, Listener{Transport: tr.name, Addr: netip.AddrPortFrom(ip, port)})
			}
		}
	}
	return out
}

func resolve(root, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}

// PolicyRoot is the directory relative paths in a policy are resolved
// against: the directory itself, or a policy file's directory.
func PolicyRoot(path string, isDir bool) string {
	if isDir {
		return path
	}
	return filepath.Dir(path)
}

// URIs returns the TURN URIs (RFC 7065) clients use to reach a relay: its
// FQDN, or else each of its addresses, with every listener: turn: with
// ?transport=udp or tcp, turns: for TLS.
func URIs(cfg Config) []string {
	var hosts []string
	if cfg.FQDN != "" {
		hosts = []string{cfg.FQDN}
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range cfg.Listeners {
		hs := hosts
		if hs == nil {
			h := l.Addr.Addr().String()
			if l.Addr.Addr().Is6() {
				h = "[" + h + "]"
			}
			hs = []string{h}
		}
		for _, h := range hs {
			var u string
			switch l.Transport {
			case UDP:
				u = fmt.Sprintf("turn:%s:%d?transport=udp", h, l.Addr.Port())
			case TCP:
				u = fmt.Sprintf("turn:%s:%d?transport=tcp", h, l.Addr.Port())
			case TLS:
				u = fmt.Sprintf("turns:%s:%d?transport=tcp", h, l.Addr.Port())
			}
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}
