package experiment

import (
	"fmt"
	"math"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/certify/analysis"
)

// TargetSpec is certification.target_radius: the radii an adaptive
// CERTIFY asks about (certify.Targets). A number is one radius, a list a
// table's, and "analysis" the radii of the analysis table (0 left out);
// none certifies with a fixed N, as the reference.
type TargetSpec struct {
	Radii    []float64
	Analysis bool
}

// analysisTargets is the word that stands for the analysis table's radii.
const analysisTargets = "analysis"

// IsZero reports a fixed-N run, for omitempty.
func (t TargetSpec) IsZero() bool { return !t.Analysis && len(t.Radii) == 0 }

// UnmarshalYAML reads a number, a list of numbers or "analysis".
func (t *TargetSpec) UnmarshalYAML(n *yaml.Node) error {
	*t = TargetSpec{}
	switch {
	case n.Kind == yaml.ScalarNode && n.Value == analysisTargets:
		t.Analysis = true
		return nil
	case n.Kind == yaml.ScalarNode:
		var r float64
		if err := n.Decode(&r); err != nil {
			return fmt.Errorf("line %d: target_radius: want a radius, a list of radii or %q", n.Line, analysisTargets)
		}
		if r != 0 {
			t.Radii = []float64{r}
		}
		return nil
	case n.Kind == yaml.SequenceNode:
		if err := n.Decode(&t.Radii); err != nil {
			return fmt.Errorf("line %d: target_radius: want a radius, a list of radii or %q", n.Line, analysisTargets)
		}
		return nil
	}
	return fmt.Errorf("line %d: target_radius: want a radius, a list of radii or %q", n.Line, analysisTargets)
}

// MarshalYAML writes what UnmarshalYAML reads.
func (t TargetSpec) MarshalYAML() (any, error) {
	switch {
	case t.Analysis:
		return analysisTargets, nil
	case len(t.Radii) == 1:
		return t.Radii[0], nil
	}
	return t.Radii, nil
}

// targets resolves the spec against the analysis radii (a START:STOP:STEP
// string): the sorted, distinct radii, or none for a fixed-N run.
func (t TargetSpec) targets(radii string) (certify.Targets, error) {
	rs := slices.Clone(t.Radii)
	if t.Analysis {
		all, err := analysis.ParseRadii(radii)
		if err != nil {
			return nil, err
		}
		rs = slices.DeleteFunc(all, func(r float64) bool { return r == 0 })
	}
	for _, r := range rs {
		if !(r > 0) || math.IsInf(r, 1) {
			return nil, fmt.Errorf("%v, want finite radii > 0", t.Radii)
		}
	}
	slices.Sort(rs)
	return certify.Targets(slices.Compact(rs)), nil
}

// Targets are the radii the run certifies adaptively at; none for a fixed
// N (the configuration is checked, so they resolve).
func (r Run) Targets() certify.Targets {
	t, _ := r.Config.Certification.TargetRadius.targets(r.Config.Analysis.Radii)
	return t
}
