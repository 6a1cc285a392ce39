package call

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// peer is one endpoint's PeerConnection with its network, logs, track and
// receiver.
type peer struct {
	ep    Endpoint
	role  string // agent or far end
	net   *nsNet
	log   *pionLog
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	sndr  *webrtc.RTPSender
	recv  *receiver

	connected chan struct{} // closed when the PeerConnection is connected
	failed    chan struct{} // closed when ICE or the PeerConnection failed
	connOnce  sync.Once
	failOnce  sync.Once

	mu      sync.Mutex
	cands   []webrtc.ICECandidate
	forward func(webrtc.ICECandidateInit) // trickles new candidates to the other side
	failure string
	closing bool
	readers sync.WaitGroup
}

// ICE timing: checks give up after iceDisconnected+iceFailed without a
// working pair; keep-alives every second keep a quiet path (one-way media)
// from being declared disconnected.
const (
	relayOnlyWait   = 500 * time.Millisecond
	iceDisconnected = 3 * time.Second
	iceFailed       = 2 * time.Second
	iceKeepalive    = time.Second
)

func newPeer(ctx context.Context, ep Endpoint, role string, opt Options) (*peer, error) {
	if err := ep.validate(role); err != nil {
		return nil, err
	}
	p := &peer{ep: ep, role: role, log: &pionLog{}, recv: newReceiver(),
		connected: make(chan struct{}), failed: make(chan struct{})}
	var err error
	if p.net, err = newNSNet(ctx, ep, opt.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("%s: %w", ep.label(role), err)
	}

	se := webrtc.SettingEngine{LoggerFactory: p.log}
	se.SetNet(p.net)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return p.net.allowed(addrOf(ip)) })
	se.DisableActiveTCP(true)
	se.SetICETimeouts(iceDisconnected, iceFailed, iceKeepalive)
	stunWait := opt.ConnectTimeout / 2
	if stunWait > 5*time.Second {
		stunWait = 5 * time.Second
	}
	se.SetSTUNGatherTimeout(stunWait)
	if ep.RelayOnly {
		// Only relay pairs exist: no point in pion's 2 s wait for host
		// pairs, but wait a moment so that a relay over UDP, when it works,
		// wins over TCP/TLS ones that happened to answer first (pion, like
		// browsers, ranks relay UDP above TCP above TLS).
		se.SetRelayAcceptanceMinWait(relayOnlyWait)
	}
	loopback := false
	for _, a := range p.net.addrs {
		loopback = loopback || a.IsLoopback()
	}
	se.SetIncludeLoopbackCandidate(loopback)
	if ep.Ports != [2]uint16{} {
		if err := se.SetEphemeralUDPPortRange(ep.Ports[0], ep.Ports[1]); err != nil {
			return nil, fmt.Errorf("%s: port range: %w", ep.label(role), err)
		}
	}
	se.SetLite(ep.Lite)

	var v4, v6, tcp bool
	for _, a := range p.net.addrs {
		v4, v6 = v4 || a.Is4(), v6 || a.Is6()
	}
	var servers []webrtc.ICEServer
	if !ep.Lite {
		for _, s := range ep.Servers {
			u, err := stun.ParseURI(s.URL)
			if err != nil {
				return nil, fmt.Errorf("%s: ICE server %q: %w", ep.label(role), s.URL, err)
			}
			tcp = tcp || u.Proto == stun.ProtoTypeTCP || (u.Scheme == stun.SchemeTypeTURNS && u.Proto != stun.ProtoTypeUDP)
			servers = append(servers, webrtc.ICEServer{URLs: []string{s.URL}, Username: s.Username, Credential: s.Credential})
		}
	}
	var nt []webrtc.NetworkType
	if v4 {
		nt = append(nt, webrtc.NetworkTypeUDP4)
	}
	if v6 {
		nt = append(nt, webrtc.NetworkTypeUDP6)
	}
	// TCP network types carry TURN over TCP and TLS; no ICE-TCP host
	// candidates are made (no TCP mux, active TCP off).
	if tcp && v4 {
		nt = append(nt, webrtc.NetworkTypeTCP4)
	}
	if tcp && v6 {
		nt = append(nt, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(nt)
	if tcp {
		se.SetICEProxyDialer(turnDialer{n: p.net})
	}

	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusClock, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        opusPayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me))
	cfg := webrtc.Configuration{ICEServers: servers}
	if ep.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	if p.pc, err = api.NewPeerConnection(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", ep.label(role), err)
	}
	p.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusClock, Channels: 2}, "audio", "turnwall-"+strings.ReplaceAll(role, " ", "-"))
	if err == nil {
		var tr *webrtc.RTPTransceiver
		tr, err = p.pc.AddTransceiverFromTrack(p.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
		if err == nil {
			p.sndr = tr.Sender()
		}
	}
	if err != nil {
		p.pc.Close()
		return nil, fmt.Errorf("%s: audio track: %w", ep.label(role), err)
	}

	p.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		p.mu.Lock()
		p.cands = append(p.cands, *c)
		fwd := p.forward
		p.mu.Unlock()
		if fwd != nil {
			fwd(c.ToJSON())
		}
	})
	p.pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateFailed {
			p.fail("ICE failed")
		}
	})
	p.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.connOnce.Do(func() { close(p.connected) })
		case webrtc.PeerConnectionStateFailed:
			if p.pc.ICEConnectionState() == webrtc.ICEConnectionStateFailed {
				p.fail("ICE failed")
			} else {
				p.fail("DTLS failed after ICE connected")
			}
		}
	})
	p.pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.mu.Lock()
		if p.closing {
			p.mu.Unlock()
			return
		}
		p.readers.Add(1)
		p.mu.Unlock()
		defer p.readers.Done()
		if c := t.Codec().ClockRate; c > 0 {
			p.recv.mu.Lock()
			p.recv.clock = float64(c)
			p.recv.mu.Unlock()
		}
		for {
			pkt, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			p.recv.add(&pkt.Header, time.Now())
		}
	})
	return p, nil
}

func (p *peer) fail(why string) {
	p.failOnce.Do(func() {
		p.mu.Lock()
		p.failure = why
		p.mu.Unlock()
		close(p.failed)
	})
}

func (p *peer) failureReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failure
}

// close closes the PeerConnection and waits (bounded) for the track
// readers; it reports whether everything stopped in time.
func (p *peer) close(wait time.Duration) bool {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.pc.Close()
		p.readers.Wait()
		close(done)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// candidates returns the gathered local candidates, with the relay
// protocol from the statistics and the server each came from, when known.
func (p *peer) candidates() []Candidate {
	p.mu.Lock()
	raw := append([]webrtc.ICECandidate(nil), p.cands...)
	p.mu.Unlock()
	relayProto := map[string]string{}
	for _, s := range p.pc.GetStats() {
		if cs, ok := s.(webrtc.ICECandidateStats); ok && cs.Type == webrtc.StatsTypeLocalCandidate && cs.RelayProtocol != "" {
			relayProto[candKey(cs.CandidateType.String(), cs.IP, int(cs.Port))] = cs.RelayProtocol
		}
	}
	out := make([]Candidate, 0, len(raw))
	for _, c := range raw {
		cand := p.convert(c)
		if cand.Type == "relay" {
			cand.RelayProtocol = relayProto[candKey(cand.Type, cand.Address, cand.Port)]
		}
		cand.URL = p.serverOf(cand)
		out = append(out, cand)
	}
	return out
}

func candKey(typ, addr string, port int) string {
	return typ + " " + net.JoinHostPort(addr, strconv.Itoa(port))
}

func (p *peer) convert(c webrtc.ICECandidate) Candidate {
	return Candidate{Type: c.Typ.String(), Protocol: c.Protocol.String(), Address: c.Address, Port: int(c.Port),
		RelatedAddress: c.RelatedAddress, RelatedPort: int(c.RelatedPort)}
}

// serverOf finds the ICE server a srflx or relay candidate came from: the
// server its socket talked to (relay candidates), or the only server that
// could have produced it.
func (p *peer) serverOf(c Candidate) string {
	if c.Type != "relay" && c.Type != "srflx" {
		return ""
	}
	local := net.JoinHostPort(c.RelatedAddress, strconv.Itoa(c.RelatedPort))
	var target string
	switch c.RelayProtocol {
	case "udp":
		target = p.net.origin("udp", local)
	case "tcp", "tls":
		target = p.net.origin("tcp", local)
	}
	rel, relErr := netip.ParseAddr(c.RelatedAddress)
	var fits []string
	for _, s := range p.ep.Servers {
		u, err := stun.ParseURI(s.URL)
		if err != nil {
			continue
		}
		hostPort := net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
		udp := u.Proto == stun.ProtoTypeUDP || (u.Proto == stun.ProtoTypeUnknown && u.Scheme != stun.SchemeTypeTURNS)
		var ok bool
		switch {
		case c.Type == "srflx":
			ok = udp && u.Scheme != stun.SchemeTypeTURNS
		case c.RelayProtocol == "udp":
			ok = udp && u.Scheme == stun.SchemeTypeTURN
		case c.RelayProtocol == "tcp":
			ok = !udp && u.Scheme == stun.SchemeTypeTURN
		case c.RelayProtocol == "tls":
			ok = !udp && u.Scheme == stun.SchemeTypeTURNS
		case c.RelayProtocol == "dtls":
			ok = udp && u.Scheme == stun.SchemeTypeTURNS
		}
		if !ok {
			continue
		}
		if target != "" && target == hostPort {
			return s.URL
		}
		if h, err := netip.ParseAddr(u.Host); err == nil && relErr == nil && h.Unmap().Is4() != rel.Unmap().Is4() {
			continue // another family than the candidate's socket
		}
		fits = append(fits, s.URL)
	}
	if target == "" && len(fits) == 1 {
		return fits[0]
	}
	return ""
}

// selected returns the agent's selected pair.
func (p *peer) selected(gathered []Candidate) (*Candidate, *Candidate) {
	if p.sndr == nil || p.sndr.Transport() == nil {
		return nil, nil
	}
	pair, err := p.sndr.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return nil, nil
	}
	local, remote := p.convert(*pair.Local), p.convert(*pair.Remote)
	for _, g := range gathered {
		if g.Type == local.Type && g.Address == local.Address && g.Port == local.Port {
			local = g
			break
		}
	}
	return &local, &remote
}

// rtt is the round-trip time of the nominated candidate pair, measured by
// ICE's own connectivity checks and keep-alives, or 0 when not known.
func (p *peer) rtt() time.Duration {
	for _, st := range p.pc.GetStats() {
		if cp, ok := st.(webrtc.ICECandidatePairStats); ok && cp.Nominated && cp.CurrentRoundTripTime > 0 {
			return time.Duration(cp.CurrentRoundTripTime * float64(time.Second))
		}
	}
	return 0
}

// relayFailures explains why no relay candidate was gathered.
func (p *peer) relayFailures() string {
	reasons := p.net.takeNotes()
	for _, m := range p.log.matching("allocate", "turn", "relay") {
		reasons = append(reasons, plainTURN(m))
	}
	if len(reasons) > 3 {
		reasons = reasons[:3]
	}
	if len(reasons) == 0 {
		return ""
	}
	return " (" + strings.Join(reasons, "; ") + ")"
}

// trickleTo hands q every candidate p has gathered and every one it gathers
// from now on (trickle ICE, as browsers do).
func (p *peer) trickleTo(q *peer) {
	add := func(c webrtc.ICECandidateInit) {
		if err := q.pc.AddICECandidate(c); err != nil {
			q.log.add("trickle", "adding a trickled candidate: "+err.Error())
		}
	}
	p.mu.Lock()
	p.forward = add
	have := make([]webrtc.ICECandidateInit, 0, len(p.cands))
	for _, c := range p.cands {
		have = append(have, c.ToJSON())
	}
	p.mu.Unlock()
	for _, c := range have {
		add(c)
	}
}

// gather waits until gathering is complete, bounded by ctx.
func gather(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TURN error codes (RFC 8656, RFC 8489) in plain words.
var turnCodes = map[string]string{
	"400": "rejected the request as malformed (400 Bad Request)",
	"401": "refused the credentials (401 Unauthorized)",
	"403": "refused the allocation (403 Forbidden)",
	"437": "reported an allocation mismatch (437)",
	"438": "reported a stale nonce (438)",
	"440": "does not support the address family (440)",
	"441": "refused the credentials (441 Wrong Credentials)",
	"442": "does not support the transport (442)",
	"486": "refused: allocation quota reached (486)",
	"508": "refused: insufficient capacity (508)",
}

var (
	turnClientRE = regexp.MustCompile(`TURN client (\S+)`)
	turnCodeRE   = regexp.MustCompile(`error (\d{3})`)
)

// plainTURN rewrites pion's allocation failures ("failed to allocate on TURN
// client 192.0.2.10:3478 Allocate error response (error 401: )") into plain
// words; other messages are kept as they are.
func plainTURN(msg string) string {
	msg = strings.TrimPrefix(msg, "ice: ")
	server := ""
	if m := turnClientRE.FindStringSubmatch(msg); m != nil {
		server = m[1]
	}
	if m := turnCodeRE.FindStringSubmatch(msg); m != nil && server != "" {
		if words, ok := turnCodes[m[1]]; ok {
			return "TURN server " + server + " " + words
		}
	}
	if server != "" && strings.Contains(msg, "all retransmissions failed") {
		return "no answer from TURN server " + server
	}
	return msg
}
