package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"strings"
)

// Precision is the arithmetic a forward pass runs in: float32, or autocast
// to bfloat16 or float16 (matrix products and convolutions in the reduced
// type, reductions and the logits in float32).
type Precision string

const (
	FP32 Precision = "fp32"
	BF16 Precision = "bf16"
	FP16 Precision = "fp16" // CUDA only: libtorch's CPU autocast casts to bfloat16 only
)

// Precisions lists the precisions, for help and error messages.
const Precisions = "fp32, bf16 or fp16"

// ParsePrecision reads a precision as users write it; "" is fp32.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(strings.ToLower(s)); p {
	case "":
		return FP32, nil
	case FP32, BF16, FP16:
		return p, nil
	}
	return "", fmt.Errorf("unknown precision %q (want %s)", s, Precisions)
}

// CheckDevice refuses a precision that device cannot run (fp16 on a CPU).
// device is a resolved name, as ResolveDevice returns it.
func (p Precision) CheckDevice(device string) error {
	if _, err := ParsePrecision(string(p)); err != nil {
		return err
	}
	if p == FP16 && !strings.HasPrefix(device, "cuda") {
		return fmt.Errorf("precision fp16 needs a CUDA device, not %s: libtorch's CPU autocast computes in bf16 only (use --precision bf16)", device)
	}
	return nil
}

func (p Precision) code() (C.int, error) {
	switch p {
	case FP32, "":
		return C.TB_PRECISION_FP32, nil
	case BF16:
		return C.TB_PRECISION_BF16, nil
	case FP16:
		return C.TB_PRECISION_FP16, nil
	}
	return 0, fmt.Errorf("unknown precision %q (want %s)", string(p), Precisions)
}

// InferOptions say how InferWith runs a forward pass.
type InferOptions struct {
	Precision Precision
	// ChannelsLast passes the input in channels-last (NHWC) memory format,
	// which convolutions then keep; the values are the same.
	ChannelsLast bool
}

// Default reports whether o asks for a plain float32 forward pass.
func (o InferOptions) Default() bool {
	return (o.Precision == FP32 || o.Precision == "") && !o.ChannelsLast
}

// InferWith runs the module on x without recording any graph, in o's
// precision and memory format; the logits are float32.
func (m *Module) InferWith(s *Scope, x *Tensor, o InferOptions) *Tensor {
	hs, ok := s.handles("forward", x)
	if !ok {
		return s.failed()
	}
	h, err := m.handle("forward")
	if err == nil {
		var code C.int
		if code, err = o.Precision.code(); err == nil {
			var out C.tb_tensor
			return s.result("forward", C.tb_module_infer_as(h, hs[0], code, boolInt(o.ChannelsLast), &out), out)
		}
	}
	s.Fail(err)
	return s.failed()
}

// Frozen returns a frozen eval-mode copy of the module (BatchNorm folded
// into convolutions, attributes inlined) without OptimizedForInference's
// conversion to MKLDNN on a CPU, whose prepacked convolutions autocast does
// not reach: the fast model for reduced precision. Close it separately.
func (m *Module) Frozen() (*Module, error) { return m.freeze(false) }

// FrozenForAttack is Frozen for attacks, with m's channels-last setting.
// It runs in TorchScript's simple executor, which skips the profiling runs
// and graph optimisation that a fresh copy pays for on its first calls
// (training makes a fresh copy for every attack, of a few passes) and that
// make its passes no faster (BENCHMARKS.md).
func (m *Module) FrozenForAttack() (*Module, error) {
	f, err := m.freeze(true)
	if err == nil {
		f.channelsLast = m.channelsLast
	}
	return f, err
}

// ForAttack is m as an attack sees it: in eval mode, its weights fixed.
// frozen asks for FrozenForAttack's copy of the current weights (BatchNorm
// folded into the convolutions: the same function up to float rounding, in
// about 0.75x the time per pass, BENCHMARKS.md); otherwise it is m itself,
// switched to eval mode with its parameters' gradients off, as the
// reference attacks. done frees the copy or puts m back as it was.
func (m *Module) ForAttack(frozen bool) (attacked *Module, done func() error, err error) {
	if frozen {
		f, err := m.FrozenForAttack()
		if err != nil {
			return nil, nil, fmt.Errorf("freeze the model for the attack (--frozen-attack=false, or frozen_attack: false in YAML, attacks the model itself): %w", err)
		}
		return f, func() error { f.Close(); return nil }, nil
	}
	training, err := m.IsTraining()
	if err != nil {
		return nil, nil, err
	}
	if err := m.Train(false); err != nil {
		return nil, nil, err
	}
	if err := m.SetRequiresGrad(false); err != nil {
		return nil, nil, err
	}
	return m, func() error {
		if err := m.Train(training); err != nil {
			return err
		}
		return m.SetRequiresGrad(true)
	}, nil
}

func (m *Module) freeze(simple bool) (*Module, error) {
	return m.derive("freeze", func(h C.tb_module, out *C.tb_module) C.tb_error {
		return C.tb_module_freeze(h, boolInt(simple), out)
	})
}
