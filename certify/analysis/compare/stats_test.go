package compare

import (
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"

	"github.com/smoothadv/smoothadv/certify/analysis/internal/reftest"
	"github.com/smoothadv/smoothadv/internal/tsvtest"
)

// readStats reads one of shared/reference/stats/*.tsv as float columns.
func readStats(t *testing.T, name string) [][]float64 {
	t.Helper()
	_, fields := tsvtest.Read(t, filepath.Join(reftest.Dir(t), "stats", name))
	var rows [][]float64
	for _, f := range fields {
		var row []float64
		for _, s := range f {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// TestClopperPearsonAgainstStatsmodels: CERTIFY's one-sided lower bound at
// alpha is the lower end of the two-sided interval at confidence 1 - 2 alpha;
// the reference values are statsmodels 0.13's.
func TestClopperPearsonAgainstStatsmodels(t *testing.T) {
	for _, row := range readStats(t, "clopper_pearson_lower.tsv") {
		k, n, alpha, want := int(row[0]), int(row[1]), row[2], row[3]
		lo, _, err := ClopperPearson(k, n, 1-2*alpha)
		if err != nil {
			t.Fatal(err)
		}
		if !scalar.EqualWithinAbsOrRel(lo, want, 1e-12, 1e-9) {
			t.Errorf("lower bound for %d of %d at alpha %v: %v, statsmodels %v", k, n, alpha, lo, want)
		}
	}
	// statsmodels proportion_confint(k, 10000 or 10, alpha=0.05, method="beta").
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{{7680, 10000, 0.7595994388574248, 0.7762442085420687}, {0, 10, 0, 0.30849710781876083}, {10, 10, 0.6915028921812392, 1}} {
		lo, hi, err := ClopperPearson(c.k, c.n, 0.95)
		if err != nil || !scalar.EqualWithinAbsOrRel(lo, c.lo, 1e-12, 1e-9) || !scalar.EqualWithinAbsOrRel(hi, c.hi, 1e-12, 1e-9) {
			t.Errorf("interval for %d of %d: [%v, %v] %v, statsmodels [%v, %v]", c.k, c.n, lo, hi, err, c.lo, c.hi)
		}
	}
	for _, bad := range [][3]float64{{-1, 10, 0.95}, {11, 10, 0.95}, {0, 0, 0.95}, {1, 10, 1}} {
		if _, _, err := ClopperPearson(int(bad[0]), int(bad[1]), bad[2]); err == nil {
			t.Errorf("ClopperPearson%v accepted", bad)
		}
	}
}

// TestMcNemarAgainstScipy: McNemar's exact test of b against c is scipy
// 1.10's two-sided binom_test of b successes in b+c trials at p = 1/2.
func TestMcNemarAgainstScipy(t *testing.T) {
	for _, row := range readStats(t, "binom_test_two_sided.tsv") {
		k, n, p, want := int(row[0]), int(row[1]), row[2], row[3]
		if p != 0.5 {
			continue
		}
		// Below the smallest normal float both have underflowed and only
		// noise is left (scipy prints 1.5e-323 where the truth is 2^-99999).
		got := McNemar(k, n-k)
		if want < 0x1p-1022 && got < 0x1p-1022 {
			continue
		}
		if math.Abs(got/want-1) > 1e-9 {
			t.Errorf("McNemar(%d, %d) = %v, scipy binom_test %v", k, n-k, got, want)
		}
	}
}

// TestHolm against statsmodels 0.13: multipletests(p, method="holm")[1].
func TestHolm(t *testing.T) {
	got := Holm([]float64{0.01, 0.04, 0.03, 0.2, 0.005, 0.5})
	want := []float64{0.05, 0.12, 0.12, 0.4, 0.03, 0.5}
	for i := range want {
		if !scalar.EqualWithinAbsOrRel(got[i], want[i], 1e-15, 1e-12) {
			t.Errorf("Holm = %v, statsmodels %v", got, want)
			break
		}
	}
}
