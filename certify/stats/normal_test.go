package stats

import (
	"math"
	"testing"
)

func TestNormalQuantileMatchesScipy(t *testing.T) {
	worst := 0.0
	for _, r := range readTSV(t, "normal_quantile.tsv") {
		p, want := r.float(t, "p"), r.float(t, "quantile")
		got, err := NormalQuantile(p)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(got, want); e > scipyRelTol && !(want == 0 && math.Abs(got) < 1e-300) {
			t.Errorf("NormalQuantile(%v) = %v, scipy %v (rel %.3g)", p, got, want, e)
		} else if want != 0 {
			worst = math.Max(worst, e)
		}
	}
	t.Logf("largest relative difference from scipy: %.3g", worst)
}

func TestNormalQuantileEdges(t *testing.T) {
	if q, err := NormalQuantile(0); err != nil || !math.IsInf(q, -1) {
		t.Errorf("NormalQuantile(0) = %v, %v; want -Inf", q, err)
	}
	if q, err := NormalQuantile(1); err != nil || !math.IsInf(q, 1) {
		t.Errorf("NormalQuantile(1) = %v, %v; want +Inf", q, err)
	}
	for _, p := range []float64{-0.1, 1.1, math.NaN()} {
		if _, err := NormalQuantile(p); err == nil {
			t.Errorf("NormalQuantile(%v): want an error", p)
		}
	}
}
