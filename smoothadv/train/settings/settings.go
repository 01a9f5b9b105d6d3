// Package settings holds a training's settings: every knob of the
// reference's train.py and train_pgd.py and of the methods that followed,
// their defaults, their checks, and what a resumed run must keep. It is pure
// Go, so that a configuration is read and checked without libtorch (an
// experiment file, a dry run).
package settings

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/smoothadv/smoothadv/internal/devicename"
	"github.com/smoothadv/smoothadv/internal/noiselevel"
	"github.com/smoothadv/smoothadv/internal/yamlfield"
	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
)

// Files a training writes in its output directory, beside log.txt (package
// trainlog).
const (
	// CheckpointFile is the reference's checkpoint, written after every
	// epoch; the reference's scripts and ours both load it.
	CheckpointFile = "checkpoint.pth.tar"
	// ConfigFile records the run's settings, for checking a resume.
	ConfigFile = "run.json"
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

	Resume bool `yaml:"resume"`
	// Overwrite trains afresh into an OutDir that holds a run with other
	// settings; without it that is refused. Not part of the run's record.
	Overwrite          bool    `yaml:"-" json:"-"`
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
	// SmoothAdv's attacked inputs) or smoothmix; unset, gaussian or, with
	// adv_training, smoothadv. Each method's own knobs carry its name; their
	// defaults are its reference implementation's.
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

// Problem is one invalid setting: Key is its yaml key ("" for a problem of
// several), so that a caller can name it as its own file does.
type Problem struct {
	Key, Msg string
}

func (p Problem) Error() string {
	if p.Key == "" {
		return p.Msg
	}
	return p.Key + ": " + p.Msg
}

// Problems are every problem of a configuration, one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems.
type problems struct{ list Problems }

// check adds a problem of key unless ok.
func (ps *problems) check(ok bool, key, format string, args ...any) {
	if !ok {
		ps.list = append(ps.list, Problem{key, fmt.Sprintf(format, args...)})
	}
}

// Validate lists every problem with the configuration at once, as Problems
// (nil when there is none).
func (c Config) Validate() error {
	if ps := c.Problems(); len(ps) > 0 {
		return ps
	}
	return nil
}

// Problems lists every problem with the configuration.
func (c Config) Problems() Problems {
	var ps problems
	ps.check(!(c.Method == Gaussian && c.AdvTraining), "method",
		"gaussian does not attack, and adv_training does: that is smoothadv; set method smoothadv, or leave method unset")
	c = c.Resolved()
	ps.check(c.Dataset != "", "dataset", "missing")
	ps.check(c.Arch != "", "arch", "missing")
	ps.check(c.OutDir != "", "outdir", "missing")
	ps.check(c.Batch >= 1, "batch", "%d, want >= 1", c.Batch)
	ps.check(c.LR > 0 && finite(c.LR), "lr", "%v, want > 0", c.LR)
	ps.check(c.LRStepSize >= 1, "lr_step_size", "%d, want >= 1", c.LRStepSize)
	ps.check(c.Gamma > 0 && c.Gamma <= 1, "gamma", "%v, want in (0, 1]", c.Gamma)
	ps.check(c.Momentum >= 0 && c.Momentum < 1, "momentum", "%v, want in [0, 1)", c.Momentum)
	ps.check(c.WeightDecay >= 0 && finite(c.WeightDecay), "weight_decay", "%v, want a finite number >= 0", c.WeightDecay)
	if err := noiselevel.Check(c.NoiseSD); err != nil {
		ps.check(false, "noise_sd", "%v", err)
	}
	ps.check(c.Epochs >= 1, "epochs", "%d, want >= 1", c.Epochs)
	ps.check(c.NumNoiseVec >= 1, "num_noise_vec", "%d, want >= 1", c.NumNoiseVec)
	ps.check(c.Batch%max(c.NumNoiseVec, 1) == 0, "", "batch %d is not a multiple of num_noise_vec %d", c.Batch, c.NumNoiseVec)
	ps.check(c.TrainSubset >= 1, "train_subset", "%d, want >= 1", c.TrainSubset)
	ps.check(c.TestSubset >= 1, "test_subset", "%d, want >= 1", c.TestSubset)
	ps.check(c.SelfTrainingWeight >= 0 && finite(c.SelfTrainingWeight), "self_training_weight", "%v, want a finite number >= 0", c.SelfTrainingWeight)
	ps.check(c.Workers >= 0, "workers", "%d, want >= 0", c.Workers)
	ps.check(c.Normalization == "" || inputlayer.Check(c.Normalization) == nil, "normalization", "%q, want %s", c.Normalization, inputlayer.Want)
	if err := devicename.Check(c.Device); err != nil {
		ps.check(false, "device", "%v", err)
	}
	if c.AdvTraining {
		ps.check(c.Attack == "PGD" || c.Attack == "DDN", "attack", "%q, want PGD or DDN", c.Attack)
		ps.check(c.Epsilon > 0 && finite(c.Epsilon), "epsilon", "%v, want a finite number > 0", c.Epsilon)
		if c.Attack == "DDN" {
			ps.check(c.InitNormDDN > 0 && finite(c.InitNormDDN), "init_norm_ddn", "%v, want a finite number > 0", c.InitNormDDN)
			ps.check(c.GammaDDN >= 0 && c.GammaDDN < 1, "gamma_ddn", "%v, want in [0, 1)", c.GammaDDN)
		}
		ps.check(c.NumSteps >= 1, "num_steps", "%d, want >= 1", c.NumSteps)
		ps.check(c.Warmup >= 1, "warmup", "%d, want >= 1", c.Warmup)
	}
	c.methodProblems(&ps)
	return ps.list
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// WarmEpsilon is the attack radius of epoch e (from 0), in pixel units:
// min(eps, (e + 1) * eps / warmup), as the reference warms up.
func (c Config) WarmEpsilon(epoch int) float64 {
	eps := c.Epsilon / 256
	return math.Min(eps, float64(epoch+1)*eps/float64(c.Warmup))
}

// Knob is the field of c whose yaml key is key, settable; the zero Value
// when there is none.
func (c *Config) Knob(key string) reflect.Value {
	return yamlfield.ByKey(reflect.ValueOf(c).Elem(), key)
}
