package analysis

import (
	"fmt"
	"math"
	"strings"

	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// maxGrid bounds grid lengths so that a typo such as a step of 1e-9 fails
// instead of exhausting memory.
const maxGrid = 1 << 20

// Arange returns numpy.arange(start, stop, step) for floats, value for value:
// ceil((stop-start)/step) values, start, start+step, then start + i*delta
// with delta = (start+step) - start, which is how numpy fills the array.
func Arange(start, stop, step float64) ([]float64, error) {
	for _, v := range []float64{start, stop, step} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("arange(%v, %v, %v): not finite", start, stop, step)
		}
	}
	if step == 0 {
		return nil, fmt.Errorf("arange(%v, %v, %v): step is zero", start, stop, step)
	}
	n := math.Ceil((stop - start) / step)
	if n > maxGrid {
		return nil, fmt.Errorf("arange(%v, %v, %v): %v values, more than %d", start, stop, step, n, maxGrid)
	}
	if n <= 0 {
		return nil, nil
	}
	out := make([]float64, int(n))
	out[0] = start
	if len(out) > 1 {
		out[1] = start + step
	}
	delta := (start + step) - start
	for i := 2; i < len(out); i++ {
		out[i] = start + float64(i)*delta
	}
	return out, nil
}

// Radii returns the reference's radius grid from start to stop inclusive,
// numpy.arange(start, stop + step, step). It fails if the grid is empty.
func Radii(start, stop, step float64) ([]float64, error) {
	r, err := Arange(start, stop+step, step)
	if err != nil {
		return nil, err
	}
	if len(r) == 0 {
		return nil, fmt.Errorf("radii %v to %v by %v: empty grid", start, stop, step)
	}
	return r, nil
}

// ParseRadii parses "START:STOP:STEP" into Radii(start, stop, step);
// "0.25:2.25:0.25" gives the nine columns of the paper's Table 2.
func ParseRadii(s string) ([]float64, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("radii %q: want START:STOP:STEP", s)
	}
	var v [3]float64
	for i, p := range parts {
		x, err := pyfmt.ParseFloat(strings.TrimSpace(p))
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("radii %q: %q is not a finite number", s, p)
		}
		v[i] = x
	}
	if v[0] < 0 {
		return nil, fmt.Errorf("radii %q: START must be >= 0 (a radius is a distance)", s)
	}
	if v[2] <= 0 {
		return nil, fmt.Errorf("radii %q: step must be positive", s)
	}
	r, err := Radii(v[0], v[1], v[2])
	if err != nil {
		return nil, fmt.Errorf("radii %q: %w", s, err)
	}
	return r, nil
}
