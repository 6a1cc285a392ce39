package fortios

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// TestLimitsAndFeeds: a 50,000-prefix provider on a small model is a
// positioned error naming the limit and the numbers; with feeds it
// compiles, the feed files hold the aggregated prefixes, and the box model
// decides packets from the configuration and the feed files as the IR.
func TestLimitsAndFeeds(t *testing.T) {
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	p := largeProgram(t, n)
	small := backends.Options{Params: map[string]string{"model": "FG-60F"}}
	cs := Backend{}.Check(p, small)
	if len(cs) == 0 {
		t.Fatal("no constraint for a provider beyond the model's tables")
	}
	for _, c := range cs {
		t.Logf("%s", c.Error())
		if c.At.File == "" || c.At.Line == 0 {
			t.Errorf("constraint without a position: %v", c)
		}
	}
	if !strings.Contains(cs[0].Error(), "but the model holds") {
		t.Errorf("constraint does not name the numbers: %v", cs[0])
	}
	if _, err := (Backend{}).Emit(p, small); err == nil {
		t.Error("Emit wrote output beyond the model's limits")
	}
	if _, err := (Backend{}).Change(nil, p, small); err == nil {
		t.Error("Change wrote a script beyond the model's limits")
	}

	const base = "https://feeds.example.com/turnwall/"
	feedOpts := backends.Options{Params: map[string]string{"model": "FG-60F", "feed-above": "500", "feed-url": base}}
	if cs := (Backend{}).Check(p, feedOpts); len(cs) != 0 {
		t.Fatalf("with feeds: %v", cs)
	}
	files := backendtest.Emit(t, Backend{}, p, feedOpts)
	conf := string(files[0].Data)
	if !strings.Contains(conf, "config system external-resource\n") || !strings.Contains(conf, "        set type address\n") {
		t.Fatalf("no external-resource in the configuration")
	}
	feeds, err := ReadFeeds(base, files)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, s := range p.AddressSets {
		if !(feedSettings{above: 500}).isFeed(&s) {
			continue
		}
		for _, v4 := range []bool{true, false} {
			want := aggregated(&s, v4)
			if len(want) == 0 {
				continue
			}
			var got []netip.Prefix
			for url, prs := range feeds {
				if strings.HasSuffix(url, ".txt") && len(prs) > 0 && prs[0].Addr().Is4() == v4 && strings.Contains(url, s.Name) {
					got = prs
				}
			}
			if len(got) != len(want) {
				t.Fatalf("feed of %s (v4 %v): %d prefixes, want %d aggregated", s.Name, v4, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("feed of %s line %d: %s, want %s", s.Name, i+1, got[i], want[i])
				}
			}
			lines += len(got)
		}
	}
	if lines == 0 {
		t.Fatal("no feed files")
	}
	t.Logf("%d bytes of configuration, %d feed files, %d feed lines for %d prefixes", len(files[0].Data), len(files)-1, lines, n)
	// The independent reader (turnwall trace's) re-reads the configuration
	// with its feed files and decides as the IR.
	cfg, err := Backend{}.Reader().Read(files)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 3000)
	if _, err := (Backend{}).Reader().Read(files[:1]); err == nil || !strings.Contains(err.Error(), "no feed file") {
		t.Errorf("a configuration without its feed files: %v", err)
	}
	// The snapshot and the first-install script, each with the feeds,
	// decide as the IR on the box model.
	for _, text := range [][]byte{files[0].Data, changeData(t, p, feedOpts)} {
		box, err := NewBox(nil, 10000, 10999, zonesOf(p), feeds)
		if err != nil {
			t.Fatal(err)
		}
		if err := box.Apply(text, nil); err != nil {
			t.Fatal(err)
		}
		backendtest.CheckEquivalent(t, p, box.Config(), backendtest.EquivOptions{CheckSource: true}, 3000)
	}
}

func changeData(t *testing.T, p *ir.Program, opts backends.Options) []byte {
	t.Helper()
	files, err := Backend{}.Change(nil, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return files[0].Data
}

// TestLimitParams: bad model, limits and feed parameters are clear errors.
func TestLimitParams(t *testing.T) {
	p := smallProgram()
	for params, want := range map[string]string{
		"model=FG-9999":                  "unknown FortiGate model",
		"limits=addresses=0":             "expected NAME=N",
		"limits=widgets=5":               "unknown limit",
		"feed-above=10":                  "needs feed-url",
		"feed-url=http://feeds.example/": "https URL",
		"feed-url=https://a/b%20c?x":     "https URL",
		"feed-url=https://a/\"x":         "quotes",
		"feed-above=-1":                  "feed-above",
		"feed-refresh=0":                 "feed-refresh",
	} {
		opts := backends.Options{Params: map[string]string{}}
		for _, kv := range strings.Split(params, " ") {
			k, v, _ := strings.Cut(kv, "=")
			opts.Params[k] = v
		}
		if _, err := (Backend{}).Emit(p, opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", params, err, want)
		}
	}
	// A limit given exactly fires with its numbers.
	cs := Backend{}.Check(p, backends.Options{Params: map[string]string{"limits": "policies=2"}})
	if len(cs) != 1 || !strings.Contains(cs[0].Detail, "needs 3 firewall policies but the model holds 2") {
		t.Errorf("policies=2: %v", cs)
	}
}

// TestFeedTotal: the threat feeds together must fit the box's global IP
// entry limit (FortiOS 7.4.4 and later: 300,000 on every model); a smaller
// figure given as limits=feed-total=N is checked the same way, with the
// numbers.
func TestFeedTotal(t *testing.T) {
	p := largeProgram(t, 3_000)
	opts := func(limits string) backends.Options {
		return backends.Options{Params: map[string]string{"feed-above": "500", "feed-url": "https://feeds.example.com/tw/", "limits": limits}}
	}
	if cs := (Backend{}).Check(p, opts("feed-total=100000")); len(cs) != 0 {
		t.Fatalf("3,000 prefixes in feeds against 100,000: %v", cs)
	}
	cs := Backend{}.Check(p, opts("feed-total=1000"))
	if len(cs) != 1 || cs[0].Summary != "threat feeds too large in total" || !strings.Contains(cs[0].Detail, "but the box holds 1000 IP address entries") {
		t.Fatalf("constraints %v, want one naming the total and the limit", cs)
	}
	if m := models["FG-60F"]; m.feedTotal != 300_000 {
		t.Errorf("FG-60F feed total %d, want FortiOS 7.4.4's 300,000", m.feedTotal)
	}
}
