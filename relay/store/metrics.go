package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricPrefix matches the relay's metrics.
const metricPrefix = "turnwall_relay_store_"

type metrics struct {
	up          prometheus.Gauge
	errors      prometheus.Counter
	writeErrors prometheus.Counter
	lastSuccess prometheus.Gauge
	entries     *prometheus.GaugeVec
	invalid     prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "up",
			Help: "1 when the last read of the credential store succeeded, 0 while it fails (the last good credentials stay in force)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "errors_total",
			Help: "Failed reads of the credential store."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "write_errors_total",
			Help: "Failed writes to the credential store."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "last_success_timestamp_seconds",
			Help: "Unix time of the last successful read of the credential store."}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "entries",
			Help: "Entries in force from the credential store, by kind (secrets, users, allowed_peers, denied_peers)."}, []string{"kind"}),
		invalid: prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "invalid_entries",
			Help: "Entries of the credential store left out as unusable (see the log)."}),
	}
}

func (m *metrics) success(now time.Time, st State) {
	m.up.Set(1)
	m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	m.entries.WithLabelValues("secrets").Set(float64(len(st.Secrets)))
	m.entries.WithLabelValues("users").Set(float64(len(st.Users)))
	m.entries.WithLabelValues("allowed_peers").Set(float64(len(st.AllowedPeers)))
	m.entries.WithLabelValues("denied_peers").Set(float64(len(st.DeniedPeers)))
	m.invalid.Set(float64(len(st.Invalid)))
}

func (m *metrics) failure() {
	m.up.Set(0)
	m.errors.Inc()
}

// Collectors returns the store's metrics, for a prometheus.Registerer:
// turnwall_relay_store_up, _errors_total, _write_errors_total,
// _last_success_timestamp_seconds, _entries{kind} and _invalid_entries.
func (s *Store) Collectors() []prometheus.Collector {
	m := s.m
	return []prometheus.Collector{m.up, m.errors, m.writeErrors, m.lastSuccess, m.entries, m.invalid}
}

// Register registers the store's metrics with reg.
func (s *Store) Register(reg prometheus.Registerer) error {
	for _, c := range s.Collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
