package experiment

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/filetest"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
)

// fakeWorker trains and certifies by writing the files the real stages
// write, and records what it was asked to do. trainEpochs, when set, is how
// many epochs its training gets through.
type fakeWorker struct {
	trains      []settings.Config
	certified   []string
	trainEpochs int
}

func (f *fakeWorker) Train(_ context.Context, cfg settings.Config, _ io.Writer) error {
	f.trains = append(f.trains, cfg)
	start := 0
	if cfg.Resume {
		logged, err := trainlog.Epochs(filepath.Join(cfg.OutDir, trainlog.File))
		if err != nil {
			return err
		}
		start = len(logged)
	}
	end := cfg.Epochs
	if f.trainEpochs > 0 {
		end = f.trainEpochs
	}
	return writeTrainLog(cfg.OutDir, start, end, !cfg.Resume)
}

func (f *fakeWorker) Rank() (rank, world int) { return 0, 1 }

func (f *fakeWorker) Certify(_ context.Context, r Run, model, path string) error {
	f.certified = append(f.certified, path)
	if _, err := os.Stat(model); err != nil {
		return err
	}
	log, done, err := certify.OpenLog[certify.CertifyRecord](path, true)
	if err != nil {
		return err
	}
	defer log.Close()
	for _, i := range done.Remaining(selection(r)) {
		if err := log.Write(certify.CertifyRecord{Index: i, Label: i % 10, Predict: i % 10, Radius: 0.1 * float64(i%7), Elapsed: time.Second}); err != nil {
			return err
		}
	}
	return log.Close()
}

// selection is the examples r certifies, on Fashion-MNIST's 10000 test images.
func selection(r Run) []int {
	idx, _ := certify.Selection{DatasetLen: 10000, Skip: r.Config.Certification.Skip, Max: r.Config.Certification.Max}.Indices()
	return idx
}

// writeTrainLog appends epochs start..end-1 to dir's log.txt, or starts
// it afresh with its header, and writes a checkpoint.
func writeTrainLog(dir string, start, end int, fresh bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	if fresh {
		b.WriteString(trainlog.Header(false) + "\n")
	}
	for e := start; e < end; e++ {
		fmt.Fprintf(&b, "%d\t1.0\t0.1\t2.0\t2.0\t10.0\t10.0\n", e)
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(filepath.Join(dir, trainlog.File), flags, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, settings.CheckpointFile), []byte("weights"), 0o644)
}

// twoRuns is a Fashion-MNIST experiment of two runs of two epochs, each
// certifying 10 test images.
const twoRuns = `version: 1
name: two
data:
  dataset: fashion-mnist
model:
  arch: fashion_cnn
training:
  epochs: 2
  noise_sd: 0.25
  device: cpu
certification:
  N: 1000
  skip: 1000
analysis:
  radii: "0:0.5:0.25"
  formats: [markdown, csv]
  plot: false
grid:
  training.noise_sd: [0.25, 0.5]
`

// TestFinishedStagesAreSkipped runs an experiment whose first run is
// already trained and certified: only the second is worked on, both are
// analysed, and a second Run does nothing but analyse.
func TestFinishedStagesAreSkipped(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	e := parse(t, twoRuns)
	out := t.TempDir()
	exp := filepath.Join(out, "two")
	first := e.Runs[0]
	if err := writeTrainLog(first.TrainDir(exp), 0, 2, true); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(first.CertifyLog(exp)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (&fakeWorker{}).Certify(context.Background(), first, filepath.Join(first.TrainDir(exp), settings.CheckpointFile), first.CertifyLog(exp)); err != nil {
		t.Fatal(err)
	}
	before := filetest.Read(t, first.CertifyLog(exp))

	w := &fakeWorker{}
	var log strings.Builder
	if err := e.Run(context.Background(), Options{Out: out, Worker: w, Log: &log}); err != nil {
		t.Fatal(err)
	}
	second := e.Runs[1]
	if len(w.trains) != 1 || w.trains[0].OutDir != second.TrainDir(exp) || w.trains[0].Resume {
		t.Errorf("trainings %+v, want one fresh one in %s", w.trains, second.TrainDir(exp))
	}
	if c := w.trains[0]; c.NoiseSD != 0.5 || c.Dataset != "fashion-mnist" || c.Arch != "fashion_cnn" || c.Device != "cpu" {
		t.Errorf("training configuration %+v, want the second run's", c)
	}
	if len(w.certified) != 1 || w.certified[0] != second.CertifyLog(exp) {
		t.Errorf("certified %v, want %s only", w.certified, second.CertifyLog(exp))
	}
	if filetest.Read(t, first.CertifyLog(exp)) != before {
		t.Error("the finished certify log changed")
	}
	for _, want := range []string{"train: done (2/2 epochs), skipped", "certify: done (10/10 examples), skipped", "certify: 10 of 10 examples left"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	for _, f := range []string{
		ExperimentFile, AnalysisFile, "certified_accuracy.md", "certified_accuracy.csv", "envelope.md", "envelope.csv", bestModels,
		filepath.Join(first.Rel, "certified_accuracy.md"), filepath.Join(second.Rel, "certified_accuracy.csv"),
		filepath.Join(first.Rel, RunConfigFile), filepath.Join(second.Rel, RunConfigFile),
	} {
		if _, err := os.Stat(filepath.Join(exp, f)); err != nil {
			t.Error(err)
		}
	}
	if table := filetest.Read(t, filepath.Join(exp, "certified_accuracy.md")); !strings.Contains(table, "gaussian/noise_0.25") || !strings.Contains(table, "gaussian/noise_0.50") {
		t.Errorf("experiment table lacks a run:\n%s", table)
	}

	again := &fakeWorker{}
	if err := e.Run(context.Background(), Options{Out: out, Worker: again}); err != nil {
		t.Fatal(err)
	}
	if len(again.trains)+len(again.certified) != 0 {
		t.Errorf("second run worked: %d trainings, %d certifications", len(again.trains), len(again.certified))
	}
}

// TestCutShortStagesResume leaves one epoch of two with a checkpoint and a
// certify log with three of ten lines and a torn fourth: training resumes,
// certification continues the log.
func TestCutShortStagesResume(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	e := parse(t, twoRuns)
	e.Runs = e.Runs[:1]
	r := e.Runs[0]
	out := t.TempDir()
	exp := filepath.Join(out, "two")
	if err := writeTrainLog(r.TrainDir(exp), 0, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(r.CertifyLog(exp)), 0o755); err != nil {
		t.Fatal(err)
	}
	partial := certify.CertifyHeader + "\n0\t9\t9\t0.5\t1\t0:00:01.000000\n1000\t0\t0\t0.5\t1\t0:00:01.000000\n2000\t1\t1\t0.5\t1\t0:00:01.000000\n3000\t2\t"
	if err := os.WriteFile(r.CertifyLog(exp), []byte(partial), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &fakeWorker{}
	if err := e.Run(context.Background(), Options{Out: out, Worker: w, Only: Train}); err != nil {
		t.Fatal(err)
	}
	if len(w.trains) != 1 || !w.trains[0].Resume {
		t.Fatalf("trainings %+v, want one that resumes", w.trains)
	}
	if err := e.Run(context.Background(), Options{Out: out, Worker: w}); err != nil {
		t.Fatal(err)
	}
	if len(w.trains) != 1 || len(w.certified) != 1 {
		t.Errorf("%d trainings, %d certifications, want 1 and 1", len(w.trains), len(w.certified))
	}
	lines := strings.Split(strings.TrimSpace(filetest.Read(t, r.CertifyLog(exp))), "\n")
	if len(lines) != 11 || lines[1] != "0\t9\t9\t0.5\t1\t0:00:01.000000" {
		t.Errorf("certify log has %d lines, want the header, the 3 kept lines and 7 new:\n%s", len(lines), strings.Join(lines, "\n"))
	}

	// Epochs logged without a checkpoint train afresh.
	dir := t.TempDir()
	if err := writeTrainLog(filepath.Join(dir, "two", r.TrainRel), 0, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "two", r.TrainRel, settings.CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	w = &fakeWorker{}
	if err := e.Run(context.Background(), Options{Out: dir, Worker: w, Only: Train}); err != nil {
		t.Fatal(err)
	}
	if len(w.trains) != 1 || w.trains[0].Resume {
		t.Errorf("trainings %+v, want one fresh one", w.trains)
	}
}

// TestStageOrderIsEnforced checks that certification needs a finished
// training, analysis a certified run, and that a training that stops early
// is an error.
func TestStageOrderIsEnforced(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	e := parse(t, twoRuns)
	out := t.TempDir()
	err := e.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}, Only: Certify})
	if err == nil || !strings.Contains(err.Error(), "not trained yet (0 of 2 epochs") {
		t.Errorf("certify before training: %v", err)
	}
	err = e.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}, Only: Analyze})
	if err == nil || !strings.Contains(err.Error(), "no run is certified yet") {
		t.Errorf("analyze before certifying: %v", err)
	}
	err = e.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{trainEpochs: 1}})
	if err == nil || !strings.Contains(err.Error(), "training returned with 1 of 2 epochs") {
		t.Errorf("training that stops early: %v", err)
	}
}

// TestChangedSettingsAreRefused reruns an experiment into the same folder
// with another N (refused: the results would mix) and with other workers
// (accepted: results are the same).
func TestChangedSettingsAreRefused(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	out := t.TempDir()
	if err := parse(t, twoRuns).Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}}); err != nil {
		t.Fatal(err)
	}
	changed := parse(t, strings.Replace(twoRuns, "N: 1000", "N: 2000", 1))
	err := changed.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}})
	if err == nil || !strings.Contains(err.Error(), "certification.N: 1000 -> 2000") {
		t.Errorf("changed N: %v", err)
	}
	targets := parse(t, strings.Replace(twoRuns, "N: 1000", "N: 1000\n  target_radius: [0.25, 0.5]", 1))
	err = targets.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}})
	if err == nil || !strings.Contains(err.Error(), "certification.target_radius:  -> [0.25, 0.5]") {
		t.Errorf("changed target radii: %v", err)
	}
	harmless := parse(t, strings.Replace(twoRuns, "  device: cpu\n", "  device: cpu\n  workers: 1\n", 1))
	if err := harmless.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}}); err != nil {
		t.Errorf("changed workers: %v", err)
	}
}

// TestPlan lists the runs, their folders and their progress.
func TestPlan(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	e := parse(t, twoRuns)
	out := t.TempDir()
	exp := filepath.Join(out, "two")
	if err := writeTrainLog(e.Runs[1].TrainDir(exp), 0, 1, true); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := e.Plan(&b, out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"experiment two (test.yaml): 2 run(s) in " + exp,
		"   1. " + filepath.Join("gaussian", "noise_0.25"),
		"   2. " + filepath.Join("gaussian", "noise_0.50"),
		e.Runs[0].TrainDir(exp) + "  (0/2 epochs)",
		e.Runs[1].TrainDir(exp) + "  (1/2 epochs)",
		e.Runs[1].CertifyLog(exp) + "  (0/10 examples; N0=100 N=1000 alpha=0.001 sigma=0.5)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, b.String())
		}
	}
	if _, err := os.Stat(e.Runs[0].Dir(exp)); err == nil {
		t.Error("Plan made a run folder")
	}
}
