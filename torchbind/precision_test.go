package torchbind

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

func TestParsePrecision(t *testing.T) {
	for in, want := range map[string]Precision{"": FP32, "fp32": FP32, "BF16": BF16, "fp16": FP16} {
		if got, err := ParsePrecision(in); err != nil || got != want {
			t.Errorf("ParsePrecision(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePrecision("fp8"); err == nil || !strings.Contains(err.Error(), Precisions) {
		t.Errorf("fp8: error %v, want one listing %s", err, Precisions)
	}
	if err := FP16.CheckDevice("cpu"); err == nil || !strings.Contains(err.Error(), "bf16") {
		t.Errorf("fp16 on cpu: error %v, want a refusal pointing to bf16", err)
	}
	for _, ok := range []struct {
		p   Precision
		dev string
	}{{FP32, "cpu"}, {BF16, "cpu"}, {FP16, "cuda:0"}} {
		if err := ok.p.CheckDevice(ok.dev); err != nil {
			t.Errorf("%s on %s refused: %v", ok.p, ok.dev, err)
		}
	}
}

// inferAll runs m on the golden inputs of arch on dev with each of opts and
// returns the logits, and the golden PyTorch logits.
func inferAll(t *testing.T, m *Module, arch, dev string, opts ...InferOptions) ([][]float32, []float32) {
	t.Helper()
	g := loadManifest(t)[arch]
	s := NewScope()
	defer s.Close()
	x := s.FromFloat32(readF32(t, g.Input), dev, g.InputShape...)
	var out [][]float32
	for _, o := range opts {
		y := m.InferWith(s, x, o)
		if err := s.Err(); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		v, err := y.Float32s() // fails unless the logits are float32
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		out = append(out, v)
	}
	return out, readF32(t, g.Logits)
}

// TestInferWithOnCPU checks the options against PyTorch's float32 logits
// for the same weights and inputs: channels-last gives them to float32
// rounding; bf16 autocast really computes in bf16 (the logits move) but
// stays close (bf16 keeps 8 bits of mantissa).
func TestInferWithOnCPU(t *testing.T) {
	frozen, err := loadModel(t, "cifar_resnet20").Frozen()
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	got, want := inferAll(t, frozen, "cifar_resnet20", "cpu", InferOptions{Precision: FP32}, InferOptions{ChannelsLast: true})
	for i, name := range []string{"fp32", "fp32 channels-last"} {
		if d := maxAbsDiff(got[i], want); d > 1e-4 {
			t.Errorf("%s: max |logit - pytorch| = %.3g", name, d)
		}
	}
	t.Run("bf16", func(t *testing.T) {
		testenv.SkipBF16UnderISACap(t)
		got, want := inferAll(t, frozen, "cifar_resnet20", "cpu", InferOptions{Precision: BF16}, InferOptions{Precision: BF16, ChannelsLast: true})
		for i, name := range []string{"bf16", "bf16 channels-last"} {
			d := maxAbsDiff(got[i], want)
			t.Logf("%s: max |logit - pytorch fp32| = %.3g", name, d)
			if d < 1e-4 || d > 0.5 {
				t.Errorf("%s: max |logit - pytorch fp32| = %.3g, want a bf16 rounding (1e-4 .. 0.5)", name, d)
			}
		}
	})
}

func TestInferWithRefusesFP16OnCPU(t *testing.T) {
	m := loadModel(t, "fashion_cnn")
	s := NewScope()
	defer s.Close()
	x := s.Zeros(Float32, "cpu", 2, 1, 28, 28)
	if y := m.InferWith(s, x, InferOptions{Precision: FP16}); s.Err() == nil || !strings.Contains(s.Err().Error(), "CUDA") {
		t.Errorf("fp16 on cpu: %v, error %v; want a refusal naming CUDA", y, s.Err())
	}
	s2 := NewScope()
	defer s2.Close()
	if m.InferWith(s2, s2.Zeros(Float32, "cpu", 2, 784), InferOptions{ChannelsLast: true}); s2.Err() == nil {
		t.Error("channels-last accepted a 2-d input")
	}
}

// TestCUDAInferWith: on a GPU, bf16 and fp16 autocast logits stay near the
// CPU's float32 ones; channels-last float32 matches them (TF32 allowed) and
// picks the same classes.
func TestCUDAInferWith(t *testing.T) {
	dev := cudaDevice(t)
	m := loadModel(t, "cifar_resnet110")
	if err := m.To(dev); err != nil {
		t.Fatal(err)
	}
	got, want := inferAll(t, m, "cifar_resnet110", dev,
		InferOptions{}, InferOptions{ChannelsLast: true}, InferOptions{Precision: BF16}, InferOptions{Precision: FP16, ChannelsLast: true})
	for i, name := range []string{"fp32", "fp32 channels-last", "bf16", "fp16 channels-last"} {
		d := maxAbsDiff(got[i], want)
		t.Logf("%s on %s: max |logit - pytorch cpu fp32| = %.3g", name, dev, d)
		tol := 5e-3
		if i >= 2 {
			tol = 0.5
		}
		if d > tol {
			t.Errorf("%s: max diff %.3g > %g", name, d, tol)
		}
		// Random inputs may sit near a tie, where reduced precision can flip
		// the class: only float32 must agree.
		if a, b := argmaxRows(got[i], 10), argmaxRows(want, 10); i < 2 && !slices.Equal(a, b) {
			t.Errorf("%s: classes %v, pytorch %v", name, a, b)
		}
	}
}

func argmaxRows(v []float32, classes int) []int {
	var out []int
	for r := 0; r+classes <= len(v); r += classes {
		best, bi := float32(math.Inf(-1)), 0
		for k, x := range v[r : r+classes] {
			if x > best {
				best, bi = x, k
			}
		}
		out = append(out, bi)
	}
	return out
}

// TestFrozenForAttackExactInFloat64: the frozen copy that attacks run on
// (BatchNorm folded into the convolutions) is the eval-mode module's own
// function. In float64 its logits and input gradients agree with the
// module's to rounding (1e-12 relative); float32 agrees only to about 1e-6
// and, near zero, flips ReLUs, which is what the attack tests' margins
// allow for. The exported cifar_resnet20 has calibrated BatchNorm
// statistics, so the fold is not trivial.
func TestFrozenForAttackExactInFloat64(t *testing.T) {
	m, err := LoadModule(filepath.Join(modelsDir, "cifar_resnet20.pt"), "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.ToFloat64(); err != nil {
		t.Fatal(err)
	}
	if err := m.Train(false); err != nil {
		t.Fatal(err)
	}
	f, err := m.FrozenForAttack()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := NewScope()
	defer s.Close()
	g, err := NewGenerator("cpu", 5)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := s.ToFloat64(s.Rand(g, "cpu", 4, 3, 32, 32))
	y := s.FromInt64([]int64{1, 3, 5, 7}, "cpu", 4)
	var logits, grads [2]*Tensor
	for i, mod := range []*Module{m, f} {
		xi := s.Clone(x)
		if _, err := xi.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		logits[i] = mod.Forward(s, xi)
		if err := s.CrossEntropy(logits[i], y, ReduceMean).Backward(); err != nil {
			t.Fatal(err)
		}
		grads[i] = s.GradOf(xi)
	}
	for _, c := range []struct {
		name string
		a, b *Tensor
	}{{"logits", logits[0], logits[1]}, {"input gradients", grads[0], grads[1]}} {
		d, err := s.Max(s.Abs(s.Sub(c.a, c.b))).Item()
		if err != nil {
			t.Fatal(err)
		}
		scale, err := s.Max(s.Abs(c.a)).Item()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: max difference %.3g of max %.3g", c.name, d, scale)
		if !(scale > 0) || !(d <= 1e-12*scale) {
			t.Errorf("%s differ by %g (max %g): the frozen copy is not the module's function", c.name, d, scale)
		}
	}
}
