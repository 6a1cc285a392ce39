//go:build linux

package relay

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// shedLab starts a relay with the data plane and a queue delay bound, and a
// client with an allocation and a channel (0x4000) to a UDP echo peer that
// answered three exchanges.
func shedLab(t *testing.T, bound time.Duration) (*testServer, *turnclient.Client, netip.AddrPort) {
	t.Helper()
	l := newLab(t)
	ts := l.start(t, func(c *Config) { c.Limits.MaxQueueDelay = bound })
	if ts.dp == nil {
		t.Fatal("no data plane")
	}
	echo := l.udpEcho(t, labPeer4)
	if bound > 0 {
		waitStamps(t)
	}
	c := l.client(t, netip.AddrPortFrom(labRelay4, 3478), UDP, time.Hour)
	if _, _, err := c.Allocate(ctx(t), turnclient.AllocateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.ChannelBind(ctx(t), 0x4000, echo); err != nil {
		t.Fatal(err)
	}
	if err := exchange(t, c, echo, 0x4000, 3); err != nil {
		t.Fatal(err)
	}
	return ts, c, echo
}

// TestShedQueueDelay: one stall of the data plane sheds nothing (its
// datagrams arrive late); under overload (the workers shedding), a peer's
// datagrams that waited in the relayed socket's queue longer than
// MaxQueueDelay are dropped, never relayed late, and counted; fresh ones go
// on.
func TestShedQueueDelay(t *testing.T) {
	ts, c, echo := shedLab(t, 20*time.Millisecond)
	stall := func(overloaded bool) {
		// Hold every worker: the echoes queue in the relayed socket.
		for _, w := range ts.dp.workers {
			w.mu.Lock()
			if overloaded { // as after a second of backlog
				w.shed.dropping, w.shed.lastAbove = true, time.Now().UnixNano()
			}
		}
	}
	stall(false)
	for i := range 3 {
		if err := c.SendChannel(0x4000, fmt.Appendf(nil, "stalled %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond)
	for _, w := range ts.dp.workers {
		w.mu.Unlock()
	}
	for i := range 3 {
		d, err := c.ReadData(time.Now().Add(2 * time.Second))
		if err != nil || string(d.Payload) != fmt.Sprintf("stalled %d", i) {
			t.Fatalf("after one stall: %q, %v", d.Payload, err)
		}
	}
	shed0 := ts.metric(t, "turnwall_relay_shed_packets_total", "reason", "queue_delay")
	if shed0 != 0 {
		t.Errorf("one stall shed %v datagrams", shed0)
	}

	stall(true)
	const late = 5
	for i := range late {
		if err := c.SendChannel(0x4000, fmt.Appendf(nil, "late %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // well past the bound
	for _, w := range ts.dp.workers {
		w.mu.Unlock()
	}
	if d, err := c.ReadData(time.Now().Add(300 * time.Millisecond)); err == nil {
		t.Fatalf("a datagram older than the bound was relayed: %q", d.Payload)
	}
	if got := ts.metric(t, "turnwall_relay_shed_packets_total", "reason", "queue_delay") - shed0; got != late {
		t.Errorf("shed_packets_total{queue_delay} grew by %v, want %d", got, late)
	}
	// Fresh datagrams are relayed as before.
	if err := exchange(t, c, echo, 0x4000, 3); err != nil {
		t.Fatal(err)
	}
}

// TestShedOff: with MaxQueueDelay NoQueueDelayBound the relay drops nothing
// that waited, however long and however overloaded: the datagrams held in
// the relayed socket's queue are all relayed, late, and none is counted.
func TestShedOff(t *testing.T) {
	ts, c, _ := shedLab(t, NoQueueDelayBound)
	for _, w := range ts.dp.workers {
		w.mu.Lock()
		if w.shed.target != 0 {
			t.Errorf("a worker sheds after %v", time.Duration(w.shed.target))
		}
		w.shed.dropping, w.shed.lastAbove = true, time.Now().UnixNano() // as overloaded
	}
	const late = 5
	for i := range late {
		if err := c.SendChannel(0x4000, fmt.Appendf(nil, "late %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // far past the default bound
	for _, w := range ts.dp.workers {
		w.mu.Unlock()
	}
	for i := range late {
		d, err := c.ReadData(time.Now().Add(2 * time.Second))
		if err != nil || string(d.Payload) != fmt.Sprintf("late %d", i) {
			t.Fatalf("late datagram %d: %q, %v", i, d.Payload, err)
		}
	}
	if got := ts.metric(t, "turnwall_relay_shed_packets_total", "reason", "queue_delay"); got != 0 {
		t.Errorf("shed_packets_total{queue_delay} = %v with shedding off", got)
	}
	bad := ts.cfg
	bad.Limits.MaxQueueDelay = -2 * time.Millisecond
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("a negative bound other than NoQueueDelayBound: %v", err)
	}
}

// TestBatchReaderSheds: the listener's batch reader, overloaded, drops
// ChannelData that waited longer than the bound in the socket's queue and
// counts it, and still hands out STUN messages however old.
func TestBatchReaderSheds(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	m := newMetrics()
	b := newBatchReader(pc, 2048)
	b.shedAfter(20*time.Millisecond, m)
	if b.shed.target == 0 {
		t.Fatal("socket not stamped")
	}
	b.shed.dropping, b.shed.lastAbove = true, time.Now().UnixNano() // overloaded
	waitStamps(t)
	from, err := net.Dial("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	channelData := func(s string) []byte {
		p := binary.BigEndian.AppendUint16(nil, 0x4000)
		return append(binary.BigEndian.AppendUint16(p, uint16(len(s))), s...)
	}
	stunLike := make([]byte, 20) // first two bits 0: not ChannelData
	stunLike[1] = 1
	for _, p := range [][]byte{channelData("old 1"), stunLike, channelData("old 2")} {
		if _, err := from.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := from.Write(channelData("fresh")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []string
	for range 2 {
		p, _, err := b.next()
		if err != nil {
			t.Fatal(err)
		}
		if p[0]&0xc0 == 0x40 {
			got = append(got, string(p[4:]))
		} else {
			got = append(got, "stun")
		}
	}
	if fmt.Sprint(got) != "[stun fresh]" {
		t.Errorf("handed out %q, want the STUN message and the fresh ChannelData", got)
	}
	if n := m.shedDelay.Load(); n != 2 {
		t.Errorf("shed %d, want 2", n)
	}
}

// TestSendBatchDropsOnFull: a batch the client socket's send buffer cannot
// take is dropped and counted (send_buffer_full), not waited for. The
// socket sends through a device whose queue drains at 8 kbit/s, so its
// small send buffer fills (a veth pair in a namespace; nothing listens).
func TestSendBatchDropsOnFull(t *testing.T) {
	needNamespaces(t, "tc")
	ns, err := netns.New("shed")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for _, args := range [][]string{{"link", "add", "slow0", "type", "veth", "peer", "name", "slow1"},
		{"link", "set", "slow0", "up"}, {"link", "set", "slow1", "up"}, {"addr", "add", "192.0.2.1/24", "dev", "slow0"},
		{"neigh", "add", "192.0.2.2", "lladdr", "02:00:00:00:00:02", "dev", "slow0", "nud", "permanent"}} {
		if err := ns.IP(args...); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := ns.Exec(ctx(t), "tc", "qdisc", "add", "dev", "slow0", "root", "tbf", "rate", "8kbit", "burst", "1600", "limit", "1000000"); err != nil {
		t.Fatalf("tc: %v: %s", err, out)
	}
	var pc net.PacketConn
	ns.Do(func() error { pc, err = net.ListenPacket("udp4", "192.0.2.1:0"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.(*net.UDPConn).SetWriteBuffer(8192)
	rc, err := pc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	reg := prometheus.NewRegistry()
	if err := m.register(reg); err != nil {
		t.Fatal(err)
	}
	w := &dpWorker{m: m}
	g := &socketGroup{raw: rc, local: netip.MustParseAddrPort("192.0.2.1:3478")}
	b := w.batchFor(g)
	to := netip.MustParseAddrPort("192.0.2.2:9")
	for !b.add(1000, to) {
	}
	start := time.Now()
	w.flush()
	if d := time.Since(start); d > time.Second {
		t.Errorf("flush took %s: it waited for the buffer", d)
	}
	ts := &testServer{reg: reg}
	full := ts.metric(t, "turnwall_relay_shed_packets_total", "reason", "send_buffer_full")
	if full < sendBatchSize/2 || full >= sendBatchSize {
		t.Errorf("send_buffer_full = %v of %d datagrams; want most, not all", full, sendBatchSize)
	}
	if b.n != 0 {
		t.Errorf("batch not emptied: %d", b.n)
	}
}

// waitStamps waits until the kernel stamps datagrams as it queues them.
// The first socket that asks for stamps turns them on for the whole host,
// asynchronously; until then a datagram is stamped when read.
func waitStamps(t testing.TB) {
	t.Helper()
	a, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	raw, err := takeSocket(a)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	if err := stampSocket(raw.fd); err != nil {
		t.Fatal(err)
	}
	b, err := net.Dial("udp4", a.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buf := make([]byte, 64)
	var m recvBatch
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		b.Write([]byte("stamp"))
		time.Sleep(5 * time.Millisecond)
		m.iovs[0].Base = &buf[0]
		m.iovs[0].SetLen(len(buf))
		for i := 1; i < drainSize; i++ {
			m.iovs[i] = m.iovs[0]
		}
		n, err := raw.recvBatch(&m)
		if err == nil && n == 1 && time.Now().UnixNano()-stampOf(&m.cmsgs[0], int(m.hdrs[0].hdr.Controllen)) >= int64(4*time.Millisecond) {
			return
		}
	}
	t.Fatal("the kernel does not stamp queued datagrams")
}

// TestShedder: a reader sheds only once datagrams have waited over the
// target for a whole interval, then exactly those over it, and stops once
// none has for an interval.
func TestShedder(t *testing.T) {
	const ms = int64(time.Millisecond)
	s := newShedder(20 * time.Millisecond) // interval 100 ms
	var now int64 = 1000 * ms
	step := func(delay int64, want bool) {
		t.Helper()
		if got := s.late(now, now-delay); got != want {
			t.Fatalf("at %d ms, delay %d ms: shed %v, want %v", now/ms, delay/ms, got, want)
		}
	}
	step(5*ms, false)
	now += 10 * ms
	step(150*ms, false) // one stall: late, relayed
	now += 10 * ms
	step(2*ms, false) // drained
	for range 10 {    // a standing queue: shed after 100 ms of it
		now += 10 * ms
		step(30*ms, false)
	}
	now += 10 * ms
	step(30*ms, true)
	step(5*ms, false) // while shedding, fresh datagrams go on
	now += 50 * ms
	step(25*ms, true)
	now += 99 * ms
	step(5*ms, false)
	step(21*ms, true) // still shedding: the last late one was 99 ms ago
	now += 100 * ms
	step(5*ms, false) // none late for 100 ms: shedding stops
	step(21*ms, false)
	if s.late(now, 0) {
		t.Fatal("an unstamped datagram was shed")
	}
}
