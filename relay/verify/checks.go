package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/probe"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// ServerCheck is the outcome of reaching one ICE server from an agents host.
type ServerCheck struct {
	Server   ICEServer `json:"-"`
	URL      string    `json:"url"`
	Owner    string    `json:"owner"`
	Expected string    `json:"expected"` // pass or fail
	Got      string    `json:"got"`      // pass or fail
	Reason   string    `json:"reason"`   // what happened, in plain words
	Rule     string    `json:"rule"`     // the IR rule deciding the first packet, or "default deny"
	Line     string    `json:"line"`     // its policy line
	OK       bool      `json:"ok"`
	// answered: the server sent a TURN or STUN response (success or
	// error), as opposed to silence, a refused connection or a failed TLS
	// handshake.
	answered bool
}

// Bounds of one check.
const (
	checkTimeout    = 1500 * time.Millisecond
	checkParallel   = 8
	checkSourcePort = 40000 // the source port expectations assume
)

// Expect says whether agents group `group` should reach srv: the IR allows
// the first packet (from the group's address, source port 40000), and the
// credentials are valid in the server's realm. rule and line are the
// deciding IR rule and its policy line; why says what fails, if anything.
func (s *Services) Expect(group string, srv ICEServer) (pass bool, rule, line, why string) {
	e := s.expect(group, srv)
	return e.pass, e.rule, e.line, e.why
}

type expectation struct {
	pass, allowed bool // allowed: by the firewall
	rule, line    string
	why           string
}

func (s *Services) expect(group string, srv ICEServer) expectation {
	ah := s.lab.host("agents", group)
	if ah == nil || srv.Host == nil {
		return expectation{why: "no such agents group in the lab"}
	}
	v := s.lab.Prog.Allows(ir.Packet{FromZone: ah.Zone, ToZone: srv.Host.Zone, Src: ah.source(srv.Addr.Addr()), Dst: srv.Addr.Addr(),
		DstHost: srv.FQDN, Proto: srv.Proto, SrcPort: checkSourcePort, DstPort: srv.Addr.Port()})
	e := expectation{allowed: v.Allowed(), rule: "default " + string(v.Action), line: s.lab.Prog.Policy.Source.String()}
	if v.Rule != nil {
		e.rule, e.line = v.Rule.Name, v.Rule.Origin.Source.String()
	}
	switch {
	case !e.allowed:
		e.why = fmt.Sprintf("the firewall drops %s %d", strings.ToUpper(string(srv.Proto)), srv.Addr.Port())
	case srv.CredentialRealm != "" && srv.CredentialRealm != srv.Realm:
		e.why = realmMismatch(srv.Realm, srv.CredentialRealm)
	default:
		e.pass = true
	}
	return e
}

func realmMismatch(realm, tenant string) string {
	return fmt.Sprintf("401 Unauthorized: the relay's realm is %q but the platform provisioned the user in tenant_realm %q", realm, tenant)
}

// Check reaches every ICE server of agents group `group` from that group's
// host, from its policy address: a STUN Binding request for stun:, a TURN
// Allocate with the group's credentials for turn: and turns: (over the URL's
// transport; TLS trusts RootCAs and checks the URL's host). Checks run
// concurrently, each bounded to a few seconds; allocations are deleted
// again.
func (s *Services) Check(ctx context.Context, group string) []ServerCheck {
	servers := s.ICEServers(group)
	ah := s.lab.host("agents", group)
	out := make([]ServerCheck, len(servers))
	sem := make(chan struct{}, checkParallel)
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = s.check(ctx, ah, group, srv)
		}()
	}
	wg.Wait()
	return out
}

func (s *Services) check(ctx context.Context, ah *Host, group string, srv ICEServer) (c ServerCheck) {
	e := s.expect(group, srv)
	c = ServerCheck{Server: srv, URL: srv.URL, Owner: srv.Owner, Expected: "fail", Got: "fail", Rule: e.rule, Line: e.line}
	if e.pass {
		c.Expected = "pass"
	}
	defer func() { c.OK = c.Expected == c.Got }()
	src := ah.source(srv.Addr.Addr())
	if !src.IsValid() {
		c.Reason = "the agents host has no address of the server's family"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, 2*checkTimeout+time.Second)
	defer cancel()
	var detail, realm string
	var err error
	if srv.Kind == "stun" {
		detail, err = s.checkSTUN(ctx, ah, src, srv)
	} else {
		detail, realm, err = s.checkTURN(ctx, ah, src, srv)
	}
	c.answered = err == nil || turnclient.Code(err) != 0
	if err == nil {
		c.Got, c.Reason = "pass", detail
	} else {
		c.Reason = explain(srv, e.allowed, e.rule, realm, err)
	}
	return c
}

// dialFrom opens connections in ns from address src.
func dialFrom(ns *netns.NS, src netip.Addr, timeout time.Duration) func(network, address string) (net.Conn, error) {
	return func(network, address string) (c net.Conn, err error) {
		derr := ns.Do(func() error {
			var la net.Addr = &net.UDPAddr{IP: src.AsSlice()}
			if strings.HasPrefix(network, "tcp") {
				la = &net.TCPAddr{IP: src.AsSlice()}
			}
			d := net.Dialer{LocalAddr: la, Timeout: timeout}
			c, err = d.Dial(network, address)
			return nil
		})
		if derr != nil {
			return nil, derr
		}
		return c, err
	}
}

func (s *Services) checkSTUN(ctx context.Context, ah *Host, src netip.Addr, srv ICEServer) (string, error) {
	var pc net.PacketConn
	if err := ah.NS.Do(func() (err error) {
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		return err
	}); err != nil {
		return "", err
	}
	defer pc.Close()
	mapped, _, _, err := probe.Binding(ctx, pc, srv.Addr, checkTimeout)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Binding answered: mapped address %s", mapped), nil
}

func (s *Services) checkTURN(ctx context.Context, ah *Host, src netip.Addr, srv ICEServer) (detail, realm string, err error) {
	transport := "udp"
	switch {
	case srv.Kind == "turns":
		transport = "tls"
	case srv.Proto == ir.TCP:
		transport = "tcp"
	}
	c, err := turnclient.Dial(turnclient.Config{
		Transport: transport, Server: srv.Addr, Username: srv.Username, Password: srv.Credential,
		TLS:  &tls.Config{RootCAs: s.RootCAs, ServerName: srv.Addr.Addr().String(), MinVersion: tls.VersionTLS12},
		Dial: dialFrom(ah.NS, src, checkTimeout), RTO: 200 * time.Millisecond, Timeout: checkTimeout,
	})
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	relayed, _, err := c.Allocate(ctx, turnclient.AllocateOptions{IPv6: srv.Addr.Addr().Is6()})
	if err != nil {
		return "", c.Realm(), err
	}
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	c.Refresh(rctx, 0) // delete the allocation; errors do not matter
	cancel()
	return fmt.Sprintf("allocated relayed address %s (realm %q)", relayed, c.Realm()), c.Realm(), nil
}

// explain turns a failed check's error into plain words.
func explain(srv ICEServer, allowed bool, rule, realm string, err error) string {
	port := fmt.Sprintf("%s %d", strings.ToUpper(string(srv.Proto)), srv.Addr.Port())
	if realm == "" {
		realm = srv.Realm
	}
	var cve *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch code := turnclient.Code(err); {
	case code == 401 && srv.CredentialRealm != "" && srv.CredentialRealm != realm:
		return realmMismatch(realm, srv.CredentialRealm)
	case code == 401:
		return fmt.Sprintf("401 Unauthorized: the server (realm %q) refused the credentials", realm)
	case code != 0:
		var te *turnclient.Error
		errors.As(err, &te)
		return fmt.Sprintf("%d %s", code, te.Reason)
	case errors.Is(err, context.Canceled):
		return "cancelled before an answer"
	case errors.As(err, &unknownCA):
		return "TLS: the certificate is not issued by a trusted CA"
	case errors.As(err, &hostErr):
		return fmt.Sprintf("TLS: the certificate does not name %s", hostErr.Host)
	case errors.As(err, &invalid):
		return "TLS: invalid certificate: " + invalid.Error()
	case errors.As(err, &cve):
		return "TLS: certificate verification failed: " + cve.Err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		if !allowed {
			return fmt.Sprintf("connection refused (the firewall rejects %s)", port)
		}
		return fmt.Sprintf("connection refused (nothing listens on %s at %s)", port, srv.Addr.Addr())
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if srv.Kind == "turns" {
			return "TLS: the connection was closed during the handshake"
		}
		return "the connection was closed by the server"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		if !allowed {
			return fmt.Sprintf("timed out (the firewall drops %s)", port)
		}
		return fmt.Sprintf("timed out (no answer, although the policy allows %s by rule %s)", port, rule)
	}
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		return "TLS: the server did not answer with TLS"
	}
	return err.Error()
}
