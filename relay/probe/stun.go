package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
)

// Binding sends a STUN Binding request from pc to dst, retransmitting over
// UDP (RTO 250 ms, doubling) until timeout, and returns the mapped address
// and the server's OTHER-ADDRESS (RFC 5780), if any. The probe and the
// verify lab share it.
func Binding(ctx context.Context, pc net.PacketConn, dst netip.AddrPort, timeout time.Duration) (mapped, other netip.AddrPort, rtt time.Duration, err error) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return mapped, other, 0, err
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	rto := 250 * time.Millisecond
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 10; attempt++ {
		if _, err := pc.WriteTo(req.Raw, net.UDPAddrFromAddrPort(dst)); err != nil {
			return mapped, other, 0, err
		}
		wait := time.Now().Add(rto)
		if wait.After(deadline) {
			wait = deadline
		}
		for {
			pc.SetReadDeadline(wait)
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return mapped, other, 0, err
			}
			if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort().Addr().Unmap() != dst.Addr() || ua.AddrPort().Port() != dst.Port() {
				continue
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.TransactionID != req.TransactionID {
				continue
			}
			if m.Type.Class == stun.ClassErrorResponse {
				var code stun.ErrorCodeAttribute
				code.GetFrom(m)
				return mapped, other, time.Since(start), fmt.Errorf("binding error %d %s", code.Code, code.Reason)
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil {
				var ma stun.MappedAddress
				if err := ma.GetFrom(m); err != nil {
					return mapped, other, time.Since(start), errors.New("binding response without a mapped address")
				}
				xa.IP, xa.Port = ma.IP, ma.Port
			}
			ip, _ := netip.AddrFromSlice(xa.IP)
			mapped = netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port))
			var oa stun.MappedAddress
			if oa.GetFromAs(m, stun.AttrOtherAddress) == nil {
				oip, _ := netip.AddrFromSlice(oa.IP)
				other = netip.AddrPortFrom(oip.Unmap(), uint16(oa.Port))
			}
			return mapped, other, time.Since(start), nil
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		rto *= 2
	}
	return mapped, other, time.Since(start), fmt.Errorf("no binding response: %w", context.DeadlineExceeded)
}

// stunChecks sends a Binding to every STUN server and every TURN server over
// UDP (browsers learn server-reflexive candidates from both) from one
// socket, then judges the NAT's mapping behaviour from the answers.
func stunChecks(ctx context.Context, cfg *Config) []Check {
	var targets []URI
	targets = append(targets, cfg.STUN...)
	for _, u := range cfg.TURN {
		if u.Transport == UDP {
			targets = append(targets, u)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	var checks []Check
	pc, err := cfg.ListenPacket("udp", ":0")
	if err != nil {
		return []Check{{Kind: KindSTUN, Target: targets[0].String(), Transport: UDP, Status: Fail, Reason: "cannot open a UDP socket", Error: err.Error()}}
	}
	defer pc.Close()
	type answer struct {
		dst, mapped, other netip.AddrPort
	}
	var answers []answer
	var local netip.Addr
	seen := map[netip.AddrPort]bool{}
	for _, u := range targets {
		c := Check{Kind: KindSTUN, Target: u.String(), Transport: UDP}
		ip, err := resolve(ctx, cfg, u.Host)
		if err != nil {
			c.Status, c.Reason, c.Error = Fail, fmt.Sprintf("cannot resolve %s: DNS is blocked or the name is wrong", u.Host), err.Error()
			checks = append(checks, c)
			continue
		}
		dst := netip.AddrPortFrom(ip, u.Port)
		c.Server = dst.String()
		if seen[dst] {
			continue
		}
		seen[dst] = true
		if !local.IsValid() {
			local = localAddr(cfg, dst)
		}
		if local.IsValid() {
			c.Local = local.String()
		}
		mapped, other, rtt, err := Binding(ctx, pc, dst, cfg.Timeout)
		c.Millis = ms(rtt)
		if err != nil {
			c.Status, c.Error = Fail, err.Error()
			c.Reason = explain(UDP, dst, err)
			checks = append(checks, c)
			continue
		}
		c.Status, c.Mapped = OK, mapped.String()
		c.Reason = fmt.Sprintf("server-reflexive address %s", mapped)
		answers = append(answers, answer{dst, mapped, other})
		checks = append(checks, c)
	}
	if len(answers) == 0 {
		return checks
	}
	// Mapping behaviour (RFC 5780 section 4.3): the same local socket to
	// other destinations.
	start := time.Now()
	a0 := answers[0]
	nat := Check{Kind: KindNAT, Target: targets[0].String(), Transport: UDP, Server: a0.dst.String(), Status: OK, Mapped: a0.mapped.String()}
	if local.IsValid() {
		nat.Local = local.String()
	}
	switch {
	case local.IsValid() && local == a0.mapped.Addr():
		nat.NAT = "none"
		nat.Reason = "no NAT: the host address is what servers see"
	case a0.other.IsValid() && a0.other.Addr() != a0.dst.Addr():
		m2, _, _, err2 := Binding(ctx, pc, netip.AddrPortFrom(a0.other.Addr(), a0.dst.Port()), cfg.Timeout)
		switch {
		case err2 != nil:
			nat.NAT, nat.Reason = "unknown", "the server's alternate address did not answer"
		case m2 == a0.mapped:
			nat.NAT, nat.Reason = "endpoint-independent", "endpoint-independent mapping (RFC 5780 test II): server-reflexive candidates work towards any peer"
		default:
			m3, _, _, err3 := Binding(ctx, pc, a0.other, cfg.Timeout)
			switch {
			case err3 != nil:
				nat.NAT, nat.Reason = "address-dependent", "the mapping changes with the destination address (symmetric-like NAT): direct paths need a relay"
			case m3 == m2:
				nat.NAT, nat.Reason = "address-dependent", "address-dependent mapping (RFC 5780 test III): direct paths to new peers mostly need a relay"
			default:
				nat.NAT, nat.Reason = "address-and-port-dependent", "address-and-port-dependent mapping (symmetric NAT): server-reflexive candidates are useless to peers; media needs the TURN relay"
			}
		}
	case len(answers) >= 2:
		same, samePortDiffers := true, false
		for _, a := range answers[1:] {
			if a.mapped != a0.mapped {
				same = false
				if a.dst.Addr() == a0.dst.Addr() {
					samePortDiffers = true
				}
			}
		}
		switch {
		case same:
			nat.NAT, nat.Reason = "endpoint-independent", fmt.Sprintf("endpoint-independent mapping: %d servers saw the same address %s", len(answers), a0.mapped)
		case samePortDiffers:
			nat.NAT, nat.Reason = "address-and-port-dependent", "the mapping changes with the destination port (symmetric NAT): server-reflexive candidates are useless to peers; media needs the TURN relay"
		default:
			nat.NAT, nat.Reason = "address-dependent", "the mapping changes with the destination (symmetric-like NAT): direct paths need a relay"
		}
	default:
		nat.NAT, nat.Reason = "unknown", "one STUN server answered and it has no alternate address: give a second --stun server to classify the NAT"
	}
	nat.Millis = ms(time.Since(start))
	return append(checks, nat)
}

// localAddr is the address the system would send from to dst (a connected
// UDP socket sends nothing).
func localAddr(cfg *Config, dst netip.AddrPort) netip.Addr {
	c, err := cfg.Dial("udp", dst.String())
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return ua.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
