package train

import (
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/torchbind"
)

// TestSGDMatchesTorch runs three steps of SGD with momentum, weight decay and
// each of plain and Nesterov momentum on f(p) = sum(p^2 * c) from Go, and
// compares the parameters with torch.optim.SGD doing the same in PyTorch.
func TestSGDMatchesTorch(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		py := fmt.Sprintf(`
import torch
p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
c = torch.tensor([0.3, 1.0, -0.7])
opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=%v)
for _ in range(3):
    opt.zero_grad(); (p * p * c).sum().backward(); opt.step()
print(" ".join(repr(v) for v in p.tolist()))
`, map[bool]string{false: "False", true: "True"}[nesterov])
		out, err := exec.Command(testenv.Python(), "-c", py).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		var want []float64
		for _, f := range strings.Fields(string(out)) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("python printed %q", out)
			}
			want = append(want, v)
		}

		s := torchbind.NewScope()
		p := s.Keep(s.FromFloat32([]float32{1, -2, 0.5}, "cpu", 3))
		c := s.FromFloat32([]float32{0.3, 1, -0.7}, "cpu", 3)
		if _, err := p.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		opt := NewSGD([]torchbind.Named{{Name: "p", T: p}}, 0.1, 0.9, 1e-2)
		opt.Nesterov = nesterov
		for i := 0; i < 3; i++ {
			if err := opt.ZeroGrad(); err != nil {
				t.Fatal(err)
			}
			loss := s.Sum(s.Mul(s.Mul(p, p), c))
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-6 {
				t.Errorf("nesterov=%v: p[%d] = %v, torch.optim.SGD gives %v", nesterov, i, got[i], want[i])
			}
		}
		opt.Close()
		s.Close()
	}
}

func TestStepLR(t *testing.T) {
	for _, c := range []struct {
		epoch int
		want  float64
	}{{0, 0.1}, {29, 0.1}, {30, 0.01}, {59, 0.01}, {60, 0.001}} {
		if got := StepLR(0.1, 0.1, 30, c.epoch); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("epoch %d: lr %v, want %v", c.epoch, got, c.want)
		}
	}
}
