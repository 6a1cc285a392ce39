package relay

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/relay/creds"
)

// The request guard sees every client message before the TURN engine
// (pion/turn) does. It authenticates requests that carry credentials (so that
// a username can be verified against several shared secrets at once), counts
// authentication failures by reason, and answers itself what the engine would
// get wrong or not enforce:
//
//   - ChannelBind to a refused peer: 403 Forbidden (pion answers 401, which
//     sends clients into an authentication loop);
//   - a request on another user's allocation: 441 Wrong Credentials, and on
//     a 5-tuple with no allocation: 437 Allocation Mismatch (pion is silent);
//   - TCP allocations when tcp_relay is off or over UDP (RFC 6062 section
//     5.1): 442; an address family the relay has no address for: 440;
//   - a new Allocate while the relay drains or is above its capacity
//     threshold, when Config.Alternates has another relay: 300 Try Alternate
//     with ALTERNATE-SERVER, and ALTERNATE-DOMAIN over TLS (RFC 8489
//     section 10, RFC 8656); without one, the engine's quota hook refuses
//     it while draining (486) and takes it below the total quota;
//   - a LIFETIME above the relay's cap: rewritten to the cap and the request
//     signed again with the same key, so the engine grants the cap.
//
// Everything else, and everything the guard does not understand, goes to the
// engine unchanged: the guard only ever refuses or shortens.

type verdict int

const (
	pass    verdict = iota // hand the message to the engine unchanged
	drop                   // answered (or ignored) here
	rewrite                // hand the returned message instead
)

// client is where a message came from.
type client struct {
	transport string   // udp, tcp or tls
	src       net.Addr // the client's address as the engine sees it
	local     net.Addr // the listener's address as the engine sees it
	reply     func([]byte)
	authed    func(user string) // a request authenticated on this connection (TCP)
	dataConn  func()            // a ConnectionBind passed: raw data follows (TCP)
}

// stunRequestMethod returns the method of a STUN request the guard inspects,
// from the header alone, so ChannelData and indications cost two compares.
func stunRequestMethod(b []byte) (stun.Method, bool) {
	if len(b) < 20 || b[0]&0xc0 != 0 || binary.BigEndian.Uint32(b[4:8]) != 0x2112A442 {
		return 0, false
	}
	var t stun.MessageType
	t.ReadValue(binary.BigEndian.Uint16(b[0:2]))
	if t.Class != stun.ClassRequest {
		return 0, false
	}
	switch t.Method {
	case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind,
		stun.MethodConnect, stun.MethodConnectionBind:
		return t.Method, true
	}
	return 0, false
}

// inspect judges one client message.
func (s *Server) inspect(b []byte, c *client) ([]byte, verdict) {
	method, ok := stunRequestMethod(b)
	if !ok {
		return nil, pass
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return nil, pass
	}
	if !m.Contains(stun.AttrMessageIntegrity) {
		s.metrics.authChallenges.Inc()
		return nil, pass
	}
	var u stun.Username
	_ = u.GetFrom(m)
	src, tuser, now := sourceOf(c.src), throttleKey(string(u)), time.Now()
	if why := s.throttle.check(src, tuser, now); why != "" {
		// Not verified: a correct guess is refused like a wrong one until
		// the bucket refills.
		s.metrics.authThrottled.WithLabelValues(why).Inc()
		s.limited(slog.LevelWarn, c.src, "authentication throttled", "by", why, "method", method.String(),
			"client", c.src.String(), "transport", c.transport, "username", u.String())
		if c.transport != UDP { // over UDP, silence: no reflection towards a spoofed source
			if resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID),
				stun.NewType(method, stun.ClassErrorResponse), stun.ErrorCodeAttribute{Code: 429, Reason: []byte("Try Again Later")},
				stun.Fingerprint); err == nil {
				c.reply(resp.Raw)
			}
		}
		return nil, drop
	}
	userID, key, fail := s.cfg.Auth.Verify(m, c.src)
	if fail != authOK {
		s.metrics.authFailures.WithLabelValues(string(fail)).Inc()
		if fail == AuthBadPassword {
			s.throttle.failed(src, tuser, now)
		} else {
			s.throttle.failed(src, "", now)
		}
		s.limited(slog.LevelWarn, c.src, "authentication failed", "reason", string(fail), "method", method.String(),
			"client", c.src.String(), "transport", c.transport, "username", u.String())
		return nil, pass // the engine answers 401 with a fresh nonce
	}
	if c.authed != nil {
		c.authed(userID)
	}
	refuse := func(code stun.ErrorCode, extra ...stun.Setter) ([]byte, verdict) {
		s.metrics.refused.WithLabelValues(codeLabel(code)).Inc()
		setters := append([]stun.Setter{stun.NewTransactionIDSetter(m.TransactionID),
			stun.NewType(method, stun.ClassErrorResponse), code}, extra...)
		setters = append(setters, stun.MessageIntegrity(key), stun.Fingerprint)
		if resp, err := stun.Build(setters...); err == nil {
			c.reply(resp.Raw)
		}
		return nil, drop
	}

	switch method {
	case stun.MethodAllocate:
		if v, err := m.Get(stun.AttrRequestedTransport); err == nil && len(v) == 4 && v[0] == 6 {
			if !s.cfg.TCPRelay || c.transport == "udp" {
				return refuse(stun.CodeUnsupportedTransProto)
			}
		}
		if !s.hasFamily(m, c.local) {
			return refuse(stun.CodeAddrFamilyNotSupported)
		}
		if why := s.redirectReason(); why != "" {
			// Draining or above the capacity threshold: a new allocation
			// goes to an alternate when there is one (a retransmitted
			// Allocate of an existing allocation goes to the engine).
			local, ok := addrPort(c.local)
			if _, exists := s.quota.owner(c.src, c.local); ok && !exists {
				if alt, domain, ok := s.alternate(c.transport, unmapAP(local)); ok {
					s.metrics.redirects.WithLabelValues(why).Inc()
					s.logRedirect(c, why, alt, userID)
					extra := []stun.Setter{&stun.AlternateServer{IP: alt.Addr().AsSlice(), Port: int(alt.Port())}}
					if domain != "" {
						extra = append(extra, rawAttr(stun.AttrAlternateDomain, []byte(domain)))
					}
					return refuse(stun.CodeTryAlternate, extra...)
				}
			}
		}
	case stun.MethodConnectionBind:
		if c.dataConn != nil {
			c.dataConn()
		}
		return nil, pass
	default:
		owner, exists := s.quota.owner(c.src, c.local)
		switch {
		case !exists:
			return refuse(stun.CodeAllocMismatch)
		case owner != userID:
			s.limited(slog.LevelWarn, c.src, "request on another user's allocation", "method", method.String(),
				"client", c.src.String(), "user", userID, "owner", owner)
			return refuse(stun.CodeWrongCredentials)
		}
	}
	if method == stun.MethodChannelBind {
		var peer stun.XORMappedAddress
		if err := peer.GetFromAs(m, stun.AttrXORPeerAddress); err == nil {
			if !s.permit(c.src, peer.IP, "ChannelBind", userID) {
				return refuse(stun.CodeForbidden)
			}
		}
	}
	if method == stun.MethodAllocate || method == stun.MethodRefresh {
		s.noteRequest(method, c, m)
		if out, ok := s.capLifetime(m, key); ok {
			return out, rewrite
		}
	}
	return nil, pass
}

// throttleKey is the user a username guesses the password of: the user part
// of a TURN REST username (whatever its expiry), or the static user.
func throttleKey(username string) string {
	if _, user, ok := creds.ParseUsername(username); ok && user != "" {
		return user
	}
	return username
}

func rawAttr(t stun.AttrType, v []byte) stun.Setter {
	return stun.RawAttribute{Type: t, Value: v, Length: uint16(len(v))}
}

func codeLabel(c stun.ErrorCode) string {
	return string([]byte{byte('0' + c/100), byte('0' + c/10%10), byte('0' + c%10)})
}

// hasFamily reports whether the relay has an address of the family an
// Allocate asks for: REQUESTED-ADDRESS-FAMILY, or else the listener's family.
func (s *Server) hasFamily(m *stun.Message, local net.Addr) bool {
	v, err := m.Get(stun.AttrRequestedAddressFamily)
	if err == nil {
		if len(v) != 4 {
			return true // malformed: the engine answers 400
		}
		switch v[0] {
		case 0x01:
			return s.relayV4.IsValid()
		case 0x02:
			return s.relayV6.IsValid()
		}
		return true // unknown family: the engine answers 440
	}
	if m.Contains(stun.AttrReservationToken) {
		return true
	}
	ap, ok := addrPort(local)
	if !ok || ap.Addr().Unmap().Is4() {
		return s.relayV4.IsValid()
	}
	return s.relayV6.IsValid()
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort(), true
	case *net.TCPAddr:
		return a.AddrPort(), true
	}
	return netip.AddrPort{}, false
}

// capLifetime rewrites a LIFETIME above the cap and signs the message again.
func (s *Server) capLifetime(m *stun.Message, key []byte) ([]byte, bool) {
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		return nil, false
	}
	want := uint32(s.maxLifetime / time.Second)
	if binary.BigEndian.Uint32(v) <= want {
		return nil, false
	}
	out := &stun.Message{Type: m.Type, TransactionID: m.TransactionID}
	out.WriteHeader()
	fingerprint := false
attrs:
	for _, a := range m.Attributes {
		switch a.Type {
		case stun.AttrMessageIntegrity: // what follows it is not covered by it
			fingerprint = m.Contains(stun.AttrFingerprint)
			break attrs
		case stun.AttrFingerprint:
			break attrs
		case stun.AttrLifetime:
			out.Add(a.Type, binary.BigEndian.AppendUint32(nil, want))
		default:
			out.Add(a.Type, a.Value)
		}
	}
	if err := stun.MessageIntegrity(key).AddTo(out); err != nil {
		return nil, false
	}
	if fingerprint {
		if err := stun.Fingerprint.AddTo(out); err != nil {
			return nil, false
		}
	}
	return out.Raw, true
}
