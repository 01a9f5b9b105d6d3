package torchbind

// #include "torchbind.h"
import "C"

import (
	"fmt"
	"runtime"
)

// Copies says how many noisy copies of one image a batch takes.
type Copies struct {
	Image int64 // row of the images tensor
	Count int64
}

// NoiseSegment is part of a batch's noise: rows [Start, Start+Count) of the
// block of chunk rows that the device's generator seeded with Seed draws.
type NoiseSegment struct {
	Seed         uint64
	Start, Count int64
}

// NoisyCopies returns the batch whose rows are the images of pieces (each
// repeated Count times, in order) plus N(0, std^2) noise made of segs, in
// order, each cut from a block of chunk rows drawn whole. Because a block
// depends only on its seed, a row's noise does not depend on how the rows
// were split into batches.
func (s *Scope) NoisyCopies(images *Tensor, pieces []Copies, segs []NoiseSegment, chunk int64, std float64) *Tensor {
	hs, ok := s.handles("noisy_copies", images)
	if !ok {
		return s.failed()
	}
	if len(pieces) == 0 || len(segs) == 0 {
		s.Fail(fmt.Errorf("torch: noisy_copies: empty batch"))
		return s.failed()
	}
	idx := make([]int64, len(pieces))
	takes := make([]int64, len(pieces))
	for i, p := range pieces {
		idx[i], takes[i] = p.Image, p.Count
	}
	seeds := make([]uint64, len(segs))
	starts := make([]int64, len(segs))
	counts := make([]int64, len(segs))
	for i, g := range segs {
		seeds[i], starts[i], counts[i] = g.Seed, g.Start, g.Count
	}
	var out C.tb_tensor
	status := C.tb_noisy_copies(hs[0], (*C.int64_t)(&idx[0]), (*C.int64_t)(&takes[0]), C.int(len(pieces)),
		(*C.uint64_t)(&seeds[0]), (*C.int64_t)(&starts[0]), (*C.int64_t)(&counts[0]), C.int(len(segs)),
		C.int64_t(chunk), C.double(std), &out)
	runtime.KeepAlive(idx)
	runtime.KeepAlive(takes)
	runtime.KeepAlive(seeds)
	runtime.KeepAlive(starts)
	runtime.KeepAlive(counts)
	return s.result("noisy_copies", status, out)
}

// FirstNonfiniteRow returns the first row (along dimension 0) of t that holds
// a NaN or an infinity, or -1 when every value is finite.
func (t *Tensor) FirstNonfiniteRow() (int64, error) {
	h, err := t.handle("first_nonfinite_row")
	if err != nil {
		return 0, err
	}
	var row C.int64_t
	if err := check("first_nonfinite_row", C.tb_first_nonfinite_row(h, &row)); err != nil {
		return 0, err
	}
	runtime.KeepAlive(t)
	return int64(row), nil
}
