package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store"
)

// A relay pool (ServiceOptions.RelayPool, `turnwall verify --relay-pool
// 2`): the policy has no pool syntax yet, so the lab runs a relay whose
// block lists a second address of a family as two bundled relay nodes on
// the relay host, the first on the host's addresses, the second on the
// relay's other addresses (which the policy's rules cover, as they cover
// every address of the relay). The nodes share a Redis the lab starts on
// the loopback of the machine running verify (the nodes' store clients run
// there, not in the lab's namespaces); the TURN REST secret is in the store,
// not given to the nodes; each node registers itself, so a draining node
// redirects new allocations to the other (300 Try Alternate).

// poolNodeLease is a lab node's registration lease: a stopped node leaves
// the registry within it.
const poolNodeLease = 3 * time.Second

// PoolNode is one node of a relay pool.
type PoolNode struct {
	Relay     string // the policy's relay
	ID        string // its name in the node registry
	Listeners []relay.Listener

	srv      *relay.Server
	st       *store.Store
	registry *store.Registry
	cancel   context.CancelFunc
	done     sync.WaitGroup
	stopped  bool
}

// labRedis is a redis-server on 127.0.0.1 for the lab's relay pools.
type labRedis struct {
	cmd    *exec.Cmd
	dir    string
	url    string
	exited chan struct{}
}

func startLabRedis(ctx context.Context) (*labRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("a relay pool needs redis-server (apt-get install redis-server, or make deps)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pw, err := randomString(24)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "turnwall-lab-redis-")
	if err != nil {
		return nil, err
	}
	// The password goes in a configuration read from stdin, not in argv.
	cmd := exec.Command(bin, "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass %s\nsave \"\"\nappendonly no\nnotify-keyspace-events Kg$s\ndaemonize no\n", port, dir, pw))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	r := &labRedis{cmd: cmd, dir: dir, url: fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", pw, port), exited: make(chan struct{})}
	go func() { cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := redisPing(port, pw)
		if err == nil {
			return r, nil
		}
		select {
		case <-r.exited:
			r.stop()
			return nil, fmt.Errorf("redis-server exited: %s", strings.TrimSpace(out.String()))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("redis-server not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisPing authenticates and pings over a plain connection.
func redisPing(port int, pw string) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", pw); err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 64)
	for !strings.Contains(string(got), "PONG") {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("%v (read %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	return nil
}

func (r *labRedis) stop() error {
	if r == nil {
		return nil
	}
	pgid := r.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-r.exited
	}
	return os.RemoveAll(r.dir)
}

// poolAddrs returns, for each family the relay host has, another single
// address of the relay's address set: the second node's addresses.
func poolAddrs(p *ir.Program, r *ir.Relay, h *Host) []netip.Addr {
	set := p.AddressSet(r.Addresses)
	if set == nil {
		return nil
	}
	var out []netip.Addr
	for _, mine := range h.addrs() {
		for _, pf := range append(append([]netip.Prefix(nil), set.V4...), set.V6...) {
			a := pf.Addr()
			if pf.IsSingleIP() && a.Is4() == mine.Is4() && a != mine {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// nodeID names a pool node in the registry: letters, digits, '.', '-', '_'.
func nodeID(relayName string, i int) string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, relayName)
	if len(id) > 100 {
		id = id[:100]
	}
	return id + "-node" + strconv.Itoa(i+1)
}

// startPool runs relay r as two nodes on host h (see above). It returns the
// nodes' listeners, or none (and a note) when the relay lists no second
// address of a family the host has: the caller runs one node.
func (s *Services) startPool(ctx context.Context, r *ir.Relay, h *Host, cfg relay.Config, users []creds.User) ([]relay.Listener, error) {
	second := poolAddrs(s.lab.Prog, r, h)
	if len(second) == 0 {
		s.note("relay %q runs as one node: a pool needs a second address of the relay (its addresses list one per family)", r.Name)
		return nil, nil
	}
	if s.redis == nil {
		rd, err := startLabRedis(ctx)
		if err != nil {
			return nil, err
		}
		s.redis = rd
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	admin, err := store.Open(octx, s.redis.url, cfg.Realm, store.Options{})
	if err != nil {
		return nil, err
	}
	err = admin.PutSecret(octx, s.Secret)
	admin.Close()
	if err != nil {
		return nil, err
	}
	var all []relay.Listener
	var desc []string
	for i, ips := range [][]netip.Addr{h.addrs(), second} {
		if i > 0 {
			for _, a := range ips {
				on, err := s.place(h, a)
				if err != nil {
					return nil, fmt.Errorf("relay %q: address %s for its second node: %w", r.Name, a, err)
				}
				if on != h {
					return nil, fmt.Errorf("relay %q: address %s for its second node is the lab's host %s", r.Name, a, on.Name())
				}
			}
		}
		n, err := s.startPoolNode(octx, r, cfg, ips, users, nodeID(r.Name, i))
		if err != nil {
			return nil, fmt.Errorf("relay %q, node %d: %w", r.Name, i+1, err)
		}
		all = append(all, n.Listeners...)
		var as []string
		for _, a := range ips {
			as = append(as, a.String())
		}
		desc = append(desc, fmt.Sprintf("%s on %s", n.ID, strings.Join(as, ", ")))
	}
	s.note("relay %q runs as a pool of two bundled relay nodes (%s) sharing a Redis the lab runs; the TURN REST secret is in the store", r.Name, strings.Join(desc, "; "))
	return all, nil
}

func (s *Services) startPoolNode(ctx context.Context, r *ir.Relay, cfg relay.Config, ips []netip.Addr, users []creds.User, id string) (*PoolNode, error) {
	cfg.RelayIPs = ips
	cfg.Listeners = relay.Listen(ips, r.Listen)
	if len(r.Listen.TLS) > 0 {
		var names []string
		if r.FQDN != "" {
			names = []string{r.FQDN}
		}
		var err error
		if cfg.Certificate, err = s.ca.leaf(names, ips); err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
	}
	st, err := store.Open(ctx, s.redis.url, cfg.Realm, store.Options{Logger: s.log})
	if err != nil {
		return nil, err
	}
	auth := relay.NewAuth(cfg.Realm, nil, nil)
	feed := st.Feed(cfg.Peers, auth.Update)
	feed.SetFiles(nil, users)
	reg, err := st.Registry(store.RegistryOptions{ID: id, Lease: poolNodeLease, Logger: s.log})
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg.Auth = auth
	cfg.PeerBound = feed.PeerAllowed
	cfg.Alternates = reg
	cfg.Limits = labLimits
	cfg.UDPSockets = 1
	cfg.Logger = s.log
	srv, err := relay.New(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	n := &PoolNode{Relay: r.Name, ID: id, Listeners: srv.Listeners(), srv: srv, st: st, registry: reg}
	var ls []store.NodeListener
	for _, l := range n.Listeners {
		nl := store.NodeListener{Transport: l.Transport, Addr: l.Addr}
		if l.Transport == relay.TLS {
			nl.Domain = r.FQDN
		}
		ls = append(ls, nl)
	}
	reg.SetListeners(ls)
	reg.SetLoad(func() store.NodeLoad {
		h := srv.Health()
		return store.NodeLoad{Allocations: h.Allocations, Threshold: h.Threshold, Draining: h.Draining || !h.Serving}
	})
	rctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done.Add(2)
	go func() { defer n.done.Done(); feed.Run(rctx, 500*time.Millisecond) }()
	go func() { defer n.done.Done(); reg.Run(rctx) }()
	s.mu.Lock()
	s.poolNodes = append(s.poolNodes, n)
	s.markListening(n.Listeners)
	s.mu.Unlock()
	return n, nil
}

// stop stops the node; with kill, as if its host died: nothing more reaches
// the store (its registration stays until the lease ends).
func (n *PoolNode) stop(kill bool) error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	if kill {
		n.st.Close()
	}
	n.cancel()
	n.done.Wait()
	err := n.srv.Close()
	if !kill {
		n.st.Close()
	}
	return err
}

// PoolNodes returns the nodes of the relay pools.
func (s *Services) PoolNodes() []*PoolNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*PoolNode(nil), s.poolNodes...)
}

// KillPoolNode stops a pool node as if its host died: its clients lose
// their allocations, it stops answering, and it leaves the other nodes'
// registry within poolNodeLease.
func (s *Services) KillPoolNode(n *PoolNode) error { return n.stop(true) }

// DrainPoolNode drains a pool node: it redirects new allocations to the
// other node (300 Try Alternate).
func (s *Services) DrainPoolNode(n *PoolNode) { n.srv.Drain() }
