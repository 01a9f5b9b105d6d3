package libtorch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/filetest"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/experiment"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
)

// tiny trains SmoothAdv (sigma 0.5) on 300 Fashion-MNIST images for one epoch and
// certifies 5 test images with 100 samples: seconds on a CPU.
const tiny = `version: 1
name: tiny
data:
  dataset: fashion-mnist
model:
  arch: fashion_cnn
training:
  noise_sd: 0.5
  epochs: 1
  batch: 60
  lr: 0.05
  adv_training: true
  attack: PGD
  num_steps: 1
  epsilon: 64
  train_subset: 200
  test_subset: 100
  workers: 1
certification:
  N0: 20
  N: 100
  batch: 100
  skip: 2000
  workers: 1
analysis:
  radii: "0:0.5:0.25"
  formats: [markdown]
  plot: true
`

// TestLibTorchEndToEnd runs the real stages: training, certification and
// analysis. Then it cuts the certify log short and runs again: the training
// is skipped and the log continued, its first lines kept.
func TestLibTorchEndToEnd(t *testing.T) {
	needRealRun(t)
	e, err := experiment.Parse([]byte(tiny), "tiny.yaml", t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	exp := filepath.Join(out, "tiny")
	r := e.Runs[0]
	if err := e.Run(context.Background(), experiment.Options{Out: out, Worker: Worker{}}); err != nil {
		t.Fatal(err)
	}
	trainLog := filetest.Read(t, filepath.Join(r.TrainDir(exp), trainlog.File))
	if n := strings.Count(trainLog, "\n"); n != 2 {
		t.Errorf("log.txt has %d lines, want the header and one epoch:\n%s", n, trainLog)
	}
	lines := strings.Split(strings.TrimSpace(filetest.Read(t, r.CertifyLog(exp))), "\n")
	if len(lines) != 6 {
		t.Fatalf("certify log has %d lines, want the header and 5 examples:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, f := range []string{"certified_accuracy.md", "envelope.md", "certified_accuracy.png", filepath.Join(r.Rel, "certified_accuracy.md")} {
		if _, err := os.Stat(filepath.Join(exp, f)); err != nil {
			t.Error(err)
		}
	}

	kept := strings.Join(lines[:3], "\n") + "\n" + lines[3][:4] // two examples and a torn third
	if err := os.WriteFile(r.CertifyLog(exp), []byte(kept), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := e.Run(context.Background(), experiment.Options{Out: out, Log: &log, Worker: Worker{}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "train: done (1/1 epochs), skipped") || !strings.Contains(log.String(), "certify: 3 of 5 examples left") {
		t.Errorf("second run:\n%s", log.String())
	}
	if got := filetest.Read(t, filepath.Join(r.TrainDir(exp), trainlog.File)); got != trainLog {
		t.Error("the finished training log changed")
	}
	again := strings.Split(strings.TrimSpace(filetest.Read(t, r.CertifyLog(exp))), "\n")
	if len(again) != 6 || strings.Join(again[:3], "\n") != strings.Join(lines[:3], "\n") {
		t.Errorf("continued certify log:\n%s\nwant its first lines kept:\n%s", strings.Join(again, "\n"), strings.Join(lines[:3], "\n"))
	}
	// The certify log's run parameters were checked on resuming and are
	// still those of the run.
	p, ok, err := certify.ReadParams(r.CertifyLog(exp))
	if err != nil || !ok || p.Kind != certify.KindCertify || p.N0 != 20 || p.N != 100 || p.Skip != 2000 || p.Sigma != 0.5 {
		t.Errorf("run parameters beside the certify log: %+v, %v, %v", p, ok, err)
	}
}

// TestAdaptiveExperiment: certification.target_radius: analysis certifies
// adaptively at the table's radii; the run's parameters record them and the
// samples file lists every example.
func TestAdaptiveExperiment(t *testing.T) {
	needRealRun(t)
	text := strings.Replace(tiny, "  workers: 1\nanalysis:", "  workers: 1\n  target_radius: analysis\nanalysis:", 1)
	e, err := experiment.Parse([]byte(text), "tiny.yaml", t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := e.Run(context.Background(), experiment.Options{Out: out, Worker: Worker{}}); err != nil {
		t.Fatal(err)
	}
	log := e.Runs[0].CertifyLog(filepath.Join(out, "tiny"))
	p, ok, err := certify.ReadParams(log)
	if err != nil || !ok || !slices.Equal(p.TargetRadius, certify.Targets{0.25, 0.5}) || p.Adaptive == "" {
		t.Errorf("run parameters: target radii %v, adaptive %q (%v, %v); want [0.25 0.5]", p.TargetRadius, p.Adaptive, ok, err)
	}
	samples, err := certify.ReadSamples(log)
	if err != nil || len(samples) != 5 {
		t.Errorf("samples file: %v (%v), want 5 examples", samples, err)
	}
}

// TestCheckpointExperiment certifies existing checkpoints without training:
// a reference-format checkpoint.pth.tar tree (stand-ins: untrained
// fashion_cnn nets) whose grid pairs each family with its sigma. Each run
// is named by its checkpoint's folder, no training folder is made, the
// analysis covers every run, and a second run skips the certification.
func TestCheckpointExperiment(t *testing.T) {
	needRealRun(t)
	root := t.TempDir()
	for i, dir := range []string{"fashion/PGD_2steps/eps_64/noise_0.25", "fashion/DDN_2steps/eps_64/noise_0.50"} {
		m, err := models.New("fashion_cnn", uint64(i+1), models.Options{Dir: testenv.ModelsDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := models.SaveCheckpoint(filepath.Join(root, dir, "checkpoint.pth.tar"), m, 90, nil); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	t.Setenv("STANDIN_ROOT", root)
	text := `version: 1
name: released
data:
  dataset: fashion-mnist
model:
  arch: fashion_cnn
  checkpoint_root: $STANDIN_ROOT
certification:
  N0: 20
  N: 200
  batch: 100
  skip: 2000
  workers: 1
  target_radius: [0.25, 0.5]
analysis:
  radii: "0:0.5:0.25"
  formats: [markdown]
  plot: false
grid:
  - model.checkpoint: ["fashion/*/*/noise_0.25/checkpoint.pth.tar"]
    certification.sigma: [0.25]
  - model.checkpoint: ["fashion/*/*/noise_0.50/checkpoint.pth.tar"]
    certification.sigma: [0.5]
`
	e, err := experiment.Parse([]byte(text), "released.yaml", t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	for _, r := range e.Runs {
		rels = append(rels, r.Rel)
	}
	if want := []string{"PGD_2steps/eps_64/noise_0.25", "DDN_2steps/eps_64/noise_0.50"}; !slices.Equal(rels, want) {
		t.Fatalf("runs %v, want %v", rels, want)
	}
	out := t.TempDir()
	var log strings.Builder
	if err := e.Run(context.Background(), experiment.Options{Out: out, Log: &log, Worker: Worker{}}); err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(out, "released")
	for _, r := range e.Runs {
		lines := strings.Count(filetest.Read(t, r.CertifyLog(exp)), "\n")
		if lines != 6 {
			t.Errorf("%s: certify log has %d lines, want the header and 5 examples", r.Rel, lines)
		}
		if _, err := os.Stat(filepath.Join(r.TrainDir(exp), trainlog.File)); err == nil {
			t.Errorf("%s: a training log was written", r.Rel)
		}
	}
	if !strings.Contains(log.String(), "train: none, certifies "+filepath.Join(root, "fashion")) {
		t.Errorf("log of the run:\n%s", log.String())
	}
	for _, f := range []string{"certified_accuracy.md", "envelope.md"} {
		if _, err := os.Stat(filepath.Join(exp, f)); err != nil {
			t.Error(err)
		}
	}
	log.Reset()
	if err := e.Run(context.Background(), experiment.Options{Out: out, Log: &log, Worker: Worker{}}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(log.String(), "certify: done (5/5 examples), skipped") != 2 {
		t.Errorf("second run did not skip both certifications:\n%s", log.String())
	}
}

// needRealRun skips a test that trains or certifies for real under -short
// or without Fashion-MNIST, and points the worker at the exported models.
func needRealRun(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("trains or certifies a model")
	}
	testenv.NeedFashionMNIST(t)
	if os.Getenv("SMOOTHADV_MODELS") == "" {
		t.Setenv("SMOOTHADV_MODELS", testenv.ModelsDir())
	}
}
