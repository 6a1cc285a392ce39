package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// loadCertificate returns the TLS certificate for TURN/TLS listeners. A
// self-signed certificate is refused unless the relay is lab-only: browsers
// refuse it, so TURN/TLS would fail in production. A lab-only relay without
// a certificate gets a throwaway self-signed one.
func loadCertificate(cfg Config) (*tls.Certificate, error) {
	var cert *tls.Certificate
	switch {
	case cfg.Certificate != nil:
		cert = cfg.Certificate
	case cfg.CertFile != "" || cfg.KeyFile != "":
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, errors.New("TLS needs both a certificate and a key file")
		}
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		cert = &c
	case cfg.LabOnly:
		return selfSigned(cfg.FQDN)
	default:
		return nil, errors.New("TLS listeners need tls_cert and tls_key in the policy (or mark the relay lab_only for a throwaway certificate)")
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("TLS certificate file holds no certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if isSelfSigned(leaf) && !cfg.LabOnly {
		return nil, fmt.Errorf("refusing the self-signed certificate %q: browsers refuse it and TURN/TLS fails; use a CA-issued certificate, or mark the relay lab_only", leaf.Subject.CommonName)
	}
	if time.Now().After(leaf.NotAfter) && !cfg.LabOnly {
		return nil, fmt.Errorf("the TLS certificate expired on %s", leaf.NotAfter.Format(time.DateOnly))
	}
	cert.Leaf = leaf
	return cert, nil
}

// isSelfSigned: the issuer is the subject and the certificate's own key
// verifies its signature (the compiler's test, eval.CertFacts).
func isSelfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// selfSigned makes a throwaway certificate for a lab relay.
func selfSigned(name string) (*tls.Certificate, error) {
	if name == "" {
		name = "turnwall-lab-relay"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
