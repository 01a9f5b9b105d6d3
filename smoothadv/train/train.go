// Package train trains base classifiers for randomized smoothing: Gaussian
// data augmentation (Cohen et al.'s train.py), SmoothAdv adversarial
// training (Salman et al.'s train_pgd.py, Pseudocode 1), vanilla
// adversarial training (noise 0), MACER, consistency regularisation and
// SmoothMix (methods.go), alone or data-parallel over a c10d process group
// (distributed.go), with the reference's log.txt and checkpoint.pth.tar in
// the output directory.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Config holds every knob of the reference's train.py and train_pgd.py,
// under the reference's names, plus ours.
type Config struct {
	Dataset string `yaml:"dataset"`
	Arch    string `yaml:"arch"`
	OutDir  string `yaml:"outdir"`
	DataDir string `yaml:"data_dir"`

	Batch       int     `yaml:"batch"`
	LR          float64 `yaml:"lr"`
	LRStepSize  int     `yaml:"lr_step_size"`
	Gamma       float64 `yaml:"gamma"`
	Momentum    float64 `yaml:"momentum"`
	WeightDecay float64 `yaml:"weight_decay"`
	NoiseSD     float64 `yaml:"noise_sd"`
	Epochs      int     `yaml:"epochs"`

	Resume             bool    `yaml:"resume"`
	PretrainedModel    string  `yaml:"pretrained_model"`
	UseUnlabelled      bool    `yaml:"use_unlabelled"`
	UnlabelledPath     string  `yaml:"unlabelled_path"`
	SelfTrainingWeight float64 `yaml:"self_training_weight"`

	AdvTraining     bool    `yaml:"adv_training"`
	Attack          string  `yaml:"attack"`  // PGD or DDN
	Epsilon         float64 `yaml:"epsilon"` // L2 radius in 1/256 units, as the reference's flag
	NumSteps        int     `yaml:"num_steps"`
	Warmup          int     `yaml:"warmup"`
	NumNoiseVec     int     `yaml:"num_noise_vec"`
	TrainMultiNoise bool    `yaml:"train_multi_noise"`
	NoGradAttack    bool    `yaml:"no_grad_attack"`
	InitNormDDN     float64 `yaml:"init_norm_ddn"` // 1/256 units
	GammaDDN        float64 `yaml:"gamma_ddn"`

	// Method is the training method (methods.go): gaussian, smoothadv (the
	// same as adv_training), macer, consistency (with adv_training on
	// SmoothAdv's attacked inputs) or smoothmix. Each method's own knobs
	// carry its name; their defaults are its reference implementation's.
	Method            string  `yaml:"method"`
	MACERLambda       float64 `yaml:"macer_lbd"`      // weight of the robustness loss
	MACERGamma        float64 `yaml:"macer_gamma"`    // hinge on the radius gap
	MACERBeta         float64 `yaml:"macer_beta"`     // inverse softmax temperature of the robustness loss
	MACERDeferred     int     `yaml:"macer_deferred"` // first epochs without the robustness loss (0: none, as MACER's reference)
	ConsistencyLambda float64 `yaml:"consistency_lbd"`
	ConsistencyEta    float64 `yaml:"consistency_eta"` // weight of the entropy term
	SmoothMixEta      float64 `yaml:"smoothmix_eta"`   // weight of the mixup loss
	SmoothMixAlpha    float64 `yaml:"smoothmix_alpha"` // attack step size (pixel units)
	SmoothMixSteps    int     `yaml:"smoothmix_num_steps"`
	SmoothMixMixStep  int     `yaml:"smoothmix_mix_step"`  // the step whose start is the clean side
	SmoothMixMaxNorm  float64 `yaml:"smoothmix_maxnorm"`   // attack radius; 0: none
	SmoothMixMaxNormS float64 `yaml:"smoothmix_maxnorm_s"` // clean side's radius; 0: alpha * mix_step
	SmoothMixWarmup   int     `yaml:"smoothmix_warmup"`    // epochs over which the mixup loss and maxnorm_s grow

	Workers       int    `yaml:"workers"`
	PrintFreq     int    `yaml:"print_freq"`
	Device        string `yaml:"device"`
	Seed          uint64 `yaml:"seed"`
	Normalization string `yaml:"normalization"`
	// TrainSubset trains on every k-th training example and TestSubset
	// tests each epoch on every k-th test example (1: all, as the reference),
	// to keep small CPU runs quick.
	TrainSubset int `yaml:"train_subset"`
	TestSubset  int `yaml:"test_subset"`
	// ChannelsLast gives the model its inputs in channels-last (NHWC)
	// memory format, in training, attacks and tests: the same values, other
	// kernels. On by default: on the CPU a training step takes about 0.87x
	// the time (BENCHMARKS.md); false keeps train_pgd.py's NCHW.
	ChannelsLast bool `yaml:"channels_last"`
	// FrozenAttack runs attacks on a frozen eval-mode copy of the current
	// weights (BatchNorm folded into the convolutions): the same function up
	// to float rounding, about 0.75x the time per attack pass on a CPU
	// (BENCHMARKS.md). On by default; false attacks the training module
	// switched to eval mode, as train_pgd.py does.
	FrozenAttack bool `yaml:"frozen_attack"`
}

// Defaults are the reference's defaults (train_pgd.py; each method's own
// knobs, its reference's).
func Defaults() Config {
	c := Config{
		Batch: 256, LR: 0.1, LRStepSize: 30, Gamma: 0.1, Momentum: 0.9, WeightDecay: 1e-4,
		Epochs: 90, Attack: "DDN", Epsilon: 256, NumSteps: 10, Warmup: 1, NumNoiseVec: 1,
		InitNormDDN: 256, GammaDDN: 0.05, SelfTrainingWeight: 1, Workers: 4, PrintFreq: 10,
		Device: "cpu", TrainSubset: 1, TestSubset: 1, ChannelsLast: true, FrozenAttack: true,
	}
	c.methodDefaults()
	return c
}

// Validate lists every problem with the configuration at once.
func (c Config) Validate() error {
	c = c.Resolved()
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Dataset != "", "dataset: missing")
	check(c.Arch != "", "arch: missing")
	check(c.OutDir != "", "outdir: missing")
	check(c.Batch >= 1, "batch: %d, want >= 1", c.Batch)
	check(c.LR > 0 && !math.IsInf(c.LR, 0), "lr: %v, want > 0", c.LR)
	check(c.LRStepSize >= 1, "lr_step_size: %d, want >= 1", c.LRStepSize)
	check(c.Gamma > 0 && c.Gamma <= 1, "gamma: %v, want in (0, 1]", c.Gamma)
	check(c.Momentum >= 0 && c.Momentum < 1, "momentum: %v, want in [0, 1)", c.Momentum)
	check(c.WeightDecay >= 0 && !math.IsInf(c.WeightDecay, 0), "weight_decay: %v, want a finite number >= 0", c.WeightDecay)
	check(c.NoiseSD >= 0 && c.NoiseSD <= models.MaxNoiseSD, "noise_sd: %v, want a number in [0, %g] (images lie in [0, 1])", c.NoiseSD, models.MaxNoiseSD)
	check(c.Epochs >= 1, "epochs: %d, want >= 1", c.Epochs)
	check(c.NumNoiseVec >= 1, "num_noise_vec: %d, want >= 1", c.NumNoiseVec)
	check(c.Batch%max(c.NumNoiseVec, 1) == 0, "batch %d is not a multiple of num_noise_vec %d", c.Batch, c.NumNoiseVec)
	check(c.TrainSubset >= 1, "train_subset: %d, want >= 1", c.TrainSubset)
	check(c.TestSubset >= 1, "test_subset: %d, want >= 1", c.TestSubset)
	check(c.SelfTrainingWeight >= 0 && !math.IsInf(c.SelfTrainingWeight, 0), "self_training_weight: %v, want a finite number >= 0", c.SelfTrainingWeight)
	check(c.Workers >= 0, "workers: %d, want >= 0", c.Workers)
	check(c.Normalization == "" || c.Normalization == models.Normalize || c.Normalization == models.Center || c.Normalization == models.None,
		"normalization: %q, want %s, %s or %s", c.Normalization, models.Normalize, models.Center, models.None)
	if err := torchbind.CheckDeviceName(c.Device); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	if c.AdvTraining {
		check(c.Attack == "PGD" || c.Attack == "DDN", "attack: %q, want PGD or DDN", c.Attack)
		check(c.Epsilon > 0 && !math.IsInf(c.Epsilon, 0), "epsilon: %v, want a finite number > 0", c.Epsilon)
		if c.Attack == "DDN" {
			check(c.InitNormDDN > 0 && !math.IsInf(c.InitNormDDN, 0), "init_norm_ddn: %v, want a finite number > 0", c.InitNormDDN)
			check(c.GammaDDN >= 0 && c.GammaDDN < 1, "gamma_ddn: %v, want in [0, 1)", c.GammaDDN)
		}
		check(c.NumSteps >= 1, "num_steps: %d, want >= 1", c.NumSteps)
		check(c.Warmup >= 1, "warmup: %d, want >= 1", c.Warmup)
	}
	errs = append(errs, c.methodProblems()...)
	return errors.Join(errs...)
}

// warmEpsilon is the attack radius of epoch e (from 0), in pixel units:
// min(eps, (e + 1) * eps / warmup), as the reference warms up.
func (c Config) warmEpsilon(epoch int) float64 {
	eps := c.Epsilon / 256
	return math.Min(eps, float64(epoch+1)*eps/float64(c.Warmup))
}

// Stats are one epoch's numbers, as log.txt records them (accuracies in percent).
type Stats struct {
	Epoch               int
	Time                time.Duration
	LR                  float64
	TrainLoss, TestLoss float64
	TrainAcc, TestAcc   float64
	TestAccNoisy        float64 // testaccNor: noisy clean inputs, with adversarial training
}

// meter is a running average weighted by batch size. Its sum stays on the
// device, in float64, and is read once, by avg: a training step never waits
// for the device to report its loss. (A float32 batch value times a count of
// rows is exact in float64, so the sum rounds as a host sum would.)
type meter struct {
	sum *torchbind.Tensor // nil before the first add
	n   float64
}

// add adds weight*v, v a one-element tensor, to the sum and n to the count.
// Errors are s's.
func (m *meter) add(s *torchbind.Scope, v *torchbind.Tensor, weight float64, n int) {
	v = s.ToFloat64(v)
	if m.sum == nil && s.Err() == nil {
		m.sum = s.Keep(s.ZerosLike(v))
	}
	if s.Err() != nil {
		return
	}
	if err := m.sum.AddInPlace(v, weight); err != nil {
		s.Fail(err)
		return
	}
	m.n += float64(n)
}

// avg waits for the device and returns the average: 0 before any add, NaN
// if the sum cannot be read (the device has failed, and its next operation
// says why).
func (m *meter) avg() float64 {
	if m.n == 0 {
		return 0
	}
	sum, err := m.sum.Item()
	if err != nil {
		return math.NaN()
	}
	return sum / m.n
}

// Trainer runs a configured training.
type Trainer struct {
	cfg   Config
	model *models.Model
	opt   *SGD
	gen   *torchbind.Generator
	// attackGen draws the attack's random directions, apart from gen's
	// noise (see attackDraws).
	attackGen *torchbind.Generator
	train     *data.Loader
	extra     *data.Loader // pseudo-labelled batches for self-training
	test      data.Dataset
	attacker  Attacker
	progress  progress.Reporter
	out       io.Writer   // per-epoch summaries
	group     *dist.Group // the processes of data-parallel training; nil alone
}

// Run trains as cfg says, resuming from OutDir when cfg.Resume is set.
func Run(ctx context.Context, cfg Config, out io.Writer) error { return RunIn(ctx, cfg, nil, out) }
