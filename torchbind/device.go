package torchbind

// #include "torchbind.h"
import "C"

import (
	"fmt"
	"strconv"
	"strings"
)

// deviceForms lists the device names users may write, for error messages.
const deviceForms = "auto, cpu, cuda or cuda:N"

// CheckDeviceName checks the form of a device name as users write it
// ("auto", "cpu", "cuda", "cuda:N") without asking whether this machine has
// that device, for settings read where they will not run (a dry run).
func CheckDeviceName(name string) error {
	_, _, err := parseDevice(name)
	return err
}

// parseDevice splits a device name into "auto", "cpu" or "cuda" and a GPU
// index (-1 for "cuda" without one).
func parseDevice(name string) (kind string, index int, err error) {
	kind, idx, hasIndex := strings.Cut(name, ":")
	switch {
	case kind == "auto" || kind == "cpu":
		if hasIndex {
			return "", 0, fmt.Errorf("device %q: %s takes no index (want %s)", name, kind, deviceForms)
		}
		return kind, -1, nil
	case kind == "cuda" && !hasIndex:
		return kind, -1, nil
	case kind == "cuda":
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || idx != strconv.Itoa(i) {
			return "", 0, fmt.Errorf("device %q: GPU index %q is not a number 0, 1, ... (want %s)", name, idx, deviceForms)
		}
		return kind, i, nil
	}
	return "", 0, fmt.Errorf("unknown device %q (want %s)", name, deviceForms)
}

// cudaBuilt reports whether the shim was compiled against a libtorch with
// CUDA; CUDAAvailable alone cannot tell that from a machine without a GPU.
func cudaBuilt() bool { return C.tb_cuda_built() != 0 }

// ResolveDevice turns a device name as users write it into one libtorch
// takes, after checking that libtorch can run there: "auto" is cuda:0 when
// libtorch sees a GPU and cpu otherwise, "cuda" is cuda:0. A GPU that this
// libtorch cannot use is refused in plain words rather than with libtorch's
// dispatcher text at the first tensor.
func ResolveDevice(name string) (string, error) {
	kind, index, err := parseDevice(name)
	if err != nil {
		return "", err
	}
	switch kind {
	case "auto":
		if CUDAAvailable() {
			return "cuda:0", nil
		}
		return "cpu", nil
	case "cpu":
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
