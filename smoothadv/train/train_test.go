package train

import (
	"context"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/models/modelstest"
)

// small is a quick Fashion-MNIST configuration: 1/40 of the training set.
func small(t *testing.T) Config {
	t.Helper()
	c := Defaults()
	c.Dataset, c.Arch, c.OutDir = "fashion-mnist", "fashion_cnn", t.TempDir()
	c.Device = "cpu"
	c.Epochs, c.Batch, c.LR, c.NoiseSD = 2, 64, 0.05, 0.25
	c.TrainSubset, c.TestSubset = 40, 50
	c.Workers = 2
	if os.Getenv("SMOOTHADV_MODELS") == "" {
		t.Setenv("SMOOTHADV_MODELS", testenv.ModelsDir())
	}
	return c
}

func readLog(t *testing.T, dir string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows
}

func weights(t *testing.T, path string) []float32 {
	t.Helper()
	m, err := models.Load(path, models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return modelstest.Parameters(t, m.Module)
}

// TestGaussianTrainingLearnsAndRepeats trains twice with one seed: the log
// has the reference's columns, the model beats chance on noisy test images,
// and the two runs end with identical weights.
func TestGaussianTrainingLearnsAndRepeats(t *testing.T) {
	a, b := small(t), small(t)
	b.OutDir = t.TempDir()
	for _, c := range []Config{a, b} {
		if err := Run(context.Background(), c, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	rows := readLog(t, a.OutDir)
	if got := strings.Join(rows[0], " "); got != "epoch time lr trainloss testloss trainacc testacc" {
		t.Errorf("header %q", got)
	}
	if len(rows) != 3 {
		t.Fatalf("%d log lines, want header + 2 epochs", len(rows))
	}
	acc, err := strconv.ParseFloat(rows[2][6], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("noisy test accuracy after 2 short epochs: %v%%", acc)
	if acc < 40 { // chance is 10%
		t.Errorf("test accuracy %v%%: the model did not learn", acc)
	}
	wa := weights(t, filepath.Join(a.OutDir, CheckpointFile))
	wb := weights(t, filepath.Join(b.OutDir, CheckpointFile))
	for i := range wa {
		if wa[i] != wb[i] {
			t.Fatalf("same seed, different weights at %d: %v vs %v", i, wa[i], wb[i])
		}
	}
	for _, f := range []string{ConfigFile, CheckpointFile} {
		if _, err := os.Stat(filepath.Join(a.OutDir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Defaults()
	c.Batch, c.LR, c.AdvTraining, c.Attack = 0, -1, true, "FGSM"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"dataset", "arch", "outdir", "batch", "lr", "attack"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestWarmEpsilon(t *testing.T) {
	c := Defaults()
	c.Epsilon, c.Warmup = 256, 4
	for e, want := range []float64{0.25, 0.5, 0.75, 1, 1} {
		if got := c.warmEpsilon(e); got != want {
			t.Errorf("epoch %d: eps %v, want %v", e, got, want)
		}
	}
}
