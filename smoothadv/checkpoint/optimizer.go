package checkpoint

import (
	"fmt"

	"github.com/nlpodyssey/gopickle/types"
)

// Optimizer is torch.optim.SGD's state_dict, as the reference saves it.
type Optimizer struct {
	Groups []ParamGroup
	// MomentumBuffers has one entry per parameter, in the order of the
	// groups' Params lists concatenated (the order of model.parameters()
	// for the reference's single group); nil where SGD holds no buffer
	// yet (before the first step, or with momentum 0).
	MomentumBuffers []*Tensor
}

// ParamGroup is one of SGD's param_groups.
type ParamGroup struct {
	LR, Momentum, Dampening, WeightDecay float64
	Nesterov                             bool
	// Params are the parameters' keys as saved: their positions in
	// recent files, id() of each parameter in files from PyTorch before
	// 1.5 or so. Only their order matters for resuming.
	Params []int64
	// Extra holds the group's other entries (initial_lr set by a
	// scheduler, maximize, foreach, ...) as plain values.
	Extra map[string]any
}

// sgdKeys are the hyperparameters every SGD param group has.
var sgdKeys = []string{"lr", "momentum", "dampening", "weight_decay", "nesterov", "params"}

// optimizer parses an SGD state_dict. It returns nil, nil for an optimizer
// that is not SGD (its groups lack SGD's momentum and nesterov entries),
// which the caller keeps as a plain value.
func (d *decoder) optimizer(v any) (*Optimizer, error) {
	its, err := items(v)
	if err != nil {
		return nil, err
	}
	var state []item
	var groups [][]item
	for _, it := range its {
		var err error
		switch it.key {
		case "state":
			state, err = items(it.value)
		case "param_groups":
			groups, err = dictList(it.value)
		default:
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%v: %w", it.key, err)
		}
	}
	if groups == nil || !isSGD(groups) {
		return nil, nil
	}
	o := &Optimizer{}
	pos := map[int64]int{}
	for i, g := range groups {
		pg, err := d.paramGroup(g)
		if err != nil {
			return nil, fmt.Errorf("param group %d: %w", i, err)
		}
		for _, p := range pg.Params {
			if _, dup := pos[p]; dup {
				return nil, fmt.Errorf("param group %d: parameter %d listed twice", i, p)
			}
			pos[p] = len(pos)
		}
		o.Groups = append(o.Groups, pg)
	}
	o.MomentumBuffers = make([]*Tensor, len(pos))
	for _, it := range state {
		p, ok := it.key.(int64)
		i, listed := pos[p]
		if !ok || !listed {
			return nil, fmt.Errorf("state for parameter %v, which no param group lists", it.key)
		}
		if o.MomentumBuffers[i], err = d.momentumBuffer(it.value); err != nil {
			return nil, fmt.Errorf("state of parameter %v: %w", it.key, err)
		}
	}
	return o, nil
}

// dictList lists the items of each dict of a list, as param_groups is.
func dictList(v any) ([][]item, error) {
	l, ok := v.(*types.List)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", typeName(v))
	}
	out := make([][]item, len(*l))
	for i, e := range *l {
		var err error
		if out[i], err = items(e); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}

func isSGD(groups [][]item) bool {
	for _, g := range groups {
		var momentum, nesterov bool
		for _, it := range g {
			momentum = momentum || it.key == "momentum"
			nesterov = nesterov || it.key == "nesterov"
		}
		if !momentum || !nesterov {
			return false
		}
	}
	return len(groups) > 0
}

func (d *decoder) paramGroup(g []item) (ParamGroup, error) {
	pg := ParamGroup{Extra: map[string]any{}}
	seen := map[string]bool{}
	for _, it := range g {
		key, ok := it.key.(string)
		if !ok {
			return pg, fmt.Errorf("key %v is not a string", it.key)
		}
		seen[key] = true
		var err error
		switch key {
		case "lr":
			pg.LR, err = toFloat(it.value)
		case "momentum":
			pg.Momentum, err = toFloat(it.value)
		case "dampening":
			pg.Dampening, err = toFloat(it.value)
		case "weight_decay":
			pg.WeightDecay, err = toFloat(it.value)
		case "nesterov":
			if pg.Nesterov, ok = it.value.(bool); !ok {
				err = fmt.Errorf("%s is not a bool", typeName(it.value))
			}
		case "params":
			pg.Params, err = intList(it.value)
		default:
			pg.Extra[key], err = d.plain(it.value, 0)
		}
		if err != nil {
			return pg, fmt.Errorf("%s: %w", key, err)
		}
	}
	for _, k := range sgdKeys {
		if !seen[k] {
			return pg, fmt.Errorf("no %q entry", k)
		}
	}
	return pg, nil
}

func intList(v any) ([]int64, error) {
	l, ok := v.(*types.List)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", typeName(v))
	}
	out := make([]int64, len(*l))
	for i, e := range *l {
		var err error
		if out[i], err = toInt(e); err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return out, nil
}

// momentumBuffer reads one parameter's SGD state: {'momentum_buffer':
// tensor or None}, or {} for a parameter the optimizer never stepped.
func (d *decoder) momentumBuffer(v any) (*Tensor, error) {
	its, err := items(v)
	if err != nil {
		return nil, err
	}
	var buf *Tensor
	for _, it := range its {
		if it.key != "momentum_buffer" {
			return nil, fmt.Errorf("unexpected entry %v: not SGD state", it.key)
		}
		if it.value == nil {
			continue
		}
		if buf, err = d.tensor(it.value); err != nil {
			return nil, fmt.Errorf("momentum_buffer: %w", err)
		}
	}
	return buf, nil
}
