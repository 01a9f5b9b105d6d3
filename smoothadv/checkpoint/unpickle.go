package checkpoint

import (
	"bytes"
	"fmt"

	"github.com/nlpodyssey/gopickle/types"

	"github.com/smoothadv/smoothadv/smoothadv/internal/safepickle"
)

// storageClass is what a pickled torch.*Storage global resolves to.
type storageClass struct{ dtype DType }

// globals is the allowlist of what a checkpoint may name: torch's storage
// classes, which name a storage's element type in both formats, and the
// functions that rebuild tensors and parameters.
var globals = map[string]any{
	"torch.FloatStorage":              storageClass{Float32},
	"torch.DoubleStorage":             storageClass{Float64},
	"torch.HalfStorage":               storageClass{Float16},
	"torch.BFloat16Storage":           storageClass{BFloat16},
	"torch.LongStorage":               storageClass{Int64},
	"torch.IntStorage":                storageClass{Int32},
	"torch.ShortStorage":              storageClass{Int16},
	"torch.CharStorage":               storageClass{Int8},
	"torch.ByteStorage":               storageClass{Uint8},
	"torch.BoolStorage":               storageClass{Bool},
	"torch._utils._rebuild_tensor_v2": rebuildTensor{},
	"torch._utils._rebuild_parameter": rebuildParameter{},
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

// unpickle decodes a pickle checked by safepickle.Scan, resolving
// persistent ids (torch's storage references) through persistentLoad, which
// may be nil for pickles that must not hold any.
func unpickle(data []byte, persistentLoad func(any) (any, error)) (any, error) {
	return safepickle.Unpickle(bytes.NewReader(data), globals, persistentLoad)
}
