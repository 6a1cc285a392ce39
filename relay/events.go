package relay

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// AllocationEvents is told of allocations, for a fleet's monitoring (the
// store's statsdb events, docs/store.md). IDs number the relay's
// allocations from 1. The methods run on the request path and must not
// block.
type AllocationEvents interface {
	AllocationCreated(user string, id uint64, lifetime time.Duration)
	AllocationRefreshed(user string, id uint64, lifetime time.Duration)
	AllocationDeleted(user string, id uint64)
}

// defaultLifetime is an allocation's lifetime when the request names none
// (RFC 8656 section 3.2).
const defaultLifetime = 10 * time.Minute

// allocEvents tracks what Config.Events needs: the lifetime each client
// asked for, and the ID and user of each allocation.
type allocEvents struct {
	mu        sync.Mutex
	seq       uint64
	lifetimes map[string]time.Duration // requested at Allocate, by client
	ids       map[string]allocRef      // by 5-tuple
}

type allocRef struct {
	id   uint64
	user string
}

// requestedLifetime is the lifetime a request asks for, capped.
func (s *Server) requestedLifetime(m *stun.Message) time.Duration {
	d := defaultLifetime
	if v, err := m.Get(stun.AttrLifetime); err == nil && len(v) == 4 {
		d = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	}
	return min(d, s.maxLifetime)
}

// noteRequest is called by the guard for an Allocate or Refresh it passes.
func (s *Server) noteRequest(method stun.Method, c *client, m *stun.Message) {
	if s.cfg.Events == nil {
		return
	}
	life := s.requestedLifetime(m)
	e := &s.allocEvents
	e.mu.Lock()
	if method == stun.MethodAllocate {
		if len(e.lifetimes) >= 1<<16 { // requests refused after the guard
			clear(e.lifetimes)
		}
		e.lifetimes[addrKey(c.src)] = life
		e.mu.Unlock()
		return
	}
	ref, ok := e.ids[tupleKey(c.src, c.local)]
	e.mu.Unlock()
	if ok && life > 0 {
		s.cfg.Events.AllocationRefreshed(ref.user, ref.id, life)
	}
}

func (s *Server) eventCreated(src, dst net.Addr, user string) {
	if s.cfg.Events == nil {
		return
	}
	e := &s.allocEvents
	e.mu.Lock()
	life, ok := e.lifetimes[addrKey(src)]
	delete(e.lifetimes, addrKey(src))
	if !ok {
		life = min(defaultLifetime, s.maxLifetime)
	}
	e.seq++
	ref := allocRef{id: e.seq, user: user}
	e.ids[tupleKey(src, dst)] = ref
	e.mu.Unlock()
	s.cfg.Events.AllocationCreated(user, ref.id, life)
}

func (s *Server) eventDeleted(src, dst net.Addr) {
	if s.cfg.Events == nil {
		return
	}
	e := &s.allocEvents
	e.mu.Lock()
	ref, ok := e.ids[tupleKey(src, dst)]
	delete(e.ids, tupleKey(src, dst))
	e.mu.Unlock()
	if ok {
		s.cfg.Events.AllocationDeleted(ref.user, ref.id)
	}
}
