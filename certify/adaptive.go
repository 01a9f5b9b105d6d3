package certify

import (
	"context"
	"fmt"
	"math"

	"github.com/smoothadv/smoothadv/certify/stats"
)

// This file holds the radius rules and the adaptive CERTIFY; the package
// documentation states both.

// certificate is the certificate for class cA from the class counts of n
// estimation samples at level alpha, by p's radius rule.
func (p CertifyParams) certificate(counts []int64, cA, n int, alpha float64) (Certified, error) {
	if p.Radius == RadiusPB {
		return p.certificatePB(counts, cA, n, alpha)
	}
	pA, err := stats.ClopperPearsonLower(int(counts[cA]), n, alpha)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	if pA < 0.5 {
		return Certified{Class: Abstain, Radius: 0, Samples: n}, nil
	}
	z, err := stats.NormalQuantile(pA)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	return Certified{Class: cA, Radius: p.Sigma * z, Samples: n}, nil
}

// pbLevels splits alpha between RadiusPB's bounds: half for pA's, the other
// half evenly over the upper bounds of the classes other than cA.
func pbLevels(alpha float64, classes int) (levelA, levelOther float64) {
	return alpha / 2, alpha / 2 / float64(max(classes-1, 1))
}

// certificatePB is certificate for RadiusPB.
func (p CertifyParams) certificatePB(counts []int64, cA, n int, alpha float64) (Certified, error) {
	levelA, levelOther := pbLevels(alpha, len(counts))
	pA, err := stats.ClopperPearsonLower(int(counts[cA]), n, levelA)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	pB := 1 - pA
	if b := runnerUp(counts, cA); b >= 0 {
		// The bound rises with the count: the largest count has the
		// largest upper bound.
		u, err := stats.ClopperPearsonUpper(int(counts[b]), n, levelOther)
		if err != nil {
			return Certified{}, fmt.Errorf("certify: %w", err)
		}
		pB = math.Min(pB, u)
	}
	if pA < pB {
		return Certified{Class: Abstain, Radius: 0, Samples: n}, nil
	}
	zA, err := stats.NormalQuantile(pA)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	zB, err := stats.NormalQuantile(pB)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	return Certified{Class: cA, Radius: p.Sigma / 2 * (zA - zB), Samples: n}, nil
}

// runnerUp returns the class other than cA with the largest count, or -1
// when there is none.
func runnerUp(counts []int64, cA int) int {
	b := -1
	for c, k := range counts {
		if c != cA && (b < 0 || k > counts[b]) {
			b = c
		}
	}
	return b
}

// look is one look of the adaptive CERTIFY: a decision from the first n
// estimation samples at level alpha.
type look struct {
	n     int
	alpha float64
}

// firstLook is the fewest samples the first look may have: fewer certify
// little even when unanimous (at most sigma * PhiInverse(alpha_k^(1/n)):
// 1.35 sigma for n = 100 at alpha_k = 1e-4).
const firstLook = 100

// AdaptiveScheme names the schedule of looks and the split of alpha over
// them. Run parameters record it, so that a resumed run never mixes lines
// made under two schemes; changing firstLook, the growth of the looks or
// the split changes it.
const AdaptiveScheme = "bonferroni-halving-v1"

// looks is the adaptive schedule: N, N/2, N/4, ... (rounded up) down to the
// smallest that is at least firstLook (N alone if N/2 is below it), in
// increasing order; the last look tests at alpha/2, the others share
// alpha/2 (one look tests at alpha).
func (p CertifyParams) looks() []look {
	var ns []int
	for d := 1; d == 1 || (p.N+d-1)/d >= firstLook; d *= 2 {
		ns = append([]int{(p.N + d - 1) / d}, ns...)
	}
	looks := make([]look, len(ns))
	for k, n := range ns {
		looks[k] = look{n: n, alpha: p.Alpha / 2 / float64(len(ns)-1)}
	}
	if len(looks) == 1 {
		looks[0].alpha = p.Alpha
	} else {
		looks[len(looks)-1].alpha = p.Alpha / 2
	}
	return looks
}

// reaches reports whether c certifies radius r.
func reaches(c Certified, r float64) bool {
	return c.Class != Abstain && c.Radius >= r
}

// favourable returns class counts of N samples as favourable to cA as the
// counts of n samples allow at level alpha: cA's share at its upper bound
// and, for RadiusPB, the runner-up's at its lower bound (with the levels of
// the rule's certificate), the other classes' at 0. They need not add up to
// N: the rules read only cA's count and the largest other one.
func (p CertifyParams) favourable(counts []int64, cA, n int, alpha float64) ([]int64, error) {
	levelA, levelOther := alpha, alpha
	if p.Radius == RadiusPB {
		levelA, levelOther = pbLevels(alpha, len(counts))
	}
	out := make([]int64, len(counts))
	u, err := stats.ClopperPearsonUpper(int(counts[cA]), n, levelA)
	if err != nil {
		return nil, fmt.Errorf("certify: %w", err)
	}
	out[cA] = min(int64(math.Ceil(u*float64(p.N))), int64(p.N))
	if b := runnerUp(counts, cA); p.Radius == RadiusPB && b >= 0 {
		l, err := stats.ClopperPearsonLower(int(counts[b]), n, levelOther)
		if err != nil {
			return nil, fmt.Errorf("certify: %w", err)
		}
		out[b] = int64(math.Floor(l * float64(p.N)))
	}
	return out, nil
}

// decideLook is the adaptive decision at look k from the counts of its
// samples: the look's certificate, and whether sampling stops. It stops when
// the certificate reaches the largest target, at the last look, or when
// even N favourable samples would not reach the next target above the
// radius certified so far (with one target: the target). Each look tests at
// its share of alpha, so the certificate of whichever look stops holds with
// probability 1 - alpha, whatever the rule for stopping.
func (p CertifyParams) decideLook(counts []int64, cA int, looks []look, k int) (Certified, bool, error) {
	l, last := looks[k], looks[len(looks)-1]
	c, err := p.certificate(counts, cA, l.n, l.alpha)
	if err != nil || reaches(c, p.TargetRadius.Largest()) || k == len(looks)-1 {
		return c, true, err
	}
	next, _ := p.TargetRadius.above(c.Radius) // there is one: c is below the largest
	best, err := p.favourable(counts, cA, l.n, l.alpha)
	if err != nil {
		return Certified{}, false, err
	}
	bestCert, err := p.certificate(best, cA, last.n, last.alpha)
	return c, !reaches(bestCert, next), err
}

// CheckTarget refuses an adaptive run whose smallest target radius no
// certificate can reach: not even N samples that all vote for one of
// classes classes.
func (p CertifyParams) CheckTarget(classes int) error {
	if !p.TargetRadius.Adaptive() {
		return nil
	}
	if err := p.Validate(); err != nil {
		return err
	}
	looks := p.looks()
	last := looks[len(looks)-1]
	all := make([]int64, max(classes, 1))
	all[0] = int64(p.N)
	c, err := p.certificate(all, 0, last.n, last.alpha)
	if err != nil {
		return err
	}
	if smallest := p.TargetRadius[0]; !reaches(c, smallest) {
		return fmt.Errorf("certify: target radius %v is out of reach: even if all N=%d samples voted for one class, the last look (alpha %.3g) would certify a radius of %.4g at most; "+
			"raise N or lower the target radius", smallest, p.N, last.alpha, c.Radius)
	}
	return nil
}

// certifyAdaptive is CertifyMany with a target radius, given the selection
// counts and the looks: at each look it draws the next samples of every
// input still undecided, in one call for all of them.
func certifyAdaptive(ctx context.Context, s Sampler, xs []Input, p CertifyParams, selection [][]int64, looks []look) ([]Certified, error) {
	res := make([]Certified, len(xs))
	counts := make([][]int64, len(xs))
	active := make([]int, len(xs)) // positions in xs of the undecided inputs
	for i := range active {
		active[i] = i
	}
	from := 0
	for k, l := range looks {
		batch := make([]Input, len(active))
		for j, i := range active {
			batch[j] = xs[i]
		}
		drawn, err := sampleMany(ctx, s, batch, StageEstimation, from, l.n-from)
		if err != nil {
			return nil, fmt.Errorf("certify: estimation samples %d to %d: %w", from, l.n, err)
		}
		var undecided []int
		for j, i := range active {
			if err := sameClasses(selection[i], drawn[j]); err != nil {
				return nil, fmt.Errorf("certify input %d: %w", xs[i], err)
			}
			if counts[i] == nil {
				counts[i] = make([]int64, len(drawn[j]))
			}
			for c, n := range drawn[j] {
				counts[i][c] += n
			}
			c, done, err := p.decideLook(counts[i], argmax(selection[i]), looks, k)
			if err != nil {
				return nil, fmt.Errorf("certify input %d: %w", xs[i], err)
			}
			if done {
				res[i] = c
			} else {
				undecided = append(undecided, i)
			}
		}
		active, from = undecided, l.n
		if len(active) == 0 {
			break
		}
	}
	return res, nil
}
