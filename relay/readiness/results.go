package readiness

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/probe"
)

// Check is what the agent's browser saw gathering candidates from one target.
type Check struct {
	Target string `json:"target"`
	// Outcome: ok (a relay candidate, or a server-reflexive one for STUN),
	// error (the browser reported an ICE candidate error), timeout (nothing
	// within the page's limit) or no-candidate (gathering ended without one).
	Outcome       string  `json:"outcome"`
	ErrorCode     int     `json:"error_code,omitempty"` // onicecandidateerror errorCode: 401, 701, ...
	ErrorText     string  `json:"error_text,omitempty"`
	RelayProtocol string  `json:"relay_protocol,omitempty"` // getStats local-candidate relayProtocol
	URL           string  `json:"url,omitempty"`            // getStats local-candidate url
	CandidateMs   float64 `json:"candidate_ms,omitempty"`   // time to the first wanted candidate

	// Filled in by the server.
	Label       string   `json:"label"`
	Kind        string   `json:"kind"`
	Transport   string   `json:"transport"`
	Decision    Decision `json:"decision"`
	Explanation string   `json:"explanation,omitempty"`
}

// Call is one short call through a relay to the server's media peer.
type Call struct {
	Target          string  `json:"target"`
	ID              string  `json:"id,omitempty"` // the server's call id
	Connected       bool    `json:"connected"`
	ConnectMs       float64 `json:"connect_ms,omitempty"`
	RTTMs           float64 `json:"rtt_ms,omitempty"`
	JitterMs        float64 `json:"jitter_ms,omitempty"`
	PacketsReceived int     `json:"packets_received"` // inbound-rtp, from the server
	PacketsLost     int     `json:"packets_lost"`
	PacketsSent     int     `json:"packets_sent"` // outbound-rtp, to the server
	RelayProtocol   string  `json:"relay_protocol,omitempty"`
	Error           string  `json:"error,omitempty"`

	// Filled in by the server: what its media peer received from the agent.
	ServerReceived int     `json:"server_received"`
	ServerSent     int     `json:"server_sent"`
	LossPct        float64 `json:"loss_pct"`
	MOS            float64 `json:"mos,omitempty"`
	Band           string  `json:"band,omitempty"` // excellent, good, fair, poor
	Label          string  `json:"label"`
	Explanation    string  `json:"explanation,omitempty"`
}

// Submission is what the agent page posts.
type Submission struct {
	Checks []Check `json:"checks"`
	Calls  []Call  `json:"calls"`
}

// Record is one agent's stored result.
type Record struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Group     string    `json:"group"` // agents group of the source address, or ""
	Source    string    `json:"source"`
	UserAgent string    `json:"user_agent"`
	Verdict   string    `json:"verdict"` // ready, degraded, not-ready
	Summary   string    `json:"summary"` // one sentence in plain words
	Checks    []Check   `json:"checks"`
	Calls     []Call    `json:"calls"`
}

// Verdicts.
const (
	Ready    = "ready"
	Degraded = "degraded"
	NotReady = "not-ready"
)

// MOS bands (ITU-T G.107 user satisfaction): 4.3 and above "excellent"
// (very satisfied), 4.0 "good" (satisfied), 3.6 "fair" (some users
// dissatisfied), below 3.6 "poor" (many dissatisfied).
const (
	bandExcellent = 4.3
	bandGood      = 4.0
	bandFair      = 3.6
)

// Band names a MOS.
func Band(mos float64) string {
	switch {
	case mos >= bandExcellent:
		return "excellent"
	case mos >= bandGood:
		return "good"
	case mos >= bandFair:
		return "fair"
	}
	return "poor"
}

// Limits of a submission.
const (
	maxTextLen = 200
	maxChecks  = 256
	maxCalls   = 64
)

var errBadSubmission = errors.New("bad submission")

// clean makes browser-supplied text safe to store, show and log: control and
// format characters (newlines, escapes, bidi overrides) become spaces, and
// the text is cut to maxTextLen runes.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxTextLen {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func finite(v float64, lo, hi float64) bool { return !math.IsNaN(v) && v >= lo && v <= hi }

// validate checks a submission against the session's targets and bounds every
// number and string; the server's own fields are reset.
func (s *Submission) validate(targets map[string]Target) error {
	if len(s.Checks) > maxChecks || len(s.Calls) > maxCalls {
		return fmt.Errorf("%w: too many entries", errBadSubmission)
	}
	seen := map[string]bool{}
	for i := range s.Checks {
		c := &s.Checks[i]
		if _, ok := targets[c.Target]; !ok {
			return fmt.Errorf("%w: check %d names no target of this session", errBadSubmission, i)
		}
		if seen[c.Target] {
			return fmt.Errorf("%w: target %s checked twice", errBadSubmission, c.Target)
		}
		seen[c.Target] = true
		switch c.Outcome {
		case "ok", "error", "timeout", "no-candidate":
		default:
			return fmt.Errorf("%w: check %d: outcome must be ok, error, timeout or no-candidate", errBadSubmission, i)
		}
		if c.ErrorCode < 0 || c.ErrorCode > 999 || !finite(c.CandidateMs, 0, 600000) {
			return fmt.Errorf("%w: check %d: value out of range", errBadSubmission, i)
		}
		switch c.RelayProtocol {
		case "", "udp", "tcp", "tls":
		default:
			return fmt.Errorf("%w: check %d: relay_protocol must be udp, tcp or tls", errBadSubmission, i)
		}
		c.ErrorText, c.URL = clean(c.ErrorText), clean(c.URL)
		c.Label, c.Kind, c.Transport, c.Decision, c.Explanation = "", "", "", Decision{}, ""
	}
	for i := range s.Calls {
		c := &s.Calls[i]
		t, ok := targets[c.Target]
		if !ok || t.Kind == "stun" {
			return fmt.Errorf("%w: call %d names no TURN target of this session", errBadSubmission, i)
		}
		if !finite(c.ConnectMs, 0, 600000) || !finite(c.RTTMs, 0, 600000) || !finite(c.JitterMs, 0, 600000) ||
			c.PacketsReceived < 0 || c.PacketsReceived > 1<<20 || c.PacketsLost < -1<<20 || c.PacketsLost > 1<<20 ||
			c.PacketsSent < 0 || c.PacketsSent > 1<<20 {
			return fmt.Errorf("%w: call %d: value out of range", errBadSubmission, i)
		}
		switch c.RelayProtocol {
		case "", "udp", "tcp", "tls":
		default:
			return fmt.Errorf("%w: call %d: relay_protocol must be udp, tcp or tls", errBadSubmission, i)
		}
		if len(c.ID) > 64 {
			return fmt.Errorf("%w: call %d: id too long", errBadSubmission, i)
		}
		c.Error = clean(c.Error)
		c.ServerReceived, c.ServerSent, c.LossPct, c.MOS, c.Band, c.Label, c.Explanation = 0, 0, 0, 0, "", "", ""
	}
	return nil
}

// Judge fills in the server's part of a record: labels, the policy's
// decision and an explanation for every failure, each call's loss, MOS and
// band, and the verdict. lintCodes are the codes validate reported for the
// policy, so that a failure a lint predicted says so.
func Judge(p *ir.Program, rec *Record, targets map[string]Target, src netip.Addr, lintCodes map[string]bool) {
	for i := range rec.Checks {
		c := &rec.Checks[i]
		t := targets[c.Target]
		c.Label, c.Kind, c.Transport = t.label(), t.Kind, t.Transport
		c.Decision = Decide(p, rec.Group, src, t)
		if c.Outcome != "ok" {
			c.Explanation = explainCheck(rec.Group, t, *c, lintCodes)
		}
	}
	for i := range rec.Calls {
		c := &rec.Calls[i]
		t := targets[c.Target]
		c.Label = "call through " + t.label()
		if !c.Connected {
			c.Explanation = explainCall(t, *c)
			continue
		}
		lost := max(c.PacketsLost, 0)
		if total := c.PacketsReceived + lost; total > 0 {
			c.LossPct = 100 * float64(lost) / float64(total)
		}
		// The agent-to-server direction: what the browser sent against what
		// the server's media peer received.
		if c.PacketsSent > 0 && c.ServerReceived < c.PacketsSent {
			up := 100 * float64(c.PacketsSent-c.ServerReceived) / float64(c.PacketsSent)
			c.LossPct = math.Max(c.LossPct, up)
		}
		_, m := probe.EModel(probe.MouthToEar(c.RTTMs, c.JitterMs), c.LossPct)
		c.MOS = math.Round(m*100) / 100
		c.Band = Band(c.MOS)
		switch {
		case c.PacketsReceived == 0 && c.ServerReceived == 0:
			c.Explanation = "connected, but no audio arrived either way: media is dropped after ICE (a firewall or proxy between the agent and the relay)"
			c.Band, c.MOS = "poor", 1
		case c.PacketsReceived == 0:
			c.Explanation = "one-way audio: the agent hears nothing (media from the relay towards the agent is dropped)"
			c.Band, c.MOS = "poor", 1
		case c.ServerReceived == 0 && c.PacketsSent > 0:
			c.Explanation = "one-way audio: the far end hears nothing (media from the agent through the relay is dropped)"
			c.Band, c.MOS = "poor", 1
		case c.Band == "poor":
			c.Explanation = fmt.Sprintf("audio quality is poor (MOS %.2f: RTT %.0f ms, jitter %.0f ms, loss %.1f%%)", c.MOS, c.RTTMs, c.JitterMs, c.LossPct)
		}
	}
	rec.Verdict, rec.Summary = verdict(rec, targets)
}

func explainCheck(group string, t Target, c Check, lint map[string]bool) string {
	var what string
	switch {
	case c.Outcome == "timeout" || c.Outcome == "no-candidate" || c.ErrorCode == 701:
		what = "timed out"
		if c.ErrorCode == 701 && c.ErrorText != "" {
			what = fmt.Sprintf("failed (%d %s)", c.ErrorCode, c.ErrorText)
		}
	case c.ErrorCode == 401:
		return fmt.Sprintf("%s: the relay refused the credentials (401 Unauthorized). The relay's realm is %q: check that the platform's tenant_realm matches and that the relay and this server share the REST secret.", t.label(), t.Realm)
	case c.ErrorCode == 403:
		return fmt.Sprintf("%s: the relay refused the request (403 Forbidden): it does not allow this peer or this client.", t.label())
	case c.ErrorCode == 486:
		return fmt.Sprintf("%s: the relay's allocation quota is full (486): raise its quota or add relay capacity.", t.label())
	case c.ErrorCode > 0:
		what = fmt.Sprintf("failed (%d %s)", c.ErrorCode, c.ErrorText)
	default:
		what = "failed"
	}
	if t.Kind == "turns" {
		what += " (a TLS handshake the browser does not trust fails the same way: check the relay's certificate chain and name)"
	}
	d := c.Decision
	if group == "" {
		return fmt.Sprintf("%s %s; this agent's address is in no agents group of the policy, so the policy does not say whether it should pass.", t.label(), what)
	}
	if d.Allowed {
		return fmt.Sprintf("%s %s; the policy allows it in %s, %s: the gateway is not running this policy, or another device (proxy, host firewall, upstream firewall) drops it.", t.label(), what, d.Rule, d.Line)
	}
	s := fmt.Sprintf("%s %s; the policy drops it (%s, %s).", t.label(), what, d.Rule, d.Line)
	switch {
	case t.Proto == ir.UDP && lint["TW201"]:
		s += " validate predicted this: TW201 udp-blocked."
	case t.Proto == ir.TCP && t.Port == 443 && lint["TW202"]:
		s += " validate predicted this: TW202 no-tcp-443-fallback."
	}
	return s
}

func explainCall(t Target, c Call) string {
	why := c.Error
	if why == "" {
		why = "ICE did not connect"
	}
	return fmt.Sprintf("call through %s did not connect: %s. The relay must be allowed to reach this server's media address (its peers), and the server to answer it.", t.label(), why)
}

// verdict is the one-line answer at the top of the page and on the
// dashboard.
func verdict(rec *Record, targets map[string]Target) (string, string) {
	var turnTargets, stunOK, stunTotal int
	relayOK := map[string]bool{} // transport -> some relay candidate
	for _, c := range rec.Checks {
		t := targets[c.Target]
		if t.Kind == "stun" {
			stunTotal++
			if c.Outcome == "ok" {
				stunOK++
			}
			continue
		}
		turnTargets++
		if c.Outcome == "ok" {
			relayOK[t.Transport] = true
		}
	}
	var best *Call
	for i := range rec.Calls {
		c := &rec.Calls[i]
		// The call a browser would end on: ICE prefers a relay over UDP,
		// then TCP, then TLS; among those of one transport, the best MOS.
		// A poor call counts only when no other connected.
		better := func(a, b *Call) bool {
			if (a.Band == "poor") != (b.Band == "poor") {
				return b.Band == "poor"
			}
			if ra, rb := rank(targets[a.Target]), rank(targets[b.Target]); ra != rb {
				return ra < rb
			}
			return a.MOS > b.MOS
		}
		if c.Connected && c.MOS > 0 && (best == nil || better(c, best)) {
			best = c
		}
	}
	firstFailure := func() string {
		for _, c := range rec.Checks {
			if c.Outcome != "ok" && c.Explanation != "" {
				return " " + c.Explanation
			}
		}
		for _, c := range rec.Calls {
			if c.Explanation != "" {
				return " " + c.Explanation
			}
		}
		return ""
	}
	if turnTargets == 0 {
		switch {
		case stunTotal == 0:
			return NotReady, "The policy gives agents no TURN or STUN server to test."
		case stunOK == 0:
			return NotReady, "No STUN server answered: UDP to the internet is blocked." + firstFailure()
		}
		return Ready, "STUN answers over UDP; the policy gives agents no TURN relay to test calls through."
	}
	if len(relayOK) == 0 {
		return NotReady, "No TURN server gave a relay candidate, so calls hang on \"Connecting\"." + firstFailure()
	}
	if best == nil {
		return NotReady, "Relays answer, but no test call connected." + firstFailure()
	}
	t := targets[best.Target]
	via := fmt.Sprintf("%s over %s", t.Owner, strings.ToUpper(t.Transport))
	if best.Band == "poor" {
		return Degraded, fmt.Sprintf("Calls connect through %s but audio is poor (MOS %.2f).", via, best.MOS) + " " + best.Explanation
	}
	if !relayOK["udp"] {
		var others []string
		for tr := range relayOK {
			others = append(others, strings.ToUpper(tr))
		}
		sort.Strings(others)
		return Degraded, fmt.Sprintf("Works with more delay: UDP to the relays is blocked, so calls fall back to TURN over %s (best call MOS %.2f, %s).", strings.Join(others, " and "), best.MOS, best.Band) + firstFailure()
	}
	return Ready, fmt.Sprintf("Calls connect through %s (MOS %.2f, %s).", via, best.MOS, best.Band)
}

func rank(t Target) int {
	switch t.Transport {
	case "udp":
		return 0
	case "tcp":
		return 1
	}
	return 2
}
