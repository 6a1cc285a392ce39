package lint_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/load"
)

const base = `
policy "t" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "wan0" }
zone "dmz" { interface = "dmz0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16", "fd00:20::/48"]
}
`

const goodProvider = `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
  turn   = { udp = [3478], tcp = [3478] }
  media  = { udp = ["16384-65535"] }
}
`

// findings compiles base+src in dir and returns "E:TWnnn" / "W:TWnnn" sorted.
func findings(t *testing.T, dir, prefix, src string) []string {
	t.Helper()
	if prefix == "" {
		prefix = base
	}
	res := compiler.CompileSources(dir, []load.Source{{Name: filepath.Join(dir, "p.hcl"), Bytes: []byte(prefix + src)}}, compiler.Options{})
	var out []string
	for _, d := range res.Diags {
		sev := "W"
		if d.Severity == hcl.DiagError {
			sev = "E"
		}
		code := string(diag.CodeOf(d))
		if code == "" {
			t.Fatalf("diagnostic without a code: %s: %s", d.Summary, d.Detail)
		}
		if d.Subject == nil || d.Subject.Start.Line == 0 {
			t.Fatalf("%s has no position", code)
		}
		out = append(out, sev+":"+code)
	}
	sort.Strings(out)
	return out
}

func TestLints(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, filepath.Join(dir, "self.pem"), true)
	writeCert(t, filepath.Join(dir, "ca.pem"), false)
	for _, key := range []string{"self.key", "ca.key"} {
		if err := os.WriteFile(filepath.Join(dir, key), []byte("key"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	relay := func(extra string) string {
		return `
relay "r" {
  zone      = zone.dmz
  addresses = ["198.51.100.10"]
  fqdn      = "turn.example.com"
  realm     = "example.com"
  peers     = [agents.floor]
` + extra + `
}
`
	}
	withPeers := func(peers string) string {
		return goodProvider + strings.Replace(relay(""), "peers     = [agents.floor]", "peers     = "+peers, 1)
	}
	v4Only := `
policy "t" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "wan0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}
`
	tests := []struct {
		name string
		src  string
		want string // sorted findings, space-separated
		base string // replaces the common base when set
	}{
		{"clean", goodProvider, "", ""},
		{"relay peers any", withPeers(`["0.0.0.0/0", "::/0", agents.floor]`), "W:TW212", ""},
		{"relay peers private network", withPeers(`[agents.floor, provider.p, "192.168.10.0/24"]`), "W:TW212", ""},
		{"relay peers own private ranges", withPeers(`[agents.floor, provider.p]`), "", ""},
		{"udp blocked, tcp fallback left", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
}`, "W:TW201", ""},
		{"no path at all", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  sip    = { tcp = [5061] }
}`, "E:TW201 W:TW202 W:TW209", ""},
		{"udp taken away by a deny rule", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
rule "no-udp" {
  action = "deny"
  from   = agents.floor
  to     = [provider.p]
  udp    = ["1-65535"]
}`, "W:TW201 W:TW211", ""},
		{"udp and tcp 443 taken away by deny rules", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
rule "no-udp" {
  action = "deny"
  from   = agents.floor
  to     = [provider.p]
  udp    = ["1-65535"]
  tcp    = [443]
}`, "E:TW201 W:TW202 W:TW211 W:TW211", ""},
		{"udp to a public STUN server is no media path (tcp443-blocked trap with stun_fqdns)", `
provider "p" {
  zone       = zone.internet
  ranges     = ["52.129.96.0/20"]
  https      = true
  stun_fqdns = ["stun.l.google.com"]
}
rule "no-udp" {
  action = "deny"
  from   = agents.floor
  to     = [provider.p]
  udp    = ["1-65535"]
}
rule "no-tls-443" {
  action = "deny"
  from   = agents.floor
  to     = [provider.p]
  tcp    = [443]
}`, "E:TW201 W:TW202 W:TW211", ""},
		{"stun alone, udp open to stun only", `
provider "p" {
  zone       = zone.internet
  ranges     = ["52.129.96.0/20"]
  https      = true
  stun_fqdns = ["stun.l.google.com"]
}`, "W:TW201", ""},
		{"a deny to every address covers stun by name", `
provider "p" {
  zone       = zone.internet
  ranges     = ["52.129.96.0/20"]
  https      = true
  media      = { udp = ["16384-65535"] }
  stun_fqdns = ["stun.l.google.com"]
}
rule "no-udp" {
  action = "deny"
  from   = agents.floor
  to     = ["0.0.0.0/0", "::/0"]
  udp    = ["1-65535"]
}`, "W:TW201 W:TW211 W:TW211", ""},
		{"a deny to 0.0.0.0/0 covers stun by name for IPv4-only agents", `
provider "p" {
  zone       = zone.internet
  ranges     = ["52.129.96.0/20"]
  https      = true
  stun_fqdns = ["stun.l.google.com"]
}
rule "no-udp4" {
  action = "deny"
  from   = agents.floor
  to     = ["0.0.0.0/0"]
  udp    = [19302]
}`, "W:TW201 W:TW211", v4Only},
		{"a deny to 0.0.0.0/0 leaves stun by name over IPv6", `
provider "p" {
  zone       = zone.internet
  ranges     = ["52.129.96.0/20"]
  https      = true
  media      = { udp = ["16384-65535"] }
  stun_fqdns = ["stun.l.google.com"]
}
rule "no-udp4" {
  action = "deny"
  from   = agents.floor
  to     = ["0.0.0.0/0"]
  udp    = [19302]
}`, "", ""},
		{"a deny rule on part of the media range leaves a path", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
rule "no-low-udp" {
  action = "deny"
  from   = agents.floor
  to     = [provider.p]
  udp    = ["16384-20000"]
}`, "", ""},
		{"nothing blocked when default allows", "", "", strings.Replace(base, `policy "t" {}`, `policy "t" {
  default_action            = "allow"
  acknowledge_default_allow = true
}`, 1)},
		{"default allow without acknowledgement", "", "E:TW214", strings.Replace(base, `policy "t" {}`, `policy "t" { default_action = "allow" }`, 1)},
		{"no tcp 443", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  turn   = { udp = [3478], tcp = [3478] }
}`, "W:TW202", ""},
		{"relay tls on 443 is a fallback", relay(`listen {
  udp = 3478
  tls = 443
}
lab_only = true`), "", ""},
		{"low ice priority", goodProvider + `
platform "pc" { ice_check_priority = 20 }`, "W:TW203", ""},
		{"ice priority fine", goodProvider + `
platform "pc" { ice_check_priority = 50 }`, "", ""},
		{"realm mismatch", goodProvider + relay("") + `
platform "pc" { tenant_realm = "tenant.example.com" }`, "E:TW204", ""},
		{"realm matches the overridden relay", goodProvider + relay("") + `
relay "other" {
  zone      = zone.dmz
  addresses = ["198.51.100.20"]
  fqdn      = "turn2.example.com"
  realm     = "tenant.example.com"
  peers     = [agents.floor]
}
platform "pc" {
  tenant_realm         = "tenant.example.com"
  turn_server_override = relay.other.fqdn
}`, "", ""},
		{"tls without certificate", goodProvider + relay(`listen { tls = 5349 }`), "E:TW205", ""},
		{"tls lab only", goodProvider + relay(`
listen { tls = 5349 }
lab_only = true`), "", ""},
		{"self-signed certificate", goodProvider + relay(`
listen { tls = 5349 }
tls_cert = "self.pem"
tls_key  = "self.key"`), "E:TW205", ""},
		{"ca-issued certificate", goodProvider + relay(`
listen { tls = 5349 }
tls_cert = "ca.pem"
tls_key  = "ca.key"`), "", ""},
		{"unreadable certificate", goodProvider + relay(`
listen { tls = 5349 }
tls_cert = "missing.pem"
tls_key  = "missing.key"`), "W:TW205 W:TW205", ""},
		{"relative key not found", goodProvider + relay(`
listen { tls = 5349 }
tls_cert = "ca.pem"
tls_key  = "keys/ca.key"`), "W:TW205", ""},
		{"absolute key on the relay host", goodProvider + relay(`
listen { tls = 5349 }
tls_cert = "ca.pem"
tls_key  = "/etc/turnwall/nowhere.key"`), "", ""},
		{"relay ports privileged", goodProvider + relay(`relay_ports = "1000-65535"`), "E:TW206", ""},
		{"relay ports outside rfc range", goodProvider + relay(`relay_ports = "40000-49999"`), "W:TW206", ""},
		{"relay ports subrange", goodProvider + relay(`relay_ports = "50000-50999"`), "", ""},
		{"one-way audio", goodProvider + `
relay "r" {
  zone      = zone.dmz
  addresses = ["198.51.100.10"]
  realm     = "example.com"
}`, "W:TW207", ""},
		{"relay in the agents zone needs no return rule", goodProvider + `
relay "r" {
  zone      = zone.agents
  addresses = ["10.21.0.10"]
  realm     = "example.com"
}`, "", ""},
		{"stun by literal address", goodProvider + `
provider "google" {
  zone           = zone.internet
  stun_addresses = ["74.125.250.129"]
}`, "W:TW208", ""},
		{"stun by name", goodProvider + `
provider "google" {
  zone       = zone.internet
  stun_fqdns = ["stun.l.google.com"]
}`, "", ""},
		{"stun literal in a rule", goodProvider + `
rule "stun" {
  from = agents.floor
  to   = ["74.125.250.129"]
  udp  = [19302]
}`, "W:TW208", ""},
		{"sip for webrtc agents", goodProvider + `
rule "trunk" {
  from = agents.floor
  to   = ["203.0.113.0/28"]
  udp  = [5060]
}`, "W:TW209", ""},
		{"wide provider range", `
provider "p" {
  zone   = zone.internet
  ranges = ["52.0.0.0/7", "2600::/12"]
  https  = true
  turn   = { udp = [3478] }
}`, "W:TW210 W:TW210", ""},
		{"provider is the internet", `
provider "p" {
  zone   = zone.internet
  ranges = ["::/0"]
  https  = true
  turn   = { udp = [3478] }
}`, "E:TW210", v4Only},
		{"provider range overlapping agents is caught first", `
provider "p" {
  zone   = zone.internet
  ranges = ["0.0.0.0/0"]
  https  = true
  turn   = { udp = [3478] }
}`, "E:TW109", v4Only},
		{"any to any", goodProvider + `
rule "open" {
  from = ["0.0.0.0/0"]
  to   = ["0.0.0.0/0"]
  tcp  = [22]
}`, "W:TW210", ""},
		{"deny shadows allow", goodProvider + `
rule "no-ssh" {
  action = "deny"
  from   = agents.floor
  to     = ["203.0.113.0/24"]
  tcp    = ["1-65535"]
}
rule "ssh" {
  from = agents.floor
  to   = ["203.0.113.9"]
  tcp  = [22]
}`, "W:TW211", ""},
		{"partial overlap is not shadowing", goodProvider + `
rule "no-ssh" {
  action = "deny"
  from   = agents.floor
  to     = ["203.0.113.0/25"]
  tcp    = [22]
}
rule "ssh" {
  from = agents.floor
  to   = ["203.0.113.0/24"]
  tcp  = [22]
}`, "", ""},
		{"agents overlap provider", `
provider "p" {
  zone   = zone.internet
  ranges = ["10.0.0.0/8"]
  https  = true
  turn   = { udp = [3478] }
}`, "E:TW109", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(findings(t, dir, tt.base, tt.src), " ")
			if got != tt.want {
				t.Fatalf("findings = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCatalogue: every code is documented once, in order, with a name and an
// explanation that says what to do.
func TestCatalogue(t *testing.T) {
	seen := map[diag.Code]bool{}
	names := map[string]bool{}
	for i, c := range diag.Catalogue {
		if seen[c.Code] || names[c.Name] {
			t.Errorf("duplicate %s %s", c.Code, c.Name)
		}
		seen[c.Code], names[c.Name] = true, true
		if i > 0 && diag.Catalogue[i-1].Code >= c.Code {
			t.Errorf("%s out of order", c.Code)
		}
		if len(c.Explain) < 40 {
			t.Errorf("%s: explanation too short", c.Code)
		}
	}
}

// writeCert writes a PEM certificate for turn.example.com, self-signed or
// issued by a throwaway CA.
func writeCert(t *testing.T, path string, selfSigned bool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "turn.example.com"},
		DNSNames:     []string{"turn.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, parentKey := leaf, key
	if !selfSigned {
		caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		parent = &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "Test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
		}
		parentKey = caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
