package experiment

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// minimal is the smallest valid experiment file.
const minimal = `version: 1
name: tiny
data:
  dataset: fashion-mnist
model:
  arch: fashion_cnn
training:
  noise_sd: 0.5
`

func parse(t *testing.T, text string) *Experiment {
	t.Helper()
	e, err := Parse([]byte(text), "test.yaml", t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDefaultsApplied checks that an almost empty file gets train's
// defaults, the reference's certify defaults, sigma from the training noise
// and the device from training.
func TestDefaultsApplied(t *testing.T) {
	e := parse(t, minimal)
	if len(e.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(e.Runs))
	}
	r := e.Runs[0]
	wantTrain := settings.Defaults().Resolved() // a run's method is resolved
	wantTrain.NoiseSD = 0.5
	if !reflect.DeepEqual(r.Config.Training, wantTrain) {
		t.Errorf("training\n got %+v\nwant %+v", r.Config.Training, wantTrain)
	}
	ct := r.Config.Certification
	if ct.N0 != 100 || ct.N != 100000 || ct.Alpha != 0.001 || ct.Batch != 1000 || ct.Skip != 1 || ct.Max != -1 || ct.Split != "test" {
		t.Errorf("certification defaults %+v, want the reference's", ct)
	}
	if r.Sigma() != 0.5 || ct.Device != wantTrain.Device {
		t.Errorf("sigma %v device %q, want the training's 0.5 and %q", r.Sigma(), ct.Device, wantTrain.Device)
	}
	if r.Rel != filepath.Join("gaussian", "noise_0.50") || r.TrainRel != r.Rel {
		t.Errorf("folders %q %q", r.Rel, r.TrainRel)
	}
	if a := r.Config.Analysis; a.Radii != "0:2.25:0.25" || !reflect.DeepEqual(a.Formats, []string{"markdown", "latex"}) || !a.Plot {
		t.Errorf("analysis defaults %+v", a)
	}
}

// TestEveryProblemListed puts an unknown key, values of the wrong type and
// invalid settings in every section and expects each to be reported in one
// error.
func TestEveryProblemListed(t *testing.T) {
	text := `version: 2
name: "bad name"
data:
  dataset: mnist
  colour: true
model:
  arch: fashion_cnn
  normalization: whiten
training:
  epochz: 3
  batch: many
  lr: -1
  num_noise_vec: 3
  outdir: /tmp/x
  resume: true
  adv_training: true
  attack: FGSM
certification:
  sigma: 0
  N: 0
  alpha: 2
  split: val
  device: cuda:x
analysis:
  radii: "0:1"
  formats: [html, latex, latex]
grid:
  training.noise_sd: [0.25, -1]
  training.attack: PGD
  training.outdir: [a]
  training.warmup: [two]
  lr: [0.1]
`
	_, err := Parse([]byte(text), "bad.yaml", t.TempDir(), 0)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"field colour not found in data",
		"field epochz not found in training",
		"cannot unmarshal !!str `many` into int",
		"version: 2, want 1",
		`name: "bad name"`,
		"training.outdir: the experiment names each run's folder",
		"training.resume: the runner resumes unfinished runs itself",
		`analysis.radii: radii "0:1"`,
		`analysis.formats[0]: format "html"`,
		"analysis.formats[2]: latex listed twice",
		"grid: training.attack: want a non-empty list of values",
		"grid: training.outdir: the experiment names each run's folder",
		"line 31: grid: training.warmup: cannot unmarshal !!str `two` into int",
		"grid: lr: want SECTION.KEY",
		`data.dataset: "mnist"`,
		`model.normalization: "whiten"`,
		"training.lr: -1, want > 0",
		`training.attack: "FGSM", want PGD or DDN`,
		"training: batch 256 is not a multiple of num_noise_vec 3",
		"certification.sigma 0: want a number in (0, 10000]: images lie in [0, 1]",
		`certification.device: device "cuda:x": GPU index "x" is not a number`,
		"certification.N: 0, want >= 1",
		"certification.alpha: 2, want in (0, 1)",
		`certification.split: "val"`,
		// Only one of the two grid values is negative: the message names its run.
		"training.noise_sd: -1, want a number in [0, 10000] (images lie in [0, 1]) (in run FGSM_10steps/m3/eps_256/noise_-1.00)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(err)
	}
	// The problem every run has is listed once, without run names.
	if n := strings.Count(err.Error(), "certification.alpha"); n != 1 {
		t.Errorf("certification.alpha reported %d times, want once:\n%v", n, err)
	}
}

func TestSyntaxAndEmptyFiles(t *testing.T) {
	for name, text := range map[string]string{
		"empty":     "",
		"syntax":    "version: [1\n",
		"two docs":  minimal + "---\nversion: 1\n",
		"top-level": minimal + "extra: 1\n",
	} {
		if _, err := Parse([]byte(text), name, t.TempDir(), 0); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestRelativePaths checks that paths in the file are relative to its
// folder.
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "exp.yaml")
	text := strings.Replace(minimal, "  dataset: fashion-mnist\n", "  dataset: fashion-mnist\n  data_dir: data/fm\n", 1) +
		"  pretrained_model: ../models/pre.pth.tar\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := e.Runs[0].Config
	if want := filepath.Join(dir, "data", "fm"); c.Data.DataDir != want {
		t.Errorf("data_dir %q, want %q", c.Data.DataDir, want)
	}
	if want := filepath.Join(filepath.Dir(dir), "models", "pre.pth.tar"); c.Training.PretrainedModel != want {
		t.Errorf("pretrained_model %q, want %q", c.Training.PretrainedModel, want)
	}
}

// TestResolvedConfigRoundTrip writes a run's resolved configuration and
// reads it back: the same single run, without the knobs the runner owns.
func TestResolvedConfigRoundTrip(t *testing.T) {
	e := parse(t, minimal+`  adv_training: true
certification:
  N: 500
grid:
  training.num_steps: [1, 2]
`)
	for _, r := range e.Runs {
		b, err := r.Config.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, owned := range []string{"outdir:", "resume:", "arch: fashion_cnn\n  epochs"} {
			if bytes.Contains(b, []byte(owned)) {
				t.Errorf("resolved file has %q:\n%s", owned, b)
			}
		}
		if !bytes.HasPrefix(b, []byte("# Resolved")) {
			t.Errorf("resolved file starts %q", b[:20])
		}
		back := parse(t, string(b))
		if len(back.Runs) != 1 || back.Runs[0].Rel != r.Rel || !reflect.DeepEqual(back.Runs[0].Config, r.Config) {
			t.Errorf("round trip of %s:\n%s\ngave %+v", r.Rel, b, back.Runs)
		}
	}
	// The experiment's own resolved file keeps the grid.
	b, err := e.Config.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if back := parse(t, string(b)); len(back.Runs) != 2 {
		t.Errorf("experiment round trip: %d runs, want 2:\n%s", len(back.Runs), b)
	}
}

// TestDuplicateKeyIsTheOneProblem: a key given twice is reported alone,
// not with the problems of a file the decoder then left unread.
func TestDuplicateKeyIsTheOneProblem(t *testing.T) {
	_, err := Parse([]byte(minimal+"training:\n  epochs: 3\n"), "dup.yaml", t.TempDir(), 0)
	if err == nil || !strings.Contains(err.Error(), "1 problem(s)") || !strings.Contains(err.Error(), `mapping key "training" already defined`) {
		t.Errorf("duplicate section: %v", err)
	}
}

// TestTargetRadius: certification.target_radius takes a radius, a list or
// "analysis" (the table's radii but 0), and refuses anything else.
func TestTargetRadius(t *testing.T) {
	for text, want := range map[string]certify.Targets{
		"":                               nil,
		"  target_radius: 0.5\n":         {0.5},
		"  target_radius: [0.5, 0.25]\n": {0.25, 0.5},
		"  target_radius: analysis\n":    {0.25, 0.5, 0.75},
	} {
		e := parse(t, minimal+"certification:\n"+text+"analysis:\n  radii: \"0:0.75:0.25\"\n")
		if got := e.Runs[0].Targets(); !slices.Equal(got, want) {
			t.Errorf("%q: targets %v, want %v", text, got, want)
		}
	}
	for text, want := range map[string]string{
		"  target_radius: -1\n":        "certification.target_radius: [-1], want finite radii > 0",
		"  target_radius: [0.25, 0]\n": "want finite radii > 0",
		"  target_radius: table\n":     "target_radius: want a radius, a list of radii or \"analysis\"",
	} {
		if _, err := Parse([]byte(minimal+"certification:\n"+text), "t.yaml", t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
