// Package torchbind is the Go side of our C-ABI shim over libtorch: tensors
// with explicit lifetimes, TorchScript modules, autograd helpers and seeded
// generators. Every libtorch exception comes back as a Go error from the call
// that raised it.
//
// Tensors made by operations belong to a Scope, which frees them all on
// Close; Keep moves a tensor out of its scope for callers that need it longer
// (then Close it yourself). Go's garbage collector cannot see libtorch (or GPU)
// memory, so hot loops must not rely on finalizers, which exist only as a
// safety net.
package torchbind

// #cgo CFLAGS: -I${SRCDIR}/csrc
// #cgo LDFLAGS: -L${SRCDIR}/../build/lib -Wl,-rpath,${SRCDIR}/../build/lib -ltorchbind
// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/wangkuiyi/gotorch"
)

// DType is a tensor element type.
type DType int

// Element types, with the codes of torchbind.h.
const (
	Float32 DType = C.TB_FLOAT32
	Float64 DType = C.TB_FLOAT64
	Int64   DType = C.TB_INT64
	Uint8   DType = C.TB_UINT8
	Bool    DType = C.TB_BOOL
	Int32   DType = C.TB_INT32
)

var dtypeNames = map[DType]string{Float32: "float32", Float64: "float64", Int64: "int64", Uint8: "uint8", Bool: "bool", Int32: "int32"}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// size is the number of bytes of one element.
func (d DType) size() int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	}
	return 1
}

// Error is a libtorch failure, reported by the shim function op.
type Error struct {
	Op  string
	Msg string
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// check turns a shim status into a Go error and frees the message.
func check(op string, status C.tb_error) error {
	if status == nil {
		return nil
	}
	msg := C.GoString(status)
	C.tb_free_string(status)
	return &Error{Op: op, Msg: msg}
}

// CUDAAvailable reports whether libtorch sees a usable CUDA device.
func CUDAAvailable() bool { return gotorch.IsCUDAAvailable() }

// CUDADeviceCount is the number of CUDA devices libtorch sees.
func CUDADeviceCount() (int, error) {
	var n C.int
	if err := check("cuda_device_count", C.tb_cuda_device_count(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

// SetNumThreads sets libtorch's intra-op thread count.
func SetNumThreads(n int) error {
	return check("set_num_threads", C.tb_set_num_threads(C.int(n)))
}

// OnThreads runs fn with n intra-op threads on the calling goroutine's OS
// thread only, to which it is locked meanwhile, and then restores that
// thread's count: concurrent workers each get their share of the cores
// while other goroutines keep the process's setting. OpenMP threads that
// wait on a busy core stall their whole team, so on a shared machine
// several one-thread workers lose far less than one many-thread pass.
func OnThreads(n int, fn func()) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("set_thread_threads", C.tb_set_thread_threads(C.int(n))); err != nil {
		return err
	}
	defer C.tb_set_thread_threads(0)
	fn()
	return nil
}

// NumThreads is libtorch's intra-op thread count.
func NumThreads() int { return int(C.tb_get_num_threads()) }

// Allocator names the malloc that serves libtorch's CPU tensors: "tcmalloc"
// when cmd/smoothadv's build linked it in (BENCHMARKS.md: glibc's malloc
// maps and unmaps every large activation), else "glibc" or the library's file.
func Allocator() string {
	lib := C.GoString(C.tb_malloc_library())
	switch {
	case strings.Contains(lib, "tcmalloc"):
		return "tcmalloc"
	case strings.Contains(lib, "libc.so"):
		return "glibc"
	case lib == "":
		return "unknown"
	}
	return lib
}

// UseCores sets libtorch's intra-op threads so that concurrent forward or
// backward passes, each with that many threads, together use the cores
// without oversubscribing them: max(1, cores / concurrent). A pip or conda
// libtorch would otherwise give every pass all the cores.
func UseCores(concurrent int) error {
	return SetNumThreads(max(1, runtime.NumCPU()/max(concurrent, 1)))
}

// Version is the libtorch version the shim was compiled against.
func Version() string { return C.GoString(C.tb_torch_version()) }

// cShape converts a Go shape for C; the slice must stay alive during the call.
func cShape(shape []int64) (*C.int64_t, C.int, error) {
	if len(shape) > C.TB_MAX_DIMS {
		return nil, 0, fmt.Errorf("torch: %d dimensions, at most %d supported", len(shape), C.TB_MAX_DIMS)
	}
	if len(shape) == 0 {
		return nil, 0, nil
	}
	return (*C.int64_t)(&shape[0]), C.int(len(shape)), nil
}

// Runtime describes the libtorch this process runs over, for `smoothadv
// version`, bench reports and bug reports.
type Runtime struct {
	Torch         string   // libtorch version the shim was compiled against
	CUDA          string   // CUDA runtime version libtorch was built with, "" without CUDA
	CuDNN         string   // cuDNN version, "" without it
	DistBackends  []string // c10d backends compiled into the shim
	Allocator     string   // the malloc serving CPU tensors
	CPUCapability string   // ATen's vector kernels: default, avx2, avx512
}

// RuntimeInfo reads Runtime off the loaded libraries.
func RuntimeInfo() (Runtime, error) {
	r := Runtime{
		Torch:         Version(),
		DistBackends:  DistBackends(),
		Allocator:     Allocator(),
		CPUCapability: C.GoString(C.tb_cpu_capability()),
	}
	var cudart, cudnn C.long
	if err := check("cuda_versions", C.tb_cuda_versions(&cudart, &cudnn)); err != nil {
		return r, err
	}
	if cudart > 0 {
		r.CUDA = fmt.Sprintf("%d.%d", cudart/1000, cudart%1000/10)
	}
	if cudnn > 0 {
		r.CuDNN = fmt.Sprintf("%d.%d.%d", cudnn/10000, cudnn%10000/100, cudnn%100)
	}
	return r, nil
}
