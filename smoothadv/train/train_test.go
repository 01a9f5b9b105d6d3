package train

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/models/modelstest"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
)

// small is a quick Fashion-MNIST configuration: 1/40 of the training set.
func small(t *testing.T) settings.Config {
	t.Helper()
	c := settings.Defaults()
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
	b, err := os.ReadFile(filepath.Join(dir, trainlog.File))
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
	for _, c := range []settings.Config{a, b} {
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
	wa := weights(t, filepath.Join(a.OutDir, settings.CheckpointFile))
	wb := weights(t, filepath.Join(b.OutDir, settings.CheckpointFile))
	for i := range wa {
		if wa[i] != wb[i] {
			t.Fatalf("same seed, different weights at %d: %v vs %v", i, wa[i], wb[i])
		}
	}
	for _, f := range []string{settings.ConfigFile, settings.CheckpointFile} {
		if _, err := os.Stat(filepath.Join(a.OutDir, f)); err != nil {
			t.Error(err)
		}
	}
}
