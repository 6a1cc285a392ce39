package peerfilter

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"go4.org/netipx"
)

func set(t testing.TB, prefixes ...string) *netipx.IPSet {
	t.Helper()
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		b.AddPrefix(netip.MustParsePrefix(p))
	}
	s, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// policyFilter is a relay like policies/private-relay: agents in RFC 1918 and
// ULA space, a provider's public ranges, a documentation range used by labs,
// and a NAT64 path to one public network.
func policyFilter(t testing.TB) *Filter {
	return New(set(t, "10.30.0.0/17", "fd00:30::/56", "52.129.96.0/20", "2603:1063::/38",
		"198.51.100.0/24", "64:ff9b::3481:6000/116"),
		[]netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8:30::10")})
}

func TestCheck(t *testing.T) {
	f := policyFilter(t)
	for _, tc := range []struct {
		addr string
		want Reason
	}{
		// Policy peers.
		{"10.30.0.5", Allowed},
		{"10.30.127.255", Allowed},
		{"fd00:30::1", Allowed},
		{"52.129.96.1", Allowed},
		{"2603:1063::1", Allowed},
		{"198.51.100.7", Allowed},
		{"::ffff:10.30.0.5", Allowed},   // unmapped, then a peer
		{"::ffff:52.129.96.1", Allowed}, // unmapped, then a peer
		{"64:ff9b::3481:6001", Allowed}, // listed NAT64 path to 52.129.96.1

		// Never, whatever the policy says.
		{"0.0.0.0", ThisNetwork},
		{"0.1.2.3", ThisNetwork},
		{"127.0.0.1", Loopback},
		{"127.255.255.254", Loopback},
		{"169.254.0.1", LinkLocal},
		{"169.254.169.254", Metadata},
		{"100.100.100.200", Metadata},
		{"224.0.0.1", Multicast},
		{"239.255.255.250", Multicast},
		{"240.0.0.1", Reserved},
		{"255.255.255.255", Reserved},
		{"::", Unspecified},
		{"::1", Loopback},
		{"::7f00:1", IPv4Compatible},
		{"::a1e:5", IPv4Compatible},
		{"fe80::1", LinkLocal},
		{"fd00:ec2::254", Metadata},
		{"ff02::1", Multicast},
		{"ff05::1:3", Multicast},

		// IPv4-mapped: unmapped before anything else.
		{"::ffff:127.0.0.1", Loopback},
		{"::ffff:0.0.0.0", ThisNetwork},
		{"::ffff:169.254.169.254", Metadata},
		{"::ffff:10.0.0.1", Private},
		{"::ffff:8.8.8.8", NotAPeer},

		// NAT64 and 6to4 embeddings.
		{"64:ff9b::7f00:1", "nat64-loopback"},
		{"64:ff9b::127.0.0.1", "nat64-loopback"},
		{"64:ff9b::a9fe:a9fe", "nat64-metadata"},
		{"64:ff9b::", "nat64-this-network"},
		{"64:ff9b::c0a8:101", "nat64-private"},
		{"64:ff9b::a1e:5", NAT64}, // embeds agent 10.30.0.5, but the NAT64 address is no peer
		{"64:ff9b::808:808", NAT64},
		{"64:ff9b:1::7f00:1", "nat64-loopback"}, // a /96 in the local-use /48
		{"64:ff9b:1:7f00:1::", "nat64-this-network"},
		{"64:ff9b:1::808:808", NAT64},                // public, not a peer
		{"2002:7f00:1::1", "6to4-loopback"},          // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::", "6to4-metadata"},        // 6to4 of 169.254.169.254
		{"2002:808:808::1", SixToFour},               // 6to4 of a public address
		{"64:ff9b::c000:20a", "nat64-relay-address"}, // the relay itself through NAT64

		// Special-purpose, not named by the policy.
		{"10.1.2.3", Private},
		{"10.30.128.1", Private}, // just outside the agents
		{"172.16.5.5", Private},
		{"192.168.1.1", Private},
		{"100.64.0.1", CGNAT},
		{"192.0.0.8", OtherSpecial},
		{"192.0.2.1", Documentation},
		{"203.0.113.5", Documentation},
		{"198.18.0.1", Benchmarking},
		{"192.88.99.1", OtherSpecial},
		{"fc00::1", ULA},
		{"fd00::1", ULA},
		{"2001:db8::1", Documentation},
		{"2001::1", OtherSpecial}, // Teredo
		{"100::1", OtherSpecial},
		{"3fff::1", Documentation},
		{"5f00::1", OtherSpecial},

		// The relay itself.
		{"192.0.2.10", RelayAddress},
		{"::ffff:192.0.2.10", RelayAddress},
		{"2001:db8:30::10", RelayAddress},

		// Public, not a peer.
		{"8.8.8.8", NotAPeer},
		{"52.129.112.1", NotAPeer},
		{"2606:4700::1111", NotAPeer},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := f.Check(a); got != tc.want {
			t.Errorf("Check(%s) = %q, want %q", tc.addr, got, tc.want)
		}
		// pion hands addresses over as net.IP, IPv4 in 16-byte form.
		if got := f.CheckIP(net.IP(a.AsSlice())); got != tc.want {
			t.Errorf("CheckIP(%s) = %q, want %q", tc.addr, got, tc.want)
		}
		if a.Is4() {
			if got := f.CheckIP(net.ParseIP(tc.addr).To16()); got != tc.want {
				t.Errorf("CheckIP(%s as 16 bytes) = %q, want %q", tc.addr, got, tc.want)
			}
		}
	}
	for _, bad := range []net.IP{nil, {1, 2, 3}} {
		if got := f.CheckIP(bad); got != Invalid {
			t.Errorf("CheckIP(%v) = %q", bad, got)
		}
	}
	if got := f.Check(netip.MustParseAddr("fe80::1%eth0")); got != Invalid {
		t.Errorf("zoned address: %q", got)
	}
	if got := f.Check(netip.Addr{}); got != Invalid {
		t.Errorf("zero address: %q", got)
	}
}

// TestNeverEvenWhenListed: a policy that names loopback, link-local,
// multicast or the whole address space still cannot reach them.
func TestNeverEvenWhenListed(t *testing.T) {
	f := New(set(t, "0.0.0.0/0", "::/0"), nil)
	for _, cl := range Classes {
		a := cl.Prefix.Addr()
		want := Allowed
		if cl.Never {
			want = cl.Reason
		}
		switch cl.Prefix {
		case netip.MustParsePrefix("::ffff:0:0/96"):
			want = ThisNetwork // ::ffff:0.0.0.0 unmaps to 0.0.0.0
		case netip.MustParsePrefix("::/96"):
			want = Unspecified // :: is its own, more specific class
		}
		if cl.Prefix.String() == "64:ff9b::/96" || cl.Prefix.String() == "64:ff9b:1::/48" {
			want = "nat64-this-network"
		}
		if cl.Prefix.String() == "2002::/16" {
			want = "6to4-this-network"
		}
		if got := f.Check(a); got != want {
			t.Errorf("%s (%s) with every address a peer: %q, want %q", a, cl.Prefix, got, want)
		}
	}
	if got := f.Check(netip.MustParseAddr("8.8.8.8")); got != Allowed {
		t.Errorf("public address with every address a peer: %q", got)
	}
	if got := f.Check(netip.MustParseAddr("10.0.0.1")); got != Allowed {
		t.Errorf("listed private address: %q", got)
	}
}

// TestNoPeers: a relay whose policy names no peers reaches nothing.
func TestNoPeers(t *testing.T) {
	for _, f := range []*Filter{New(nil, nil), New(set(t), nil)} {
		if f.HasPeers() {
			t.Error("HasPeers with no peers")
		}
		for _, a := range []string{"8.8.8.8", "10.0.0.1", "2606:4700::1111", "::ffff:8.8.8.8"} {
			if f.Check(netip.MustParseAddr(a)) == Allowed {
				t.Errorf("%s allowed with no peers", a)
			}
		}
	}
	if !policyFilter(t).HasPeers() {
		t.Error("HasPeers false with peers")
	}
}

// TestSpecialPurposeList: every range coturn is told to deny is refused by
// the bundled relay too, at its first and last address, and the list keeps
// its order and content: the IANA list, then the metadata addresses.
func TestSpecialPurposeList(t *testing.T) {
	f := New(nil, nil)
	for _, s := range SpecialPurpose {
		r := netipx.RangeOfPrefix(netip.MustParsePrefix(s))
		for _, a := range []netip.Addr{r.From(), r.To()} {
			if f.Check(a) == Allowed {
				t.Errorf("%s in %s allowed", a, s)
			}
		}
	}
	// coturn's golden files hold this list, in this order.
	want := []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24",
		"192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
		"224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
		"2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
		"169.254.169.254/32", "100.100.100.200/32", "168.63.129.16/32", "192.0.0.192/32", "fd00:ec2::254/128", "::/96",
	}
	if strings.Join(SpecialPurpose, " ") != strings.Join(want, " ") {
		t.Errorf("SpecialPurpose changed:\n got %v\nwant %v", SpecialPurpose, want)
	}
	for _, cl := range Classes {
		if cl.Prefix != cl.Prefix.Masked() {
			t.Errorf("%s has host bits", cl.Prefix)
		}
	}
}

// FuzzCheck: no input panics, and an allowed address is always a policy peer
// (after unmapping) that is never a never-class address.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "10.30.0.5", "fd00:30::1", "::", "2002:7f00:1::"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	filter := policyFilter(f)
	peers := set(f, "10.30.0.0/17", "fd00:30::/56", "52.129.96.0/20", "2603:1063::/38", "198.51.100.0/24", "64:ff9b::3481:6000/116")
	f.Fuzz(func(t *testing.T, b []byte) {
		r := filter.CheckIP(net.IP(b))
		if r != Allowed {
			return
		}
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			t.Fatalf("%x allowed but invalid", b)
		}
		a = a.Unmap()
		if !peers.Contains(a) {
			t.Fatalf("%s allowed but not a peer", a)
		}
		if cl, special := Classify(a); special && cl.Never {
			t.Fatalf("%s allowed but %s", a, cl.Reason)
		}
	})
}

// TestEffective: a broad peer prefix opens no special-purpose range it merely
// covers and no never-class address; a peer inside a special-purpose range,
// or the policy's own ranges, name it.
func TestEffective(t *testing.T) {
	own := set(t, "10.20.0.0/16", "fd00:20::/48")
	for _, tc := range []struct {
		name          string
		peers         *netipx.IPSet
		allow, refuse []string
	}{
		{"any", set(t, "0.0.0.0/0", "::/0"),
			[]string{"8.8.8.8", "10.20.0.5", "fd00:20::5", "2a00:1::1", "100.63.255.255"},
			[]string{"10.0.0.1", "192.168.1.1", "172.16.0.1", "100.64.0.1", "100.100.100.200", "169.254.169.254",
				"168.63.129.16", "127.0.0.1", "0.0.0.0", "fd00:ec2::254", "64:ff9b::a9fe:a9fe", "::1", "::ffff:7f00:1", "fc00::1", "2002::1"}},
		{"wide", set(t, "8.0.0.0/5"), []string{"8.8.8.8", "15.1.1.1", "10.20.0.5"}, []string{"10.0.0.1", "10.21.0.1"}},
		{"named private", set(t, "10.0.0.0/8", "100.64.0.0/10"), []string{"10.0.0.1", "100.64.0.1"}, []string{"100.100.100.200"}},
		{"named inside", set(t, "192.168.7.0/24", "64:ff9b::3481:6000/116"), []string{"192.168.7.1", "64:ff9b::3481:6001"}, []string{"192.168.8.1"}},
		{"metadata named", set(t, "169.254.169.254/32", "100.100.100.200/32"), nil, []string{"169.254.169.254", "100.100.100.200"}},
	} {
		got := Effective(tc.peers, own)
		for _, a := range tc.allow {
			if !got.Contains(netip.MustParseAddr(a)) {
				t.Errorf("%s: %s refused", tc.name, a)
			}
		}
		for _, a := range tc.refuse {
			if got.Contains(netip.MustParseAddr(a)) {
				t.Errorf("%s: %s allowed", tc.name, a)
			}
		}
		if Never().Prefixes() == nil {
			t.Fatal("empty never set")
		}
	}
	if Effective(nil, own) != nil {
		t.Error("no peers gave peers")
	}
}

// FuzzEffective: whatever the peers, the effective set is inside them, holds
// no never-class address, and keeps every own range the peers cover.
func FuzzEffective(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0}, []byte{10, 20, 0, 0, 16})
	f.Add([]byte{10, 0, 0, 0, 8, 169, 254, 169, 254, 32}, []byte{10, 30, 0, 0, 17})
	f.Add([]byte{100, 64, 0, 0, 10}, []byte{100, 100, 100, 0, 24})
	prefixes := func(b []byte) *netipx.IPSet {
		var sb netipx.IPSetBuilder
		for i := 0; i+5 <= len(b) && i < 5*64; i += 5 {
			sb.AddPrefix(netip.PrefixFrom(netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}), int(b[i+4])%33).Masked())
		}
		s, _ := sb.IPSet()
		return s
	}
	f.Fuzz(func(t *testing.T, peerBytes, ownBytes []byte) {
		peers, own := prefixes(peerBytes), prefixes(ownBytes)
		got := Effective(peers, own)
		for _, r := range got.Ranges() {
			if !peers.ContainsRange(r) {
				t.Fatalf("%s is not a peer", r)
			}
		}
		if got.Overlaps(Never()) {
			t.Fatal("effective set overlaps the never-class set")
		}
		var want netipx.IPSetBuilder
		want.AddSet(own)
		want.Intersect(peers)
		want.RemoveSet(Never())
		w, _ := want.IPSet()
		for _, r := range w.Ranges() {
			if !got.ContainsRange(r) {
				t.Fatalf("own range %s lost", r)
			}
		}
	})
}
