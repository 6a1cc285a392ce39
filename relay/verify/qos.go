package verify

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/compiler/ir"
)

// MarkCell is one direction of one flow whose DSCP was read on the wire: the
// first packet of the connection as it arrives at the far end (the UDP
// datagram, the TCP SYN), or the first reply as it arrives back (the reply
// datagram, the SYN-ACK). Senders write DSCP 0, so anything else was set by
// the gateway.
type MarkCell struct {
	Group     string `json:"group"`
	Flow      string `json:"flow"`
	Direction string `json:"direction"` // "first" or "reply"
	Class     string `json:"class"`     // the IR's class, "" when none marks it
	Want      int    `json:"want"`      // DSCP the policy asks for (0 when unmarked)
	Got       int    `json:"got"`       // DSCP read on the wire, -1 when no packet was seen
	Line      string `json:"line"`      // the class's policy line
	OK        bool   `json:"ok"`
}

// maxMarkFlows bounds the flows whose marks are read: every classified
// (rule, protocol, family) once, and a few unclassified flows to show that
// browsing and the rest stay unmarked.
const (
	maxMarkFlows      = 64
	maxUnmarkedFlows  = 6
	captureWait       = WaitAllowed
	captureBufferSize = 1 << 20
)

// MarkFlows picks the matrix flows whose marks verify reads: allowed flows
// (the IR's verdict) between lab hosts, one per class rule, protocol and
// family, and up to maxUnmarkedFlows allowed flows no class marks.
func (l *Lab) MarkFlows(flows []Flow) []Flow {
	if len(l.Prog.QoS) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []Flow
	unmarked := 0
	for _, f := range flows {
		pkt := f.packet()
		v := l.Prog.Allows(pkt)
		if !v.Allowed() || v.Rule == nil || f.Via() {
			continue
		}
		c := l.Prog.SessionClass(pkt)
		key := fmt.Sprintf("%s/%s/%t", v.Rule.Name, f.Proto, f.Src.Is4())
		if c == nil {
			if unmarked >= maxUnmarkedFlows {
				continue
			}
			key = "unmarked/" + key
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if c == nil {
			unmarked++
		}
		out = append(out, f)
		if len(out) == maxMarkFlows {
			break
		}
	}
	return out
}

// Via reports whether the flow runs behind a zone's further interface (the
// matrix repeats those; their marks are the same rules').
func (f Flow) Via() bool { return f.From.Via != "" || f.To.Via != "" }

func (f Flow) packet() ir.Packet {
	return ir.Packet{FromZone: f.From.Zone, ToZone: f.To.Zone, Src: f.Src, Dst: f.Dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort}
}

// RunMarks sends each flow once, one at a time, capturing in the far end's
// namespace (the first packet) and in the sender's (the reply) with packet
// sockets, and compares the DSCP field with what the IR's classes say. It
// stops early when ctx is done.
func (l *Lab) RunMarks(ctx context.Context, flows []Flow) []MarkCell {
	var out []MarkCell
	for _, f := range flows {
		if ctx.Err() != nil {
			break
		}
		pkt := f.packet()
		want := func(c *ir.QoSClass) (int, string, string) {
			if c == nil {
				return 0, "", ""
			}
			return int(c.DSCP), c.Name, c.Origin.Source.String()
		}
		fwdWant, fwdClass, fwdLine := want(l.Prog.QoSFor(pkt, false))
		repWant, repClass, repLine := want(l.Prog.QoSFor(pkt.Reverse(), true))
		if c := l.Prog.SessionClass(pkt); c != nil && repLine == "" {
			repClass, repLine = c.Name+" (replies not marked)", c.Origin.Source.String()
		}
		first, reply := captureFlow(f)
		out = append(out,
			MarkCell{Group: f.Group, Flow: f.String(), Direction: "first", Class: fwdClass, Want: fwdWant, Got: first, Line: fwdLine, OK: first == fwdWant},
			MarkCell{Group: f.Group, Flow: f.String(), Direction: "reply", Class: repClass, Want: repWant, Got: reply, Line: repLine, OK: reply == repWant})
	}
	return out
}

// captureFlow runs the flow with a packet socket open in each end's
// namespace and returns the DSCP of the first packet towards the far end
// and of the first packet back, -1 for a direction not seen.
func captureFlow(f Flow) (first, reply int) {
	first, reply = -1, -1
	far, err := openCapture(f.To)
	if err != nil {
		return
	}
	defer unix.Close(far)
	near, err := openCapture(f.From)
	if err != nil {
		return
	}
	defer unix.Close(near)
	send(f, true)
	// The far end sees the first packet addressed to it (its source may be
	// the gateway's with source NAT); the sender sees the reply from the
	// address it sent to, back to its own port.
	first = readDSCP(far, func(p parsed) bool {
		return p.proto == f.Proto && p.dst == f.Dst && p.dport == f.DstPort
	})
	reply = readDSCP(near, func(p parsed) bool {
		return p.proto == f.Proto && p.src == f.Dst && p.sport == f.DstPort && p.dst == f.Src && p.dport == f.SrcPort
	})
	return
}

func openCapture(h *Host) (int, error) {
	fd := -1
	err := h.NS.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		return -1, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, captureBufferSize)
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

type parsed struct {
	proto        ir.Proto
	src, dst     netip.Addr
	sport, dport uint16
	dscp         int
}

// readDSCP reads captured packets for at most captureWait and returns the
// DSCP of the first incoming one match accepts, or -1.
func readDSCP(fd int, match func(parsed) bool) int {
	deadline := time.Now().Add(captureWait)
	buf := make([]byte, 256)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return -1
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_TRUNC)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return -1
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n > len(buf) {
			n = len(buf)
		}
		if p, ok := parseIP(buf[:n]); ok && match(p) {
			return p.dscp
		}
	}
}

// parseIP reads the addresses, ports and DSCP of an IPv4 or IPv6 packet
// carrying UDP or TCP (IPv6 without extension headers, as the lab sends).
func parseIP(b []byte) (parsed, bool) {
	var p parsed
	var l4 []byte
	var proto byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl+4 {
			return p, false
		}
		p.dscp = int(b[1] >> 2)
		proto = b[9]
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case len(b) >= 44 && b[0]>>4 == 6:
		tc := (b[0]&0x0f)<<4 | b[1]>>4
		p.dscp = int(tc >> 2)
		proto = b[6]
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return p, false
	}
	switch proto {
	case unix.IPPROTO_UDP:
		p.proto = ir.UDP
	case unix.IPPROTO_TCP:
		p.proto = ir.TCP
	default:
		return p, false
	}
	p.sport = binary.BigEndian.Uint16(l4[0:2])
	p.dport = binary.BigEndian.Uint16(l4[2:4])
	return p, true
}

func markTrouble(m MarkCell) string {
	got := fmt.Sprintf("DSCP %d (%s)", m.Got, ir.DSCPName(uint8(m.Got)))
	if m.Got < 0 {
		got = "no packet"
	}
	what := fmt.Sprintf("DSCP %d (%s, class %s, %s)", m.Want, ir.DSCPName(uint8(m.Want)), m.Class, m.Line)
	if m.Class == "" {
		what = "DSCP 0 (no class marks it)"
	}
	return fmt.Sprintf("QoS: %s, %s packet: expected %s on the wire, got %s", m.Flow, m.Direction, what, got)
}

// writeMarks writes the marks table of the text report.
func writeMarks(w io.Writer, r *Report) {
	if len(r.Marks) == 0 {
		return
	}
	fmt.Fprintln(w, "QoS marks on the wire (DSCP of the first packet at the far end, and of the reply back)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tFLOW\tPACKET\tCLASS\tWANT\tGOT\tPOLICY LINE")
	for _, m := range r.Marks {
		got := "none"
		if m.Got >= 0 {
			got = fmt.Sprintf("%d %s", m.Got, ir.DSCPName(uint8(m.Got)))
		}
		class := m.Class
		if class == "" {
			class = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d %s\t%s\t%s\n", mark(m.OK), m.Flow, m.Direction, class, m.Want, ir.DSCPName(uint8(m.Want)), got, m.Line)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d marks as the policy asks\n\n", len(r.Marks)-r.MarksFail, len(r.Marks))
}
