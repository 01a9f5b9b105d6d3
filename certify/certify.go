// Package certify runs Cohen et al.'s CERTIFY and PREDICT for a smoothed
// classifier against a Sampler that counts the base classifier's noisy
// predictions, and reads and writes their logs in the reference's format.
// It holds no model code: a torch-backed Sampler lives elsewhere.
package certify

import (
	"context"
	"errors"
	"fmt"

	"github.com/smoothadv/smoothadv/certify/stats"
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
}

// Validate refuses parameters CERTIFY cannot run with.
func (p CertifyParams) Validate() error {
	if p.N0 < 1 || p.N < 1 {
		return fmt.Errorf("certify: need N0 >= 1 and N >= 1, got N0=%d N=%d", p.N0, p.N)
	}
	if !(p.Alpha > 0 && p.Alpha < 1) {
		return fmt.Errorf("certify: need 0 < alpha < 1, got %v", p.Alpha)
	}
	if !(p.Sigma > 0) {
		return fmt.Errorf("certify: need sigma > 0, got %v", p.Sigma)
	}
	return nil
}

// Certified is CERTIFY's answer: the class, or Abstain with radius 0, and the
// certified L2 radius.
type Certified struct {
	Class  int
	Radius float64
}

// Certify runs CERTIFY on one input; see CertifyMany.
func Certify(ctx context.Context, s Sampler, x Input, p CertifyParams) (Certified, error) {
	return only(CertifyMany(ctx, s, []Input{x}, p))
}

// CertifyMany runs CERTIFY (Cohen et al. 2019) on each input: the most
// frequent class cA among N0 samples, then nA = its count among N new
// samples, pA = the one-sided Clopper-Pearson lower bound on its
// probability; abstain if pA < 1/2, else certify cA with radius
// Sigma * Phi^-1(pA). With a ManySampler each of the two rounds of sampling
// is one call for all inputs.
func CertifyMany(ctx context.Context, s Sampler, xs []Input, p CertifyParams) ([]Certified, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	selection, err := sampleMany(ctx, s, xs, StageSelection, p.N0)
	if err != nil {
		return nil, fmt.Errorf("certify: selection samples: %w", err)
	}
	estimation, err := sampleMany(ctx, s, xs, StageEstimation, p.N)
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
// selection samples and of the N estimation samples.
func CertifyCounts(selection, estimation []int64, p CertifyParams) (Certified, error) {
	if err := p.Validate(); err != nil {
		return Certified{}, err
	}
	if len(selection) == 0 || len(selection) != len(estimation) {
		return Certified{}, fmt.Errorf("certify: need equally many classes in both counts, got %d and %d", len(selection), len(estimation))
	}
	cA := argmax(selection)
	pA, err := stats.ClopperPearsonLower(int(estimation[cA]), p.N, p.Alpha)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	if pA < 0.5 {
		return Certified{Class: Abstain, Radius: 0}, nil
	}
	z, err := stats.NormalQuantile(pA)
	if err != nil {
		return Certified{}, fmt.Errorf("certify: %w", err)
	}
	return Certified{Class: cA, Radius: p.Sigma * z}, nil
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
	counts, err := sampleMany(ctx, s, xs, StagePrediction, p.N)
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

// sampleMany counts num samples of each input's stream for stage, in one call when s is a
// ManySampler, and checks that each count vector is non-negative, sums to
// num and has as many classes as the others.
func sampleMany(ctx context.Context, s Sampler, xs []Input, stage Stage, num int) ([][]int64, error) {
	var counts [][]int64
	if ms, ok := s.(ManySampler); ok {
		nums := make([]int, len(xs))
		for i := range nums {
			nums[i] = num
		}
		var err error
		if counts, err = ms.SampleCountsMany(ctx, xs, stage, nums); err != nil {
			return nil, err
		}
		if len(counts) != len(xs) {
			return nil, fmt.Errorf("%w: %d count vectors for %d inputs", ErrInvalidCounts, len(counts), len(xs))
		}
	} else {
		counts = make([][]int64, len(xs))
		for i, x := range xs {
			c, err := s.SampleCounts(ctx, x, stage, num)
			if err != nil {
				return nil, fmt.Errorf("input %d: %w", x, err)
			}
			counts[i] = c
		}
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
