package torchbind

// #include "torchbind.h"
import "C"

// ToFloat64 converts a to float64, for running sums that must not round
// (a itself when it is float64 already).
func (s *Scope) ToFloat64(a *Tensor) *Tensor {
	hs, ok := s.handles("to_float64", a)
	if !ok {
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("to_float64", C.tb_to_dtype(hs[0], C.int(Float64), &out), out)
}
