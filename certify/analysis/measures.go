package analysis

import (
	"fmt"
	"math"

	"github.com/smoothadv/smoothadv/certify"
)

// CertifiedAccuracy is the fraction of lines that are correct with a
// certified radius of at least r, as the reference computes it:
// mean(correct & (radius >= r)).
func (l *CertifyLog) CertifiedAccuracy(r float64) float64 {
	return float64(l.CertifiedCount(r)) / float64(len(l.Records))
}

// CertifiedCount is the number of lines that are correct with a certified
// radius of at least r.
func (l *CertifyLog) CertifiedCount(r float64) int {
	n := 0
	for _, rec := range l.Records {
		if rec.Certified(r) {
			n++
		}
	}
	return n
}

// CertifiedAccuracies is CertifiedAccuracy at each radius.
func (l *CertifyLog) CertifiedAccuracies(radii []float64) []float64 {
	acc := make([]float64, len(radii))
	for j, r := range radii {
		acc[j] = l.CertifiedAccuracy(r)
	}
	return acc
}

// MaxRadius is the largest radius in the log, and 0 if none is positive.
func (l *CertifyLog) MaxRadius() float64 {
	top := 0.0
	for _, rec := range l.Records {
		top = math.Max(top, rec.Radius)
	}
	return top
}

// AbstentionRate is the percentage of lines where the smoothed classifier
// abstained.
func (l *CertifyLog) AbstentionRate() float64 {
	n := 0
	for _, rec := range l.Records {
		if rec.Predict == certify.Abstain {
			n++
		}
	}
	return float64(n) / float64(len(l.Records)) * 100
}

// HighProbAccuracy is the reference's high-probability lower bound on the
// certified accuracy at radius r: each certificate is wrong with probability
// at most alpha (CERTIFY's alpha), so with probability at least 1 - rho the
// true certified accuracy is at least
// mean - alpha - sqrt(alpha (1-alpha) ln(1/rho) / n) - ln(1/rho) / (3n)
// (a Bernstein bound over the n lines).
func (l *CertifyLog) HighProbAccuracy(r, alpha, rho float64) (float64, error) {
	if !(alpha >= 0 && alpha < 1) {
		return 0, fmt.Errorf("high-probability accuracy: alpha %v not in [0, 1)", alpha)
	}
	if !(rho > 0 && rho < 1) {
		return 0, fmt.Errorf("high-probability accuracy: rho %v not in (0, 1)", rho)
	}
	n := float64(len(l.Records))
	log := math.Log(1 / rho)
	return l.CertifiedAccuracy(r) - alpha - math.Sqrt(alpha*(1-alpha)*log/n) - log/(3*n), nil
}

// LinfRadius is the L-infinity radius that an L2 radius certifies for inputs
// of d values (3*32*32 for CIFAR-10): the L-infinity ball of radius r/sqrt(d)
// lies inside the L2 ball of radius r.
func LinfRadius(l2 float64, d int) float64 {
	return l2 / math.Sqrt(float64(d))
}

// EmpiricalAccuracy is the fraction of correct lines in a predict log: the
// smoothed classifier's accuracy under the attack the log was made with.
func (l *PredictLog) EmpiricalAccuracy() float64 {
	n := 0
	for _, rec := range l.Records {
		if rec.Correct() {
			n++
		}
	}
	return float64(n) / float64(len(l.Records))
}
