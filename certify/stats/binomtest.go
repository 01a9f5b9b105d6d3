package stats

import (
	"fmt"
	"math"
	"sort"
)

// binomTestRelErr is scipy's relative tolerance for "no more likely than the
// observed outcome".
const binomTestRelErr = 1 + 1e-7

// BinomTestTwoSided returns the p-value of scipy 1.10's
// scipy.stats.binom_test(k, n, p) with the default two-sided alternative:
// the total probability under Binomial(n, p) of the outcomes whose
// probability is at most (1 + 1e-7) times that of k.
//
// It follows scipy's steps exactly. With d = pmf(k):
//   - if k == p*n the p-value is 1;
//   - if k < p*n, y counts the outcomes in [ceil(p*n), n] with
//     pmf <= d*(1+1e-7), and the p-value is cdf(k) + sf(n-y);
//   - otherwise y counts the outcomes in [0, floor(p*n)] with
//     pmf <= d*(1+1e-7), and the p-value is cdf(y-1) + sf(k-1);
//
// capped at 1. The pmf falls monotonically away from the mode over each of
// those ranges, so the counted outcomes form the far end of the range, and a
// binary search finds it in O(log n) pmf evaluations where scipy evaluates
// all of them. The tails are summed outward from their inner end in
// O(sqrt(n)) terms. Probabilities below the smallest normal float64 round to
// subnormals as scipy's do, so p-values of order 1e-320 carry only a few
// significant bits (in scipy too).
//
// n >= 0, 0 <= k <= n and 0 <= p <= 1, otherwise an error is returned.
func BinomTestTwoSided(k, n int, p float64) (float64, error) {
	if n < 0 || k < 0 || k > n {
		return 0, fmt.Errorf("binomial test: need 0 <= k <= n, got k=%d n=%d", k, n)
	}
	if !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("binomial test: need 0 <= p <= 1, got p=%v", p)
	}
	pn := p * float64(n)
	x := float64(k)
	if x == pn {
		return 1, nil
	}
	if p == 0 || p == 1 {
		// All mass sits on pn, and k has probability 0 like every other outcome
		// that scipy then adds up: none lies in the tails it sums.
		return 0, nil
	}
	b := newBinom(n, p)
	threshold := b.pmf(k) * binomTestRelErr
	var lowEnd, highStart int // p-value = P(X <= lowEnd) + P(X >= highStart)
	if x < pn {
		lo := int(math.Ceil(pn))
		// First j in [lo, n] with pmf(j) <= threshold; n+1 when none.
		highStart = lo + sort.Search(n-lo+1, func(i int) bool { return b.pmf(lo+i) <= threshold })
		lowEnd = k
	} else {
		hi := int(math.Floor(pn))
		// Last j in [0, hi] with pmf(j) <= threshold; -1 when none.
		lowEnd = hi - sort.Search(hi+1, func(i int) bool { return b.pmf(hi-i) <= threshold })
		highStart = k
	}
	pval := b.cdf(lowEnd) + b.sf(highStart-1)
	return math.Min(1, pval), nil
}

// cdf returns P(X <= k) as a float64; 0 for k < 0.
func (b binom) cdf(k int) float64 {
	if k < 0 {
		return 0
	}
	return math.Exp(b.logLowerTail(k))
}

// sf returns P(X > k) as a float64; 0 for k >= n.
func (b binom) sf(k int) float64 {
	if k >= b.n {
		return 0
	}
	return math.Exp(b.logUpperTail(k + 1))
}
