package relay

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
)

// TestFromIR: the lab policy's relay becomes a relay configuration.
func TestFromIR(t *testing.T) {
	res := compiler.Compile(labPolicy, compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	cfg, err := FromIR(res.Program, "lab", labPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Realm != "lab.example.com" || !cfg.TCPRelay || !cfg.LabOnly || cfg.RelayPorts != (ir.PortRange{First: 49152, Last: 65535}) {
		t.Errorf("cfg = %+v", cfg)
	}
	var ls []string
	for _, l := range cfg.Listeners {
		ls = append(ls, l.String())
	}
	want := "udp://192.0.2.10:3478 tcp://192.0.2.10:3478 tls://192.0.2.10:5349 tls://192.0.2.10:443 " +
		"udp://[2001:db8:30::10]:3478 tcp://[2001:db8:30::10]:3478 tls://[2001:db8:30::10]:5349 tls://[2001:db8:30::10]:443"
	if strings.Join(ls, " ") != want {
		t.Errorf("listeners:\n got %s\nwant %s", strings.Join(ls, " "), want)
	}
	for a, in := range map[string]bool{"198.51.100.20": true, "2001:db8:203::5": true, "203.0.113.200": true, "192.0.2.10": false, "8.8.8.8": false} {
		if cfg.Peers.Contains(netip.MustParseAddr(a)) != in {
			t.Errorf("peer %s: %v", a, !in)
		}
	}
	if got := strings.Join(URIs(cfg), " "); got != "turn:turn.lab.example.com:3478?transport=udp turn:turn.lab.example.com:3478?transport=tcp "+
		"turns:turn.lab.example.com:5349?transport=tcp turns:turn.lab.example.com:443?transport=tcp" {
		t.Errorf("URIs: %s", got)
	}
	cfg.FQDN = ""
	if got := URIs(cfg); len(got) != 8 || got[4] != "turn:[2001:db8:30::10]:3478?transport=udp" {
		t.Errorf("URIs without an FQDN: %v", got)
	}
	if _, err := FromIR(res.Program, "nope", labPolicy); err == nil || !strings.Contains(err.Error(), "relays: lab") {
		t.Errorf("unknown relay: %v", err)
	}
}

// TestFromIRCertificate: certificate paths are relative to the policy, and a
// self-signed certificate is refused unless the relay is lab-only.
func TestFromIRCertificate(t *testing.T) {
	res := compiler.Compile("../policies/private-relay", compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	cfg, err := FromIR(res.Program, "dmz", "../policies/private-relay")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CertFile != filepath.Join("../policies/private-relay", "certs/turn.example.com.pem") || cfg.KeyFile != "/etc/turnwall/turn.example.com.key" {
		t.Errorf("certificate %q key %q", cfg.CertFile, cfg.KeyFile)
	}
	if cfg.LabOnly || cfg.Peers == nil {
		t.Errorf("cfg = %+v", cfg)
	}

	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir) // self-signed
	for _, lab := range []bool{false, true} {
		c := testConfig(t)
		c.CertFile, c.KeyFile, c.LabOnly = certFile, keyFile, lab
		_, err := New(c)
		if lab && err != nil {
			t.Errorf("lab relay with a self-signed certificate: %v", err)
		}
		if !lab && (err == nil || !strings.Contains(err.Error(), "self-signed")) {
			t.Errorf("production relay with a self-signed certificate: %v", err)
		}
	}
	c := testConfig(t)
	c.LabOnly = false
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "tls_cert") {
		t.Errorf("TLS without a certificate: %v", err)
	}
}

// TestConfigErrors: configurations that would make an unsafe relay are refused.
func TestConfigErrors(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"listener in relay range": func(c *Config) { c.Listeners[0].Addr = netip.AddrPortFrom(loopback, 50000) },
		"no auth":                 func(c *Config) { c.Auth = nil },
		"wrong realm":             func(c *Config) { c.Realm = "other" },
		"empty range":             func(c *Config) { c.RelayPorts = ir.PortRange{First: 5000, Last: 4000} },
		"unspecified relay ip":    func(c *Config) { c.RelayIPs = []netip.Addr{netip.IPv4Unspecified()} },
		"short lifetime":          func(c *Config) { c.Limits.MaxLifetime = 10 },
		"no listener":             func(c *Config) { c.Listeners = nil },
	} {
		c := testConfig(t)
		mutate(&c)
		if s, err := New(c); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
