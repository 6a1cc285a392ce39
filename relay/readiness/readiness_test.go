package readiness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/readiness"
	"github.com/turnwall/turnwall/relay/store/storetest"
)

func compile(t *testing.T, src string) *ir.Program {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res := compiler.Compile(dir, compiler.Options{})
	p := res.Program
	if p == nil {
		p = res.Lowered
	}
	if p == nil {
		t.Fatalf("policy: %v", res.Diags)
	}
	p.Index()
	return p
}

func ids(ts []readiness.Target) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID+"="+t.URL)
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	res := compiler.Compile("../../policies/private-relay", compiler.Options{})
	if res.HasErrors() {
		t.Fatal(res.Diags)
	}
	got := ids(readiness.Plan(res.Program))
	want := "relay-dmz-tcp-3478=turn:turn.example.com:3478?transport=tcp relay-dmz-tls-443=turns:turn.example.com:443?transport=tcp " +
		"relay-dmz-tls-5349=turns:turn.example.com:5349?transport=tcp relay-dmz-udp-3478=turn:turn.example.com:3478?transport=udp"
	if got != want {
		t.Errorf("private-relay plan:\n got %s\nwant %s", got, want)
	}
	res = compiler.Compile("../../policies/genesys-cloud", compiler.Options{})
	if got := ids(readiness.Plan(res.Program)); got != "stun-genesys-stun-l-google-com-19302=stun:stun.l.google.com:19302 stun-genesys-stun1-l-google-com-19302=stun:stun1.l.google.com:19302" {
		t.Errorf("genesys-cloud plan: %s", got)
	}

	base := browserPolicy
	for _, tt := range []struct{ name, platform, want string }{
		{"no TURN", `platform "p" { use_turn = false }`, ""},
		{"no TCP fallback", `platform "p" { tcp_fallback = false }`, "relay-dmz-udp-3478=turn:192.0.2.10:3478?transport=udp"},
		{"override names another relay", `platform "p" { turn_server_override = "turn.other.example" }`,
			"relay-dmz-tcp-3478=turn:192.0.2.10:3478?transport=tcp relay-dmz-tls-5349=turns:192.0.2.10:5349?transport=tcp relay-dmz-udp-3478=turn:192.0.2.10:3478?transport=udp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(readiness.Plan(compile(t, base+tt.platform))); got != tt.want {
				t.Errorf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDecideAndGroup(t *testing.T) {
	p := compile(t, browserPolicy+`
rule "no-udp" {
  action = "deny"
  from   = agents.floor
  to     = [relay.dmz]
  udp    = ["1-65535"]
}`)
	agent := netip.MustParseAddr(agentAddr)
	if g := readiness.GroupOf(p, agent); g != "floor" {
		t.Errorf("group of %s = %q", agent, g)
	}
	if g := readiness.GroupOf(p, netip.MustParseAddr("203.0.113.5")); g != "" {
		t.Errorf("group of an outsider = %q", g)
	}
	byID := map[string]readiness.Target{}
	for _, tg := range readiness.Plan(p) {
		byID[tg.ID] = tg
	}
	d := readiness.Decide(p, "floor", agent, byID["relay-dmz-udp-3478"])
	if d.Allowed || d.Rule != "no-udp" || !strings.HasPrefix(d.Line, "policy.hcl:") {
		t.Errorf("UDP: %+v", d)
	}
	d = readiness.Decide(p, "floor", agent, byID["relay-dmz-tcp-3478"])
	if !d.Allowed || d.Rule != "floor.dmz.turn" {
		t.Errorf("TCP: %+v", d)
	}
}

func TestJudge(t *testing.T) {
	p := compile(t, browserPolicy)
	targets := map[string]readiness.Target{}
	for _, tg := range readiness.Plan(p) {
		targets[tg.ID] = tg
	}
	ok := func(id, proto string) readiness.Check {
		return readiness.Check{Target: id, Outcome: "ok", RelayProtocol: proto}
	}
	fail := func(id string, code int) readiness.Check {
		return readiness.Check{Target: id, Outcome: "error", ErrorCode: code, ErrorText: "x"}
	}
	good := func(id string) readiness.Call {
		return readiness.Call{Target: id, Connected: true, RTTMs: 20, JitterMs: 2, PacketsReceived: 100, PacketsSent: 100, ServerReceived: 100, ServerSent: 100}
	}
	src := netip.MustParseAddr(agentAddr)
	for _, tt := range []struct {
		name    string
		checks  []readiness.Check
		calls   []readiness.Call
		verdict string
		summary string
	}{
		{"ready over UDP", []readiness.Check{ok("relay-dmz-udp-3478", "udp"), ok("relay-dmz-tcp-3478", "tcp")},
			[]readiness.Call{good("relay-dmz-tcp-3478"), good("relay-dmz-udp-3478")}, readiness.Ready, `Calls connect through relay "dmz" over UDP (MOS 4.`},
		{"udp blocked", []readiness.Check{fail("relay-dmz-udp-3478", 701), ok("relay-dmz-tls-5349", "tls")},
			[]readiness.Call{good("relay-dmz-tls-5349")}, readiness.Degraded, "UDP to the relays is blocked, so calls fall back to TURN over TLS"},
		{"nothing", []readiness.Check{fail("relay-dmz-udp-3478", 401)}, nil, readiness.NotReady, "refused the credentials (401 Unauthorized)"},
		{"one-way audio", []readiness.Check{ok("relay-dmz-udp-3478", "udp")},
			[]readiness.Call{{Target: "relay-dmz-udp-3478", Connected: true, PacketsReceived: 0, PacketsSent: 100, ServerReceived: 100}},
			readiness.Degraded, "one-way audio: the agent hears nothing"},
		{"poor", []readiness.Check{ok("relay-dmz-udp-3478", "udp")},
			[]readiness.Call{{Target: "relay-dmz-udp-3478", Connected: true, RTTMs: 600, JitterMs: 40, PacketsReceived: 80, PacketsLost: 20, PacketsSent: 100, ServerReceived: 80}},
			readiness.Degraded, "audio is poor"},
		{"call failed", []readiness.Check{ok("relay-dmz-udp-3478", "udp")},
			[]readiness.Call{{Target: "relay-dmz-udp-3478", Error: "ICE failed"}}, readiness.NotReady, "no test call connected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := readiness.Record{Group: "floor", Checks: tt.checks, Calls: tt.calls}
			readiness.Judge(p, &rec, targets, src, map[string]bool{})
			if rec.Verdict != tt.verdict || !strings.Contains(rec.Summary, tt.summary) {
				t.Errorf("verdict %s: %s", rec.Verdict, rec.Summary)
			}
		})
	}
	for _, tt := range []struct {
		mos  float64
		band string
	}{{4.4, "excellent"}, {4.3, "excellent"}, {4.1, "good"}, {3.7, "fair"}, {3.5, "poor"}} {
		if b := readiness.Band(tt.mos); b != tt.band {
			t.Errorf("Band(%v) = %s, want %s", tt.mos, b, tt.band)
		}
	}
}

// testServer serves a readiness server on httptest; requests come from
// 127.0.0.1 (loopback: the dashboard is open without a token).
func testServer(t *testing.T, opt readiness.Options) (*httptest.Server, *readiness.Server) {
	t.Helper()
	if opt.Program == nil {
		opt.Program = compile(t, browserPolicy)
	}
	if opt.Secrets == nil {
		opt.Secrets = []string{secret}
	}
	s, err := readiness.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s
}

func do(t *testing.T, method, url, token, ctype string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

type sess struct {
	Token   string `json:"token"`
	Group   string `json:"group"`
	Targets []struct {
		ID         string `json:"id"`
		Username   string `json:"username"`
		Credential string `json:"credential"`
	} `json:"targets"`
}

func newSession(t *testing.T, base string) sess {
	t.Helper()
	code, body, _ := do(t, "POST", base+"/api/session", "", "application/json", []byte("{}"))
	if code != 200 {
		t.Fatalf("session: %d %s", code, body)
	}
	var s sess
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNeedsSecretForRelays(t *testing.T) {
	_, err := readiness.New(readiness.Options{Program: compile(t, browserPolicy)})
	if err == nil || !strings.Contains(err.Error(), "--secret-file") {
		t.Fatalf("err = %v", err)
	}
}

func TestEndpointsRefuseBadInput(t *testing.T) {
	ts, _ := testServer(t, readiness.Options{})
	s := newSession(t, ts.URL)
	if len(s.Targets) != 3 || s.Targets[0].Username == "" || s.Targets[0].Credential == "" {
		t.Fatalf("session targets: %+v", s.Targets)
	}
	// The page itself carries no credential.
	_, page, hdr := do(t, "GET", ts.URL+"/", "", "", nil)
	if strings.Contains(page, s.Targets[0].Credential) || strings.Contains(page, secret) {
		t.Error("the page embeds a credential")
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %q", csp)
	}
	good := `{"checks":[{"target":"relay-dmz-udp-3478","outcome":"ok","relay_protocol":"udp"}],"calls":[]}`
	for _, tt := range []struct {
		name, token, ctype, body string
		want                     int
	}{
		{"no token", "", "application/json", good, 401},
		{"unknown token", "nope", "application/json", good, 401},
		{"wrong content type", s.Token, "text/plain", good, 415},
		{"malformed", s.Token, "application/json", `{"checks":[`, 400},
		{"unknown field", s.Token, "application/json", `{"checks":[],"calls":[],"verdict":"ready"}`, 400},
		{"two objects", s.Token, "application/json", `{"checks":[],"calls":[]}{}`, 400},
		{"oversized", s.Token, "application/json", `{"checks":[{"target":"` + strings.Repeat("a", 70000) + `"}]}`, 413},
		{"unknown target", s.Token, "application/json", `{"checks":[{"target":"relay-x","outcome":"ok"}],"calls":[]}`, 422},
		{"bad outcome", s.Token, "application/json", `{"checks":[{"target":"relay-dmz-udp-3478","outcome":"<b>"}],"calls":[]}`, 422},
		{"negative time", s.Token, "application/json", `{"checks":[{"target":"relay-dmz-udp-3478","outcome":"ok","candidate_ms":-1}],"calls":[]}`, 422},
		{"stun call", s.Token, "application/json", `{"checks":[],"calls":[{"target":"nope","connected":true}]}`, 422},
		{"huge number", s.Token, "application/json", `{"checks":[],"calls":[{"target":"relay-dmz-udp-3478","connected":true,"packets_received":1e30}]}`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := do(t, "POST", ts.URL+"/api/results", tt.token, tt.ctype, []byte(tt.body))
			if code != tt.want {
				t.Errorf("status %d, want %d: %s", code, tt.want, body)
			}
			if !strings.Contains(body, `"error"`) {
				t.Errorf("no error message: %s", body)
			}
		})
	}
	// Nothing was stored by the refused posts.
	_, dash, _ := do(t, "GET", ts.URL+"/api/dashboard", "", "", nil)
	if !strings.Contains(dash, `"groups":[]`) {
		t.Errorf("refused posts were stored: %s", dash)
	}
	// Calls: bad SDP, a STUN target, no token.
	for _, tt := range []struct {
		token, body string
		want        int
	}{
		{"", `{"target":"relay-dmz-udp-3478","sdp":"v=0"}`, 401},
		{s.Token, `{"target":"relay-dmz-udp-3478","sdp":"<script>"}`, 400},
		{s.Token, `{"target":"relay-dmz-udp-3478","sdp":"v=0\r\nnonsense"}`, 400},
		{s.Token, `{"target":"nothing","sdp":"v=0"}`, 400},
	} {
		if code, body, _ := do(t, "POST", ts.URL+"/api/call", tt.token, "application/json", []byte(tt.body)); code != tt.want {
			t.Errorf("call %s: status %d, want %d: %s", tt.body, code, tt.want, body)
		}
	}
	// A good post is accepted once.
	if code, body, _ := do(t, "POST", ts.URL+"/api/results", s.Token, "application/json", []byte(good)); code != 200 {
		t.Fatalf("good post: %d %s", code, body)
	}
	if code, _, _ := do(t, "POST", ts.URL+"/api/results", s.Token, "application/json", []byte(good)); code != 409 {
		t.Errorf("second post: %d, want 409", code)
	}
}

func TestSessionRateLimit(t *testing.T) {
	ts, _ := testServer(t, readiness.Options{})
	codes := map[int]int{}
	for i := 0; i < 25; i++ {
		code, _, _ := do(t, "POST", ts.URL+"/api/session", "", "application/json", []byte("{}"))
		codes[code]++
	}
	if codes[200] != 20 || codes[429] != 5 {
		t.Errorf("statuses: %v", codes)
	}
}

// hostile strings an agent's browser could post.
var hostile = []string{
	`<img src=x onerror=alert(1)>`, `"><script>alert(1)</script>`, "\x1b[31mred\x1b[0m",
	"line\nINJECTED line", "\u202egnp.exe", "=cmd|' /C calc'!A0", "@SUM(1+1)", "\u2028sep",
}

func postHostile(t *testing.T, base string) {
	t.Helper()
	for _, h := range hostile {
		s := newSession(t, base)
		body, _ := json.Marshal(map[string]any{
			"checks": []map[string]any{{"target": "relay-dmz-udp-3478", "outcome": "error", "error_code": 701, "error_text": h, "url": h}},
			"calls":  []map[string]any{{"target": "relay-dmz-tcp-3478", "connected": false, "error": h}},
		})
		req, _ := http.NewRequest("POST", base+"/api/results", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Token)
		req.Header.Set("Content-Type", "application/json")
		if !strings.ContainsAny(h, "\n\x1b") {
			req.Header.Set("User-Agent", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("hostile post %q: %d", h, resp.StatusCode)
		}
	}
}

func TestHostileStringsStayText(t *testing.T) {
	ts, _ := testServer(t, readiness.Options{})
	postHostile(t, ts.URL)
	_, dash, _ := do(t, "GET", ts.URL+"/api/dashboard", "", "", nil)
	for _, bad := range []string{"<img", "<script", "\x1b", "\n INJECTED", "\u202e", "\u2028"} {
		if strings.Contains(dash, bad) {
			t.Errorf("dashboard JSON holds %q", bad)
		}
	}
	_, csv, hdr := do(t, "GET", ts.URL+"/api/results.csv", "", "", nil)
	if !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Errorf("CSV content type %q", hdr.Get("Content-Type"))
	}
	for _, line := range strings.Split(strings.TrimSpace(csv), "\n")[1:] {
		for _, cell := range strings.Split(line, ",") {
			cell = strings.Trim(cell, `"`)
			if cell != "" && strings.ContainsRune("=+@", rune(cell[0])) {
				t.Errorf("CSV cell starts a formula: %q", cell)
			}
		}
	}
	if strings.Count(csv, "\n") != 1+2*len(hostile) {
		t.Errorf("CSV has %d lines, want %d (a string added a line)", strings.Count(csv, "\n"), 1+2*len(hostile))
	}
}

// The dashboard page renders hostile strings as text in a real browser.
func TestDashboardInChromium(t *testing.T) {
	chromium := needChromiumOnly(t)
	ts, _ := testServer(t, readiness.Options{})
	postHostile(t, ts.URL)
	args := append(readiness.HeadlessArgs(t.TempDir()), "--virtual-time-budget=5000", "--dump-dom", ts.URL+"/dashboard")
	out, err := exec.Command(chromium, args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	dom := string(out)
	if !strings.Contains(dom, `data-loaded="1"`) {
		t.Fatalf("dashboard did not load:\n%s", tail(dom, 2000))
	}
	if !strings.Contains(dom, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("hostile text not shown as text")
	}
	if strings.Contains(dom, "<img") || strings.Contains(dom, "<script>alert") {
		t.Errorf("hostile HTML became elements")
	}
}

func TestAdminEndpointsNeedToken(t *testing.T) {
	const tok = "admin-token-0123456789abcdef"
	p := compile(t, browserPolicy)
	s, err := readiness.New(readiness.Options{Program: p, Secrets: []string{secret}, AdminToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, path := range []string{"/dashboard", "/api/dashboard", "/api/results.json", "/api/results.csv", "/metrics"} {
		if code, _, _ := do(t, "GET", ts.URL+path, "", "", nil); code != 401 {
			t.Errorf("%s without token: %d", path, code)
		}
		if code, _, _ := do(t, "GET", ts.URL+path, "wrong", "", nil); code != 401 {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
		if code, _, _ := do(t, "GET", ts.URL+path, tok, "", nil); code != 200 {
			t.Errorf("%s with the token: %d", path, code)
		}
	}
}

func TestBoltStoreSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.db")
	st, err := readiness.OpenBolt(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if err := st.Add(readiness.Record{ID: string(rune('a' + i)), At: base.Add(time.Duration(i) * time.Minute), Verdict: readiness.Ready}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	st, err = readiness.OpenBolt(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.List(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, r := range recs {
		got += r.ID
	}
	if got != "cde" {
		t.Errorf("records after restart = %q, want the newest three cde", got)
	}
	if recs, _ := st.List(base.Add(4*time.Minute), 0); len(recs) != 1 {
		t.Errorf("since: %d records", len(recs))
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(bad, bytes.Repeat([]byte("garbage!"), 1024), 0o600)
	if _, err := readiness.OpenBolt(bad, 0); err == nil {
		t.Error("a garbage file opened as a store")
	}
}

// A policy that gives agents no ICE server: the page still gets a verdict.
func TestEmptyPlan(t *testing.T) {
	p := compile(t, `
policy "direct" {}
zone "agents" { interface = "vlan30" }
zone "internet" { interface = "wan0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.30.0.0/24"]
}
provider "teams" {
  zone   = zone.internet
  ranges = ["52.112.0.0/14"]
  media  = { udp = ["3478-3481"] }
}`)
	ts, _ := testServer(t, readiness.Options{Program: p, Secrets: []string{}})
	s := newSession(t, ts.URL)
	if len(s.Targets) != 0 {
		t.Fatalf("targets: %+v", s.Targets)
	}
	code, body, _ := do(t, "POST", ts.URL+"/api/results", s.Token, "application/json", []byte(`{"checks":[],"calls":[]}`))
	if code != 200 || !strings.Contains(body, `"verdict":"not-ready"`) || !strings.Contains(body, "no TURN or STUN server to test") {
		t.Errorf("%d %s", code, body)
	}
}

// Results in PostgreSQL (Debian's server, started by the test): kept across
// a reconnect, bounded, listed from a time on; a wrong password is a clear
// error that does not show it.
func TestPGStore(t *testing.T) {
	pg := storetest.StartPostgres(t)
	db := pg.NewDatabase(t, false)
	ctx := context.Background()
	st, err := readiness.OpenPG(ctx, db.URL(), 3)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if err := st.Add(readiness.Record{ID: string(rune('a' + i)), At: base.Add(time.Duration(i) * time.Minute), Verdict: readiness.Ready, Summary: "<b>x</b>\u202e"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	st, err = readiness.OpenPG(ctx, db.URL(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.List(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, r := range recs {
		got += r.ID
	}
	if got != "cde" || recs[0].Summary != "<b>x</b>\u202e" {
		t.Errorf("records = %q (%+v)", got, recs)
	}
	if recs, _ := st.List(base.Add(4*time.Minute), 0); len(recs) != 1 {
		t.Errorf("since: %d records", len(recs))
	}
	bad := strings.Replace(db.URL(), db.Password, "wrong-password-123", 1)
	_, err = readiness.OpenPG(ctx, bad, 0)
	if err == nil || strings.Contains(err.Error(), "wrong-password-123") || !strings.Contains(err.Error(), "result store") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := readiness.OpenPG(ctx, "mysql://x", 0); err == nil {
		t.Error("a mysql URL opened")
	}
}
