package models

import (
	"archive/zip"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/smoothadv/checkpoint"
	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
	"github.com/smoothadv/smoothadv/torchbind"
)

// OptimizerState is SGD's state for resuming training: the hyperparameters
// of the reference's single param group and one momentum buffer per
// parameter, in the order of Model.Parameters(), on the model's device.
// Close it when done.
type OptimizerState = torchbind.SGDState

// Load opens a model file of either kind, telling them apart without running
// anything in the file: a TorchScript archive (ours, or any torch.jit.save
// file with opt.Arch) goes to LoadTorchScript, a torch.save checkpoint (the
// reference's checkpoint.pth.tar, in the zip or the legacy format) to
// LoadCheckpoint.
//
// Either way the file must be a regular file, and the weights finite with
// non-negative BatchNorm variances.
func Load(path string, opt Options) (*Model, error) {
	if err := checkRegular(path); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	kind, err := fileKind(path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	load := LoadCheckpoint
	if kind == torchScriptFile {
		load = LoadTorchScript
	}
	m, err := load(path, opt)
	if err != nil {
		return nil, err
	}
	if err := m.checkValues(); err != nil {
		m.Close()
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

type modelFile int

const (
	torchScriptFile modelFile = iota
	checkpointFile
)

// legacyMagic is the pickled magic number that starts torch.save's legacy
// (pre-1.6) format: 0x1950a86a20f9469cfc6c as a little-endian LONG1.
var legacyMagic = []byte("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")

// fileKind reads a file's header (and, for a zip archive, its directory) to
// tell TorchScript from torch.save.
func fileKind(path string) (modelFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	head := make([]byte, 32)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, err
	}
	head = head[:n]
	switch {
	case n == 0:
		return 0, errors.New("empty file")
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return zipKind(f, st.Size())
	// A pickle (PROTO opcode) of the magic number, in any pickle protocol.
	case head[0] == 0x80 && bytes.Contains(head, legacyMagic):
		return checkpointFile, nil
	}
	return 0, errors.New("neither a TorchScript archive nor a torch.save checkpoint")
}

// zipKind looks at the records under the archive's top directory:
// torch.jit.save writes code/ and constants.pkl beside data.pkl,
// torch.save only data.pkl and data/.
func zipKind(r io.ReaderAt, size int64) (modelFile, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return 0, fmt.Errorf("corrupt or truncated zip archive: %w", err)
	}
	data := false
	for _, f := range zr.File {
		_, rest, _ := strings.Cut(f.Name, "/")
		if rest == "constants.pkl" || strings.HasPrefix(rest, "code/") {
			return torchScriptFile, nil
		}
		data = data || rest == "data.pkl"
	}
	if !data {
		return 0, errors.New("a zip archive with neither TorchScript code nor torch.save's data.pkl")
	}
	return checkpointFile, nil
}

// LoadCheckpoint loads a checkpoint.pth.tar of the Python reference (or one
// written by SaveCheckpoint): torch.save's {'epoch', 'arch', 'state_dict',
// ...}, in the legacy or the zip format, read without running anything in
// it. The weights go into the exported architecture that 'arch' names, which
// must be opt.Arch when that is set. Every tensor of the architecture must
// be in the state dict with its shape and dtype, and nothing else; otherwise
// the error names the first mismatch.
//
// The input layer is opt.Normalization, else the one the file records (files
// written by SaveCheckpoint), else NormalizeLayer; Meta.Normalization says
// which. The reference's files do not say whether the net was trained behind
// NormalizeLayer ((x - mean) / sd) or InputCenterLayer (x - mean, Center):
// neither layer holds tensors, so the state dict is the same. To tell,
// classify or certify a few hundred test images with each choice and keep the
// one whose clean accuracy is close to the published one; the wrong layer
// gives far lower accuracy (often around 30% on CIFAR-10) or nearly the same
// label for every image.
//
// MACER's checkpoints, {'net': state_dict, 'epoch'}, record no architecture:
// opt.Arch names it (ErrNoArch without). Their nets were trained without an
// input layer, so the layer defaults to None.
func LoadCheckpoint(path string, opt Options) (*Model, error) {
	c, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Net && opt.Arch == "":
		return nil, fmt.Errorf("%s: a MACER checkpoint ({'net', 'epoch'}) does not record its architecture: %w", path, ErrNoArch)
	case c.Net:
		c.Arch = opt.Arch
	case opt.Arch != "" && opt.Arch != c.Arch:
		return nil, fmt.Errorf("%s is a %s checkpoint, not %s", path, c.Arch, opt.Arch)
	}
	m, err := loadTemplate(c.Arch, Options{Device: opt.Device, Dir: opt.Dir})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.loadStateDict(c.StateDict); err != nil {
		m.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.setInputLayer(path, c, opt); err != nil {
		m.Close()
		return nil, err
	}
	m.Meta.Epoch = c.Epoch
	if opt.Fit != nil {
		if err := m.checkFit(path, *opt.Fit, false); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// ErrNoArch is the error of loading a model file that does not record its
// architecture (a MACER checkpoint, a TorchScript file without our
// metadata) without saying which it is.
var ErrNoArch = errors.New("say which architecture it is (--arch)")

// loadStateDict copies a state dict into the model's parameters and buffers.
func (m *Model) loadStateDict(sd []checkpoint.Entry) error {
	tensors, err := m.stateDict()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(tensors)
	specs := make([]checkpoint.Spec, len(tensors))
	for i, t := range tensors {
		shape, dt, err := t.T.Info()
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		// Both packages name dtypes as torch prints them ("float32").
		specs[i] = checkpoint.Spec{Name: t.Name, Shape: shape, DType: checkpoint.DType(dt.String())}
	}
	matched, err := checkpoint.Match(sd, specs)
	if err != nil {
		return err
	}
	s := torchbind.NewScope()
	defer s.Close()
	for i, e := range matched {
		v, err := toDevice(s, e.Tensor, m.Device())
		if err == nil {
			err = tensors[i].T.CopyFrom(v)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		s.Close() // one tensor at a time on the device
	}
	return nil
}

// toDevice copies a checkpoint tensor onto device, into s.
func toDevice(s *torchbind.Scope, t *checkpoint.Tensor, device string) (*torchbind.Tensor, error) {
	var v *torchbind.Tensor
	switch t.DType {
	case checkpoint.Float32:
		data, _ := t.Float32s() // the dtype is checked, so this cannot fail
		v = s.FromFloat32(data, device, t.Shape...)
	case checkpoint.Int64:
		data, _ := t.Int64s()
		v = s.FromInt64(data, device, t.Shape...)
	default:
		return nil, fmt.Errorf("%s tensors are not supported", t.DType)
	}
	return v, s.Err()
}

// setInputLayer applies the input layer: opt.Normalization if given (not
// contradicting what the file records, unless forced), else what the file
// records, else NormalizeLayer (None for MACER's files). Files written by
// SaveCheckpoint also record the means, deviations and noise level, which
// are restored.
func (m *Model) setInputLayer(path string, c *checkpoint.Checkpoint, opt Options) error {
	recorded, err := extraValue[string](c, "normalization")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	kind, err := chooseNormalization(path, recorded, opt)
	if err != nil {
		return err
	}
	unrecorded := inputlayer.Normalize
	if c.Net {
		unrecorded = inputlayer.None
	}
	if err := m.restoreInputLayer(c, cmp.Or(kind, unrecorded)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// restoreInputLayer restores the noise level, means and deviations that a
// file written by SaveCheckpoint records, then sets the input layer kind.
func (m *Model) restoreInputLayer(c *checkpoint.Checkpoint, kind string) error {
	var err error
	if m.Meta.NoiseSD, err = extraValue[float64](c, "noise_sd"); err != nil {
		return err
	}
	for _, f := range []struct {
		key string
		dst *[]float64
	}{{"means", &m.Meta.Means}, {"sds", &m.Meta.SDs}} {
		v, err := extraFloats(c, f.key, len(*f.dst))
		if err != nil {
			return err
		}
		if v != nil {
			*f.dst = v
		}
	}
	return m.SetNormalization(kind)
}

// extraValue is the checkpoint's top-level entry named key, or the zero
// value when there is none (as in the reference's files).
func extraValue[T any](c *checkpoint.Checkpoint, key string) (T, error) {
	var zero T
	raw, ok := c.Extra[key]
	if !ok {
		return zero, nil
	}
	v, ok := raw.(T)
	if !ok {
		return zero, fmt.Errorf("checkpoint entry %q is a %T, not a %T", key, raw, zero)
	}
	return v, nil
}

// extraFloats is a list of n floats stored under key, or nil when absent.
func extraFloats(c *checkpoint.Checkpoint, key string, n int) ([]float64, error) {
	l, err := extraValue[[]any](c, key)
	if err != nil || l == nil {
		return nil, err
	}
	out := make([]float64, len(l))
	for i, e := range l {
		f, ok := e.(float64)
		if !ok {
			return nil, fmt.Errorf("checkpoint entry %q holds a %T, not floats", key, e)
		}
		out[i] = f
	}
	if len(out) != n {
		return nil, fmt.Errorf("checkpoint entry %q has %d values, the model's input has %d channels", key, len(out), n)
	}
	return out, nil
}

// stateDict is the model's parameters and buffers in PyTorch's state_dict
// order: module by module, each module's parameters and then its buffers.
// (A module holding buffers but no parameters is placed right after the
// preceding buffers; the reference architectures have none.) Close the
// handles when done.
func (m *Model) stateDict() ([]torchbind.Named, error) {
	params, err := m.Parameters()
	if err != nil {
		return nil, err
	}
	bufs, err := m.Buffers()
	if err != nil {
		torchbind.CloseAll(params)
		return nil, err
	}
	left := map[string]int{} // each module's parameters not yet placed
	for _, p := range params {
		left[module(p.Name)]++
	}
	out := make([]torchbind.Named, 0, len(params)+len(bufs))
	i := 0
	for _, b := range bufs {
		for left[module(b.Name)] > 0 {
			left[module(params[i].Name)]--
			out = append(out, params[i])
			i++
		}
		out = append(out, b)
	}
	return append(out, params[i:]...), nil
}

// module is the dotted path of the module that holds a tensor.
func module(name string) string {
	layer, _ := splitName(name)
	return layer
}

// SaveCheckpoint writes m as the reference's checkpoint.pth.tar, atomically:
// {'epoch', 'arch', 'state_dict' (the reference's keys, in module order),
// 'optimizer' (SGD's state_dict; only when optim is not nil)} plus
// 'normalization', 'noise_sd', 'means' and 'sds' from m.Meta. The reference's
// scripts load it unchanged (torch.load, then model.load_state_dict and
// optimizer.load_state_dict), on machines without a GPU too.
func SaveCheckpoint(path string, m *Model, epoch int, optim *OptimizerState) error {
	sd, err := m.stateDict()
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	defer torchbind.CloseAll(sd)
	if optim != nil {
		if err := m.checkOptimizer(optim); err != nil {
			return fmt.Errorf("save checkpoint %s: %w", path, err)
		}
	}
	c := &torchbind.Checkpoint{Epoch: epoch, Arch: m.Meta.Arch, StateDict: sd, SGD: optim,
		Normalization: m.Meta.Normalization, NoiseSD: m.Meta.NoiseSD, Means: m.Meta.Means, SDs: m.Meta.SDs}
	return atomicfile.WriteWith(path, func(f *os.File) error { return torchbind.SaveCheckpoint(f.Name(), c) })
}

// checkOptimizer verifies that o has one momentum buffer slot per parameter,
// each nil or shaped like its parameter.
func (m *Model) checkOptimizer(o *OptimizerState) error {
	params, err := m.Parameters()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(params)
	if len(o.MomentumBuffers) != len(params) {
		return fmt.Errorf("optimizer has %d momentum buffers, the model %d parameters", len(o.MomentumBuffers), len(params))
	}
	for i, b := range o.MomentumBuffers {
		if b != nil && !slices.Equal(b.Shape(), params[i].T.Shape()) {
			return fmt.Errorf("momentum buffer %d is %v, parameter %s is %v", i, b.Shape(), params[i].Name, params[i].T.Shape())
		}
	}
	return nil
}

// LoadOptimizerState reads the SGD state of a checkpoint written by the
// reference or by SaveCheckpoint, for resuming the training of m (loaded
// from the same file): hyperparameters and momentum buffers, copied onto
// m's device.
func LoadOptimizerState(path string, m *Model) (*OptimizerState, error) {
	c, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	o, err := m.optimizerState(c.Optimizer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

func (m *Model) optimizerState(c *checkpoint.Optimizer) (*OptimizerState, error) {
	if c == nil {
		return nil, errors.New("no SGD optimizer state")
	}
	if len(c.Groups) != 1 {
		return nil, fmt.Errorf("optimizer has %d param groups; only one (the reference's) is supported", len(c.Groups))
	}
	g := c.Groups[0]
	o := &OptimizerState{LR: g.LR, Momentum: g.Momentum, Dampening: g.Dampening, WeightDecay: g.WeightDecay,
		Nesterov: g.Nesterov, MomentumBuffers: make([]*torchbind.Tensor, len(c.MomentumBuffers))}
	s := torchbind.NewScope()
	defer s.Close()
	for i, b := range c.MomentumBuffers {
		if b == nil {
			continue
		}
		v, err := toDevice(s, b, m.Device())
		if err != nil {
			o.Close()
			return nil, fmt.Errorf("momentum buffer %d: %w", i, err)
		}
		o.MomentumBuffers[i] = s.Keep(v)
	}
	if err := m.checkOptimizer(o); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// checkRegular refuses a model path that is not a regular file: opening a
// FIFO blocks until a writer comes, and a folder or device is no model.
func checkRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s): give the model file itself", path, st.Mode().Type())
	}
	return nil
}

// checkValues refuses weights that cannot make a classifier, which the
// optimised sampling path would otherwise turn silently into a constant
// class: a non-finite parameter or buffer, or a negative BatchNorm running
// variance.
func (m *Model) checkValues() error {
	sd, err := m.stateDict()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(sd)
	s := torchbind.NewScope()
	defer s.Close()
	for _, t := range sd {
		largest, err := s.Max(s.Abs(t.T)).Item()
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		if math.IsNaN(largest) || math.IsInf(largest, 0) {
			return fmt.Errorf("%s holds NaN or infinite values: the weights are broken (a diverged training?)", t.Name)
		}
		if strings.HasSuffix(t.Name, "running_var") {
			if negLowest, err := s.Max(s.Neg(t.T)).Item(); err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			} else if negLowest > 0 {
				return fmt.Errorf("%s holds a negative variance (%v): the BatchNorm statistics are broken", t.Name, -negLowest)
			}
		}
	}
	return nil
}
