package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Scope owns the tensors its operations make and frees them on Close. Its
// error is sticky: after the first failure every operation does nothing and
// returns a failed tensor, whose every method (Item, Float32s, ...) and
// every scope it is handed to reports that first failure, as Err does; so a
// sequence of operations needs one check at the end. A Scope is not safe
// for concurrent use.
type Scope struct {
	owned []*Tensor
	err   error
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// Err is the first error of any operation in the scope.
func (s *Scope) Err() error { return s.err }

// Close frees every tensor the scope still owns. The scope stays usable.
func (s *Scope) Close() {
	for _, t := range s.owned {
		t.Close()
	}
	s.owned = s.owned[:0]
}

// Len is the number of tensors the scope owns (for tests and diagnostics).
func (s *Scope) Len() int { return len(s.owned) }

// failed is the tensor a failed operation returns: it holds no tensor, and
// reports the scope's first error.
func (s *Scope) failed() *Tensor { return &Tensor{err: s.err} }

// Keep takes t out of the scope: the caller now closes it.
func (s *Scope) Keep(t *Tensor) *Tensor {
	for i := len(s.owned) - 1; i >= 0; i-- {
		if s.owned[i] == t {
			s.owned = append(s.owned[:i], s.owned[i+1:]...)
			break
		}
	}
	return t
}

// Own puts a tensor made elsewhere under the scope, which will close it.
func (s *Scope) Own(t *Tensor) *Tensor {
	if t != nil {
		s.owned = append(s.owned, t)
	}
	return t
}

// Fail records err as the scope's error unless it already has one.
func (s *Scope) Fail(err error) {
	if s.err == nil && err != nil {
		s.err = err
	}
}

// handles returns the C handles of ts, or false (recording an error) when
// the scope has failed or any tensor is nil or closed.
func (s *Scope) handles(op string, ts ...*Tensor) ([]C.tb_tensor, bool) {
	if s.err != nil {
		return nil, false
	}
	hs := make([]C.tb_tensor, len(ts))
	for i, t := range ts {
		h, err := t.handle(op)
		if err != nil {
			s.err = err // a failed tensor's own error, or a nil or closed tensor
			return nil, false
		}
		hs[i] = h
	}
	return hs, true
}

// result records a shim call's outcome and wraps its new tensor.
func (s *Scope) result(op string, status C.tb_error, h C.tb_tensor) *Tensor {
	if err := check(op, status); err != nil {
		s.err = err
		return s.failed()
	}
	return s.Own(newTensor(h))
}

func (s *Scope) unary(op string, code C.int, a *Tensor) *Tensor {
	hs, ok := s.handles(op, a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result(op, C.tb_unary(code, hs[0], &out), out)
}

func (s *Scope) binary(op string, code C.int, a, b *Tensor) *Tensor {
	hs, ok := s.handles(op, a, b)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result(op, C.tb_binary(code, hs[0], hs[1], &out), out)
}

func (s *Scope) scalar(op string, code C.int, a *Tensor, v float64) *Tensor {
	hs, ok := s.handles(op, a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result(op, C.tb_scalar(code, hs[0], C.double(v), &out), out)
}

// allDims asks a reduction for every dimension.
const allDims = -1000

func (s *Scope) reduce(op string, code C.int, a *Tensor, dim int, keep bool) *Tensor {
	hs, ok := s.handles(op, a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result(op, C.tb_reduce(code, hs[0], C.int64_t(dim), boolInt(keep), &out), out)
}

// Element-wise functions.
func (s *Scope) Neg(a *Tensor) *Tensor  { return s.unary("neg", C.TB_NEG, a) }
func (s *Scope) Exp(a *Tensor) *Tensor  { return s.unary("exp", C.TB_EXP, a) }
func (s *Scope) Log(a *Tensor) *Tensor  { return s.unary("log", C.TB_LOG, a) }
func (s *Scope) Abs(a *Tensor) *Tensor  { return s.unary("abs", C.TB_ABS, a) }
func (s *Scope) Sqrt(a *Tensor) *Tensor { return s.unary("sqrt", C.TB_SQRT, a) }

// Round rounds half to even, as torch.round.
func (s *Scope) Round(a *Tensor) *Tensor { return s.unary("round", C.TB_ROUND, a) }

// Detach returns a tensor sharing a's storage but outside the autograd graph.
func (s *Scope) Detach(a *Tensor) *Tensor { return s.unary("detach", C.TB_DETACH, a) }
func (s *Scope) Clone(a *Tensor) *Tensor  { return s.unary("clone", C.TB_CLONE, a) }

func (s *Scope) ZerosLike(a *Tensor) *Tensor { return s.unary("zeros_like", C.TB_ZEROS_LIKE, a) }
func (s *Scope) OnesLike(a *Tensor) *Tensor  { return s.unary("ones_like", C.TB_ONES_LIKE, a) }

// ToFloat32 converts the element type.
func (s *Scope) ToFloat32(a *Tensor) *Tensor { return s.unary("to_float32", C.TB_TO_FLOAT32, a) }

// Broadcasting binary functions.
func (s *Scope) Add(a, b *Tensor) *Tensor     { return s.binary("add", C.TB_ADD, a, b) }
func (s *Scope) Sub(a, b *Tensor) *Tensor     { return s.binary("sub", C.TB_SUB, a, b) }
func (s *Scope) Mul(a, b *Tensor) *Tensor     { return s.binary("mul", C.TB_MUL, a, b) }
func (s *Scope) Div(a, b *Tensor) *Tensor     { return s.binary("div", C.TB_DIV, a, b) }
func (s *Scope) Eq(a, b *Tensor) *Tensor      { return s.binary("eq", C.TB_EQ, a, b) }
func (s *Scope) Ne(a, b *Tensor) *Tensor      { return s.binary("ne", C.TB_NE, a, b) }
func (s *Scope) Lt(a, b *Tensor) *Tensor      { return s.binary("lt", C.TB_LT, a, b) }
func (s *Scope) Maximum(a, b *Tensor) *Tensor { return s.binary("maximum", C.TB_MAXIMUM, a, b) }
func (s *Scope) Minimum(a, b *Tensor) *Tensor { return s.binary("minimum", C.TB_MINIMUM, a, b) }

// Functions of a tensor and a scalar.
func (s *Scope) AddScalar(a *Tensor, v float64) *Tensor {
	return s.scalar("add", C.TB_ADD_SCALAR, a, v)
}
func (s *Scope) MulScalar(a *Tensor, v float64) *Tensor {
	return s.scalar("mul", C.TB_MUL_SCALAR, a, v)
}
func (s *Scope) Pow(a *Tensor, v float64) *Tensor { return s.scalar("pow", C.TB_POW_SCALAR, a, v) }
func (s *Scope) ClampMin(a *Tensor, v float64) *Tensor {
	return s.scalar("clamp_min", C.TB_CLAMP_MIN, a, v)
}

// RSub is v - a.
func (s *Scope) RSub(v float64, a *Tensor) *Tensor { return s.scalar("rsub", C.TB_RSUB_SCALAR, a, v) }

// Clamp limits every value to [lo, hi].
func (s *Scope) Clamp(a *Tensor, lo, hi float64) *Tensor {
	hs, ok := s.handles("clamp", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("clamp", C.tb_clamp(hs[0], C.double(lo), C.double(hi), &out), out)
}

// Where picks a where cond is true and b elsewhere.
func (s *Scope) Where(cond, a, b *Tensor) *Tensor {
	hs, ok := s.handles("where", cond, a, b)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("where", C.tb_where(hs[0], hs[1], hs[2], &out), out)
}

// Reductions over all elements or along one dimension.
func (s *Scope) Sum(a *Tensor) *Tensor  { return s.reduce("sum", C.TB_SUM, a, allDims, false) }
func (s *Scope) Mean(a *Tensor) *Tensor { return s.reduce("mean", C.TB_MEAN, a, allDims, false) }
func (s *Scope) Max(a *Tensor) *Tensor  { return s.reduce("max", C.TB_MAX, a, allDims, false) }
func (s *Scope) MeanDim(a *Tensor, dim int, keep bool) *Tensor {
	return s.reduce("mean", C.TB_MEAN, a, dim, keep)
}
func (s *Scope) Argmax(a *Tensor, dim int) *Tensor {
	return s.reduce("argmax", C.TB_ARGMAX, a, dim, false)
}

// Mode is the most frequent value along dim (the smallest among ties).
func (s *Scope) Mode(a *Tensor, dim int) *Tensor { return s.reduce("mode", C.TB_MODE, a, dim, false) }
func (s *Scope) Softmax(a *Tensor, dim int) *Tensor {
	return s.reduce("softmax", C.TB_SOFTMAX, a, dim, false)
}
func (s *Scope) LogSoftmax(a *Tensor, dim int) *Tensor {
	return s.reduce("log_softmax", C.TB_LOG_SOFTMAX, a, dim, false)
}

// Reshape returns a tensor of the given shape (one entry may be -1).
func (s *Scope) Reshape(a *Tensor, shape ...int64) *Tensor {
	return s.shapeOp("reshape", a, shape, func(h C.tb_tensor, p *C.int64_t, n C.int, out *C.tb_tensor) C.tb_error {
		return C.tb_reshape(h, p, n, out)
	})
}

// Repeat tiles a, as torch's Tensor.repeat.
func (s *Scope) Repeat(a *Tensor, reps ...int64) *Tensor {
	return s.shapeOp("repeat", a, reps, func(h C.tb_tensor, p *C.int64_t, n C.int, out *C.tb_tensor) C.tb_error {
		return C.tb_repeat(h, p, n, out)
	})
}

func (s *Scope) shapeOp(op string, a *Tensor, shape []int64, f func(C.tb_tensor, *C.int64_t, C.int, *C.tb_tensor) C.tb_error) *Tensor {
	hs, ok := s.handles(op, a)
	if !ok {
		return s.failed()
	}
	p, n, err := cShape(shape)
	if err != nil {
		s.Fail(err)
		return s.failed()
	}
	var out C.tb_tensor
	status := f(hs[0], p, n, &out)
	runtime.KeepAlive(shape)
	return s.result(op, status, out)
}

// RepeatInterleave repeats slice i of a (along dim 0) repeats[i] times in a row.
func (s *Scope) RepeatInterleave(a *Tensor, repeats []int64) *Tensor {
	hs, ok := s.handles("repeat_interleave", a)
	if !ok {
		return s.failed()
	}
	if len(repeats) == 0 {
		s.Fail(fmt.Errorf("torch: repeat_interleave: no repeats"))
		return s.failed()
	}
	var out C.tb_tensor
	status := C.tb_repeat_interleave(hs[0], (*C.int64_t)(&repeats[0]), C.int(len(repeats)), &out)
	runtime.KeepAlive(repeats)
	return s.result("repeat_interleave", status, out)
}

// Cat concatenates tensors along dim.
func (s *Scope) Cat(dim int, ts ...*Tensor) *Tensor {
	hs, ok := s.handles("cat", ts...)
	if !ok {
		return s.failed()
	}
	if len(hs) == 0 {
		s.Fail(fmt.Errorf("torch: cat: no tensors"))
		return s.failed()
	}
	// The handle array is passed to C, so it must live in C memory.
	arr := (*[1 << 28]C.tb_tensor)(C.malloc(C.size_t(len(hs)) * C.size_t(unsafe.Sizeof(hs[0]))))[:len(hs):len(hs)]
	defer C.free(unsafe.Pointer(&arr[0]))
	copy(arr, hs)
	var out C.tb_tensor
	return s.result("cat", C.tb_cat(&arr[0], C.int(len(hs)), C.int64_t(dim), &out), out)
}

// Narrow returns a view of length elements of dim starting at start.
func (s *Scope) Narrow(a *Tensor, dim int, start, length int64) *Tensor {
	hs, ok := s.handles("narrow", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("narrow", C.tb_narrow(hs[0], C.int64_t(dim), C.int64_t(start), C.int64_t(length), &out), out)
}

// IndexSelect picks the entries of dim named by the int64 tensor index.
func (s *Scope) IndexSelect(a *Tensor, dim int, index *Tensor) *Tensor {
	hs, ok := s.handles("index_select", a, index)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("index_select", C.tb_index_select(hs[0], C.int64_t(dim), hs[1], &out), out)
}

// Reduction says how a loss combines its per-sample values.
type Reduction int

// Loss reductions.
const (
	ReduceNone Reduction = C.TB_REDUCE_NONE
	ReduceMean Reduction = C.TB_REDUCE_MEAN
	ReduceSum  Reduction = C.TB_REDUCE_SUM
)

// CrossEntropy of logits [B, K] against int64 labels [B].
func (s *Scope) CrossEntropy(logits, labels *Tensor, r Reduction) *Tensor {
	hs, ok := s.handles("cross_entropy", logits, labels)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("cross_entropy", C.tb_cross_entropy(hs[0], hs[1], C.int(r), &out), out)
}

// NLLLoss of log-probabilities [B, K] against int64 labels [B].
func (s *Scope) NLLLoss(logp, labels *Tensor, r Reduction) *Tensor {
	hs, ok := s.handles("nll_loss", logp, labels)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("nll_loss", C.tb_nll_loss(hs[0], hs[1], C.int(r), &out), out)
}

// L2Norms is the L2 norm of each sample (everything after dim 0): shape [B].
func (s *Scope) L2Norms(a *Tensor) *Tensor {
	hs, ok := s.handles("l2_norms", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("l2_norms", C.tb_l2_norms(hs[0], &out), out)
}

// Renorm scales every sample whose L2 norm exceeds maxNorm down to it, as
// torch.renorm(a, p=2, dim=0, maxnorm).
func (s *Scope) Renorm(a *Tensor, maxNorm float64) *Tensor {
	hs, ok := s.handles("renorm", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("renorm", C.tb_renorm(hs[0], C.double(maxNorm), &out), out)
}

// GroupCounts counts classes per group: labels is int64 [sum(sizes)], group g
// the next sizes[g] labels; the result is int64 [len(sizes), numClasses] on
// the labels' device, computed there.
func (s *Scope) GroupCounts(labels *Tensor, sizes []int64, numClasses int) *Tensor {
	hs, ok := s.handles("group_counts", labels)
	if !ok {
		return s.failed()
	}
	if len(sizes) == 0 {
		s.Fail(fmt.Errorf("torch: group_counts: no groups"))
		return s.failed()
	}
	var out C.tb_tensor
	status := C.tb_group_counts(hs[0], (*C.int64_t)(&sizes[0]), C.int(len(sizes)), C.int64_t(numClasses), &out)
	runtime.KeepAlive(sizes)
	return s.result("group_counts", status, out)
}

// Zeros makes a tensor of zeros on device.
func (s *Scope) Zeros(dtype DType, device string, shape ...int64) *Tensor {
	return s.create("zeros", device, shape, func(p *C.int64_t, n C.int, dev *C.char, out *C.tb_tensor) C.tb_error {
		return C.tb_zeros(p, n, C.int(dtype), dev, out)
	})
}

// Randn draws N(0, std^2) values of the given shape on device from g.
func (s *Scope) Randn(g *Generator, std float64, device string, shape ...int64) *Tensor {
	if s.err == nil && (g == nil || g.h == nil) {
		s.Fail(fmt.Errorf("torch: randn: closed generator"))
	}
	return s.create("randn", device, shape, func(p *C.int64_t, n C.int, dev *C.char, out *C.tb_tensor) C.tb_error {
		return C.tb_randn(p, n, C.double(std), g.h, dev, out)
	})
}

// Rand draws uniform [0, 1) values of the given shape on device from g.
func (s *Scope) Rand(g *Generator, device string, shape ...int64) *Tensor {
	if s.err == nil && (g == nil || g.h == nil) {
		s.Fail(fmt.Errorf("torch: rand: closed generator"))
	}
	return s.create("rand", device, shape, func(p *C.int64_t, n C.int, dev *C.char, out *C.tb_tensor) C.tb_error {
		return C.tb_rand(p, n, g.h, dev, out)
	})
}

func (s *Scope) create(op, device string, shape []int64, f func(*C.int64_t, C.int, *C.char, *C.tb_tensor) C.tb_error) *Tensor {
	if s.err != nil {
		return s.failed()
	}
	p, n, err := cShape(shape)
	if err != nil {
		s.Fail(err)
		return s.failed()
	}
	dev := C.CString(device)
	defer C.free(unsafe.Pointer(dev))
	var out C.tb_tensor
	status := f(p, n, dev, &out)
	runtime.KeepAlive(shape)
	return s.result(op, status, out)
}

// RandnLike draws N(0, std^2) values shaped like a, on a's device, from g.
func (s *Scope) RandnLike(a *Tensor, std float64, g *Generator) *Tensor {
	hs, ok := s.handles("randn_like", a)
	if !ok {
		return s.failed()
	}
	if g == nil || g.h == nil {
		s.Fail(fmt.Errorf("torch: randn_like: nil or closed generator"))
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("randn_like", C.tb_randn_like(hs[0], C.double(std), g.h, &out), out)
}

// FromFloat32 copies host data of the given shape onto device.
func (s *Scope) FromFloat32(data []float32, device string, shape ...int64) *Tensor {
	return s.fromHost("from_float32", Float32, unsafe.Pointer(unsafe.SliceData(data)), len(data), device, shape)
}

// FromInt64 copies host data of the given shape onto device.
func (s *Scope) FromInt64(data []int64, device string, shape ...int64) *Tensor {
	return s.fromHost("from_int64", Int64, unsafe.Pointer(unsafe.SliceData(data)), len(data), device, shape)
}

func (s *Scope) fromHost(op string, dt DType, data unsafe.Pointer, n int, device string, shape []int64) *Tensor {
	if s.err != nil {
		return s.failed()
	}
	if int64(n) != numel(shape) {
		s.Fail(fmt.Errorf("torch: %s: %d values for shape %v", op, n, shape))
		return s.failed()
	}
	return s.create(op, device, shape, func(p *C.int64_t, nd C.int, dev *C.char, out *C.tb_tensor) C.tb_error {
		return C.tb_tensor_from_host(data, p, nd, C.int(dt), dev, out)
	})
}

// Grad returns d(output)/d(input) for each input (zeros for inputs the
// output does not depend on). output must be a scalar; its graph is freed.
func (s *Scope) Grad(output *Tensor, inputs ...*Tensor) []*Tensor {
	hs, ok := s.handles("grad", append([]*Tensor{output}, inputs...)...)
	if !ok {
		return nil
	}
	n := len(inputs)
	buf := (*[1 << 28]C.tb_tensor)(C.malloc(C.size_t(2*n) * C.size_t(unsafe.Sizeof(hs[0]))))[: 2*n : 2*n]
	defer C.free(unsafe.Pointer(&buf[0]))
	copy(buf[:n], hs[1:])
	if err := check("grad", C.tb_grad(hs[0], &buf[0], C.int(n), &buf[n])); err != nil {
		s.Fail(err)
		return nil
	}
	grads := make([]*Tensor, n)
	for i := range grads {
		grads[i] = s.Own(newTensor(buf[n+i]))
	}
	return grads
}

// GradOf is the gradient accumulated in leaf t by Backward, or nil if none.
func (s *Scope) GradOf(t *Tensor) *Tensor {
	hs, ok := s.handles("grad_of", t)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	if err := check("grad_of", C.tb_tensor_grad(hs[0], &out)); err != nil {
		s.Fail(err)
		return s.failed()
	}
	if out == nil {
		return nil
	}
	return s.Own(newTensor(out))
}
