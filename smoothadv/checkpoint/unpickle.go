package checkpoint

import (
	"bytes"
	"fmt"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// storageClasses maps torch's storage classes, which name a storage's
// element type in both formats, to dtypes.
var storageClasses = map[string]DType{
	"FloatStorage":    Float32,
	"DoubleStorage":   Float64,
	"HalfStorage":     Float16,
	"BFloat16Storage": BFloat16,
	"LongStorage":     Int64,
	"IntStorage":      Int32,
	"ShortStorage":    Int16,
	"CharStorage":     Int8,
	"ByteStorage":     Uint8,
	"BoolStorage":     Bool,
}

// storageClass is what a pickled torch.*Storage global resolves to.
type storageClass struct{ dtype DType }

// findClass is the allowlist of globals a checkpoint may name. gopickle
// answers a few names itself before asking (collections.OrderedDict, and
// Python 2's copy_reg._reconstructor and __builtin__.object, which only
// build its own Go values); anything else, os.system or builtins.eval say,
// is refused here. Nothing is ever looked up or run in Python.
func findClass(module, name string) (any, error) {
	if module == "torch" {
		if dt, ok := storageClasses[name]; ok {
			return storageClass{dt}, nil
		}
	}
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	}
	return nil, fmt.Errorf("refusing global %s.%s: not allowed in a checkpoint", module, name)
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want 6 or 7", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage is a %T", args[0])
	}
	offset, err := toInt(args[1])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset: %w", err)
	}
	shape, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	// Hooks and metadata cannot be restored without running Python; an
	// empty container (what state dicts hold) or None loses nothing.
	for _, a := range args[5:] {
		if !emptyContainer(a) {
			return nil, fmt.Errorf("_rebuild_tensor_v2: backward hooks or metadata are not supported")
		}
	}
	return &view{storage: st, offset: offset, shape: shape, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): a Parameter is just its tensor here.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("_rebuild_parameter: %d arguments, want 3", len(args))
	}
	v, ok := args[0].(*view)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is a %T", args[0])
	}
	if !emptyContainer(args[2]) {
		return nil, fmt.Errorf("_rebuild_parameter: backward hooks are not supported")
	}
	return v, nil
}

func emptyContainer(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case *types.OrderedDict:
		return v.Len() == 0
	case *types.Dict:
		return v.Len() == 0
	}
	return false
}

func intTuple(v any) ([]int64, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("%T is not a tuple", v)
	}
	out := make([]int64, t.Len())
	for i := range out {
		n, err := toInt(t.Get(i))
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// unpickle decodes a pickle checked by readPickle, resolving persistent ids
// (torch's storage references) through persistentLoad, which may be nil
// for pickles that must not hold any. gopickle trusts its input and can
// panic on malformed opcode sequences; that becomes an error here.
func unpickle(data []byte, persistentLoad func(any) (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	return u.Load()
}
