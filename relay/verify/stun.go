package verify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v4"

	"github.com/turnwall/turnwall/relay/netns"
)

// stunResponder answers STUN Binding requests (RFC 8489) on one address and
// port, over UDP and optionally TCP: a public STUN server of the lab.
type stunResponder struct {
	addr netip.AddrPort
	pc   net.PacketConn
	ln   net.Listener

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// Bounds of the TCP side: connections at once, and how long one may idle.
const (
	stunMaxConns = 64
	stunIdle     = 30 * time.Second
)

// startSTUN opens the responder's sockets in ns.
func startSTUN(ns *netns.NS, addr netip.AddrPort, udp, tcp bool) (*stunResponder, error) {
	r := &stunResponder{addr: addr, conns: map[net.Conn]struct{}{}}
	err := ns.Do(func() error {
		if udp {
			pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
			if err != nil {
				return err
			}
			r.pc = pc
		}
		if tcp {
			ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
			if err != nil {
				return err
			}
			r.ln = ln
		}
		return nil
	})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("STUN on %s: %w", addr, err)
	}
	if r.pc != nil {
		r.wg.Add(1)
		go r.serveUDP()
	}
	if r.ln != nil {
		r.wg.Add(1)
		go r.serveTCP()
	}
	return r, nil
}

// Close stops the responder and waits for its goroutines.
func (r *stunResponder) Close() error {
	var errs []error
	r.mu.Lock()
	r.done = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	if r.pc != nil {
		errs = append(errs, r.pc.Close())
	}
	if r.ln != nil {
		errs = append(errs, r.ln.Close())
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// bindingResponse answers a Binding request with the source address seen,
// or returns nil for anything else.
func bindingResponse(msg []byte, from netip.AddrPort) []byte {
	if !stun.IsMessage(msg) {
		return nil
	}
	req := &stun.Message{Raw: append([]byte(nil), msg...)}
	if req.Decode() != nil || req.Type != stun.BindingRequest {
		return nil
	}
	resp, err := stun.Build(
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().Unmap().AsSlice(), Port: int(from.Port())},
		stun.NewSoftware("turnwall lab STUN"),
		stun.Fingerprint,
	)
	if err != nil {
		return nil
	}
	return resp.Raw
}

func (r *stunResponder) serveUDP() {
	defer r.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := r.pc.(*net.UDPConn).ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if resp := bindingResponse(buf[:n], from); resp != nil {
			r.pc.(*net.UDPConn).WriteToUDPAddrPort(resp, from)
		}
	}
}

func (r *stunResponder) serveTCP() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		r.mu.Lock()
		if r.done || len(r.conns) >= stunMaxConns {
			r.mu.Unlock()
			c.Close()
			continue
		}
		r.conns[c] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serveConn(c)
	}
}

// serveConn answers Binding requests framed on a TCP stream (RFC 8489
// section 6.2.2: messages back to back, each 20 bytes of header and the
// length it declares).
func (r *stunResponder) serveConn(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	var from netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		from = ta.AddrPort()
	}
	hdr := make([]byte, 20)
	for {
		c.SetReadDeadline(time.Now().Add(stunIdle))
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if hdr[0]&0xc0 != 0 || n > 2048 {
			return
		}
		msg := make([]byte, 20+n)
		copy(msg, hdr)
		if _, err := io.ReadFull(c, msg[20:]); err != nil {
			return
		}
		if resp := bindingResponse(msg, from); resp != nil {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}
}
