package stats

import (
	"fmt"

	"gonum.org/v1/gonum/mathext"
)

// NormalQuantile returns the standard normal quantile Phi^-1(p) (scipy's
// norm.ppf), -Inf at p = 0 and +Inf at p = 1. It uses Wichura's AS 241
// rational approximations (gonum's mathext.NormalQuantile), relatively
// accurate to about 1e-16 including the far lower tail; above 0.5 it works
// from 1 - p, which itself is only known to 1e-16 absolutely.
func NormalQuantile(p float64) (float64, error) {
	if !(p >= 0 && p <= 1) {
		return 0, fmt.Errorf("normal quantile: need 0 <= p <= 1, got %v", p)
	}
	return mathext.NormalQuantile(p), nil
}
