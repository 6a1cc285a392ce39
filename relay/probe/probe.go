// Package probe checks, from where an agent sits, which paths WebRTC's ICE
// would find to a contact centre's media: STUN binding (server-reflexive
// candidates and the NAT's mapping behaviour, RFC 5780 style), TURN
// allocations over UDP, TCP and TLS, CreatePermission, media-like packets
// through the relay in both directions (loss, jitter, one-way delay and RTT
// measured separately, so one-way audio shows as one-way), and the TLS
// certificate of every turns: endpoint. The report layer (report.go) turns
// the checks into the candidate table a browser would build, the pair it
// would pick, and the likely cause of every failure in plain words.
//
// With only TURN URIs the probe is its own media peer: a second allocation on
// the same relay receives the agent side's packets and sends its own back.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
)

// Config says what to probe and how.
type Config struct {
	STUN []URI // stun: servers
	TURN []URI // turn: and turns: servers

	Username, Password string // long-term credentials
	Secret             string // or a TURN REST API shared secret
	RESTUser           string // user part of REST usernames (default "turnwall-probe")

	Timeout time.Duration // per check (default 3 s)
	// Media: packets sent each way per relay check (default 50) at Rate per
	// second (default 50) of Size bytes (default 160, 20 ms of Opus).
	Packets int
	Rate    int
	Size    int

	Roots      *x509.CertPool // for certificate chains; nil: the system's
	ServerName string         // TLS name to check; default: the URI's host

	// Dial and ListenPacket open sockets (defaults: net.Dialer and
	// net.ListenPacket); tests use them to open sockets in a namespace.
	Dial         func(network, address string) (net.Conn, error)
	ListenPacket func(network, address string) (net.PacketConn, error)
	// Resolve looks up host names (default: net.DefaultResolver).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	Now     func() time.Time
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Packets <= 0 {
		c.Packets = 50
	}
	if c.Rate <= 0 {
		c.Rate = 50
	}
	if c.Size < headerLen {
		if c.Size == 0 {
			c.Size = 160
		} else {
			c.Size = headerLen
		}
	}
	if c.RESTUser == "" {
		c.RESTUser = "turnwall-probe"
	}
	if c.Dial == nil {
		c.Dial = func(network, address string) (net.Conn, error) {
			d := net.Dialer{Timeout: c.Timeout}
			return d.Dial(network, address)
		}
	}
	if c.ListenPacket == nil {
		c.ListenPacket = net.ListenPacket
	}
	if c.Resolve == nil {
		c.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// credentials returns the username and password to authenticate with.
func (c *Config) credentials() (string, string) {
	if c.Secret != "" {
		return creds.Generate(c.Secret, c.RESTUser, c.Now().Add(time.Hour))
	}
	return c.Username, c.Password
}

// Check kinds.
const (
	KindSTUN       = "stun-binding"
	KindNAT        = "nat-mapping"
	KindAllocate   = "turn-allocate"
	KindPermission = "create-permission"
	KindMedia      = "media"
	KindCert       = "tls-certificate"
)

// Statuses of a check.
const (
	OK   = "ok"
	Fail = "fail"
	Warn = "warn" // works, with a problem worth fixing (certificate expiring soon)
	Skip = "skip" // not run because an earlier step failed
)

// Check is one probe step with its verdict.
type Check struct {
	Kind      string `json:"kind"`
	Target    string `json:"target"`           // the URI
	Transport string `json:"transport"`        // udp, tcp or tls
	Server    string `json:"server,omitempty"` // address:port dialled
	// Redirect says how a 300 Try Alternate was followed, Alternate is
	// where to (the server the later checks of the URI ran on).
	Redirect  string  `json:"redirect,omitempty"`
	Alternate string  `json:"alternate,omitempty"`
	Status    string  `json:"status"`
	Millis    float64 `json:"ms"`
	Reason    string  `json:"reason"`          // plain words
	Error     string  `json:"error,omitempty"` // the raw error
	Code      int     `json:"code,omitempty"`  // STUN/TURN error code

	Local   string      `json:"local,omitempty"`   // host candidate address
	Mapped  string      `json:"mapped,omitempty"`  // server-reflexive address
	Relayed string      `json:"relayed,omitempty"` // relayed address
	NAT     string      `json:"nat,omitempty"`     // mapping behaviour
	Media   *MediaStats `json:"media,omitempty"`
	Cert    *CertInfo   `json:"cert,omitempty"`
}

// Report is everything a probe found.
type Report struct {
	Started time.Time `json:"started"`
	Checks  []Check   `json:"checks"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Run runs every check; it returns an error only for a bad configuration.
// Every step is bounded by Timeout, media by Packets/Rate.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if len(cfg.STUN) == 0 && len(cfg.TURN) == 0 {
		return nil, errors.New("nothing to probe: give STUN or TURN servers")
	}
	r := &Report{Started: cfg.Now()}
	r.Checks = append(r.Checks, stunChecks(ctx, &cfg)...)
	for _, u := range cfg.TURN {
		if u.Transport == TLS {
			r.Checks = append(r.Checks, certCheck(ctx, &cfg, u))
		}
		r.Checks = append(r.Checks, turnChecks(ctx, &cfg, u)...)
	}
	return r, nil
}

// resolve returns the first address of u's host (IPv4 preferred).
func resolve(ctx context.Context, cfg *Config, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	addrs, err := cfg.Resolve(ctx, host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("%s has no address", host)
	}
	return addrs[0], nil
}

func tlsConfig(cfg *Config, u URI) *tls.Config {
	// The allocation itself does not verify: the certificate has its own
	// check, so a bad certificate does not hide whether TURN works.
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, ServerName: serverName(cfg, u)}
}

func serverName(cfg *Config, u URI) string {
	if cfg.ServerName != "" {
		return cfg.ServerName
	}
	if _, err := netip.ParseAddr(u.Host); err == nil {
		return ""
	}
	return u.Host
}
