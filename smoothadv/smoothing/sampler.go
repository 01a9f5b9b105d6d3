// Package smoothing is the libtorch side of randomized smoothing: it counts a
// base classifier's predictions under Gaussian noise for CERTIFY and PREDICT
// (package certify), on the model's device.
package smoothing

import (
	"context"
	"fmt"
	"sync"

	"github.com/smoothadv/smoothadv/certify"
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
// On a CPU, Workers goroutines run batches at once (libtorch here runs one
// thread per forward pass); batch i goes to worker i mod Workers, each with
// its own generator seeded Seed + worker, so results depend only on the seed,
// the batch size and the number of workers.
type Sampler struct {
	Model      Classifier
	Device     string
	Sigma      float64
	Batch      int
	NumClasses int
	Shape      []int64 // C, H, W of one input
	Seed       uint64
	Workers    int
	// Image returns input x's pixels, C*H*W values in [0, 1].
	Image func(x certify.Input) ([]float32, error)

	once    sync.Once
	gens    []*torchbind.Generator
	err     error
	release []func()
}

// UseOptimized makes the sampler classify with a frozen copy of m
// optimised for inference (2-4x faster on a CPU, BENCHMARKS.md), which the
// sampler closes. m itself stays usable for attacks and training.
func (s *Sampler) UseOptimized(m *torchbind.Module) error {
	fast, err := m.OptimizedForInference()
	if err != nil {
		return fmt.Errorf("optimize model for inference: %w", err)
	}
	s.Model = fast
	s.release = append(s.release, fast.Close)
	return nil
}

// Close frees the generators and what the sampler owns.
func (s *Sampler) Close() {
	for _, g := range s.gens {
		g.Close()
	}
	s.gens = nil
	for _, f := range s.release {
		f()
	}
	s.release = nil
}

func (s *Sampler) init() error {
	s.once.Do(func() {
		switch {
		case s.Batch < 1:
			s.err = fmt.Errorf("batch size must be at least 1, got %d", s.Batch)
		case !(s.Sigma >= 0):
			s.err = fmt.Errorf("sigma must be non-negative, got %v", s.Sigma)
		case s.NumClasses < 1:
			s.err = fmt.Errorf("number of classes must be at least 1, got %d", s.NumClasses)
		case len(s.Shape) != 3:
			s.err = fmt.Errorf("input shape must be C, H, W, got %v", s.Shape)
		}
		if s.err != nil {
			return
		}
		workers := max(s.Workers, 1)
		for w := 0; w < workers; w++ {
			g, err := torchbind.NewGenerator(s.Device, s.Seed+uint64(w))
			if err != nil {
				s.err = err
				return
			}
			s.gens = append(s.gens, g)
		}
	})
	return s.err
}

// SampleCounts counts num noisy predictions at x.
func (s *Sampler) SampleCounts(ctx context.Context, x certify.Input, num int) ([]int64, error) {
	c, err := s.SampleCountsMany(ctx, []certify.Input{x}, []int{num})
	if err != nil {
		return nil, err
	}
	return c[0], nil
}

// piece is part of a batch: take samples of input idx.
type piece struct {
	idx  int
	take int64
}

// plan splits the samples of all inputs into batches of at most size,
// filling each batch before starting the next.
func plan(nums []int, size int) [][]piece {
	var batches [][]piece
	var cur []piece
	room := size
	for i, n := range nums {
		for n > 0 {
			take := min(n, room)
			cur = append(cur, piece{idx: i, take: int64(take)})
			n -= take
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

// SampleCountsMany counts nums[i] noisy predictions at xs[i] for every i.
func (s *Sampler) SampleCountsMany(ctx context.Context, xs []certify.Input, nums []int) ([][]int64, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	if len(xs) != len(nums) {
		return nil, fmt.Errorf("%d inputs but %d sample counts", len(xs), len(nums))
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
	batches := plan(nums, s.Batch)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(s.gens))
	for w := range s.gens {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := w; b < len(batches); b += len(s.gens) {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				c, err := s.countBatch(images, batches[b], s.gens[w])
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

// countBatch classifies one batch of noisy copies and returns its counts,
// row-major [len(pieces), NumClasses].
func (s *Sampler) countBatch(images *torchbind.Tensor, pieces []piece, g *torchbind.Generator) ([]int64, error) {
	sc := torchbind.NewScope()
	defer sc.Close()
	idx := make([]int64, len(pieces))
	takes := make([]int64, len(pieces))
	for i, p := range pieces {
		idx[i], takes[i] = int64(p.idx), p.take
	}
	x := sc.RepeatInterleave(sc.IndexSelect(images, 0, sc.FromInt64(idx, s.Device, int64(len(idx)))), takes)
	noisy := sc.Add(x, sc.RandnLike(x, s.Sigma, g))
	pred := sc.Argmax(s.Model.Infer(sc, noisy), 1)
	counts := sc.GroupCounts(pred, takes, s.NumClasses)
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sampling batch: %w", err)
	}
	return counts.Int64s()
}
