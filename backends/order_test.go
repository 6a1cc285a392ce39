package backends

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLongestIncreasing: the result is strictly increasing in xs, in index
// order, and as long as the longest such subsequence (checked against a
// quadratic dynamic programme on random inputs).
func TestLongestIncreasing(t *testing.T) {
	for _, tc := range []struct {
		xs   []int
		want []int
	}{
		{nil, nil},
		{[]int{5}, []int{0}},
		{[]int{3, 2, 1}, []int{2}},
		{[]int{0, 1, 2}, []int{0, 1, 2}},
		{[]int{2, 0, 1, 3}, []int{1, 2, 3}},
	} {
		if got := LongestIncreasing(tc.xs); !slices.Equal(got, tc.want) {
			t.Errorf("LongestIncreasing(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		xs := make([]int, rng.IntN(40))
		for i := range xs {
			xs[i] = rng.IntN(30)
		}
		got := LongestIncreasing(xs)
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] || xs[got[i]] <= xs[got[i-1]] {
				t.Fatalf("%v: %v is not an increasing subsequence", xs, got)
			}
		}
		best := 0
		dp := make([]int, len(xs))
		for i := range xs {
			dp[i] = 1
			for j := range i {
				if xs[j] < xs[i] {
					dp[i] = max(dp[i], dp[j]+1)
				}
			}
			best = max(best, dp[i])
		}
		if len(got) != best {
			t.Fatalf("%v: length %d, want %d", xs, len(got), best)
		}
	}
}
