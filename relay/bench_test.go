package relay

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/coturn"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// TestMain lets the test binary double as the relay under benchmark: with
// TURNWALL_BENCH_RELAY set it runs the lab relay until SIGTERM, in its own
// process, so that its CPU time can be measured like coturn's.
func TestMain(m *testing.M) {
	if os.Getenv("TURNWALL_BENCH_RELAY") != "" {
		os.Exit(benchRelayMain())
	}
	os.Exit(m.Run())
}

func benchRelayMain() int {
	res := compiler.Compile(labPolicy, compiler.Options{})
	if res.HasErrors() {
		fmt.Fprintln(os.Stderr, res.Diags)
		return 1
	}
	cfg, err := FromIR(res.Program, "lab", labPolicy)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.Auth = NewAuth(cfg.Realm, nil, []string{testSecret})
	cfg.Limits = Limits{TotalQuota: 10000, MaxLifetime: time.Hour, MaxBPS: DefaultMaxBPS}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.NoDataplane = os.Getenv("TURNWALL_BENCH_RELAY") == "goroutines"
	if v := os.Getenv("TURNWALL_BENCH_QUEUE_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "TURNWALL_BENCH_QUEUE_DELAY=%q: give a duration (0: no shedding)\n", v)
			return 2
		}
		if cfg.Limits.MaxQueueDelay = d; d == 0 {
			cfg.Limits.MaxQueueDelay = NoQueueDelayBound
		}
	}
	s, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if path := os.Getenv("TURNWALL_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	<-sigs
	s.Close()
	return 0
}

// Opus-like streams: 160-byte packets, 50 a second, each echoed by the peer.
const (
	streamPacket   = 160
	streamInterval = 20 * time.Millisecond
	benchWarmup    = 2 * time.Second
	benchMeasure   = 8 * time.Second
	benchDrain     = time.Second
)

type benchResult struct {
	server            string
	round             int
	streams           int
	sent, received    uint64
	p50, p99          time.Duration
	relayCPU, loadCPU float64 // cores
	wall              float64 // seconds measured
}

// cpuPerEcho is the relay's CPU time per echoed packet (each crossed the
// relay twice), in µs: the cost of the traffic it actually relayed.
func (r benchResult) cpuPerEcho() float64 {
	if r.received == 0 {
		return 0
	}
	return r.relayCPU * r.wall * 1e6 / float64(r.received)
}

func (r benchResult) loss() float64 {
	if r.sent == 0 {
		return 100
	}
	return 100 * float64(r.sent-min(r.received, r.sent)) / float64(r.sent)
}

// cpuTime returns a process's user+system CPU time.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// rttHistogram counts round-trip times in 10 µs buckets up to 1 s.
type rttHistogram struct{ b [100001]atomic.Uint32 }

func (h *rttHistogram) add(d time.Duration) {
	i := int(d / (10 * time.Microsecond))
	if i < 0 {
		i = 0
	}
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	h.b[i].Add(1)
}

func (h *rttHistogram) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.b {
		total += uint64(h.b[i].Load())
	}
	want := uint64(q * float64(total))
	var n uint64
	for i := range h.b {
		n += uint64(h.b[i].Load())
		if n > want {
			return time.Duration(i) * 10 * time.Microsecond
		}
	}
	return 0
}

// benchServer starts a relay (turnwall or coturn) on the lab relay address
// in ns and returns its process id.
func benchServer(b *testing.B, ns *netns.NS, which string, streams int) int {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var cmd *exec.Cmd
	switch which {
	case "turnwall", "turnwall-goroutines", "turnwall-base", "turnwall-noshed":
		exe, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		if which == "turnwall-base" {
			// Another build of this test binary (an earlier commit's),
			// run the same way.
			if exe = os.Getenv("TURNWALL_BENCH_BASE"); exe == "" {
				b.Fatal("turnwall-base needs TURNWALL_BENCH_BASE=path of a relay test binary (go test -c ./relay/)")
			}
		}
		cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "TURNWALL_BENCH_RELAY=dataplane")
		if which == "turnwall-goroutines" {
			cmd.Env = append(os.Environ(), "TURNWALL_BENCH_RELAY=goroutines")
		}
		if which == "turnwall-noshed" {
			cmd.Env = append(cmd.Env, "TURNWALL_BENCH_QUEUE_DELAY=0")
		}
		if p := os.Getenv("TURNWALL_BENCH_CPUPROFILE"); p != "" {
			// One profile per relay and stream count: FILE.turnwall.1000.
			cmd.Env = append(cmd.Env, fmt.Sprintf("TURNWALL_BENCH_CPUPROFILE=%s.%s.%d", p, which, streams))
		}
	case "coturn":
		res := compiler.Compile(labPolicy, compiler.Options{})
		prog := *res.Program
		prog.Relays = append(prog.Relays[:0:0], prog.Relays...)
		prog.Relays[0].Listen.TLS = nil // the load is UDP
		files, err := coturn.Backend{}.Emit(&prog, backends.Options{Params: map[string]string{"total-quota": "10000", "user-quota": "0"}})
		if err != nil {
			b.Fatal(err)
		}
		conf := filepath.Join(b.TempDir(), "turnserver.conf")
		os.WriteFile(conf, files[0].Data, 0o600)
		cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, "turnserver", "-c", conf, "--static-auth-secret", testSecret,
			"--pidfile", filepath.Join(b.TempDir(), "pid"), "--no-stdout-log", "--log-file", "/dev/null")
	}
	if benchPin() {
		// The relay gets CPU 1, the load generator CPU 0 (see pinSelf).
		cmd.Args = append([]string{"taskset", "-c", "1"}, cmd.Args...)
		cmd.Path, _ = exec.LookPath("taskset")
	}
	out, _ := cmd.StdoutPipe()
	if which != "coturn" {
		cmd.Stderr = os.Stderr
	} // coturn complains about SCTP on stderr; its log is off

	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		b.Fatal(err)
	}
	go io.Copy(io.Discard, bufio.NewReader(out))
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	return cmd.Process.Pid
}

// benchEcho runs the peer: UDP echo on two SO_REUSEPORT sockets, reading and
// writing in batches (recvmmsg/sendmmsg) so that it costs little CPU.
func benchEcho(b *testing.B, ns *netns.NS) netip.AddrPort {
	var addr netip.AddrPort = netip.AddrPortFrom(labPeer4, 3480)
	var conns []net.PacketConn
	for range 2 {
		var pc net.PacketConn
		var err error
		ns.Do(func() error { pc, err = (StdNet{}).ListenPacket("udp4", addr, true); return nil })
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, pc)
		go func() {
			p := ipv4.NewPacketConn(pc)
			msgs := make([]ipv4.Message, 64)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{make([]byte, 1500)}
			}
			for {
				n, err := p.ReadBatch(msgs, 0)
				if err != nil {
					return
				}
				for i := range n {
					msgs[i].Buffers[0] = msgs[i].Buffers[0][:msgs[i].N]
				}
				p.WriteBatch(msgs[:n], 0)
				for i := range n {
					msgs[i].Buffers[0] = msgs[i].Buffers[0][:1500]
				}
			}
		}()
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return addr
}

// runStreams opens n allocations with a channel to the echo peer and sends
// Opus-like packets on each, then measures loss and round-trip times.
func runStreams(b *testing.B, ns *netns.NS, server netip.AddrPort, echo netip.AddrPort, n int, relayPID int) benchResult {
	type stream struct {
		conn net.Conn
		raw  *rawSock // the same socket, out of Go's poller (after setup)
		next time.Time
		seq  uint32
	}
	streams := make([]*stream, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var setupErr atomic.Value
	jobs := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				u, p := restCreds(testSecret, fmt.Sprintf("s%d", i), time.Hour)
				// A relay slow to answer while hundreds of streams start may
				// confuse one setup (a retransmitted Allocate answered 437):
				// such a stream gets one more try, from a new port.
				var err error
				for try := 0; try < 2; try++ {
					var c *turnclient.Client
					c, err = turnclient.Dial(turnclient.Config{Server: server, Username: u, Password: p,
						Dial: nsDialFrom(ns, labClient4), RTO: 500 * time.Millisecond, Timeout: 10 * time.Second})
					if err == nil {
						_, _, err = c.Allocate(ctx, turnclient.AllocateOptions{})
					}
					if err == nil {
						err = c.ChannelBind(ctx, 0x4000, echo)
					}
					if err == nil {
						streams[i] = &stream{conn: c.Conn()}
						break
					}
					if c != nil {
						c.Close()
					}
				}
				if err != nil {
					setupErr.Store(fmt.Errorf("stream %d: %w", i, err))
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err, _ := setupErr.Load().(error); err != nil {
		for _, s := range streams {
			if s != nil {
				s.conn.Close()
			}
		}
		b.Fatalf("setup of %d streams: %v", n, err)
	}

	var hist rttHistogram
	var received atomic.Uint64
	var measuring atomic.Bool
	// The load generator reads its sockets like the relay's data plane does
	// (level-triggered epoll, no goroutine per stream), so that it costs
	// less CPU than the relay it measures.
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	unix.SetNonblock(ep, true)
	epFile := os.NewFile(uintptr(ep), "epoll")
	defer epFile.Close()
	for i, s := range streams {
		raw, err := takeSocket(s.conn.(net.PacketConn))
		if err != nil {
			b.Fatal(err)
		}
		s.raw = raw
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, raw.fd, &ev); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, s := range streams {
			s.raw.close()
		}
	}()
	epRaw, _ := epFile.SyscallConn()
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			events := make([]unix.EpollEvent, 128)
			buf := make([]byte, 2048)
			epRaw.Read(func(fd uintptr) bool {
				for {
					k, err := unix.EpollWait(int(fd), events, 0)
					if err == unix.EINTR {
						continue
					}
					if err != nil {
						return true
					}
					if k == 0 {
						return false
					}
					for _, ev := range events[:k] {
						n, _, err := streams[ev.Fd].raw.recv(buf)
						if err != nil || n < 4+streamPacket || buf[0]&0xc0 != 0x40 || buf[4+16] != 1 {
							continue
						}
						sentAt := int64(binary.BigEndian.Uint64(buf[4+8:]))
						hist.add(time.Duration(time.Now().UnixNano() - sentAt))
						received.Add(1)
					}
				}
			})
		}()
	}
	defer readers.Wait()
	defer epFile.Close()
	start := time.Now()
	for i, s := range streams {
		s.next = start.Add(time.Duration(i) * streamInterval / time.Duration(n))
	}

	// Two senders, each pacing half the streams in phase order.
	var sent atomic.Uint64
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for part := range 2 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			var mine []*stream
			for i := part; i < n; i += 2 {
				mine = append(mine, streams[i])
			}
			pkt := make([]byte, 4+streamPacket)
			binary.BigEndian.PutUint16(pkt[0:], 0x4000)
			binary.BigEndian.PutUint16(pkt[2:], streamPacket)
			idx := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				now := time.Now()
				for mine[idx].next.Before(now) {
					s := mine[idx]
					s.seq++
					binary.BigEndian.PutUint32(pkt[4:], s.seq)
					binary.BigEndian.PutUint64(pkt[4+8:], uint64(time.Now().UnixNano()))
					pkt[4+16] = 0
					if measuring.Load() {
						pkt[4+16] = 1
						sent.Add(1)
					}
					s.raw.sendTo(pkt, server, false)
					s.next = s.next.Add(streamInterval)
					idx = (idx + 1) % len(mine)
				}
				time.Sleep(500 * time.Microsecond)
			}
		}()
	}
	time.Sleep(benchWarmup)
	relay0, self0, t0 := cpuTime(relayPID), cpuTime(os.Getpid()), time.Now()
	measuring.Store(true)
	time.Sleep(benchMeasure)
	measuring.Store(false)
	relay1, self1, t1 := cpuTime(relayPID), cpuTime(os.Getpid()), time.Now()
	close(stop)
	senders.Wait()
	time.Sleep(benchDrain)
	wall := t1.Sub(t0).Seconds()
	return benchResult{streams: n, sent: sent.Load(), received: received.Load(), p50: hist.quantile(0.5), p99: hist.quantile(0.99),
		relayCPU: (relay1 - relay0).Seconds() / wall, loadCPU: (self1 - self0).Seconds() / wall, wall: wall}
}

// BenchmarkStreams: concurrent Opus-like streams (160-byte packets, 50 a
// second, echoed by a peer) through turnwall's relay and through coturn, the
// same load generator, on loopback in a network namespace. It reports loss,
// round-trip time p50/p99 and the relay's CPU. Run it once:
//
//	go test -run '^$' -bench BenchmarkStreams -benchtime 1x ./relay/
//
// TURNWALL_BENCH_STREAMS overrides the stream counts (comma-separated);
// TURNWALL_BENCH_CPUPROFILE=FILE writes the relay's CPU profiles, one per
// relay and stream count (FILE.turnwall.1000);
// TURNWALL_BENCH_SERVERS=turnwall,coturn,turnwall-goroutines,turnwall-base,
// turnwall-noshed chooses the relays (turnwall-goroutines: without the epoll
// data plane; turnwall-base: the relay test binary TURNWALL_BENCH_BASE, built
// from another commit; turnwall-noshed: no shedding, as --max-queue-delay 0);
// TURNWALL_BENCH_QUEUE_DELAY=D gives turnwall relays that bound; TURNWALL_BENCH_ROUNDS=N repeats every measurement N
// times, the relays interleaved, and reports medians;
// TURNWALL_BENCH_PIN=1 gives the relay CPU 1 and the load generator CPU 0.
func BenchmarkStreams(b *testing.B) {
	err := netns.Available()
	if err == nil {
		_, err = exec.LookPath("turnserver")
	}
	if err != nil {
		b.Skipf("needs root, iproute2 and coturn: %v", err)
	}
	counts := []int{500, 1000, 1500, 2000}
	if v := os.Getenv("TURNWALL_BENCH_STREAMS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("TURNWALL_BENCH_STREAMS=%q", v)
			}
			counts = append(counts, n)
		}
	}
	rounds := 1
	if v := os.Getenv("TURNWALL_BENCH_ROUNDS"); v != "" {
		if r, err := strconv.Atoi(v); err == nil && r >= 1 && r <= 20 {
			rounds = r
		} else {
			b.Fatalf("TURNWALL_BENCH_ROUNDS=%q: give 1 to 20", v)
		}
	}
	if benchPin() {
		pinSelf(b)
	}
	servers := benchServers()
	var results []benchResult
	for round := range rounds {
		for _, n := range counts {
			for _, server := range servers {
				b.Run(fmt.Sprintf("%s/streams=%d", server, n), func(b *testing.B) {
					ns, err := netns.New("bench")
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { ns.Close() })
					for _, a := range []netip.Addr{labRelay4, labRelay6, labPeer4, labClient4} {
						if err := ns.Addr("lo", netip.PrefixFrom(a, a.BitLen()).String()); err != nil {
							b.Fatal(err)
						}
					}
					pid := benchServer(b, ns, server, n)
					srv := netip.AddrPortFrom(labRelay4, 3478)
					if err := waitRelay(ns, srv); err != nil {
						b.Fatalf("%s does not answer: %v", server, err)
					}
					echo := benchEcho(b, ns)
					var r benchResult
					for range b.N {
						r = runStreams(b, ns, srv, echo, n, pid)
					}
					r.server, r.round = server, round
					results = append(results, r)
					b.ReportMetric(r.loss(), "loss%")
					b.ReportMetric(float64(r.p50.Microseconds())/1000, "rtt-p50-ms")
					b.ReportMetric(float64(r.p99.Microseconds())/1000, "rtt-p99-ms")
					b.ReportMetric(r.relayCPU*100, "relay-cpu%")
					b.ReportMetric(r.relayCPU*1e6/float64(n), "relay-cpu-µs/s/stream")
					b.ReportMetric(r.loadCPU*100, "loadgen-cpu%")
					b.ReportMetric(r.cpuPerEcho(), "relay-cpu-µs/echo")
				})
			}
		}
	}
	fmt.Print(benchReport(results, counts, servers, rounds))
}

// benchReport tabulates the results (medians over rounds) and, for every
// relay but the first, its same-round ratios to the first: CPU per stream,
// and CPU per echoed packet (which loss does not flatter). Each ratio is
// the median of the rounds' own ratios.
func benchReport(results []benchResult, counts []int, servers []string, rounds int) string {
	type key struct {
		server  string
		streams int
	}
	by := map[key][]benchResult{}
	for _, r := range results {
		k := key{r.server, r.streams}
		by[k] = append(by[k], r)
	}
	median := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	pick := func(rs []benchResult, f func(benchResult) float64) float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return median(v)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| streams | relay | loss | RTT p50 | RTT p99 | relay CPU | CPU per stream | CPU per echoed packet | load generator CPU |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range counts {
		for _, s := range servers {
			rs := by[key{s, n}]
			if len(rs) == 0 {
				continue
			}
			fmt.Fprintf(&sb, "| %d | %s | %.3f%% | %.2f ms | %.2f ms | %.0f%% | %.0f µs/s | %.1f µs | %.0f%% |\n", n, s,
				pick(rs, benchResult.loss),
				pick(rs, func(r benchResult) float64 { return float64(r.p50.Microseconds()) / 1000 }),
				pick(rs, func(r benchResult) float64 { return float64(r.p99.Microseconds()) / 1000 }),
				pick(rs, func(r benchResult) float64 { return r.relayCPU * 100 }),
				pick(rs, func(r benchResult) float64 { return r.relayCPU * 1e6 / float64(n) }),
				pick(rs, benchResult.cpuPerEcho),
				pick(rs, func(r benchResult) float64 { return r.loadCPU * 100 }))
		}
	}
	if len(servers) > 1 {
		fmt.Fprintf(&sb, "\n| streams | relay | CPU per stream vs %s | CPU per echoed packet vs %s | rounds |\n|---|---|---|---|---|\n", servers[0], servers[0])
		for _, n := range counts {
			base := map[int]benchResult{}
			for _, r := range by[key{servers[0], n}] {
				base[r.round] = r
			}
			for _, s := range servers[1:] {
				var v, e []float64
				for _, r := range by[key{s, n}] {
					if b, ok := base[r.round]; ok && b.relayCPU > 0 && b.cpuPerEcho() > 0 {
						v = append(v, r.relayCPU/b.relayCPU)
						e = append(e, r.cpuPerEcho()/b.cpuPerEcho())
					}
				}
				if len(v) > 0 {
					fmt.Fprintf(&sb, "| %d | %s | %.2fx | %.2fx | %d |\n", n, s, median(v), median(e), len(v))
				}
			}
		}
	}
	fmt.Fprintf(&sb, "\n%d CPUs, pinned %v, %d round(s), %s, %s, load average at the end %s\n", runtime.NumCPU(), benchPin(), rounds,
		runtime.Version(), time.Now().UTC().Format(time.DateOnly), loadAverage())
	return sb.String()
}

// loadAverage is /proc/loadavg's first three fields (the machine may be
// shared).
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// waitRelay waits until the relay answers an Allocate.
func waitRelay(ns *netns.NS, srv netip.AddrPort) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, p := restCreds(testSecret, "probe", time.Hour)
		c, err := turnclient.Dial(turnclient.Config{Server: srv, Username: u, Password: p, Dial: nsDialFrom(ns, labClient4), Timeout: time.Second})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _, err = c.Allocate(ctx, turnclient.AllocateOptions{})
			if err == nil {
				c.Refresh(ctx, 0)
			}
			cancel()
			c.Close()
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchPin: TURNWALL_BENCH_PIN=1 gives the relay and the load generator one
// CPU each, so neither steals the other's.
func benchPin() bool { return os.Getenv("TURNWALL_BENCH_PIN") == "1" && runtime.NumCPU() >= 2 }

// pinSelf moves every thread of this process to CPU 0 (threads created later
// inherit it).
func pinSelf(b *testing.B) {
	var set unix.CPUSet
	set.Set(0)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			b.Fatal(err)
		}
	}
}

// benchServers: turnwall and coturn, or TURNWALL_BENCH_SERVERS.
func benchServers() []string {
	if v := os.Getenv("TURNWALL_BENCH_SERVERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"turnwall", "coturn"}
}
