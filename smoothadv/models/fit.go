package models

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/smoothadv/smoothadv/torchbind"
)

// Fit describes the data a model is about to classify: a dataset's name,
// the shape of one image (C, H, W) and its number of classes.
type Fit struct {
	Dataset    string
	Input      []int64
	NumClasses int
}

func (f Fit) shape() string {
	s := make([]string, len(f.Input))
	for i, v := range f.Input {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, "x")
}

// fitBatch is how many images the check at load classifies: two, so that a
// network that mixes up its batch dimension shows it.
const fitBatch = 2

// checkFit refuses a model that does not fit f: its recorded input shape or
// number of classes differ from the dataset's, or the network itself does
// not turn a batch of the dataset's images into one logit per class, which
// catches metadata that does not describe the network and plain TorchScript
// files that record nothing. plain says the model records no metadata.
func (m *Model) checkFit(path string, f Fit, plain bool) error {
	if in := m.Meta.Input; !plain && !slices.Equal(in, f.Input) {
		return fmt.Errorf("model %s takes %s inputs but %s images are %s", path, Fit{Input: in}.shape(), f.Dataset, f.shape())
	}
	if !plain && m.Meta.NumClasses != f.NumClasses {
		return fmt.Errorf("model %s outputs %d classes but %s has %d", path, m.Meta.NumClasses, f.Dataset, f.NumClasses)
	}
	got, dtype, err := m.output(f.Input)
	if errors.Is(err, errUnreadOutput) {
		return fmt.Errorf("model %s returns %v, want float32 logits (a classifier's scores, one per class)", path, err)
	}
	if err != nil {
		return fmt.Errorf("model %s does not run on %s images (%s): %w", path, f.Dataset, f.shape(), err)
	}
	if dtype != torchbind.Float32 && dtype != torchbind.Float64 {
		return fmt.Errorf("model %s returns %v logits, want float32 (a classifier's scores, one per class)", path, dtype)
	}
	want := []int64{fitBatch, int64(f.NumClasses)}
	switch {
	case slices.Equal(got, want):
		return nil
	case len(got) == 2 && got[0] == fitBatch && plain:
		return fmt.Errorf("model %s outputs %d classes but %s has %d", path, got[1], f.Dataset, f.NumClasses)
	case len(got) == 2 && got[0] == fitBatch:
		return fmt.Errorf("model %s records %d classes but its network outputs %d", path, m.Meta.NumClasses, got[1])
	}
	return fmt.Errorf("model %s returns logits shaped %v for a batch of %d %s images, want %v", path, got, fitBatch, f.Dataset, want)
}

// output runs the network once, in evaluation mode and without gradients,
// on a batch of mid-grey images of shape input, and returns the shape and
// element type of what it returns. The module's mode is restored
// afterwards.
func (m *Model) output(input []int64) ([]int64, torchbind.DType, error) {
	training, err := m.IsTraining()
	if err != nil {
		return nil, 0, err
	}
	if err := m.Train(false); err != nil {
		return nil, 0, err
	}
	defer m.Train(training) // a mode switch that just worked does not fail
	s := torchbind.NewScope()
	defer s.Close()
	shape := append([]int64{fitBatch}, input...)
	grey := make([]float32, numel(shape))
	for i := range grey {
		grey[i] = 0.5
	}
	x := s.FromFloat32(grey, m.Device(), shape...)
	y := m.Infer(s, x)
	if err := s.Err(); err != nil {
		return nil, 0, lastLine(err)
	}
	shape, dtype, err := y.Info()
	if err != nil {
		return nil, 0, fmt.Errorf("%w (%v)", errUnreadOutput, err)
	}
	return shape, dtype, nil
}

// errUnreadOutput is an output of an element type this build does not read
// (float16, complex).
var errUnreadOutput = errors.New("a tensor of a type that is no float32")

func numel(shape []int64) int {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return int(n)
}

// lastLine keeps the last line of a libtorch error, the exception itself:
// a failure in the TorchScript interpreter comes first with the script's
// traceback, which says nothing to someone who did not write the model.
func lastLine(err error) error {
	msg := strings.TrimSpace(err.Error())
	return errors.New(strings.TrimSpace(msg[strings.LastIndexByte(msg, '\n')+1:]))
}
