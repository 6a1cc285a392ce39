package turnclient

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

func TestChannelData(t *testing.T) {
	b := ChannelData(nil, 0x4001, []byte("hello"), false)
	if !bytes.Equal(b, []byte{0x40, 0x01, 0, 5, 'h', 'e', 'l', 'l', 'o'}) {
		t.Fatalf("UDP: %x", b)
	}
	b = ChannelData(nil, 0x4001, []byte("hello"), true)
	if len(b) != 12 || !bytes.Equal(b[9:], []byte{0, 0, 0}) {
		t.Fatalf("TCP, padded to 4: %x", b)
	}
	if n, ok := streamFrame(b); !ok || n != 12 {
		t.Fatalf("streamFrame = %d %v", n, ok)
	}
	if _, ok := streamFrame(b[:11]); ok {
		t.Fatal("incomplete frame accepted")
	}
	d, ok := ParseData(ChannelData(nil, 0x4abc, []byte("x"), false))
	if !ok || d.Channel != 0x4abc || string(d.Payload) != "x" {
		t.Fatalf("ParseData = %+v %v", d, ok)
	}
	if _, ok := ParseData([]byte{0x40, 0x01, 0, 9, 1}); ok {
		t.Fatal("short ChannelData accepted")
	}
}

func TestDataIndication(t *testing.T) {
	peer := netip.MustParseAddrPort("198.51.100.7:5000")
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication), peerAttr(peer),
		stun.RawAttribute{Type: stun.AttrData, Value: []byte("payload"), Length: 7})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := ParseData(m.Raw)
	if !ok || d.Peer != peer || string(d.Payload) != "payload" || d.Channel != 0 {
		t.Fatalf("ParseData = %+v %v", d, ok)
	}
}

// TestRawPeerAttr: an IPv4-mapped address is written as an IPv6
// XOR-PEER-ADDRESS, and reads back as the same 16 bytes.
func TestRawPeerAttr(t *testing.T) {
	ip := netip.MustParseAddr("::ffff:127.0.0.1").As16()
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), RawPeerAttr(ip[:], 80))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Get(stun.AttrXORPeerAddress)
	if v[1] != 2 || len(v) != 20 {
		t.Fatalf("family %d, %d bytes", v[1], len(v))
	}
	var got stun.XORMappedAddress
	if err := got.GetFromAs(m, stun.AttrXORPeerAddress); err != nil || !bytes.Equal(got.IP.To16(), ip[:]) || got.Port != 80 {
		t.Fatalf("read back %v %v", got, err)
	}
}
