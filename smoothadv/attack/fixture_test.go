package attack

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/torchbind"
)

// The fixture is a nearest-prototype linear classifier on 1x4x4 images of 3
// classes: prototype k has pixel j at 0.75 when bit k of j is set and 0.25
// otherwise, and logit k is tau * (mu_k . x - |mu_k|^2 / 2). Images are
// their prototype plus a little noise, quantised to 8 bits, so the classifier
// is right on nearly all of them under N(0, 0.25^2) noise, and its input
// gradient is easy to write down.
const (
	classes = 3
	size    = 16 // 1x4x4
	tau     = 4.0
	sigma   = 0.25
)

var imageShape = []int64{1, 4, 4}

var fixture struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

func prototype(k int) []float64 {
	mu := make([]float64, size)
	for j := range mu {
		mu[j] = 0.25 + 0.5*float64(j>>k&1)
	}
	return mu
}

// modelPath scripts the fixture with testenv.Python() once per test binary.
func modelPath(t *testing.T) string {
	t.Helper()
	fixture.once.Do(func() {
		fixture.dir, fixture.err = os.MkdirTemp("", "attack-test")
		if fixture.err != nil {
			return
		}
		var spec struct {
			Weight [][]float64 `json:"weight"`
			Bias   []float64   `json:"bias"`
		}
		for k := range classes {
			mu := prototype(k)
			w := make([]float64, size)
			sq := 0.0
			for j, v := range mu {
				w[j] = tau * v
				sq += v * v
			}
			spec.Weight = append(spec.Weight, w)
			spec.Bias = append(spec.Bias, -tau*sq/2)
		}
		js, _ := json.Marshal(spec)
		script := `
import json, sys, torch, torch.nn as nn
spec = json.loads(sys.argv[1])
lin = nn.Linear(len(spec["weight"][0]), len(spec["weight"]))
with torch.no_grad():
    lin.weight.copy_(torch.tensor(spec["weight"]))
    lin.bias.copy_(torch.tensor(spec["bias"]))
torch.jit.script(nn.Sequential(nn.Flatten(), lin).eval()).save(sys.argv[2])
`
		path := filepath.Join(fixture.dir, "linear.pt")
		out, err := exec.Command(testenv.Python(), "-c", script, string(js), path).CombinedOutput()
		if err != nil {
			fixture.err = &pythonError{err, string(out)}
		}
	})
	if fixture.err != nil {
		t.Fatalf("making the linear fixture: %v", fixture.err)
	}
	return filepath.Join(fixture.dir, "linear.pt")
}

type pythonError struct {
	err error
	out string
}

func (e *pythonError) Error() string { return e.err.Error() + "\n" + e.out }

// linear is the fixture's weights in float64, read back from the module.
type linear struct {
	w [][]float64 // [classes][size]
	b []float64
}

// loadLinear loads the fixture onto device, frozen in evaluation mode as
// callers of Attack must, with its weights.
func loadLinear(t *testing.T, device string) (*torchbind.Module, linear) {
	t.Helper()
	m, err := torchbind.LoadModule(modelPath(t), device)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if err := m.Train(false); err != nil {
		t.Fatal(err)
	}
	if err := m.SetRequiresGrad(false); err != nil {
		t.Fatal(err)
	}
	ps, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer torchbind.CloseAll(ps)
	w, err := ps[0].T.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ps[1].T.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	var l linear
	for k := range classes {
		l.w = append(l.w, widen(w[k*size:(k+1)*size]))
	}
	l.b = widen(b)
	return m, l
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// probs is the softmax of the classifier's logits at v.
func (l linear) probs(v []float64) []float64 {
	z := make([]float64, classes)
	top := math.Inf(-1)
	for k := range z {
		z[k] = l.b[k]
		for j, x := range v {
			z[k] += l.w[k][j] * x
		}
		top = max(top, z[k])
	}
	sum := 0.0
	for k := range z {
		z[k] = math.Exp(z[k] - top)
		sum += z[k]
	}
	for k := range z {
		z[k] /= sum
	}
	return z
}

func argmax(p []float64) int {
	best := 0
	for k := range p {
		if p[k] > p[best] {
			best = k
		}
	}
	return best
}

// problem is a batch of images with labels and m noise draws per image, in
// float64 (rows of images, noise[b][i] for copy i of image b) and as the
// tiled tensors Attack takes on device.
type problem struct {
	images [][]float64
	labels []int
	noise  [][][]float64
	m      int
	device string
}

func newProblem(n, m int, seed uint64) problem {
	rng := rand.New(rand.NewPCG(seed, 1))
	p := problem{m: m, device: "cpu"}
	for i := range n {
		y := i % classes
		mu := prototype(y)
		x := make([]float64, size)
		for j := range x {
			v := min(1, max(0, mu[j]+0.05*rng.NormFloat64()))
			x[j] = float64(float32(math.Round(v*255) / 255))
		}
		var draws [][]float64
		for range m {
			d := make([]float64, size)
			for j := range d {
				d[j] = float64(float32(sigma * rng.NormFloat64()))
			}
			draws = append(draws, d)
		}
		p.images = append(p.images, x)
		p.labels = append(p.labels, y)
		p.noise = append(p.noise, draws)
	}
	return p
}

// tensors are the tiled inputs, per-image labels and tiled noise.
func (p problem) tensors(t *testing.T, s *torchbind.Scope) (inputs, labels, noise *torchbind.Tensor) {
	t.Helper()
	var x, n []float32
	ys := make([]int64, len(p.labels))
	for b, img := range p.images {
		for i := range p.m {
			for j := range size {
				x = append(x, float32(img[j]))
				n = append(n, float32(p.noise[b][i][j]))
			}
		}
		ys[b] = int64(p.labels[b])
	}
	shape := append([]int64{int64(len(p.images) * p.m)}, imageShape...)
	inputs = s.FromFloat32(x, p.device, shape...)
	noise = s.FromFloat32(n, p.device, shape...)
	labels = s.FromInt64(ys, p.device, int64(len(ys)))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return inputs, labels, noise
}

// run attacks the problem and returns each image's delta, after checking
// that the m copies of an image carry the same one.
func (p problem) run(t *testing.T, c Config, model Classifier, withNoise bool) [][]float64 {
	t.Helper()
	s := torchbind.NewScope()
	defer s.Close()
	inputs, labels, noise := p.tensors(t, s)
	if !withNoise {
		noise = nil
	}
	g, err := torchbind.NewGenerator(p.device, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	before := s.Len()
	adv, err := c.Attack(s, model, inputs, labels, noise, g)
	if err != nil {
		t.Fatalf("%+v: %v", c, err)
	}
	if got := s.Len() - before; got != 1 {
		t.Errorf("%+v: the attack left %d tensors in the caller's scope, want 1", c, got)
	}
	if shape := adv.Shape(); shape[0] != int64(len(p.images)*p.m) || len(shape) != 4 {
		t.Fatalf("%+v: result shape %v", c, shape)
	}
	vals, err := adv.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	deltas := make([][]float64, len(p.images))
	for b, img := range p.images {
		for i := range p.m {
			row := vals[(b*p.m+i)*size : (b*p.m+i+1)*size]
			for j := range size {
				d := float64(row[j]) - img[j]
				if i == 0 {
					deltas[b] = append(deltas[b], d)
				} else if d != deltas[b][j] {
					t.Fatalf("%+v: copy %d of image %d has another delta", c, i, b)
				}
			}
		}
	}
	return deltas
}

// smoothedLoss is the multi-noise loss at x + delta: per image
// -log(mean_i softmax_y(x + delta + n_i)), averaged over images.
func (l linear) smoothedLoss(p problem, deltas [][]float64) float64 {
	total := 0.0
	for b, x := range p.images {
		avg := 0.0
		for _, n := range p.noise[b] {
			avg += l.probs(add(x, deltas[b], n))[p.labels[b]]
		}
		total -= math.Log(avg / float64(p.m))
	}
	return total / float64(len(p.images))
}

// noisyAccuracy is the fraction of the noisy copies x + delta + n_i that the
// classifier gets right.
func (l linear) noisyAccuracy(p problem, deltas [][]float64) float64 {
	right := 0
	for b, x := range p.images {
		for _, n := range p.noise[b] {
			if argmax(l.probs(add(x, deltas[b], n))) == p.labels[b] {
				right++
			}
		}
	}
	return float64(right) / float64(len(p.images)*p.m)
}

// zeros is a zero delta for each of n images.
func zeros(n int) [][]float64 {
	out := make([][]float64, n)
	for b := range out {
		out[b] = make([]float64, size)
	}
	return out
}

func add(vs ...[]float64) []float64 {
	out := make([]float64, len(vs[0]))
	for _, v := range vs {
		for j := range out {
			out[j] += v[j]
		}
	}
	return out
}

func norm(v []float64) float64 {
	sq := 0.0
	for _, x := range v {
		sq += x * x
	}
	return math.Sqrt(sq)
}
