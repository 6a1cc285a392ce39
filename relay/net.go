package relay

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/relay/netns"
)

// Net opens the relay's sockets. The default uses the process's network
// namespace; tests give one that opens sockets in a namespace they created.
type Net interface {
	// ListenPacket opens a UDP socket; reusePort sets SO_REUSEPORT so that
	// several sockets share one address and the kernel spreads clients
	// over them.
	ListenPacket(network string, addr netip.AddrPort, reusePort bool) (net.PacketConn, error)
	// Listen opens a TCP listener.
	Listen(network string, addr netip.AddrPort, reusePort bool) (net.Listener, error)
	// Dial opens a TCP connection from local (shared with a listener: SO_REUSEPORT).
	Dial(network string, local, remote netip.AddrPort, timeout time.Duration) (net.Conn, error)
}

// StdNet is the process's own network namespace.
type StdNet struct{}

func control(reusePort bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				serr = err
				return
			}
			if reusePort {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// Socket buffers of UDP listeners: every client's packets queue there, and a
// burst while the readers are descheduled must not overflow them. The kernel
// caps them at net.core.rmem_max and wmem_max.
const listenerBuffer = 1 << 20

// udpControl sets SO_REUSEPORT and large buffers on listener sockets, and
// nothing on relayed sockets (never SO_REUSEADDR there: two allocations could
// share a port).
func udpControl(listener bool) func(string, string, syscall.RawConn) error {
	if !listener {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			// Best effort: a smaller buffer is no reason to fail.
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, listenerBuffer)
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, listenerBuffer)
		}); err != nil {
			return err
		}
		return serr
	}
}

// ListenPacket implements Net.
func (StdNet) ListenPacket(network string, addr netip.AddrPort, reusePort bool) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: udpControl(reusePort)}
	return lc.ListenPacket(context.Background(), network, addr.String())
}

// Listen implements Net.
func (StdNet) Listen(network string, addr netip.AddrPort, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{Control: control(reusePort)}
	return lc.Listen(context.Background(), network, addr.String())
}

// Dial implements Net.
func (StdNet) Dial(network string, local, remote netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: timeout, Control: control(true)}
	return d.Dial(network, remote.String())
}

// InNamespace opens the relay's sockets in the network namespace ns (labs
// and tests run relays inside namespaces they built).
func InNamespace(ns *netns.NS) Net { return nsNet{ns} }

type nsNet struct{ ns *netns.NS }

func (n nsNet) ListenPacket(network string, addr netip.AddrPort, reusePort bool) (pc net.PacketConn, err error) {
	if derr := n.ns.Do(func() error { pc, err = (StdNet{}).ListenPacket(network, addr, reusePort); return nil }); derr != nil {
		return nil, derr
	}
	return pc, err
}

func (n nsNet) Listen(network string, addr netip.AddrPort, reusePort bool) (l net.Listener, err error) {
	if derr := n.ns.Do(func() error { l, err = (StdNet{}).Listen(network, addr, reusePort); return nil }); derr != nil {
		return nil, derr
	}
	return l, err
}

func (n nsNet) Dial(network string, local, remote netip.AddrPort, timeout time.Duration) (c net.Conn, err error) {
	if derr := n.ns.Do(func() error { c, err = (StdNet{}).Dial(network, local, remote, timeout); return nil }); derr != nil {
		return nil, derr
	}
	return c, err
}
