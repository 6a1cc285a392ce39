package relay

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts of TCP and TLS client connections. A connection that holds no
// allocation (TLS handshake, challenge, refused Allocates) is closed after
// Limits.UnallocatedTimeout; one that holds an allocation may be idle for the
// lifetime cap plus a minute.
const (
	// writeTimeout: a client that stops reading is dropped rather than
	// blocking the relay's writers.
	writeTimeout = 10 * time.Second
	// maxFrame is the largest STUN or ChannelData frame over TCP.
	maxFrame = 20 + 0xffff + 4
)

var (
	errInvalidFrame = errors.New("not a STUN or ChannelData frame")
	errIncomplete   = errors.New("incomplete frame")
	errUserConns    = errors.New("too many connections for this user")
)

// frameLen returns the length of the first TURN frame in b (RFC 8656 section
// 12.5: STUN messages, and ChannelData padded to 4 bytes over TCP), with the
// same rules as pion/turn's stream framing so both always agree.
func frameLen(b []byte) (int, error) {
	if len(b) < 9 {
		return 0, errIncomplete
	}
	var size int
	switch {
	case len(b) >= 20 && binary.BigEndian.Uint32(b[4:8]) == 0x2112A442:
		size = int(binary.BigEndian.Uint16(b[2:4])) + 20
	case binary.BigEndian.Uint16(b[0:2]) >= 0x4000 && binary.BigEndian.Uint16(b[0:2]) <= 0x7fff:
		size = (int(binary.BigEndian.Uint16(b[2:4]))+3)&^3 + 4
	case len(b) < 20:
		return 0, errIncomplete
	default:
		return 0, errInvalidFrame
	}
	if len(b) < size {
		return 0, errIncomplete
	}
	return size, nil
}

// guardedListener accepts TCP (or TLS) client connections for the TURN
// engine: it bounds their number, wraps TLS, and puts the request guard in
// front of every connection.
type guardedListener struct {
	net.Listener
	s         *Server
	transport string
	tls       *tls.Config

	mu     sync.Mutex
	conns  map[*guardedConn]struct{}
	closed bool
}

// Accept implements net.Listener. Temporary failures (EMFILE) are retried
// here: pion/turn stops serving a listener whose Accept fails once.
func (l *guardedListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.s.limited(slog.LevelWarn, nil, "accept failed", "transport", l.transport, "err", err.Error())
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		src := sourceOf(raw.RemoteAddr())
		if why, max := l.s.admit(src); why != "" {
			l.s.metrics.refused.WithLabelValues(why).Inc()
			l.s.limited(slog.LevelWarn, raw.RemoteAddr(), "TCP connection refused", "limit", why, "max", max, "client", raw.RemoteAddr().String())
			raw.Close()
			continue
		}
		raw.SetDeadline(time.Now().Add(l.s.unallocated))
		inner := raw
		if l.tls != nil {
			inner = tls.Server(raw, l.tls)
		}
		c := &guardedConn{Conn: inner, l: l, buf: make([]byte, 4096), src: src,
			tuple: tupleKey(inner.RemoteAddr(), inner.LocalAddr())}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			l.s.release(src, "")
			raw.Close()
			return nil, net.ErrClosed
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.s.connMu.Lock()
		l.s.tcpByTuple[c.tuple] = c
		l.s.connMu.Unlock()
		l.s.metrics.tcpConnections.Inc()
		return c, nil
	}
}

// admit counts a new TCP or TLS connection from src, or says which limit
// refuses it (a metric label) and the limit.
func (s *Server) admit(src netip.Addr) (string, int) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	l := s.cfg.Limits
	switch {
	case l.MaxTCPConns > 0 && s.tcpConns.Load() >= int64(l.MaxTCPConns):
		return "tcp-connections", l.MaxTCPConns
	case l.MaxTCPConnsPerSource > 0 && s.tcpBySource[src] >= l.MaxTCPConnsPerSource:
		return "tcp-connections-per-source", l.MaxTCPConnsPerSource
	}
	s.tcpConns.Add(1)
	s.tcpBySource[src]++
	return "", 0
}

// release uncounts a connection from src (and of user, when it was counted).
func (s *Server) release(src netip.Addr, user string) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.tcpConns.Add(-1)
	if s.tcpBySource[src]--; s.tcpBySource[src] <= 0 {
		delete(s.tcpBySource, src)
	}
	if user != "" {
		if s.tcpByUser[user]--; s.tcpByUser[user] <= 0 {
			delete(s.tcpByUser, user)
		}
	}
}

// countUser counts a connection's user when it first authenticates; false
// when the user already has the most connections allowed.
func (s *Server) countUser(user string) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if max := s.cfg.Limits.MaxTCPConnsPerUser; max > 0 && s.tcpByUser[user] >= max {
		return false
	}
	s.tcpByUser[user]++
	return true
}

// holding marks the TCP or TLS connection of a 5-tuple as holding an
// allocation (or no longer), which sets its idle timeout.
func (s *Server) holding(src, dst net.Addr, held bool) {
	if _, ok := src.(*net.TCPAddr); !ok {
		return
	}
	s.connMu.Lock()
	c := s.tcpByTuple[tupleKey(src, dst)]
	s.connMu.Unlock()
	if c == nil {
		return
	}
	c.held.Store(held)
	if held {
		c.Conn.SetReadDeadline(time.Now().Add(s.idleTimeout))
	} else {
		c.Conn.SetReadDeadline(time.Now().Add(s.unallocated))
	}
}

// Close stops accepting and closes every connection (pion/turn leaves
// accepted connections open).
func (l *guardedListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := make([]*guardedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return err
}

// guardedConn frames a client's stream and runs the request guard on each
// frame. After a ConnectionBind (RFC 6062) the stream carries raw peer data
// and passes untouched.
type guardedConn struct {
	net.Conn
	l *guardedListener

	in, out     []byte // frames read but not yet judged; judged bytes for the engine
	buf         []byte
	passthrough bool
	held        atomic.Bool // holds an allocation
	closeOnce   sync.Once
	cl          *client
	src         netip.Addr
	tuple       string
	user        string // the user it first authenticated as, when counted
	refuse      error  // set by the guard: close the connection
}

func (c *guardedConn) client() *client {
	if c.cl == nil {
		c.cl = &client{
			transport: c.l.transport, src: c.Conn.RemoteAddr(), local: c.Conn.LocalAddr(),
			reply:    func(b []byte) { c.Write(b) },
			authed:   c.authenticated,
			dataConn: func() { c.passthrough = true },
		}
	}
	return c.cl
}

// authenticated is called by the guard for every authenticated request: the
// first one counts the connection for its user.
func (c *guardedConn) authenticated(user string) {
	if c.user != "" || c.refuse != nil {
		return
	}
	s := c.l.s
	if !s.countUser(user) {
		c.refuse = errUserConns
		s.metrics.refused.WithLabelValues("tcp-connections-per-user").Inc()
		s.limited(slog.LevelWarn, c.Conn.RemoteAddr(), "TCP connection refused", "limit", "tcp-connections-per-user",
			"max", s.cfg.Limits.MaxTCPConnsPerUser, "user", user, "client", c.Conn.RemoteAddr().String())
		return
	}
	c.user = user
}

// Read implements net.Conn.
func (c *guardedConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.held.Load() || c.passthrough {
			c.Conn.SetReadDeadline(time.Now().Add(c.l.s.idleTimeout))
		}
		if c.passthrough {
			if len(c.in) > 0 {
				c.out, c.in = c.in, nil
				continue
			}
			return c.Conn.Read(p)
		}
		size, err := frameLen(c.in)
		switch {
		case err == errInvalidFrame:
			return 0, err
		case err == errIncomplete:
			if len(c.in) >= maxFrame {
				return 0, errInvalidFrame
			}
			n, rerr := c.Conn.Read(c.buf)
			c.in = append(c.in, c.buf[:n]...)
			if rerr != nil && n == 0 {
				return 0, rerr
			}
			continue
		}
		frame := c.in[:size:size]
		c.in = c.in[size:]
		if len(c.in) == 0 {
			c.in = nil // let the backing array go
		}
		out, v := c.l.s.inspect(frame, c.client())
		if c.refuse != nil {
			return 0, c.refuse
		}
		switch v {
		case pass:
			c.out = frame
		case rewrite:
			c.out = out
		}
	}
}

// Write implements net.Conn.
func (c *guardedConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(p)
}

// Close implements net.Conn.
func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.s.connMu.Lock()
		if c.l.s.tcpByTuple[c.tuple] == c {
			delete(c.l.s.tcpByTuple, c.tuple)
		}
		c.l.s.connMu.Unlock()
		c.l.s.release(c.src, c.user)
		c.l.s.metrics.tcpConnections.Dec()
	})
	return err
}
