package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// CertInfo is what `openssl s_client -connect host:5349` shows, judged.
type CertInfo struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	Names      []string  `json:"names,omitempty"` // DNS and IP SANs
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	DaysLeft   int       `json:"days_left"`
	Expired    bool      `json:"expired"`
	NotYet     bool      `json:"not_yet_valid,omitempty"`
	NameOK     bool      `json:"name_ok"`
	Name       string    `json:"name"` // the name checked
	ChainOK    bool      `json:"chain_ok"`
	ChainError string    `json:"chain_error,omitempty"`
	Version    string    `json:"tls_version"`
}

// SoonDays: a certificate expiring within this many days is a warning.
const SoonDays = 14

func certCheck(ctx context.Context, cfg *Config, u URI) Check {
	c := Check{Kind: KindCert, Target: u.String(), Transport: TLS}
	ip, err := resolve(ctx, cfg, u.Host)
	if err != nil {
		c.Status, c.Error, c.Reason = Fail, err.Error(), fmt.Sprintf("cannot resolve %s", u.Host)
		return c
	}
	server := netip.AddrPortFrom(ip, u.Port)
	c.Server = server.String()
	start := time.Now()
	raw, err := cfg.Dial("tcp", server.String())
	if err != nil {
		c.Millis = ms(time.Since(start))
		c.Status, c.Error, c.Reason = Fail, err.Error(), explain(TLS, server, err)
		return c
	}
	defer raw.Close()
	tc := tls.Client(raw, tlsConfig(cfg, u))
	tc.SetDeadline(time.Now().Add(cfg.Timeout))
	err = tc.HandshakeContext(ctx)
	c.Millis = ms(time.Since(start))
	if err != nil {
		c.Status, c.Error, c.Reason = Fail, err.Error(), explain(TLS, server, err)
		return c
	}
	st := tc.ConnectionState()
	name := serverName(cfg, u)
	if name == "" {
		name = u.Host
	}
	info := inspect(st.PeerCertificates, name, cfg.Roots, cfg.Now())
	info.Version = tls.VersionName(st.Version)
	c.Cert = &info
	c.Status, c.Reason = judgeCert(info)
	return c
}

// inspect judges a presented chain for name at now.
func inspect(chain []*x509.Certificate, name string, roots *x509.CertPool, now time.Time) CertInfo {
	if len(chain) == 0 {
		return CertInfo{Name: name, ChainError: "no certificate presented"}
	}
	leaf := chain[0]
	info := CertInfo{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Name: name}
	info.Names = append(info.Names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		info.Names = append(info.Names, ip.String())
	}
	info.DaysLeft = int(leaf.NotAfter.Sub(now).Hours() / 24)
	if leaf.NotAfter.Before(now) {
		info.DaysLeft = -int(now.Sub(leaf.NotAfter).Hours()/24) - 1
	}
	info.Expired = now.After(leaf.NotAfter)
	info.NotYet = now.Before(leaf.NotBefore)
	info.NameOK = leaf.VerifyHostname(name) == nil
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// The chain is judged apart from the dates and the name, which have
	// their own verdicts: verify at a moment the leaf is valid.
	at := now
	if info.Expired || info.NotYet {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	info.ChainOK = err == nil
	if err != nil {
		info.ChainError = err.Error()
	}
	return info
}

func judgeCert(info CertInfo) (string, string) {
	var probs []string
	if info.Expired {
		probs = append(probs, fmt.Sprintf("the certificate expired on %s (%d days ago)", info.NotAfter.UTC().Format("2006-01-02"), -info.DaysLeft))
	}
	if info.NotYet {
		probs = append(probs, fmt.Sprintf("the certificate is not valid before %s (clock or issuance problem)", info.NotBefore.UTC().Format("2006-01-02")))
	}
	if !info.NameOK {
		probs = append(probs, fmt.Sprintf("the certificate does not match %s (it names %s)", info.Name, strings.Join(info.Names, ", ")))
	}
	if !info.ChainOK {
		why := "it does not chain to a trusted root"
		if strings.Contains(info.ChainError, "unknown authority") {
			why = "its issuer is not a trusted CA (self-signed or missing intermediate)"
		}
		probs = append(probs, why)
	}
	if len(probs) > 0 {
		return Fail, "browsers refuse this TURN/TLS server (\"Secure Connection Failed\"): " + strings.Join(probs, "; ")
	}
	if info.Version == "TLS 1.0" || info.Version == "TLS 1.1" {
		return Warn, fmt.Sprintf("%s negotiated: browsers need TLS 1.2 or later", info.Version)
	}
	if info.DaysLeft < SoonDays {
		return Warn, fmt.Sprintf("the certificate expires in %d days (%s): re-issue it", info.DaysLeft, info.NotAfter.UTC().Format("2006-01-02"))
	}
	return OK, fmt.Sprintf("valid for %s, %d days left, %s, issued by %s", info.Name, info.DaysLeft, info.Version, info.Issuer)
}
