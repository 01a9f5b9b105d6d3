package stats

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/smoothadv/smoothadv/internal/tsvtest"
)

// Reference vectors from scipy 1.10 and statsmodels 0.13: the project's
// shared/reference/stats, and more in testdata, written by testdata/gen.py.
var vectorDirs = []string{"../../../shared/reference/stats", "testdata"}

// Tolerances. scipyRelTol is the project's requirement against scipy and
// statsmodels; exactRelTol applies against exact rational or closed-form
// values, which the code reaches to about 1e-13.
const (
	scipyRelTol = 1e-9
	exactRelTol = 1e-12
	// Below the smallest normal float64 a value has fewer than 53 bits, down
	// to one at 4.9e-324, so near there only an absolute tolerance means
	// anything.
	// Ours and scipy's p-values of order 1e-323 differ by up to 2 units of
	// 4.9e-324: both add up tail probabilities that are themselves
	// subnormal, and the outcome whose pmf first rounds to zero (which
	// decides the tail boundary when the observed pmf is zero) can differ
	// by one between the two pmf implementations.
	subnormalAbsTol = 4 * 4.9406564584124654e-324
)

// row is one line of a TSV file, by column name.
type row map[string]string

// readTSV returns the rows of every file called name in vectorDirs, skipping
// '#' comment lines; the first other line names the columns.
func readTSV(t *testing.T, name string) []row {
	t.Helper()
	var rows []row
	for _, dir := range vectorDirs {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); os.IsNotExist(err) && dir != "testdata" {
			t.Logf("skipping missing %s", path)
			continue
		}
		header, fields := tsvtest.Read(t, path)
		for _, f := range fields {
			r := row{}
			for i, h := range header {
				r[h] = f[i]
			}
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no rows for %s", name)
	}
	return rows
}

func (r row) int(t *testing.T, col string) int {
	t.Helper()
	v, err := strconv.Atoi(r[col])
	if err != nil {
		t.Fatalf("column %s: %v", col, err)
	}
	return v
}

func (r row) float(t *testing.T, col string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(r[col], 64)
	if err != nil {
		t.Fatalf("column %s: %v", col, err)
	}
	return v
}

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

// closeEnough reports whether got is within relTol of want, or within
// subnormalAbsTol of it.
func closeEnough(got, want, relTol float64) bool {
	return relErr(got, want) <= relTol || math.Abs(got-want) <= subnormalAbsTol
}
