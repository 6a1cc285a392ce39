package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/readiness"
)

// BrowserResult is what a real browser on an agents host found: headless
// Chromium opened the readiness page (turnwall readiness) with the ICE
// servers the lab gives that group, tried each, placed a short call through
// each relay to a media peer on the group's far end, and the readiness
// server judged the result against the policy.
type BrowserResult struct {
	Browser string         `json:"browser"`
	Verdict string         `json:"verdict"` // ready, degraded, not-ready
	Summary string         `json:"summary"`
	Seconds float64        `json:"seconds"` // from starting the browser to the verdict
	Checks  []BrowserCheck `json:"checks"`
	Calls   []BrowserCall  `json:"calls"`
	// Skipped lists servers a browser never uses (STUN over TCP).
	Skipped []string `json:"skipped,omitempty"`
	OK      bool     `json:"ok"`
	Trouble string   `json:"trouble,omitempty"`
}

// BrowserCheck is the browser's outcome for one ICE server, beside what the
// IR expects.
type BrowserCheck struct {
	URL           string `json:"url"`
	Owner         string `json:"owner"`
	Expected      string `json:"expected"` // pass or fail
	Got           string `json:"got"`
	ErrorCode     int    `json:"error_code,omitempty"`
	RelayProtocol string `json:"relay_protocol,omitempty"`
	Explanation   string `json:"explanation,omitempty"`
	OK            bool   `json:"ok"`
}

// BrowserCall is one of the browser's test calls.
type BrowserCall struct {
	URL       string  `json:"url"`
	Connected bool    `json:"connected"`
	ConnectMs float64 `json:"connect_ms,omitempty"`
	MOS       float64 `json:"mos,omitempty"`
	Band      string  `json:"band,omitempty"`
	Why       string  `json:"why,omitempty"`
}

// Bounds of a browser run.
const (
	browserTimeout = 60 * time.Second
	browserAudio   = 2 * time.Second
)

// Chromium returns the path of Debian's chromium, or an error saying how to
// get it.
func Chromium() (string, error) {
	if p := readiness.Chromium(); p != "" {
		return p, nil
	}
	return "", errors.New("--agent chromium needs Chromium (Debian package chromium; make deps installs it)")
}

// Browsers runs headless Chromium on each agents host (one group after the
// other) with the readiness page. The page is served from the agents host
// itself, so what crosses the gateway is what the page tests: the ICE
// servers, and the calls to the far end's media peer. calls are the pion
// calls of the same run: the browser's verdict must agree with them.
func (l *Lab) Browsers(ctx context.Context, svc *Services, calls []CallResult, lintCodes map[string]bool, progress func(string)) (map[string]*BrowserResult, error) {
	chromium, err := Chromium()
	if err != nil {
		return nil, err
	}
	out := map[string]*BrowserResult{}
	for _, h := range l.AgentHosts() {
		if ctx.Err() != nil {
			break
		}
		if progress != nil {
			progress(fmt.Sprintf("Chromium on agents %q", h.Block))
		}
		res, err := l.browser(ctx, chromium, svc, h, lintCodes)
		if err != nil {
			return nil, fmt.Errorf("agents %q: Chromium: %w", h.Block, err)
		}
		connected := false
		for _, c := range calls {
			connected = connected || (c.Group == h.Block && c.Skipped == "" && c.Result.State == "connected")
		}
		res.OK = true
		var bad []string
		for _, c := range res.Checks {
			if !c.OK {
				res.OK = false
				bad = append(bad, fmt.Sprintf("%s expected %s, got %s", c.URL, c.Expected, c.Got))
			}
		}
		switch {
		case res.Verdict == "skipped":
			res.OK = true
		case res.Verdict == "":
			res.OK = false
			res.Trouble = "the page gave no verdict"
		case connected && res.Verdict == readiness.NotReady:
			res.OK = false
			res.Trouble = "the browser's calls fail where the lab's calls connect: " + res.Summary
		case !connected && res.Verdict != readiness.NotReady:
			res.OK = false
			res.Trouble = "the browser's calls connect where the lab's calls fail: " + res.Summary
		case len(bad) > 0:
			res.Trouble = "the browser disagrees with the policy: " + strings.Join(bad, "; ")
		}
		out[h.Block] = res
	}
	return out, nil
}

// transportOf is how srv is reached: udp, tcp or tls.
func transportOf(srv ICEServer) string {
	switch {
	case srv.Kind == "turns":
		return "tls"
	case srv.Proto == ir.TCP:
		return "tcp"
	}
	return "udp"
}

// browser runs one agents host's page.
func (l *Lab) browser(ctx context.Context, chromium string, svc *Services, h *Host, lintCodes map[string]bool) (*BrowserResult, error) {
	res := &BrowserResult{Browser: "chromium"}
	var targets []readiness.Target
	byID := map[string]ICEServer{}
	for i, srv := range svc.ICEServers(h.Block) {
		if srv.Kind == "stun" && srv.Proto == ir.TCP {
			res.Skipped = append(res.Skipped, srv.URL+" (browsers send STUN over UDP only)")
			continue
		}
		id := fmt.Sprintf("s%02d-%s-%s", i, srv.Kind, transportOf(srv))
		byID[id] = srv
		t := readiness.Target{ID: id, Owner: srv.Owner, Kind: srv.Kind, Transport: transportOf(srv), URL: srv.URL,
			Port: srv.Addr.Port(), Proto: srv.Proto, Addrs: []netip.Addr{srv.Addr.Addr()}, FQDN: srv.FQDN, Realm: srv.Realm,
			Username: srv.Username, Credential: srv.Credential}
		if srv.Kind != "stun" {
			t.Relay = srv.Owner
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		res.Verdict = "skipped"
		res.Summary = "the policy gives these agents no TURN or STUN server, so a browser has nothing to test before a call (media goes straight to the provider)"
		return res, nil
	}
	media := readiness.MediaOptions{Duration: browserAudio}
	if fe, ok := l.FarEnd(h.Block); ok {
		media.Addrs, media.Ports = fe.Host.mediaAddrs(), fe.Ports
		n, err := readiness.InNamespace(fe.Host.NS.Do)
		if err != nil {
			return nil, err
		}
		media.Net = n
	} else {
		// No far end: the page still checks every server; calls have no
		// media peer to reach (an address of the agents host itself).
		media.Addrs = h.addrs()[:1]
		n, err := readiness.InNamespace(h.NS.Do)
		if err != nil {
			return nil, err
		}
		media.Net = n
	}
	store := readiness.NewMemStore(1)
	rs, err := readiness.New(readiness.Options{Program: l.Prog, Targets: targets, Store: store, Media: media, LintCodes: lintCodes})
	if err != nil {
		return nil, err
	}
	src := h.addrs()[0]
	var ln net.Listener
	if err := h.NS.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(src.String(), "0"))
		return err
	}); err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: rs, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	page := "http://" + net.JoinHostPort(src.String(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + "/?auto=1"

	profile, err := os.MkdirTemp("", "turnwall-lab-chromium-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	bctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	args := append([]string{"netns", "exec", h.NS.Name, chromium}, readiness.HeadlessArgs(profile)...)
	if sp := svc.ca.spkis(); len(sp) > 0 {
		args = append(args, "--ignore-certificate-errors-spki-list="+strings.Join(sp, ","))
	}
	cmd := exec.Command("ip", append(args, page)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log tailBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	var rec readiness.Record
	for {
		recs, _ := store.List(time.Time{}, 1)
		if len(recs) > 0 {
			rec = recs[0]
			break
		}
		select {
		case <-bctx.Done():
			res.Trouble = fmt.Sprintf("no result from the page within %v; Chromium said: %s", browserTimeout, log.String())
			return res, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.Seconds = time.Since(start).Round(10 * time.Millisecond).Seconds()
	res.Verdict, res.Summary = rec.Verdict, rec.Summary
	for _, c := range rec.Checks {
		srv := byID[c.Target]
		e := svc.expect(h.Block, srv)
		bc := BrowserCheck{URL: srv.URL, Owner: srv.Owner, Expected: "fail", Got: "fail", ErrorCode: c.ErrorCode,
			RelayProtocol: c.RelayProtocol, Explanation: c.Explanation}
		if e.pass {
			bc.Expected = "pass"
		}
		if c.Outcome == "ok" {
			bc.Got = "pass"
		}
		bc.OK = bc.Expected == bc.Got
		res.Checks = append(res.Checks, bc)
	}
	for _, c := range rec.Calls {
		why := c.Explanation
		if why == "" && !c.Connected {
			why = c.Error
		}
		res.Calls = append(res.Calls, BrowserCall{URL: byID[c.Target].URL, Connected: c.Connected, ConnectMs: c.ConnectMs, MOS: c.MOS, Band: c.Band, Why: why})
	}
	return res, nil
}

// tailBuffer keeps the last 2 KB written to it (a browser's log).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2048 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-2048:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(t.buf), "?")), " ")
}
