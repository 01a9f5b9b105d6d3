// Package nppickle reads Python pickles that hold dicts, lists and numpy arrays, such as the
// CIFAR-10 and downsampled-ImageNet batches. A pickle may name any Python callable; this reader
// allows only the few needed to rebuild numpy arrays (and the inert OrderedDict, object and
// copy_reg._reconstructor that gopickle resolves itself) and refuses every other name, so a
// hostile file can only fail to load.
package nppickle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/smoothadv/smoothadv/smoothadv/internal/safepickle"
)

// LoadFile decodes the pickle in the named file.
func LoadFile(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Two passes: one that checks every claimed length against the file, then the decoding; the
	// file is not held in memory on top of the arrays decoded from it.
	br := bufio.NewReaderSize(f, 1<<20)
	if err := safepickle.Scan(io.Discard, br); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	br.Reset(f)
	v, err := safepickle.Unpickle(br, globals, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Load decodes a pickle held in memory.
func Load(b []byte) (any, error) {
	if err := safepickle.Scan(io.Discard, bufio.NewReader(bytes.NewReader(b))); err != nil {
		return nil, err
	}
	return safepickle.Unpickle(bytes.NewReader(b), globals, nil)
}

// globals are the callables numpy arrays are rebuilt from. Numpy moved its internals from
// numpy.core to numpy._core in 2.0; pickles name either.
var globals = map[string]any{
	"numpy.core.multiarray._reconstruct":  reconstruct{},
	"numpy._core.multiarray._reconstruct": reconstruct{},
	"numpy.core.multiarray.scalar":        scalar{},
	"numpy._core.multiarray.scalar":       scalar{},
	"numpy.core.numeric._frombuffer":      fromBuffer{},
	"numpy._core.numeric._frombuffer":     fromBuffer{},
	"numpy.ndarray":                       ndarrayClass{},
	"numpy.dtype":                         dtypeClass{},
	"_codecs.encode":                      encode{},
}

// Dtype is a numpy scalar type such as "u1" or "i8".
type Dtype struct {
	Kind      string
	BigEndian bool
}

// itemSize is the width in bytes of one element, or an error for kinds this reader does not decode.
func (d *Dtype) itemSize() (int, error) {
	if len(d.Kind) == 2 && strings.IndexByte("uif", d.Kind[0]) >= 0 {
		switch n := d.Kind[1] - '0'; n {
		case 1, 2, 4, 8:
			if d.Kind[0] != 'f' || n >= 4 {
				return int(n), nil
			}
		}
	}
	return 0, fmt.Errorf("unsupported numpy dtype %q", d.Kind)
}

// PySetState takes numpy's dtype state (version, byteorder, ...).
func (d *Dtype) PySetState(state any) error {
	t, ok := state.(*types.Tuple)
	if !ok || t.Len() < 2 {
		return fmt.Errorf("numpy dtype state is %T, want a tuple", state)
	}
	order, _ := t.Get(1).(string)
	d.BigEndian = order == ">"
	return nil
}

type dtypeClass struct{}

func (dtypeClass) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("numpy.dtype called without arguments")
	}
	kind, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("numpy.dtype(%T) is not supported", args[0])
	}
	d := &Dtype{Kind: kind}
	if _, err := d.itemSize(); err != nil {
		return nil, err
	}
	return d, nil
}

// Array is a numpy ndarray: its raw bytes in the order the pickle gave them.
type Array struct {
	Shape   []int
	Dtype   *Dtype
	Fortran bool
	Data    []byte
}

type ndarrayClass struct{}

// errUnbuilt is for an array that _reconstruct made but no BUILD filled.
var errUnbuilt = errors.New("numpy array without state")

// reconstruct is numpy's _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD then fills.
type reconstruct struct{}

func (reconstruct) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("_reconstruct called without arguments")
	}
	if _, ok := args[0].(ndarrayClass); !ok {
		return nil, fmt.Errorf("_reconstruct of %T, want numpy.ndarray", args[0])
	}
	return &Array{}, nil
}

// PySetState takes ndarray's state: ([version,] shape, dtype, is_fortran, rawdata).
func (a *Array) PySetState(state any) error {
	t, ok := state.(*types.Tuple)
	if !ok || t.Len() < 4 {
		return fmt.Errorf("ndarray state is %T, want a tuple of 4 or 5", state)
	}
	s := *t
	if len(s) == 5 {
		s = s[1:]
	}
	fortran, _ := s[2].(bool)
	return a.set(s[0], s[1], fortran, s[3])
}

func (a *Array) set(shape, dtype any, fortran bool, data any) error {
	dims, err := shapeOf(shape)
	if err != nil {
		return err
	}
	d, ok := dtype.(*Dtype)
	if !ok {
		return fmt.Errorf("ndarray dtype is %T", dtype)
	}
	raw, err := rawBytes(data)
	if err != nil {
		return err
	}
	size, _ := d.itemSize()
	n := size
	for _, k := range dims {
		if k != 0 && n > math.MaxInt/k {
			return fmt.Errorf("ndarray shape %v is too large", dims)
		}
		n *= k
	}
	if n != len(raw) {
		return fmt.Errorf("ndarray of shape %v and dtype %s needs %d bytes, has %d", dims, d.Kind, n, len(raw))
	}
	*a = Array{Shape: dims, Dtype: d, Fortran: fortran, Data: raw}
	return nil
}

func shapeOf(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("ndarray shape is %T, want a tuple", v)
	}
	dims := make([]int, t.Len())
	for i, d := range *t {
		k, ok := d.(int)
		if !ok || k < 0 {
			return nil, fmt.Errorf("ndarray shape %v is not a tuple of sizes", *t)
		}
		dims[i] = k
	}
	return dims, nil
}

// rawBytes accepts the forms a byte buffer takes in pickles: a Python 2 str (BINSTRING, decoded
// by gopickle as a Go string), Python 3 bytes, or a bytearray.
func rawBytes(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	case *types.ByteArray:
		return []byte(*b), nil
	}
	return nil, fmt.Errorf("ndarray data is %T, want bytes (object arrays are not supported)", v)
}

// fromBuffer is numpy's protocol-5 reduction: _frombuffer(buffer, dtype, shape, order).
type fromBuffer struct{}

func (fromBuffer) Call(args ...any) (any, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("_frombuffer takes 4 arguments, got %d", len(args))
	}
	a := &Array{}
	return a, a.set(args[2], args[1], args[3] == "F", args[0])
}

// encode is _codecs.encode(text, "latin1"), which Python 3 writes for bytes in protocol 2 pickles.
type encode struct{}

func (encode) Call(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("_codecs.encode takes 2 arguments, got %d", len(args))
	}
	text, ok := args[0].(string)
	if enc, _ := args[1].(string); !ok || (enc != "latin1" && enc != "latin-1") {
		return nil, fmt.Errorf("_codecs.encode(%T, %v) is not supported", args[0], args[1])
	}
	out := make([]byte, 0, len(text))
	for _, r := range text {
		if r > 0xff {
			return nil, fmt.Errorf("_codecs.encode: %U is not latin-1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// scalar is numpy's scalar(dtype, bytes): one number, returned as an int or a float64.
type scalar struct{}

func (scalar) Call(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("numpy scalar takes 2 arguments, got %d", len(args))
	}
	a := &Array{}
	if err := a.set(&types.Tuple{}, args[0], false, args[1]); err != nil {
		return nil, err
	}
	if a.Dtype.Kind[0] == 'f' {
		return a.float(0), nil
	}
	return a.int(0)
}

func (a *Array) order() binary.ByteOrder {
	if a.Dtype.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// int decodes element i of an integer array.
func (a *Array) int(i int) (int, error) {
	size, _ := a.Dtype.itemSize()
	b := a.Data[i*size : (i+1)*size]
	var u uint64
	switch size {
	case 1:
		u = uint64(b[0])
	case 2:
		u = uint64(a.order().Uint16(b))
	case 4:
		u = uint64(a.order().Uint32(b))
	case 8:
		u = a.order().Uint64(b)
	}
	switch a.Dtype.Kind[0] {
	case 'i':
		shift := 64 - 8*size
		return int(int64(u<<shift) >> shift), nil
	case 'u':
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("value %d does not fit an int", u)
		}
		return int(u), nil
	}
	return 0, fmt.Errorf("dtype %s is not an integer type", a.Dtype.Kind)
}

func (a *Array) float(i int) float64 {
	if a.Dtype.Kind == "f4" {
		return float64(math.Float32frombits(a.order().Uint32(a.Data[i*4:])))
	}
	return math.Float64frombits(a.order().Uint64(a.Data[i*8:]))
}

// Get returns the value stored under key in a pickled dict. Python 2 pickles read as str keys and
// Python 3 ones may use bytes keys; both match.
func Get(dict any, key string) (any, error) {
	d, ok := dict.(*types.Dict)
	if !ok {
		return nil, fmt.Errorf("pickle holds %T, want a dict", dict)
	}
	for _, e := range *d {
		switch k := e.Key.(type) {
		case string:
			if k == key {
				return e.Value, nil
			}
		case []byte:
			if string(k) == key {
				return e.Value, nil
			}
		}
	}
	return nil, fmt.Errorf("dict has no key %q", key)
}

// Ints converts a list of integers, or a 1-d integer array, to []int.
func Ints(v any) ([]int, error) {
	switch x := v.(type) {
	case *types.List:
		out := make([]int, len(*x))
		for i, e := range *x {
			k, ok := e.(int)
			if !ok {
				return nil, fmt.Errorf("list element %d is %T, want an int", i, e)
			}
			out[i] = k
		}
		return out, nil
	case *Array:
		if x.Dtype == nil {
			return nil, errUnbuilt
		}
		if len(x.Shape) != 1 {
			return nil, fmt.Errorf("integer array has shape %v, want 1-d", x.Shape)
		}
		out := make([]int, x.Shape[0])
		for i := range out {
			k, err := x.int(i)
			if err != nil {
				return nil, err
			}
			out[i] = k
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T is not a list or array of integers", v)
}

// Uint8s returns the bytes of a C-ordered uint8 array whose shape is want; -1 in want matches any
// size, and the actual shape is returned.
func Uint8s(v any, want ...int) ([]byte, []int, error) {
	a, ok := v.(*Array)
	if !ok {
		return nil, nil, fmt.Errorf("%T is not a numpy array", v)
	}
	if a.Dtype == nil {
		return nil, nil, errUnbuilt
	}
	if a.Dtype.Kind != "u1" {
		return nil, nil, fmt.Errorf("array dtype is %s, want uint8", a.Dtype.Kind)
	}
	if a.Fortran && len(a.Shape) > 1 {
		return nil, nil, fmt.Errorf("array is in Fortran order, want C order")
	}
	if len(a.Shape) != len(want) {
		return nil, nil, fmt.Errorf("array has shape %v, want %s", a.Shape, shapeString(want))
	}
	for i, k := range want {
		if k >= 0 && a.Shape[i] != k {
			return nil, nil, fmt.Errorf("array has shape %v, want %s", a.Shape, shapeString(want))
		}
	}
	return a.Data, a.Shape, nil
}

func shapeString(dims []int) string {
	b := []byte{'['}
	for i, k := range dims {
		if i > 0 {
			b = append(b, ", "...)
		}
		if k < 0 {
			b = append(b, 'N')
		} else {
			b = strconv.AppendInt(b, int64(k), 10)
		}
	}
	return string(append(b, ']'))
}
