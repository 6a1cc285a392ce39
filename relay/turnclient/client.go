// Package turnclient is a small, synchronous TURN client (RFC 8656, RFC 6062,
// RFC 6156) over UDP, TCP or TLS. It exists to probe relays: every error
// response surfaces with its code, so tests can tell 401 from 403 from 486,
// and it is lean enough to drive thousands of streams from one process. It is
// tested against turnwall's relay and against coturn.
package turnclient

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// Error is a TURN error response.
type Error struct {
	Method stun.Method
	Code   int
	Reason string
	// Alternate and AlternateDomain are a 300 Try Alternate's
	// ALTERNATE-SERVER and ALTERNATE-DOMAIN, kept only when the response's
	// MESSAGE-INTEGRITY verifies with the request's key (an unauthenticated
	// redirect is not to be followed, RFC 8489 section 10).
	Alternate       netip.AddrPort
	AlternateDomain string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: error %d %s", e.Method, e.Code, e.Reason)
}

// Code returns the TURN error code of err, or 0.
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// Config says how to reach a relay and who to be.
type Config struct {
	Transport string         // udp (default), tcp or tls
	Server    netip.AddrPort // the relay's listener
	Username  string
	Password  string
	TLS       *tls.Config // for tls
	// Dial opens the connection (default net.Dialer); tests use it to dial
	// from inside a network namespace.
	Dial func(network, address string) (net.Conn, error)
	// RTO is the first UDP retransmission timeout (default 200 ms); a
	// transaction gives up after Timeout (default 5 s).
	RTO     time.Duration
	Timeout time.Duration
}

// Client is one TURN client: one connection to the relay, at most one
// allocation. Requests are synchronous; use one Client per goroutine.
type Client struct {
	cfg    Config
	conn   net.Conn
	stream bool // TCP or TLS: frames on a byte stream

	realm, nonce string
	key          []byte

	mu      sync.Mutex
	backlog [][]byte // data that arrived during a transaction
	rbuf    []byte   // stream read buffer
	ubuf    []byte   // datagram read buffer
	relayed netip.AddrPort
	token   []byte
}

// Dial connects to the relay (no request is sent).
func Dial(cfg Config) (*Client, error) {
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	if cfg.RTO == 0 {
		cfg.RTO = 200 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	dial := cfg.Dial
	if dial == nil {
		d := net.Dialer{Timeout: cfg.Timeout}
		dial = d.Dial
	}
	nw := "udp"
	if cfg.Transport != "udp" {
		nw = "tcp"
	}
	conn, err := dial(nw, cfg.Server.String())
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, conn: conn, stream: nw == "tcp"}
	if cfg.Transport == "tls" {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t := tls.Client(conn, tc)
		t.SetDeadline(time.Now().Add(cfg.Timeout))
		if err := t.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
		t.SetDeadline(time.Time{})
		c.conn = t
	}
	return c, nil
}

// Server is the relay's listener this client is connected to.
func (c *Client) Server() netip.AddrPort { return c.cfg.Server }

// ServerName is the TLS name the client checks (after a redirect, the
// ALTERNATE-DOMAIN), or "".
func (c *Client) ServerName() string {
	if c.cfg.TLS != nil {
		return c.cfg.TLS.ServerName
	}
	return ""
}

// Conn is the connection to the relay, for sending and reading data directly.
func (c *Client) Conn() net.Conn { return c.conn }

// LocalAddr is the client's address.
func (c *Client) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// ReservationToken is the token of the port reserved by the last Allocate
// with EvenPort.
func (c *Client) ReservationToken() []byte { return c.token }

// Relayed is the allocation's relayed address.
func (c *Client) Relayed() netip.AddrPort { return c.relayed }

// Close closes the connection (the allocation, if any, times out on the
// relay; call Refresh(0) first to delete it).
func (c *Client) Close() error { return c.conn.Close() }

// Key is the long-term credential key after the first authenticated request.
func (c *Client) Key() []byte { return c.key }

// Nonce and Realm are the relay's, after the first challenge.
func (c *Client) Nonce() string { return c.nonce }

// Realm is the relay's realm.
func (c *Client) Realm() string { return c.realm }

// SetCredentials replaces the username and password (the challenge is kept).
func (c *Client) SetCredentials(username, password string) {
	c.cfg.Username, c.cfg.Password = username, password
	if c.realm != "" {
		c.key = longTermKey(username, c.realm, password)
	}
}

func longTermKey(username, realm, password string) []byte {
	return stun.NewLongTermIntegrity(username, realm, password)
}

// AllocateOptions tune an Allocate request.
type AllocateOptions struct {
	TCP      bool          // RFC 6062 TCP allocation (REQUESTED-TRANSPORT 6)
	IPv6     bool          // REQUESTED-ADDRESS-FAMILY IPv6
	IPv4     bool          // REQUESTED-ADDRESS-FAMILY IPv4, explicitly
	Lifetime time.Duration // LIFETIME; 0 leaves it out
	// EvenPort asks for an even port and a reservation of the next one
	// (RFC 8656 EVEN-PORT with R); ReservationToken claims such a reservation.
	EvenPort         bool
	ReservationToken []byte
}

// Allocate asks for an allocation and returns its relayed address and
// lifetime.
func (c *Client) Allocate(ctx context.Context, o AllocateOptions) (netip.AddrPort, time.Duration, error) {
	proto := byte(17)
	if o.TCP {
		proto = 6
	}
	attrs := []stun.Setter{rawAttr(stun.AttrRequestedTransport, []byte{proto, 0, 0, 0})}
	if o.IPv6 {
		attrs = append(attrs, rawAttr(stun.AttrRequestedAddressFamily, []byte{2, 0, 0, 0}))
	} else if o.IPv4 {
		attrs = append(attrs, rawAttr(stun.AttrRequestedAddressFamily, []byte{1, 0, 0, 0}))
	}
	if o.Lifetime > 0 {
		attrs = append(attrs, lifetimeAttr(o.Lifetime))
	}
	if o.EvenPort {
		attrs = append(attrs, rawAttr(stun.AttrEvenPort, []byte{0x80}))
	}
	if o.ReservationToken != nil {
		attrs = append(attrs, rawAttr(stun.AttrReservationToken, o.ReservationToken))
	}
	resp, err := c.Do(ctx, stun.MethodAllocate, attrs...)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("allocate response without XOR-RELAYED-ADDRESS: %w", err)
	}
	ip, _ := netip.AddrFromSlice(relayed.IP)
	c.relayed = netip.AddrPortFrom(ip.Unmap(), uint16(relayed.Port))
	c.token = nil
	if tok, err := resp.Get(stun.AttrReservationToken); err == nil {
		c.token = append([]byte(nil), tok...)
	}
	return c.relayed, lifetimeOf(resp), nil
}

// Refresh refreshes the allocation; lifetime 0 deletes it.
func (c *Client) Refresh(ctx context.Context, lifetime time.Duration) (time.Duration, error) {
	resp, err := c.Do(ctx, stun.MethodRefresh, lifetimeAttr(lifetime))
	if err != nil {
		return 0, err
	}
	return lifetimeOf(resp), nil
}

// CreatePermission installs permissions for peers (ports are ignored).
func (c *Client) CreatePermission(ctx context.Context, peers ...netip.Addr) error {
	var attrs []stun.Setter
	for _, p := range peers {
		attrs = append(attrs, peerAttr(netip.AddrPortFrom(p, 0)))
	}
	_, err := c.Do(ctx, stun.MethodCreatePermission, attrs...)
	return err
}

// ChannelBind binds channel (0x4000-0x4FFF) to peer.
func (c *Client) ChannelBind(ctx context.Context, channel uint16, peer netip.AddrPort) error {
	_, err := c.Do(ctx, stun.MethodChannelBind, rawAttr(stun.AttrChannelNumber, []byte{byte(channel >> 8), byte(channel), 0, 0}), peerAttr(peer))
	return err
}

// Connect asks a TCP allocation to connect to peer (RFC 6062) and returns the
// connection ID.
func (c *Client) Connect(ctx context.Context, peer netip.AddrPort) (uint32, error) {
	resp, err := c.Do(ctx, stun.MethodConnect, peerAttr(peer))
	if err != nil {
		return 0, err
	}
	v, err := resp.Get(stun.AttrConnectionID)
	if err != nil || len(v) != 4 {
		return 0, errors.New("connect response without CONNECTION-ID")
	}
	return binary.BigEndian.Uint32(v), nil
}

// BindConnection opens a data connection for connection id (RFC 6062
// ConnectionBind) with the same credentials; on success the returned
// connection carries the peer's bytes.
func (c *Client) BindConnection(ctx context.Context, id uint32) (net.Conn, error) {
	d, err := Dial(c.cfg)
	if err != nil {
		return nil, err
	}
	d.realm, d.nonce, d.key = c.realm, c.nonce, c.key
	if _, err := d.Do(ctx, stun.MethodConnectionBind, rawAttr(stun.AttrConnectionID, binary.BigEndian.AppendUint32(nil, id))); err != nil {
		d.Close()
		return nil, err
	}
	if len(d.rbuf) > 0 {
		return &prefixConn{Conn: d.conn, prefix: d.rbuf}, nil
	}
	return d.conn, nil
}

type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// Send sends data to peer in a Send indication.
func (c *Client) Send(peer netip.AddrPort, data []byte) error {
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAttr(peer), rawAttr(stun.AttrData, data))
	if err != nil {
		return err
	}
	_, err = c.conn.Write(m.Raw)
	return err
}

// SendChannel sends data on a bound channel.
func (c *Client) SendChannel(channel uint16, data []byte) error {
	_, err := c.conn.Write(ChannelData(nil, channel, data, c.stream))
	return err
}

// ChannelData appends a ChannelData message to dst; over TCP it is padded to
// 4 bytes (RFC 8656 section 12.5).
func ChannelData(dst []byte, channel uint16, data []byte, pad bool) []byte {
	dst = binary.BigEndian.AppendUint16(dst, channel)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(data)))
	dst = append(dst, data...)
	if pad {
		for n := len(data); n%4 != 0; n++ {
			dst = append(dst, 0)
		}
	}
	return dst
}

// Data is relayed data from a peer.
type Data struct {
	Channel uint16         // 0 for a Data indication
	Peer    netip.AddrPort // set for a Data indication
	Payload []byte
}

// ReadData reads the next relayed data (Data indication or ChannelData),
// skipping other messages, until the deadline.
func (c *Client) ReadData(deadline time.Time) (Data, error) {
	for {
		c.mu.Lock()
		var msg []byte
		if len(c.backlog) > 0 {
			msg, c.backlog = c.backlog[0], c.backlog[1:]
		}
		c.mu.Unlock()
		if msg == nil {
			var err error
			if msg, err = c.readMessage(deadline); err != nil {
				return Data{}, err
			}
		}
		if d, ok := ParseData(msg); ok {
			return d, nil
		}
	}
}

// ParseData decodes a ChannelData message or a Data indication.
func ParseData(msg []byte) (Data, bool) {
	if len(msg) >= 4 && msg[0]&0xc0 == 0x40 {
		n := int(binary.BigEndian.Uint16(msg[2:4]))
		if 4+n > len(msg) {
			return Data{}, false
		}
		return Data{Channel: binary.BigEndian.Uint16(msg[0:2]), Payload: msg[4 : 4+n]}, true
	}
	m := &stun.Message{Raw: msg}
	if m.Decode() != nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
		return Data{}, false
	}
	var peer stun.XORMappedAddress
	if peer.GetFromAs(m, stun.AttrXORPeerAddress) != nil {
		return Data{}, false
	}
	data, err := m.Get(stun.AttrData)
	if err != nil {
		return Data{}, false
	}
	ip, _ := netip.AddrFromSlice(peer.IP)
	return Data{Peer: netip.AddrPortFrom(ip.Unmap(), uint16(peer.Port)), Payload: data}, true
}

// readMessage reads one datagram, or one frame of the stream.
func (c *Client) readMessage(deadline time.Time) ([]byte, error) {
	c.conn.SetReadDeadline(deadline)
	if !c.stream {
		if c.ubuf == nil {
			c.ubuf = make([]byte, 64<<10)
		}
		n, err := c.conn.Read(c.ubuf)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), c.ubuf[:n]...), nil
	}
	for {
		if n, ok := streamFrame(c.rbuf); ok {
			msg := c.rbuf[:n:n]
			c.rbuf = c.rbuf[n:]
			return msg, nil
		}
		buf := make([]byte, 4096)
		n, err := c.conn.Read(buf)
		c.rbuf = append(c.rbuf, buf[:n]...)
		if err != nil && n == 0 {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// streamFrame returns the length of the first complete frame of a stream.
func streamFrame(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var n int
	if b[0]&0xc0 == 0x40 {
		n = 4 + (int(binary.BigEndian.Uint16(b[2:4]))+3)&^3
	} else {
		n = 20 + int(binary.BigEndian.Uint16(b[2:4]))
	}
	return n, len(b) >= n
}

// Do sends a request of method with attrs, answering the authentication
// challenge, and returns the success response or an *Error.
func (c *Client) Do(ctx context.Context, method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.transaction(ctx, method, attrs)
		if err != nil {
			return nil, err
		}
		if resp.Type.Class == stun.ClassSuccessResponse {
			return resp, nil
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(resp); err != nil {
			return nil, fmt.Errorf("%s error response without ERROR-CODE", method)
		}
		e := &Error{Method: method, Code: int(code.Code), Reason: string(code.Reason)}
		if code.Code == stun.CodeTryAlternate {
			c.alternate(resp, e)
		}
		retry := false
		switch code.Code {
		case stun.CodeUnauthorized:
			// First contact, or credentials the relay refused.
			retry = c.key == nil || c.nonce == ""
			c.challenge(resp)
		case stun.CodeStaleNonce:
			retry = true
			c.challenge(resp)
		}
		if !retry || attempt >= 2 || c.cfg.Username == "" {
			return nil, e
		}
	}
}

// alternate reads a 300's ALTERNATE-SERVER and ALTERNATE-DOMAIN into e when
// the response is signed with the client's key.
func (c *Client) alternate(resp *stun.Message, e *Error) {
	if c.key == nil || stun.MessageIntegrity(c.key).Check(resp) != nil {
		return
	}
	var alt stun.AlternateServer
	if alt.GetFrom(resp) != nil {
		return
	}
	ip, ok := netip.AddrFromSlice(alt.IP)
	if !ok || alt.Port <= 0 || alt.Port > 65535 {
		return
	}
	e.Alternate = netip.AddrPortFrom(ip.Unmap(), uint16(alt.Port))
	if d, err := resp.Get(stun.AttrAlternateDomain); err == nil && validDomain(string(d)) {
		e.AlternateDomain = string(d)
	}
}

// validDomain accepts host names only, as they end up in reports.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (c *Client) challenge(resp *stun.Message) {
	var realm stun.Realm
	var nonce stun.Nonce
	if realm.GetFrom(resp) == nil {
		c.realm = realm.String()
	}
	if nonce.GetFrom(resp) == nil {
		c.nonce = nonce.String()
	}
	if c.realm != "" && c.cfg.Username != "" {
		c.key = longTermKey(c.cfg.Username, c.realm, c.cfg.Password)
	}
}

// transaction sends one request and waits for its response, retransmitting
// over UDP.
func (c *Client) transaction(ctx context.Context, method stun.Method, attrs []stun.Setter) (*stun.Message, error) {
	setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
	setters = append(setters, attrs...)
	if c.key != nil && c.nonce != "" {
		setters = append(setters, stun.NewUsername(c.cfg.Username), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), stun.MessageIntegrity(c.key))
	}
	setters = append(setters, stun.Fingerprint)
	req, err := stun.Build(setters...)
	if err != nil {
		return nil, err
	}
	defer c.conn.SetReadDeadline(time.Time{}) // Conn() users read without one
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	rto := c.cfg.RTO
	for {
		if _, err := c.conn.Write(req.Raw); err != nil {
			return nil, err
		}
		wait := deadline
		if !c.stream && time.Now().Add(rto).Before(deadline) {
			wait = time.Now().Add(rto)
		}
		for {
			msg, err := c.readMessage(wait)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Now().Before(deadline) && ctx.Err() == nil {
					break // retransmit
				}
				if errors.As(err, &ne) && ne.Timeout() {
					return nil, fmt.Errorf("%s: no response: %w", method, context.DeadlineExceeded)
				}
				return nil, err
			}
			m := &stun.Message{Raw: msg}
			if m.Decode() != nil || m.TransactionID != req.TransactionID || m.Type.Method != method ||
				(m.Type.Class != stun.ClassSuccessResponse && m.Type.Class != stun.ClassErrorResponse) {
				c.mu.Lock()
				if len(c.backlog) < 1024 {
					c.backlog = append(c.backlog, msg)
				}
				c.mu.Unlock()
				continue
			}
			return m, nil
		}
		rto *= 2
	}
}

func rawAttr(t stun.AttrType, v []byte) stun.Setter {
	return stun.RawAttribute{Type: t, Value: v, Length: uint16(len(v))}
}

func lifetimeAttr(d time.Duration) stun.Setter {
	return rawAttr(stun.AttrLifetime, binary.BigEndian.AppendUint32(nil, uint32(d/time.Second)))
}

func lifetimeOf(m *stun.Message) time.Duration {
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second
}

type peerSetter netip.AddrPort

func (p peerSetter) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	return stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
}

func peerAttr(p netip.AddrPort) stun.Setter { return peerSetter(p) }

// RawPeerAttr encodes a peer address exactly as given, an IPv4-mapped IPv6
// address included, for tests that probe how relays treat such addresses.
func RawPeerAttr(ip []byte, port uint16) stun.Setter {
	return rawPeer{ip: ip, port: port}
}

type rawPeer struct {
	ip   []byte
	port uint16
}

func (p rawPeer) AddTo(m *stun.Message) error {
	// XOR-PEER-ADDRESS by hand: stun.XORMappedAddress writes a 16-byte
	// IPv4-mapped address as IPv4.
	family := byte(1)
	if len(p.ip) == 16 {
		family = 2
	}
	v := []byte{0, family, 0, 0}
	binary.BigEndian.PutUint16(v[2:], p.port^0x2112)
	xorKey := append(binary.BigEndian.AppendUint32(nil, 0x2112A442), m.TransactionID[:]...)
	for i, b := range p.ip {
		v = append(v, b^xorKey[i])
	}
	m.Add(stun.AttrXORPeerAddress, v)
	return nil
}
