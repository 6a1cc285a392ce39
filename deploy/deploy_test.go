// Package deploy holds the relay's Grafana dashboard and Prometheus alerting
// rules; its tests prove them against promtool and the relay's own metrics.
package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
)

const (
	rulesFile     = "prometheus/turnwall-relay-rules.yml"
	rulesTestFile = "prometheus/turnwall-relay-rules.test.yml"
	configFile    = "prometheus/prometheus.yml"
	dashboardFile = "grafana/turnwall-relay.json"
)

// relayMetrics starts a relay on loopback with a TLS listener and a known
// certificate, and returns the metric names its registry gathers and the
// certificate.
func relayMetrics(t *testing.T) (map[string]float64, *x509.Certificate) {
	return relayMetricsTLS(t, true)
}

func relayMetricsTLS(t *testing.T, withTLS bool) (map[string]float64, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(40 * 24 * time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "turn.test"}, DNSNames: []string{"turn.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	lo := netip.MustParseAddr("127.0.0.1")
	listeners := []relay.Listener{
		{Transport: relay.UDP, Addr: netip.AddrPortFrom(lo, 0)},
		{Transport: relay.TCP, Addr: netip.AddrPortFrom(lo, 0)},
	}
	if withTLS {
		listeners = append(listeners, relay.Listener{Transport: relay.TLS, Addr: netip.AddrPortFrom(lo, 0)})
	}
	reg := &recordingRegistry{Registry: prometheus.NewRegistry()}
	s, err := relay.New(relay.Config{
		Name: "metrics", Realm: "test", FQDN: "turn.test", LabOnly: true,
		Listeners:   listeners,
		RelayIPs:    []netip.Addr{lo},
		RelayPorts:  ir.PortRange{First: 65000, Last: 65100},
		Certificate: &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		Auth:        relay.NewAuth("test", nil, []string{"secret-0123456789"}),
		Limits:      relay.Limits{UserQuota: 10, TotalQuota: 321, MaxLifetime: time.Hour},
		UDPSockets:  1,
		Registerer:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// Every registered metric, with or without a series yet (a vector with
	// no label values is gathered as nothing).
	names := map[string]float64{}
	for _, n := range reg.names {
		names[n] = 0
	}
	for _, f := range families {
		v := 0.0
		if m := f.GetMetric(); len(m) > 0 && m[0].GetGauge() != nil {
			v = m[0].GetGauge().GetValue()
		}
		names[f.GetName()] = v
	}
	return names, leaf
}

// recordingRegistry keeps the name of every metric registered with it.
type recordingRegistry struct {
	*prometheus.Registry
	names []string
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recordingRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return r.Registry.Register(c)
}

// TestRelayExportsCertificateExpiry: the relay sets the expiry gauge from
// the certificate it loads, and its quota gauge from its limits.
func TestRelayExportsCertificateExpiry(t *testing.T) {
	names, cert := relayMetrics(t)
	got, ok := names["turnwall_relay_tls_certificate_expiry_timestamp_seconds"]
	if !ok || got != float64(cert.NotAfter.Unix()) {
		t.Fatalf("expiry gauge = %v (present %v), want %d", got, ok, cert.NotAfter.Unix())
	}
	if q := names["turnwall_relay_allocation_quota"]; q != 321 {
		t.Fatalf("allocation quota gauge = %v, want 321", q)
	}
	// Without TLS there is no certificate, and no series that an expiry
	// alert would read as "expired in 1970".
	names, _ = relayMetricsTLS(t, false)
	if _, ok := names["turnwall_relay_tls_certificate_expiry_timestamp_seconds"]; ok {
		t.Fatal("a relay without TLS exports a certificate expiry")
	}
}

var metricName = regexp.MustCompile(`\bturnwall_[a-z0-9_]+`)

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets and template variable queries.
func dashboardExprs(t *testing.T) (exprs []string, titles []string) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*), *[a-z_]+\)$`)
	for _, v := range d.Templating.List {
		if v.Definition == "" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(SELECTOR, LABEL)", v.Name, v.Definition)
			continue
		}
		exprs = append(exprs, m[1])
	}
	return exprs, titles
}

// TestMetricNamesExist: every turnwall metric the dashboard and the alerting
// rules use is one the relay's registry gathers, and the dashboard shows
// what operators need.
func TestMetricNamesExist(t *testing.T) {
	names, _ := relayMetrics(t)
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	exprs, titles := dashboardExprs(t)
	used := map[string][]string{}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		used[n] = append(used[n], rulesFile)
	}
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			used[n] = append(used[n], dashboardFile)
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metric names found in the dashboard and rules", len(used))
	}
	var missing []string
	for n, where := range used {
		if _, ok := names[n]; !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", n, strings.Join(slices.Compact(where), ", ")))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		var have []string
		for n := range names {
			have = append(have, n)
		}
		sort.Strings(have)
		t.Errorf("metrics the relay does not export: %s\nthe relay exports: %s", strings.Join(missing, "; "), strings.Join(have, ", "))
	}
	// The dashboard covers allocations, traffic by direction, auth failures,
	// denied peers by reason, quota refusals, capacity and the certificate.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"turnwall_relay_allocations{", "turnwall_relay_relayed_bytes_total", "sum by (direction)",
		"turnwall_relay_auth_failures_total", "sum by (reason) (rate(turnwall_relay_denied_peers_total", "turnwall_relay_quota_rejections_total",
		"turnwall_relay_allocation_quota", "turnwall_relay_tls_certificate_expiry_timestamp_seconds"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard has no query with %s", want)
		}
	}
	// Every alert the issue asks for exists.
	for _, alert := range []string{"TurnwallRelayDown", "TurnwallRelayAuthFailureBurst", "TurnwallRelayDeniedPeerBurst",
		"TurnwallRelayNearCapacity", "TurnwallRelayCertificateExpiresSoon"} {
		if !bytes.Contains(rules, []byte("alert: "+alert+"\n")) {
			t.Errorf("no alert %s in %s", alert, rulesFile)
		}
	}
	t.Logf("%d panels, %d metric names checked", len(titles), len(used))
}

// promtool runs Debian's promtool; missing, it skips, and fails in CI.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool missing in CI (make deps installs Debian's prometheus): %v", err)
		}
		t.Skipf("promtool missing (make deps installs Debian's prometheus): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "promtool", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := promtool(t, "check", "rules", rulesFile)
	if !strings.Contains(out, "SUCCESS: 7 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	promtool(t, "check", "config", configFile)
}

// TestPromtoolTestRules runs the alerting rules' unit tests: each alert
// fires for its case and stays quiet for the near misses.
func TestPromtoolTestRules(t *testing.T) {
	out := promtool(t, "test", "rules", rulesTestFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// TestDashboardQueriesParse: Prometheus's own parser (promtool check rules
// on a recording rule per query, Grafana's variables replaced) accepts every
// dashboard query.
func TestDashboardQueriesParse(t *testing.T) {
	exprs, _ := dashboardExprs(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(vars.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, "check", "rules", path)
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(exprs)); !strings.Contains(out, want) {
		t.Errorf("promtool check rules on the dashboard's queries:\n%s", out)
	}
}
