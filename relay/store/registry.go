package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeListener is one listener a relay node announces to the fleet.
type NodeListener struct {
	Transport string         `json:"transport"` // udp, tcp or tls
	Addr      netip.AddrPort `json:"addr"`
	Domain    string         `json:"domain,omitempty"` // for TLS: the name on the node's certificate
}

// NodeLoad is what a node says of its load.
type NodeLoad struct {
	Allocations int `json:"allocations"`
	// Threshold is the allocation count at which the node stops taking
	// new allocations (0: none known).
	Threshold int  `json:"threshold,omitempty"`
	Draining  bool `json:"draining,omitempty"`
}

// Node is one live relay of the fleet, as registered in Redis.
type Node struct {
	ID        string         `json:"id"`
	Listeners []NodeListener `json:"listeners"`
	Load      NodeLoad       `json:"load"`
}

// full reports whether the node takes no new allocations.
func (n Node) full() bool {
	return n.Load.Draining || n.Load.Threshold > 0 && n.Load.Allocations >= n.Load.Threshold
}

// share is the node's load for ordering: its share of its threshold, or
// its allocation count when it has none.
func (n Node) share() float64 {
	if n.Load.Threshold > 0 {
		return float64(n.Load.Allocations) / float64(n.Load.Threshold)
	}
	return float64(n.Load.Allocations)
}

// RegistryOptions configure a node registry.
type RegistryOptions struct {
	// ID names this node. Default: host name, process ID and a random
	// suffix. Letters, digits, '.', '-' and '_' only.
	ID string
	// Load reports this node's load when it is published. Default: zero.
	Load func() NodeLoad
	// Lease is how long a registration lives without being renewed: a
	// node that dies leaves the registry within Lease. Default 10 s; the
	// registration and the list of nodes are refreshed every Lease/3.
	Lease time.Duration
	// Timeout bounds one Redis round trip. Default 2 s.
	Timeout time.Duration
	Logger  *slog.Logger
}

// DefaultNodeLease is a registration's default lease.
const DefaultNodeLease = 10 * time.Second

// maxNodeRecord bounds the size of one registration read back.
const maxNodeRecord = 64 << 10

// Registry registers this relay in Redis, with its listeners and its load,
// under turnwall/{REALM}/nodes/ID with a lease, and keeps a list of the
// other live nodes. Its Pick chooses where to redirect a client (300 Try
// Alternate): the live node with the lowest load, other than this one, with
// a listener of the client's transport and address family. Pick answers
// from the list read last, so it costs no round trip.
type Registry struct {
	c     *redis.Client
	realm string
	o     RegistryOptions
	log   *slog.Logger

	mu        sync.Mutex
	listeners []NodeListener
	nodes     []Node // others, read at read
	read      time.Time
	bumps     map[string]int // redirects sent to a node since the last read
}

// Registry returns a node registry on a Redis store's server.
func (s *Store) Registry(o RegistryOptions) (*Registry, error) {
	if s.Client() == nil {
		return nil, fmt.Errorf("the node registry needs a Redis store; %s is %s", s.where, s.Kind())
	}
	if o.Logger == nil {
		o.Logger = s.log
	}
	return NewRegistry(s.Client(), s.realm, o)
}

// NewRegistry returns a node registry for realm on client c.
func NewRegistry(c *redis.Client, realm string, o RegistryOptions) (*Registry, error) {
	if c == nil {
		return nil, errors.New("the node registry needs a Redis store (redis://...)")
	}
	if err := CheckRealm(realm); err != nil {
		return nil, err
	}
	if o.Lease <= 0 {
		o.Lease = DefaultNodeLease
	}
	if o.Lease < 300*time.Millisecond {
		return nil, fmt.Errorf("node lease %v is too short; at least 300ms", o.Lease)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.ID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		o.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
		o.ID = strings.Map(func(r rune) rune {
			if validIDRune(r) {
				return r
			}
			return '_'
		}, o.ID)
	}
	if err := checkNodeID(o.ID); err != nil {
		return nil, err
	}
	if o.Load == nil {
		o.Load = func() NodeLoad { return NodeLoad{} }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{c: c, realm: realm, o: o, log: o.Logger, bumps: map[string]int{}}, nil
}

func validIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_'
}

func checkNodeID(id string) error {
	if id == "" || len(id) > 128 || strings.IndexFunc(id, func(r rune) bool { return !validIDRune(r) }) >= 0 {
		return fmt.Errorf("node ID %q: 1-128 letters, digits, '.', '-' or '_'", id)
	}
	return nil
}

// ID is this node's ID.
func (r *Registry) ID() string { return r.o.ID }

// Lease is the registration's lease.
func (r *Registry) Lease() time.Duration { return r.o.Lease }

func (r *Registry) prefix() string       { return "turnwall/{" + r.realm + "}/nodes/" }
func (r *Registry) key(id string) string { return r.prefix() + id }

// SetLoad sets the function that reports this node's load.
func (r *Registry) SetLoad(load func() NodeLoad) {
	r.mu.Lock()
	r.o.Load = load
	r.mu.Unlock()
}

// SetListeners sets the listeners this node announces (those it bound).
func (r *Registry) SetListeners(ls []NodeListener) {
	r.mu.Lock()
	r.listeners = append([]NodeListener(nil), ls...)
	r.mu.Unlock()
}

// Publish writes this node's registration with a fresh lease.
func (r *Registry) Publish(ctx context.Context) error {
	r.mu.Lock()
	n := Node{ID: r.o.ID, Listeners: append([]NodeListener(nil), r.listeners...), Load: r.o.Load()}
	r.mu.Unlock()
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	return r.c.Set(ctx, r.key(r.o.ID), b, r.o.Lease).Err()
}

// Leave removes this node's registration (a clean stop; a node that dies
// leaves when its lease ends).
func (r *Registry) Leave(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	return r.c.Del(ctx, r.key(r.o.ID)).Err()
}

// Nodes reads every live registration of the realm, this node's included,
// sorted by ID. Registrations that do not parse are left out.
func (r *Registry) Nodes(ctx context.Context) ([]Node, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	var keys []string
	iter := r.c.Scan(ctx, 0, r.prefix()+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) > 10000 {
			return nil, errors.New("node registry: more than 10000 registrations")
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	var out []Node
	for len(keys) > 0 {
		n := min(1000, len(keys))
		vals, err := r.c.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired between SCAN and MGET
			}
			id := strings.TrimPrefix(keys[i], r.prefix())
			node, err := parseNode(id, s)
			if err != nil {
				r.log.Debug("node registration not used", "key", keys[i], "error", err.Error())
				continue
			}
			out = append(out, node)
		}
		keys = keys[n:]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// parseNode reads and checks one registration: a key's ID must match its
// record, and every listener must be usable as an alternate.
func parseNode(id, s string) (Node, error) {
	var n Node
	if len(s) > maxNodeRecord {
		return n, fmt.Errorf("record of %d bytes", len(s))
	}
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return n, errors.New("not a node record")
	}
	if n.ID != id || checkNodeID(id) != nil {
		return n, errors.New("the record's ID is not the key's")
	}
	if n.Load.Allocations < 0 || n.Load.Threshold < 0 {
		return n, errors.New("negative load")
	}
	for _, l := range n.Listeners {
		switch {
		case l.Transport != "udp" && l.Transport != "tcp" && l.Transport != "tls":
			return n, fmt.Errorf("transport %q", l.Transport)
		case !l.Addr.IsValid() || l.Addr.Port() == 0 || l.Addr.Addr().IsUnspecified() || l.Addr.Addr().Zone() != "":
			return n, fmt.Errorf("listener address %q", l.Addr)
		case l.Domain != "" && !validDomain(l.Domain):
			return n, errors.New("listener domain is not a host name")
		}
	}
	return n, nil
}

// validDomain accepts host names only: the name ends up in a STUN
// attribute and in logs.
func validDomain(d string) bool {
	if len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Refresh publishes this node and reads the others once.
func (r *Registry) Refresh(ctx context.Context) error {
	perr := r.Publish(ctx)
	nodes, rerr := r.Nodes(ctx)
	if rerr == nil {
		r.setNodes(nodes)
	}
	return errors.Join(perr, rerr)
}

func (r *Registry) setNodes(nodes []Node) {
	others := nodes[:0:0]
	for _, n := range nodes {
		if n.ID != r.o.ID {
			others = append(others, n)
		}
	}
	r.mu.Lock()
	r.nodes, r.read, r.bumps = others, time.Now(), map[string]int{}
	r.mu.Unlock()
}

// Run publishes this node and reads the others every Lease/3 until ctx
// ends, then removes the registration.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.Lease / 3)
	defer t.Stop()
	failing := false
	for {
		err := r.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			r.log.Error("node registry: cannot reach Redis; other relays stop redirecting here when the lease ends",
				"node", r.o.ID, "error", err.Error())
		case err == nil && failing:
			failing = false
			r.log.Info("node registry: registered again", "node", r.o.ID)
		}
		select {
		case <-ctx.Done():
			r.Leave(context.Background())
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Pick chooses an alternate for a client of transport (udp, tcp or tls)
// that reached this node at self: the live node with the lowest load, not
// draining nor full, other than this one, with a listener of that transport
// in self's address family; a node listening on self's port comes before
// one that does not, and of a node's listeners the one on self's port is
// chosen. It answers from the list read last (Run); when
// that list is older than the lease it reads it again within ctx.
func (r *Registry) Pick(ctx context.Context, transport string, self netip.AddrPort) (netip.AddrPort, string, bool) {
	r.mu.Lock()
	stale := time.Since(r.read) > r.o.Lease
	r.mu.Unlock()
	if stale {
		nodes, err := r.Nodes(ctx)
		if err != nil {
			return netip.AddrPort{}, "", false
		}
		r.setNodes(nodes)
	}
	v4 := self.Addr().Unmap().Is4()
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *Node
	var bestL NodeListener
	var bestShare float64
	bestOtherPort := true
	for i := range r.nodes {
		n := r.nodes[i]
		n.Load.Allocations += r.bumps[n.ID]
		if n.full() {
			continue
		}
		// The node's listener of the transport and family, on the port the
		// client used when it has one: behind a firewall that opens only
		// that port (TURN/TLS on 443), another port would not be reached.
		var pick NodeListener
		found, otherPort := false, true
		for _, l := range n.Listeners {
			if l.Transport != transport || l.Addr == self || l.Addr.Addr().Unmap().Is4() != v4 {
				continue
			}
			if !found || (otherPort && l.Addr.Port() == self.Port()) {
				pick, found, otherPort = l, true, l.Addr.Port() != self.Port()
			}
		}
		if !found {
			continue
		}
		// Nodes on the client's port first, then the least loaded.
		s := n.share()
		if best == nil || (bestOtherPort && !otherPort) || (bestOtherPort == otherPort && s < bestShare) {
			best, bestL, bestShare, bestOtherPort = &r.nodes[i], pick, s, otherPort
		}
	}
	if best == nil {
		return netip.AddrPort{}, "", false
	}
	// Count the redirect until the node's next published load, so a burst
	// spreads over equally loaded nodes.
	r.bumps[best.ID]++
	return bestL.Addr, bestL.Domain, true
}
