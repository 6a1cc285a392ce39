package verify

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestSampleRanges(t *testing.T) {
	prefixes := func(n int) []netip.Prefix {
		var out []netip.Prefix
		for i := range n {
			out = append(out, netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)))
		}
		return out
	}
	for _, tc := range []struct {
		n, want int
	}{{0, 0}, {1, 0}, {2, 1}, {8, 7}, {9, 7}, {1000, 7}} {
		ps := prefixes(tc.n)
		got := sampleRanges(ps)
		if len(got) != tc.want {
			t.Errorf("%d ranges: %d sampled, want %d", tc.n, len(got), tc.want)
			continue
		}
		if tc.n > 1 && got[len(got)-1] != ps[len(ps)-1] {
			t.Errorf("%d ranges: the last range %s is not sampled: %v", tc.n, ps[len(ps)-1], got)
		}
		if tc.n == 0 {
			continue
		}
		seen := map[netip.Prefix]bool{ps[0]: true}
		for _, p := range got {
			if seen[p] {
				t.Errorf("%d ranges: %s sampled twice or is the first", tc.n, p)
			}
			seen[p] = true
		}
	}
}
