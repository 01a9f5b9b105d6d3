package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType names an element type the way torch prints it, without "torch.".
type DType string

// The element types torch's legacy storage classes can hold.
const (
	Float32  DType = "float32"
	Float64  DType = "float64"
	Float16  DType = "float16"
	BFloat16 DType = "bfloat16"
	Int64    DType = "int64"
	Int32    DType = "int32"
	Int16    DType = "int16"
	Int8     DType = "int8"
	Uint8    DType = "uint8"
	Bool     DType = "bool"
)

// Size is the number of bytes of one element, 0 for an unknown DType.
func (d DType) Size() int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	case Float16, BFloat16, Int16:
		return 2
	case Int8, Uint8, Bool:
		return 1
	}
	return 0
}

// Tensor is one tensor of a checkpoint, always contiguous.
type Tensor struct {
	DType DType
	Shape []int64
	// Data holds the elements in row-major order, little-endian, as torch
	// keeps them on every platform it writes checkpoints from. Tensors that
	// were contiguous views of one storage in Python share memory here too.
	Data []byte
}

// NumElements is the product of Shape (1 for a scalar).
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// Float32s returns a copy of the elements of a float32 tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	return elements(t, Float32, func(b []byte) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	})
}

// Float64s returns a copy of the elements of a float64 tensor.
func (t *Tensor) Float64s() ([]float64, error) {
	return elements(t, Float64, func(b []byte) float64 {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	})
}

// Int64s returns a copy of the elements of an int64 tensor, such as
// BatchNorm's num_batches_tracked.
func (t *Tensor) Int64s() ([]int64, error) {
	return elements(t, Int64, func(b []byte) int64 {
		return int64(binary.LittleEndian.Uint64(b))
	})
}

// elements decodes a tensor of dtype d, one element at a time.
func elements[T any](t *Tensor, d DType, decode func([]byte) T) ([]T, error) {
	if t.DType != d {
		return nil, fmt.Errorf("tensor is %s, not %s", t.DType, d)
	}
	es := d.Size()
	out := make([]T, len(t.Data)/es)
	for i := range out {
		out[i] = decode(t.Data[es*i:])
	}
	return out, nil
}

// view is a tensor as pickled: a window of shape, strides (in elements) and
// offset onto a storage whose bytes may not have been read yet.
type view struct {
	storage *storage
	offset  int64
	shape   []int64
	stride  []int64
	tensor  *Tensor // set once materialized
}

// numel counts the elements of a view, refusing views that have more
// elements than their storage (possible only when elements overlap, which
// state dicts never do) so that a crafted shape cannot exhaust memory.
func (v *view) numel() (int64, error) {
	n := int64(1)
	for _, s := range v.shape {
		if s < 0 {
			return 0, fmt.Errorf("negative size in shape %v", v.shape)
		}
		if s == 0 {
			return 0, nil
		}
		if n > v.storage.numel/s {
			return 0, fmt.Errorf("shape %v has more elements than its storage (%d)", v.shape, v.storage.numel)
		}
		n *= s
	}
	return n, nil
}

// checkBounds verifies that every element of the view lies in its storage.
func (v *view) checkBounds(numel int64) error {
	if len(v.stride) != len(v.shape) {
		return fmt.Errorf("shape %v and stride %v differ in length", v.shape, v.stride)
	}
	if v.offset < 0 {
		return fmt.Errorf("negative storage offset %d", v.offset)
	}
	if numel == 0 {
		return nil
	}
	last := v.offset
	for i, s := range v.stride {
		if s < 0 {
			return fmt.Errorf("negative stride in %v", v.stride)
		}
		steps := v.shape[i] - 1
		if steps > 0 && s > (v.storage.numel-last)/steps {
			return fmt.Errorf("view (offset %d, shape %v, stride %v) reaches past its storage of %d elements",
				v.offset, v.shape, v.stride, v.storage.numel)
		}
		last += steps * s
	}
	if last >= v.storage.numel {
		return fmt.Errorf("view (offset %d, shape %v, stride %v) reaches past its storage of %d elements",
			v.offset, v.shape, v.stride, v.storage.numel)
	}
	return nil
}

// contiguous reports whether the view is row-major without gaps; like
// torch, it ignores the strides of dimensions of size 1.
func (v *view) contiguous() bool {
	want := int64(1)
	for i := len(v.shape) - 1; i >= 0; i-- {
		if v.shape[i] != 1 && v.stride[i] != want {
			return false
		}
		want *= v.shape[i]
	}
	return true
}

// materialize turns the view into a Tensor once its storage is loaded.
// Contiguous views share the storage's bytes; others are copied, charging
// the copy to budget so that many strided views of one large storage
// cannot multiply the memory a file costs.
func (v *view) materialize(budget *int64) (*Tensor, error) {
	if v.tensor != nil {
		return v.tensor, nil
	}
	numel, err := v.numel()
	if err != nil {
		return nil, err
	}
	if err := v.checkBounds(numel); err != nil {
		return nil, err
	}
	data, err := v.storage.bytes()
	if err != nil {
		return nil, err
	}
	es := int64(v.storage.dtype.Size())
	t := &Tensor{DType: v.storage.dtype, Shape: append([]int64{}, v.shape...)}
	switch {
	case numel == 0:
		t.Data = []byte{}
	case v.contiguous():
		t.Data = data[v.offset*es : (v.offset+numel)*es]
	default:
		if *budget < numel*es {
			return nil, fmt.Errorf("strided views need more memory than the file holds")
		}
		*budget -= numel * es
		t.Data = gather(data, es, v.offset, v.shape, v.stride, numel)
	}
	v.tensor = t
	return t, nil
}

// gather copies a strided view into row-major order, stepping a
// multi-index through the shape like an odometer.
func gather(data []byte, es, offset int64, shape, stride []int64, numel int64) []byte {
	out := make([]byte, 0, numel*es)
	idx := make([]int64, len(shape))
	pos := offset
	for range numel {
		out = append(out, data[pos*es:(pos+1)*es]...)
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= idx[d] * stride[d]
			idx[d] = 0
		}
	}
	return out
}
