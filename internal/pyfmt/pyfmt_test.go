package pyfmt

import (
	"math"
	"strconv"
	"testing"

	"github.com/smoothadv/smoothadv/internal/tsvtest"
)

// TestAgainstPython compares with strings CPython itself printed for the same
// floats (testdata/gen_formats.py wrote testdata/formats.tsv).
func TestAgainstPython(t *testing.T) {
	_, rows := tsvtest.Read(t, "testdata/formats.tsv")
	n := 0
	for _, cols := range rows {
		if len(cols) != 4 {
			t.Fatalf("bad testdata line %q", cols)
		}
		v, err := strconv.ParseFloat(cols[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := G(v, 3); got != cols[1] {
			t.Errorf("G(%v, 3) = %q, Python '{:.3}' gives %q", v, got, cols[1])
		}
		if got := F(v, 2); got != cols[2] {
			t.Errorf("F(%v, 2) = %q, Python '{:.2f}' gives %q", v, got, cols[2])
		}
		if got := Repr(v); got != cols[3] {
			t.Errorf("Repr(%v) = %q, Python repr gives %q", v, got, cols[3])
		}
		n++
	}
	if n < 1000 {
		t.Fatalf("only %d testdata rows", n)
	}
}

func TestPrecisions(t *testing.T) {
	// Values from CPython 3: '{:.1}'.format(0.25), '{:.5}'.format(123.456),
	// '{:.0}'.format(7.5), '{:.3f}'.format(0.125).
	for _, c := range []struct {
		got, want string
	}{
		{G(0.25, 1), "0.2"},
		{G(123.456, 5), "123.46"},
		{G(7.5, 0), "8e+00"},
		{F(0.125, 3), "0.125"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, Python gives %q", c.got, c.want)
		}
	}
}

func TestParseFloat(t *testing.T) {
	for s, want := range map[string]float64{"0.5": 0.5, "-1.25e-3": -1.25e-3, "3": 3, ".5": 0.5, "1.": 1, "+2E+2": 200, "inf": math.Inf(1), "-inf": math.Inf(-1)} {
		if got, err := ParseFloat(s); err != nil || got != want {
			t.Errorf("ParseFloat(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if got, err := ParseFloat("nan"); err != nil || !math.IsNaN(got) {
		t.Errorf("ParseFloat(nan) = %v, %v", got, err)
	}
	for _, s := range []string{"0x1p-1", "0.6_0", "1_0", "", ".", "1e", "0.5 ", "1e999", "--1"} {
		if got, err := ParseFloat(s); err == nil {
			t.Errorf("ParseFloat(%q) = %v, want an error", s, got)
		}
	}
}
