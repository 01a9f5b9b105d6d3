// Package models loads, creates and saves the classifiers: TorchScript files
// of the reference architectures (Sequential(NormalizeLayer, net), exported by
// export_models.py) together with the metadata that says what they are.
package models

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Meta describes a model; TorchScript files carry it as extra/smoothadv.json.
// The reference's checkpoints do not record the input layer or sigma, which
// led users to feed models through the wrong normalisation; ours do.
type Meta struct {
	Format     int     `json:"format"`
	Arch       string  `json:"arch"`
	Dataset    string  `json:"dataset"`
	NumClasses int     `json:"num_classes"`
	Input      []int64 `json:"input"` // C, H, W
	// Normalization is the input layer: "normalize" ((x - mean) / sd, the
	// reference's NormalizeLayer), "center" (x - mean, InputCenterLayer) or
	// "none" (x itself, as MACER's nets take their inputs).
	Normalization string    `json:"normalization"`
	Means         []float64 `json:"means"`
	SDs           []float64 `json:"sds"`
	NoiseSD       float64   `json:"noise_sd,omitempty"`
	Epoch         int       `json:"epoch,omitempty"`
}

// Model is a TorchScript classifier with its metadata.
type Model struct {
	*torchbind.Module
	Meta Meta
}

// Options say where and how to load a model.
type Options struct {
	Device string // "cpu" (default), "cuda:0", ...
	// Normalization, when set, replaces the model's input layer:
	// Normalize or Center. A file that records another layer is refused
	// unless ForceNormalization is set.
	Normalization      string
	ForceNormalization bool
	// Arch names the architecture of a file that does not say.
	Arch string
	// Fit, when set, is the data the model is loaded for: the model must
	// take its images and output its classes, which one forward pass at load
	// checks. It also lets a plain TorchScript file (no metadata, no Arch;
	// a user's torch.jit.trace or torch.jit.script model with its
	// normalisation inside) load, described by Fit.
	Fit *Fit
	// Dir holds the exported architectures; "" means TemplatesDir().
	Dir string
}

func (o Options) device() string {
	if o.Device == "" {
		return "cpu"
	}
	return o.Device
}

// TemplatesDir is where `make models` exported the architectures:
// $SMOOTHADV_MODELS, else build/models beside the binary's bin/ directory
// (or models beside it, for a second build's build/torch-2.11.0/bin), else
// build/models under the working directory.
func TemplatesDir() string {
	if d := os.Getenv("SMOOTHADV_MODELS"); d != "" {
		return d
	}
	if exe, err := os.Executable(); err == nil {
		for _, d := range []string{filepath.Join(filepath.Dir(exe), "..", "build", "models"), filepath.Join(filepath.Dir(exe), "..", "models")} {
			if _, err := os.Stat(filepath.Join(d, "manifest.json")); err == nil {
				return d
			}
		}
	}
	return filepath.Join("build", "models")
}

// Archs lists the architectures exported to dir.
func Archs(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("no exported architectures in %s (run make models): %w", dir, err)
	}
	var m struct {
		Models map[string]json.RawMessage `json:"models"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	var names []string
	for k := range m.Models {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

// LoadTorchScript loads a TorchScript model file. Files without our metadata
// (a user's own scripted or traced model) need opt.Arch to say what they
// are, or opt.Fit to be checked against.
func LoadTorchScript(path string, opt Options) (*Model, error) {
	mod, err := torchbind.LoadModule(path, opt.device())
	if err != nil {
		return nil, err
	}
	m := &Model{Module: mod}
	if err := m.describe(path, opt); err != nil {
		mod.Close()
		return nil, err
	}
	return m, nil
}

// metaSource says where a loaded TorchScript model's Meta came from.
type metaSource int

const (
	recordedMeta metaSource = iota // the file's extra/smoothadv.json
	archMeta                       // the exported architecture that Options.Arch names
	noMeta                         // nothing: a plain TorchScript file, described by Options.Fit
)

// describe fills in the metadata of a freshly loaded TorchScript model,
// applies the input layer asked for and checks the model against opt.Fit.
func (m *Model) describe(path string, opt Options) error {
	source, err := m.readMeta(path, opt)
	if err != nil {
		return err
	}
	if source == noMeta && opt.Normalization != "" {
		return fmt.Errorf("model %s has no smoothadv metadata, so its input layer is its own: --normalization cannot change it", path)
	}
	if source == noMeta {
		return m.checkFit(path, *opt.Fit, true)
	}
	recorded := ""
	if source == recordedMeta {
		recorded = m.Meta.Normalization
	}
	kind, err := chooseNormalization(path, recorded, opt)
	if err != nil {
		return err
	}
	if kind != "" && kind != m.Meta.Normalization {
		if err := m.SetNormalization(kind); err != nil {
			return err
		}
	}
	if opt.Fit != nil {
		return m.checkFit(path, *opt.Fit, false)
	}
	return nil
}

func (m *Model) readMeta(path string, opt Options) (metaSource, error) {
	if raw := m.Module.Meta(); raw != nil {
		if err := json.Unmarshal(raw, &m.Meta); err != nil {
			return 0, fmt.Errorf("%s: bad metadata: %w", path, err)
		}
		if err := m.Meta.check(opt.dir()); err != nil {
			return 0, fmt.Errorf("%s: bad metadata (extra/smoothadv.json): %w", path, err)
		}
		if opt.Arch != "" && opt.Arch != m.Meta.Arch {
			return 0, fmt.Errorf("%s is a %s model, not %s", path, m.Meta.Arch, opt.Arch)
		}
		return recordedMeta, nil
	}
	if opt.Arch == "" && opt.Fit != nil {
		m.Meta = Meta{Dataset: opt.Fit.Dataset, NumClasses: opt.Fit.NumClasses, Input: opt.Fit.Input}
		return noMeta, nil
	}
	if opt.Arch == "" {
		return 0, fmt.Errorf("%s has no smoothadv metadata: %w", path, ErrNoArch)
	}
	tmpl, err := templateMeta(opt.dir(), opt.Arch)
	if err != nil {
		return 0, err
	}
	m.Meta = tmpl
	return archMeta, nil
}

// metaFormat is the metadata format this package writes and reads.
const metaFormat = 1

// check refuses metadata that cannot describe a model: another format, an
// unknown input layer, statistics that do not fit the input, or an
// architecture whose exported template (in dir, when there) says otherwise.
func (mt Meta) check(dir string) error {
	switch {
	case mt.Format != metaFormat:
		return fmt.Errorf("format %d, want %d", mt.Format, metaFormat)
	case inputlayer.Check(mt.Normalization) != nil:
		return inputlayer.Check(mt.Normalization)
	case len(mt.Input) != 3 || mt.Input[0] < 1 || mt.Input[1] < 1 || mt.Input[2] < 1:
		return fmt.Errorf("input %v, want C, H, W", mt.Input)
	case mt.NumClasses < 1:
		return fmt.Errorf("num_classes %d, want >= 1", mt.NumClasses)
	case len(mt.Means) != int(mt.Input[0]) || len(mt.SDs) != int(mt.Input[0]):
		return fmt.Errorf("%d means and %d sds for %d channels", len(mt.Means), len(mt.SDs), mt.Input[0])
	}
	if tmpl, err := templateMeta(dir, mt.Arch); err == nil &&
		(tmpl.NumClasses != mt.NumClasses || !slices.Equal(tmpl.Input, mt.Input)) {
		return fmt.Errorf("arch %s takes %v inputs into %d classes, but the metadata says %v into %d", mt.Arch, tmpl.Input, tmpl.NumClasses, mt.Input, mt.NumClasses)
	}
	return nil
}

// chooseNormalization is the input layer to load a model behind:
// opt.Normalization when set, else recorded (what the file records; "" when
// it records nothing). A file records the layer its net was trained behind,
// so asking for the other one is refused unless opt.ForceNormalization.
func chooseNormalization(path, recorded string, opt Options) (string, error) {
	asked := opt.Normalization
	if asked == "" {
		return recorded, nil
	}
	if err := inputlayer.Check(asked); err != nil {
		return "", err
	}
	if recorded != "" && asked != recorded && !opt.ForceNormalization {
		return "", fmt.Errorf("model %s records the %s input layer (%s) but --normalization asks for %s (%s): the net was trained behind %s; pass --force-normalization to use %s anyway",
			path, recorded, inputlayer.ReferenceName(recorded), asked, inputlayer.ReferenceName(asked), inputlayer.ReferenceName(recorded), inputlayer.ReferenceName(asked))
	}
	return asked, nil
}

func (o Options) dir() string {
	if o.Dir == "" {
		return TemplatesDir()
	}
	return o.Dir
}

// templateMeta reads the metadata that export_models.py recorded for arch.
func templateMeta(dir, arch string) (Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return Meta{}, fmt.Errorf("no exported architectures in %s (run make models): %w", dir, err)
	}
	var m struct {
		Models map[string]struct {
			Meta Meta `json:"meta"`
		} `json:"models"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("%s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	e, ok := m.Models[arch]
	if !ok {
		names, _ := Archs(dir)
		return Meta{}, fmt.Errorf("unknown architecture %q (known: %s)", arch, strings.Join(names, ", "))
	}
	return e.Meta, nil
}

// New returns a freshly initialised model of an exported architecture,
// seeded: convolutions N(0, 2/(k*k*out)) as the reference ResNets (and
// torchvision's) initialise them, linear layers U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) as torch.nn.Linear, BatchNorm weight 1, bias 0 and fresh
// running statistics.
func New(arch string, seed uint64, opt Options) (*Model, error) {
	m, err := loadTemplate(arch, opt)
	if err != nil {
		return nil, err
	}
	if err := m.initialize(seed); err != nil {
		m.Close()
		return nil, fmt.Errorf("initialise %s: %w", arch, err)
	}
	return m, nil
}

// loadTemplate loads the exported TorchScript model of arch.
func loadTemplate(arch string, opt Options) (*Model, error) {
	if _, err := templateMeta(opt.dir(), arch); err != nil {
		return nil, err
	}
	// The input layer an untrained template records is a default, not
	// what a net was trained behind: any layer may be asked for.
	opt.ForceNormalization = true
	return LoadTorchScript(filepath.Join(opt.dir(), arch+".pt"), opt)
}

func (m *Model) initialize(seed uint64) error {
	g, err := torchbind.NewGenerator(m.Device(), seed)
	if err != nil {
		return err
	}
	defer g.Close()
	params, err := m.Parameters()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(params)
	bufs, err := m.Buffers()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(bufs)
	batchNorm := map[string]bool{}
	for _, b := range bufs {
		if prefix, ok := strings.CutSuffix(b.Name, ".running_mean"); ok {
			batchNorm[prefix] = true
		}
	}
	shapes := map[string][]int64{}
	for _, p := range params {
		shapes[p.Name] = p.T.Shape()
	}
	s := torchbind.NewScope()
	defer s.Close()
	for _, p := range params {
		layer, kind := splitName(p.Name)
		shape := shapes[p.Name]
		var v *torchbind.Tensor
		switch {
		case batchNorm[layer] && kind == "weight":
			v = s.OnesLike(p.T)
		case batchNorm[layer]:
			v = s.ZerosLike(p.T)
		case len(shape) == 4: // convolution [out, in, kh, kw]
			v = s.RandnLike(p.T, math.Sqrt(2/float64(shape[0]*shape[2]*shape[3])), g)
		default: // linear weight [out, in] and its bias
			fanIn := shapes[layer+".weight"][1]
			bound := 1 / math.Sqrt(float64(fanIn))
			v = s.AddScalar(s.MulScalar(s.Rand(g, m.Device(), shape...), 2*bound), -bound)
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if err := p.T.CopyFrom(v); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	for _, b := range bufs {
		_, kind := splitName(b.Name)
		v := s.ZerosLike(b.T)
		if kind == "running_var" {
			v = s.OnesLike(b.T)
		}
		if err := s.Err(); err != nil {
			return err
		}
		if err := b.T.CopyFrom(v); err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
	}
	return nil
}

// splitName splits a tensor's dotted name into the path of the module that
// holds it ("" at the top) and its own name.
func splitName(name string) (layer, kind string) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

// SetNormalization switches the input layer between NormalizeLayer,
// InputCenterLayer (NormalizeLayer with unit standard deviations) and none
// (zero means and unit deviations).
func (m *Model) SetNormalization(kind string) error {
	means, sds := m.Meta.Means, m.Meta.SDs
	ones := func() []float64 {
		v := make([]float64, len(m.Meta.Means))
		for i := range v {
			v[i] = 1
		}
		return v
	}
	switch kind {
	case inputlayer.Normalize:
		if len(sds) == 0 {
			return fmt.Errorf("model metadata has no standard deviations for %s", kind)
		}
	case inputlayer.Center:
		sds = ones()
	case inputlayer.None:
		means, sds = make([]float64, len(m.Meta.Means)), ones()
	default:
		return inputlayer.Check(kind)
	}
	for _, f := range []struct {
		path   string
		values []float64
	}{{"0.means", means}, {"0.sds", sds}} {
		if err := m.SetFloats(f.path, f.values); err != nil {
			return fmt.Errorf("set input layer to %s: %w", kind, err)
		}
	}
	// Meta keeps the dataset's means and deviations so the layer can switch back.
	m.Meta.Normalization = kind
	return nil
}

// Save writes the model with its metadata atomically (temporary file, then
// rename), so an interrupted save never leaves a torn file.
func (m *Model) Save(path string) error {
	meta, err := json.Marshal(m.Meta)
	if err != nil {
		return err
	}
	return atomicfile.WriteWith(path, func(f *os.File) error { return m.Module.Save(f.Name(), meta) })
}
