package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

var python = testenv.Python()

func fashionCNN(t *testing.T) string { return exported(t, "fashion_cnn") }

// exported is the path of a model that `make models` exports.
func exported(t *testing.T, name string) string {
	t.Helper()
	dir := testenv.ModelsDir()
	if os.Getenv("SMOOTHADV_MODELS") == "" {
		t.Setenv("SMOOTHADV_MODELS", dir)
	}
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s to run the reference: %v", python, err)
	}
	return filepath.Join(dir, name+".pt")
}

// TestTrainStepMatchesReference times every configuration on both sides
// without noise: the training step is then deterministic, so the first
// batch's loss (its m chunks each after the previous chunk's SGD step, the
// attack in eval mode on BatchNorm statistics those steps updated) must be
// PyTorch's on the same weights and batch. At the reference's lr 0.1 this
// tiny random batch's loss explodes after a step, the attack's averaged
// softmax falls below its 1e-20 clamp, and PGD replaces the zero gradient
// by a random draw, which differs between the sides; lr 0.01 keeps the
// loss near 3 and the weights still move.
//
// With channels-last inputs (ours only: the reference stays NCHW), the
// attacked multi-noise configuration must agree just as well, on a model
// with three input channels (one channel would leave the format moot).
func TestTrainStepMatchesReference(t *testing.T) {
	model := fashionCNN(t)
	o := TrainOptions{Model: model, Device: "cpu", Batch: 4, Steps: 1, Warmup: 1, NoiseSD: 0, Epsilon: 128, LR: 0.01, Python: python}
	t.Run("NCHW", func(t *testing.T) { stepMatchesReference(t, o, TrainConfigs) })
	// smoothadv train's defaults: channels-last, attacks on a frozen copy.
	o.Model, o.ChannelsLast, o.FrozenAttack, o.Configs = exported(t, "cifar_resnet20"), true, true, []string{TrainConfigs[1].Name}
	t.Run("channels-last, frozen attack", func(t *testing.T) { stepMatchesReference(t, o, TrainConfigs[1:2]) })
}

func stepMatchesReference(t *testing.T, o TrainOptions, want []TrainConfig) {
	rs, err := RunTrain(context.Background(), o)
	for _, r := range rs {
		t.Logf("%+v", r)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results, want one per configuration (%d)", len(rs), len(want))
	}
	for i, r := range rs {
		if r.Config != want[i] {
			t.Errorf("result %d is %+v, want %+v", i, r.Config, want[i])
		}
		for _, s := range []TrainSide{r.Ours, r.Reference} {
			if !(s.SecondsPerBatch > 0) || s.Threads < 1 || s.Allocator == "" || s.Torch == "" {
				t.Errorf("%s: incomplete measurement %+v", r.Config.Name, s)
			}
		}
		if r.Reference.Threads != r.Ours.Threads {
			t.Errorf("%s: the reference ran %d threads, ours %d: want equal by default", r.Config.Name, r.Reference.Threads, r.Ours.Threads)
		}
		if d := math.Abs(r.Ours.FirstLoss - r.Reference.FirstLoss); !(d <= 1e-4*math.Abs(r.Reference.FirstLoss)) {
			t.Errorf("%s: first batch's loss %.6f, reference %.6f", r.Config.Name, r.Ours.FirstLoss, r.Reference.FirstLoss)
		}
	}
}

func TestTrainOptionsRefused(t *testing.T) {
	good := TrainOptions{Model: "unused.pt", Device: "cpu", Batch: 8, Steps: 1, Warmup: 1, NoiseSD: 0.25, Epsilon: 128, LR: 0.1}
	for _, c := range []struct {
		change func(*TrainOptions)
		want   string
	}{
		{func(o *TrainOptions) { o.Batch = 0 }, "batch 0, want >= 1"},
		{func(o *TrainOptions) { o.Steps = 0 }, "steps 0, want >= 1"},
		{func(o *TrainOptions) { o.Warmup = 0 }, "warm-up steps 0, want >= 1"},
		{func(o *TrainOptions) { o.NoiseSD = math.NaN() }, "noise sd NaN"},
		{func(o *TrainOptions) { o.Epsilon = 0 }, "epsilon 0, want a number in (0, 1e6)"},
		{func(o *TrainOptions) { o.LR = math.Inf(1) }, "lr +Inf, want a number in (0, 1e6)"},
		{func(o *TrainOptions) { o.Threads = -1 }, "threads -1, want >= 0"},
		{func(o *TrainOptions) { o.ReferenceThreads = -2 }, "reference threads -2, want >= -1"},
		{func(o *TrainOptions) { o.Configs = []string{"pgd"} }, `configuration "pgd", want one of gaussian, pgd-t2-m2, pgd-t10-m4`},
		{func(o *TrainOptions) { o.Batch = 6 }, "batch 6 is not a multiple of pgd-t10-m4's 4 noise vectors"},
	} {
		o := good
		c.change(&o)
		_, err := RunTrain(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", o, err, c.want)
		}
	}
}
