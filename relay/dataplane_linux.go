package relay

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The data plane reads relayed UDP sockets with a few level-triggered epoll
// sets instead of one goroutine per allocation: a peer's datagram costs one
// recvfrom and, for a channel, one sendto, and one wake-up of a worker
// goroutine serves every socket ready at that moment. The epoll descriptors
// are themselves watched by Go's poller, so an idle worker holds no thread.
// Relayed sockets leave Go's poller for this (their descriptor is duplicated
// and the Go socket closed). What the fast path does not handle (peers
// without a channel, for Data indications) is handed to the TURN engine's
// reader over a Go channel.
type dataplane struct {
	workers []*dpWorker
	next    atomic.Uint32
	wg      sync.WaitGroup
}

type dpWorker struct {
	ep   int      // epoll descriptor
	file *os.File // the same, in Go's poller

	mu      sync.Mutex
	socks   map[uint64]*relayConn
	nextID  uint64
	stopped bool // the descriptors are closed

	// The worker's own state, touched by its loop alone.
	m         *metrics
	shed      shedder // of datagrams that waited too long in a socket's queue
	now       time.Time
	nowNS     int64
	own       [drainSize][]byte // datagrams that are not for a send batch
	recv      recvBatch         // recvmmsg state
	batches   []*sendBatch      // by listener group
	shedDelay uint64            // not yet published to m
	shedFull  uint64
}

func newDataplane(n int, maxDelay time.Duration, m *metrics) (*dataplane, error) {
	d := &dataplane{}
	for range n {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			d.close()
			return nil, err
		}
		if err := unix.SetNonblock(ep, true); err != nil {
			unix.Close(ep)
			d.close()
			return nil, err
		}
		w := &dpWorker{ep: ep, file: os.NewFile(uintptr(ep), "epoll"), socks: map[uint64]*relayConn{}, nextID: 1,
			m: m, shed: newShedder(maxDelay)}
		for i := range w.own {
			w.own[i] = make([]byte, 4+rtpMTU)
		}
		rc, err := w.file.SyscallConn()
		if err != nil {
			w.file.Close()
			d.close()
			return nil, err
		}
		d.workers = append(d.workers, w)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			w.loop(rc)
		}()
	}
	return d, nil
}

// close stops the loops and waits for them.
func (d *dataplane) close() {
	for _, w := range d.workers {
		w.mu.Lock()
		w.stopped = true // no epoll_ctl from now on
		w.mu.Unlock()
		w.file.Close() // ends the worker's wait (not under w.mu: the worker takes it)
	}
	d.wg.Wait()
}

// rawSock is a UDP socket outside Go's poller. Its descriptor is used only
// under the read lock, and closed under the write lock, so a closed
// descriptor number reused by another socket is never read.
type rawSock struct {
	mu     sync.RWMutex
	fd     int
	closed bool
}

var errRawClosed = errors.New("relayed socket closed")

// takeSocket moves a Go UDP socket out of Go's poller.
func takeSocket(pc net.PacketConn) (*rawSock, error) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a system socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(orig uintptr) {
		fd, derr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	pc.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rawSock{fd: fd}, nil
}

// recv reads one datagram without blocking (EAGAIN when there is none).
func (r *rawSock) recv(b []byte) (int, netip.AddrPort, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, netip.AddrPort{}, errRawClosed
	}
	var sa [unix.SizeofSockaddrInet6]byte
	salen := uint32(len(sa))
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(r.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&salen)))
	if errno != 0 {
		return 0, netip.AddrPort{}, errno
	}
	return int(n), parseSockaddr(sa[:]), nil
}

func parseSockaddr(sa []byte) netip.AddrPort {
	port := binary.BigEndian.Uint16(sa[2:4])
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}

// errFull: a full socket buffer dropped the datagram, as UDP may.
var errFull = errors.New("socket buffer full: datagram dropped")

// sendTo writes one datagram without blocking; a full socket buffer drops
// it (errFull).
func (r *rawSock) sendTo(p []byte, to netip.AddrPort, v6 bool) (int, error) {
	var sa [unix.SizeofSockaddrInet6]byte
	var salen uintptr
	if v6 {
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET6)
		a := to.Addr().As16()
		copy(sa[8:24], a[:])
		salen = unix.SizeofSockaddrInet6
	} else {
		if !to.Addr().Unmap().Is4() {
			return 0, net.InvalidAddrError("not an IPv4 address")
		}
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET)
		a := to.Addr().Unmap().As4()
		copy(sa[4:8], a[:])
		salen = unix.SizeofSockaddrInet4
	}
	binary.BigEndian.PutUint16(sa[2:4], to.Port())
	var base uintptr
	if len(p) > 0 {
		base = uintptr(unsafe.Pointer(&p[0]))
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, errRawClosed
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(r.fd), base, uintptr(len(p)), unix.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&sa[0])), salen)
		switch errno {
		case 0:
			return len(p), nil
		case unix.EAGAIN, unix.ENOBUFS:
			return 0, errFull
		case unix.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

func (r *rawSock) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		unix.Close(r.fd)
	}
}

// add registers a relayed socket with a worker.
func (d *dataplane) add(rc *relayConn) error {
	w := d.workers[int(d.next.Add(1))%len(d.workers)]
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return errRawClosed
	}
	id := w.nextID
	w.nextID++
	w.socks[id] = rc
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	binary.NativeEndian.PutUint64((*[8]byte)(unsafe.Pointer(&ev.Fd))[:], id)
	rc.raw.mu.RLock()
	var err error
	if w.shed.target > 0 {
		err = stampSocket(rc.raw.fd)
	}
	if err == nil {
		err = unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, rc.raw.fd, &ev)
	}
	rc.raw.mu.RUnlock()
	if err != nil {
		w.mu.Lock()
		delete(w.socks, id)
		w.mu.Unlock()
		return err
	}
	rc.dpWorker, rc.dpID = w, id
	return nil
}

// remove unregisters a relayed socket (before it is closed).
func (w *dpWorker) remove(rc *relayConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.socks, rc.dpID)
	if w.stopped {
		return
	}
	rc.raw.mu.RLock()
	if !rc.raw.closed {
		unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, rc.raw.fd, nil)
	}
	rc.raw.mu.RUnlock()
}

func (w *dpWorker) loop(rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 128)
	ready := make([]*relayConn, 0, len(events))
	var werr error
	drain := func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), events, 0)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			case n == 0:
				return false // wait in Go's poller
			}
			ready = ready[:0]
			w.mu.Lock()
			for i := range n {
				id := binary.NativeEndian.Uint64((*[8]byte)(unsafe.Pointer(&events[i].Fd))[:])
				if s := w.socks[id]; s != nil {
					ready = append(ready, s)
				}
			}
			w.mu.Unlock()
			// One clock reading serves the whole batch: the queueing
			// delay of each datagram and the bandwidth buckets.
			w.now = time.Now()
			w.nowNS = w.now.UnixNano()
			for i, s := range ready {
				s.readable(w)
				ready[i] = nil
			}
			w.flush()
		}
	}
	for werr == nil {
		if err := rc.Read(drain); err != nil {
			return // closed
		}
	}
}

// readable handles what a relayed socket has queued: up to drainSize
// datagrams with one recvmmsg (level-triggered: if more are queued, epoll
// reports the socket again), so that a socket with a backlog is not served
// one datagram per round of every socket. Under overload, datagrams that
// waited in the socket's queue longer than the queueing delay bound are
// shed (see shedder): the relay drops early rather than relaying late.
// ChannelData for the client is read straight into the worker's send batch
// for the client's listener, and leaves with the batch.
func (rc *relayConn) readable(w *dpWorker) {
	route := rc.client.Load()
	var batch *sendBatch
	if route != nil {
		if batch = w.batchFor(route.group); batch != nil && len(batch.hdrs)-batch.n < drainSize {
			w.flushBatch(batch)
		}
	}
	r := &w.recv
	start := 0
	bufs := w.own[:]
	if batch != nil {
		start = batch.n
		bufs = batch.bufs[start : start+drainSize]
	}
	for i := range drainSize {
		r.iovs[i].Base = &bufs[i][4]
		r.iovs[i].SetLen(len(bufs[i]) - 4)
	}
	n, err := rc.raw.recvBatch(r)
	if err != nil {
		return
	}
	ch := rc.chans.Load()
	for i := range n {
		size := int(r.hdrs[i].len)
		if w.shed.late(w.nowNS, stampOf(&r.cmsgs[i], int(r.hdrs[i].hdr.Controllen))) {
			w.shedDelay++
			continue
		}
		if !rc.in.allowAt(size, w.now) {
			rc.stats.dropped.Add(1)
			continue
		}
		rc.stats.fromPeerBytes.Add(uint64(size))
		rc.stats.fromPeerPackets.Add(1)
		from := parseSockaddr(r.names[i][:])
		buf := w.own[i]
		if batch != nil {
			buf = batch.bufs[start+i]
		}
		if route != nil && ch != nil {
			if num, ok := ch.byPeer[from]; ok {
				binary.BigEndian.PutUint16(buf[0:], num)
				binary.BigEndian.PutUint16(buf[2:], uint16(size))
				if batch == nil {
					route.group.send(buf[:4+size], route.addr)
					continue
				}
				// Slots fill in order: the datagram's buffer moves to the
				// next free slot (slots before it were skipped datagrams).
				if j, k := batch.n, start+i; j != k {
					batch.bufs[j], batch.bufs[k] = batch.bufs[k], batch.bufs[j]
					batch.iovs[j].Base, batch.iovs[k].Base = &batch.bufs[j][0], &batch.bufs[k][0]
				}
				batch.add(4+size, route.addr) // room was made for drainSize: never overflows here
				continue
			}
		}
		select {
		case rc.toEngine <- peerDatagram{b: append([]byte(nil), buf[4:4+size]...), from: from}:
		default: // the engine is behind: dropped, as the network may
		}
	}
}

// drainSize: datagrams one recvmmsg takes from a relayed socket.
const drainSize = 8

// recvBatch is the worker's recvmmsg state for relayed sockets; the
// caller points iovs at the buffers.
type recvBatch struct {
	hdrs  [drainSize]mmsghdr
	iovs  [drainSize]unix.Iovec
	names [drainSize][sockaddrLen]byte
	cmsgs [drainSize][stampSpace]uint64
}

// recvBatch reads what the socket has queued, up to drainSize datagrams,
// without blocking (EAGAIN when there is none), each with the time the
// kernel queued it.
func (r *rawSock) recvBatch(m *recvBatch) (int, error) {
	for i := range m.hdrs {
		h := &m.hdrs[i].hdr
		h.Iov = &m.iovs[i]
		h.SetIovlen(1)
		h.Name = &m.names[i][0]
		h.Namelen = sockaddrLen
		h.Control = (*byte)(unsafe.Pointer(&m.cmsgs[i][0]))
		h.SetControllen(stampSpace * 8)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0, errRawClosed
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&m.hdrs[0])), drainSize, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

// sendBatch gathers ChannelData for the clients of one UDP listener, sent
// with one sendmmsg from the listener's first socket.
type sendBatch struct {
	rc    syscall.RawConn
	v6    bool
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names [][sockaddrLen]byte
	bufs  [][]byte
	n     int
}

// sendBatchSize: datagrams per sendmmsg.
const sendBatchSize = 64

func newSendBatch(g *socketGroup) *sendBatch {
	if g.raw == nil {
		return nil
	}
	b := &sendBatch{rc: g.raw, v6: g.local.Addr().Is6(), hdrs: make([]mmsghdr, sendBatchSize), iovs: make([]unix.Iovec, sendBatchSize),
		names: make([][sockaddrLen]byte, sendBatchSize), bufs: make([][]byte, sendBatchSize)}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, 4+rtpMTU)
		b.iovs[i].Base = &b.bufs[i][0]
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = &b.names[i][0]
	}
	return b
}

// add queues the datagram in the next slot's buffer (n bytes) for to, and
// reports whether the batch is full.
func (b *sendBatch) add(n int, to netip.AddrPort) bool {
	i := b.n
	b.iovs[i].SetLen(n)
	sa := &b.names[i]
	if b.v6 {
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET6)
		binary.BigEndian.PutUint32(sa[4:8], 0) // flow info
		a := to.Addr().As16()
		copy(sa[8:24], a[:])
		binary.NativeEndian.PutUint32(sa[24:28], 0) // scope
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	} else {
		binary.NativeEndian.PutUint16(sa[0:2], unix.AF_INET)
		a := to.Addr().As4()
		copy(sa[4:8], a[:])
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	binary.BigEndian.PutUint16(sa[2:4], to.Port())
	b.n++
	return b.n == len(b.hdrs)
}

// batchFor returns the worker's send batch for a listener group (nil when
// the group's socket cannot be written raw).
func (w *dpWorker) batchFor(g *socketGroup) *sendBatch {
	if g.idx >= len(w.batches) {
		w.batches = append(w.batches, make([]*sendBatch, g.idx+1-len(w.batches))...)
	}
	b := w.batches[g.idx]
	if b == nil {
		if b = newSendBatch(g); b == nil {
			return nil
		}
		w.batches[g.idx] = b
	}
	return b
}

// flush sends every pending batch and publishes the worker's counters.
func (w *dpWorker) flush() {
	for _, b := range w.batches {
		if b != nil && b.n > 0 {
			w.flushBatch(b)
		}
	}
	if w.shedDelay != 0 {
		w.m.shedDelay.Add(w.shedDelay)
		w.shedDelay = 0
	}
	if w.shedFull != 0 {
		w.m.shedFull.Add(w.shedFull)
		w.shedFull = 0
	}
}

// flushBatch writes a batch without blocking: what a full socket buffer
// refuses is dropped and counted, never waited for.
func (w *dpWorker) flushBatch(b *sendBatch) {
	n := b.n
	b.n = 0
	b.rc.Control(func(fd uintptr) {
		for off := 0; off < n; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[off])), uintptr(n-off), unix.MSG_DONTWAIT, 0, 0)
			switch {
			case errno == 0:
				off += int(r)
			case errno == unix.EINTR:
			case errno == unix.EAGAIN || errno == unix.ENOBUFS:
				w.shedFull += uint64(n - off)
				return
			default:
				off++ // this datagram fails (unreachable, filtered): the others go on
			}
		}
	})
}

// stampSpace (in words) holds one SCM_TIMESTAMPNS control message.
const stampSpace = 8

// stampOf returns the SCM_TIMESTAMPNS time in a control buffer of n
// bytes, or 0.
func stampOf(c *[stampSpace]uint64, n int) int64 {
	if n < unix.SizeofCmsghdr+int(unsafe.Sizeof(unix.Timespec{})) {
		return 0
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	if h.Level != unix.SOL_SOCKET || h.Type != unix.SO_TIMESTAMPNS {
		return 0
	}
	ts := (*unix.Timespec)(unsafe.Add(unsafe.Pointer(&c[0]), unix.SizeofCmsghdr))
	return int64(ts.Sec)*1e9 + int64(ts.Nsec)
}

// stampSocket asks the kernel to stamp each datagram a socket queues
// (SO_TIMESTAMPNS), for the queueing delay bound.
func stampSocket(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
}
