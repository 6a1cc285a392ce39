//go:build !linux

package relay

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// The epoll data plane is Linux-only; elsewhere relayed sockets are read by
// the TURN engine's goroutines.
type dataplane struct{}

type dpWorker struct{}

type rawSock struct{ closed bool }

var (
	errRawClosed = errors.New("relayed socket closed")
	errFull      = errors.New("socket buffer full: datagram dropped")
)

func newDataplane(int, time.Duration, *metrics) (*dataplane, error) { return nil, nil }
func (d *dataplane) close()                                         {}
func (d *dataplane) add(*relayConn) error                           { return errRawClosed }
func (w *dpWorker) remove(*relayConn)                               {}
func takeSocket(net.PacketConn) (*rawSock, error)                   { return nil, errRawClosed }
func (r *rawSock) close()                                           {}
func (r *rawSock) sendTo([]byte, netip.AddrPort, bool) (int, error) { return 0, errRawClosed }
