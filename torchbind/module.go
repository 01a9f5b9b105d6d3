package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"
)

// Module is a TorchScript module loaded through libtorch.
type Module struct {
	h      C.tb_module
	device string
	meta   []byte
	// channelsLast: forward passes give the module 4-d inputs in
	// channels-last memory format (SetChannelsLast).
	channelsLast bool
}

// LoadModule loads a TorchScript file straight onto device ("cpu",
// "cuda:0", ...). A missing, truncated or non-TorchScript file is an error.
func LoadModule(path, device string) (*Module, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	cpath, cdev := C.CString(path), C.CString(device)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cdev))
	var h C.tb_module
	var meta *C.char
	if err := check("load", C.tb_module_load(cpath, cdev, &h, &meta)); err != nil {
		// TorchScript's compiler explains a file it cannot compile with a
		// page of its serialized code; the first line says what it found.
		if first, _, multi := strings.Cut(err.Error(), "\n"); multi {
			return nil, fmt.Errorf("load TorchScript model %s: its code does not compile in libtorch %s (%s): a damaged file, or one saved by a newer PyTorch",
				path, Version(), strings.TrimSuffix(strings.TrimSpace(first), ":"))
		}
		return nil, fmt.Errorf("load TorchScript model %s: %w", path, err)
	}
	m := &Module{h: h, device: device}
	if meta != nil {
		m.meta = []byte(C.GoString(meta))
		C.tb_free_string(meta)
	}
	runtime.SetFinalizer(m, (*Module).Close)
	return m, nil
}

// Close frees the module; safe to call twice.
func (m *Module) Close() {
	if m == nil || m.h == nil {
		return
	}
	C.tb_module_free(m.h)
	m.h = nil
	runtime.SetFinalizer(m, nil)
}

func (m *Module) handle(op string) (C.tb_module, error) {
	if m == nil || m.h == nil {
		return nil, fmt.Errorf("torch: %s: nil or closed module", op)
	}
	return m.h, nil
}

// Meta is the JSON metadata stored in the file (extra/smoothadv.json), or
// nil when it has none.
func (m *Module) Meta() []byte { return m.meta }

// Device is the device the module's parameters are on.
func (m *Module) Device() string { return m.device }

// Save writes the module as TorchScript with meta (may be nil) as its
// metadata. Write to a temporary name and rename for atomic replacement.
func (m *Module) Save(path string, meta []byte) error {
	h, err := m.handle("save")
	if err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cmeta *C.char
	if meta != nil {
		cmeta = C.CString(string(meta))
		defer C.free(unsafe.Pointer(cmeta))
	}
	if err := check("save", C.tb_module_save(h, cpath, cmeta)); err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return nil
}

// Forward runs the module on x, recording the autograd graph.
func (m *Module) Forward(s *Scope, x *Tensor) *Tensor { return m.forward(s, x, true) }

// Infer runs the module on x without recording any graph.
func (m *Module) Infer(s *Scope, x *Tensor) *Tensor { return m.forward(s, x, false) }

func (m *Module) forward(s *Scope, x *Tensor, grad bool) *Tensor {
	hs, ok := s.handles("forward", x)
	if !ok {
		return s.failed()
	}
	h, err := m.handle("forward")
	if err != nil {
		s.Fail(err)
		return s.failed()
	}
	var out C.tb_tensor
	return s.result("forward", C.tb_module_forward(h, hs[0], boolInt(grad), boolInt(m.channelsLast), &out), out)
}

// SetChannelsLast makes Forward and Infer give the module its 4-d inputs in
// channels-last (NHWC) memory format: the same values, but convolutions and
// BatchNorm then run their NHWC kernels, and the format carries through the
// network (BENCHMARKS.md measures when this is faster).
func (m *Module) SetChannelsLast(on bool) { m.channelsLast = on }

// ChannelsLast reports SetChannelsLast's setting.
func (m *Module) ChannelsLast() bool { return m.channelsLast }

// Train switches the module (and its submodules) between training and
// evaluation mode (BatchNorm statistics, dropout).
func (m *Module) Train(on bool) error {
	h, err := m.handle("train")
	if err != nil {
		return err
	}
	return check("train", C.tb_module_train(h, boolInt(on)))
}

// IsTraining reports the module's mode.
func (m *Module) IsTraining() (bool, error) {
	h, err := m.handle("is_training")
	if err != nil {
		return false, err
	}
	var on C.int
	if err := check("is_training", C.tb_module_is_training(h, &on)); err != nil {
		return false, err
	}
	return on != 0, nil
}

// To moves the module's parameters and buffers to device.
func (m *Module) To(device string) error {
	h, err := m.handle("to")
	if err != nil {
		return err
	}
	cdev := C.CString(device)
	defer C.free(unsafe.Pointer(cdev))
	if err := check("to", C.tb_module_to(h, cdev)); err != nil {
		return err
	}
	m.device = device
	return nil
}

// ToFloat64 casts the module's parameters and buffers to float64, where
// tests check that two computations agree exactly rather than to float32's
// rounding.
func (m *Module) ToFloat64() error {
	h, err := m.handle("to_float64")
	if err != nil {
		return err
	}
	return check("to_float64", C.tb_module_to_dtype(h, C.TB_FLOAT64))
}

// OptimizedForInference returns a frozen copy of the module optimised for
// inference (torch.jit.optimize_for_inference): on a CPU about 2-4x faster
// forward passes for sampling. The copy runs only in eval mode, records no
// gradients and has no parameters; Close it separately.
func (m *Module) OptimizedForInference() (*Module, error) {
	return m.derive("optimize_for_inference", func(h C.tb_module, out *C.tb_module) C.tb_error {
		return C.tb_module_optimize_for_inference(h, out)
	})
}

// derive returns the new module that build makes from m's, on m's device
// with m's metadata.
func (m *Module) derive(op string, build func(C.tb_module, *C.tb_module) C.tb_error) (*Module, error) {
	h, err := m.handle(op)
	if err != nil {
		return nil, err
	}
	var out C.tb_module
	if err := check(op, build(h, &out)); err != nil {
		return nil, err
	}
	o := &Module{h: out, device: m.device, meta: m.meta}
	runtime.SetFinalizer(o, (*Module).Close)
	return o, nil
}

// Named is a module tensor with its dotted state_dict name. T shares the
// module's storage: in-place updates change the module.
type Named struct {
	Name string
	T    *Tensor
}

// CloseAll closes the handles of ns.
func CloseAll(ns []Named) {
	for _, n := range ns {
		n.T.Close()
	}
}

// Parameters returns the module's parameters in state_dict order. Close
// their handles when done (CloseAll).
func (m *Module) Parameters() ([]Named, error) { return m.named("parameters", 0) }

// Buffers returns the module's buffers (BatchNorm running statistics, ...).
func (m *Module) Buffers() ([]Named, error) { return m.named("buffers", 1) }

func (m *Module) named(op string, buffers C.int) ([]Named, error) {
	h, err := m.handle(op)
	if err != nil {
		return nil, err
	}
	var names **C.char
	var tensors *C.tb_tensor
	var n C.int
	if err := check(op, C.tb_module_named(h, buffers, &names, &tensors, &n)); err != nil {
		return nil, err
	}
	ns := unsafe.Slice(names, int(n))
	ts := unsafe.Slice(tensors, int(n))
	out := make([]Named, int(n))
	for i := range out {
		out[i] = Named{Name: C.GoString(ns[i]), T: newTensor(ts[i])}
		C.free(unsafe.Pointer(ns[i]))
	}
	C.free(unsafe.Pointer(names))
	C.free(unsafe.Pointer(tensors))
	return out, nil
}

// SetRequiresGrad turns gradient tracking of every parameter on or off
// (attacks freeze the model so only the input gets gradients).
func (m *Module) SetRequiresGrad(on bool) error {
	ps, err := m.Parameters()
	if err != nil {
		return err
	}
	defer CloseAll(ps)
	for _, p := range ps {
		if _, err := p.T.SetRequiresGrad(on); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

// SetAttr replaces the parameter or buffer at a dotted path with value,
// which may have a new shape (a new classifier head).
func (m *Module) SetAttr(path string, value *Tensor) error {
	h, err := m.handle("set_attr")
	if err != nil {
		return err
	}
	hv, err := value.handle("set_attr")
	if err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return check("set_attr "+path, C.tb_module_set_attr(h, cpath, hv))
}

// SetFloats replaces a List[float] attribute at a dotted path, such as the
// input layer's "0.sds".
func (m *Module) SetFloats(path string, values []float64) error {
	h, err := m.handle("set_floats")
	if err != nil {
		return err
	}
	if len(values) == 0 {
		return fmt.Errorf("torch: set_floats %s: no values", path)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	status := C.tb_module_set_floats(h, cpath, (*C.double)(&values[0]), C.int(len(values)))
	runtime.KeepAlive(values)
	return check("set_floats "+path, status)
}
