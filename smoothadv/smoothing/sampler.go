// Package smoothing is the libtorch side of randomized smoothing: it counts a
// base classifier's predictions under Gaussian noise for CERTIFY and PREDICT
// (package certify), on the model's device.
package smoothing

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/noiselevel"
	"github.com/smoothadv/smoothadv/torchbind"
)

// NoiseScheme names how the sampler draws noise; it is recorded beside each
// log, so that a resumed run never mixes lines drawn under two schemes.
const NoiseScheme = "per-example-v1"

// Classifier is the base classifier: logits for a batch, without autograd.
type Classifier interface {
	Infer(s *torchbind.Scope, x *torchbind.Tensor) *torchbind.Tensor
}

// Sampler counts a classifier's argmax under N(0, Sigma^2) noise. It packs
// the samples of several inputs into each batch, so that small N (or N0)
// still fills the device, draws the noise on the device, and counts there,
// copying one [inputs, classes] count matrix to the host per batch.
//
// Every (input, stage) has its own noise stream (see streamSeed), so an
// example's counts depend only on the seed, its dataset index, the stage and
// the number of samples: not on the batch size, the group of examples
// sampled beside it, the number of workers, the shard or a resume point.
// On a CPU, Workers goroutines run batches at once (libtorch here runs one
// thread per forward pass).
type Sampler struct {
	Model      Classifier
	Name       string // the model, as errors name it
	Device     string
	Sigma      float64
	Batch      int
	NumClasses int
	Shape      []int64 // C, H, W of one input
	Seed       uint64
	Workers    int
	// Infer is the precision and memory format of the forward passes
	// (the zero value: float32, contiguous). Reduced precision changes the
	// base classifier, so certificates hold for that classifier. Other
	// than the default, Model must be a *torchbind.Module (or embed one).
	Infer torchbind.InferOptions
	// Image returns input x's pixels, C*H*W values in [0, 1].
	Image func(x certify.Input) ([]float32, error)

	release []func()
}

// Workers is how many batches a sampler on device runs at once: requested,
// or by default one per CPU core on a CPU (each pass on one thread beats
// one pass on all of them there) and 1 on a GPU. It sets libtorch's
// intra-op threads so that the workers together never use more threads
// than there are cores.
func Workers(requested int, device string) (int, error) {
	workers := requested
	if workers <= 0 {
		workers = 1
		if device == "cpu" {
			workers = runtime.NumCPU()
		}
	}
	return workers, torchbind.UseCores(workers)
}

// UseOptimized makes the sampler classify with a frozen copy of m
// optimised for inference (2-4x faster on a CPU, BENCHMARKS.md), which the
// sampler closes. m itself stays usable for attacks and training. Under
// reduced precision the copy is only frozen: the MKLDNN convolutions of
// the optimised copy would run in float32 whatever autocast says.
func (s *Sampler) UseOptimized(m *torchbind.Module) error {
	optimize := m.OptimizedForInference
	if s.Infer.Precision != torchbind.FP32 && s.Infer.Precision != "" {
		optimize = m.Frozen
	}
	fast, err := optimize()
	if err != nil {
		return fmt.Errorf("optimize model for inference: %w", err)
	}
	s.Model = fast
	s.release = append(s.release, fast.Close)
	return nil
}

// Close frees what the sampler owns.
func (s *Sampler) Close() {
	for _, f := range s.release {
		f()
	}
	s.release = nil
}

func (s *Sampler) validate() error {
	if err := noiselevel.Check(s.Sigma); err != nil {
		return fmt.Errorf("sigma %w", err)
	}
	switch {
	case s.Batch < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", s.Batch)
	case s.NumClasses < 1:
		return fmt.Errorf("number of classes must be at least 1, got %d", s.NumClasses)
	case len(s.Shape) != 3:
		return fmt.Errorf("input shape must be C, H, W, got %v", s.Shape)
	}
	if err := s.Infer.Precision.CheckDevice(s.Device); err != nil {
		return err
	}
	if _, ok := s.Model.(inferrer); !ok && !s.Infer.Default() {
		return fmt.Errorf("model %s: precision %s and channels-last need a TorchScript module", s.name(), s.Infer.Precision)
	}
	return nil
}

// inferrer is a classifier that runs in a chosen precision and memory
// format (torchbind.Module).
type inferrer interface {
	InferWith(s *torchbind.Scope, x *torchbind.Tensor, o torchbind.InferOptions) *torchbind.Tensor
}

// infer is the model's logits on x, in the sampler's precision and memory
// format.
func (s *Sampler) infer(sc *torchbind.Scope, x *torchbind.Tensor) *torchbind.Tensor {
	if s.Infer.Default() {
		return s.Model.Infer(sc, x)
	}
	return s.Model.(inferrer).InferWith(sc, x, s.Infer) // validate checked the type
}

// SampleCounts counts the first num noisy predictions of stream (x, stage).
func (s *Sampler) SampleCounts(ctx context.Context, x certify.Input, stage certify.Stage, num int) ([]int64, error) {
	c, err := s.SampleCountsMany(ctx, []certify.Input{x}, stage, []int{num})
	if err != nil {
		return nil, err
	}
	return c[0], nil
}

// piece is part of a batch: samples [from, from+take) of input idx's stream.
type piece struct {
	idx        int
	from, take int64
}

// plan splits samples [from, from+nums[i]) of every input i into batches
// of at most size, filling each batch before starting the next.
func plan(from int, nums []int, size int) [][]piece {
	var batches [][]piece
	var cur []piece
	room := size
	for i, n := range nums {
		for at := from; at < from+n; {
			take := min(from+n-at, room)
			cur = append(cur, piece{idx: i, from: int64(at), take: int64(take)})
			at += take
			room -= take
			if room == 0 {
				batches = append(batches, cur)
				cur, room = nil, size
			}
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// SampleCountsMany counts the first nums[i] noisy predictions of stream
// (xs[i], stage) for every i.
func (s *Sampler) SampleCountsMany(ctx context.Context, xs []certify.Input, stage certify.Stage, nums []int) ([][]int64, error) {
	return s.count(ctx, xs, stage, 0, nums)
}

// SampleCountsRange counts noisy predictions [from, from+num) of stream
// (xs[i], stage) for every i: what adaptive CERTIFY draws at a look.
func (s *Sampler) SampleCountsRange(ctx context.Context, xs []certify.Input, stage certify.Stage, from, num int) ([][]int64, error) {
	nums := make([]int, len(xs))
	for i := range nums {
		nums[i] = num
	}
	return s.count(ctx, xs, stage, from, nums)
}

// count counts noisy predictions [from, from+nums[i]) of stream (xs[i],
// stage) for every i, packing the samples of all inputs into full batches.
func (s *Sampler) count(ctx context.Context, xs []certify.Input, stage certify.Stage, from int, nums []int) ([][]int64, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if len(xs) != len(nums) {
		return nil, fmt.Errorf("%d inputs but %d sample counts", len(xs), len(nums))
	}
	if from < 0 {
		return nil, fmt.Errorf("samples from %d: want a start >= 0", from)
	}
	images, err := s.upload(xs)
	if err != nil {
		return nil, err
	}
	defer images.Close()

	counts := make([][]int64, len(xs))
	for i := range counts {
		counts[i] = make([]int64, s.NumClasses)
	}
	batches := plan(from, nums, s.Batch)
	workers := max(s.Workers, 1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := w; b < len(batches); b += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				c, err := s.countBatch(images, xs, stage, batches[b])
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				for j, p := range batches[b] {
					for k := range counts[p.idx] {
						counts[p.idx][k] += c[j*s.NumClasses+k]
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return counts, nil
}

// upload copies the inputs' images to the device once, as [len(xs), C, H, W].
func (s *Sampler) upload(xs []certify.Input) (*torchbind.Tensor, error) {
	per := int(s.Shape[0] * s.Shape[1] * s.Shape[2])
	host := make([]float32, 0, per*len(xs))
	for _, x := range xs {
		img, err := s.Image(x)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", x, err)
		}
		if len(img) != per {
			return nil, fmt.Errorf("input %d: %d values, want %d for shape %v", x, len(img), per, s.Shape)
		}
		host = append(host, img...)
	}
	sc := torchbind.NewScope()
	t := sc.FromFloat32(host, s.Device, int64(len(xs)), s.Shape[0], s.Shape[1], s.Shape[2])
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sc.Keep(t), nil
}

// noiseChunk is how many samples of a stream one seeded generator draws.
// Part of the noise scheme: changing it changes every draw (and so
// NoiseScheme).
const noiseChunk = 100

// streamSeed seeds chunk k of the stream (x, stage) under the run's seed.
// CPU generators (mt19937) take 32-bit seeds, so the seed is 32 bits: a
// hash of (seed, x) plus an offset for the stage and the chunk. Within one
// example every (stage, chunk) thus gets a distinct seed (for up to 2^30
// chunks), which keeps its selection and estimation samples independent;
// two examples may share a stream, which the per-example guarantee does not
// mind.
func streamSeed(seed uint64, x certify.Input, stage certify.Stage, chunk int64) uint64 {
	h := mix64(mix64(seed) ^ uint64(x))
	return (h + uint64(stage)<<30 + uint64(chunk)) & 0xffffffff
}

// mix64 is SplitMix64's finaliser: every input bit flips about half the
// output bits.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// segments lists the noise of a batch's pieces, chunk by chunk.
func (s *Sampler) segments(xs []certify.Input, stage certify.Stage, pieces []piece) []torchbind.NoiseSegment {
	var segs []torchbind.NoiseSegment
	for _, p := range pieces {
		for r := p.from; r < p.from+p.take; {
			k, start := r/noiseChunk, r%noiseChunk
			n := min(noiseChunk-start, p.from+p.take-r)
			segs = append(segs, torchbind.NoiseSegment{Seed: streamSeed(s.Seed, xs[p.idx], stage, k), Start: start, Count: n})
			r += n
		}
	}
	return segs
}

// Noise returns the first num draws of stream (x, stage) for each x, as
// [len(xs)*num, C, H, W] on the device, the draws of xs[0] first.
func (s *Sampler) Noise(sc *torchbind.Scope, xs []certify.Input, stage certify.Stage, num int) *torchbind.Tensor {
	pieces := make([]piece, len(xs))
	copies := make([]torchbind.Copies, len(xs))
	for i := range xs {
		pieces[i] = piece{idx: i, take: int64(num)}
		copies[i] = torchbind.Copies{Image: 0, Count: int64(num)}
	}
	zero := sc.Zeros(torchbind.Float32, s.Device, append([]int64{1}, s.Shape...)...)
	return sc.NoisyCopies(zero, copies, s.segments(xs, stage, pieces), noiseChunk, s.Sigma)
}

// countBatch classifies one batch of noisy copies and returns its counts,
// row-major [len(pieces), NumClasses].
func (s *Sampler) countBatch(images *torchbind.Tensor, xs []certify.Input, stage certify.Stage, pieces []piece) ([]int64, error) {
	sc := torchbind.NewScope()
	defer sc.Close()
	copies := make([]torchbind.Copies, len(pieces))
	takes := make([]int64, len(pieces))
	for i, p := range pieces {
		copies[i] = torchbind.Copies{Image: int64(p.idx), Count: p.take}
		takes[i] = p.take
	}
	noisy := sc.NoisyCopies(images, copies, s.segments(xs, stage, pieces), noiseChunk, s.Sigma)
	logits := s.infer(sc, noisy)
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sampling batch: %w", err)
	}
	if err := s.checkShape(logits, takes); err != nil {
		return nil, err
	}
	if err := s.checkFinite(logits, xs, pieces); err != nil {
		return nil, err
	}
	counts := sc.GroupCounts(sc.Argmax(logits, 1), takes, s.NumClasses)
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sampling batch: %w", err)
	}
	return counts.Int64s()
}

// checkShape refuses logits that are not one row of NumClasses per noisy
// copy, in every batch: a model may answer the load-time check with the
// right classes and later batches with others.
func (s *Sampler) checkShape(logits *torchbind.Tensor, takes []int64) error {
	var rows int64
	for _, n := range takes {
		rows += n
	}
	shape, _, err := logits.Info()
	if err != nil {
		return err
	}
	if len(shape) != 2 || shape[0] != rows || shape[1] != int64(s.NumClasses) {
		return fmt.Errorf("model %s gives logits shaped %v for a batch of %d noisy copies, want [%d %d]: its output changes with the batch",
			s.name(), shape, rows, rows, s.NumClasses)
	}
	return nil
}

// checkFinite refuses NaN or infinite logits: their argmax is meaningless,
// and counting it would certify whatever class index 0 is.
func (s *Sampler) checkFinite(logits *torchbind.Tensor, xs []certify.Input, pieces []piece) error {
	row, err := logits.FirstNonfiniteRow()
	if err != nil || row < 0 {
		return err
	}
	for _, p := range pieces {
		if row < p.take {
			return fmt.Errorf("model %s gives NaN or infinite logits on a noisy copy of example %d (check the weights and the input layer)", s.name(), xs[p.idx])
		}
		row -= p.take
	}
	return fmt.Errorf("model %s gives NaN or infinite logits", s.name())
}

func (s *Sampler) name() string {
	if s.Name == "" {
		return "(unnamed)"
	}
	return s.Name
}
