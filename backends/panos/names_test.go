package panos

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/turnwall/turnwall/backends/backendtest"
)

// nameValues gives the names that naming each prefix's object in turn gives,
// also when names before and after it collide with its keys and names, and
// when a key is too long to be a name as it is.
func TestNameValuesAsOneByOne(t *testing.T) {
	var prefixes []netip.Prefix
	for i := range 300 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 7), byte(i), 0}), 16+i%17).Masked())
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, byte(i), 0xdd, 0xdd, 0xee, 0xee, 0xff, byte(i)})
		prefixes = append(prefixes, netip.PrefixFrom(a, 64+i%65).Masked())
	}
	sortPrefixes(prefixes)
	prefixes = slices.Compact(prefixes)
	key := func(i int) string { return prefixObjectKey(prefixes[i]) }
	before := [][2]string{{"group", key(3)}, {"object", "x"}, {"group", "NET-" + key(5)[4:]}}
	after := [][2]string{{"group", key(7)}, {"object", key(9)}, {"feed", "feed-a"}, {"group", key(11)}, {"group", "provider.big"}, {"group", "NET-" + key(13)[4:]}}
	for _, objectPrefix := range []string{"", "tw-", "Long-Prefix-16ch"} {
		t.Run("prefix="+objectPrefix, func(t *testing.T) {
			want := backendtest.NameValuesAsOneByOne(t, func() *namespace { return newNamespace(prefixed(objectRules(), objectPrefix)) },
				"object", prefixes, prefixObjectKey, before, after)
			hashed := 0
			for _, n := range want {
				if len(n) == maxObjectName {
					hashed++
				}
			}
			if objectPrefix == "Long-Prefix-16ch" && hashed == 0 {
				t.Errorf("no key was too long: the test does not reach the namer's own path")
			}
		})
	}
	for i := range prefixes {
		if p, ok := parsePrefixObjectKey(key(i)); !ok || p != prefixes[i] {
			t.Fatalf("parsePrefixObjectKey(%q) = %v, %v", key(i), p, ok)
		}
	}
	for _, k := range []string{"net-10.0.0.0", "host-10.0.0.0_8", "net6-10.0.0.0_8", "net-x_8", "x", fmt.Sprint("net-10.0.0.0_", 99)} {
		if p, ok := parsePrefixObjectKey(k); ok && prefixObjectKey(p) == k {
			t.Errorf("parsePrefixObjectKey(%q) = %v, a key of another spelling", k, p)
		}
	}
}
