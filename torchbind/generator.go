package torchbind

// #include <stdlib.h>
// #include "torchbind.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// Generator is a seeded random-number generator that draws on its device
// (the GPU's own generator for cuda devices), so noise never crosses the bus.
// Not safe for concurrent use.
type Generator struct {
	h C.tb_generator
}

// NewGenerator returns a generator for device seeded with seed.
func NewGenerator(device string, seed uint64) (*Generator, error) {
	dev := C.CString(device)
	defer C.free(unsafe.Pointer(dev))
	var h C.tb_generator
	if err := check("generator", C.tb_generator_new(dev, C.uint64_t(seed), &h)); err != nil {
		return nil, err
	}
	g := &Generator{h: h}
	runtime.SetFinalizer(g, (*Generator).Close)
	return g, nil
}

// Close frees the generator; safe to call twice.
func (g *Generator) Close() {
	if g == nil || g.h == nil {
		return
	}
	C.tb_generator_free(g.h)
	g.h = nil
	runtime.SetFinalizer(g, nil)
}
