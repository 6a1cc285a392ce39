package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/turnwall/turnwall/relay/verify/call"
)

// Report is what one verify found: every flow cell, ICE server check and
// call, grouped by agents group, and the troubles agents would have.
type Report struct {
	Policy       string   `json:"policy"`
	OK           bool     `json:"ok"`
	PolicyErrors int      `json:"policy_errors"`
	SourceNAT    bool     `json:"source_nat"`
	RelayServer  string   `json:"relay_server"`
	Flows        int      `json:"flows"`
	Ran          int      `json:"flows_run"`
	Failed       int      `json:"failed"`
	Servers      int      `json:"ice_servers"`
	ServersFail  int      `json:"ice_servers_failed"`
	Calls        int      `json:"calls"`
	CallsFail    int      `json:"calls_failed"`
	Browsers     int      `json:"browsers,omitempty"` // agents hosts where a browser ran the readiness page
	BrowsersFail int      `json:"browsers_failed,omitempty"`
	Troubles     []string `json:"troubles"`
	Notes        []string `json:"notes,omitempty"` // what the lab could not serve as the policy describes
	Incomplete   string   `json:"incomplete,omitempty"`
	Groups       []Group  `json:"groups"`
	Seconds      float64  `json:"seconds"`
	// Marks are the DSCP values read on the wire for the qos block's flows
	// (qos.go); MarksFail counts those that differ from the policy.
	Marks     []MarkCell `json:"marks,omitempty"`
	MarksFail int        `json:"marks_failed,omitempty"`
}

// Group is the part of a report about one agents group.
type Group struct {
	Agents  string         `json:"agents"` // "" for flows without agents
	Cells   []Cell         `json:"cells"`
	Servers []ServerCheck  `json:"ice_servers,omitempty"`
	Calls   []CallResult   `json:"calls,omitempty"`
	Browser *BrowserResult `json:"browser,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func mark(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// WriteText writes the report for people: per agents group its flows, ICE
// servers and calls, then the totals and the troubles.
func (r *Report) WriteText(w io.Writer) {
	for _, g := range r.Groups {
		title := fmt.Sprintf("agents %q", g.Agents)
		if g.Agents == "" {
			title = "flows without agents"
		}
		fmt.Fprintf(w, "%s\n", title)
		if len(g.Cells) > 0 {
			fmt.Fprintln(w, "  flows")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "    \tFLOW\tEXPECTED\tGOT\tRULE\tPOLICY LINE")
			for _, c := range g.Cells {
				exp := c.Expected
				if c.Required {
					exp += " (required)"
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", mark(c.OK), c.Name, exp, c.Got, c.Rule, c.Line)
			}
			tw.Flush()
		}
		if len(g.Servers) > 0 {
			fmt.Fprintln(w, "  ICE servers")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "    \tSERVER\tEXPECTED\tGOT\tRULE\tPOLICY LINE\tDETAIL")
			for _, c := range g.Servers {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark(c.OK), c.Server.URL, c.Expected, c.Got, c.Rule, c.Line, c.Reason)
			}
			tw.Flush()
		}
		if len(g.Calls) > 0 {
			fmt.Fprintln(w, "  calls")
			for _, c := range g.Calls {
				mode := ModeLabel(c.Mode)
				if c.After != "" {
					mode += " (" + c.After + ")"
				}
				if c.Skipped != "" {
					fmt.Fprintf(w, "    --    %s: skipped: %s\n", mode, c.Skipped)
					continue
				}
				res := c.Result
				fmt.Fprintf(w, "    %-4s  %s to %s: %s", mark(c.OK), mode, c.Far, res.State)
				if res.State == "connected" {
					fmt.Fprintf(w, " in %.2f s", res.ConnectTime.Seconds())
				}
				fmt.Fprintln(w)
				for _, r := range c.Redirects {
					fmt.Fprintf(w, "          redirect %s\n", r)
				}
				if res.Local != nil && res.Remote != nil {
					fmt.Fprintf(w, "          pair   %s <-> %s\n", res.Local, res.Remote)
				}
				if res.State == "connected" {
					fmt.Fprintf(w, "          audio  %s: agent -> far end %d/%d packets (loss %.1f%%, jitter %.1f ms), far end -> agent %d/%d (loss %.1f%%, jitter %.1f ms)\n",
						res.Audio, res.AgentToFar.Received, res.AgentToFar.Sent, res.AgentToFar.LossPct, res.AgentToFar.JitterMs,
						res.FarToAgent.Received, res.FarToAgent.Sent, res.FarToAgent.LossPct, res.FarToAgent.JitterMs)
					fmt.Fprintf(w, "          quality RTT %.1f ms, MOS %.2f\n", res.RTTMs, c.MOS)
				}
				if len(res.Gathered) > 0 {
					fmt.Fprintf(w, "          agent candidates: %s\n", CandidateSummary(res.Gathered))
				}
				if !c.OK && res.Err != "" {
					fmt.Fprintf(w, "          why    %s\n", res.Err)
				}
			}
		}
		if b := g.Browser; b != nil {
			writeBrowser(w, b)
		}
		fmt.Fprintln(w)
	}
	writeMarks(w, r)
	fmt.Fprintf(w, "%d of %d flows, %d of %d ICE server checks, %d of %d calls as expected",
		r.Ran-r.Failed, r.Flows, r.Servers-r.ServersFail, r.Servers, r.Calls-r.CallsFail, r.Calls)
	if r.Browsers > 0 {
		fmt.Fprintf(w, ", %d of %d browsers agree", r.Browsers-r.BrowsersFail, r.Browsers)
	}
	if r.SourceNAT {
		fmt.Fprint(w, " (source NAT on)")
	}
	fmt.Fprintf(w, " in %.1f s\n", r.Seconds)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.OK {
		fmt.Fprintln(w, "verify: OK, agents get working audio")
		return
	}
	fmt.Fprintln(w, "verify: FAILED")
	for _, t := range r.Troubles {
		fmt.Fprintf(w, "  - %s\n", t)
	}
}

func writeBrowser(w io.Writer, b *BrowserResult) {
	fmt.Fprintf(w, "  browser (%s, the readiness page)\n", b.Browser)
	if b.Verdict == "skipped" {
		fmt.Fprintf(w, "    --    skipped: %s\n", b.Summary)
		return
	}
	fmt.Fprintf(w, "    %-4s  verdict %s in %.1f s: %s\n", mark(b.OK), b.Verdict, b.Seconds, b.Summary)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range b.Checks {
		got := c.Got
		if c.RelayProtocol != "" {
			got += " (" + c.RelayProtocol + ")"
		}
		if c.ErrorCode != 0 {
			got += fmt.Sprintf(" (error %d)", c.ErrorCode)
		}
		fmt.Fprintf(tw, "    %s\t%s\texpected %s\tgot %s\n", mark(c.OK), c.URL, c.Expected, got)
	}
	tw.Flush()
	for _, c := range b.Calls {
		if c.Connected {
			fmt.Fprintf(w, "          call via %s: connected in %.0f ms, MOS %.2f (%s)\n", c.URL, c.ConnectMs, c.MOS, c.Band)
		} else {
			fmt.Fprintf(w, "          call via %s: failed: %s\n", c.URL, c.Why)
		}
	}
	for _, s := range b.Skipped {
		fmt.Fprintf(w, "          not tried: %s\n", s)
	}
	if !b.OK && b.Trouble != "" {
		fmt.Fprintf(w, "          why    %s\n", b.Trouble)
	}
}

// CandidateSummary counts candidates by type, and relay candidates by how
// the TURN server was reached: "2 host, 2 srflx, 8 relay (via udp 2, tcp 2, tls 4)".
func CandidateSummary(cs []call.Candidate) string {
	types := map[string]int{}
	via := map[string]int{}
	for _, c := range cs {
		types[c.Type]++
		if c.Type == "relay" {
			via[c.RelayProtocol]++
		}
	}
	var parts []string
	for _, t := range []string{"host", "srflx", "prflx", "relay"} {
		if n := types[t]; n > 0 {
			p := fmt.Sprintf("%d %s", n, t)
			if t == "relay" {
				var vs []string
				for _, v := range []string{"udp", "tcp", "tls", "dtls"} {
					if via[v] > 0 {
						vs = append(vs, fmt.Sprintf("%s %d", v, via[v]))
					}
				}
				if len(vs) > 0 {
					p += " (via " + strings.Join(vs, ", ") + ")"
				}
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// ModeLabel names a call's ICE transport policy.
func ModeLabel(mode string) string {
	switch mode {
	case "relay":
		return "ICE relay only"
	case "ipv6":
		return "ICE all, IPv6 only"
	}
	return "ICE " + mode
}
