package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/turnwall/turnwall/relay/turnclient"
)

var srv = netip.MustParseAddrPort("198.51.100.10:3478")

func relayChecks(target, tr, status, reason string) []Check {
	if status != OK {
		return []Check{
			{Kind: KindAllocate, Target: target, Transport: tr, Status: Fail, Reason: reason},
			{Kind: KindPermission, Target: target, Transport: tr, Status: Skip, Reason: "no allocation"},
			{Kind: KindMedia, Target: target, Transport: tr, Status: Skip, Reason: "no allocation or permission"},
		}
	}
	return []Check{
		{Kind: KindAllocate, Target: target, Transport: tr, Status: OK, Relayed: "198.51.100.10:50000", Local: "10.0.0.2:40000"},
		{Kind: KindPermission, Target: target, Transport: tr, Status: OK},
		{Kind: KindMedia, Target: target, Transport: tr, Status: OK, Reason: "media both ways"},
	}
}

func TestVerdict(t *testing.T) {
	udpTimeout := explain(UDP, srv, fmt.Errorf("allocate: no response: %w", context.DeadlineExceeded))
	denied := explain(TCP, srv, &turnclient.Error{Code: 401, Reason: "Unauthorized"})
	var udpBlocked []Check
	udpBlocked = append(udpBlocked, Check{Kind: KindSTUN, Target: "turn:198.51.100.10:3478?transport=udp", Transport: UDP, Status: Fail, Reason: udpTimeout})
	udpBlocked = append(udpBlocked, relayChecks("turn:198.51.100.10:3478?transport=udp", UDP, Fail, udpTimeout)...)
	udpBlocked = append(udpBlocked, relayChecks("turn:198.51.100.10:3478?transport=tcp", TCP, OK, "")...)
	direct := []Check{{Kind: KindSTUN, Target: "stun:198.51.100.10:3478", Transport: UDP, Status: OK, Mapped: "203.0.113.5:4000", Local: "10.0.0.2:4000"},
		{Kind: KindNAT, Target: "stun:198.51.100.10:3478", Transport: UDP, Status: OK, NAT: "address-and-port-dependent", Reason: "symmetric"}}
	direct = append(direct, relayChecks("turns:198.51.100.10:443", TLS, OK, "")...)
	noRelay := append(append([]Check(nil), direct[:2]...), relayChecks("turn:198.51.100.10:3478?transport=tcp", TCP, Fail, denied)...)
	oneWay := relayChecks("turn:198.51.100.10:3478?transport=udp", UDP, OK, "")
	oneWay[2].Status, oneWay[2].Reason = judgeMedia(MediaStats{Up: Direction{Sent: 10, Received: 10}, Down: Direction{Sent: 10}})

	for _, tc := range []struct {
		name     string
		checks   []Check
		viable   bool
		selected string
		summary  []string
		rows     map[string]string
	}{
		{"udp-blocked-tcp-fallback", udpBlocked, true, "relay/tcp",
			[]string{"UDP 3478 to 198.51.100.10 timed out: the firewall drops outbound UDP", "TURN over TCP 3478 fallback works"},
			map[string]string{"srflx/udp": Fail, "relay/udp": Fail, "relay/tcp": OK, "relay/tls": NotTested, "host/udp": OK}},
		{"wrong-credentials", relayChecks("turn:198.51.100.10:3478?transport=tcp", TCP, Fail, denied), false, "",
			[]string{"401 Unauthorized", "no fallback works"},
			map[string]string{"relay/tcp": Fail, "srflx/udp": NotTested, "host/udp": NotTested}},
		{"direct-udp", direct, true, "srflx/udp", []string{"every path tested works"},
			map[string]string{"srflx/udp": OK, "relay/tls": OK}},
		{"srflx-only-no-relay-path", noRelay, true, "srflx/udp", []string{"no relay path: TCP 3478 to 198.51.100.10: the relay refused the credentials (401", "only direct UDP works (srflx/udp)"},
			map[string]string{"srflx/udp": OK, "relay/tcp": Fail}},
		{"one-way-audio", oneWay, false, "", []string{"one-way audio"}, map[string]string{"relay/udp": Fail}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Checks: tc.checks}
			v := r.Verdict()
			if v.Viable != tc.viable {
				t.Errorf("viable = %v", v.Viable)
			}
			sel := ""
			if v.Selected != nil {
				sel = v.Selected.Type + "/" + v.Selected.Transport
			}
			if sel != tc.selected {
				t.Errorf("selected %q, want %q (%s)", sel, tc.selected, v.Prediction)
			}
			for _, s := range tc.summary {
				if !strings.Contains(v.Summary, s) {
					t.Errorf("summary %q lacks %q", v.Summary, s)
				}
			}
			for k, want := range tc.rows {
				typ, tr, _ := strings.Cut(k, "/")
				if c := v.find(typ, tr); c.Status != want {
					t.Errorf("%s: %s, want %s (%s)", k, c.Status, want, c.Reason)
				}
			}
			var text, js bytes.Buffer
			if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "CANDIDATE") {
				t.Errorf("text: %v\n%s", err, text.String())
			}
			var back map[string]any
			if err := r.WriteJSON(&js); err != nil || json.Unmarshal(js.Bytes(), &back) != nil || back["verdict"] == nil {
				t.Errorf("json: %v\n%s", err, js.String())
			}
		})
	}
}

func TestPriority(t *testing.T) {
	if p := Priority("host", UDP); p != 2130706431 {
		t.Errorf("host %d", p)
	}
	if p := Priority("srflx", UDP); p != 1694498815 {
		t.Errorf("srflx %d", p)
	}
	if !(Priority("relay", UDP) > Priority("relay", TCP) && Priority("relay", TCP) > Priority("relay", TLS) && Priority("srflx", UDP) > Priority("relay", UDP)) {
		t.Error("order")
	}
}

func TestParseURI(t *testing.T) {
	for in, want := range map[string]string{
		"turn:198.51.100.10:3478?transport=udp":    "turn:198.51.100.10:3478?transport=udp",
		"turn:turn.example.com?transport=tcp":      "turn:turn.example.com:3478?transport=tcp",
		"turns:turn.example.com":                   "turns:turn.example.com:5349",
		"turns:turn.example.com:443?transport=tcp": "turns:turn.example.com:443",
		"turn:[2001:db8::1]:3478":                  "turn:[2001:db8::1]:3478?transport=udp",
		"stun:stun.l.google.com:19302":             "stun:stun.l.google.com:19302",
	} {
		u, err := ParseURI(in, "")
		if err != nil || u.String() != want {
			t.Errorf("%s: %v %v, want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"http://x", "turn:", "turn:x:99999", "turns:x?transport=udp", "stun:x?transport=tcp", "turn:2001:db8::1", "turn:x?foo=1"} {
		if _, err := ParseURI(bad, ""); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if u, err := ParseURI("127.0.0.1:3478", "stun"); err != nil || u.Scheme != "stun" {
		t.Errorf("bare host:port: %v %v", u, err)
	}
}

// TestExplainLocalFirewall: a send refused by this machine's own firewall
// (EPERM from sendto) is named as such, not as a remote timeout.
func TestExplainLocalFirewall(t *testing.T) {
	err := &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendto", syscall.EPERM)}
	got := explain(UDP, srv, err)
	if !strings.Contains(got, "this machine's own firewall refuses") || !strings.Contains(got, "outbound UDP") {
		t.Fatalf("explain = %q", got)
	}
}
