package relay

import "github.com/turnwall/turnwall/relay/store"

// Advertise gives a fleet registry this relay's bound listeners (its TLS
// ones under domain, the name clients check) and its load, read from
// Health whenever the registry publishes.
func (s *Server) Advertise(r *store.Registry, domain string) {
	var ls []store.NodeListener
	for _, l := range s.Listeners() {
		nl := store.NodeListener{Transport: l.Transport, Addr: l.Addr}
		if l.Transport == TLS {
			nl.Domain = domain
		}
		ls = append(ls, nl)
	}
	r.SetListeners(ls)
	r.SetLoad(func() store.NodeLoad {
		h := s.Health()
		return store.NodeLoad{Allocations: h.Allocations, Threshold: h.Threshold, Draining: h.Draining || !h.Serving}
	})
}
