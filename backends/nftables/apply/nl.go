package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The transport is a raw NETLINK_NETFILTER socket rather than
// google/nftables' Conn: v0.3.0 packs every element of a set into one
// attribute with a 16-bit length (big sets are silently truncated), asks for
// an echo of every rule, cannot write the element and set user data nft
// writes, and cannot carry the ruleset generation that makes a batch fail
// when the ruleset changed since it was read. Expressions are still encoded
// and decoded by google/nftables' expr package.

const (
	nfgenHeaderLen = 4
	nlmsgHeaderLen = unix.SizeofNlMsghdr
	// maxListAttr keeps the element list attribute of one message well under
	// the 65,535 bytes its 16-bit length can describe.
	maxListAttr = 60_000
	// recvBufSize is what one recvmsg may return; the kernel's dump skbs are
	// at most 32 KiB.
	recvBufSize = 1 << 20
)

// sock is one netlink socket in the target namespace.
type sock struct {
	fd      int
	nsPath  string
	seq     uint32
	timeout time.Duration
	buf     []byte
}

// errPermission is returned for EPERM from netlink: the caller lacks
// CAP_NET_ADMIN in the namespace.
var errPermission = errors.New("the kernel refused access to nftables: turnwall needs root or CAP_NET_ADMIN (run it with sudo)")

// openSock opens a NETLINK_NETFILTER socket, inside the named network
// namespace when nsPath is not empty. A socket keeps the namespace it was
// created in, so only its creation runs on a thread switched into nsPath.
func openSock(nsPath string, timeout time.Duration) (*sock, error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	fd, err := inNetNS(nsPath, func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	s := &sock{fd: fd, nsPath: nsPath, seq: uint32(time.Now().UnixNano()), timeout: timeout, buf: make([]byte, recvBufSize)}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		s.close()
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Errors carry only the failing message's header (not its 60 KB of
	// elements) plus the kernel's explanation.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		s.close()
		return nil, fmt.Errorf("netlink timeout: %w", err)
	}
	if err := s.setBuffers(4<<20, 4<<20); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// setBuffers raises the socket buffers: the whole batch goes out in one
// sendmsg, which the kernel refuses when it is larger than the send buffer,
// and every message's acknowledgement must fit in the receive buffer or it is
// lost (ENOBUFS). The FORCE options pass the sysctl limits with CAP_NET_ADMIN.
func (s *sock) setBuffers(snd, rcv int) error {
	for _, o := range []struct {
		force, plain, size int
		name               string
	}{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, snd, "send"}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rcv, "receive"}} {
		if o.size <= 0 {
			continue
		}
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, o.force, o.size); err != nil {
			if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, o.plain, o.size); err != nil {
				return fmt.Errorf("netlink %s buffer of %d bytes: %w", o.name, o.size, err)
			}
		}
	}
	return nil
}

func (s *sock) close() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

func (s *sock) nextSeq() uint32 {
	s.seq++
	if s.seq == 0 {
		s.seq++
	}
	return s.seq
}

// inNetNS runs f on an OS thread switched into the network namespace at
// nsPath (f runs in the caller's namespace when nsPath is empty).
func inNetNS(nsPath string, f func() (int, error)) (int, error) {
	if nsPath == "" {
		return f()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is only unlocked once it is back in its own namespace;
		// otherwise it dies with this goroutine.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{-1, err}
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			ch <- result{-1, fmt.Errorf("network namespace: %w", err)}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("entering network namespace %s needs root (CAP_SYS_ADMIN): %w", nsPath, err)
			}
			ch <- result{-1, err}
			return
		}
		fd, ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("leaving network namespace %s: %w", nsPath, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fd, ferr}
	}()
	r := <-ch
	return r.fd, r.err
}

// attrs builds netlink attributes: headers in host order, nftables values
// in network order, nests patched when they close.
type attrs struct{ b []byte }

func (a *attrs) put(typ uint16, data []byte) {
	n := 4 + len(data)
	a.b = binary.NativeEndian.AppendUint16(a.b, uint16(n))
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = append(a.b, data...)
	a.pad()
}

func (a *attrs) pad() {
	for len(a.b)%4 != 0 {
		a.b = append(a.b, 0)
	}
}

func (a *attrs) str(typ uint16, s string) {
	n := 4 + len(s) + 1
	a.b = binary.NativeEndian.AppendUint16(a.b, uint16(n))
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = append(a.b, s...)
	a.b = append(a.b, 0)
	a.pad()
}

func (a *attrs) u32(typ uint16, v uint32) {
	a.b = binary.NativeEndian.AppendUint16(a.b, 8)
	a.b = binary.NativeEndian.AppendUint16(a.b, typ)
	a.b = binary.BigEndian.AppendUint32(a.b, v)
}

// nest starts a nested attribute; end closes it.
func (a *attrs) nest(typ uint16) int {
	off := len(a.b)
	a.b = append(a.b, 0, 0, 0, 0)
	binary.NativeEndian.PutUint16(a.b[off+2:], typ|unix.NLA_F_NESTED)
	return off
}

func (a *attrs) end(off int) {
	binary.NativeEndian.PutUint16(a.b[off:], uint16(len(a.b)-off))
}

// attr is one parsed attribute.
type attr struct {
	typ  uint16
	data []byte
}

// parseAttrs splits a buffer into attributes (flags stripped from the type).
func parseAttrs(b []byte) ([]attr, error) {
	var out []attr
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < 4 || n > len(b) {
			return nil, fmt.Errorf("malformed netlink attribute (length %d of %d)", n, len(b))
		}
		out = append(out, attr{typ, b[4:n]})
		n = (n + 3) &^ 3
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return out, nil
}

// walkAttrs calls fn for each attribute without allocating.
func walkAttrs(b []byte, fn func(typ uint16, data []byte) error) error {
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < 4 || n > len(b) {
			return fmt.Errorf("malformed netlink attribute (length %d of %d)", n, len(b))
		}
		if err := fn(typ, b[4:n]); err != nil {
			return err
		}
		n = (n + 3) &^ 3
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return nil
}

func attrMap(b []byte) (map[uint16][]byte, error) {
	list, err := parseAttrs(b)
	if err != nil {
		return nil, err
	}
	m := make(map[uint16][]byte, len(list))
	for _, a := range list {
		m[a.typ] = a.data
	}
	return m, nil
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func be32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func be64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// msgType is an nftables message type for the nlmsghdr.
func msgType(nftMsg int) uint16 { return uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | nftMsg) }

// appendMsg appends one netlink message with an nfgenmsg header.
func appendMsg(buf []byte, typ, flags uint16, seq uint32, family uint8, resID uint16, body []byte) []byte {
	n := nlmsgHeaderLen + nfgenHeaderLen + len(body)
	buf = binary.NativeEndian.AppendUint32(buf, uint32(n))
	buf = binary.NativeEndian.AppendUint16(buf, typ)
	buf = binary.NativeEndian.AppendUint16(buf, flags)
	buf = binary.NativeEndian.AppendUint32(buf, seq)
	buf = binary.NativeEndian.AppendUint32(buf, 0)
	buf = append(buf, family, 0)
	buf = binary.BigEndian.AppendUint16(buf, resID)
	buf = append(buf, body...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// message is one received netlink message.
type message struct {
	typ   uint16
	flags uint16
	seq   uint32
	data  []byte // after the nlmsghdr
}

// recv reads one datagram and splits it into messages. The returned data
// aliases the socket's buffer until the next recv.
func (s *sock) recv(flags int) ([]message, error) {
	n, _, err := unix.Recvfrom(s.fd, s.buf, flags)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) && flags&unix.MSG_DONTWAIT == 0 {
			return nil, fmt.Errorf("no answer from the kernel within %v", s.timeout)
		}
		return nil, err
	}
	if n > len(s.buf) {
		return nil, fmt.Errorf("netlink message of %d bytes truncated", n)
	}
	var out []message
	b := s.buf[:n]
	for len(b) >= nlmsgHeaderLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHeaderLen || l > len(b) {
			return nil, fmt.Errorf("malformed netlink message (length %d of %d)", l, len(b))
		}
		out = append(out, message{
			typ:   binary.NativeEndian.Uint16(b[4:]),
			flags: binary.NativeEndian.Uint16(b[6:]),
			seq:   binary.NativeEndian.Uint32(b[8:]),
			data:  b[nlmsgHeaderLen:l],
		})
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		b = b[l:]
	}
	return out, nil
}

// kernelError is an NLMSG_ERROR with a non-zero code, with the kernel's
// extended acknowledgement text when it gave one.
type kernelError struct {
	errno syscall.Errno
	msg   string
}

func (e *kernelError) Error() string {
	if e.msg != "" {
		return e.errno.Error() + " (" + e.msg + ")"
	}
	return e.errno.Error()
}

func (e *kernelError) Unwrap() error { return e.errno }

// parseError decodes an NLMSG_ERROR: the code, the sequence number of the
// message it answers, and the error (nil for an acknowledgement).
func parseError(m message) (uint32, error) {
	if len(m.data) < 4+nlmsgHeaderLen {
		return 0, errors.New("short netlink error message")
	}
	code := int32(binary.NativeEndian.Uint32(m.data))
	origSeq := binary.NativeEndian.Uint32(m.data[4+8:])
	if code == 0 {
		return origSeq, nil
	}
	ke := &kernelError{errno: syscall.Errno(-code)}
	if m.flags&unix.NLM_F_ACK_TLVS != 0 {
		// With NETLINK_CAP_ACK only the original header is echoed; with
		// NLM_F_CAPPED the payload is left out, so the TLVs follow it.
		origLen := int(binary.NativeEndian.Uint32(m.data[4:]))
		off := 4 + nlmsgHeaderLen
		if m.flags&nlmFCapped == 0 {
			off = 4 + origLen
		}
		if off <= len(m.data) {
			if list, err := parseAttrs(m.data[off:]); err == nil {
				for _, a := range list {
					if a.typ == unix.NLMSGERR_ATTR_MSG {
						ke.msg = cstr(a.data)
					}
				}
			}
		}
	}
	return origSeq, ke
}

// request sends one message and collects the answer: every message of a dump
// (flags include NLM_F_DUMP) or the single reply. A kernel error (ENOENT for
// a missing object) is returned as a *kernelError.
func (s *sock) request(typ, flags uint16, family uint8, body []byte) ([]message, error) {
	var out []message
	err := s.each(typ, flags, family, body, func(m message) error {
		m.data = append([]byte(nil), m.data...) // out of the receive buffer
		out = append(out, m)
		return nil
	})
	return out, err
}

// each is request with a callback per answer message; the message's data is
// only valid during the call.
func (s *sock) each(typ, flags uint16, family uint8, body []byte, fn func(message) error) error {
	seq := s.nextSeq()
	buf := appendMsg(nil, typ, flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq, family, 0, body)
	if _, err := unix.Write(s.fd, buf); err != nil {
		return permission(err)
	}
	for {
		msgs, err := s.recv(0)
		if err != nil {
			return permission(err)
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue // a late answer to an earlier request
			}
			if m.flags&unix.NLM_F_DUMP_INTR != 0 {
				return errInterrupted
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if _, err := parseError(m); err != nil {
					return permission(err)
				}
				return nil // the acknowledgement after a reply
			default:
				if err := fn(m); err != nil {
					return err
				}
			}
		}
	}
}

// errInterrupted means the ruleset changed during a dump: read again.
var errInterrupted = errors.New("the ruleset changed while it was read")

func permission(err error) error {
	if errors.Is(err, unix.EPERM) {
		return errPermission
	}
	return err
}
