// Package devicename is the one rule for device names as users write them
// ("auto", "cpu", "cuda", "cuda:N"), in pure Go, so that settings can be
// checked where libtorch is not linked (a dry run, a config file's checks).
// Whether this machine has the device is torchbind.ResolveDevice's question.
package devicename

import (
	"fmt"
	"strconv"
	"strings"
)

// Kinds of device.
const (
	Auto = "auto" // a GPU when libtorch sees one, else the CPU
	CPU  = "cpu"
	CUDA = "cuda"
)

// forms lists the names users may write, for error messages.
const forms = "auto, cpu, cuda or cuda:N"

// Check checks the form of a device name.
func Check(name string) error {
	_, _, err := Parse(name)
	return err
}

// Parse splits a device name into its kind (Auto, CPU or CUDA) and a GPU
// index, -1 when the name gives none.
func Parse(name string) (kind string, index int, err error) {
	kind, idx, hasIndex := strings.Cut(name, ":")
	switch {
	case kind == Auto || kind == CPU:
		if hasIndex {
			return "", 0, fmt.Errorf("device %q: %s takes no index (want %s)", name, kind, forms)
		}
		return kind, -1, nil
	case kind == CUDA && !hasIndex:
		return kind, -1, nil
	case kind == CUDA:
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || idx != strconv.Itoa(i) {
			return "", 0, fmt.Errorf("device %q: GPU index %q is not a number 0, 1, ... (want %s)", name, idx, forms)
		}
		return kind, i, nil
	}
	return "", 0, fmt.Errorf("unknown device %q (want %s)", name, forms)
}
