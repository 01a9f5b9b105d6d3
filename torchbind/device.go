package torchbind

// #include "torchbind.h"
import "C"

import (
	"fmt"

	"github.com/smoothadv/smoothadv/internal/devicename"
)

// cudaBuilt reports whether the shim was compiled against a libtorch with
// CUDA; CUDAAvailable alone cannot tell that from a machine without a GPU.
func cudaBuilt() bool { return C.tb_cuda_built() != 0 }

// ResolveDevice turns a device name as users write it into one libtorch
// takes, after checking that libtorch can run there: "auto" is cuda:0 when
// libtorch sees a GPU and cpu otherwise, "cuda" is cuda:0. A GPU that this
// libtorch cannot use is refused in plain words rather than with libtorch's
// dispatcher text at the first tensor.
func ResolveDevice(name string) (string, error) {
	kind, index, err := devicename.Parse(name)
	if err != nil {
		return "", err
	}
	switch kind {
	case devicename.Auto:
		if CUDAAvailable() {
			return "cuda:0", nil
		}
		return "cpu", nil
	case devicename.CPU:
		return "cpu", nil
	}
	index = max(index, 0)
	if !cudaBuilt() {
		return "", fmt.Errorf("this libtorch has no CUDA support: device %s (use cpu, or build the shims against a CUDA libtorch: see README)", name)
	}
	n, err := CUDADeviceCount()
	if err != nil {
		return "", fmt.Errorf("device %s: %w", name, err)
	}
	if index >= n {
		return "", fmt.Errorf("no GPU %d: libtorch sees %d GPU(s) (device %s)", index, n, name)
	}
	return fmt.Sprintf("cuda:%d", index), nil
}
