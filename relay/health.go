package relay

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"
)

// DefaultCapacityThreshold is the share of the total quota above which a
// relay reports not ready and redirects new allocations.
const DefaultCapacityThreshold = 0.9

// AlternateTimeout bounds one Alternates.Pick.
const AlternateTimeout = 500 * time.Millisecond

// Health is the relay's state, as load balancers see it on /readyz.
type Health struct {
	Serving     bool // not closed
	Ready       bool // serving, not draining, below the capacity threshold
	Draining    bool
	Allocations int // allocations held and being created
	// Threshold is the allocation count at which the relay stops being
	// ready (0: no total quota, no capacity threshold).
	Threshold int
}

// Reason says in words why the relay is not ready ("" when it is).
func (h Health) Reason() string {
	switch {
	case !h.Serving:
		return "stopped"
	case h.Draining:
		return "draining"
	case h.Threshold > 0 && h.Allocations >= h.Threshold:
		return fmt.Sprintf("at capacity: %d allocations, threshold %d", h.Allocations, h.Threshold)
	}
	return ""
}

// threshold is the allocation count of the capacity threshold, 0 for none.
func (s *Server) threshold() int {
	if s.cfg.Limits.TotalQuota <= 0 {
		return 0
	}
	n := int(math.Ceil(s.capacity * float64(s.cfg.Limits.TotalQuota)))
	return max(n, 1)
}

// Health reports whether the relay is serving, draining or above its
// capacity threshold.
func (s *Server) Health() Health {
	all, _ := s.quota.counts("")
	h := Health{Serving: !s.closed.Load(), Draining: s.draining.Load(), Allocations: all, Threshold: s.threshold()}
	h.Ready = h.Reason() == ""
	return h
}

// Draining reports whether the relay refuses or redirects new allocations.
func (s *Server) Draining() bool { return s.draining.Load() }

// Drain stops taking new allocations: Allocates are redirected to an
// alternate (300 Try Alternate) or refused (486), /readyz answers 503, and
// the existing allocations keep being served (Refresh, permissions,
// channels, data) until they end. Resume undoes it.
func (s *Server) Drain() {
	if !s.draining.Swap(true) {
		s.log.Info("draining: new allocations are redirected or refused", "allocations", s.AllocationCount())
	}
}

// Resume takes new allocations again after Drain (not after Shutdown or
// Close).
func (s *Server) Resume() {
	if s.stopping.Load() {
		return
	}
	if s.draining.Swap(false) {
		s.log.Info("draining ended: new allocations are taken again")
	}
}

// redirectReason says why a new allocation should go elsewhere: "draining",
// "capacity", or "".
func (s *Server) redirectReason() string {
	if s.draining.Load() {
		return "draining"
	}
	if t := s.threshold(); t > 0 {
		if all, _ := s.quota.counts(""); all >= t {
			return "capacity"
		}
	}
	return ""
}

// alternate picks where to redirect a client that reached the listener
// local over transport.
func (s *Server) alternate(transport string, local netip.AddrPort) (netip.AddrPort, string, bool) {
	if s.cfg.Alternates == nil {
		return netip.AddrPort{}, "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), AlternateTimeout)
	defer cancel()
	alt, domain, ok := s.cfg.Alternates.Pick(ctx, transport, local)
	if !ok || !alt.IsValid() || alt.Port() == 0 || alt.Addr().IsUnspecified() {
		return netip.AddrPort{}, "", false
	}
	alt = unmapAP(alt)
	if alt == local || alt.Addr().Is4() != local.Addr().Is4() { // no redirect to self, nor to a family the client cannot reach
		return netip.AddrPort{}, "", false
	}
	if transport != TLS || !validDomain(domain) {
		domain = ""
	}
	return alt, domain, true
}

// HealthHandler serves /healthz (200 while the relay serves) and /readyz
// (200 when ready; 503 while draining, above the capacity threshold, or
// stopped) for load balancers, with the state in one line of text.
func (s *Server) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/healthz":
			if !h.Serving {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "stopped")
				return
			}
			fmt.Fprintln(w, "ok")
		case "/readyz":
			if !h.Ready {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %s\n", h.Reason())
				return
			}
			fmt.Fprintf(w, "ready: %d allocations\n", h.Allocations)
		default:
			http.NotFound(w, r)
		}
	})
}

// logRedirect logs a 300 Try Alternate, rate-limited per source.
func (s *Server) logRedirect(c *client, why string, alt netip.AddrPort, user string) {
	s.limited(slog.LevelInfo, c.src, "allocation redirected", "reason", why, "client", addrString(c.src),
		"transport", c.transport, "user", user, "alternate", alt.String())
}
