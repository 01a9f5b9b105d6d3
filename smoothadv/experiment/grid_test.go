package experiment

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func rels(e *Experiment) []string {
	var out []string
	for _, r := range e.Runs {
		out = append(out, filepath.ToSlash(r.Rel))
	}
	return out
}

func equalLists(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestGridProduct expands a 2x2x2 grid: the first knob varies slowest, and
// the folders follow the reference's attack/steps, m, eps, noise layout with
// a KNOB_VALUE folder for a knob the layout does not show.
func TestGridProduct(t *testing.T) {
	e := parse(t, minimal+`  adv_training: true
  attack: PGD
grid:
  training.num_steps: [2, 10]
  training.lr: [0.1, 0.05]
  training.noise_sd: [0.12, 1.0]
`)
	equalLists(t, "runs", rels(e), []string{
		"PGD_2steps/m1/eps_256/noise_0.12/lr_0.1",
		"PGD_2steps/m1/eps_256/noise_1.00/lr_0.1",
		"PGD_2steps/m1/eps_256/noise_0.12/lr_0.05",
		"PGD_2steps/m1/eps_256/noise_1.00/lr_0.05",
		"PGD_10steps/m1/eps_256/noise_0.12/lr_0.1",
		"PGD_10steps/m1/eps_256/noise_1.00/lr_0.1",
		"PGD_10steps/m1/eps_256/noise_0.12/lr_0.05",
		"PGD_10steps/m1/eps_256/noise_1.00/lr_0.05",
	})
	r := e.Runs[5]
	if c := r.Config.Training; c.NumSteps != 10 || c.LR != 0.1 || c.NoiseSD != 1.0 || r.Sigma() != 1.0 {
		t.Errorf("run %s has %+v, sigma %v", r.Rel, c, r.Sigma())
	}
	if r.TrainRel != r.Rel {
		t.Errorf("train folder %q, want the run's", r.TrainRel)
	}
	// The order and the folders are the same on every expansion.
	equalLists(t, "second expansion", rels(parse(t, minimal+`  adv_training: true
  attack: PGD
grid:
  training.num_steps: [2, 10]
  training.lr: [0.1, 0.05]
  training.noise_sd: [0.12, 1.0]
`)), rels(e))
}

// TestGridListAndRepeats joins two grids, drops the run they share, and
// folds Gaussian runs that differ only in attack knobs into one.
func TestGridListAndRepeats(t *testing.T) {
	e := parse(t, minimal+`grid:
  - training.adv_training: [false, true]
    training.epsilon: [64, 128]
  - training.adv_training: [true]
    training.epsilon: [128, 256]
    training.attack: [DDN, PGD]
`)
	equalLists(t, "runs", rels(e), []string{
		"gaussian/noise_0.50",
		"DDN_10steps/m1/eps_64/noise_0.50",
		"DDN_10steps/m1/eps_128/noise_0.50",
		"PGD_10steps/m1/eps_128/noise_0.50",
		"DDN_10steps/m1/eps_256/noise_0.50",
		"PGD_10steps/m1/eps_256/noise_0.50",
	})
	if g := e.Runs[0].Config.Training; g.Epsilon != 256 || g.Attack != "DDN" {
		t.Errorf("Gaussian run keeps attack knobs %v %s, want the file's (defaults) 256 DDN", g.Epsilon, g.Attack)
	}
}

// TestCertificationKnobsShareTraining varies how a model is certified: the
// runs get their own folders below one training folder.
func TestCertificationKnobsShareTraining(t *testing.T) {
	e := parse(t, minimal+`grid:
  certification.sigma: [0.25, 0.5]
  certification.N: [1000]
`)
	equalLists(t, "runs", rels(e), []string{
		"gaussian/noise_0.50/cert_sigma_0.25/cert_N_1000",
		"gaussian/noise_0.50/cert_sigma_0.5/cert_N_1000",
	})
	for _, r := range e.Runs {
		if r.TrainRel != filepath.Join("gaussian", "noise_0.50") {
			t.Errorf("%s trains in %s", r.Rel, r.TrainRel)
		}
	}
	if got := e.Runs[0].CertifyLog("out"); got != filepath.Join("out", e.Runs[0].Rel, "test", "sigma_0.25") {
		t.Errorf("certify log %s", got)
	}
}

// TestGridFolderClash varies a string knob whose values make the same
// folder name: refused, since the runs would share results.
func TestGridFolderClash(t *testing.T) {
	_, err := Parse([]byte(minimal+`grid:
  data.data_dir: [a/b, a_b]
`), "clash.yaml", "/", 0)
	if err == nil || !strings.Contains(err.Error(), "runs differ in knobs that their folder gaussian/noise_0.50/data_dir_a_b does not show") {
		t.Errorf("clash: %v", err)
	}
}

func TestTwoDecimals(t *testing.T) {
	for v, want := range map[float64]string{0.12: "0.12", 0.25: "0.25", 0.5: "0.50", 1: "1.00", 0.125: "0.125", 2: "2.00"} {
		if got := twoDecimals(v); got != want {
			t.Errorf("twoDecimals(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestConfigs loads every experiment in configs/ and checks the grids the
// paper describes.
func TestConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	// The released models' file needs their tree: TestReleasedModelsConfig.
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "cifar10_released_models.yaml" })
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs: %v", err)
	}
	want := map[string]struct {
		runs  int
		check func(t *testing.T, e *Experiment)
	}{
		"cifar10_smoothadv_paper.yaml": {640, func(t *testing.T, e *Experiment) {
			seen := map[string]bool{}
			for _, r := range e.Runs {
				c := r.Config
				if c.Model.Arch != "cifar_resnet110" || c.Training.Epochs != 150 || c.Training.LRStepSize != 50 || !c.Training.AdvTraining {
					t.Errorf("%s: %+v", r.Rel, c.Training)
				}
				if ct := c.Certification; ct.N != 100000 || ct.N0 != 100 || ct.Alpha != 0.001 || ct.Skip != 1 || r.Sigma() != c.Training.NoiseSD {
					t.Errorf("%s: certification %+v", r.Rel, ct)
				}
				seen[filepath.ToSlash(r.Rel)] = true
			}
			// Folders of the reference's published best models.
			for _, rel := range []string{"PGD_2steps/m8/eps_512/noise_0.25", "DDN_10steps/m4/eps_64/noise_0.12", "PGD_10steps/m2/eps_512/noise_1.00", "PGD_4steps/m1/eps_512/noise_0.50"} {
				if !seen[rel] {
					t.Errorf("no run %s", rel)
				}
			}
		}},
		"imagenet_smoothadv_paper.yaml": {24, func(t *testing.T, e *Experiment) {
			for _, r := range e.Runs {
				c := r.Config.Training
				if r.Config.Model.Arch != "resnet50" || c.NumNoiseVec != 1 || !(c.Attack == "PGD" && c.NumSteps == 1 || c.Attack == "DDN" && c.NumSteps == 2) {
					t.Errorf("%s: %+v", r.Rel, c)
				}
				if r.Config.Certification.Skip != 100 {
					t.Errorf("%s: skip %d, want 100 (500 of 50000 images)", r.Rel, r.Config.Certification.Skip)
				}
			}
		}},
		"cifar10_cohen_gaussian.yaml": {4, func(t *testing.T, e *Experiment) {
			equalLists(t, "runs", rels(e), []string{"gaussian/noise_0.12", "gaussian/noise_0.25", "gaussian/noise_0.50", "gaussian/noise_1.00"})
		}},
		"fashion_mnist_compare.yaml": {2, func(t *testing.T, e *Experiment) {
			equalLists(t, "runs", rels(e), []string{"gaussian/noise_0.25", "PGD_2steps/m2/eps_128/noise_0.25"})
		}},
		"fashion_mnist_methods.yaml": {5, func(t *testing.T, e *Experiment) {
			equalLists(t, "runs", rels(e), []string{"gaussian/noise_0.25", "PGD_2steps/m2/eps_128/noise_0.25",
				"macer/m2/noise_0.25", "consistency/m2/noise_0.25", "smoothmix/m2/noise_0.25"})
			for _, r := range e.Runs[1:] {
				a, b := e.Runs[0].Config, r.Config
				if a.Training.Epochs != b.Training.Epochs || a.Training.Batch != b.Training.Batch || a.Training.TrainSubset != b.Training.TrainSubset ||
					a.Training.NumNoiseVec != b.Training.NumNoiseVec || a.Training.Seed != b.Training.Seed || a.Training.NoiseSD != b.Training.NoiseSD ||
					!reflect.DeepEqual(a.Certification, b.Certification) {
					t.Errorf("%s differs from %s in budget, noise, seed or certification", r.Rel, e.Runs[0].Rel)
				}
			}
		}},
		"cifar10_macer.yaml": {3, func(t *testing.T, e *Experiment) {
			for _, r := range e.Runs {
				c := r.Config
				if c.Model.Normalization != "none" || c.Training.NumNoiseVec != 16 || c.Training.Batch != 64 || c.Training.LR != 0.01 || c.Training.Epochs != 440 {
					t.Errorf("%s: %+v", r.Rel, c.Training)
				}
			}
		}},
		"cifar10_consistency.yaml": {6, func(t *testing.T, e *Experiment) {
			if c := e.Runs[3].Config.Training; !c.AdvTraining || c.Method != "consistency" || c.Epsilon != 255 || c.ConsistencyLambda != 2 {
				t.Errorf("%s: %+v", e.Runs[3].Rel, c)
			}
		}},
		"cifar10_smoothmix.yaml": {6, func(t *testing.T, e *Experiment) {
			for _, r := range e.Runs {
				c := r.Config.Training
				if c.SmoothMixAlpha != 2*c.NoiseSD || c.SmoothMixSteps != 4 || c.SmoothMixEta != 5 {
					t.Errorf("%s: %+v", r.Rel, c)
				}
			}
		}},
		"fashion_mnist_default.yaml": {2, func(t *testing.T, e *Experiment) {
			equalLists(t, "runs", rels(e), []string{"gaussian/noise_0.25", "PGD_2steps/m2/eps_64/noise_0.25"})
			a, b := e.Runs[0].Config, e.Runs[1].Config
			if a.Training.Epochs != b.Training.Epochs || a.Training.Batch != b.Training.Batch || a.Training.TrainSubset != b.Training.TrainSubset ||
				!reflect.DeepEqual(a.Certification, b.Certification) {
				t.Error("the two runs differ in budget or certification")
			}
			if r := e.Config.Analysis.CompareAt; r == nil || *r != 0.5 {
				t.Errorf("compare_at %v, want 0.5", r)
			}
		}},
	}
	for _, f := range files {
		e, err := Load(f, 0)
		if err != nil {
			t.Error(err)
			continue
		}
		w, ok := want[filepath.Base(f)]
		if !ok {
			t.Errorf("%s: no expectations in this test", f)
			continue
		}
		if len(e.Runs) != w.runs {
			t.Errorf("%s: %d runs, want %d", f, len(e.Runs), w.runs)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { w.check(t, e) })
	}
}

// TestEmbeddedDefault checks the binary's default experiment.
func TestEmbeddedDefault(t *testing.T) {
	e, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if e.Config.Name != "fashion_mnist_default" || len(e.Runs) != 2 {
		t.Errorf("default experiment %s with %d runs", e.Config.Name, len(e.Runs))
	}
}

// TestGridOfMethods sweeps the training method: each has its folder (the
// new methods under their name, consistency with adv_training beside its
// attack), the knobs of the methods a run does not use are the base's, so
// a method's knob swept in the grid names folders of that method only, and
// a bad knob of the method in use is reported under its key.
func TestGridOfMethods(t *testing.T) {
	e := parse(t, minimal+`  num_noise_vec: 2
  attack: PGD
  num_steps: 2
grid:
  - training.method: [gaussian, smoothadv, smoothmix]
  - training.method: [macer]
    training.macer_lbd: [4, 12]
  - training.method: [consistency]
    training.adv_training: [false, true]
`)
	equalLists(t, "runs", rels(e), []string{
		"gaussian/noise_0.50",
		"PGD_2steps/m2/eps_256/noise_0.50",
		"smoothmix/m2/noise_0.50",
		"macer/m2/noise_0.50/macer_lbd_4",
		"macer/m2/noise_0.50/macer_lbd_12",
		"consistency/m2/noise_0.50",
		"consistency/PGD_2steps/m2/eps_256/noise_0.50",
	})
	if c := e.Runs[1].Config.Training; c.Method != "smoothadv" || !c.AdvTraining {
		t.Errorf("smoothadv run: method %q, adv_training %v", c.Method, c.AdvTraining)
	}
	if c := e.Runs[0].Config.Training; c.MACERLambda != 12 {
		t.Errorf("Gaussian run: macer_lbd %v, want the base's 12", c.MACERLambda)
	}
	if c := e.Runs[3].Config.Training; c.MACERLambda != 4 {
		t.Errorf("MACER run: macer_lbd %v, want 4", c.MACERLambda)
	}

	_, err := Parse([]byte(minimal+`  method: smoothmix
  smoothmix_num_steps: 0
grid:
  training.method: [gaussian, smoothmix]
`), "test.yaml", t.TempDir(), 0)
	if err == nil || !strings.Contains(err.Error(), "training.smoothmix_num_steps: 0, want >= 1 (in run smoothmix/m1/noise_0.50)") {
		t.Errorf("bad SmoothMix knob: %v", err)
	}
}

// TestHugeGridRefused: a grid of about a million runs is refused at once,
// saying how many runs it has, unless the limit is raised.
func TestHugeGridRefused(t *testing.T) {
	text := minimal + "grid:\n"
	for _, k := range []string{"lr", "momentum", "weight_decay", "gamma", "batch", "epochs", "lr_step_size", "seed", "num_noise_vec", "workers"} {
		text += "  training." + k + ": [1, 2, 3, 4]\n"
	}
	start := time.Now()
	_, err := Parse([]byte(text), "huge.yaml", t.TempDir(), 0)
	if err == nil || !strings.Contains(err.Error(), "grid: 1048576 runs, more than the limit of 10000") {
		t.Errorf("a grid of 4^10 runs: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing it took %v", d)
	}
	small := minimal + "grid:\n  training.lr: [0.1, 0.2, 0.3]\n"
	if _, err := Parse([]byte(small), "small.yaml", t.TempDir(), 2); err == nil || !strings.Contains(err.Error(), "grid: 3 runs, more than the limit of 2") {
		t.Errorf("3 runs under a limit of 2: %v", err)
	}
	if e, err := Parse([]byte(small), "small.yaml", t.TempDir(), 3); err != nil || len(e.Runs) != 3 {
		t.Errorf("3 runs under a limit of 3: %v", err)
	}
}

// TestReleasedModelsConfig: configs/cifar10_released_models.yaml over a
// stand-in pretrained_models/ tree makes one run per checkpoint, named by its
// folder, certified at its own sigma, behind NormalizeLayer, adaptively at
// the table's radii; a missing SMOOTHADV_PRETRAINED is named.
func TestReleasedModelsConfig(t *testing.T) {
	root := t.TempDir()
	want := map[string]float64{}
	for _, f := range []struct {
		family string
		sigma  string
		value  float64
	}{{"PGD_2steps/eps_64", "0.12", 0.12}, {"PGD_2steps/eps_64", "0.25", 0.25}, {"DDN_4steps/eps_255", "0.50", 0.5}, {"PGD_1step/eps_512", "1.00", 1}} {
		dir := filepath.Join(root, "cifar10", f.family, "cifar10", "resnet110", "noise_"+f.sigma)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "checkpoint.pth.tar"), []byte("stand-in"), 0o644); err != nil {
			t.Fatal(err)
		}
		want[filepath.Join(f.family, "cifar10", "resnet110", "noise_"+f.sigma)] = f.value
	}
	path := filepath.Join("..", "..", "configs", "cifar10_released_models.yaml")
	t.Setenv("SMOOTHADV_PRETRAINED", "")
	os.Unsetenv("SMOOTHADV_PRETRAINED")
	if _, err := Load(path, 0); err == nil || !strings.Contains(err.Error(), "$SMOOTHADV_PRETRAINED not set") {
		t.Errorf("without SMOOTHADV_PRETRAINED: %v", err)
	}
	t.Setenv("SMOOTHADV_PRETRAINED", root)
	e, err := Load(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range e.Runs {
		got[r.Rel] = r.Sigma()
		c := r.Config
		if c.Model.Normalization != "normalize" || !strings.HasPrefix(c.Model.Checkpoint, root) || c.Certification.N != 100000 || c.Certification.Skip != 20 {
			t.Errorf("run %s: %+v %+v", r.Rel, c.Model, c.Certification)
		}
		if ts := r.Targets(); len(ts) != 9 || ts[0] != 0.25 || ts[8] != 2.25 {
			t.Errorf("run %s: target radii %v, want the table's nine", r.Rel, ts)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runs and sigmas %v, want %v", got, want)
	}
}
