package torchbind

// #include "torchbind.h"
import "C"

// Operations of the training methods after SmoothAdv (MACER, consistency
// regularisation, SmoothMix).

// Erfinv is the inverse error function, element-wise.
func (s *Scope) Erfinv(a *Tensor) *Tensor {
	hs, ok := s.handles("erfinv", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("erfinv", C.tb_erfinv(hs[0], &out), out)
}

// XLogY is a * log(b), 0 where a is 0, as torch.xlogy: the terms of a
// KL divergence or an entropy, with 0 log 0 = 0.
func (s *Scope) XLogY(a, b *Tensor) *Tensor {
	hs, ok := s.handles("xlogy", a, b)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("xlogy", C.tb_xlogy(hs[0], hs[1], &out), out)
}

// LeScalar is a <= v, element-wise: false for NaN.
func (s *Scope) LeScalar(a *Tensor, v float64) *Tensor {
	hs, ok := s.handles("le", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("le", C.tb_le_scalar(hs[0], C.double(v), &out), out)
}

// TopK returns the k largest values of a along dim, largest first, and
// their indices (int64).
func (s *Scope) TopK(a *Tensor, k int, dim int) (values, indices *Tensor) {
	hs, ok := s.handles("topk", a)
	if !ok {
		return nil, nil
	}
	var v, i C.tb_tensor
	if err := check("topk", C.tb_topk(hs[0], C.int64_t(k), C.int64_t(dim), &v, &i)); err != nil {
		s.Fail(err)
		return nil, nil
	}
	return s.Own(newTensor(v)), s.Own(newTensor(i))
}

// MaskRows is the rows of a (along dim 0) where the 1-D bool mask is
// true, as a[mask] in torch. The result's length depends on the mask's
// values, so the call waits for the device.
func (s *Scope) MaskRows(a, mask *Tensor) *Tensor {
	hs, ok := s.handles("mask_rows", a, mask)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("mask_rows", C.tb_mask_rows(hs[0], hs[1], &out), out)
}

// SumDim sums a along dim, keeping it (as size 1) when keep is set.
func (s *Scope) SumDim(a *Tensor, dim int, keep bool) *Tensor {
	return s.reduce("sum", C.TB_SUM, a, dim, keep)
}
