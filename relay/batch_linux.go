package relay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader reads a UDP socket with recvmmsg: under load one system call
// and one wake-up bring up to batchSize datagrams. It allocates nothing per
// datagram.
type batchReader struct {
	rc     syscall.RawConn
	hdrs   []mmsghdr
	iovs   []unix.Iovec
	names  [][sockaddrLen]byte
	bufs   [][]byte
	n      int // datagrams in the batch
	cursor int // the next one to hand out
	serr   error
	read   func(fd uintptr) bool
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
		names: make([][sockaddrLen]byte, batchSize), bufs: make([][]byte, batchSize)}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, bufSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufSize)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = &b.names[i][0]
	}
	b.read = func(fd uintptr) bool {
		for i := range b.hdrs {
			b.hdrs[i].hdr.Namelen = sockaddrLen
		}
		for {
			n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
			switch errno {
			case 0:
				b.n, b.cursor, b.serr = int(n), 0, nil
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

// next returns the next datagram (valid until the following call) and its
// source. Errors are the socket's: closed, or a deadline.
func (b *batchReader) next() ([]byte, netip.AddrPort, error) {
	for b.cursor >= b.n {
		if err := b.rc.Read(b.read); err != nil {
			return nil, netip.AddrPort{}, err
		}
		if b.serr != nil {
			err := b.serr
			b.serr = nil
			return nil, netip.AddrPort{}, err
		}
	}
	i := b.cursor
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
