package attack

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Models are classifiers.
var _ Classifier = (*models.Model)(nil)

func TestValidateRejectsBadConfigs(t *testing.T) {
	ok := Config{Kind: PGD, Epsilon: 0.25, Steps: 1, NoiseVectors: 1}
	ddn := Config{Kind: DDN, Epsilon: 0.25, Steps: 2, NoiseVectors: 4, InitNorm: DefaultInitNorm, Gamma: DefaultGamma}
	for _, c := range []Config{ok, ddn, {Kind: PGD, Epsilon: 2, Steps: 10, NoiseVectors: 8, NoGrad: true}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	edit := func(c Config, f func(*Config)) Config { f(&c); return c }
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{edit(ok, func(c *Config) { c.Kind = "FGSM" }), `unknown attack "FGSM"`},
		{edit(ok, func(c *Config) { c.Epsilon = 0 }), "epsilon must be positive"},
		{edit(ok, func(c *Config) { c.Epsilon = math.NaN() }), "epsilon must be positive"},
		{edit(ok, func(c *Config) { c.Epsilon = math.Inf(1) }), "epsilon must be positive and finite"},
		{edit(ok, func(c *Config) { c.Steps = 0 }), "steps must be at least 1"},
		{edit(ok, func(c *Config) { c.NoiseVectors = 0 }), "noise vectors must be at least 1"},
		{edit(ddn, func(c *Config) { c.InitNorm = 0 }), "DDN initial norm must be positive"},
		{edit(ddn, func(c *Config) { c.Gamma = 1 }), "DDN gamma must lie in [0, 1)"},
		{edit(ddn, func(c *Config) { c.Gamma = -0.1 }), "DDN gamma must lie in [0, 1)"},
		{edit(ddn, func(c *Config) { c.NoGrad = true }), "no gradient-free multi-noise variant"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.c, err, tc.want)
		}
	}
	// Every problem is reported at once.
	err := Config{Kind: DDN}.Validate()
	for _, want := range []string{"epsilon", "steps", "noise vectors", "initial norm"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("zero DDN config: error %v does not mention %s", err, want)
		}
	}
}

func TestUnitsAndEvalGamma(t *testing.T) {
	if got := From256(64); got != 0.25 {
		t.Errorf("From256(64) = %v, want 0.25", got)
	}
	if got := From256(256); got != DefaultInitNorm {
		t.Errorf("From256(256) = %v, want %v", got, DefaultInitNorm)
	}
	// After steps shrinking steps a norm of eps reaches 3/510.
	for _, tc := range []struct {
		eps   float64
		steps int
	}{{0.25, 10}, {1, 2}, {0.5, 1}} {
		g, err := EvalGamma(tc.eps, tc.steps)
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.eps * math.Pow(1-g, float64(tc.steps)); math.Abs(got-3.0/510) > 1e-12 {
			t.Errorf("EvalGamma(%v, %d) = %v: shrinks eps to %v, want 3/510", tc.eps, tc.steps, g, got)
		}
	}
	for _, tc := range []struct {
		eps   float64
		steps int
	}{{0, 1}, {0.001, 1}, {0.25, 0}, {math.NaN(), 1}} {
		if _, err := EvalGamma(tc.eps, tc.steps); err == nil {
			t.Errorf("EvalGamma(%v, %d) succeeded", tc.eps, tc.steps)
		}
	}
}

// TestDDNScheduleMatchesTorch compares the learning rates with those of
// torch 1.13's CosineAnnealingLR(SGD(lr=1), T_max=5, eta_min=0.01), read
// after each scheduler.step() as the reference steps it before each
// iteration.
func TestDDNScheduleMatchesTorch(t *testing.T) {
	want := []float64{0.905463412215599, 0.657963412215599, 0.352036587784401, 0.10453658778440104, 0.01}
	for i, w := range want {
		if got := ddnLR(i, len(want)); math.Abs(got-w) > 1e-15 {
			t.Errorf("step %d: lr %v, torch %v", i, got, w)
		}
	}
}

func TestAttackRejectsBadTensors(t *testing.T) {
	model, _ := loadLinear(t, "cpu")
	s := torchbind.NewScope()
	defer s.Close()
	p := newProblem(2, 2, 1)
	inputs, labels, noise := p.tensors(t, s)
	g, err := torchbind.NewGenerator("cpu", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := Config{Kind: PGD, Epsilon: 0.5, Steps: 2, NoiseVectors: 2}
	if _, err := c.Attack(nil, model, inputs, labels, noise, g); err == nil || !strings.Contains(err.Error(), "needs a scope") {
		t.Errorf("nil scope: error %v", err)
	}
	for _, tc := range []struct {
		name                  string
		c                     Config
		model                 Classifier
		inputs, labels, noise *torchbind.Tensor
		g                     *torchbind.Generator
		want                  string
	}{
		{"bad config", Config{Kind: PGD}, model, inputs, labels, noise, g, "epsilon must be positive"},
		{"nil model", c, nil, inputs, labels, noise, g, "a model"},
		{"nil generator", c, model, inputs, labels, noise, nil, "generator"},
		{"rows not tiled m times", Config{Kind: PGD, Epsilon: 0.5, Steps: 2, NoiseVectors: 3}, model, inputs, labels, noise, g, "tiled 3 times"},
		{"tiled labels", c, model, inputs, s.FromInt64([]int64{0, 0, 1, 1}, "cpu", 4), noise, g, "one per image"},
		{"float labels", c, model, inputs, s.ToFloat32(labels), noise, g, "int64"},
		{"label out of range", c, model, inputs, s.FromInt64([]int64{0, 3}, "cpu", 2), noise, g, "outside the classifier's 3 classes"},
		{"negative label", c, model, inputs, s.FromInt64([]int64{-1, 0}, "cpu", 2), noise, g, "outside the classifier's 3 classes"},
		{"noise shape", c, model, inputs, labels, s.Narrow(noise, 0, 0, 2), g, "noise of shape"},
		{"inputs above 1", c, model, s.AddScalar(inputs, 1), labels, noise, g, "must lie in [0, 1]"},
		{"inputs below 0", c, model, s.AddScalar(inputs, -1), labels, noise, g, "must lie in [0, 1]"},
		{"closed inputs", c, model, &torchbind.Tensor{}, labels, noise, g, "inputs"},
		{"stein without noise", Config{Kind: PGD, Epsilon: 0.5, Steps: 2, NoiseVectors: 2, NoGrad: true}, model, inputs, labels, nil, g, "needs noise"},
	} {
		before := s.Len()
		_, err := tc.c.Attack(s, tc.model, tc.inputs, tc.labels, tc.noise, tc.g)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if s.Len() != before || s.Err() != nil {
			t.Errorf("%s: the failed attack touched the caller's scope", tc.name)
		}
	}
}

// variant is an attack configuration under test; noise false attacks the
// base classifier without noise.
type variant struct {
	name  string
	c     Config
	noise bool
}

// attacks are the variants the properties below must hold for.
func attacks(eps float64, steps int) []variant {
	pgd := Config{Kind: PGD, Epsilon: eps, Steps: steps, NoiseVectors: 1}
	ddn := Config{Kind: DDN, Epsilon: eps, Steps: steps, NoiseVectors: 1, InitNorm: DefaultInitNorm, Gamma: DefaultGamma}
	multi := func(c Config, m int, noGrad bool) Config { c.NoiseVectors, c.NoGrad = m, noGrad; return c }
	return []variant{
		{"PGD", pgd, true},
		{"PGD base", pgd, false},
		{"SmoothAdvPGD m=4", multi(pgd, 4, false), true},
		{"Stein m=32", multi(pgd, 32, true), true},
		{"DDN", ddn, true},
		{"SmoothAdvDDN m=4", multi(ddn, 4, false), true},
	}
}

func TestStaysInBallAndBox(t *testing.T) {
	model, _ := loadLinear(t, "cpu")
	for _, eps := range []float64{0.1, 0.5, 3} {
		for _, a := range attacks(eps, 6) {
			p := newProblem(12, a.c.NoiseVectors, 2)
			deltas := p.run(t, a.c, model, a.noise)
			// DDN quantises its final delta, which may overshoot by half a
			// level per value (see ddn).
			bound := eps + 1e-5
			if a.c.Kind == DDN {
				bound += math.Sqrt(size) / 510
			}
			for b, d := range deltas {
				if n := norm(d); n > bound {
					t.Errorf("%s eps %v: image %d moved %v > %v", a.name, eps, b, n, bound)
				}
				for j, v := range add(p.images[b], d) {
					if v < -1e-6 || v > 1+1e-6 {
						t.Fatalf("%s eps %v: image %d value %d is %v, outside [0, 1]", a.name, eps, b, j, v)
					}
				}
			}
		}
	}
}

func TestRaisesSmoothedLoss(t *testing.T) {
	model, l := loadLinear(t, "cpu")
	for _, a := range attacks(0.5, 8) {
		p := newProblem(24, a.c.NoiseVectors, 3)
		clean := l.smoothedLoss(p, zeros(len(p.images)))
		attacked := l.smoothedLoss(p, p.run(t, a.c, model, a.noise))
		t.Logf("%-18s smoothed loss clean %.4f attacked %.4f", a.name, clean, attacked)
		if !(attacked > 1.25*clean) {
			t.Errorf("%s: smoothed loss %v under attack, %v clean", a.name, attacked, clean)
		}
	}
}

// TestSteinAscends checks the sign convention of the gradient-free attack:
// with many noise draws, its one-step delta points along the gradient of the
// smoothed loss. The estimator is noisy (softmax_y is near 1, so most of it
// is the mean noise), so a cosine well above 0 is the test; a wrong sign
// gives about -0.5 here.
func TestSteinAscends(t *testing.T) {
	model, l := loadLinear(t, "cpu")
	p := newProblem(6, 512, 10)
	deltas := p.run(t, Config{Kind: PGD, Epsilon: 0.05, Steps: 1, NoiseVectors: p.m, NoGrad: true}, model, true)
	grads := l.direction(p, zeros(len(p.images)), false)
	for b, d := range deltas {
		cos := 0.0
		for j := range d {
			cos += d[j] * grads[b][j]
		}
		cos /= norm(d) * norm(grads[b])
		t.Logf("image %d: cosine with the smoothed-loss gradient %.3f", b, cos)
		if cos < 0.2 {
			t.Errorf("image %d: the Stein step has cosine %v with the gradient", b, cos)
		}
	}
}

// TestAccuracyFallsWithEpsilon attacks the same noisy batch at growing radii
// and checks that the noisy accuracy never rises and ends below the clean
// one.
func TestAccuracyFallsWithEpsilon(t *testing.T) {
	model, l := loadLinear(t, "cpu")
	radii := []float64{0.125, 0.25, 0.5, 1, 2}
	for _, a := range attacks(1, 10) {
		p := newProblem(60, a.c.NoiseVectors, 4)
		accs := []float64{l.noisyAccuracy(p, zeros(len(p.images)))}
		for _, eps := range radii {
			c := a.c
			c.Epsilon = eps
			accs = append(accs, l.noisyAccuracy(p, p.run(t, c, model, a.noise)))
		}
		t.Logf("%-18s accuracy at eps 0 %v: %v", a.name, radii, fmt.Sprintf("%.3f", accs))
		for i := 1; i < len(accs); i++ {
			if accs[i] > accs[i-1] {
				t.Errorf("%s: accuracy rose from %v to %v at eps %v", a.name, accs[i-1], accs[i], radii[i-1])
			}
		}
		if accs[len(accs)-1] >= accs[0] {
			t.Errorf("%s: accuracy %v at eps %v, %v clean", a.name, accs[len(accs)-1], radii[len(radii)-1], accs[0])
		}
	}
}

// TestMatchesHandComputation runs each attack on the linear fixture and
// compares it with the reference's rules computed independently in float64
// (hand_test.go).
func TestMatchesHandComputation(t *testing.T) {
	model, l := loadLinear(t, "cpu")
	worst := 0.0
	for _, tc := range []struct {
		c     Config
		seed  uint64
		noise bool
	}{
		{Config{Kind: PGD, Epsilon: 0.5, Steps: 1, NoiseVectors: 1}, 5, true},
		{Config{Kind: PGD, Epsilon: 0.5, Steps: 3, NoiseVectors: 1}, 5, true},
		{Config{Kind: PGD, Epsilon: 0.3, Steps: 3, NoiseVectors: 1}, 5, false},
		{Config{Kind: PGD, Epsilon: 0.5, Steps: 1, NoiseVectors: 3}, 6, true},
		{Config{Kind: PGD, Epsilon: 2, Steps: 4, NoiseVectors: 3}, 6, true},
		{Config{Kind: PGD, Epsilon: 0.5, Steps: 1, NoiseVectors: 3, NoGrad: true}, 7, true},
		{Config{Kind: PGD, Epsilon: 2, Steps: 4, NoiseVectors: 3, NoGrad: true}, 7, true},
		{Config{Kind: DDN, Epsilon: 0.5, Steps: 3, NoiseVectors: 1, InitNorm: 0.5, Gamma: DefaultGamma}, 8, true},
		{Config{Kind: DDN, Epsilon: 1, Steps: 4, NoiseVectors: 3, InitNorm: 0.4, Gamma: 0.2}, 9, true},
	} {
		p := newProblem(6, tc.c.NoiseVectors, tc.seed)
		if !tc.noise {
			for b := range p.noise {
				p.noise[b] = zeros(tc.c.NoiseVectors)
			}
		}
		var want [][]float64
		if tc.c.Kind == DDN {
			want = handDDN(t, l, tc.c, p)
		} else {
			want = handPGD(l, tc.c, p)
		}
		// Whole, and split into 4 pieces of 1 or 2 images attacked at once.
		for _, workers := range []int{1, 4} {
			c := tc.c
			c.Workers = workers
			d := maxDiff(p.run(t, c, model, tc.noise), want)
			worst = max(worst, d)
			t.Logf("%+v: max |attack - hand| = %.2g", c, d)
			if d > 1e-5 {
				t.Errorf("%+v: differs from the hand computation by %v", c, d)
			}
		}
		if tc.c.Kind == DDN {
			moved := 0
			for _, w := range want {
				if norm(w) > 0 {
					moved++
				}
			}
			t.Logf("DDN made %d of %d images adversarial", moved, len(want))
		}
	}
	t.Logf("largest difference %.2g", worst)
}

// TestLeavesNoParameterGradients attacks a model whose parameters still
// require gradients: the attack differentiates with respect to delta alone.
func TestLeavesNoParameterGradients(t *testing.T) {
	model, err := torchbind.LoadModule(modelPath(t), "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	newProblem(4, 2, 1).run(t, Config{Kind: PGD, Epsilon: 0.5, Steps: 2, NoiseVectors: 2}, model, true)
	ps, err := model.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer torchbind.CloseAll(ps)
	s := torchbind.NewScope()
	defer s.Close()
	for _, p := range ps {
		if g := s.GradOf(p.T); g != nil {
			t.Errorf("%s has a gradient after the attack", p.Name)
		}
	}
}

// TestAttacksConvolutionalTemplate runs the attacks on the exported
// Fashion-MNIST CNN (NCHW images, BatchNorm in evaluation mode), where
// `make models` has built it.
func TestAttacksConvolutionalTemplate(t *testing.T) {
	dir := testenv.ModelsDir()
	if _, err := os.Stat(filepath.Join(dir, "fashion_cnn.pt")); err != nil {
		t.Skip("no exported fashion_cnn (run make models)")
	}
	model, err := models.New("fashion_cnn", 3, models.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if err := model.Train(false); err != nil {
		t.Fatal(err)
	}
	if err := model.SetRequiresGrad(false); err != nil {
		t.Fatal(err)
	}
	const images, m, eps = 5, 2, 0.5
	for _, c := range []Config{
		{Kind: PGD, Epsilon: eps, Steps: 3, NoiseVectors: m},
		{Kind: DDN, Epsilon: eps, Steps: 3, NoiseVectors: m, InitNorm: DefaultInitNorm, Gamma: DefaultGamma},
	} {
		// Whole, then in 3 pieces attacked at once (BatchNorm in evaluation
		// mode looks at one image at a time): the same perturbations.
		var whole []float32
		for _, workers := range []int{1, 3} {
			c.Workers = workers
			adv := attackTemplate(t, model, c, images, eps)
			if whole == nil {
				whole = adv
				continue
			}
			worst := 0.0
			for i := range adv {
				worst = max(worst, math.Abs(float64(adv[i]-whole[i])))
			}
			t.Logf("%s in %d pieces: max |adv - whole| = %.2g", c.Kind, workers, worst)
			if worst > 1e-5 {
				t.Errorf("%s in %d pieces: adversarial inputs differ from the whole batch's by %v", c.Kind, workers, worst)
			}
		}
	}
}

// attackTemplate attacks images random Fashion-MNIST-shaped images with c
// and returns the adversarial inputs, after checking they stayed in the ball.
func attackTemplate(t *testing.T, model Classifier, c Config, images int, eps float64) []float32 {
	t.Helper()
	g, err := torchbind.NewGenerator("cpu", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := torchbind.NewScope()
	defer s.Close()
	x := quantize(s, s.Rand(g, "cpu", int64(images), 1, 28, 28))
	inputs := s.RepeatInterleave(x, []int64{int64(c.NoiseVectors)})
	noise := s.RandnLike(inputs, sigma, g)
	// Labels the model gives the clean images, so that DDN has work to do.
	labels := s.Argmax(model.Forward(s, x), 1)
	adv, err := c.Attack(s, model, inputs, labels, noise, g)
	if err != nil {
		t.Fatalf("%s: %v", c.Kind, err)
	}
	moved, err := s.L2Norms(s.Sub(adv, inputs)).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, %d workers: per-row ||delta|| %v", c.Kind, c.Workers, moved)
	for i, n := range moved {
		if float64(n) > eps+math.Sqrt(28*28)/510 || (c.Kind == PGD && float64(n) > eps+1e-5) {
			t.Errorf("%s: row %d moved %v", c.Kind, i, n)
		}
	}
	vals, err := adv.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestCUDAMatchesCPU runs the attacks on the GPU where there is one: PGD
// agrees with the CPU run, DDN (whose rounding to 8 bits may land
// elsewhere) stays in its ball and box.
func TestCUDAMatchesCPU(t *testing.T) {
	if !torchbind.CUDAAvailable() {
		t.Skip("no CUDA device visible to libtorch")
	}
	cpuModel, _ := loadLinear(t, "cpu")
	gpuModel, _ := loadLinear(t, "cuda:0")
	const eps = 0.5
	for _, a := range attacks(eps, 5) {
		p := newProblem(12, a.c.NoiseVectors, 11)
		want := p.run(t, a.c, cpuModel, a.noise)
		p.device = "cuda:0"
		got := p.run(t, a.c, gpuModel, a.noise)
		if a.c.Kind == DDN {
			for b, d := range got {
				if n := norm(d); n > eps+math.Sqrt(size)/510 {
					t.Errorf("%s on CUDA: image %d moved %v", a.name, b, n)
				}
			}
			continue
		}
		if d := maxDiff(got, want); d > 1e-4 {
			t.Errorf("%s: CUDA and CPU differ by %v", a.name, d)
		}
	}
}

// scopeWatcher records how many tensors the scope of each forward pass holds.
type scopeWatcher struct {
	Classifier
	held []int
}

func (w *scopeWatcher) Forward(s *torchbind.Scope, x *torchbind.Tensor) *torchbind.Tensor {
	w.held = append(w.held, s.Len())
	return w.Classifier.Forward(s, x)
}

// TestStepsRunInConstantMemory checks that every step works in a scope of
// its own: the scope holds as many tensors at the last forward pass as at
// the second.
func TestStepsRunInConstantMemory(t *testing.T) {
	model, _ := loadLinear(t, "cpu")
	for _, a := range attacks(0.5, 40) {
		w := &scopeWatcher{Classifier: model}
		newProblem(3, a.c.NoiseVectors, 12).run(t, a.c, w, a.noise)
		if len(w.held) != a.c.Steps || w.held[1] != w.held[len(w.held)-1] {
			t.Errorf("%s: tensors in scope at each forward pass: %v", a.name, w.held)
		}
	}
}

// TestDirectionsIgnoreTheSplit takes each step's random rows piece by piece,
// the pieces racing each other, and checks that together they are the
// whole batch's draw, step by step, from a generator seeded alike.
func TestDirectionsIgnoreTheSplit(t *testing.T) {
	const images, rowSize, steps, seed = 7, 5, 3, 11
	s := torchbind.NewScope()
	defer s.Close()
	whole := &batch{clean: s.Zeros(torchbind.Float32, "cpu", images, rowSize)}
	g, err := torchbind.NewGenerator("cpu", seed)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	bounds := []int64{0, 2, 3, 7}
	d, err := newDirections(g, whole, len(bounds)-1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	got := make([][][]float32, len(bounds)-1) // [piece][step] rows
	var wg sync.WaitGroup
	for k := range len(bounds) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps := torchbind.NewScope()
			defer ps.Close()
			for i := range steps {
				v, err := d.from(bounds[k]).rows(ps, i, bounds[k+1]-bounds[k]).Float32s()
				if err != nil {
					t.Error(err)
					return
				}
				got[k] = append(got[k], v)
			}
		}()
	}
	wg.Wait()
	if len(d.steps) != 0 {
		t.Errorf("%d steps' draws still held after every piece took its rows", len(d.steps))
	}
	ref, err := torchbind.NewGenerator("cpu", seed)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for i := range steps {
		want, err := s.Randn(ref, 1, "cpu", images, rowSize).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		var joined []float32
		for k := range got {
			if len(got[k]) <= i {
				t.Fatalf("piece %d took %d steps", k, len(got[k]))
			}
			joined = append(joined, got[k][i]...)
		}
		if !slices.Equal(joined, want) {
			t.Errorf("step %d: pieces' rows %v, want the whole draw %v", i, joined, want)
		}
	}
}
