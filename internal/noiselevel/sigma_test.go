package noiselevel

import (
	"math"
	"testing"
)

func TestRule(t *testing.T) {
	for _, c := range []struct {
		sd             float64
		check, certify bool // accepted
	}{
		{0, true, false}, {0.12, true, true}, {1, true, true}, {Max, true, true},
		{math.Nextafter(Max, math.Inf(1)), false, false}, {-0.1, false, false},
		{math.Inf(1), false, false}, {math.NaN(), false, false}, {1e38, false, false},
	} {
		if got := Check(c.sd) == nil; got != c.check {
			t.Errorf("Check(%v) accepted %t, want %t", c.sd, got, c.check)
		}
		if got := CheckCertify(c.sd) == nil; got != c.certify {
			t.Errorf("CheckCertify(%v) accepted %t, want %t", c.sd, got, c.certify)
		}
	}
}
