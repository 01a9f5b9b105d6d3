package checkpoint

import (
	"fmt"
	"slices"
	"strings"
)

// Spec is one parameter or buffer a model expects.
type Spec struct {
	Name  string
	Shape []int64
	DType DType
}

// Layout says how the keys of a state dict are prefixed.
type Layout struct {
	// Normalized: keys start with "1.", the model being
	// Sequential(NormalizeLayer, net) as in the reference.
	Normalized bool
	// DataParallel: keys (after "1.") start with "module.", the net having
	// been wrapped in DataParallel, as the reference's resnet50 is.
	DataParallel bool
}

// Prefix is the key prefix of the layout: "1.module.", "1.", "module." or "".
func (l Layout) Prefix() string {
	p := ""
	if l.Normalized {
		p = "1."
	}
	if l.DataParallel {
		p += "module."
	}
	return p
}

// DetectLayout reports the layout of a state dict. A prefix counts only when
// every key has it.
func DetectLayout(sd []Entry) Layout {
	names := make([]string, len(sd))
	for i, e := range sd {
		names[i] = e.Name
	}
	return layoutOf(names)
}

func layoutOf(names []string) Layout {
	if len(names) == 0 {
		return Layout{}
	}
	for _, l := range []Layout{{true, true}, {true, false}, {false, true}} {
		p := l.Prefix()
		if !slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(n, p) }) {
			return l
		}
	}
	return Layout{}
}

// Match maps a state dict onto the tensors a model expects, returning them
// in want's order under want's names. Names are compared without their
// layout prefix ("1.", "1.module." or "module."), so either side may have
// one. Every expected name must be present with its dtype and shape, and no
// key may be left over; otherwise the error names the first problem and
// counts them all.
func Match(sd []Entry, want []Spec) ([]Entry, error) {
	sdPrefix := DetectLayout(sd).Prefix()
	wantNames := make([]string, len(want))
	for i, s := range want {
		wantNames[i] = s.Name
	}
	wantPrefix := layoutOf(wantNames).Prefix()

	byName := make(map[string]int, len(sd))
	for i, e := range sd {
		n := strings.TrimPrefix(e.Name, sdPrefix)
		if _, dup := byName[n]; dup {
			return nil, fmt.Errorf("state dict has key %q twice", e.Name)
		}
		byName[n] = i
	}
	var problems []string
	used := make([]bool, len(sd))
	out := make([]Entry, 0, len(want))
	for _, s := range want {
		i, ok := byName[strings.TrimPrefix(s.Name, wantPrefix)]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (model wants %s %v)", s.Name, s.DType, s.Shape))
			continue
		}
		used[i] = true
		t := sd[i].Tensor
		if t.DType != s.DType || !slices.Equal(t.Shape, s.Shape) {
			problems = append(problems, fmt.Sprintf("%q: checkpoint has %s %v, model wants %s %v",
				sd[i].Name, t.DType, t.Shape, s.DType, s.Shape))
			continue
		}
		out = append(out, Entry{Name: s.Name, Tensor: t})
	}
	for i, e := range sd {
		if !used[i] {
			problems = append(problems, fmt.Sprintf("unexpected key %q (%s %v)", e.Name, e.Tensor.DType, e.Tensor.Shape))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("state dict does not match the model: %s (%d problems in all)%s", problems[0], len(problems), prefixHint(sd, wantNames))
	}
	return out, nil
}

// prefixHint points at a prefix that every key of the state dict has and no
// expected name has, such as a DataParallel wrapped around the whole model
// ("module.1.conv1.weight"), which the layouts above do not cover.
func prefixHint(sd []Entry, want []string) string {
	if len(sd) == 0 {
		return ""
	}
	first, _, ok := strings.Cut(sd[0].Name, ".")
	p := first + "."
	if !ok || slices.ContainsFunc(sd, func(e Entry) bool { return !strings.HasPrefix(e.Name, p) }) ||
		slices.ContainsFunc(want, func(n string) bool { return strings.HasPrefix(n, p) }) {
		return ""
	}
	return fmt.Sprintf("; every key of the checkpoint starts with %q, which the model's names do not: "+
		"it was saved from a wrapper around the model (DataParallel?); save model.module.state_dict() instead", p)
}
