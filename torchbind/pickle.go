package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Checkpoint is what SaveCheckpoint writes: the reference's checkpoint.pth.tar
// dict {'epoch', 'arch', 'state_dict', 'optimizer'}, plus entries recording
// the input layer and noise level, which the reference leaves unsaid.
type Checkpoint struct {
	Epoch int
	Arch  string
	// StateDict is written in this order under these names.
	StateDict []Named
	// SGD, when not nil, is written as torch.optim.SGD's state_dict.
	SGD           *SGDState
	Normalization string
	NoiseSD       float64
	Means, SDs    []float64
}

// SGDState is torch.optim.SGD's state with one param group, as the reference
// trains: its hyperparameters and the momentum buffers.
type SGDState struct {
	LR, Momentum, Dampening, WeightDecay float64
	Nesterov                             bool
	// MomentumBuffers has one entry per parameter, in the model's parameter
	// order; nil where SGD has no buffer yet (before the first step).
	MomentumBuffers []*Tensor
}

// Close closes the momentum buffers; safe to call twice.
func (o *SGDState) Close() {
	if o == nil {
		return
	}
	for _, b := range o.MomentumBuffers {
		b.Close()
	}
}

// SaveCheckpoint writes c to path in torch.save's zip format, which Python's
// torch.load reads on any machine: tensors on a GPU are copied to the CPU.
// It writes path directly; write to a temporary name and rename for an
// atomic replacement.
func SaveCheckpoint(path string, c *Checkpoint) error {
	if len(c.Means) != len(c.SDs) {
		return fmt.Errorf("save checkpoint %s: %d means but %d standard deviations", path, len(c.Means), len(c.SDs))
	}
	// The name strings are C memory; the slices holding them and the tensor
	// handles hold no Go pointers, so C may read them in place.
	names := make([]*C.char, len(c.StateDict))
	defer func() {
		for _, p := range names {
			C.free(unsafe.Pointer(p))
		}
	}()
	tensors := make([]C.tb_tensor, len(c.StateDict))
	for i, e := range c.StateDict {
		h, err := e.T.handle("checkpoint_save")
		if err != nil {
			return fmt.Errorf("save checkpoint %s: %s: %w", path, e.Name, err)
		}
		names[i], tensors[i] = C.CString(e.Name), h
	}
	var sgd *C.tb_sgd_group
	var momentum []C.tb_tensor
	if o := c.SGD; o != nil {
		sgd = &C.tb_sgd_group{lr: C.double(o.LR), momentum: C.double(o.Momentum), dampening: C.double(o.Dampening),
			weight_decay: C.double(o.WeightDecay), nesterov: boolInt(o.Nesterov)}
		momentum = make([]C.tb_tensor, len(o.MomentumBuffers))
		for i, b := range o.MomentumBuffers {
			if b == nil {
				continue
			}
			h, err := b.handle("checkpoint_save")
			if err != nil {
				return fmt.Errorf("save checkpoint %s: momentum buffer %d: %w", path, i, err)
			}
			momentum[i] = h
		}
	}
	cpath, carch, cnorm := C.CString(path), C.CString(c.Arch), C.CString(c.Normalization)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(carch))
	defer C.free(unsafe.Pointer(cnorm))
	status := C.tb_checkpoint_save(cpath, C.int64_t(c.Epoch), carch,
		first(names), first(tensors), C.int(len(tensors)),
		sgd, first(momentum), C.int(len(momentum)),
		cnorm, C.double(c.NoiseSD),
		(*C.double)(first(c.Means)), (*C.double)(first(c.SDs)), C.int(len(c.Means)))
	runtime.KeepAlive(names)
	runtime.KeepAlive(tensors)
	runtime.KeepAlive(momentum)
	runtime.KeepAlive(c)
	if err := check("checkpoint_save", status); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	return nil
}

// first is a pointer to s's first element, or nil for an empty s.
func first[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}
