package probe

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Transports of a TURN URI, as the table names them.
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

// URI is a STUN or TURN URI in the WebRTC form (RFC 7064, RFC 7065):
// stun:host[:port], turn:host[:port][?transport=udp|tcp], turns:host[:port].
type URI struct {
	Scheme    string // stun, turn or turns
	Host      string // name or address, without brackets
	Port      uint16
	Transport string // udp, tcp or tls (turns)
}

// String renders the URI in the WebRTC form.
func (u URI) String() string {
	h := u.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	s := fmt.Sprintf("%s:%s:%d", u.Scheme, h, u.Port)
	if u.Scheme == "turn" {
		s += "?transport=" + u.Transport
	}
	return s
}

// HostPort is host:port for dialing.
func (u URI) HostPort() string { return net.JoinHostPort(u.Host, strconv.Itoa(int(u.Port))) }

// ParseURI parses a stun:, turn: or turns: URI. A bare host:port is taken as
// stun: when defaultScheme is "stun".
func ParseURI(s, defaultScheme string) (URI, error) {
	var u URI
	rest := s
	if i := strings.Index(s, ":"); i > 0 && (s[:i] == "stun" || s[:i] == "turn" || s[:i] == "turns" || s[:i] == "stuns") {
		u.Scheme, rest = s[:i], s[i+1:]
	} else if defaultScheme != "" {
		u.Scheme = defaultScheme
	} else {
		return u, fmt.Errorf("%q: expected turn:host:port?transport=udp|tcp or turns:host:port", s)
	}
	if u.Scheme == "stuns" {
		return u, fmt.Errorf("%q: stuns: is not probed (browsers do not use STUN over TLS)", s)
	}
	query := ""
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, query = rest[:i], rest[i+1:]
	}
	rest = strings.TrimPrefix(rest, "//")
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return u, fmt.Errorf("%q: unclosed [ in host", s)
		}
		host, port = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		if rest[end+1:] != "" && !strings.HasPrefix(rest[end+1:], ":") {
			return u, fmt.Errorf("%q: junk after ]", s)
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if strings.Contains(host, ":") {
			return u, fmt.Errorf("%q: IPv6 addresses need brackets", s)
		}
	}
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return u, fmt.Errorf("%q: missing or bad host", s)
	}
	u.Host = host
	switch {
	case port == "" && u.Scheme == "turns":
		u.Port = 5349
	case port == "":
		u.Port = 3478
	default:
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return u, fmt.Errorf("%q: bad port %q", s, port)
		}
		u.Port = uint16(p)
	}
	u.Transport = UDP
	if u.Scheme == "turns" {
		u.Transport = TLS
	}
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if k != "transport" {
			return u, fmt.Errorf("%q: unknown parameter %q", s, k)
		}
		switch {
		case u.Scheme == "stun":
			return u, fmt.Errorf("%q: stun: URIs take no transport", s)
		case v == "udp" && u.Scheme == "turn":
			u.Transport = UDP
		case v == "tcp" && u.Scheme == "turn":
			u.Transport = TCP
		case v == "tcp" && u.Scheme == "turns":
			u.Transport = TLS
		default:
			return u, fmt.Errorf("%q: transport=%s is not valid for %s:", s, v, u.Scheme)
		}
	}
	return u, nil
}
