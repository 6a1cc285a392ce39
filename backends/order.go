package backends

// LongestIncreasing returns the indexes of a longest strictly increasing
// subsequence of xs, in order (patience sorting, O(n log n)). Change
// scripts use it to keep the longest run of kept entries in place and move
// only the others.
func LongestIncreasing(xs []int) []int {
	var tails []int // index into xs of the smallest tail of a run of each length
	prev := make([]int, len(xs))
	for i, x := range xs {
		lo, hi := 0, len(tails)
		for lo < hi {
			mid := (lo + hi) / 2
			if xs[tails[mid]] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		prev[i] = -1
		if lo > 0 {
			prev[i] = tails[lo-1]
		}
		if lo == len(tails) {
			tails = append(tails, i)
		} else {
			tails[lo] = i
		}
	}
	if len(tails) == 0 {
		return nil
	}
	out := make([]int, len(tails))
	for i, k := len(tails)-1, tails[len(tails)-1]; i >= 0; i, k = i-1, prev[k] {
		out[i] = k
	}
	return out
}
