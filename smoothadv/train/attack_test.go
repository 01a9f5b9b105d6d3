package train

import (
	"path/filepath"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// TestFrozenAttack: the attack on a frozen copy (BatchNorm folded) finds
// the adversaries the attack on the training module in eval mode finds, up
// to float rounding, and either way leaves the training module as it was:
// in training mode, its parameters taking gradients.
func TestFrozenAttack(t *testing.T) {
	m, err := models.New("cifar_resnet20", 1, models.Options{Dir: filepath.Join("..", "..", "build", "models")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.SetChannelsLast(true)
	if err := m.Train(true); err != nil {
		t.Fatal(err)
	}
	s := torchbind.NewScope()
	defer s.Close()
	g, err := torchbind.NewGenerator("cpu", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := s.Rand(g, "cpu", 8, 3, 32, 32)
	y := s.FromInt64([]int64{0, 1, 2, 3, 4, 5, 6, 7}, "cpu", 8)
	inputs := tile(s, x, 2)
	noise := s.Randn(g, 0.25, "cpu", 16, 3, 32, 32)

	adversaries := map[bool][]float32{}
	for _, frozen := range []bool{false, true} {
		cfg := Defaults()
		cfg.AdvTraining, cfg.Attack, cfg.Epsilon, cfg.NumSteps, cfg.NumNoiseVec, cfg.FrozenAttack = true, "PGD", 128, 4, 2, frozen
		tr := &Trainer{cfg: cfg, model: m}
		if tr.attacker, err = newAttacker(cfg, 1); err != nil {
			t.Fatal(err)
		}
		if tr.attackGen, err = torchbind.NewGenerator("cpu", 9); err != nil {
			t.Fatal(err)
		}
		adv, err := tr.attacked(s, inputs, y, noise, 2, 5)
		tr.attackGen.Close()
		if err != nil {
			t.Fatal(err)
		}
		if adversaries[frozen], err = adv.Float32s(); err != nil {
			t.Fatal(err)
		}
		if on, err := m.IsTraining(); err != nil || !on {
			t.Errorf("frozen %v: the model is not back in training mode (%v)", frozen, err)
		}
		params, err := m.Parameters()
		if err != nil {
			t.Fatal(err)
		}
		was, err := params[0].T.SetRequiresGrad(true)
		torchbind.CloseAll(params)
		if err != nil || !was {
			t.Errorf("frozen %v: parameters no longer take gradients (%v)", frozen, err)
		}
	}
	clean, err := inputs.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	moved := maxDiff(t, clean, adversaries[false])
	d := maxDiff(t, adversaries[false], adversaries[true])
	t.Logf("largest pixel change by the attack %.3g; between the two models' adversaries %.3g", moved, d)
	// Folding is exact in exact arithmetic (in float64 the two input
	// gradients agree to 1e-15), but float32 rounding flips a few ReLUs
	// near zero, which turns the gradient's direction by about 0.2%: the
	// adversaries then differ by about 0.5% of the attack's step. A model
	// in training mode, or other weights, would differ by far more.
	if !(moved > 0.01) || !(d < 0.02*moved) {
		t.Errorf("adversaries differ by %g (the attack moved pixels by up to %g)", d, moved)
	}
}
