package naming

import (
	"net/netip"
	"strings"
	"testing"
)

func testSpelling() Spelling {
	return Spelling{
		Other: func(kind, key string) string { return key + "#" + kind },
		Key: func(b []byte, p netip.Prefix) []byte {
			start := len(b)
			b = p.AppendTo(b)
			for i := start; i < len(b); i++ {
				if b[i] == '/' {
					b[i] = '_'
				}
			}
			return b
		},
		Parse: func(key string) (netip.Prefix, bool) {
			p, err := netip.ParsePrefix(strings.ReplaceAll(key, "_", "/"))
			return p, err == nil
		},
	}
}

// TestNamespace: one kind gets one name per key, another kind with the same
// key another name, and objects named after prefixes in one go get the
// names they would get one by one, with other kinds' keys taken before and
// after.
func TestNamespace(t *testing.T) {
	rules := Rules{MaxLen: 24, Allowed: ASCIIWord("._-"), First: AlphaNum, Replace: '_', Reserved: []string{"any"}, Prefix: "tw-"}
	ns := NewNamespace(rules, testSpelling())
	a := ns.Name("group", "stun.example.com")
	if a != "tw-stun.example.com" || ns.Name("group", "stun.example.com") != a {
		t.Fatalf("group name %q", a)
	}
	if b := ns.Name("object", "stun.example.com"); b == a || !strings.HasPrefix(b, "tw-stun.example") || ns.Name("object", "stun.example.com") != b {
		t.Fatalf("object with a group's key: %q", b)
	}
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
	}
	one := NewNamespace(rules, testSpelling())
	bulk := NewNamespace(rules, testSpelling())
	for _, n := range []*Namespace{one, bulk} {
		n.Name("group", "192.0.2.0_24") // a group whose key is a prefix's
	}
	var want []string
	for _, p := range prefixes {
		want = append(want, one.Name("object", string(testSpelling().Key(nil, p))))
	}
	got := bulk.NameValues("object", prefixes)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %v: %q in one go, %q one by one", prefixes[i], got[i], want[i])
		}
	}
	if got[1] == "tw-192.0.2.0_24" {
		t.Errorf("the object took the group's name")
	}
	for _, n := range []*Namespace{one, bulk} {
		if g := n.Name("group", "198.51.100.0_24"); g == "tw-198.51.100.0_24" {
			t.Errorf("a group took an object's name")
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a second NameValues did not panic")
		}
	}()
	bulk.NameValues("object", prefixes)
}
