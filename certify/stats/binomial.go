// Package stats holds the statistics that CERTIFY and PREDICT rely on: the
// one-sided Clopper-Pearson lower bound, scipy's two-sided binomial test and
// the standard normal quantile, and the binomial upper tail that the
// comparison of logs uses, computed to near double precision for sample
// sizes up to 10^7 and beyond.
package stats

import (
	"fmt"
	"math"
)

// binom is a Binomial(n, p) distribution with q = 1 - p and the logarithms of
// p and q precomputed. It keeps p and q as separate fields so that the
// mirror image Binomial(n, q) is an exact swap: the upper tail of one is the
// lower tail of the other, and one summation routine serves both.
type binom struct {
	n          int
	p, q       float64
	logP, logQ float64
}

func newBinom(n int, p float64) binom {
	// log1p keeps log q accurate when p is tiny, where 1-p has lost p's digits.
	return binom{n: n, p: p, q: 1 - p, logP: math.Log(p), logQ: math.Log1p(-p)}
}

func (b binom) mirror() binom {
	return binom{n: b.n, p: b.q, q: b.p, logP: b.logQ, logQ: b.logP}
}

// logPMF returns log P(X = k) for 0 <= k <= n and 0 < p < 1.
//
// It uses Loader's saddle-point form (C. Loader, "Fast and accurate
// computation of binomial probabilities", 2000): the log probability is
// assembled from Stirling-series remainders and deviance terms that are each
// small and accurate, instead of from differences of log-gamma values of
// size n log n, which for n = 10^7 would leave only about 8 correct digits.
func (b binom) logPMF(k int) float64 {
	switch k {
	case 0:
		return float64(b.n) * b.logQ
	case b.n:
		return float64(b.n) * b.logP
	}
	n, x := float64(b.n), float64(k)
	lc := stirlerr(n) - stirlerr(x) - stirlerr(n-x) - bd0(x, n*b.p) - bd0(n-x, n*b.q)
	// log(2 pi x (n-x) / n) from exact integers: 1 - x/n would lose digits
	// to rounding when x is close to n.
	lf := math.Log(2*math.Pi) + math.Log(x) + math.Log(n-x) - math.Log(n)
	return lc - 0.5*lf
}

// pmf returns P(X = k) as a float64, underflowing to subnormals and zero the
// way scipy's value does.
func (b binom) pmf(k int) float64 {
	return math.Exp(b.logPMF(k))
}

// logLowerTail returns log P(X <= k) for 0 <= k <= n.
func (b binom) logLowerTail(k int) float64 {
	if k >= b.n {
		return 0
	}
	// Summing down from k is well conditioned only if the terms fall as j
	// decreases, that is, at or below the mode.
	if float64(k) <= float64(b.n+1)*b.p {
		return b.logPMF(k) + math.Log(b.lowerSumRatio(k))
	}
	return math.Log1p(-math.Exp(b.mirror().logLowerTail(b.n - k - 1)))
}

// logUpperTail returns log P(X >= k) for 0 <= k <= n.
func (b binom) logUpperTail(k int) float64 {
	return b.mirror().logLowerTail(b.n - k)
}

// lowerSumRatio returns P(X <= k) / P(X = k) for k at or below the mode,
// summing the terms downwards from k with the ratio
// P(X = j-1) / P(X = j) = j q / ((n-j+1) p), which is below 1 and shrinks as
// j falls. The sum stops once the remainder, bounded by a geometric series
// in the current ratio, is below 1e-17 of the total, so its cost is about
// a few standard deviations' worth of terms: O(sqrt(n)), not O(n).
func (b binom) lowerSumRatio(k int) float64 {
	sum, term := 1.0, 1.0
	for j := k; j > 0; j-- {
		r := float64(j) * b.q / (float64(b.n-j+1) * b.p)
		term *= r
		sum += term
		if r < 1 && term*r < 1e-17*sum*(1-r) {
			break
		}
	}
	return sum
}

// stirlerr returns log(x!) - log(sqrt(2 pi x) (x/e)^x) for x >= 1.
func stirlerr(x float64) float64 {
	if x <= 15 {
		// The absolute error of the direct formula is a few ulps of
		// lgamma(16) ~ 28, about 1e-14, which is what matters inside exp.
		lg, _ := math.Lgamma(x + 1)
		return lg - (x+0.5)*math.Log(x) + x - 0.5*math.Log(2*math.Pi)
	}
	// Stirling's series; the first omitted term, 691/(360360 x^11), is
	// below 2e-16 for x > 15.
	x2 := x * x
	return (1.0/12 - (1.0/360-(1.0/1260-(1.0/1680-1.0/(1188*x2))/x2)/x2)/x2) / x
}

// bd0 returns the deviance term x log(x/m) + m - x for x > 0, m > 0.
func bd0(x, m float64) float64 {
	if math.Abs(x-m) >= 0.1*(x+m) {
		return x*math.Log(x/m) + m - x
	}
	// Near x = m the direct formula cancels; with v = (x-m)/(x+m) it equals
	// (x-m) v + 2x (v^3/3 + v^5/5 + ...), a series in v^2 <= 0.01.
	v := (x - m) / (x + m)
	sum := (x - m) * v
	ej := 2 * x * v
	v2 := v * v
	for j := 3; j < 1000; j += 2 {
		ej *= v2
		next := sum + ej/float64(j)
		if next == sum {
			break
		}
		sum = next
	}
	return sum
}

// BinomialAtLeast returns P(X >= k) for X ~ Binomial(n, p): 1 for k <= 0
// and 0 for k > n. The tail is summed outward from k to near double
// precision, also far into the tail.
//
// n >= 0 and 0 <= p <= 1, otherwise an error is returned.
func BinomialAtLeast(k, n int, p float64) (float64, error) {
	if n < 0 {
		return 0, fmt.Errorf("binomial tail: need n >= 0, got %d", n)
	}
	if !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("binomial tail: need 0 <= p <= 1, got %v", p)
	}
	switch {
	case k <= 0:
		return 1, nil
	case k > n, p == 0:
		return 0, nil
	case p == 1:
		return 1, nil
	}
	return math.Exp(newBinom(n, p).logUpperTail(k)), nil
}
