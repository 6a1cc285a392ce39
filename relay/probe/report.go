package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// ICE type preferences (RFC 8445 section 5.1.2.2).
const (
	PrefHost  = 126
	PrefPrflx = 110
	PrefSrflx = 100
	PrefRelay = 0
)

// Candidate statuses beyond OK and Fail.
const (
	NotTested = "not tested"
	NA        = "n/a"
)

// Candidate is one row of the table: a candidate type over a transport.
type Candidate struct {
	Type      string `json:"type"`      // host, srflx, relay
	Transport string `json:"transport"` // udp, tcp, tls
	Status    string `json:"status"`    // ok, fail, not tested, n/a
	Priority  uint32 `json:"priority,omitempty"`
	Address   string `json:"address,omitempty"`
	Via       string `json:"via,omitempty"` // the STUN/TURN URI
	Reason    string `json:"reason"`
}

// Verdict is what the checks mean for a browser.
type Verdict struct {
	Candidates []Candidate `json:"candidates"`
	Viable     bool        `json:"viable"` // a media path exists
	// RelayTested: a TURN URI was probed; RelayPath: a relay candidate
	// works. Viable without RelayPath is direct UDP only: calls fail
	// wherever UDP to the media servers is closed.
	RelayTested bool       `json:"relay_tested"`
	RelayPath   bool       `json:"relay_path"`
	Selected    *Candidate `json:"selected,omitempty"` // the pair's local candidate ICE would nominate
	Prediction  string     `json:"prediction"`
	Causes      []string   `json:"causes,omitempty"`
	Summary     string     `json:"summary"`
}

// Priority is the RFC 8445 candidate priority for component 1. Relay local
// preferences rank TURN transports as browsers do: UDP, then TCP, then TLS.
func Priority(typ, transport string) uint32 {
	tp := map[string]uint32{"host": PrefHost, "prflx": PrefPrflx, "srflx": PrefSrflx, "relay": PrefRelay}[typ]
	local := uint32(65535)
	if typ == "relay" {
		local = map[string]uint32{UDP: 65535, TCP: 32767, TLS: 16383}[transport]
	}
	return tp<<24 | local<<8 | (256 - 1)
}

var transports = []string{UDP, TCP, TLS}

// Verdict builds the candidate table, predicts the pair, and names causes.
func (r *Report) Verdict() Verdict {
	var v Verdict
	var local, mapped, stunVia, stunFail, natReason, nat string
	stunTried := false
	for _, c := range r.Checks {
		if c.Local != "" && local == "" {
			if ap, err := netip.ParseAddrPort(c.Local); err == nil {
				local = ap.Addr().String()
			} else {
				local = c.Local
			}
		}
		switch c.Kind {
		case KindSTUN:
			stunTried = true
			if c.Status == OK && mapped == "" {
				mapped, stunVia = c.Mapped, c.Target
			} else if c.Status == Fail && stunFail == "" {
				stunFail = c.Reason
			}
		case KindNAT:
			nat, natReason = c.NAT, c.Reason
		}
	}
	// host
	host := Candidate{Type: "host", Transport: UDP, Status: OK, Priority: Priority("host", UDP), Address: local,
		Reason: "gathered from the interface; a path only to peers on the same network (or without NAT)"}
	if local == "" {
		host.Status, host.Priority, host.Reason = NotTested, 0, "no check revealed the local address"
	}
	v.Candidates = append(v.Candidates, host,
		Candidate{Type: "host", Transport: TCP, Status: NA, Reason: "browsers do not use TCP host candidates towards media servers"},
		Candidate{Type: "host", Transport: TLS, Status: NA, Reason: "no TLS host candidates in WebRTC"})
	// srflx
	srflx := Candidate{Type: "srflx", Transport: UDP, Via: stunVia}
	switch {
	case mapped != "":
		srflx.Status, srflx.Address, srflx.Priority = OK, mapped, Priority("srflx", UDP)
		srflx.Reason = "STUN binding answered"
		if natReason != "" {
			srflx.Reason += "; " + natReason
		}
	case stunTried:
		srflx.Status, srflx.Reason = Fail, stunFail
	default:
		srflx.Status, srflx.Reason = NotTested, "no STUN server and no TURN server over UDP"
	}
	v.Candidates = append(v.Candidates, srflx,
		Candidate{Type: "srflx", Transport: TCP, Status: NA, Reason: "server-reflexive candidates exist for UDP only"},
		Candidate{Type: "srflx", Transport: TLS, Status: NA, Reason: "server-reflexive candidates exist for UDP only"})
	// relay
	for _, tr := range transports {
		c := Candidate{Type: "relay", Transport: tr, Status: NotTested, Reason: fmt.Sprintf("no TURN URI over %s given", strings.ToUpper(tr))}
		for _, target := range r.targets(tr) {
			status, reason, relayed := r.relayStatus(target)
			if c.Status == NotTested || (c.Status == Fail && status == OK) {
				c.Status, c.Reason, c.Via, c.Address = status, reason, target, relayed
			}
		}
		if c.Status == OK {
			c.Priority = Priority("relay", tr)
		}
		v.Candidates = append(v.Candidates, c)
	}
	// Causes: every failure, once.
	seen := map[string]bool{}
	for _, c := range r.Checks {
		if (c.Status == Fail || c.Status == Warn) && c.Reason != "" && !seen[c.Reason] {
			seen[c.Reason] = true
			v.Causes = append(v.Causes, c.Reason)
		}
	}
	v.predict(nat)
	return v
}

// targets lists the TURN URIs of a transport, in order.
func (r *Report) targets(tr string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range r.Checks {
		if c.Kind == KindAllocate && c.Transport == tr && !seen[c.Target] {
			seen[c.Target] = true
			out = append(out, c.Target)
		}
	}
	return out
}

// relayStatus combines a TURN URI's checks: allocation, permission, media
// and, for TLS, the certificate a browser would verify.
func (r *Report) relayStatus(target string) (status, reason, relayed string) {
	status, reason = OK, ""
	for _, c := range r.Checks {
		if c.Target != target {
			continue
		}
		switch c.Kind {
		case KindAllocate:
			relayed = c.Relayed
		case KindMedia:
			if c.Status == OK || c.Status == Warn {
				reason = c.Reason
			}
		}
		if c.Kind == KindSTUN || c.Kind == KindNAT {
			continue
		}
		if c.Status == Fail && status == OK {
			status, reason = Fail, c.Reason
		}
		if c.Status == Skip && status == OK {
			status, reason = Fail, c.Reason
		}
	}
	return status, reason, relayed
}

func (v *Verdict) find(typ, tr string) *Candidate {
	for i := range v.Candidates {
		if v.Candidates[i].Type == typ && v.Candidates[i].Transport == tr {
			return &v.Candidates[i]
		}
	}
	return nil
}

// predict names the pair ICE would nominate: checks run in pair-priority
// order, the highest-priority pair that succeeds wins.
func (v *Verdict) predict(nat string) {
	srflx := v.find("srflx", UDP)
	var relay *Candidate
	for _, tr := range transports {
		if c := v.find("relay", tr); c.Status == OK {
			relay = c
			break
		}
	}
	var fallbacks []string
	var relayFail string
	for _, tr := range transports {
		c := v.find("relay", tr)
		if c.Status == OK {
			fallbacks = append(fallbacks, fmt.Sprintf("relay/%s (priority %d)", tr, c.Priority))
		}
		if c.Status != NotTested {
			v.RelayTested = true
		}
		if c.Status == Fail && relayFail == "" {
			relayFail = c.Reason
		}
	}
	v.RelayPath = relay != nil
	switch {
	case srflx.Status == OK:
		v.Viable = true
		v.Selected = srflx
		v.Prediction = fmt.Sprintf("direct UDP works: host/udp (priority %d) pairs with the media server, which sees the agent as %s (srflx, priority %d); ICE nominates it when the platform's media range is open over UDP",
			Priority("host", UDP), srflx.Address, srflx.Priority)
		if nat == "address-dependent" || nat == "address-and-port-dependent" {
			v.Prediction += "; this NAT changes the mapping per destination, so peer-to-peer paths need the relay"
		}
		if len(fallbacks) > 0 {
			v.Prediction += "; fallback: " + strings.Join(fallbacks, ", ")
		}
	case relay != nil:
		v.Viable = true
		v.Selected = relay
		v.Prediction = fmt.Sprintf("%s wins: it is the highest-priority candidate that works (relay type preference %d)", fallbacks[0], PrefRelay)
		if len(fallbacks) > 1 {
			v.Prediction += "; also working: " + strings.Join(fallbacks[1:], ", ")
		}
	default:
		v.Prediction = "no candidate pair can succeed: the browser reports ice:connection-state failed and the agent hangs on \"Connecting\""
	}
	// Summary: the first cause and the fallback that saves the day.
	var first string
	if len(v.Causes) > 0 {
		first = v.Causes[0]
	}
	switch {
	case first == "" && v.Viable:
		v.Summary = "every path tested works"
	case v.Viable && v.RelayTested && !v.RelayPath:
		v.Summary = fmt.Sprintf("no relay path: %s; only direct UDP works (%s/%s), so calls fail wherever UDP to the media servers is closed",
			relayFail, v.Selected.Type, v.Selected.Transport)
	case v.Viable && v.Selected != nil && v.Selected.Type == "relay" && v.find("relay", UDP).Status != OK:
		v.Summary = fmt.Sprintf("%s; %s fallback works", first, fallbackName(v.Selected))
	case v.Viable:
		v.Summary = first + "; a media path still works (" + v.Selected.Type + "/" + v.Selected.Transport + ")"
	case first != "":
		v.Summary = first + "; no fallback works"
	default:
		v.Summary = "nothing was tested"
	}
}

func fallbackName(c *Candidate) string {
	port := ""
	if u, err := ParseURI(c.Via, ""); err == nil {
		port = fmt.Sprintf(" %d", u.Port)
	}
	switch c.Transport {
	case TCP:
		return "TURN over TCP" + port
	case TLS:
		return "TURN/TLS" + port
	}
	return "TURN over UDP" + port
}

// JSON is the report and its verdict as one document.
type JSON struct {
	*Report
	Verdict Verdict `json:"verdict"`
}

// WriteJSON writes the report with its verdict.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(JSON{Report: r, Verdict: r.Verdict()})
}

// WriteText writes the candidate table, the prediction, the checks and the
// causes.
func (r *Report) WriteText(w io.Writer) error {
	v := r.Verdict()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CANDIDATE\tTRANSPORT\tSTATUS\tPRIORITY\tADDRESS\tDETAIL")
	for _, c := range v.Candidates {
		prio := "-"
		if c.Priority != 0 {
			prio = fmt.Sprint(c.Priority)
		}
		addr := c.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Type, c.Transport, strings.ToUpper(c.Status), prio, addr, c.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nBrowser: %s\n\nChecks:\n", v.Prediction)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%.1f ms\t%s\n", strings.ToUpper(c.Status), c.Kind, c.Transport, c.Target, c.Millis, c.Reason)
	}
	tw.Flush()
	if len(v.Causes) > 0 {
		fmt.Fprintln(w, "\nCauses:")
		for _, c := range v.Causes {
			fmt.Fprintf(w, "  - %s\n", c)
		}
	}
	verdict := "no viable media path"
	switch {
	case v.Viable && v.RelayTested && !v.RelayPath:
		verdict = "viable media path (direct only)"
	case v.Viable:
		verdict = "viable media path"
	}
	_, err := fmt.Fprintf(w, "\nVerdict: %s: %s\n", verdict, v.Summary)
	return err
}
