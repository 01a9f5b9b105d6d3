package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/smoothadv/smoothadv/internal/noiselevel"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// TrainConfig is a training configuration to time: Gaussian augmentation,
// or SmoothAdv with multi-noise PGD.
type TrainConfig struct {
	Name        string
	AttackSteps int // PGD steps T; 0: Gaussian augmentation
	NoiseVecs   int // m
}

// TrainConfigs are the configurations bench train times by default: the
// paper's CIFAR-10 settings use epsilon 128/256 with T = 2, m = 2 and
// T = 10, m = 4, multi-noise.
var TrainConfigs = []TrainConfig{
	{Name: "gaussian", NoiseVecs: 1},
	{Name: "pgd-t2-m2", AttackSteps: 2, NoiseVecs: 2},
	{Name: "pgd-t10-m4", AttackSteps: 10, NoiseVecs: 4},
}

// TrainOptions of a training-step benchmark.
type TrainOptions struct {
	Model   string // a model file exported by export_models.py or trained here
	Device  string
	Configs []string // names from TrainConfigs; none: all
	Batch   int
	Steps   int // timed steps per side
	Warmup  int // untimed steps per side before them, at least 1
	NoiseSD float64
	Epsilon float64 // attack radius in 1/256 units, as the reference's flag
	LR      float64 // SGD's learning rate (momentum and weight decay are the reference's)
	// Threads sets our intra-op threads; 0: as smoothadv train sets them.
	Threads int
	// ReferenceThreads sets the reference's: 0 gives it as many as ours
	// (equal threads), -1 leaves torch's default.
	ReferenceThreads int
	// ChannelsLast runs our step with channels-last inputs (the reference's
	// stays as train_pgd.py has it).
	ChannelsLast bool
	// FrozenAttack attacks a frozen copy of our model
	// (settings.Config.FrozenAttack).
	FrozenAttack bool
	// Python runs the reference's step with this interpreter ("" skips it).
	Python string
}

func (o TrainOptions) check() ([]TrainConfig, error) {
	if err := noiselevel.Check(o.NoiseSD); err != nil {
		return nil, fmt.Errorf("bench: noise sd %w", err)
	}
	switch {
	case o.Batch < 1:
		return nil, fmt.Errorf("bench: batch %d, want >= 1", o.Batch)
	case o.Steps < 1:
		return nil, fmt.Errorf("bench: steps %d, want >= 1", o.Steps)
	case o.Warmup < 1:
		return nil, fmt.Errorf("bench: warm-up steps %d, want >= 1 (the first batch's loss is read there)", o.Warmup)
	case !(o.Epsilon > 0 && o.Epsilon < 1e6):
		return nil, fmt.Errorf("bench: epsilon %v, want a number in (0, 1e6) (units of 1/256)", o.Epsilon)
	case !(o.LR > 0 && o.LR < 1e6):
		return nil, fmt.Errorf("bench: lr %v, want a number in (0, 1e6)", o.LR)
	case o.Threads < 0:
		return nil, fmt.Errorf("bench: threads %d, want >= 0 (0: as smoothadv train sets them)", o.Threads)
	case o.ReferenceThreads < -1:
		return nil, fmt.Errorf("bench: reference threads %d, want >= -1 (0: as many as ours, -1: torch's default)", o.ReferenceThreads)
	}
	out := TrainConfigs
	if len(o.Configs) > 0 {
		out = nil
		for _, name := range o.Configs {
			i := 0
			for i < len(TrainConfigs) && TrainConfigs[i].Name != name {
				i++
			}
			if i == len(TrainConfigs) {
				return nil, fmt.Errorf("bench: configuration %q, want one of %s", name, TrainConfigNames())
			}
			out = append(out, TrainConfigs[i])
		}
	}
	for _, c := range out {
		if o.Batch%c.NoiseVecs != 0 {
			return nil, fmt.Errorf("bench: batch %d is not a multiple of %s's %d noise vectors", o.Batch, c.Name, c.NoiseVecs)
		}
	}
	return out, nil
}

// TrainConfigNames lists TrainConfigs' names.
func TrainConfigNames() string {
	s := ""
	for i, c := range TrainConfigs {
		if i > 0 {
			s += ", "
		}
		s += c.Name
	}
	return s
}

// TrainSide is one side's measurement of a configuration.
type TrainSide struct {
	SecondsPerBatch float64
	// FirstLoss is the mean training loss of the first batch, from the
	// same weights on both sides: with noise sd 0 it must agree.
	FirstLoss float64
	Threads   int
	Allocator string
	Torch     string
}

// TrainResult is one configuration timed on both sides (Reference is
// zero without a Python).
type TrainResult struct {
	Config          TrainConfig
	Ours, Reference TrainSide
}

// RunTrain times our training step (smoothadv/train's, per loaded batch) and
// the reference's on one fixed batch of uniform random images with random
// labels, both starting from the weights in opt.Model.
func RunTrain(ctx context.Context, opt TrainOptions) ([]TrainResult, error) {
	configs, err := opt.check()
	if err != nil {
		return nil, err
	}
	m, err := loadModel(opt.Model, opt.Device)
	if err != nil {
		return nil, err
	}
	batch := randomBatch(m.Meta, opt.Batch)
	m.Close()
	var files batchFiles
	if opt.Python != "" {
		dir, err := os.MkdirTemp("", "smoothadv-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if files, err = writeBatch(dir, batch); err != nil {
			return nil, err
		}
	}
	var out []TrainResult
	for _, c := range configs {
		ours, err := timeOurs(opt, c, batch)
		if err != nil {
			return out, fmt.Errorf("%s: %w", c.Name, err)
		}
		r := TrainResult{Config: c, Ours: ours}
		if opt.Python != "" {
			threads := opt.ReferenceThreads
			if threads == 0 {
				threads = ours.Threads
			}
			if r.Reference, err = timeReference(ctx, opt, c, files, max(threads, 0)); err != nil {
				return out, fmt.Errorf("%s: %w", c.Name, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func randomBatch(meta models.Meta, n int) *data.Batch {
	sh := data.Shape{C: int(meta.Input[0]), H: int(meta.Input[1]), W: int(meta.Input[2])}
	rng := rand.New(rand.NewPCG(1, 2))
	b := &data.Batch{Shape: sh, Images: make([]float32, n*sh.Size()), Labels: make([]int64, n), Indices: make([]int, n)}
	for i := range b.Images {
		b.Images[i] = rng.Float32()
	}
	for i := range b.Labels {
		b.Labels[i] = int64(rng.IntN(meta.NumClasses))
		b.Indices[i] = i
	}
	return b
}

type batchFiles struct{ images, labels string }

// writeBatch writes the batch as raw little-endian float32 images and int64
// labels for the reference's script.
func writeBatch(dir string, b *data.Batch) (batchFiles, error) {
	f := batchFiles{images: filepath.Join(dir, "images.f32"), labels: filepath.Join(dir, "labels.i64")}
	for _, w := range []struct {
		path string
		v    any
	}{{f.images, b.Images}, {f.labels, b.Labels}} {
		buf, err := binary.Append(nil, binary.LittleEndian, w.v)
		if err != nil {
			return f, err
		}
		if err := os.WriteFile(w.path, buf, 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}

func (o TrainOptions) trainConfig(c TrainConfig) settings.Config {
	cfg := settings.Defaults()
	cfg.Batch, cfg.LR, cfg.NoiseSD, cfg.NumNoiseVec, cfg.Seed = o.Batch, o.LR, o.NoiseSD, c.NoiseVecs, 1
	cfg.ChannelsLast, cfg.FrozenAttack = o.ChannelsLast, o.FrozenAttack
	if c.AttackSteps > 0 {
		cfg.AdvTraining, cfg.Attack, cfg.Epsilon, cfg.NumSteps, cfg.TrainMultiNoise = true, "PGD", o.Epsilon, c.AttackSteps, true
	}
	return cfg
}

// timeOurs runs smoothadv/train's step on a freshly loaded copy of the model.
func timeOurs(opt TrainOptions, c TrainConfig, b *data.Batch) (TrainSide, error) {
	m, err := loadModel(opt.Model, opt.Device)
	if err != nil {
		return TrainSide{}, err
	}
	defer m.Close()
	s, err := train.NewStepper(opt.trainConfig(c), m)
	if err != nil {
		return TrainSide{}, err
	}
	defer s.Close()
	if opt.Threads > 0 {
		if err := torchbind.SetNumThreads(opt.Threads); err != nil {
			return TrainSide{}, err
		}
	}
	side := TrainSide{Threads: torchbind.NumThreads(), Allocator: torchbind.Allocator(), Torch: torchbind.Version()}
	for i := 0; i < opt.Warmup; i++ {
		if err := s.Step(b); err != nil {
			return side, err
		}
		if i == 0 {
			side.FirstLoss = s.Loss()
		}
	}
	start := time.Now()
	for i := 0; i < opt.Steps; i++ {
		if err := s.Step(b); err != nil {
			return side, err
		}
	}
	s.Loss() // waits for the device
	side.SecondsPerBatch = time.Since(start).Seconds() / float64(opt.Steps)
	return side, nil
}

// timeReference runs the reference's step with threads intra-op threads
// (0: torch's default).
func timeReference(ctx context.Context, opt TrainOptions, c TrainConfig, f batchFiles, threads int) (TrainSide, error) {
	cfg := opt.trainConfig(c)
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	args := []string{"--model", opt.Model, "--images", f.images, "--labels", f.labels,
		"--device", opt.Device, "--batch", strconv.Itoa(opt.Batch), "--steps", strconv.Itoa(opt.Steps),
		"--warmup", strconv.Itoa(opt.Warmup), "--noise-sd", g(cfg.NoiseSD), "--m", strconv.Itoa(c.NoiseVecs),
		"--attack-steps", strconv.Itoa(c.AttackSteps), "--epsilon", g(cfg.Epsilon), "--lr", g(cfg.LR),
		"--momentum", g(cfg.Momentum), "--weight-decay", g(cfg.WeightDecay), "--threads", strconv.Itoa(threads)}
	if cfg.TrainMultiNoise {
		args = append(args, "--multi-noise")
	}
	var r struct {
		SecondsPerBatch float64 `json:"seconds_per_batch"`
		FirstLoss       float64 `json:"first_loss"`
		Threads         int     `json:"threads"`
		Allocator       string  `json:"allocator"`
		Torch           string  `json:"torch"`
	}
	if err := runReference(ctx, "reference step", opt.Python, "reference_train.py", &r, args...); err != nil {
		return TrainSide{}, err
	}
	return TrainSide(r), nil
}
