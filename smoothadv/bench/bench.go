// Package bench times our work beside the Python reference's, side by side
// on the same model and machine: certification's sampling (Run) against
// the reference's sampling loop, and a training step (RunTrain) against
// train_pgd.py's. The reference's side runs this package's Python scripts.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/noiselevel"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/smoothing"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Options of a certification benchmark.
type Options struct {
	Model   string // a model file exported by export_models.py or trained here
	Device  string
	Images  int
	N0, N   int
	Batch   int
	Sigma   float64
	Workers int // 0: one per CPU core on cpu, 1 on cuda
	// Unoptimized samples with the scripted model rather than a copy
	// optimised for inference.
	Unoptimized bool
	// Infer is our sampler's precision and memory format (the reference
	// runs in float32).
	Infer torchbind.InferOptions
	// Python runs the reference's loop with this interpreter ("" skips it).
	Python string
	// TargetRadius times adaptive CERTIFY at these radii (the reference
	// has none: it samples N each time).
	TargetRadius certify.Targets
}

// check refuses options that cannot make a benchmark. Sigma 0 is allowed:
// timing without noise is a fair question.
func (o Options) check() error {
	if err := noiselevel.Check(o.Sigma); err != nil {
		return fmt.Errorf("bench: sigma %w", err)
	}
	switch {
	case o.Images < 1:
		return fmt.Errorf("bench: images %d, want >= 1", o.Images)
	case o.N0 < 1 || o.N < 1:
		return fmt.Errorf("bench: N0 %d and N %d, want >= 1", o.N0, o.N)
	case o.Batch < 1:
		return fmt.Errorf("bench: batch %d, want >= 1", o.Batch)
	case o.Workers < 0:
		return fmt.Errorf("bench: workers %d, want >= 0 (0: one per CPU core on cpu, 1 on cuda)", o.Workers)
	}
	return nil
}

// Result is one measurement.
type Result struct {
	Name            string
	Images          int
	Seconds         float64
	ImagesPerSecond float64
	// SamplesPerSecond counts forward passes of single noisy images.
	SamplesPerSecond float64
}

func result(name string, images, samplesPerImage int, secs float64) Result {
	return Result{Name: name, Images: images, Seconds: secs, ImagesPerSecond: float64(images) / secs,
		SamplesPerSecond: float64(images*samplesPerImage) / secs}
}

// Run times CERTIFY's sampling (N0 + N samples per image) with our sampler
// and, when opt.Python is set, with the reference's loop.
func Run(ctx context.Context, opt Options) ([]Result, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if err := opt.Infer.Precision.CheckDevice(opt.Device); err != nil {
		return nil, err
	}
	m, err := loadModel(opt.Model, opt.Device)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.Train(false); err != nil {
		return nil, err
	}
	workers, err := smoothing.Workers(opt.Workers, m.Device())
	if err != nil {
		return nil, err
	}
	shape := m.Meta.Input
	per := int(shape[0] * shape[1] * shape[2])
	rng := rand.New(rand.NewPCG(1, 2))
	images := make([][]float32, opt.Images)
	for i := range images {
		images[i] = make([]float32, per)
		for j := range images[i] {
			images[i][j] = rng.Float32()
		}
	}
	s := &smoothing.Sampler{Model: m, Device: m.Device(), Sigma: opt.Sigma, Batch: opt.Batch,
		NumClasses: m.Meta.NumClasses, Shape: shape, Workers: workers, Infer: opt.Infer,
		Image: func(x certify.Input) ([]float32, error) { return images[x], nil }}
	defer s.Close()
	if !opt.Unoptimized {
		if err := s.UseOptimized(m.Module); err != nil {
			return nil, err
		}
	}
	xs := make([]certify.Input, opt.Images)
	for i := range xs {
		xs[i] = certify.Input(i)
	}
	params := certify.CertifyParams{N0: opt.N0, N: opt.N, Alpha: 0.001, Sigma: max(opt.Sigma, 1e-12), TargetRadius: opt.TargetRadius}
	// One warm-up image, so the first forward pass's setup is not timed.
	if _, err := certify.CertifyMany(ctx, s, xs[:1], certify.CertifyParams{N0: 1, N: opt.Batch, Alpha: 0.001, Sigma: params.Sigma}); err != nil {
		return nil, err
	}
	group := smoothing.CertifyGroup(opt.Batch, opt.N0, opt.TargetRadius.Adaptive())
	start := time.Now()
	samples := 0 // estimation samples drawn, fewer than N each when adaptive
	for i := 0; i < len(xs); i += group {
		res, err := certify.CertifyMany(ctx, s, xs[i:min(i+group, len(xs))], params)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			samples += r.Samples
		}
	}
	name := fmt.Sprintf("smoothadv (%s, %d workers, packed", m.Device(), workers)
	if opt.TargetRadius.Adaptive() {
		name += ", adaptive at " + opt.TargetRadius.String()
	}
	reduced := opt.Infer.Precision != torchbind.FP32 && opt.Infer.Precision != ""
	switch {
	case !opt.Unoptimized && reduced:
		name += ", frozen" // see Sampler.UseOptimized
	case !opt.Unoptimized:
		name += ", optimized"
	}
	if reduced {
		name += ", " + string(opt.Infer.Precision)
	}
	if opt.Infer.ChannelsLast {
		name += ", channels-last"
	}
	name += ")"
	out := []Result{result(name, opt.Images, opt.N0+samples/opt.Images, time.Since(start).Seconds())}
	if opt.Python != "" {
		// Equal threads: the reference's one process gets as many as our
		// workers use together (Debian's torch would otherwise run one).
		ref, err := reference(ctx, opt, workers*torchbind.NumThreads())
		if err != nil {
			return out, err
		}
		out = append(out, ref)
	}
	return out, nil
}

func reference(ctx context.Context, opt Options, threads int) (Result, error) {
	var r struct {
		Seconds float64 `json:"seconds"`
		Threads int     `json:"threads"`
		Torch   string  `json:"torch"`
		Device  string  `json:"device"`
	}
	err := runReference(ctx, "reference loop", opt.Python, "reference_sampling.py", &r, "--model", opt.Model,
		"--images", strconv.Itoa(opt.Images), "--n0", strconv.Itoa(opt.N0), "--n", strconv.Itoa(opt.N),
		"--batch", strconv.Itoa(opt.Batch), "--sigma", strconv.FormatFloat(opt.Sigma, 'g', -1, 64),
		"--device", opt.Device, "--threads", strconv.Itoa(threads))
	if err != nil {
		return Result{}, err
	}
	name := fmt.Sprintf("python reference (torch %s, %s, %d thread(s))", r.Torch, r.Device, r.Threads)
	return result(name, opt.Images, opt.N0+opt.N, r.Seconds), nil
}

// runReference runs one of this package's Python scripts with python and
// decodes the JSON it prints into out; what names the run in errors.
func runReference(ctx context.Context, what, python, script string, out any, args ...string) error {
	path, err := referenceScript(script)
	if err != nil {
		return err
	}
	b, err := exec.CommandContext(ctx, python, append([]string{path}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return fmt.Errorf("%s: %v\n%s", what, err, ee.Stderr)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s printed %q: %w", what, b, err)
	}
	return nil
}

// loadModel loads a model that records its architecture: bench takes no
// --arch (the reference's side loads the same file by itself).
func loadModel(path, device string) (*models.Model, error) {
	m, err := models.Load(path, models.Options{Device: device})
	if errors.Is(err, models.ErrNoArch) {
		return nil, fmt.Errorf("bench: %s does not record its architecture, and bench takes none: give a model that does "+
			"(one trained or exported here, or a reference checkpoint made into one with smoothadv import CHECKPOINT --arch ARCH --out MODEL.pt)", path)
	}
	return m, err
}

// referenceScript finds one of this package's Python scripts in the source
// tree that exported the models: the first folder above the models folder
// (build/models, or build/torch-2.11.0/models for a second build) that holds
// smoothadv/bench/name.
func referenceScript(name string) (string, error) {
	start, err := filepath.Abs(models.TemplatesDir())
	if err != nil {
		return "", err
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		script := filepath.Join(dir, "smoothadv", "bench", name)
		if _, err := os.Stat(script); err == nil {
			return script, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("%s not found in a source tree above the models folder %s (SMOOTHADV_MODELS)", name, start)
		}
	}
}
