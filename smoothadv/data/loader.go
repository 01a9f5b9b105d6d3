package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Options configures a Loader.
type Options struct {
	BatchSize int
	// Shuffle visits the examples in a fresh order every epoch, drawn from Seed and the epoch
	// number; otherwise in index order.
	Shuffle bool
	// Seed fixes the order and the augmentation. Example i of epoch e is augmented from a random
	// source seeded by (Seed, e, i) alone, so the batches do not depend on Workers.
	Seed uint64
	// DropLast leaves out a last batch smaller than BatchSize.
	DropLast bool
	// Workers is the number of goroutines that decode batches; 0 means one per CPU.
	Workers int
	// Prefetch is how many batches may be decoded ahead of the consumer; 0 means two per worker.
	Prefetch int
	// Shard, with a Count above one, keeps one process's share of every batch.
	Shard Shard
}

// Shard is process Index's share of every batch in data-parallel training over Count processes:
// each process draws the same order and takes its part of each batch of it.
type Shard struct {
	Index, Count int
	// Chunks > 0 cuts a batch into Chunks equal runs (as training cuts a batch for its noise
	// vectors) and each run into Count equal parts; the share is part Index of every run. What
	// does not divide is left out (only a short last batch has any), so every process gets as
	// many examples. Chunks == 0 keeps Range of the whole batch, leaving nothing out.
	Chunks int
}

// Range is part Index of n examples cut into Count parts whose sizes differ by at most one.
func (s Shard) Range(n int) (lo, hi int) { return s.Index * n / s.Count, (s.Index + 1) * n / s.Count }

// part is the share of a batch of examples idx.
func (s Shard) part(idx []int) []int {
	if s.Count <= 1 {
		return idx
	}
	if s.Chunks == 0 {
		lo, hi := s.Range(len(idx))
		return idx[lo:hi]
	}
	run := len(idx) / s.Chunks
	n := run / s.Count
	out := make([]int, 0, s.Chunks*n)
	for c := range s.Chunks {
		start := c*run + s.Index*n
		out = append(out, idx[start:start+n]...)
	}
	return out
}

// Loader cuts a Dataset into batches, decoding them in parallel ahead of the consumer.
type Loader struct {
	ds  Dataset
	opt Options
}

// Batch is a run of examples in NCHW order.
type Batch struct {
	Shape   Shape     // of one example
	Images  []float32 // Len() examples of Shape.Size() values
	Labels  []int64
	Indices []int // the dataset index of each example
}

// Len is the number of examples in the batch.
func (b *Batch) Len() int { return len(b.Labels) }

// NewLoader checks opt and fills in its defaults.
func NewLoader(ds Dataset, opt Options) (*Loader, error) {
	if opt.BatchSize <= 0 {
		return nil, fmt.Errorf("batch size %d, want > 0", opt.BatchSize)
	}
	if opt.Workers < 0 || opt.Prefetch < 0 {
		return nil, fmt.Errorf("workers %d and prefetch %d, want >= 0", opt.Workers, opt.Prefetch)
	}
	if sh := opt.Shard; sh.Count > 1 && (sh.Index < 0 || sh.Index >= sh.Count || sh.Chunks < 0) {
		return nil, fmt.Errorf("shard %d of %d in %d chunks, want 0 <= shard < count and chunks >= 0", sh.Index, sh.Count, sh.Chunks)
	}
	if opt.Workers == 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Prefetch == 0 {
		opt.Prefetch = 2 * opt.Workers
	}
	return &Loader{ds: ds, opt: opt}, nil
}

// Len is the number of batches in an epoch.
func (l *Loader) Len() int {
	n, bs := l.ds.Len(), l.opt.BatchSize
	if l.opt.DropLast {
		return n / bs
	}
	return (n + bs - 1) / bs
}

// Epoch is one pass over the dataset. Call Close when done with it, even after io.EOF.
type Epoch struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	free    chan *Batch // buffers the workers may fill
	done    chan filled // in completion order
	pending map[int]filled
	next    int // the batch Next returns next
	total   int
	held    *Batch // the batch the consumer holds
	err     error  // sticky: once Next fails it keeps failing
}

type filled struct {
	k   int
	b   *Batch
	err error
}

// errClosed is what Next returns after Close.
var errClosed = errors.New("data: epoch closed")

// Epoch starts decoding epoch number epoch (which seeds its order and augmentation) in the
// background. Cancelling ctx stops it.
func (l *Loader) Epoch(ctx context.Context, epoch int) *Epoch {
	ctx, cancel := context.WithCancel(ctx)
	// One buffer more than Prefetch, for the batch the consumer holds; batches in flight, done or
	// pending never outnumber the buffers, so neither channel can fill up.
	buffers := l.opt.Prefetch + 1
	e := &Epoch{
		ctx: ctx, cancel: cancel,
		free:    make(chan *Batch, buffers),
		done:    make(chan filled, buffers),
		pending: make(map[int]filled),
		total:   l.Len(),
	}
	size := l.ds.Shape().Size()
	for range buffers {
		e.free <- &Batch{
			Shape:   l.ds.Shape(),
			Images:  make([]float32, l.opt.BatchSize*size),
			Labels:  make([]int64, l.opt.BatchSize),
			Indices: make([]int, l.opt.BatchSize),
		}
	}
	order := l.order(epoch)
	jobs := make(chan filled)
	e.wg.Add(1 + l.opt.Workers)
	go func() { // hands out batch numbers in order, each with a free buffer
		defer e.wg.Done()
		defer close(jobs)
		for k := range e.total {
			select {
			case b := <-e.free:
				select {
				case jobs <- filled{k: k, b: b}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	for range l.opt.Workers {
		go func() {
			defer e.wg.Done()
			pcg := rand.NewPCG(0, 0)
			rng := rand.New(pcg)
			for j := range jobs {
				j.err = l.fill(ctx, j.b, j.k, order, epoch, pcg, rng)
				e.done <- j
			}
		}()
	}
	return e
}

// order is the sequence of dataset indices for an epoch.
func (l *Loader) order(epoch int) []int {
	n := l.ds.Len()
	if !l.opt.Shuffle {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order
	}
	return rand.New(rand.NewPCG(mix(l.opt.Seed), mix(uint64(epoch)^shuffleStream))).Perm(n)
}

// shuffleStream keeps the shuffling draws apart from the augmentation draws.
const shuffleStream = 0x53485546464c45

// mix is SplitMix64's finaliser: nearby inputs give unrelated seeds.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fill decodes batch k of the epoch into b, seeding rng (through pcg) for each example.
func (l *Loader) fill(ctx context.Context, b *Batch, k int, order []int, epoch int, pcg *rand.PCG, rng *rand.Rand) error {
	idx := l.opt.Shard.part(order[k*l.opt.BatchSize : min((k+1)*l.opt.BatchSize, len(order))])
	size := l.ds.Shape().Size()
	b.Images, b.Labels, b.Indices = b.Images[:len(idx)*size], b.Labels[:len(idx)], b.Indices[:len(idx)]
	for j, i := range idx {
		if err := ctx.Err(); err != nil {
			return err
		}
		pcg.Seed(mix(l.opt.Seed^mix(uint64(epoch))), mix(uint64(i)))
		label, err := l.ds.Read(i, rng, b.Images[j*size:(j+1)*size])
		if err != nil {
			return fmt.Errorf("example %d: %w", i, err)
		}
		b.Labels[j], b.Indices[j] = int64(label), i
	}
	return nil
}

// Next returns the next batch, or io.EOF after the last one. The batch stays valid until the next
// call to Next or Close, after which its buffers are reused.
func (e *Epoch) Next() (*Batch, error) {
	if e.held != nil {
		e.free <- e.held
		e.held = nil
	}
	if e.err != nil {
		return nil, e.err
	}
	if e.next == e.total {
		return nil, io.EOF
	}
	for {
		if f, ok := e.pending[e.next]; ok {
			delete(e.pending, e.next)
			if f.err != nil {
				e.err = fmt.Errorf("batch %d: %w", f.k, f.err)
				e.cancel()
				return nil, e.err
			}
			e.next++
			e.held = f.b
			return f.b, nil
		}
		select {
		case f := <-e.done:
			e.pending[f.k] = f
		case <-e.ctx.Done():
			e.err = e.ctx.Err()
			return nil, e.err
		}
	}
}

// Close stops the workers and waits for them. It is safe to call more than once.
func (e *Epoch) Close() {
	e.cancel()
	e.wg.Wait()
	if e.err == nil {
		e.err = errClosed
	}
	e.held = nil
}
