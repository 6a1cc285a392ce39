package fortios

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends/backendtest"
)

// nameValues gives the names that naming each prefix's object in turn gives,
// also when groups named before it hold its keys or names, when names after
// it collide with them, and when a key is too long to be a name as it is.
func TestNameValuesAsOneByOne(t *testing.T) {
	var prefixes []netip.Prefix
	for i := range 300 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, byte(i), 0xdd, 0xdd, 0xee, 0xee, 0xff, byte(i)})
		prefixes = append(prefixes, netip.PrefixFrom(a, 64+i%65).Masked())
	}
	prefixes = sortedPrefixes(prefixes)
	key := func(i int) string { return prefixKey(prefixes[i]) }
	before := [][2]string{{"group", key(3)}, {"group", strings.ToUpper(key(5))}, {"feed", "agents.x"}}
	after := [][2]string{{"group", key(7)}, {"subnet", key(9)}, {"fqdn", "stun.example.net"}, {"group", strings.ToUpper(key(13))}}
	for _, max := range []int{objectNameMax, 40} {
		t.Run(fmt.Sprintf("max=%d", max), func(t *testing.T) {
			want := backendtest.NameValuesAsOneByOne(t, func() *namespace { return newNamespace("tw6-", max) },
				"subnet", prefixes, prefixKey, before, after)
			if max == 40 && !slices.ContainsFunc(want, func(n string) bool { return len(n) == 40 }) {
				t.Errorf("no key was too long: the test does not reach the namer's own path")
			}
		})
	}
	for i := range prefixes {
		if p, ok := parsePrefixKey(key(i)); !ok || p != prefixes[i] {
			t.Fatalf("parsePrefixKey(%q) = %v, %v", key(i), p, ok)
		}
	}
}

// fnv32a is hash/fnv's FNV-1a: member lines split where they always did.
func TestFNV32a(t *testing.T) {
	for _, s := range []string{"", "tw-20.0.0.0_24", "tw6-2001-db8--_32", "\xff\x00x"} {
		h := fnv.New32a()
		h.Write([]byte(s))
		if got, want := fnv32a(s), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %#x, want %#x", s, got, want)
		}
	}
}
