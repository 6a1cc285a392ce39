package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"
)

// labCA is the lab's certificate authority: a fresh ECDSA key and CA
// certificate per run, held in memory only and never written anywhere.
//
// The lab never uses the policy's own certificate and key: the key of a real
// relay usually exists only on that relay (private-relay's tls_key is
// /etc/turnwall/...), and a lab must not need it. Every TLS listener of the
// lab gets a leaf issued here instead, and clients of the lab trust
// Services.RootCAs, the way browsers trust the CA that issued the real one.
type labCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool

	mu     sync.Mutex
	leaves []*x509.Certificate // every leaf issued, for browsers told to trust them
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func newLabCA() (*labCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "turnwall verify lab CA", Organization: []string{"turnwall lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &labCA{cert: cert, key: key, pool: pool}, nil
}

// leaf issues a server certificate for a TLS listener: the DNS names (a
// relay's FQDN) and IP addresses it is reached by.
func (ca *labCA) leaf(names []string, ips []netip.Addr) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	cn := "turnwall lab service"
	if len(names) > 0 {
		cn = names[0]
	} else if len(ips) > 0 {
		cn = ips[0].String()
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"turnwall lab"}},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca.mu.Lock()
	ca.leaves = append(ca.leaves, leaf)
	ca.mu.Unlock()
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// spkis returns the base64 SHA-256 hashes of the issued leaves' public keys,
// as Chromium's --ignore-certificate-errors-spki-list takes them: a browser
// in the lab trusts the lab's certificates as agents' browsers trust a real
// relay's CA.
func (ca *labCA) spkis() []string {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	var out []string
	for _, l := range ca.leaves {
		sum := sha256.Sum256(l.RawSubjectPublicKeyInfo)
		out = append(out, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return out
}
