package stats

import (
	"math"
	"testing"
)

func TestClopperPearsonLowerMatchesStatsmodels(t *testing.T) {
	worst := 0.0
	for _, r := range readTSV(t, "clopper_pearson_lower.tsv") {
		nA, n, alpha := r.int(t, "nA"), r.int(t, "N"), r.float(t, "alpha")
		want := r.float(t, "lower")
		got, err := ClopperPearsonLower(nA, n, alpha)
		if err != nil {
			t.Fatalf("nA=%d n=%d alpha=%v: %v", nA, n, alpha, err)
		}
		switch nA {
		case 0:
			if got != 0 || want != 0 {
				t.Errorf("nA=0 n=%d alpha=%v: got %v, statsmodels %v; want 0", n, alpha, got, want)
			}
			continue
		case n:
			// The closed form alpha^(1/n) rounds 1/n first, so it is a
			// couple of ulps off the true root, as is statsmodels'
			// (mpmath: both within 2.5 ulps for 1e-10 <= alpha <= 0.25).
			if e := relErr(got, want); e > 1e-15 {
				t.Errorf("nA=n=%d alpha=%v: got %v, statsmodels %v (rel %.3g)", n, alpha, got, want, e)
			}
			continue
		}
		if e := relErr(got, want); e > scipyRelTol {
			t.Errorf("nA=%d n=%d alpha=%v: got %v, statsmodels %v (rel %.3g)", nA, n, alpha, got, want, e)
		} else {
			worst = math.Max(worst, e)
		}
	}
	t.Logf("largest relative difference from statsmodels: %.3g", worst)
}

// With one success the bound solves 1 - (1-x)^n = alpha, so
// x = 1 - (1-alpha)^(1/n) = -expm1(log1p(-alpha)/n).
func TestClopperPearsonLowerOneSuccessClosedForm(t *testing.T) {
	for _, n := range []int{2, 10, 1000, 123457, 10_000_000, 1_000_000_000} {
		for _, alpha := range []float64{0.4, 1e-3, 1e-10} {
			want := -math.Expm1(math.Log1p(-alpha) / float64(n))
			got, err := ClopperPearsonLower(1, n, alpha)
			if err != nil || relErr(got, want) > exactRelTol {
				t.Errorf("ClopperPearsonLower(1, %d, %v) = %v, %v; want %v", n, alpha, got, err, want)
			}
		}
	}
}

// The bound rises with the number of successes and with alpha.
func TestClopperPearsonLowerMonotone(t *testing.T) {
	const n = 100_000
	prev := -1.0
	for nA := 0; nA <= n; nA += 997 {
		lo, err := ClopperPearsonLower(nA, n, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		looser, err := ClopperPearsonLower(nA, n, 1e-2)
		if err != nil {
			t.Fatal(err)
		}
		if lo <= prev && nA > 0 || looser < lo {
			t.Fatalf("nA=%d: bound %v (previous %v), at alpha 1e-2 %v", nA, lo, prev, looser)
		}
		prev = lo
	}
}

func TestClopperPearsonLowerRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		nA, n int
		alpha float64
	}{{0, 0, 0.1}, {-1, 5, 0.1}, {6, 5, 0.1}, {1, 5, 0}, {1, 5, 1}, {1, 5, math.NaN()}} {
		if _, err := ClopperPearsonLower(tt.nA, tt.n, tt.alpha); err == nil {
			t.Errorf("ClopperPearsonLower(%d, %d, %v): want an error", tt.nA, tt.n, tt.alpha)
		}
	}
}

func BenchmarkClopperPearsonLower1e5(b *testing.B) {
	for b.Loop() {
		if _, err := ClopperPearsonLower(99_000, 100_000, 1e-3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClopperPearsonLower1e7(b *testing.B) {
	for b.Loop() {
		if _, err := ClopperPearsonLower(6_000_000, 10_000_000, 1e-3); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClopperPearsonUpperMatchesStatsmodels(t *testing.T) {
	worst := 0.0
	for _, r := range readTSV(t, "clopper_pearson_upper.tsv") {
		nA, n, alpha := r.int(t, "nA"), r.int(t, "N"), r.float(t, "alpha")
		want := r.float(t, "upper")
		got, err := ClopperPearsonUpper(nA, n, alpha)
		if err != nil {
			t.Fatalf("nA=%d n=%d alpha=%v: %v", nA, n, alpha, err)
		}
		if nA == n && (got != 1 || want != 1) {
			t.Errorf("nA=n=%d alpha=%v: got %v, statsmodels %v; want 1", n, alpha, got, want)
		}
		if e := relErr(got, want); e > scipyRelTol {
			t.Errorf("nA=%d n=%d alpha=%v: got %v, statsmodels %v (rel %.3g)", nA, n, alpha, got, want, e)
		} else {
			worst = math.Max(worst, e)
		}
	}
	t.Logf("largest relative difference from statsmodels: %.3g", worst)
}

func TestClopperPearsonUpperRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		nA, n int
		alpha float64
	}{{0, 0, 0.1}, {-1, 5, 0.1}, {6, 5, 0.1}, {0, 5, 0}, {1, 5, 1}, {0, 5, math.NaN()}} {
		if _, err := ClopperPearsonUpper(tt.nA, tt.n, tt.alpha); err == nil {
			t.Errorf("ClopperPearsonUpper(%d, %d, %v): want an error", tt.nA, tt.n, tt.alpha)
		}
	}
}
