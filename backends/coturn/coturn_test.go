package coturn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
)

func TestGolden(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			// Relative certificate paths are made absolute: against cert-dir
			// here, so that the golden files do not depend on the checkout.
			files := backendtest.Emit(t, Backend{}, c.Program, backends.Options{Params: map[string]string{"cert-dir": "/etc/turnwall"}})
			if len(files) != len(c.Program.Relays) {
				t.Fatalf("%d files for %d relays", len(files), len(c.Program.Relays))
			}
			backendtest.Golden(t, "coturn", c.Name, files)
		})
	}
}

// TestHostile: free text from the policy either is refused or cannot add a
// line to turnserver.conf.
func TestHostile(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		hostile, benign := backendtest.HostilePair(c.Program)
		hostile.Root, benign.Root = "/srv/policy", "/srv/policy"
		hf, err := Backend{}.Emit(hostile, backends.Options{})
		if err != nil {
			// Realms and names coturn cannot hold are refused (below); the
			// rest of the hostile text must still be made safe.
			for i := range hostile.Relays {
				hostile.Relays[i].Realm, hostile.Relays[i].FQDN, hostile.Relays[i].TLS = benign.Relays[i].Realm, benign.Relays[i].FQDN, benign.Relays[i].TLS
			}
			if hf, err = (Backend{}).Emit(hostile, backends.Options{}); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
		}
		for _, f := range hf {
			if r, ok := backendtest.BidiFree(f.Data); !ok {
				t.Errorf("%s: %U in %s", c.Name, r, f.Name)
			}
		}
		bf := backendtest.Emit(t, Backend{}, benign, backends.Options{})
		var h, b bytes.Buffer
		for _, f := range hf {
			h.Write(f.Data)
		}
		for _, f := range bf {
			b.Write(f.Data)
		}
		if backendtest.CountLines(h.Bytes()) != backendtest.CountLines(b.Bytes()) {
			t.Errorf("%s: hostile text changed the number of lines", c.Name)
		}
	}
	for _, realm := range []string{"a\nno-auth", "a b", "", "x#y", "a\u2028b", "exa\u202emple.com"} {
		p := relayProgram(realm)
		if _, err := (Backend{}).Emit(p, backends.Options{}); err == nil {
			t.Errorf("realm %q accepted", realm)
		}
	}
}

func relayProgram(realm string) *ir.Program {
	p := &ir.Program{
		Policy:      ir.Policy{Name: "p", DefaultAction: ir.Deny},
		AddressSets: []ir.AddressSet{{Name: "relay.r", V4: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}}},
		Relays: []ir.Relay{{Name: "r", Addresses: "relay.r", Realm: realm, RelayPorts: ir.PortRange{First: 49152, Last: 65535},
			Listen: ir.Listen{UDP: []uint16{3478}, TCP: []uint16{3478}}}},
	}
	p.Index()
	return p
}

// TestDeniedPeers: the addresses a TURN relay is abused to reach are denied,
// including the bypasses known from deployed servers.
func TestDeniedPeers(t *testing.T) {
	var b netipx.IPSetBuilder
	for _, s := range SpecialPurpose {
		b.AddPrefix(netip.MustParsePrefix(s))
	}
	denied, _ := b.IPSet()
	for _, a := range []string{"0.0.0.0", "127.0.0.1", "10.1.2.3", "172.16.5.5", "192.168.1.1", "100.64.0.1",
		"169.254.169.254", "224.0.0.1", "255.255.255.255", "::", "::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "fe80::1", "fc00::1", "fd00::1", "ff02::1", "2001:db8::1"} {
		if !denied.Contains(netip.MustParseAddr(a)) {
			t.Errorf("%s is not denied", a)
		}
	}
	for _, a := range []string{"52.129.96.1", "2603:1063::1"} {
		if denied.Contains(netip.MustParseAddr(a)) {
			t.Errorf("public %s is denied", a)
		}
	}
}

func TestErrors(t *testing.T) {
	p := relayProgram("example.com")
	p.Relays[0].Listen = ir.Listen{UDP: []uint16{3478}, TCP: []uint16{3479}}
	if _, err := (Backend{}).Emit(p, backends.Options{}); err == nil || !strings.Contains(err.Error(), "same listening-port") {
		t.Errorf("different UDP and TCP ports: %v", err)
	}
	p = relayProgram("example.com")
	if _, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"user-quota": "lots"}}); err == nil {
		t.Error("bad quota accepted")
	}
}

// TestTurnserverAcceptsConfig starts Debian's turnserver with every emitted
// configuration, the relay's addresses on loopback in a namespace, and asks it
// for a STUN binding with turnutils_stunclient. TLS listeners start with a
// certificate made for the test.
func TestTurnserverAcceptsConfig(t *testing.T) {
	err := netns.Available()
	if err == nil {
		if _, err = exec.LookPath("turnserver"); err != nil {
			err = fmt.Errorf("turnserver (Debian package coturn) is missing")
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("coturn test cannot run in CI: %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	cert, key := writeCertKey(t, dir)
	ran := 0
	for _, c := range backendtest.Cases(t) {
		for i := range c.Program.Relays {
			p := *c.Program
			p.Relays = append([]ir.Relay(nil), c.Program.Relays...)
			p.Relays[i].TLS.Cert, p.Relays[i].TLS.Key = cert, key
			r := p.Relays[i]
			files, err := Backend{}.Emit(&p, backends.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Run(c.Name+"/"+r.Name, func(t *testing.T) {
				runTurnserver(t, &p, r, files[i].Data)
			})
			ran++
		}
	}
	if ran == 0 {
		t.Fatal("no relay in any case")
	}
}

func runTurnserver(t *testing.T, p *ir.Program, r ir.Relay, conf []byte) {
	ns, err := netns.New("coturn")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	set := p.AddressSet(r.Addresses)
	var first netip.Addr
	for _, pf := range append(append([]netip.Prefix(nil), set.V4...), set.V6...) {
		if !first.IsValid() && pf.Addr().Is4() {
			first = pf.Addr()
		}
		if err := ns.Addr("lo", pf.String()); err != nil {
			t.Fatal(err)
		}
	}
	if !first.IsValid() {
		t.Skip("relay has no IPv4 address for turnutils_stunclient")
	}
	file := filepath.Join(t.TempDir(), "turnserver.conf")
	os.WriteFile(file, conf, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var log nstest.SyncBuffer // written by exec's copier while the test reads it
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, "turnserver", "-c", file, "--static-auth-secret", "test-secret")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	port := "3478"
	if len(r.Listen.UDP) > 0 {
		port = fmt.Sprint(r.Listen.UDP[0])
	}
	var out []byte
	deadline := time.Now().Add(8 * time.Second)
	for {
		attempt, stop := context.WithTimeout(ctx, 2*time.Second) // the client waits forever for no answer
		out, err = ns.Exec(attempt, "turnutils_stunclient", "-p", port, first.String())
		stop()
		if err == nil && strings.Contains(string(out), "UDP reflexive addr") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("turnserver did not answer a STUN binding: %v\n%s\nturnserver log:\n%s", err, out, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, bad := range []string{"CONFIG ERROR", "Bad configuration", "unknown option", "cannot find", "cannot start TLS"} {
		if strings.Contains(log.String(), bad) {
			t.Errorf("turnserver log has %q:\n%s", bad, log.String())
		}
	}
}

func writeCertKey(t *testing.T, dir string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "turn.example.com"},
		DNSNames: []string{"turn.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyFile
}

// TestCertPaths: a relative tls_cert/tls_key never reaches turnserver.conf
// (coturn would look for it in its working directory and serve no TLS):
// it is resolved against the policy directory, or cert-dir when given; a
// program with no known directory fails and says what to give.
func TestCertPaths(t *testing.T) {
	p := backendtest.CaseProgram(t, "policies-private-relay")
	conf := func(opts backends.Options) (string, error) {
		files, err := Backend{}.Emit(p, opts)
		if err != nil {
			return "", err
		}
		return string(files[0].Data), nil
	}
	root := filepath.Join(backendtest.Root(), "policies", "private-relay")
	got, err := conf(backends.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "\ncert=" + filepath.Join(root, "certs", "turn.example.com.pem") + "\n"; !strings.Contains(got, want) {
		t.Errorf("no %q in\n%s", want, got)
	}
	if !strings.Contains(got, "\npkey=/etc/turnwall/turn.example.com.key\n") {
		t.Error("absolute key path changed")
	}
	got, err = conf(backends.Options{Params: map[string]string{"cert-dir": "/srv/tls"}})
	if err != nil || !strings.Contains(got, "\ncert=/srv/tls/certs/turn.example.com.pem\n") {
		t.Errorf("cert-dir: %v\n%s", err, got)
	}
	if _, err := conf(backends.Options{Params: map[string]string{"cert-dir": "tls"}}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative cert-dir: %v", err)
	}
	noRoot := *p
	noRoot.Root = ""
	if _, err := (Backend{}).Emit(&noRoot, backends.Options{}); err == nil || !strings.Contains(err.Error(), "coturn.cert-dir") {
		t.Errorf("no policy directory: %v", err)
	}
	if cs := (Backend{}).Check(&noRoot, backends.Options{}); len(cs) != 1 || cs[0].At != p.Relays[0].Origin.At("tls_cert") {
		t.Errorf("Check without a policy directory: %+v", cs)
	}
	spaced := *p
	spaced.Root = "/srv/my policies"
	if cs := (Backend{}).Check(&spaced, backends.Options{}); len(cs) != 1 || !strings.Contains(cs[0].Detail, "spaces") {
		t.Errorf("Check with a space in the path: %+v", cs)
	}
}
