package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
)

// quotaLab starts turnwall's relay in the lab namespace (ourRelayLab) with
// `turnwall relay`'s default limits and the static user "static"; the probe
// runs from the lab's agent address and is its own peer.
func quotaLab(t *testing.T) (Config, *relay.Server) {
	t.Helper()
	users, err := creds.ParseUsers([]byte("static:static-password\n"), false)
	must(t, err)
	ns, _, s := ourRelayLabWith(t, relay.DefaultLimits(), users)
	cfg := agentConfig(ns)
	cfg.Timeout = 2 * time.Second
	return cfg, s
}

func labURI(t *testing.T, transport string) URI {
	return parseURIs(t, "turn:192.0.2.10:3478?transport="+transport)[0]
}

// TestLoadQuota: against the relay's default per-user quota (12), ten
// streams as one user are refused by the quota (reported as such, not as a
// quality limit); with a REST secret each stream is its own user and the
// same ten streams hold.
func TestLoadQuota(t *testing.T) {
	base, s := quotaLab(t)
	u := labURI(t, relay.UDP)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg := base
	cfg.Username, cfg.Password = "static", "static-password"
	rep, err := Load(ctx, LoadConfig{Config: cfg, Target: u, Streams: 10, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := rep.Steps[0]
	// 20 allocations asked, 12 granted: which pairs complete depends on the
	// order the relay sees them.
	if rep.Limit != LimitQuota || rep.QuotaAt != 10 || rep.FallsAt != 0 || rep.PerStreamUsers || st.QuotaRefused < 4 || st.Opened+st.QuotaRefused != 10 {
		t.Errorf("one user: %+v", rep)
	}
	sum := rep.Summary()
	for _, want := range []string{"Capacity limited by relay quota at 10 streams", fmt.Sprintf("refused %d of them with 486", st.QuotaRefused), "not a quality limit", "--secret-file"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q lacks %q", sum, want)
		}
	}
	if strings.Contains(sum, "MOS") || strings.Contains(st.FirstError, "no allocation") {
		t.Errorf("quota reported as quality, or run-together reasons: %q / %q", sum, st.FirstError)
	}
	if !strings.Contains(st.FirstError, "allocation quota is reached (486)") {
		t.Errorf("first error %q", st.FirstError)
	}
	// Wait for the refused streams' allocations to go.
	for deadline := time.Now().Add(5 * time.Second); s.AllocationCount() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}

	cfg = base
	cfg.Secret = testSecret
	rep, err = Load(ctx, LoadConfig{Config: cfg, Target: u, Streams: 10, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Limit != LimitNone || rep.Capacity != 10 || !rep.PerStreamUsers || rep.Steps[0].Opened != 10 {
		t.Errorf("one user per stream: %+v", rep)
	}
	if sum := rep.Summary(); sum != "Quality held at every tested count (up to 10 streams)." {
		t.Errorf("summary %q", sum)
	}
}

// TestLoadSummary: each limit has its own sentence.
func TestLoadSummary(t *testing.T) {
	for _, tc := range []struct {
		rep  LoadReport
		want string
	}{
		{LoadReport{Threshold: 3.6, Capacity: 50, FallsAt: 100, Limit: LimitQuality, Steps: []LoadStep{{Streams: 100, Opened: 100, MOS: 3.1}}},
			"Quality falls below MOS 3.6 at 100 streams (MOS 3.10). It held at 50 streams."},
		{LoadReport{Threshold: 3.6, FallsAt: 10, Limit: LimitStreams, Steps: []LoadStep{{Streams: 10, Opened: 7, FirstError: "TCP 3478 to 192.0.2.10 timed out"}}},
			"At 10 streams, 3 could not be opened (first failure: TCP 3478 to 192.0.2.10 timed out). Quality held at no tested count."},
		{LoadReport{Threshold: 3.6, Capacity: 5, QuotaAt: 10, Limit: LimitQuota, PerStreamUsers: true, Steps: []LoadStep{{Streams: 10, Opened: 8, QuotaRefused: 2}}},
			"Capacity limited by relay quota at 10 streams: the relay refused 2 of them with 486 (allocation quota reached); this is the relay's allocation limit, not a quality limit. Quality held at 5 streams."},
		{LoadReport{Capacity: 8, Steps: []LoadStep{{Streams: 8, Opened: 8}}}, "Quality held at every tested count (up to 8 streams)."},
	} {
		if got := tc.rep.Summary(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestNoRelayPath: srflx works but the relay refuses the credentials: the
// path is viable (direct UDP), and the verdict says there is no relay path.
func TestNoRelayPath(t *testing.T) {
	base, _ := quotaLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := base
	cfg.Username, cfg.Password, cfg.Packets, cfg.Rate = "static", "wrong", 5, 100
	cfg.TURN = []URI{labURI(t, relay.UDP), labURI(t, relay.TCP)}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verdict()
	if !v.Viable || v.RelayPath || !v.RelayTested || v.Selected == nil || v.Selected.Type != "srflx" {
		t.Fatalf("verdict %+v", v)
	}
	if !strings.HasPrefix(v.Summary, "no relay path: UDP ") || !strings.Contains(v.Summary, "refused the credentials (401") {
		t.Errorf("summary %q", v.Summary)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "\nVerdict: viable media path (direct only): no relay path: ") {
		t.Errorf("text:\n%s", b.String())
	}
	// With the right credentials, the relay path exists.
	cfg.Password = "static-password"
	cfg.TURN = cfg.TURN[:1]
	rep, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := rep.Verdict(); !v.Viable || !v.RelayPath {
		t.Errorf("right credentials: %+v", v)
	}
}
