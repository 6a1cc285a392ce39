//go:build !linux

package relay

import (
	"net"
	"net/netip"
	"time"
)

// batchReader batches reads with recvmmsg on Linux; elsewhere there is none.
type batchReader struct{}

func newBatchReader(net.PacketConn, int) *batchReader { return nil }

func (b *batchReader) next() ([]byte, netip.AddrPort, error) { panic("unreachable") }

func (b *batchReader) shedAfter(time.Duration, *metrics) {}
