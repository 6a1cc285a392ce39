package panos

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/compiler/ir"
)

// spreadProvider is smallProgram with a provider of n /24 ranges, one /24
// apart so that they do not aggregate (10.0.0.0/24, 10.0.2.0/24, ...).
func spreadProvider(n int) *ir.Program {
	p := smallProgram()
	s := p.AddressSet("provider")
	s.V4, s.FQDNs = nil, nil
	for i := 0; i < n; i++ {
		j := 2 * i
		s.V4 = append(s.V4, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + j>>16), byte(j >> 8), byte(j), 0}), 24))
	}
	s.Origin.Source = ir.Source{File: "providers.hcl", Line: 3, Col: 1}
	p.Index()
	return p
}

func TestModelLimits(t *testing.T) {
	p := spreadProvider(50000)
	small := backends.Options{Params: map[string]string{"model": "pa-220"}}
	cs := Backend{}.Check(p, small)
	var msgs []string
	for _, c := range cs {
		msgs = append(msgs, c.At.String()+": "+c.Summary+": "+c.Detail)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"address objects over the pa-220 limit: turnwall's part needs 50005 address objects; a pa-220 holds 2500",
		"providers.hcl:3: members in the address group of set provider over the pa-220 limit: turnwall's part needs 50000",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("constraints lack %q:\n%s", want, all)
		}
	}
	if _, err := (Backend{}).Emit(p, small); err == nil || !strings.Contains(err.Error(), "50005") {
		t.Errorf("Emit over the limit: %v", err)
	}
	if _, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"model": "pa-9999"}}); err == nil || !strings.Contains(err.Error(), "pa-220") {
		t.Errorf("unknown model: %v", err)
	}
	// Without a model nothing is checked.
	if cs := (Backend{}).Check(smallProgram(), backends.Options{}); len(cs) != 0 {
		t.Errorf("constraints without a model: %v", cs)
	}
}

// The 50,000-range provider as an External Dynamic List fits the small
// model; the feed file holds the aggregated ranges, and the re-read
// configuration with the feed decides packets as the IR does.
func TestFeeds(t *testing.T) {
	p := spreadProvider(50000)
	params := map[string]string{"model": "pa-220", "feed-above": "1000", "feed-url": "https://feeds.example.com/turnwall/", "default-rule": "emit"}
	for _, format := range []string{FormatSet, FormatXML} {
		opts := backends.Options{Format: format, Params: params}
		if cs := (Backend{}).Check(p, opts); len(cs) != 0 {
			t.Fatalf("%s: constraints with the feed: %v", format, cs)
		}
		files := backendtest.Emit(t, Backend{}, p, opts)
		if len(files) != 2 || files[1].Name != "panos-feed-tw-feed-provider.txt" {
			t.Fatalf("%s: files %d, second %q", format, len(files), files[1].Name)
		}
		feed := string(files[1].Data)
		if n := strings.Count(feed, "\n"); n != 50000 || !strings.HasPrefix(feed, "10.0.0.0/24\n10.0.2.0/24\n") {
			t.Errorf("%s: feed has %d lines, starts %q", format, n, feed[:40])
		}
		cfgText := string(files[0].Data)
		if strings.Count(cfgText, "\n") > 400 {
			t.Errorf("%s: the configuration still carries the ranges (%d lines)", format, strings.Count(cfgText, "\n"))
		}
		if format == FormatSet && !strings.Contains(cfgText, "set external-list tw-feed-provider type ip url https://feeds.example.com/turnwall/panos-feed-tw-feed-provider.txt recurring hourly\n") {
			t.Errorf("no external list:\n%s", cfgText)
		}
		cfg, err := Backend{}.Reader().Read(files)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		backendtest.CheckEquivalent(t, p, cfg, backendtest.EquivOptions{CheckSource: true}, 3000)
		if _, err := (Backend{}).Reader().Read(files[:1]); err == nil || !strings.Contains(err.Error(), "panos-feed-tw-feed-provider.txt was not given") {
			t.Errorf("%s: reading without the feed: %v", format, err)
		}
	}

	// A feed by name, and a change of one range is no configuration change
	// at all: only the feed file differs.
	small := bigProvider(20)
	small.AddressSet("provider").FQDNs = nil
	small.Index()
	opts := backends.Options{Params: map[string]string{"feed-sets": "provider", "feed-url": "https://feeds.example.com/tw", "position": "before:corp-web"}}
	next := clone(small)
	next.AddressSet("provider").V4 = next.AddressSet("provider").V4[1:]
	next.Index()
	files, err := Backend{}.Change(small, next, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || len(files[0].Data) != 0 || strings.Contains(string(files[1].Data), "100.64.0.0/24") {
		t.Errorf("one range less in a fed set: %d files, script %q", len(files), files[0].Data)
	}
	m := box(t, nil, opts)
	install, err := Backend{}.Change(nil, small, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Feed(install); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(install[0].Data, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Owned(), "external-list tw-feed-provider ip url https://feeds.example.com/tw/panos-feed-tw-feed-provider.txt") {
		t.Errorf("owned:\n%s", m.Owned())
	}

	for _, bad := range []map[string]string{
		{"feed-above": "10", "feed-url": "http://feeds.example.com/x"},
		{"feed-above": "10"},
		{"feed-sets": "provider", "feed-url": "https://feeds.example.com/x?y=1"},
		{"feed-sets": "provider", "feed-url": "https://feeds.example.com/x y"},
		{"feed-above": "-1"},
		{"feed-sets": "provider", "feed-url": "https://h/x", "feed-refresh": "weekly"},
	} {
		_, err := (Backend{}).Emit(smallProgram(), backends.Options{Params: bad})
		if err == nil || !strings.Contains(err.Error(), "panos.feed") {
			t.Errorf("params %v: %v", bad, err)
		}
	}
	// http is refused with the policy's position (a constraint).
	cs := Backend{}.Check(smallProgram(), backends.Options{Params: map[string]string{"feed-above": "1", "feed-url": "http://x/y"}})
	if len(cs) == 0 || cs[0].At.File != "policy.hcl" || !strings.Contains(cs[0].Detail, "https") {
		t.Errorf("http feed URL: %+v", cs)
	}
	// A set with domain names cannot be a feed.
	if _, err := (Backend{}).Emit(smallProgram(), backends.Options{Params: map[string]string{"feed-sets": "provider", "feed-url": "https://h/x"}}); err == nil || !strings.Contains(err.Error(), "domain names") {
		t.Errorf("feed of a set with FQDNs: %v", err)
	}
}
