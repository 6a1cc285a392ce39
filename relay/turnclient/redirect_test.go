package turnclient

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// fakeRelay answers Allocates on loopback: 401 with a nonce first, then 300
// towards alt, signed with the client's key when signed is set.
func fakeRelay(t *testing.T, alt netip.AddrPort, domain string, signed bool) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	key := stun.NewLongTermIntegrity("u", "fleet.test", "p")
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil {
				continue
			}
			setters := []stun.Setter{stun.NewTransactionIDSetter(m.TransactionID), stun.NewType(m.Type.Method, stun.ClassErrorResponse)}
			if !m.Contains(stun.AttrMessageIntegrity) {
				setters = append(setters, stun.CodeUnauthorized, stun.NewRealm("fleet.test"), stun.NewNonce("n0nce"))
			} else {
				setters = append(setters, stun.CodeTryAlternate, &stun.AlternateServer{IP: alt.Addr().AsSlice(), Port: int(alt.Port())})
				if domain != "" {
					setters = append(setters, rawAttr(stun.AttrAlternateDomain, []byte(domain)))
				}
				if signed {
					setters = append(setters, stun.MessageIntegrity(key))
				}
			}
			resp, err := stun.Build(append(setters, stun.Fingerprint)...)
			if err == nil {
				pc.WriteTo(resp.Raw, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func allocate300(t *testing.T, server netip.AddrPort) *Error {
	t.Helper()
	c, err := Dial(Config{Server: server, Username: "u", Password: "p", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Allocate(context.Background(), AllocateOptions{})
	e, ok := err.(*Error)
	if !ok || e.Code != 300 {
		t.Fatalf("allocate: %v, want 300", err)
	}
	return e
}

// TestAlternateNeedsIntegrity: a signed 300 yields the alternate and a
// valid domain; an unsigned one, or one with a domain that is no host name,
// does not (an attacker on the path cannot send clients elsewhere, nor put
// text in reports).
func TestAlternateNeedsIntegrity(t *testing.T) {
	alt := netip.MustParseAddrPort("192.0.2.11:3478")
	e := allocate300(t, fakeRelay(t, alt, "turn-b.example.com", true))
	if e.Alternate != alt || e.AlternateDomain != "turn-b.example.com" {
		t.Errorf("signed: %+v", e)
	}
	if e := allocate300(t, fakeRelay(t, alt, "", false)); e.Alternate.IsValid() {
		t.Errorf("unsigned 300 followed: %+v", e)
	}
	if e := allocate300(t, fakeRelay(t, alt, "evil\nname", true)); e.Alternate != alt || e.AlternateDomain != "" {
		t.Errorf("bad domain kept: %+v", e)
	}
	// AllocateFollow does not follow the unsigned one.
	server := fakeRelay(t, alt, "", false)
	c, err := Dial(Config{Server: server, Username: "u", Password: "p", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, _, _, r, err := c.AllocateFollow(context.Background(), AllocateOptions{})
	if r != nil || n != c || Code(err) != 300 {
		t.Errorf("unsigned redirect: %v %v", r, err)
	}
}

func TestRedirectErrorText(t *testing.T) {
	a, b := netip.MustParseAddrPort("192.0.2.10:3478"), netip.MustParseAddrPort("192.0.2.11:3478")
	e := &RedirectError{First: Redirect{From: a, To: b}, Next: a}
	if !e.Loop() || !strings.HasPrefix(e.Error(), "redirect loop: redirected by 192.0.2.10:3478 to 192.0.2.11:3478 (300 Try Alternate), then by 192.0.2.11:3478 to 192.0.2.10:3478") {
		t.Errorf("%q", e)
	}
	e.Next = netip.MustParseAddrPort("192.0.2.12:3478")
	if e.Loop() || !strings.HasPrefix(e.Error(), "redirected again:") {
		t.Errorf("%q", e)
	}
	e.Next = netip.AddrPort{}
	if !strings.Contains(e.Error(), "without a usable ALTERNATE-SERVER") {
		t.Errorf("%q", e)
	}
}
