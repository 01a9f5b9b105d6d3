package compare

import (
	"fmt"
	"math"
	"sort"

	"github.com/smoothadv/smoothadv/certify/stats"
)

// ClopperPearson is the exact two-sided confidence interval, at confidence
// level conf, for a binomial proportion with k successes in n trials: the
// alpha/2 quantile of Beta(k, n-k+1) and the 1-alpha/2 quantile of
// Beta(k+1, n-k), alpha = 1-conf (statsmodels' proportion_confint with
// method="beta"). The ends are 0 at k = 0 and 1 at k = n, where the Beta
// parameters would be 0. Both ends are CERTIFY's one-sided bound
// (stats.ClopperPearsonLower) at alpha/2, the upper one by symmetry as
// 1 - the lower bound for the n-k failures.
func ClopperPearson(k, n int, conf float64) (lo, hi float64, err error) {
	if n <= 0 || k < 0 || k > n {
		return 0, 0, fmt.Errorf("clopper-pearson: %d successes in %d trials", k, n)
	}
	if !(conf > 0 && conf < 1) {
		return 0, 0, fmt.Errorf("clopper-pearson: confidence %v not in (0, 1)", conf)
	}
	alpha := (1 - conf) / 2
	if lo, err = stats.ClopperPearsonLower(k, n, alpha); err != nil {
		return 0, 0, err
	}
	failures, err := stats.ClopperPearsonLower(n-k, n, alpha)
	if err != nil {
		return 0, 0, err
	}
	return lo, 1 - failures, nil
}

// McNemar is the exact two-sided McNemar test of b pairs (1, 0) against c
// pairs (0, 1): under the null of a symmetric table, b ~ Binomial(b+c, 1/2),
// and the p-value is the probability of a split at least as uneven,
// min(1, 2 P(X <= min(b, c))). This equals scipy's two-sided binom_test at
// p = 1/2 (stats.BinomTestTwoSided), except that a p-value below the
// smallest float64 is 0 here, where scipy's summation leaves a few
// subnormal units of noise. b and c must not be negative.
func McNemar(b, c int) float64 {
	n, m := b+c, min(b, c)
	if n == 0 {
		return 1
	}
	// P(X <= m) = P(X >= n-m) by symmetry.
	tail, err := stats.BinomialAtLeast(n-m, n, 0.5)
	if err != nil {
		panic(fmt.Sprintf("compare: McNemar(%d, %d): %v", b, c, err))
	}
	return math.Min(1, 2*tail)
}

// Holm adjusts p-values for testing them all at once (Holm 1979): the i-th
// smallest of m becomes max over j <= i of min(1, (m-j+1) p_(j)). Rejecting
// where the adjusted value is below a level controls the chance of any false
// rejection at that level.
func Holm(p []float64) []float64 {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return p[order[i]] < p[order[j]] })
	adj := make([]float64, len(p))
	running := 0.0
	for rank, i := range order {
		running = math.Max(running, math.Min(1, float64(len(p)-rank)*p[i]))
		adj[i] = running
	}
	return adj
}
