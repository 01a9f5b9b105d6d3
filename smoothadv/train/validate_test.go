package train

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// TestValidateRefusesBadNumbers checks each number and name of a training
// configuration that used to pass (infinite, too large, negative, unknown),
// and that Run refuses it before making the output directory.
func TestValidateRefusesBadNumbers(t *testing.T) {
	for _, c := range []struct {
		change func(*settings.Config)
		want   string
	}{
		{func(c *settings.Config) { c.NoiseSD = math.Inf(1) }, "noise_sd: +Inf, want a number in [0, 10000] (images lie in [0, 1])"},
		{func(c *settings.Config) { c.NoiseSD = 1e308 }, "noise_sd: 1e+308, want a number in [0, 10000]"},
		{func(c *settings.Config) { c.NoiseSD = math.NaN() }, "noise_sd: NaN, want a number in [0, 10000]"},
		{func(c *settings.Config) { c.WeightDecay = math.Inf(1) }, "weight_decay: +Inf, want a finite number >= 0"},
		{func(c *settings.Config) { c.SelfTrainingWeight = math.Inf(1) }, "self_training_weight: +Inf, want a finite number >= 0"},
		{func(c *settings.Config) { c.Workers = -1 }, "workers: -1, want >= 0"},
		{func(c *settings.Config) { c.Normalization = "whiten" }, `normalization: "whiten", want normalize, center or none`},
		{func(c *settings.Config) { c.Device = "cpu:1" }, `device: device "cpu:1": cpu takes no index`},
		{func(c *settings.Config) { c.Device = "gpu" }, `device: unknown device "gpu" (want auto, cpu, cuda or cuda:N)`},
		{func(c *settings.Config) { c.AdvTraining, c.Epsilon = true, math.Inf(1) }, "epsilon: +Inf, want a finite number > 0"},
		{func(c *settings.Config) { c.AdvTraining, c.InitNormDDN = true, 0 }, "init_norm_ddn: 0, want a finite number > 0"},
		{func(c *settings.Config) { c.AdvTraining, c.GammaDDN = true, 1 }, "gamma_ddn: 1, want in [0, 1)"},
	} {
		cfg := settings.Defaults()
		cfg.Dataset, cfg.Arch, cfg.OutDir = "fashion-mnist", "fashion_cnn", filepath.Join(t.TempDir(), "out")
		c.change(&cfg)
		err := Run(context.Background(), cfg, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want an error saying %q", err, c.want)
		}
		if _, err := os.Stat(cfg.OutDir); !os.IsNotExist(err) {
			t.Errorf("%s: output directory made before the refusal (%v)", c.want, err)
		}
	}
	// The attack knobs of DDN are not checked for PGD, which ignores them.
	cfg := settings.Defaults()
	cfg.Dataset, cfg.Arch, cfg.OutDir = "fashion-mnist", "fashion_cnn", "out"
	cfg.AdvTraining, cfg.Attack, cfg.GammaDDN = true, "PGD", 1
	if err := cfg.Validate(); err != nil {
		t.Errorf("PGD with DDN's gamma 1: %v", err)
	}
}

// TestDivergedTrainingStops: a learning rate that drives the loss to
// infinity or NaN stops the run with an error naming the epoch, and no
// checkpoint of non-finite weights is written.
func TestDivergedTrainingStops(t *testing.T) {
	c := small(t)
	c.Epochs, c.LR, c.TrainSubset, c.TestSubset = 1, 1e30, 400, 200
	err := Run(context.Background(), c, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "epoch 0: the training loss is") || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("lr 1e30: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.OutDir, settings.CheckpointFile)); !os.IsNotExist(err) {
		t.Errorf("a checkpoint was written (%v)", err)
	}
}
