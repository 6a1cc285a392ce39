// Package call places a real WebRTC audio call between two endpoints that
// live in different network namespaces of a lab, and measures the media in
// both directions: the end-to-end proof that a policy lets a softphone (the
// agent) reach its far end (typically an ICE-lite media server) directly or
// through a TURN relay.
//
// Both peers are pion/webrtc PeerConnections in this process. Each one gets
// its own transport.Net: every socket pion opens (host candidates, STUN and
// TURN over UDP, TURN over TCP and TLS) is created on a thread switched into
// the endpoint's namespace, is bound to one of the endpoint's own addresses
// (never another address the host carries, such as a lab transfer address),
// and only those addresses appear in candidates. Signalling is in-process:
// the agent offers, both sides gather completely before the descriptions are
// exchanged (no trickle), and mDNS is off.
//
// TURN over TLS (turns:) is verified against Endpoint.RootCAs: pion itself
// only offers InsecureSkipVerify or the system roots for TURN/TLS, so the
// TCP connection and the TLS handshake for turns: servers are made here (the
// agent's proxy dialer) with the endpoint's roots, and pion runs TURN over
// the finished TLS connection. TURN over DTLS (turns:?transport=udp) is left
// to pion and is verified against the system roots only.
package call

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

// Server is one ICE server URL with credentials: stun:, turn: or turns:,
// optionally with ?transport=udp or tcp. Hosts should be IP literals: host
// names are resolved with the process's resolver, not the namespace's.
type Server struct {
	URL, Username, Credential string
	// TLSName is the name a turns: server's certificate must carry (the
	// ALTERNATE-DOMAIN of a relay that redirected the agent); "": the
	// URL's host.
	TLSName string
}

// Endpoint is one side of the call.
type Endpoint struct {
	Name string // for reports, e.g. `agents "floor3"`
	NS   *netns.NS
	// Addrs are the only local addresses that may appear in candidates or
	// be used as a source. The host may carry others on the same
	// interface (a lab transfer address) that are never used.
	Addrs     []netip.Addr
	Servers   []Server
	RelayOnly bool      // iceTransportPolicy "relay"
	Lite      bool      // ICE-lite media server: host candidates only (Servers are ignored)
	Ports     [2]uint16 // host-candidate UDP port range (zero: any)
	// RootCAs is the trust for turns: servers; nil means the system roots.
	RootCAs *x509.CertPool
	// InsecureTLS accepts any certificate from turns: servers (a lab relay
	// with a throwaway certificate nobody holds the CA of). Certificate
	// validity is then left to the product's own probe.
	InsecureTLS bool
}

// Options tune a call; zero values take the defaults.
type Options struct {
	ConnectTimeout   time.Duration // gathering, signalling, ICE and DTLS; default 10s
	Media            time.Duration // how long both sides send; default 1s
	PacketsPerSecond int           // default 50 (20 ms packets), at most 1000
	PayloadSize      int           // RTP payload bytes; default 160, at most 1200
	// AfterConnect is a test hook: it runs once both sides are connected,
	// before any media is sent.
	AfterConnect func()
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Media <= 0 {
		o.Media = time.Second
	}
	if o.PacketsPerSecond <= 0 {
		o.PacketsPerSecond = 50
	}
	if o.PacketsPerSecond > 1000 {
		o.PacketsPerSecond = 1000
	}
	if o.PayloadSize <= 0 {
		o.PayloadSize = 160
	}
	if o.PayloadSize > 1200 {
		o.PayloadSize = 1200
	}
	return o
}

// Candidate is one ICE candidate.
type Candidate struct {
	Type     string `json:"type"`     // host, srflx, prflx, relay
	Protocol string `json:"protocol"` // udp or tcp
	Address  string `json:"address"`
	Port     int    `json:"port"`
	// RelatedAddress and RelatedPort are the local socket a srflx or relay
	// candidate was gathered from.
	RelatedAddress string `json:"related_address,omitempty"`
	RelatedPort    int    `json:"related_port,omitempty"`
	RelayProtocol  string `json:"relay_protocol,omitempty"` // udp, tcp, tls or dtls for relay candidates: how the TURN server is reached
	URL            string `json:"url,omitempty"`            // the server the candidate came from, when known
}

// String renders "relay udp 192.0.2.10:49160 via tls".
func (c Candidate) String() string {
	s := c.Type + " " + c.Protocol + " " + net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
	if c.RelayProtocol != "" {
		s += " via " + c.RelayProtocol
	}
	return s
}

// Direction is the media one side sent and the other received.
type Direction struct {
	Sent     int     `json:"sent"`      // packets
	Received int     `json:"received"`  // distinct sequence numbers
	LossPct  float64 `json:"loss_pct"`  // (Sent-Received)/Sent, in percent
	JitterMs float64 `json:"jitter_ms"` // RFC 3550 interarrival jitter at the receiver
}

// States of a call.
const (
	StateConnected = "connected"
	StateFailed    = "failed"
	StateTimeout   = "timeout"
	StateError     = "error"
)

// Audio verdicts.
const (
	AudioBoth      = "both ways"
	AudioAgentDeaf = "one way: agent hears nothing"
	AudioFarDeaf   = "one way: far end hears nothing"
	AudioNone      = "no audio" // also every call that never connected
)

// Result is what a call did.
type Result struct {
	State string `json:"state"` // connected, failed, timeout or error
	// ConnectTime runs from the start of Run (gathering included) until
	// both sides are connected (ICE and DTLS).
	ConnectTime time.Duration `json:"connect_time_ns"`
	// Local and Remote are the selected candidate pair seen from the agent.
	Local       *Candidate  `json:"local,omitempty"`
	Remote      *Candidate  `json:"remote,omitempty"`
	Gathered    []Candidate `json:"gathered"`     // the agent's local candidates, by the end of the call
	FarGathered []Candidate `json:"far_gathered"` // the far end's local candidates
	// RTTMs is the round-trip time of the selected pair (ICE checks and
	// keep-alives); 0 when not measured.
	RTTMs      float64   `json:"rtt_ms"`
	AgentToFar Direction `json:"agent_to_far"`
	FarToAgent Direction `json:"far_to_agent"`
	Audio      string    `json:"audio"`           // both ways, one way: ..., or no audio (also when never connected)
	Err        string    `json:"error,omitempty"` // plain-words reason when not connected, or what went wrong
}

// verdict names the audio outcome from both directions.
func verdict(agentToFar, farToAgent Direction) string {
	farHears := agentToFar.Received > 0 && agentToFar.LossPct < 100
	agentHears := farToAgent.Received > 0 && farToAgent.LossPct < 100
	switch {
	case farHears && agentHears:
		return AudioBoth
	case farHears:
		return AudioAgentDeaf
	case agentHears:
		return AudioFarDeaf
	}
	return AudioNone
}

func (e Endpoint) label(role string) string {
	if e.Name == "" {
		return role
	}
	return role + " " + e.Name
}

func (e Endpoint) validate(role string) error {
	if e.NS == nil {
		return fmt.Errorf("%s: no network namespace", e.label(role))
	}
	if len(e.Addrs) == 0 {
		return fmt.Errorf("%s: no local address", e.label(role))
	}
	for _, a := range e.Addrs {
		if !a.IsValid() || a.IsUnspecified() {
			return fmt.Errorf("%s: invalid local address %s", e.label(role), a)
		}
	}
	if e.Lite && e.RelayOnly {
		return fmt.Errorf("%s: an ICE-lite endpoint has host candidates only and cannot be relay-only", e.label(role))
	}
	if e.Ports[0] > e.Ports[1] {
		return fmt.Errorf("%s: port range %d-%d is empty", e.label(role), e.Ports[0], e.Ports[1])
	}
	return nil
}
