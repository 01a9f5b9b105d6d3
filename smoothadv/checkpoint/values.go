package checkpoint

import (
	"fmt"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// maxDepth bounds the nesting of converted containers: a pickle can build
// cycles (a list holding itself) that plain Go values cannot represent.
const maxDepth = 64

// item is one key/value pair of a pickled dict; keys are strings or int64.
type item struct {
	key   any
	value any
}

// items lists a pickled dict or OrderedDict in order. gopickle keeps a plain
// dict's repeated keys; as in Python, the last value wins at the first
// key's position.
func items(v any) ([]item, error) {
	var raw []item
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			raw = append(raw, item{e.Key, e.Value})
		}
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			oe, ok := e.Value.(*types.OrderedDictEntry)
			if !ok {
				return nil, fmt.Errorf("OrderedDict entry is a %T", e.Value)
			}
			raw = append(raw, item{oe.Key, oe.Value})
		}
	default:
		return nil, fmt.Errorf("%s is not a dict", typeName(v))
	}
	out := make([]item, 0, len(raw))
	seen := make(map[any]int, len(raw))
	for _, it := range raw {
		k, err := dictKey(it.key)
		if err != nil {
			return nil, err
		}
		if i, ok := seen[k]; ok {
			out[i].value = it.value
			continue
		}
		seen[k] = len(out)
		out = append(out, item{k, it.value})
	}
	return out, nil
}

func dictKey(k any) (any, error) {
	if s, ok := k.(string); ok {
		return s, nil
	}
	n, err := toInt(k)
	if err != nil {
		return nil, fmt.Errorf("dict key of type %s is not supported", typeName(k))
	}
	return n, nil
}

func toInt(v any) (int64, error) {
	switch v := v.(type) {
	case int:
		return int64(v), nil
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), nil
		}
		return 0, fmt.Errorf("integer %v out of range", v)
	}
	return 0, fmt.Errorf("%s is not an integer", typeName(v))
}

func toFloat(v any) (float64, error) {
	if f, ok := v.(float64); ok {
		return f, nil
	}
	n, err := toInt(v)
	if err != nil {
		return 0, fmt.Errorf("%s is not a number", typeName(v))
	}
	return float64(n), nil
}

// typeName names a pickled value's type in Python's terms for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	case *types.Dict:
		return "dict"
	case *types.OrderedDict:
		return "OrderedDict"
	case *view:
		return "tensor"
	case *storage:
		return "storage"
	}
	return fmt.Sprintf("%T", v)
}

// decoder turns unpickled values into this package's Go values.
type decoder struct {
	// budget is how many bytes copies of strided tensors may still take.
	budget int64
}

func (d *decoder) tensor(v any) (*Tensor, error) {
	vw, ok := v.(*view)
	if !ok {
		return nil, fmt.Errorf("%s is not a tensor", typeName(v))
	}
	return vw.materialize(&d.budget)
}

// plain converts a pickled value to plain Go values: nil, bool, int64,
// float64, string, []byte, []any (lists and tuples), map[any]any (dicts,
// keyed by string or int64) and *Tensor.
func (d *decoder) plain(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("values nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case nil, bool, string, float64, []byte:
		return v, nil
	case int, *big.Int:
		return toInt(v)
	case *types.List:
		return d.list(*v, depth)
	case *types.Tuple:
		return d.list(*v, depth)
	case *types.Dict, *types.OrderedDict:
		its, err := items(v)
		if err != nil {
			return nil, err
		}
		m := make(map[any]any, len(its))
		for _, it := range its {
			if m[it.key], err = d.plain(it.value, depth+1); err != nil {
				return nil, fmt.Errorf("[%v]: %w", it.key, err)
			}
		}
		return m, nil
	case *view:
		return d.tensor(v)
	}
	return nil, fmt.Errorf("unsupported value of type %s", typeName(v))
}

func (d *decoder) list(l []any, depth int) ([]any, error) {
	out := make([]any, len(l))
	for i, e := range l {
		var err error
		if out[i], err = d.plain(e, depth+1); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}
