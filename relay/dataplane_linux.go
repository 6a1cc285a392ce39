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
}

func newDataplane(n int) (*dataplane, error) {
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
		w := &dpWorker{ep: ep, file: os.NewFile(uintptr(ep), "epoll"), socks: map[uint64]*relayConn{}, nextID: 1}
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

// sendTo writes one datagram; a full socket buffer drops it, as UDP may.
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
		case 0, unix.EAGAIN:
			return len(p), nil
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
	err := unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, rc.raw.fd, &ev)
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
	buf := make([]byte, 4+rtpMTU)
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
			for i := range n {
				id := binary.NativeEndian.Uint64((*[8]byte)(unsafe.Pointer(&events[i].Fd))[:])
				w.mu.Lock()
				s := w.socks[id]
				w.mu.Unlock()
				if s != nil {
					s.readable(buf)
				}
			}
		}
	}
	for werr == nil {
		if err := rc.Read(drain); err != nil {
			return // closed
		}
	}
}

// readable handles one datagram of a relayed socket (level-triggered: if
// more are queued, epoll reports the socket again).
func (rc *relayConn) readable(buf []byte) {
	n, from, err := rc.raw.recv(buf[4:])
	if err != nil {
		return
	}
	rc.fromPeer(buf, n, from)
}
