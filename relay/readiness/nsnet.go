package readiness

import (
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// InNamespace returns a pion network whose sockets are opened by do, which
// runs a function inside a network namespace (netns.NS.Do): the media peer
// of a readiness server running inside a lab host. Interfaces are those the
// namespace has when InNamespace runs.
func InNamespace(do func(func() error) error) (transport.Net, error) {
	var base *stdnet.Net
	if err := do(func() (err error) {
		base, err = stdnet.NewNet()
		return err
	}); err != nil {
		return nil, err
	}
	return &nsNet{Net: base, do: do}, nil
}

type nsNet struct {
	*stdnet.Net
	do func(func() error) error
}

func (n *nsNet) ListenPacket(network, address string) (pc net.PacketConn, err error) {
	err = n.do(func() (e error) { pc, e = n.Net.ListenPacket(network, address); return })
	return
}

func (n *nsNet) ListenUDP(network string, laddr *net.UDPAddr) (c transport.UDPConn, err error) {
	err = n.do(func() (e error) { c, e = n.Net.ListenUDP(network, laddr); return })
	return
}

func (n *nsNet) ListenTCP(network string, laddr *net.TCPAddr) (l transport.TCPListener, err error) {
	err = n.do(func() (e error) { l, e = n.Net.ListenTCP(network, laddr); return })
	return
}

func (n *nsNet) Dial(network, address string) (c net.Conn, err error) {
	err = n.do(func() (e error) { c, e = n.Net.Dial(network, address); return })
	return
}

func (n *nsNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (c transport.UDPConn, err error) {
	err = n.do(func() (e error) { c, e = n.Net.DialUDP(network, laddr, raddr); return })
	return
}

func (n *nsNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (c transport.TCPConn, err error) {
	err = n.do(func() (e error) { c, e = n.Net.DialTCP(network, laddr, raddr); return })
	return
}
