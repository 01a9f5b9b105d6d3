package attack

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/smoothadv/smoothadv/torchbind"
)

// PiecesFor is how many pieces of a batch to attack at once on device
// (Config.Workers) in each of processes that share the node's cores: on
// the CPU one per core, each on one thread (BENCHMARKS.md: one-thread
// passes side by side outrun one pass over both cores, by far on a busy
// machine); a GPU takes the batch whole.
func PiecesFor(device string, processes int) int {
	if device == "cpu" {
		return max(1, runtime.NumCPU()/max(processes, 1))
	}
	return 1
}

// split runs the attack on pieces of the batch at once, each a run of
// whole images on its own OS thread with its share of the cores, and joins
// their perturbations [images, size]. An image's attack never looks at
// another image (the model is in eval mode, and every step's ascent
// direction is normalised per image), so the pieces compute what one pass
// over the batch would, up to float rounding.
func (c Config) split(model Classifier, b *batch, dirs *directions, pieces int) (*torchbind.Tensor, error) {
	threads := max(1, runtime.NumCPU()/pieces)
	deltas := make([]*torchbind.Tensor, pieces)
	errs := make([]error, pieces)
	var wg sync.WaitGroup
	for k := range pieces {
		lo := b.images * int64(k) / int64(pieces)
		hi := b.images * int64(k+1) / int64(pieces)
		part, err := b.piece(lo, hi-lo)
		if err != nil {
			errs[k] = err
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer part.close()
			err := torchbind.OnThreads(threads, func() { deltas[k], errs[k] = c.run(model, part, dirs.from(lo)) })
			if err != nil {
				errs[k] = err
			}
		}()
	}
	wg.Wait()
	defer closeAll(deltas)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := b.scope
	out := s.Cat(0, deltas...)
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s.Keep(out), nil
}

// piece is the batch's images lo .. lo+n-1, with a scope of its own.
func (b *batch) piece(lo, n int64) (*batch, error) {
	p := *b
	p.scope = torchbind.NewScope()
	p.images = n
	p.shape = append([]int64{n * b.m}, b.shape[1:]...)
	s := p.scope
	p.tiled = s.Narrow(b.tiled, 0, lo, n)
	p.clean = s.Narrow(b.clean, 0, lo, n)
	p.labels = s.Narrow(b.labels, 0, lo, n)
	if b.noise != nil {
		p.noise = s.Narrow(b.noise, 0, lo, n)
	}
	p.tiledLabels = nil
	if err := s.Err(); err != nil {
		p.close()
		return nil, fmt.Errorf("images %d to %d: %w", lo, lo+n-1, err)
	}
	return &p, nil
}

// directions are the standard normal rows that replace a zero gradient
// (unitRows). Step i's rows for the whole batch are drawn from the
// generator once, by the first piece to need them, and every piece takes
// its own: the draws, and so the attack's result, do not depend on how the
// batch is split, and are those of the unsplit attack.
type directions struct {
	mu     sync.Mutex
	g      *torchbind.Generator
	shape  []int64 // [images, size]
	device string
	pieces int
	steps  map[int]*drawn
}

type drawn struct {
	rows *torchbind.Tensor
	left int // pieces yet to take their rows
}

func newDirections(g *torchbind.Generator, b *batch, pieces int) (*directions, error) {
	device, err := b.clean.Device()
	if err != nil {
		return nil, err
	}
	return &directions{g: g, shape: b.clean.Shape(), device: device, pieces: pieces, steps: map[int]*drawn{}}, nil
}

// rowsFrom is one piece's view of the directions: its rows start at lo.
type rowsFrom struct {
	d  *directions
	lo int64
}

func (d *directions) from(lo int64) rowsFrom { return rowsFrom{d, lo} }

// rows are step's n rows from the piece's first, owned by s.
func (r rowsFrom) rows(s *torchbind.Scope, step int, n int64) *torchbind.Tensor {
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	dr := d.steps[step]
	if dr == nil {
		draw := torchbind.NewScope()
		all := draw.Randn(d.g, 1, d.device, d.shape...)
		if err := draw.Err(); err != nil {
			s.Fail(err)
			return nil
		}
		dr = &drawn{rows: draw.Keep(all), left: d.pieces}
		d.steps[step] = dr
	}
	out := s.Narrow(dr.rows, 0, r.lo, n) // a view: it keeps the storage alive
	if dr.left--; dr.left == 0 {
		dr.rows.Close()
		delete(d.steps, step)
	}
	return out
}

// close frees rows no piece came for (after an error).
func (d *directions) close() {
	for _, dr := range d.steps {
		dr.rows.Close()
	}
}
