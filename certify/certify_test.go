package certify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// binomialSampler is an exact model of a sampler: input i has class
// probabilities probs[i], and the counts of num noisy predictions are a
// multinomial draw, made as a chain of binomials.
type binomialSampler struct {
	probs [][]float64
	src   rand.Source
}

func (s *binomialSampler) SampleCounts(_ context.Context, x Input, _ Stage, num int) ([]int64, error) {
	probs := s.probs[x]
	counts := make([]int64, len(probs))
	left, mass := num, 1.0
	for c, p := range probs {
		if left == 0 || c == len(probs)-1 {
			counts[c] = int64(left)
			break
		}
		k := int(distuv.Binomial{N: float64(left), P: math.Min(1, p/mass), Src: s.src}.Rand())
		counts[c] = int64(k)
		left -= k
		mass -= p
	}
	return counts, nil
}

// manySampler adds SampleCountsMany to a Sampler by looping, to check that
// CertifyMany and PredictMany take that path and keep the inputs in order.
type manySampler struct {
	Sampler
	calls int
}

func (m *manySampler) SampleCountsMany(ctx context.Context, xs []Input, stage Stage, nums []int) ([][]int64, error) {
	m.calls++
	out := make([][]int64, len(xs))
	for i, x := range xs {
		c, err := m.SampleCounts(ctx, x, stage, nums[i])
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// linearProbs gives the class probabilities of a linear two-class classifier
// at signed distance m from its decision boundary (class 0 on the positive
// side) under N(0, sigma^2 I) noise: the noise component along the normal is
// N(0, sigma^2), so P(class 0) = Phi(m / sigma), in any dimension. The
// smoothed classifier is then the same linear classifier, and its exact
// robust radius at that point is |m|.
func linearProbs(m, sigma float64) []float64 {
	pA := distuv.UnitNormal.CDF(m / sigma)
	return []float64{pA, 1 - pA}
}

// binomialUpper returns the smallest c with P(Binomial(trials, p) > c) <=
// level: failure counts above it have probability at most level if the
// per-trial failure probability is at most p. It uses gonum's binomial CDF,
// independent of package stats.
func binomialUpper(trials int, p, level float64) int {
	b := distuv.Binomial{N: float64(trials), P: p}
	c := int(float64(trials) * p)
	for 1-b.CDF(float64(c)) > level {
		c++
	}
	return c
}

// CERTIFY must be sound: with probability at most alpha it returns a wrong
// class or a radius above the true one (Cohen et al., theorem 2 and
// proposition 2). The trials draw points at margins from 0.05 sigma to 2
// sigma on either side of a linear classifier, where the Clopper-Pearson
// bound is neither trivially loose nor trivially tight.
func TestCertifySoundBySimulation(t *testing.T) {
	const (
		trials = 10_000
		sigma  = 0.5
		level  = 1e-6 // chance that a sound CERTIFY fails this test
	)
	for _, tc := range []struct {
		n0, n int
		alpha float64
	}{
		{100, 1000, 0.05},
		{100, 100_000, 0.001}, // the reference's defaults
	} {
		rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
		margins := make([]float64, trials)
		s := &binomialSampler{src: rand.NewPCG(2, uint64(tc.n))}
		for i := range margins {
			m := sigma * (0.05 + 1.95*rng.Float64())
			if rng.IntN(2) == 1 {
				m = -m
			}
			margins[i] = m
			s.probs = append(s.probs, linearProbs(m, sigma))
		}
		xs := make([]Input, trials)
		for i := range xs {
			xs[i] = Input(i)
		}
		p := CertifyParams{N0: tc.n0, N: tc.n, Alpha: tc.alpha, Sigma: sigma}
		res, err := CertifyMany(context.Background(), s, xs, p)
		if err != nil {
			t.Fatal(err)
		}
		failures, abstained := 0, 0
		for i, r := range res {
			trueClass := 0
			if margins[i] < 0 {
				trueClass = 1
			}
			switch {
			case r.Class == Abstain:
				abstained++
			case r.Class != trueClass || r.Radius > math.Abs(margins[i]):
				failures++
			}
		}
		limit := binomialUpper(trials, tc.alpha, level)
		t.Logf("N=%d alpha=%v: %d failures in %d trials (%.4f), limit %d at level %g; %d abstained",
			tc.n, tc.alpha, failures, trials, float64(failures)/trials, limit, level, abstained)
		if failures > limit {
			t.Errorf("N=%d alpha=%v: %d failures in %d trials, more than %d, the 1e-6 upper bound for a failure rate of alpha",
				tc.n, tc.alpha, failures, trials, limit)
		}
	}
}

// The certified radius approaches the true radius as N grows, at the rate
// the normal approximation predicts: the bound on pA sits about z_alpha
// standard errors below pA, so the radius falls short of the margin m by
// about sigma * z_alpha * sqrt(pA (1-pA) / N) / phi(m / sigma).
func TestCertifyRadiusConvergesToTruth(t *testing.T) {
	const (
		sigma, margin = 0.5, 0.3
		alpha         = 0.001
		seeds         = 40
	)
	probs := linearProbs(margin, sigma)
	pA := probs[0]
	zAlpha := -distuv.UnitNormal.Quantile(alpha)
	density := distuv.UnitNormal.Prob(margin / sigma)
	prevGap := math.Inf(1)
	for _, n := range []int{1000, 10_000, 100_000, 1_000_000, 10_000_000} {
		s := &binomialSampler{probs: [][]float64{probs}, src: rand.NewPCG(3, uint64(n))}
		sum := 0.0
		for range seeds {
			r, err := Certify(context.Background(), s, 0, CertifyParams{N0: 100, N: n, Alpha: alpha, Sigma: sigma})
			if err != nil {
				t.Fatal(err)
			}
			if r.Class != 0 {
				t.Fatalf("N=%d: class %d, want 0", n, r.Class)
			}
			sum += margin - r.Radius
		}
		gap := sum / seeds
		want := sigma * zAlpha * math.Sqrt(pA*(1-pA)/float64(n)) / density
		t.Logf("N=%d: mean radius %.6f, gap %.3g, predicted %.3g", n, margin-gap, gap, want)
		// The mean of 40 gaps has a standard deviation of about 1/(z_alpha
		// sqrt(40)) = 5% of the gap; 25% is 5 of them.
		if gap >= prevGap || math.Abs(gap/want-1) > 0.25 {
			t.Errorf("N=%d: gap %.3g (previous %.3g), predicted %.3g", n, gap, prevGap, want)
		}
		prevGap = gap
	}
}

// A real sampler for the linear classifier, drawing the noise in d
// dimensions, gives the same answer as its binomial model: a radius just
// below the margin.
type gaussianLinearSampler struct {
	w, x0 []float64 // unit normal of the boundary through the origin, and the point
	sigma float64
	rng   *rand.Rand
}

func (s *gaussianLinearSampler) SampleCounts(_ context.Context, _ Input, _ Stage, num int) ([]int64, error) {
	counts := make([]int64, 2)
	for range num {
		dot := 0.0
		for j, w := range s.w {
			dot += w * (s.x0[j] + s.sigma*s.rng.NormFloat64())
		}
		if dot > 0 {
			counts[0]++
		} else {
			counts[1]++
		}
	}
	return counts, nil
}

func TestCertifyGaussianLinearClassifier(t *testing.T) {
	const d, sigma, margin = 8, 0.25, 0.2
	w := make([]float64, d)
	x0 := make([]float64, d)
	for j := range w {
		w[j] = 1 / math.Sqrt(d)
		x0[j] = margin * w[j] // distance margin from the boundary
	}
	s := &gaussianLinearSampler{w: w, x0: x0, sigma: sigma, rng: rand.New(rand.NewPCG(4, 4))}
	r, err := Certify(context.Background(), s, 0, CertifyParams{N0: 100, N: 20_000, Alpha: 0.001, Sigma: sigma})
	if err != nil {
		t.Fatal(err)
	}
	// Predicted shortfall 0.25 * 3.09 * sqrt(0.788*0.212/2e4) / phi(0.8) = 0.0244.
	if r.Class != 0 || r.Radius > margin || r.Radius < margin-0.05 {
		t.Errorf("got %+v, want class 0 and a radius in [%v, %v]", r, margin-0.05, margin)
	}
}

// PREDICT returns a class other than the smoothed classifier's with
// probability at most alpha (Hung and Fithian 2019). At a point where the
// top two classes tie, every answer other than abstaining is wrong.
func TestPredictErrorRateBySimulation(t *testing.T) {
	const (
		trials = 10_000
		alpha  = 0.05
		level  = 1e-6
	)
	for _, probs := range [][]float64{
		{0.5, 0.5},
		{0.4, 0.4, 0.2},
		{0.45, 0.4, 0.15}, // class 0 is the smoothed prediction
	} {
		s := &binomialSampler{probs: [][]float64{probs}, src: rand.NewPCG(5, uint64(len(probs)))}
		wrong := 0
		for range trials {
			c, err := Predict(context.Background(), s, 0, PredictParams{N: 1000, Alpha: alpha})
			if err != nil {
				t.Fatal(err)
			}
			if c != Abstain && (probs[0] == probs[1] || c != 0) {
				wrong++
			}
		}
		limit := binomialUpper(trials, alpha, level)
		t.Logf("probs %v: %d wrong answers in %d trials (%.4f), limit %d", probs, wrong, trials, float64(wrong)/trials, limit)
		if wrong > limit {
			t.Errorf("probs %v: %d wrong answers in %d trials, more than %d", probs, wrong, trials, limit)
		}
	}
}

// With a clear winner PREDICT does not abstain: at 0.6 against 0.4 over
// 10000 samples it needs 5165 votes for the winner to reach alpha = 0.001,
// and it gets 6000 +- 49.
func TestPredictAnswersClearWinner(t *testing.T) {
	s := &manySampler{Sampler: &binomialSampler{
		probs: [][]float64{{0.3, 0.1, 0.6}, {0.6, 0.4, 0}},
		src:   rand.NewPCG(6, 6),
	}}
	for range 200 {
		got, err := PredictMany(context.Background(), s, []Input{0, 1}, PredictParams{N: 10_000, Alpha: 0.001})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != 2 || got[1] != 0 {
			t.Fatalf("got %v, want [2 0]", got)
		}
	}
	if s.calls != 200 {
		t.Errorf("SampleCountsMany called %d times, want 200", s.calls)
	}
}

func TestCertifyCountsMatchesReferenceRule(t *testing.T) {
	p := CertifyParams{N0: 100, N: 100_000, Alpha: 0.001, Sigma: 0.25}
	tests := []struct {
		selection, estimation []int64
		want                  Certified
	}{
		// First maximum wins the selection, as numpy's argmax. nA = N:
		// pA = 0.001^(1/100000), and scipy's norm.ppf of it is
		// 3.8114565633899145.
		{[]int64{50, 50, 0}, []int64{100_000, 0, 0}, Certified{Class: 0, Radius: 0.25 * 3.8114565633899145, Samples: 100_000}},
		// Selection picks class 1, whose count decides even if another
		// class has more estimation samples: statsmodels' bound for 40000
		// of 100000 is 0.395214466166612 < 1/2.
		{[]int64{10, 90}, []int64{60_000, 40_000}, Certified{Class: Abstain, Samples: 100_000}},
	}
	for _, tt := range tests {
		got, err := CertifyCounts(tt.selection, tt.estimation, p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Class != tt.want.Class || math.Abs(got.Radius-tt.want.Radius) > 1e-12 {
			t.Errorf("CertifyCounts(%v, %v) = %+v, want %+v", tt.selection, tt.estimation, got, tt.want)
		}
	}
}

func TestPredictCountsMatchesReferenceRule(t *testing.T) {
	tests := []struct {
		counts []int64
		alpha  float64
		want   int
	}{
		// scipy.stats.binom_test(60, 100) = 0.05688793364098088 > 0.05.
		{[]int64{60, 0, 40}, 0.05, Abstain},
		// scipy.stats.binom_test(61, 100) = 0.035200200217704855 <= 0.05.
		{[]int64{39, 61, 0}, 0.05, 1},
		{[]int64{5, 5, 0}, 0.5, Abstain}, // a tie has p-value 1
		{[]int64{0, 0, 7}, 0.05, 2},      // scipy.stats.binom_test(7, 7) = 0.015625
	}
	for _, tt := range tests {
		got, err := PredictCounts(tt.counts, tt.alpha)
		if err != nil || got != tt.want {
			t.Errorf("PredictCounts(%v, %v) = %v, %v; want %v", tt.counts, tt.alpha, got, err, tt.want)
		}
	}
}

// brokenSampler returns counts that do not add up.
type brokenSampler struct{}

func (brokenSampler) SampleCounts(context.Context, Input, Stage, int) ([]int64, error) {
	return []int64{1, 2}, nil
}

func TestRejectsBadParamsAndCounts(t *testing.T) {
	ctx := context.Background()
	good := &binomialSampler{probs: [][]float64{{0.9, 0.1}}, src: rand.NewPCG(7, 7)}
	for _, p := range []CertifyParams{
		{N0: 0, N: 10, Alpha: 0.1, Sigma: 1},
		{N0: 10, N: 10, Alpha: 0, Sigma: 1},
		{N0: 10, N: 10, Alpha: 0.1, Sigma: 0},
	} {
		if _, err := Certify(ctx, good, 0, p); err == nil {
			t.Errorf("Certify with %+v: want an error", p)
		}
	}
	if _, err := Predict(ctx, good, 0, PredictParams{N: 10, Alpha: 1}); err == nil {
		t.Error("Predict with alpha 1: want an error")
	}
	_, err := Certify(ctx, brokenSampler{}, 0, CertifyParams{N0: 10, N: 10, Alpha: 0.1, Sigma: 1})
	if !errors.Is(err, ErrInvalidCounts) {
		t.Errorf("Certify with a broken sampler: got %v, want ErrInvalidCounts", err)
	}
	if _, err := PredictCounts([]int64{5}, 0.1); err == nil {
		t.Error("PredictCounts with one class: want an error")
	}
}
