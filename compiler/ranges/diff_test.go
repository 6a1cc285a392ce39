package ranges_test

import (
	"net/netip"
	"strings"
	"testing"

	"go4.org/netipx"

	"github.com/turnwall/turnwall/compiler/ranges"
)

func setOf(prefixes []netip.Prefix) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		b.AddPrefix(p)
	}
	s, err := b.IPSet()
	if err != nil {
		panic(err)
	}
	return s
}

func parseSet(t *testing.T, entries ...string) *netipx.IPSet {
	t.Helper()
	res, err := ranges.Parse([]byte(strings.Join(entries, "\n")+"\n"), ranges.Text, ranges.Filter{})
	if err != nil || res.Errors() > 0 {
		t.Fatalf("%v %v", err, res.Problems)
	}
	return res.Set()
}

func TestCompare(t *testing.T) {
	cases := []struct {
		name     string
		old, new []string
		lines    []string
		summary  string
	}{
		{
			name:    "no change",
			old:     []string{"192.0.2.0/24", "2001:db8::/32"},
			new:     []string{"192.0.2.0/24", "2001:db8::/32"},
			summary: "no change: 2 prefixes unchanged (256 IPv4 addresses, 4294967296 IPv6 /64s)",
		},
		{
			// A prefix split in two, or written as a range, is the same addresses.
			name:    "split and rewritten",
			old:     []string{"15.193.0.0/19", "192.0.2.0-192.0.2.255"},
			new:     []string{"15.193.0.0/20", "15.193.16.0/20", "192.0.2.0/24"},
			summary: "no change: 2 prefixes unchanged (8448 IPv4 addresses)",
		},
		{
			name:    "added and removed",
			old:     []string{"15.193.0.0/19", "18.233.213.128/25", "52.55.191.224/27"},
			new:     []string{"15.193.0.0/19", "18.233.213.128/25", "35.171.74.0/26", "2600:1f18::/48"},
			lines:   []string{"+ 35.171.74.0/26", "- 52.55.191.224/27", "+ 2600:1f18::/48"},
			summary: "2 prefixes added (64 IPv4 addresses, 65536 IPv6 /64s), 1 prefix removed (32 IPv4 addresses), 2 prefixes unchanged",
		},
		{
			// A range that grows: only the new part is added, aggregated.
			name:    "grown",
			old:     []string{"192.0.2.0/25"},
			new:     []string{"192.0.2.0/24", "198.51.100.1"},
			lines:   []string{"+ 192.0.2.128/25", "+ 198.51.100.1/32"},
			summary: "2 prefixes added (129 IPv4 addresses), 0 prefixes removed (0 IPv4 addresses), 1 prefix unchanged",
		},
		{
			name:    "everything removed",
			old:     []string{"2001:db8::1"},
			new:     nil,
			lines:   []string{"- 2001:db8::1/128"},
			summary: "0 prefixes added (0 IPv4 addresses), 1 prefix removed (less than one IPv6 /64), 0 prefixes unchanged",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var oldSet, newSet *netipx.IPSet
			if c.old == nil {
				oldSet = setOf(nil)
			} else {
				oldSet = parseSet(t, c.old...)
			}
			if c.new == nil {
				newSet = setOf(nil)
			} else {
				newSet = parseSet(t, c.new...)
			}
			d := ranges.Compare(oldSet, newSet)
			if d.Changed() != (len(c.lines) > 0) {
				t.Errorf("Changed() = %v", d.Changed())
			}
			if got := strings.Join(d.Lines(), "\n"); got != strings.Join(c.lines, "\n") {
				t.Errorf("lines\n%s\nwant\n%s", got, strings.Join(c.lines, "\n"))
			}
			if got := d.Summary(); got != c.summary {
				t.Errorf("summary\n got %s\nwant %s", got, c.summary)
			}
			// old - removed + added = new, exactly.
			var b netipx.IPSetBuilder
			b.AddSet(oldSet)
			for _, p := range d.Removed {
				b.RemovePrefix(p)
			}
			for _, p := range d.Added {
				b.AddPrefix(p)
			}
			if s, _ := b.IPSet(); !s.Equal(newSet) {
				t.Error("old - removed + added != new")
			}
		})
	}
}

// The two AWS fixtures are two publications of the same file: filtered for
// Amazon Connect in us-east-1, one prefix retired, one added, and the GLOBAL
// /19 split in two /20s, which is no change.
func TestCompareAWSPublications(t *testing.T) {
	f := ranges.Filter{Service: []string{"AMAZON_CONNECT"}, Region: []string{"us-east-1", "GLOBAL"}}
	old, err := ranges.Parse(readFixture(t, "aws-ip-ranges.json"), "", f)
	if err != nil {
		t.Fatal(err)
	}
	later, err := ranges.Parse(readFixture(t, "aws-ip-ranges-later.json"), "", f)
	if err != nil {
		t.Fatal(err)
	}
	d := ranges.Compare(old.Set(), later.Set())
	want := "+ 35.171.74.0/26\n- 52.55.191.224/27"
	if got := strings.Join(d.Lines(), "\n"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
