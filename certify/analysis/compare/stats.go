package compare

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// ClopperPearson is the exact two-sided confidence interval, at confidence
// level conf, for a binomial proportion with k successes in n trials: the
// alpha/2 quantile of Beta(k, n-k+1) and the 1-alpha/2 quantile of
// Beta(k+1, n-k), alpha = 1-conf (statsmodels' proportion_confint with
// method="beta"). The ends are 0 at k = 0 and 1 at k = n, where the Beta
// parameters would be 0.
func ClopperPearson(k, n int, conf float64) (lo, hi float64, err error) {
	if n <= 0 || k < 0 || k > n {
		return 0, 0, fmt.Errorf("clopper-pearson: %d successes in %d trials", k, n)
	}
	if !(conf > 0 && conf < 1) {
		return 0, 0, fmt.Errorf("clopper-pearson: confidence %v not in (0, 1)", conf)
	}
	alpha := 1 - conf
	lo, hi = 0, 1
	if k > 0 {
		lo = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(alpha / 2)
	}
	if k < n {
		hi = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(1 - alpha/2)
	}
	return lo, hi, nil
}

// binomialAtLeast is P(X >= k) for X ~ Binomial(n, p), through the identity
// P(X >= k) = I_p(k, n-k+1) (the regularized incomplete beta function),
// which stays accurate far into the tail.
func binomialAtLeast(k, n int, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	return mathext.RegIncBeta(float64(k), float64(n-k+1), p)
}

// McNemar is the exact two-sided McNemar test of b pairs (1, 0) against c
// pairs (0, 1): under the null of a symmetric table, b ~ Binomial(b+c, 1/2),
// and the p-value is the probability of a split at least as uneven,
// min(1, 2 P(X <= min(b, c))). This equals scipy's two-sided binom_test at
// p = 1/2.
func McNemar(b, c int) float64 {
	n, m := b+c, min(b, c)
	if n == 0 {
		return 1
	}
	return math.Min(1, 2*binomialAtLeast(n-m, n, 0.5)) // P(X <= m) = P(X >= n-m) by symmetry
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
