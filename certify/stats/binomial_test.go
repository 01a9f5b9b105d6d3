package stats

import (
	"math"
	"testing"
)

// testdata/binomial_at_least.tsv holds tails summed in 60-digit arithmetic
// by testdata/gen_binomial_tail.py.
func TestBinomialAtLeastMatchesMpmath(t *testing.T) {
	worst := 0.0
	for _, r := range readTSV(t, "binomial_at_least.tsv") {
		k, n, p, want := r.int(t, "k"), r.int(t, "n"), r.float(t, "p"), r.float(t, "at_least")
		got, err := BinomialAtLeast(k, n, p)
		if err != nil {
			t.Fatal(err)
		}
		if !closeEnough(got, want, exactRelTol) {
			t.Errorf("BinomialAtLeast(%d, %d, %v) = %v, mpmath %v (rel %.3g)", k, n, p, got, want, relErr(got, want))
		}
		worst = math.Max(worst, relErr(got, want))
	}
	t.Logf("largest relative difference from mpmath: %.3g", worst)
}

func TestBinomialAtLeastClosedForms(t *testing.T) {
	for _, n := range []int{1, 10, 1000, 10_000_000} {
		for _, p := range []float64{1e-9, 0.002, 0.5, 0.9} {
			for _, c := range []struct {
				k    int
				want float64
			}{
				{-3, 1}, {0, 1}, {n + 1, 0},
				{1, -math.Expm1(float64(n) * math.Log1p(-p))}, // 1 - (1-p)^n
				{n, math.Pow(p, float64(n))},
			} {
				got, err := BinomialAtLeast(c.k, n, p)
				if err != nil || !closeEnough(got, c.want, exactRelTol) {
					t.Errorf("BinomialAtLeast(%d, %d, %v) = %v, %v; want %v", c.k, n, p, got, err, c.want)
				}
			}
		}
	}
	for _, c := range []struct {
		k, n int
		p    float64
		want float64
	}{{1, 5, 0, 0}, {0, 5, 0, 1}, {5, 5, 1, 1}, {6, 5, 1, 0}, {0, 0, 0.5, 1}, {1, 0, 0.5, 0}} {
		if got, err := BinomialAtLeast(c.k, c.n, c.p); err != nil || got != c.want {
			t.Errorf("BinomialAtLeast(%d, %d, %v) = %v, %v; want %v", c.k, c.n, c.p, got, err, c.want)
		}
	}
}

func TestBinomialAtLeastRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		k, n int
		p    float64
	}{{1, -1, 0.5}, {1, 5, -0.1}, {1, 5, 1.5}, {1, 5, math.NaN()}} {
		if _, err := BinomialAtLeast(c.k, c.n, c.p); err == nil {
			t.Errorf("BinomialAtLeast(%d, %d, %v): want an error", c.k, c.n, c.p)
		}
	}
}
