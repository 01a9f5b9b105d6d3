package train

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// smoothMixProblem is a fresh fashion_cnn in eval mode, frozen, with four
// random images, labels and m = 2 noise draws per image.
func smoothMixProblem(t *testing.T, s *torchbind.Scope, cfg settings.Config) (*Trainer, *torchbind.Tensor, *torchbind.Tensor, *torchbind.Tensor) {
	t.Helper()
	m, err := models.New("fashion_cnn", 1, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g, err := torchbind.NewGenerator("cpu", 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	tr := &Trainer{cfg: cfg, model: m}
	if _, _, err := tr.model.ForAttack(cfg.FrozenAttack); err != nil { // cfg.FrozenAttack unset: the model itself, in eval mode
		t.Fatal(err)
	}
	x := s.Rand(g, "cpu", 4, 1, 28, 28)
	y := s.FromInt64([]int64{0, 3, 5, 9}, "cpu", 4)
	noise := s.Randn(g, 0.25, "cpu", 8, 1, 28, 28)
	return tr, x, y, noise
}

func rowNorms(t *testing.T, s *torchbind.Scope, a, b *torchbind.Tensor) []float32 {
	t.Helper()
	n, err := s.L2Norms(s.Sub(a, b)).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// attackLoss is the SmoothMix attack's objective at v: the summed
// -log(mean softmax_y over the copies).
func attackLoss(t *testing.T, s *torchbind.Scope, tr *Trainer, v, y, noise *torchbind.Tensor) float64 {
	t.Helper()
	logits := tr.model.Infer(s, s.Add(tile(s, v, 2), noise))
	avg := s.MeanDim(s.Softmax(s.Reshape(logits, 4, 2, -1), 2), 1, false)
	l, err := s.NLLLoss(s.Log(s.ClampMin(avg, 1e-20)), y, torchbind.ReduceSum).Item()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSmoothMixAttack checks the attack's rules on a real network: adv
// stays in [0, 1] and in the maxnorm ball, climbs the attack's loss, and
// the clean side is the image (mix_step 0) or, with mix_step 1, the first
// step's adversary projected onto the ball of radius warm * alpha.
func TestSmoothMixAttack(t *testing.T) {
	s := torchbind.NewScope()
	defer s.Close()
	cfg := settings.Defaults()
	cfg.Method, cfg.NumNoiseVec = settings.SmoothMix, 2
	cfg.SmoothMixSteps, cfg.SmoothMixAlpha, cfg.SmoothMixMaxNorm = 3, 0.5, 0.8
	tr, x, y, noise := smoothMixProblem(t, s, cfg)

	init, adv := tr.smoothMixAttack(s, tr.model.Module, x, y, noise, 1)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for i, n := range rowNorms(t, s, adv, x) {
		if n > 0.8+1e-5 || n < 0.5 {
			t.Errorf("image %d: adversary at distance %v, want in [0.5, 0.8] (3 steps of 0.5, bound 0.8)", i, n)
		}
	}
	for i, n := range rowNorms(t, s, init, x) {
		if n != 0 {
			t.Errorf("mix_step 0: clean side %d at distance %v from the image", i, n)
		}
	}
	lo, hi := s.Max(s.Neg(adv)), s.Max(adv)
	if l, _ := lo.Item(); -l < 0 {
		t.Errorf("adversary below 0: %v", -l)
	}
	if h, _ := hi.Item(); h > 1 {
		t.Errorf("adversary above 1: %v", h)
	}
	if before, after := attackLoss(t, s, tr, x, y, noise), attackLoss(t, s, tr, adv, y, noise); !(after > before) {
		t.Errorf("the attack's loss went from %v to %v", before, after)
	}

	tr.cfg.SmoothMixMixStep, tr.cfg.SmoothMixMaxNorm = 1, 0
	init, adv = tr.smoothMixAttack(s, tr.model.Module, x, y, noise, 0.5)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for i, n := range rowNorms(t, s, init, x) {
		if n > 0.25+1e-5 || n < 0.2 {
			t.Errorf("mix_step 1, warm 0.5: clean side %d at distance %v, want about 0.25 (the first step, 0.5, projected)", i, n)
		}
	}
	for i, n := range rowNorms(t, s, adv, x) {
		if n > 1.5+1e-5 {
			t.Errorf("image %d: unbounded adversary at distance %v after 3 steps of 0.5", i, n)
		}
	}
}

// TestMethodTrainingRepeats: SmoothMix, which draws noise and mixup weights,
// trains to the same weights twice with one seed.
func TestMethodTrainingRepeats(t *testing.T) {
	a := small(t)
	a.Method, a.NumNoiseVec, a.SmoothMixSteps, a.Epochs = settings.SmoothMix, 2, 2, 1
	a.TrainSubset, a.TestSubset = 400, 1000
	b := a
	b.OutDir = t.TempDir()
	for _, c := range []settings.Config{a, b} {
		if err := Run(context.Background(), c, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	wa := weights(t, filepath.Join(a.OutDir, settings.CheckpointFile))
	wb := weights(t, filepath.Join(b.OutDir, settings.CheckpointFile))
	for i := range wa {
		if wa[i] != wb[i] {
			t.Fatalf("same seed, different weights at %d: %v vs %v", i, wa[i], wb[i])
		}
	}
}

// TestPretrainedMACERCheckpoint starts from a MACER checkpoint
// ({'net', 'epoch'}, written by PyTorch): it is taken for the configured
// architecture, every tensor but the head comes over, and the new model
// keeps the net's missing input layer.
func TestPretrainedMACERCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "macer.pth")
	script := `import sys; sys.path.insert(0, "../models"); import torch; from export_models import build
torch.manual_seed(2); torch.save({"net": build("fashion_cnn")[1].state_dict(), "epoch": 90}, sys.argv[1])`
	if out, err := exec.Command(testenv.Python(), "-c", script, path).CombinedOutput(); err != nil {
		t.Fatalf("writing the MACER checkpoint (needs "+testenv.Python()+" with torch): %v\n%s", err, out)
	}
	cfg := small(t)
	cfg.PretrainedModel = path
	m, err := finetune(cfg, models.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Meta.Arch != "fashion_cnn" || m.Meta.Normalization != inputlayer.None {
		t.Errorf("fine-tuned model: %s behind %q, want fashion_cnn with no input layer", m.Meta.Arch, m.Meta.Normalization)
	}
	pre, err := models.Load(path, models.Options{Arch: "fashion_cnn"})
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	got, want := namedValues(t, m), namedValues(t, pre)
	for name, w := range want {
		same := slices.Equal(got[name], w)
		if head := strings.Contains(name, ".fc."); same == head {
			t.Errorf("%s: copied %v, want %v", name, same, !head)
		}
	}
}

func namedValues(t *testing.T, m *models.Model) map[string][]float32 {
	t.Helper()
	ps, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer torchbind.CloseAll(ps)
	out := map[string][]float32{}
	for _, p := range ps {
		if out[p.Name], err = p.T.Float32s(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
