package smoothing

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/torchbind"
)

// linearModel scripts a 2-class linear classifier on 1x2x2 inputs whose
// class-1 logit minus class-0 logit is w.x - b with w = (1, 0, 0, 0): under
// N(0, sigma^2 I) noise at x, class 1 wins with probability
// Phi((x_0 - b) / sigma).
func linearModel(t *testing.T, b float64) *torchbind.Module {
	t.Helper()
	path := filepath.Join(t.TempDir(), "linear.pt")
	script := fmt.Sprintf(`
import torch, torch.nn as nn
lin = nn.Linear(4, 2)
with torch.no_grad():
    lin.weight.copy_(torch.tensor([[0., 0, 0, 0], [1, 0, 0, 0]]))
    lin.bias.copy_(torch.tensor([0., -%v]))
torch.jit.script(nn.Sequential(nn.Flatten(), lin)).save(%q)
`, b, path)
	if out, err := exec.Command(testenv.Python(), "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("making the linear model: %v\n%s", err, out)
	}
	m, err := torchbind.LoadModule(path, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func phi(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

func TestPlanPacksBatches(t *testing.T) {
	got := plan(0, []int{3, 5, 1}, 4)
	want := [][]piece{{{0, 0, 3}, {1, 0, 1}}, {{1, 1, 4}}, {{2, 0, 1}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan = %v, want %v", got, want)
	}
	// Samples 7.. of each stream, as a later look of adaptive CERTIFY.
	got = plan(7, []int{3, 5, 1}, 4)
	want = [][]piece{{{0, 7, 3}, {1, 7, 1}}, {{1, 8, 4}}, {{2, 7, 1}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan from 7 = %v, want %v", got, want)
	}
}

// TestCountsFollowAnalyticProbabilities samples inputs with different
// margins packed into shared batches and checks each input's class-1
// frequency against Phi(margin / sigma).
func TestCountsFollowAnalyticProbabilities(t *testing.T) {
	const sigma, b = 0.5, 0.5
	x0 := []float32{0.5, 0.75, 1.0, 0.1}
	s := &Sampler{
		Model: linearModel(t, b), Device: "cpu", Sigma: sigma, Batch: 700, NumClasses: 2,
		Shape: []int64{1, 2, 2}, Seed: 1, Workers: 2,
		Image: func(x certify.Input) ([]float32, error) { return []float32{x0[x], 0.3, 0.6, 0.9}, nil },
	}
	defer s.Close()
	xs := []certify.Input{0, 1, 2, 3}
	nums := []int{20000, 10000, 5000, 20000}
	counts, err := s.SampleCountsMany(context.Background(), xs, certify.StageEstimation, nums)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range counts {
		n := float64(nums[i])
		if c[0]+c[1] != int64(nums[i]) {
			t.Fatalf("input %d: counts %v do not sum to %d", i, c, nums[i])
		}
		p := phi((float64(x0[i]) - b) / sigma)
		got := float64(c[1]) / n
		se := math.Sqrt(p * (1 - p) / n)
		t.Logf("input %d: P(class 1) = %.4f, analytic %.4f (%.1f standard errors)", i, got, p, (got-p)/se)
		if math.Abs(got-p) > 5*se {
			t.Errorf("input %d: frequency %.4f, analytic %.4f", i, got, p)
		}
	}

	// The same seed, batch and workers give the same counts.
	s2 := &Sampler{Model: s.Model, Device: "cpu", Sigma: sigma, Batch: 700, NumClasses: 2,
		Shape: s.Shape, Seed: 1, Workers: 2, Image: s.Image}
	defer s2.Close()
	again, err := s2.SampleCountsMany(context.Background(), xs, certify.StageEstimation, nums)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(counts) {
		t.Errorf("same seed, different counts: %v vs %v", again, counts)
	}
}

func TestSamplerErrors(t *testing.T) {
	m := linearModel(t, 0)
	img := func(certify.Input) ([]float32, error) { return make([]float32, 4), nil }
	cases := map[string]*Sampler{
		"batch 0":         {Model: m, Device: "cpu", Sigma: 1, Batch: 0, NumClasses: 2, Shape: []int64{1, 2, 2}, Image: img},
		"negative sigma":  {Model: m, Device: "cpu", Sigma: -1, Batch: 10, NumClasses: 2, Shape: []int64{1, 2, 2}, Image: img},
		"wrong shape":     {Model: m, Device: "cpu", Sigma: 1, Batch: 10, NumClasses: 2, Shape: []int64{1, 3, 3}, Image: img},
		"too few classes": {Model: m, Device: "cpu", Sigma: 1, Batch: 10, NumClasses: 1, Shape: []int64{1, 2, 2}, Image: img},
		"bad device":      {Model: m, Device: "nowhere", Sigma: 1, Batch: 10, NumClasses: 2, Shape: []int64{1, 2, 2}, Image: img},
	}
	for name, s := range cases {
		_, err := s.SampleCounts(context.Background(), 0, certify.StageEstimation, 100)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		s.Close()
	}
}

// TestNaNLogitsAreAnError: a model with a NaN weight must not certify
// anything (argmax over NaN logits is class 0); the error names the model
// and the example.
func TestNaNLogitsAreAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nan.pt")
	script := fmt.Sprintf(`
import torch, torch.nn as nn
lin = nn.Linear(4, 2)
with torch.no_grad():
    lin.bias[1] = float('nan')
torch.jit.script(nn.Sequential(nn.Flatten(), lin)).save(%q)
`, path)
	if out, err := exec.Command(testenv.Python(), "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("making the model: %v\n%s", err, out)
	}
	m, err := torchbind.LoadModule(path, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := &Sampler{Model: m, Name: path, Device: "cpu", Sigma: 0.5, Batch: 64, NumClasses: 2, Shape: []int64{1, 2, 2}, Workers: 1,
		Image: func(certify.Input) ([]float32, error) { return make([]float32, 4), nil }}
	defer s.Close()
	_, err = certify.Certify(context.Background(), s, 17, certify.CertifyParams{N0: 10, N: 100, Alpha: 0.001, Sigma: 0.5})
	if err == nil {
		t.Fatal("NaN logits certified")
	}
	for _, want := range []string{path, "NaN or infinite logits", "example 17"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestLogitsCheckedEveryBatch: a model whose output has the right classes
// for small batches (as the load-time check runs) and other classes for
// larger ones is refused at the first such batch, not counted.
func TestLogitsCheckedEveryBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shifty.pt")
	script := fmt.Sprintf(`
import torch, torch.nn as nn
class Shifty(nn.Module):
    def forward(self, x):
        y = x.flatten(1).repeat(1, 3)
        if x.shape[0] <= 2:
            return y[:, :10]
        return y[:, :5]
torch.jit.script(Shifty()).save(%q)
`, path)
	// TorchScript compiles a class from its source file, so not with -c.
	py := filepath.Join(t.TempDir(), "shifty.py")
	if err := os.WriteFile(py, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testenv.Python(), py).CombinedOutput(); err != nil {
		t.Fatalf("making the model: %v\n%s", err, out)
	}
	m, err := torchbind.LoadModule(path, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := &Sampler{Model: m, Name: path, Device: "cpu", Sigma: 0.5, Batch: 64, NumClasses: 10, Shape: []int64{1, 2, 2}, Workers: 1,
		Image: func(certify.Input) ([]float32, error) { return make([]float32, 4), nil }}
	defer s.Close()
	_, err = certify.Certify(context.Background(), s, 3, certify.CertifyParams{N0: 10, N: 100, Alpha: 0.001, Sigma: 0.5})
	if err == nil || !strings.Contains(err.Error(), "gives logits shaped [10 5] for a batch of 10 noisy copies, want [10 10]") {
		t.Errorf("logits of 5 classes counted as 10: %v", err)
	}
}
