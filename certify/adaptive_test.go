package certify

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// streamSampler draws every sample of stream (x, stage) from its own seeded
// generator, so that, as with the torch sampler, counts of a range of a
// stream do not depend on how the stream is cut into calls.
type streamSampler struct {
	probs [][]float64
	seed  uint64
}

func (s *streamSampler) class(x Input, stage Stage, j int) int {
	u := rand.New(rand.NewPCG(s.seed^uint64(x)<<32^uint64(stage)<<60, uint64(j))).Float64()
	for c, p := range s.probs[x] {
		if u < p {
			return c
		}
		u -= p
	}
	return len(s.probs[x]) - 1
}

func (s *streamSampler) SampleCounts(ctx context.Context, x Input, stage Stage, num int) ([]int64, error) {
	c, err := s.SampleCountsRange(ctx, []Input{x}, stage, 0, num)
	if err != nil {
		return nil, err
	}
	return c[0], nil
}

func (s *streamSampler) SampleCountsRange(_ context.Context, xs []Input, stage Stage, from, num int) ([][]int64, error) {
	out := make([][]int64, len(xs))
	for i, x := range xs {
		out[i] = make([]int64, len(s.probs[x]))
		for j := from; j < from+num; j++ {
			out[i][s.class(x, stage, j)]++
		}
	}
	return out, nil
}

// SampleCountsRange makes binomialSampler a RangeSampler: its draws are
// independent, so a range is as good as a fresh start.
func (s *binomialSampler) SampleCountsRange(ctx context.Context, xs []Input, stage Stage, _, num int) ([][]int64, error) {
	out := make([][]int64, len(xs))
	for i, x := range xs {
		c, err := s.SampleCounts(ctx, x, stage, num)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func inputs(n int) []Input {
	xs := make([]Input, n)
	for i := range xs {
		xs[i] = Input(i)
	}
	return xs
}

func TestLooksHalveFromN(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want []int
	}{
		{10_000, []int{157, 313, 625, 1250, 2500, 5000, 10_000}},
		{100_000, []int{196, 391, 782, 1563, 3125, 6250, 12_500, 25_000, 50_000, 100_000}},
		{200, []int{100, 200}},
		{199, []int{100, 199}},
		{198, []int{198}},
		{7, []int{7}},
	} {
		p := CertifyParams{N0: 100, N: tt.n, Alpha: 0.001, Sigma: 1}
		looks := p.looks()
		var ns []int
		sum := 0.0
		for _, l := range looks {
			ns = append(ns, l.n)
			sum += l.alpha
		}
		if !slices.Equal(ns, tt.want) {
			t.Errorf("N=%d: looks at %v, want %v", tt.n, ns, tt.want)
		}
		last := looks[len(looks)-1].alpha
		if math.Abs(sum-p.Alpha) > 1e-15 || len(looks) > 1 && last != p.Alpha/2 || len(looks) == 1 && last != p.Alpha {
			t.Errorf("N=%d: levels %+v sum to %v, want %v with half at the last look", tt.n, looks, sum, p.Alpha)
		}
	}
}

// The pB-aware radius against statsmodels' Clopper-Pearson bounds and
// scipy's norm.ppf (values computed with scipy 1.10, statsmodels 0.13).
func TestCertificatePBMatchesStatsmodels(t *testing.T) {
	p := CertifyParams{N0: 100, N: 1000, Alpha: 0.01, Sigma: 0.5, Radius: RadiusPB}
	for _, tt := range []struct {
		counts []int64
		want   Certified
	}{
		// pA_lower = proportion_confint(700, 1000, 2*0.005, "beta")[0] =
		// 0.6612727938088567; the largest other upper bound, class 1's at
		// 0.01/2/4: 0.18687701038127835; radius 0.25 * (ppf(pA) - ppf(pB)).
		{[]int64{700, 150, 50, 50, 50}, Certified{Class: 0, Radius: 0.32635070770966723, Samples: 1000}},
		// The rest in one class: pB is capped by 1 - pA_lower =
		// 0.33872720619114327 (class 1's bound is 0.3455105268291816), and
		// the radius is 0.5 * ppf(0.6612727938088567).
		{[]int64{700, 300, 0, 0, 0}, Certified{Class: 0, Radius: 0.20796965579827184, Samples: 1000}},
		// pA_lower = 0.40929723719232136 < 1/2 still certifies: pB_upper =
		// 0.18772488599081377 (class 5's at 0.01/2/5).
		{[]int64{450, 100, 100, 100, 100, 150}, Certified{Class: 0, Radius: 0.16423956017727573, Samples: 1000}},
		// Two classes: pB = 1 - pA_lower, pA_lower < 1/2: abstain.
		{[]int64{450, 550}, Certified{Class: Abstain, Samples: 1000}},
	} {
		got, err := CertifyCounts([]int64{1, 0, 0, 0, 0, 0}[:len(tt.counts)], tt.counts, p)
		if err != nil {
			t.Fatal(err)
		}
		if got.Class != tt.want.Class || got.Samples != tt.want.Samples || math.Abs(got.Radius-tt.want.Radius) > 1e-12 {
			t.Errorf("counts %v: got %+v, want %+v", tt.counts, got, tt.want)
		}
	}
}

func TestCheckTargetRefusesUnreachableRadius(t *testing.T) {
	// The last look of N = 1000 tests at 0.0005: at best pA_lower =
	// 0.0005^(1/1000), and 0.25 * norm.ppf of it is 0.607228181502671
	// (scipy 1.10).
	p := CertifyParams{N0: 100, N: 1000, Alpha: 0.001, Sigma: 0.25, TargetRadius: Targets{0.6}}
	if err := p.CheckTarget(10); err != nil {
		t.Errorf("radius 0.6: %v", err)
	}
	p.TargetRadius = Targets{0.61}
	err := p.CheckTarget(10)
	if err == nil || !strings.Contains(err.Error(), "0.6072") {
		t.Errorf("radius 0.61: got %v, want an error naming the largest radius 0.6072", err)
	}
	s := &streamSampler{probs: [][]float64{{1, 0}}}
	if _, err := Certify(context.Background(), s, 0, p); err == nil {
		t.Error("Certify with an unreachable target radius: want an error")
	}
	for _, bad := range []Targets{{-1}, {math.Inf(1)}, {math.NaN()}, {0.5, 0.25}, {0.25, 0.25}, {0, 0.5}} {
		p.TargetRadius = bad
		if err := p.Validate(); err == nil {
			t.Errorf("target radii %v: want an error", bad)
		}
	}
	p.TargetRadius, p.Radius = Targets{0.5}, "pc"
	if err := p.Validate(); err == nil {
		t.Error("radius rule pc: want an error")
	}
}

// Each image's certificate is the one its look gives on the first Samples
// samples of its estimation stream: the adaptive run continues each stream
// where the previous look stopped, and stops where the rule says.
func TestAdaptiveContinuesTheStreams(t *testing.T) {
	for _, rule := range []RadiusRule{RadiusPA, RadiusPB} {
		rng := rand.New(rand.NewPCG(11, 11))
		const images = 60
		s := &streamSampler{seed: 12}
		for range images {
			pA := 0.45 + 0.55*rng.Float64()
			s.probs = append(s.probs, []float64{pA, (1 - pA) * 0.7, (1 - pA) * 0.3})
		}
		p := CertifyParams{N0: 50, N: 2000, Alpha: 0.01, Sigma: 0.5, Radius: rule, TargetRadius: Targets{0.4}}
		looks := p.looks()
		res, err := CertifyMany(context.Background(), s, inputs(images), p)
		if err != nil {
			t.Fatal(err)
		}
		stops := map[int]int{}
		for i, r := range res {
			k := slices.IndexFunc(looks, func(l look) bool { return l.n == r.Samples })
			if k < 0 {
				t.Fatalf("image %d used %d samples, which is no look of %+v", i, r.Samples, looks)
			}
			stops[k]++
			ctx := context.Background()
			sel, _ := s.SampleCounts(ctx, Input(i), StageSelection, p.N0)
			est, _ := s.SampleCounts(ctx, Input(i), StageEstimation, r.Samples)
			want, done, err := p.decideLook(est, argmax(sel), looks, k)
			if err != nil || !done || want != r {
				t.Errorf("%s image %d: got %+v, but its first %d samples give %+v (stop %v, %v)", rule, i, r, r.Samples, want, done, err)
			}
			// The run would not have stopped before.
			if k > 0 {
				prev, _ := s.SampleCounts(ctx, Input(i), StageEstimation, looks[k-1].n)
				if _, done, _ := p.decideLook(prev, argmax(sel), looks, k-1); done {
					t.Errorf("%s image %d: stopped at look %d, but look %d already decides", rule, i, k, k-1)
				}
			}
		}
		t.Logf("%s: images stopping at each look (of %d): %v", rule, len(looks), stops)
		if stops[0] == 0 || stops[len(looks)-1] == 0 || len(stops) < 3 {
			t.Errorf("%s: stops %v: want images stopping at the first, the last and some look between", rule, stops)
		}
	}
}

// trueRadius is the radius that Theorem 1 gives class c from the true
// class probabilities, by the rule: sigma * PhiInverse(p_c), or sigma/2 *
// (PhiInverse(p_c) - PhiInverse(the largest other p)). A certificate is
// wrong when it claims more.
func trueRadius(probs []float64, c int, rule RadiusRule, sigma float64) float64 {
	if rule != RadiusPB {
		return sigma * distuv.UnitNormal.Quantile(probs[c])
	}
	other := 0.0
	for d, q := range probs {
		if d != c {
			other = math.Max(other, q)
		}
	}
	return sigma / 2 * (distuv.UnitNormal.Quantile(probs[c]) - distuv.UnitNormal.Quantile(other))
}

// population draws the class probabilities of simulated images.
type population struct {
	name  string
	probs func(rng *rand.Rand) []float64
}

// tenClasses puts pA on class 0, pB on class 1 and spreads the rest evenly
// over 8 more classes.
func tenClasses(pA, pB float64) []float64 {
	probs := []float64{pA, pB, 0, 0, 0, 0, 0, 0, 0, 0}
	for c := 2; c < 10; c++ {
		probs[c] = (1 - pA - pB) / 8
	}
	return probs
}

// The populations of the simulations, for sigma 0.5 and target radius 0.5.
var (
	// pA uniform in [0.4, 1], the runner-up a uniform share of the rest.
	spread = population{"pA in [0.4, 1]", func(rng *rand.Rand) []float64 {
		pA := 0.4 + 0.6*rng.Float64()
		return tenClasses(pA, (1-pA)*rng.Float64())
	}}
	// The hardest case for the pA-only radius: pA just below Phi(R/sigma),
	// where every certificate at R is wrong and the bound is most often
	// fooled.
	hardPA = population{"pA just below Phi(R/sigma)", func(*rand.Rand) []float64 {
		pA := distuv.UnitNormal.CDF(1) - 1e-9
		return []float64{pA, 1 - pA}
	}}
	// The same for Theorem 1's radius: pA = 0.8 and pB just above the value
	// at which the true radius is R (the rest spread thin).
	hardPB = population{"Theorem 1 radius just below R", func(*rand.Rand) []float64 {
		pB := distuv.UnitNormal.CDF(distuv.UnitNormal.Quantile(0.8)-2) + 1e-9
		return tenClasses(0.8, pB)
	}}
)

// simResult sums up a simulation.
type simResult struct {
	images, wrongAtR, wrong, certifiedAtR int
	samples                               float64 // mean estimation samples per image
}

func (r simResult) String() string {
	return fmt.Sprintf("%d images: certified at R %.4f, wrongly at R %d (%.2g), any radius too large %d (%.2g), mean samples %.0f",
		r.images, float64(r.certifiedAtR)/float64(r.images), r.wrongAtR, float64(r.wrongAtR)/float64(r.images),
		r.wrong, float64(r.wrong)/float64(r.images), r.samples)
}

// simulate certifies images of population pop with p and scores the
// certificates against the truth at p's largest target radius (sigma for a
// fixed-N run); looks, when given, replace p's schedule.
func simulate(t *testing.T, pop population, images int, p CertifyParams, seed uint64, looks []look) simResult {
	t.Helper()
	R := p.TargetRadius.Largest()
	if R == 0 {
		R = p.Sigma // the radius a fixed-N run is scored at
	}
	return simulateAt(t, pop, images, p, seed, looks, []float64{R})[0]
}

// simulateAt is simulate scored at each of radii.
func simulateAt(t *testing.T, pop population, images int, p CertifyParams, seed uint64, looks []look, radii []float64) []simResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &binomialSampler{src: rand.NewPCG(seed, 2)}
	for range images {
		s.probs = append(s.probs, pop.probs(rng))
	}
	xs := inputs(images)
	ctx := context.Background()
	var res []Certified
	var err error
	if looks == nil {
		res, err = CertifyMany(ctx, s, xs, p)
	} else {
		var selection [][]int64
		if selection, err = sampleMany(ctx, s, xs, StageSelection, 0, p.N0); err == nil {
			res, err = certifyAdaptive(ctx, s, xs, p, selection, looks)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := make([]simResult, len(radii))
	for k, R := range radii {
		out[k].images = images
		for i, r := range res {
			out[k].samples += float64(r.Samples) / float64(images)
			if r.Class == Abstain {
				continue
			}
			truth := trueRadius(s.probs[i], r.Class, p.Radius, p.Sigma)
			if r.Radius > truth {
				out[k].wrong++
			}
			if r.Radius >= R {
				out[k].certifiedAtR++
				if truth < R {
					out[k].wrongAtR++
				}
			}
		}
	}
	return out
}

// simImages is the number of images of each simulation: 10^4, or
// SMOOTHADV_SIM_IMAGES (the closing note of issue 12 ran 10^6).
func simImages(t *testing.T) int {
	if v := os.Getenv("SMOOTHADV_SIM_IMAGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SMOOTHADV_SIM_IMAGES=%q: want a positive integer", v)
		}
		return n
	}
	return 10_000
}

// Adaptive certification must be as sound as CERTIFY: over all looks, a
// certificate at the target radius R (or any radius) is wrong with
// probability at most alpha. The simulations (a multinomial model of the
// sampler, no network) score every certificate against the true radius,
// over images whose pA is spread over [0.4, 1] and over the hardest images,
// whose true radius is just below R. That every look spent the whole alpha
// would fail the same check there, so the check can see the difference.
// Beside each adaptive run: the mean number of samples per image, and the
// certified fraction at R of fixed-N CERTIFY on the same population, which
// the adaptive run must match within 0.02 (on the spread population, where
// sampling noise alone makes a difference of 0.006 or so).
// The hardest images, which use nearly all N samples, are half as many.
func TestAdaptiveSoundBySimulation(t *testing.T) {
	images := simImages(t)
	const level = 1e-6 // chance that a sound procedure fails a check
	for _, tc := range []struct {
		pop    population
		rule   RadiusRule
		alpha  float64
		images int
	}{
		{spread, RadiusPA, 0.05, images},
		{spread, RadiusPA, 0.001, images},
		{hardPA, RadiusPA, 0.05, images / 2},
		{spread, RadiusPB, 0.05, images},
		{hardPB, RadiusPB, 0.05, images / 2},
	} {
		name := fmt.Sprintf("%s, radius %s, alpha %v", tc.pop.name, tc.rule, tc.alpha)
		fixed := CertifyParams{N0: 100, N: 10_000, Alpha: tc.alpha, Sigma: 0.5, Radius: tc.rule}
		adaptive := fixed
		adaptive.TargetRadius = Targets{0.5}
		limit := binomialUpper(tc.images, tc.alpha, level)
		var certified [2]float64
		for k, p := range []CertifyParams{fixed, adaptive} {
			kind := []string{"fixed N", "adaptive"}[k]
			r := simulate(t, tc.pop, tc.images, p, 21, nil)
			t.Logf("%s, %s: %v; limit %d", name, kind, r, limit)
			if r.wrongAtR > limit || r.wrong > limit {
				t.Errorf("%s, %s: %d wrong certificates at R and %d of any radius in %d images, more than %d, the %g upper bound for a rate of alpha",
					name, kind, r.wrongAtR, r.wrong, tc.images, limit, level)
			}
			certified[k] = float64(r.certifiedAtR) / float64(tc.images)
			if tc.pop.name == spread.name && p.TargetRadius.Adaptive() && r.samples > float64(p.N)/4 {
				t.Errorf("%s: %.0f samples per image, want at most a quarter of N = %d", name, r.samples, p.N)
			}
		}
		if tc.pop.name == spread.name && math.Abs(certified[0]-certified[1]) > 0.02 {
			t.Errorf("%s: certified at R: %.4f fixed N, %.4f adaptive: want them within 0.02", name, certified[0], certified[1])
		}
	}
	// Without the split of alpha, the hardest images are wrongly certified
	// more often than alpha allows.
	p := CertifyParams{N0: 100, N: 10_000, Alpha: 0.05, Sigma: 0.5, TargetRadius: Targets{0.5}}
	naive := p.looks()
	for k := range naive {
		naive[k].alpha = p.Alpha
	}
	r := simulate(t, hardPA, images/2, p, 21, naive)
	limit := binomialUpper(images/2, p.Alpha, level)
	t.Logf("%s, every look at alpha %v: %v; limit %d", hardPA.name, p.Alpha, r, limit)
	if r.wrongAtR <= limit {
		t.Errorf("every look at the whole alpha: %d wrong certificates, not above the limit %d: the simulation cannot tell a sound split from none", r.wrongAtR, limit)
	}
}

// hardAt is the hardest population for a certificate at R: pA just below
// Phi(R/sigma), so that every certificate at R is wrong.
func hardAt(R, sigma float64) population {
	return population{fmt.Sprintf("pA just below Phi(%v/sigma)", R), func(*rand.Rand) []float64 {
		pA := distuv.UnitNormal.CDF(R/sigma) - 1e-9
		return []float64{pA, 1 - pA}
	}}
}

// TestAdaptiveTableSoundBySimulation: one adaptive run at a table's radii
// (0.25, 0.5, 0.75) is as sound as CERTIFY at every one of them: wrong
// certificates at each radius, and of any radius, stay within what a rate
// of alpha allows, on the spread population and on the hardest images for
// each radius. On the spread population the certified fraction at each
// radius matches fixed-N CERTIFY's within 0.02, with at most a quarter of N
// samples per image. Every look at the whole alpha fails the same check.
func TestAdaptiveTableSoundBySimulation(t *testing.T) {
	images := simImages(t)
	const level = 1e-6
	targets := Targets{0.25, 0.5, 0.75}
	fixed := CertifyParams{N0: 100, N: 10_000, Alpha: 0.05, Sigma: 0.5}
	adaptive := fixed
	adaptive.TargetRadius = targets
	limit := binomialUpper(images, fixed.Alpha, level)
	check := func(name string, rs []simResult, limit int) {
		for k, r := range rs {
			t.Logf("%s, at %v: %v; limit %d", name, targets[k], r, limit)
			if r.wrongAtR > limit || r.wrong > limit {
				t.Errorf("%s, at %v: %d wrong certificates at R and %d of any radius in %d images, more than %d",
					name, targets[k], r.wrongAtR, r.wrong, r.images, limit)
			}
		}
	}
	fixedRes := simulateAt(t, spread, images, fixed, 22, nil, targets)
	adaptiveRes := simulateAt(t, spread, images, adaptive, 22, nil, targets)
	check("spread, fixed N", fixedRes, limit)
	check("spread, adaptive", adaptiveRes, limit)
	for k := range targets {
		f, a := float64(fixedRes[k].certifiedAtR)/float64(images), float64(adaptiveRes[k].certifiedAtR)/float64(images)
		if math.Abs(f-a) > 0.02 {
			t.Errorf("certified at %v: %.4f fixed N, %.4f adaptive: want them within 0.02", targets[k], f, a)
		}
	}
	if s := adaptiveRes[0].samples; s > float64(adaptive.N)/4 {
		t.Errorf("%.0f samples per image, want at most a quarter of N = %d", s, adaptive.N)
	}
	hardLimit := binomialUpper(images/2, fixed.Alpha, level)
	for _, R := range targets {
		check(fmt.Sprintf("hardest at %v, adaptive", R), simulateAt(t, hardAt(R, adaptive.Sigma), images/2, adaptive, 23, nil, targets), hardLimit)
	}
	// Without the split of alpha, the hardest images at the middle radius
	// are wrongly certified there more often than alpha allows.
	naive := adaptive.looks()
	for k := range naive {
		naive[k].alpha = adaptive.Alpha
	}
	r := simulateAt(t, hardAt(0.5, adaptive.Sigma), images/2, adaptive, 23, naive, []float64{0.5})[0]
	t.Logf("hardest at 0.5, every look at alpha %v: %v; limit %d", adaptive.Alpha, r, hardLimit)
	if r.wrongAtR <= hardLimit {
		t.Errorf("every look at the whole alpha: %d wrong certificates at 0.5, not above the limit %d: the simulation cannot tell a sound split from none", r.wrongAtR, hardLimit)
	}
}
