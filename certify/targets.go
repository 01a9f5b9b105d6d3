package certify

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// Targets are the radii an adaptive CERTIFY asks about (see the package
// documentation), in increasing order: one, as --target-radius R, or a
// table's radii, as --target-radius R1,R2,... None is a fixed-N run.
// Recorded in run parameters as a number when there is one, as the
// single-radius runs before it were, and as a list otherwise.
type Targets []float64

// ParseTargets reads "R" or "R1,R2,...", each a finite radius > 0, given in
// any order; "" and "0" are no targets.
func ParseTargets(s string) (Targets, error) {
	if s == "" || s == "0" {
		return nil, nil
	}
	var t Targets
	for _, part := range strings.Split(s, ",") {
		r, err := pyfmt.ParseFloat(strings.TrimSpace(part))
		if err != nil || !(r > 0) || math.IsInf(r, 1) {
			return nil, fmt.Errorf("certify: need a finite target radius >= 0 (0: not adaptive), got %s", strings.TrimSpace(part))
		}
		t = append(t, r)
	}
	slices.Sort(t)
	return slices.Compact(t), nil
}

// Adaptive reports whether there is a target.
func (t Targets) Adaptive() bool { return len(t) > 0 }

// Largest is the largest target; 0 without targets.
func (t Targets) Largest() float64 {
	if len(t) == 0 {
		return 0
	}
	return t[len(t)-1]
}

// above is the smallest target above r, and false when none is.
func (t Targets) above(r float64) (float64, bool) {
	for _, x := range t {
		if x > r {
			return x, true
		}
	}
	return 0, false
}

// validate refuses targets that are not finite, positive and increasing.
func (t Targets) validate() error {
	for i, r := range t {
		if !(r > 0) || math.IsInf(r, 1) || (i > 0 && r <= t[i-1]) {
			return fmt.Errorf("certify: need finite target radii > 0 in increasing order (none: not adaptive), got %v", []float64(t))
		}
	}
	return nil
}

// String writes the targets as ParseTargets reads them.
func (t Targets) String() string {
	parts := make([]string, len(t))
	for i, r := range t {
		parts[i] = strconv.FormatFloat(r, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// MarshalJSON writes one target as a number, several as a list.
func (t Targets) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(t[0])
	}
	return json.Marshal([]float64(t))
}

// UnmarshalJSON reads a number (0: none) or a list.
func (t *Targets) UnmarshalJSON(b []byte) error {
	var one float64
	if err := json.Unmarshal(b, &one); err == nil {
		*t = nil
		if one != 0 {
			*t = Targets{one}
		}
		return nil
	}
	var many []float64
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("target_radius: want a number or a list of numbers")
	}
	*t = Targets(many)
	return nil
}
