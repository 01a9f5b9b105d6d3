package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/wangkuiyi/gotorch"
)

// Tensor is a handle to a libtorch tensor. Close frees the handle (the
// storage goes when no other handle or module refers to it); it is safe to
// call twice. A tensor that a failed Scope operation returned holds no
// handle and reports that failure from every method.
type Tensor struct {
	h   C.tb_tensor
	err error // why a failed operation made no tensor
}

func newTensor(h C.tb_tensor) *Tensor {
	t := &Tensor{h: h}
	runtime.SetFinalizer(t, (*Tensor).Close)
	return t
}

// Close frees the handle.
func (t *Tensor) Close() {
	if t == nil || t.h == nil {
		return
	}
	C.tb_tensor_free(t.h)
	t.h = nil
	runtime.SetFinalizer(t, nil)
}

func (t *Tensor) handle(op string) (C.tb_tensor, error) {
	if t != nil && t.err != nil {
		return nil, t.err
	}
	if t == nil || t.h == nil {
		return nil, fmt.Errorf("torch: %s: nil or closed tensor", op)
	}
	return t.h, nil
}

// Info returns the tensor's shape and element type.
func (t *Tensor) Info() ([]int64, DType, error) {
	h, err := t.handle("info")
	if err != nil {
		return nil, 0, err
	}
	var dims [C.TB_MAX_DIMS]C.int64_t
	var ndim, dtype C.int
	if err := check("info", C.tb_tensor_info(h, &dims[0], &ndim, &dtype)); err != nil {
		return nil, 0, err
	}
	shape := make([]int64, int(ndim))
	for i := range shape {
		shape[i] = int64(dims[i])
	}
	return shape, DType(dtype), nil
}

// Shape is the tensor's shape, or nil for a closed tensor.
func (t *Tensor) Shape() []int64 {
	shape, _, err := t.Info()
	if err != nil {
		return nil
	}
	return shape
}

// Device names the tensor's device, e.g. "cpu" or "cuda:0".
func (t *Tensor) Device() (string, error) {
	h, err := t.handle("device")
	if err != nil {
		return "", err
	}
	var buf [64]C.char
	if err := check("device", C.tb_tensor_device(h, &buf[0], C.int(len(buf)))); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() (float64, error) {
	h, err := t.handle("item")
	if err != nil {
		return 0, err
	}
	var v C.double
	if err := check("item", C.tb_tensor_item(h, &v)); err != nil {
		return 0, err
	}
	return float64(v), nil
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// copyOut copies the tensor to dst, which must hold exactly its elements in
// the tensor's dtype.
func (t *Tensor) copyOut(want DType, dst unsafe.Pointer, n int) error {
	h, err := t.handle("to_host")
	if err != nil {
		return err
	}
	shape, dt, err := t.Info()
	if err != nil {
		return err
	}
	if dt != want {
		return fmt.Errorf("torch: tensor is %v, not %v", dt, want)
	}
	if int64(n) != numel(shape) {
		return fmt.Errorf("torch: tensor has %d elements, buffer %d", numel(shape), n)
	}
	if n == 0 {
		return nil
	}
	return check("to_host", C.tb_tensor_to_host(h, dst, C.int64_t(n*want.size())))
}

// Float32s copies a float32 tensor to host memory, row-major.
func (t *Tensor) Float32s() ([]float32, error) {
	out := make([]float32, numel(t.Shape()))
	if len(out) == 0 {
		return out, t.copyOut(Float32, nil, 0)
	}
	return out, t.copyOut(Float32, unsafe.Pointer(&out[0]), len(out))
}

// Int64s copies an int64 tensor to host memory, row-major.
func (t *Tensor) Int64s() ([]int64, error) {
	out := make([]int64, numel(t.Shape()))
	if len(out) == 0 {
		return out, t.copyOut(Int64, nil, 0)
	}
	return out, t.copyOut(Int64, unsafe.Pointer(&out[0]), len(out))
}

// SetRequiresGrad sets whether autograd tracks the tensor and returns the
// previous setting.
func (t *Tensor) SetRequiresGrad(on bool) (bool, error) {
	h, err := t.handle("requires_grad")
	if err != nil {
		return false, err
	}
	var was C.int
	if err := check("requires_grad", C.tb_tensor_requires_grad(h, boolInt(on), &was)); err != nil {
		return false, err
	}
	return was != 0, nil
}

// ZeroGrad drops the tensor's accumulated gradient.
func (t *Tensor) ZeroGrad() error {
	h, err := t.handle("zero_grad")
	if err != nil {
		return err
	}
	return check("zero_grad", C.tb_tensor_zero_grad(h))
}

// Backward accumulates the gradient of this scalar into the leaves' grads.
func (t *Tensor) Backward() error {
	h, err := t.handle("backward")
	if err != nil {
		return err
	}
	return check("backward", C.tb_tensor_backward(h))
}

// AddInPlace does t += alpha * b without recording autograd history (for
// parameter and optimizer-state updates).
func (t *Tensor) AddInPlace(b *Tensor, alpha float64) error {
	h, err := t.handle("add_")
	if err != nil {
		return err
	}
	hb, err := b.handle("add_")
	if err != nil {
		return err
	}
	return check("add_", C.tb_add_(h, hb, C.double(alpha)))
}

// MulInPlace does t *= s without recording autograd history.
func (t *Tensor) MulInPlace(s float64) error {
	h, err := t.handle("mul_")
	if err != nil {
		return err
	}
	return check("mul_", C.tb_mul_scalar_(h, C.double(s)))
}

// CopyFrom overwrites t with b (same shape; dtype and device converted)
// without recording autograd history.
func (t *Tensor) CopyFrom(b *Tensor) error {
	h, err := t.handle("copy_")
	if err != nil {
		return err
	}
	hb, err := b.handle("copy_")
	if err != nil {
		return err
	}
	return check("copy_", C.tb_copy_(h, hb))
}

// The shim and gotorch share one libtorch, so their tensors pass between
// them without a copy: gotorchAlias and fromGotorch, kept out of our API
// (no caller needs gotorch's types yet) and proved by TestGotorchInterop.

// gotorchAlias returns a gotorch tensor sharing t's storage. It has its own
// handle, freed by gotorch's finalizer.
func (t *Tensor) gotorchAlias() (gotorch.Tensor, error) {
	h, err := t.handle("alias")
	if err != nil {
		return gotorch.Tensor{}, err
	}
	var a C.tb_tensor
	if err := check("alias", C.tb_tensor_alias(h, &a)); err != nil {
		return gotorch.Tensor{}, err
	}
	p := unsafe.Pointer(a)
	gotorch.SetTensorFinalizer(&p)
	return gotorch.Tensor{T: &p}, nil
}

// fromGotorch returns a handle sharing a gotorch tensor's storage.
func fromGotorch(g gotorch.Tensor) (*Tensor, error) {
	if g.T == nil || *g.T == nil {
		return nil, fmt.Errorf("torch: nil gotorch tensor")
	}
	var a C.tb_tensor
	if err := check("alias", C.tb_tensor_alias(C.tb_tensor(*g.T), &a)); err != nil {
		return nil, err
	}
	runtime.KeepAlive(g.T)
	return newTensor(a), nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
