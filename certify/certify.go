// Package certify runs Cohen et al.'s CERTIFY and PREDICT for a smoothed
// classifier against a Sampler that counts the base classifier's noisy
// predictions, and reads and writes their logs in the reference's format.
// It holds no model code: a torch-backed Sampler lives elsewhere.
//
// # Adaptive certification
//
// With CertifyParams.TargetRadius R > 0, CERTIFY answers the question a
// certified-accuracy table asks at R: is the smoothed classifier robust at
// radius R around x? It selects cA from N0 samples as CERTIFY does, then
// looks at the estimation samples in growing stages: after the first n_1 <
// n_2 < ... < n_K = N samples of the same estimation stream, where n_k =
// ceil(N / 2^(K-k)) and n_1 is the smallest of these that is at least 100.
// It stops at the first look where
//   - the look's certificate reaches R (its radius is at least R), or
//   - even N samples could not certify R: N samples whose count of cA sat
//     at its upper confidence bound (and, for RadiusPB, every other class's
//     at its lower bound) would not reach R at the last look's level, or
//   - it is the last look.
//
// The run writes that look's certificate: a radius of at least R when R is
// certified, otherwise the smaller radius or the abstention that the look's
// bound gives. Certified.Samples is the number of estimation samples used.
//
// Alpha is split over the looks by a union (Bonferroni) bound on a fixed
// schedule: the last look tests at alpha/2 and the K-1 earlier ones at
// alpha/(2(K-1)) each, so the chance that the bound of any look fails is at
// most alpha, and whichever look a run stops at, its certificate holds with
// probability at least 1 - alpha, as CERTIFY's does. Stopping for futility
// never certifies anything, so it needs no share of alpha; it uses the
// mirror-image bounds at the look's level, so that an image whose true
// class probabilities, as counts of N samples, would pass the last look is
// given up with probability at most alpha.
//
// Why Bonferroni and not an anytime-valid confidence sequence: the sampler
// works in batches, so looking after every sample, which is what a
// confidence sequence pays for, buys nothing; a geometric schedule has few
// looks (7 for N = 10^4, 10 for 10^5), and over few looks a union bound is
// cheap: each look keeps CERTIFY's exact Clopper-Pearson bound at a level
// only 2(K-1) times smaller (z = 3.8 instead of 3.1 at alpha = 0.001), while
// the images near R, which use all N samples, keep half of alpha (z = 3.3):
// they lose little against fixed-N CERTIFY.
//
// # The pB-aware radius
//
// With CertifyParams.Radius = RadiusPB the radius is that of Cohen et al.'s
// Theorem 1, sigma/2 * (PhiInverse(pA_lower) - PhiInverse(pB_upper)), with
// pB the probability of the most likely class other than cA. pA_lower is the
// Clopper-Pearson bound at alpha/2. Which class is the runner-up is not
// known, so pB_upper is the largest of the upper bounds of all other
// classes, each at alpha/(2(C-1)) for C classes (a union bound), and at most
// 1 - pA_lower (on the event that pA >= pA_lower no other class exceeds
// 1 - pA_lower). Both hold together with probability at least 1 - alpha.
// An abstention is pA_lower < pB_upper. The reference's radius
// sigma * PhiInverse(pA_lower) is the same formula with pB_upper = 1 -
// pA_lower at the whole alpha, so RadiusPB helps where the runner-up is far
// below 1 - pA: models that spread the rest of their votes over several
// classes (pA = 0.7 with 0.3 split evenly over 9 classes has a true radius
// of 0.52 sigma by pA alone, 1.18 sigma by Theorem 1). Where the rest sits
// in one class it gives CERTIFY's radius at alpha/2, a little smaller.
// Adaptively, each look's level is split the same way.
package certify

import (
	"context"
	"errors"
	"fmt"

	"github.com/smoothadv/smoothadv/certify/stats"
	"github.com/smoothadv/smoothadv/internal/noiselevel"
)

// Abstain is the class CERTIFY and PREDICT return when they abstain.
const Abstain = -1

// Input identifies one example to a Sampler: its index in the dataset.
// Together with a Stage it names the example's noise stream, so what an
// example draws does not depend on which other examples share its batches.
type Input int

// Stage is a round of sampling. Each (input, stage) has its own noise
// stream: CERTIFY's selection and estimation samples stay independent, and
// PREDICT's samples differ from both.
type Stage uint8

// The stages of CERTIFY and PREDICT.
const (
	StageSelection  Stage = 1 // CERTIFY's N0 samples that choose the class
	StageEstimation Stage = 2 // CERTIFY's N samples that bound its probability
	StagePrediction Stage = 3 // PREDICT's N samples
	StageAttack     Stage = 4 // the noise that predict --attack attacks under
)

func (s Stage) String() string {
	switch s {
	case StageSelection:
		return "selection"
	case StageEstimation:
		return "estimation"
	case StagePrediction:
		return "prediction"
	case StageAttack:
		return "attack"
	}
	return fmt.Sprintf("Stage(%d)", uint8(s))
}

// Sampler counts the base classifier's predictions under noise: for input x
// it draws the first num samples x + N(0, sigma^2 I) of the stream (x,
// stage), classifies each, and returns the count per class (one entry per
// class, summing to num).
type Sampler interface {
	SampleCounts(ctx context.Context, x Input, stage Stage, num int) ([]int64, error)
}

// RangeSampler counts samples from the middle of streams, which adaptive
// CERTIFY needs to continue each estimation stream where its last look
// stopped: SampleCountsRange returns one count vector per input, counting
// samples [from, from+num) of stream (xs[i], stage).
type RangeSampler interface {
	SampleCountsRange(ctx context.Context, xs []Input, stage Stage, from, num int) ([][]int64, error)
}

// ManySampler is a Sampler that can also count several inputs in one call,
// so that an accelerator can pack samples of different inputs into the same
// batches. SampleCountsMany returns one count vector per input, counting
// nums[i] samples of stream (xs[i], stage).
type ManySampler interface {
	Sampler
	SampleCountsMany(ctx context.Context, xs []Input, stage Stage, nums []int) ([][]int64, error)
}

// CertifyParams are CERTIFY's parameters: N0 samples choose the class, N
// fresh samples bound its probability at confidence 1 - Alpha, and Sigma is
// the noise level the radius scales with. The reference's defaults are
// N0 = 100, N = 100000, Alpha = 0.001.
type CertifyParams struct {
	N0, N int
	Alpha float64
	Sigma float64
	// Radius is how the radius is computed from the bounds; "" is
	// RadiusPA, the reference's.
	Radius RadiusRule
	// TargetRadius, when given, certifies adaptively at these radii, with
	// up to N estimation samples (see the package documentation).
	TargetRadius Targets
}

// RadiusRule names how CERTIFY turns its confidence bounds into a radius.
type RadiusRule string

// The radius rules.
const (
	// RadiusPA is the reference's sigma * PhiInverse(pA_lower).
	RadiusPA RadiusRule = "pa"
	// RadiusPB is Theorem 1's sigma/2 * (PhiInverse(pA_lower) -
	// PhiInverse(pB_upper)); see the package documentation.
	RadiusPB RadiusRule = "pb"
)

// Validate refuses parameters CERTIFY cannot run with.
func (p CertifyParams) Validate() error {
	if p.N0 < 1 || p.N < 1 {
		return fmt.Errorf("certify: need N0 >= 1 and N >= 1, got N0=%d N=%d", p.N0, p.N)
	}
	if !(p.Alpha > 0 && p.Alpha < 1) {
		return fmt.Errorf("certify: need 0 < alpha < 1, got %v", p.Alpha)
	}
	if err := noiselevel.CheckCertify(p.Sigma); err != nil {
		return fmt.Errorf("certify: sigma %w", err)
	}
	if p.Radius != "" && p.Radius != RadiusPA && p.Radius != RadiusPB {
		return fmt.Errorf("certify: radius rule %q: want %s (the reference's) or %s", p.Radius, RadiusPA, RadiusPB)
	}
	if err := p.TargetRadius.validate(); err != nil {
		return err
	}
	return nil
}

// Certified is CERTIFY's answer: the class, or Abstain with radius 0, the
// certified L2 radius, and the number of estimation samples it used.
type Certified struct {
	Class   int
	Radius  float64
	Samples int
}

// Certify runs CERTIFY on one input; see CertifyMany.
func Certify(ctx context.Context, s Sampler, x Input, p CertifyParams) (Certified, error) {
	return only(CertifyMany(ctx, s, []Input{x}, p))
}

// CertifyMany runs CERTIFY (Cohen et al. 2019) on each input: the most
// frequent class cA among N0 samples, then nA = its count among N new
// samples, pA = the one-sided Clopper-Pearson lower bound on its
// probability; abstain if pA < 1/2, else certify cA with radius
// Sigma * Phi^-1(pA). RadiusPB and TargetRadius change this as the package
// documentation says; adaptively s must be a RangeSampler. With a
// ManySampler each round of sampling is one call for all inputs.
func CertifyMany(ctx context.Context, s Sampler, xs []Input, p CertifyParams) ([]Certified, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(xs) == 0 {
		return nil, nil
	}
	selection, err := sampleMany(ctx, s, xs, StageSelection, 0, p.N0)
	if err != nil {
		return nil, fmt.Errorf("certify: selection samples: %w", err)
	}
	if p.TargetRadius.Adaptive() {
		if err := p.CheckTarget(len(selection[0])); err != nil {
			return nil, err
		}
		return certifyAdaptive(ctx, s, xs, p, selection, p.looks())
	}
	estimation, err := sampleMany(ctx, s, xs, StageEstimation, 0, p.N)
	if err != nil {
		return nil, fmt.Errorf("certify: estimation samples: %w", err)
	}
	res := make([]Certified, len(xs))
	for i := range xs {
		if res[i], err = CertifyCounts(selection[i], estimation[i], p); err != nil {
			return nil, fmt.Errorf("certify input %d: %w", xs[i], err)
		}
	}
	return res, nil
}

// CertifyCounts is CERTIFY's decision from the class counts of the N0
// selection samples and of the N estimation samples, by p's radius rule
// (not adaptive: TargetRadius plays no part).
func CertifyCounts(selection, estimation []int64, p CertifyParams) (Certified, error) {
	if err := p.Validate(); err != nil {
		return Certified{}, err
	}
	if err := sameClasses(selection, estimation); err != nil {
		return Certified{}, err
	}
	return p.certificate(estimation, argmax(selection), p.N, p.Alpha)
}

// sameClasses refuses selection and estimation counts of different numbers
// of classes.
func sameClasses(selection, estimation []int64) error {
	if len(selection) == 0 || len(selection) != len(estimation) {
		return fmt.Errorf("certify: need equally many classes in both counts, got %d and %d", len(selection), len(estimation))
	}
	return nil
}

// PredictParams are PREDICT's parameters: N samples and the test level
// Alpha. The reference's defaults are N = 100000, Alpha = 0.001.
type PredictParams struct {
	N     int
	Alpha float64
}

// Validate refuses parameters PREDICT cannot run with.
func (p PredictParams) Validate() error {
	if p.N < 1 {
		return fmt.Errorf("predict: need N >= 1, got %d", p.N)
	}
	if !(p.Alpha > 0 && p.Alpha < 1) {
		return fmt.Errorf("predict: need 0 < alpha < 1, got %v", p.Alpha)
	}
	return nil
}

// Predict runs PREDICT on one input; see PredictMany.
func Predict(ctx context.Context, s Sampler, x Input, p PredictParams) (int, error) {
	return only(PredictMany(ctx, s, []Input{x}, p))
}

// only returns the single result of a call on one input.
func only[T any](res []T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return res[0], nil
}

// PredictMany runs PREDICT (Cohen et al. 2019) on each input: from N
// samples take the two largest counts c1 >= c2; return the top class if
// scipy's two-sided binomial test of c1 successes in c1 + c2 trials at
// p = 1/2 has a p-value <= Alpha, else Abstain. With a ManySampler the
// sampling is one call for all inputs.
func PredictMany(ctx context.Context, s Sampler, xs []Input, p PredictParams) ([]int, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	counts, err := sampleMany(ctx, s, xs, StagePrediction, 0, p.N)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	res := make([]int, len(xs))
	for i := range xs {
		if res[i], err = PredictCounts(counts[i], p.Alpha); err != nil {
			return nil, fmt.Errorf("predict input %d: %w", xs[i], err)
		}
	}
	return res, nil
}

// PredictCounts is PREDICT's decision from the class counts of its samples.
func PredictCounts(counts []int64, alpha float64) (int, error) {
	if len(counts) < 2 {
		return 0, fmt.Errorf("predict: need at least 2 classes, got %d", len(counts))
	}
	top := argmax(counts)
	second := int64(-1)
	for c, n := range counts {
		if c != top && n > second {
			second = n
		}
	}
	// A tie at the top gives a p-value of 1, so which of the tied classes
	// is "top" never matters.
	pval, err := stats.BinomTestTwoSided(int(counts[top]), int(counts[top]+second), 0.5)
	if err != nil {
		return 0, fmt.Errorf("predict: %w", err)
	}
	if pval > alpha {
		return Abstain, nil
	}
	return top, nil
}

// argmax returns the first index of the largest count, as numpy's argmax.
func argmax(counts []int64) int {
	best := 0
	for c, n := range counts {
		if n > counts[best] {
			best = c
		}
	}
	return best
}

// ErrInvalidCounts marks counts from a Sampler that broke its contract: a
// bug in the Sampler, not bad input.
var ErrInvalidCounts = errors.New("sampler returned invalid counts")

// sampleMany counts samples [from, from+num) of each input's stream for
// stage and checks that each count vector is non-negative, sums to num and
// has as many classes as the others.
func sampleMany(ctx context.Context, s Sampler, xs []Input, stage Stage, from, num int) ([][]int64, error) {
	counts, err := draw(ctx, s, xs, stage, from, num)
	if err != nil {
		return nil, err
	}
	if len(counts) != len(xs) {
		return nil, fmt.Errorf("%w: %d count vectors for %d inputs", ErrInvalidCounts, len(counts), len(xs))
	}
	for i, c := range counts {
		var sum int64
		for _, n := range c {
			if n < 0 {
				return nil, fmt.Errorf("%w: input %d: negative count %d", ErrInvalidCounts, xs[i], n)
			}
			sum += n
		}
		if sum != int64(num) {
			return nil, fmt.Errorf("%w: input %d: counts sum to %d, want %d", ErrInvalidCounts, xs[i], sum, num)
		}
		if len(c) != len(counts[0]) {
			return nil, fmt.Errorf("%w: input %d: %d classes, input %d: %d", ErrInvalidCounts, xs[i], len(c), xs[0], len(counts[0]))
		}
	}
	return counts, nil
}

// draw asks s for the counts of samples [from, from+num) of each input's
// stream, in one call when s allows it.
func draw(ctx context.Context, s Sampler, xs []Input, stage Stage, from, num int) ([][]int64, error) {
	if from > 0 {
		rs, ok := s.(RangeSampler)
		if !ok {
			return nil, errors.New("the sampler cannot draw from the middle of a stream (it is no RangeSampler)")
		}
		return rs.SampleCountsRange(ctx, xs, stage, from, num)
	}
	if ms, ok := s.(ManySampler); ok {
		nums := make([]int, len(xs))
		for i := range nums {
			nums[i] = num
		}
		return ms.SampleCountsMany(ctx, xs, stage, nums)
	}
	counts := make([][]int64, len(xs))
	for i, x := range xs {
		c, err := s.SampleCounts(ctx, x, stage, num)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", x, err)
		}
		counts[i] = c
	}
	return counts, nil
}
