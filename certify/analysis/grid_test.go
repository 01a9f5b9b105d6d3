package analysis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/tsvtest"
)

// TestRadiiMatchNumpy compares with numpy.arange(start, stop + step, step)
// as numpy itself computed it (testdata/gen_radii.py wrote
// testdata/radii.tsv), value for value, bit for bit.
func TestRadiiMatchNumpy(t *testing.T) {
	_, rows := tsvtest.Read(t, "testdata/radii.tsv")
	for _, row := range rows {
		grid, values := row[0], row[1]
		var want []float64
		for _, h := range strings.Fields(values) {
			v, err := strconv.ParseFloat(h, 64)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, v)
		}
		got, err := ParseRadii(grid)
		if len(want) == 0 {
			if err == nil {
				t.Errorf("ParseRadii(%q) = %v, want an error for numpy's empty grid", grid, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRadii(%q): %v", grid, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("ParseRadii(%q): %d values, numpy has %d", grid, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("ParseRadii(%q)[%d] = %v, numpy %v", grid, i, got[i], want[i])
			}
		}
	}
}

func TestParseRadiiErrors(t *testing.T) {
	for _, s := range []string{"", "0.25:2.25", "a:1:0.1", "0:1:0", "0:1:-0.1", "0:1:1e-9", "0:inf:1", "1:0:0.5", "-1:0:0.25", "0x1p-2:1:0.25", "0:1_0:1"} {
		if r, err := ParseRadii(s); err == nil {
			t.Errorf("ParseRadii(%q) = %v, want an error", s, r)
		}
	}
}
