package relay

import (
	"crypto/tls"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnwall/turnwall/relay/peerfilter"
)

// Metric names, all prefixed turnwall_relay_.
const metricPrefix = "turnwall_relay_"

// metrics holds the relay's Prometheus metrics. Per-packet counters live in
// each allocation (plain atomics, no locks or label lookups on the data path)
// and are summed when Prometheus scrapes.
type metrics struct {
	allocations      prometheus.Gauge
	allocationsTotal prometheus.Counter
	permissions      prometheus.Gauge
	channels         prometheus.Gauge
	tcpConnections   prometheus.Gauge
	authFailures     *prometheus.CounterVec
	authChallenges   prometheus.Counter
	authThrottled    *prometheus.CounterVec
	deniedPeers      *prometheus.CounterVec
	quotaRejections  *prometheus.CounterVec
	refused          *prometheus.CounterVec
	redirects        *prometheus.CounterVec
	draining         prometheus.Collector
	// Set from the configuration (setup): the TLS certificate's expiry,
	// registered only when the relay serves TLS, and the total allocation
	// quota, for capacity dashboards and alerts.
	certExpiry prometheus.Gauge
	quotaTotal prometheus.Gauge

	mu     sync.Mutex
	live   map[*trafficStats]struct{}
	closed trafficTotals

	// Datagrams shed by the data plane (its loops add their own counts
	// once per batch): waited too long in a receive queue, or refused by a
	// full send buffer.
	shedDelay, shedFull atomic.Uint64
}

// trafficStats counts one allocation's relayed traffic.
type trafficStats struct {
	toPeerBytes, toPeerPackets     atomic.Uint64
	fromPeerBytes, fromPeerPackets atomic.Uint64
	dropped                        atomic.Uint64 // over the bandwidth cap
}

type trafficTotals struct {
	toPeerBytes, toPeerPackets, fromPeerBytes, fromPeerPackets, dropped uint64
}

func (t *trafficTotals) add(s *trafficStats) {
	t.toPeerBytes += s.toPeerBytes.Load()
	t.toPeerPackets += s.toPeerPackets.Load()
	t.fromPeerBytes += s.fromPeerBytes.Load()
	t.fromPeerPackets += s.fromPeerPackets.Load()
	t.dropped += s.dropped.Load()
}

func newMetrics() *metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + name, Help: help})
	}
	m := &metrics{
		allocations:      g("allocations", "Current allocations."),
		allocationsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "allocations_created_total", Help: "Allocations created."}),
		permissions:      g("permissions", "Current permissions (peer addresses allowed on an allocation)."),
		channels:         g("channels", "Current channel bindings."),
		tcpConnections:   g("tcp_connections", "Current TCP and TLS client connections."),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "auth_failures_total",
			Help: "Requests with credentials that failed authentication, by reason."}, []string{"reason"}),
		authChallenges: prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "auth_challenges_total",
			Help: "Requests without credentials, answered 401 with a nonce (every client's first Allocate)."}),
		authThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "auth_throttled_total",
			Help: "Requests with credentials refused unverified after too many failed authentications, by reason (source or user)."}, []string{"reason"}),
		deniedPeers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "denied_peers_total",
			Help: "Peer addresses refused on CreatePermission, ChannelBind or Connect, by reason."}, []string{"reason"}),
		quotaRejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "quota_rejections_total",
			Help: "Allocations refused with 486, by quota (user, total, draining, or fleet: the external quota)."}, []string{"quota"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "refused_requests_total",
			Help: "Authenticated requests refused before reaching the TURN engine, by error code."}, []string{"code"}),
		redirects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "redirects_total",
			Help: "Allocates answered 300 Try Alternate, by reason (draining or capacity)."}, []string{"reason"}),
		quotaTotal: g("allocation_quota", "Most concurrent allocations in total (the total quota); 0 is unlimited."),
		live:       map[*trafficStats]struct{}{},
	}
	m.initLabels()
	return m
}

var (
	descBytes   = prometheus.NewDesc(metricPrefix+"relayed_bytes_total", "Payload bytes relayed, by direction (to_peer, from_peer).", []string{"direction"}, nil)
	descPackets = prometheus.NewDesc(metricPrefix+"relayed_packets_total", "Packets (UDP) or reads (TCP) relayed, by direction.", []string{"direction"}, nil)
	descDropped = prometheus.NewDesc(metricPrefix+"dropped_packets_total", "Relayed packets dropped over the per-allocation bandwidth cap.", nil, nil)
	descShed    = prometheus.NewDesc(metricPrefix+"shed_packets_total",
		"UDP datagrams the relay dropped to stay on time: queue_delay (waited in a receive queue longer than the bound), send_buffer_full (a socket's send buffer was full; never waited for).",
		[]string{"reason"}, nil)
)

// initLabels makes the usual label values exist at zero, so that dashboards
// and alerts see a series before the first event.
func (m *metrics) initLabels() {
	for _, r := range []AuthFailure{AuthMalformed, AuthWrongRealm, AuthUnknownUser, AuthNoSecret, AuthExpired, AuthBadPassword} {
		m.authFailures.WithLabelValues(string(r))
	}
	for _, r := range []string{throttleSource, throttleUser} {
		m.authThrottled.WithLabelValues(r)
	}
	for _, r := range []string{"draining", "capacity"} {
		m.redirects.WithLabelValues(r)
	}
	for _, q := range []string{"user", "total", "draining", "fleet"} {
		m.quotaRejections.WithLabelValues(q)
	}
	for _, r := range []peerfilter.Reason{peerfilter.NotAPeer, peerfilter.Loopback, peerfilter.ThisNetwork, peerfilter.Unspecified,
		peerfilter.LinkLocal, peerfilter.Metadata, peerfilter.Private, peerfilter.CGNAT, peerfilter.ULA, peerfilter.Multicast,
		peerfilter.Reserved, peerfilter.NAT64, peerfilter.RelayAddress, OutOfBound} {
		m.deniedPeers.WithLabelValues(string(r))
	}
}

// drainingFunc makes the draining gauge read draining.
func (m *metrics) drainingFunc(draining func() bool) {
	m.draining = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricPrefix + "draining",
		Help: "1 while the relay drains (new allocations redirected or refused), else 0."}, func() float64 {
		if draining() {
			return 1
		}
		return 0
	})
}

// setup records what the configuration fixes: the total allocation quota
// and, when the relay serves TLS, its certificate's expiry.
func (m *metrics) setup(limits Limits, tlsConfig *tls.Config) {
	m.quotaTotal.Set(float64(limits.TotalQuota))
	if tlsConfig == nil || len(tlsConfig.Certificates) == 0 || tlsConfig.Certificates[0].Leaf == nil {
		return
	}
	m.certExpiry = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "tls_certificate_expiry_timestamp_seconds",
		Help: "When the TURN/TLS certificate the relay serves expires, in seconds since the Unix epoch."})
	m.certExpiry.Set(float64(tlsConfig.Certificates[0].Leaf.NotAfter.Unix()))
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := []prometheus.Collector{m.allocations, m.allocationsTotal, m.permissions, m.channels, m.tcpConnections,
		m.authFailures, m.authChallenges, m.authThrottled, m.deniedPeers, m.quotaRejections, m.refused, m.redirects, m.quotaTotal, (*trafficCollector)(m)}
	if m.draining != nil {
		cs = append(cs, m.draining)
	}
	if m.certExpiry != nil {
		cs = append(cs, m.certExpiry)
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) track(s *trafficStats) {
	m.mu.Lock()
	m.live[s] = struct{}{}
	m.mu.Unlock()
}

func (m *metrics) untrack(s *trafficStats) {
	m.mu.Lock()
	if _, ok := m.live[s]; ok {
		delete(m.live, s)
		m.closed.add(s)
	}
	m.mu.Unlock()
}

// traffic sums every allocation's counters, closed ones included.
func (m *metrics) traffic() trafficTotals {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.closed
	for s := range m.live {
		t.add(s)
	}
	return t
}

type trafficCollector metrics

func (c *trafficCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBytes
	ch <- descPackets
	ch <- descDropped
	ch <- descShed
}

func (c *trafficCollector) Collect(ch chan<- prometheus.Metric) {
	t := (*metrics)(c).traffic()
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.toPeerBytes), "to_peer")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.fromPeerBytes), "from_peer")
	ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(t.toPeerPackets), "to_peer")
	ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(t.fromPeerPackets), "from_peer")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(t.dropped))
	ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(c.shedDelay.Load()), "queue_delay")
	ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(c.shedFull.Load()), "send_buffer_full")
}
