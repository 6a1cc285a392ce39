package relay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader reads a UDP socket with recvmmsg: under load one system call
// and one wake-up bring up to batchSize datagrams. It allocates nothing per
// datagram. Under overload, ChannelData that waited in the socket's queue
// longer than the bound is shed (counted in m; see shedder), not handed
// out: the relay drops early rather than relaying late. Other messages
// (STUN) are always handed out.
type batchReader struct {
	rc     syscall.RawConn
	hdrs   []mmsghdr
	iovs   []unix.Iovec
	names  [][sockaddrLen]byte
	cmsgs  [][stampSpace]uint64
	bufs   [][]byte
	n      int // datagrams in the batch
	cursor int // the next one to hand out
	serr   error
	read   func(fd uintptr) bool
	shed   shedder // target 0: no shedding
	m      *metrics
	now    int64 // Unix ns, read once per batch
}

// mmsghdr is struct mmsghdr (x/sys/unix has no type for it).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

const (
	batchSize   = 32
	sockaddrLen = unix.SizeofSockaddrInet6
)

func newBatchReader(pc net.PacketConn, bufSize int) *batchReader {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batchReader{rc: rc, hdrs: make([]mmsghdr, batchSize), iovs: make([]unix.Iovec, batchSize),
		names: make([][sockaddrLen]byte, batchSize), cmsgs: make([][stampSpace]uint64, batchSize), bufs: make([][]byte, batchSize)}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, bufSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufSize)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = &b.names[i][0]
		b.hdrs[i].hdr.Control = (*byte)(unsafe.Pointer(&b.cmsgs[i][0]))
	}
	b.read = func(fd uintptr) bool {
		for i := range b.hdrs {
			b.hdrs[i].hdr.Namelen = sockaddrLen
			b.hdrs[i].hdr.SetControllen(stampSpace * 8)
		}
		for {
			n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
			switch errno {
			case 0:
				b.n, b.cursor, b.serr = int(n), 0, nil
				if b.shed.target > 0 {
					b.now = time.Now().UnixNano()
				}
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait until readable
			default:
				b.serr = errno
				return true
			}
		}
	}
	return b
}

// shedAfter makes the reader shed ChannelData that waited longer than d in
// the socket's queue, counted in m (the socket is stamped for this).
func (b *batchReader) shedAfter(d time.Duration, m *metrics) {
	if d <= 0 {
		return // shedding is off: no stamps either
	}
	var serr error
	if err := b.rc.Control(func(fd uintptr) { serr = stampSocket(int(fd)) }); err != nil || serr != nil {
		return
	}
	b.shed, b.m = newShedder(d), m
}

// next returns the next datagram (valid until the following call) and its
// source. Errors are the socket's: closed, or a deadline.
func (b *batchReader) next() ([]byte, netip.AddrPort, error) {
	var i int
	for {
		var shed uint64
		for ; b.cursor < b.n; b.cursor++ {
			if b.shed.target > 0 && b.stale(b.cursor) {
				shed++
				continue
			}
			break
		}
		if shed > 0 {
			b.m.shedDelay.Add(shed)
		}
		if b.cursor < b.n {
			i = b.cursor
			break
		}
		if err := b.rc.Read(b.read); err != nil {
			return nil, netip.AddrPort{}, err
		}
		if b.serr != nil {
			err := b.serr
			b.serr = nil
			return nil, netip.AddrPort{}, err
		}
	}
	b.cursor++
	name := &b.names[i]
	var ap netip.AddrPort
	port := binary.BigEndian.Uint16(name[2:4])
	switch binary.NativeEndian.Uint16(name[0:2]) {
	case unix.AF_INET:
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(name[4:8])), port)
	case unix.AF_INET6:
		ap = netip.AddrPortFrom(netip.AddrFrom16([16]byte(name[8:24])).Unmap(), port)
	}
	return b.bufs[i][:b.hdrs[i].len], ap, nil
}

// stale: datagram i is ChannelData to shed (see shedder).
func (b *batchReader) stale(i int) bool {
	if b.hdrs[i].len < 4 || b.bufs[i][0]&0xc0 != 0x40 {
		return false
	}
	return b.shed.late(b.now, stampOf(&b.cmsgs[i], int(b.hdrs[i].hdr.Controllen)))
}
