// Package experiment runs a whole experiment from one YAML file: a grid of
// training configurations, each trained, certified and analysed, then a
// table, an upper envelope and a plot over all of them. It is pure Go: it
// reads, checks and plans without libtorch, and hands the training and
// certification to a Worker (package experiment/libtorch's runs them).
//
//	version: 1
//	name: fashion_demo                 # the experiment's folder under the output folder
//	data:
//	  dataset: fashion-mnist           # cifar10, imagenet, imagenet32 or fashion-mnist
//	  data_dir: ""                     # default: the dataset's usual place; relative to this file
//	model:
//	  arch: fashion_cnn
//	  normalization: ""                # normalize, center or none; default: the architecture's
//	training:                          # every knob of settings.Config, under the reference's names
//	  epochs: 3
//	  noise_sd: 0.25
//	  adv_training: true
//	  attack: PGD
//	  epsilon: 64                      # 1/256 units, as the reference's --epsilon
//	certification:                     # CERTIFY (Cohen et al.); the reference's defaults
//	  sigma: 0.25                      # default: training.noise_sd
//	  N0: 100
//	  N: 100000
//	  alpha: 0.001
//	  batch: 1000
//	  skip: 1
//	  max: -1
//	  split: test
//	  target_radius: [0.25, 0.5]      # adaptive CERTIFY at these radii; "analysis": the table's; none: fixed N
//	analysis:
//	  radii: "0:2.25:0.25"             # START:STOP:STEP, stop included
//	  formats: [markdown, latex]       # latex, markdown, csv or text
//	  plot: true
//	  compare_at: 0.5                  # two runs only: a sentence on which certifies more at r = 0.5
//	grid:                              # optional: every combination is one run
//	  training.noise_sd: [0.12, 0.25]
//	  training.num_steps: [2, 4]
//
// The grid maps knob paths (section.key, any key of data, model, training or
// certification) to lists of values; the runs are the cartesian product, the
// first knob varying slowest. grid may also be a list of such mappings: their
// runs are joined in order, which expresses sets that are not one product
// (the paper's 1-step PGD and 2-step DDN ImageNet runs, say). A run that
// repeats an earlier one is dropped.
//
// Decoding is strict: an unknown key, a value of the wrong type and every
// invalid setting are reported together. Defaults are settings.Defaults(), the
// reference's certify defaults (CertifyDefaults) and AnalysisDefaults.
// Relative paths in the file (data_dir, pretrained_model, unlabelled_path)
// are relative to the file's folder.
//
// # Layout
//
// Under OUT/NAME, each run has a folder named after its settings, like the
// reference's result folders:
//
//	gaussian/noise_0.25                          Gaussian augmentation (Cohen et al.)
//	PGD_2steps/m2/eps_64/noise_0.25              SmoothAdv: attack, steps, m_train, epsilon (1/256 units), sigma
//	macer/m16/noise_0.25                         MACER, consistency, SmoothMix (training.method): m_train, sigma
//	consistency/PGD_2steps/m2/eps_64/noise_0.25  consistency on SmoothAdv's attack (adv_training)
//
// followed by one KNOB_VALUE folder for every other knob that the grid
// varies (lr_0.05, arch_cifar_resnet20). Certification knobs that the grid
// varies add cert_KNOB_VALUE folders below the training folder, so that runs
// that differ only in how they are certified share one training. A run
// folder holds:
//
//	log.txt, checkpoint.pth.tar, run.json    training (in the training folder)
//	config.yaml                              the run's resolved configuration
//	SPLIT/sigma_SIGMA                        the certify log, as the reference names it
//	certified_accuracy.{md,tex,...}          the run's certified accuracy at the radii
//
// and OUT/NAME holds experiment.yaml (the resolved experiment, grid
// included), analysis.yaml (the analysis spec over every certified run, for
// smoothadv analyze -c), certified_accuracy.*, envelope.*, best_models.txt
// and certified_accuracy.png.
package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/internal/devicename"
	"github.com/smoothadv/smoothadv/internal/noiselevel"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// Version is the only experiment file version this package reads.
const Version = 1

// Config is an experiment file.
type Config struct {
	Version       int             `yaml:"version"`
	Name          string          `yaml:"name"`
	Data          Data            `yaml:"data"`
	Model         Model           `yaml:"model"`
	Training      settings.Config `yaml:"training"`
	Certification Certification   `yaml:"certification"`
	Analysis      Analysis        `yaml:"analysis"`
	Grid          yaml.Node       `yaml:"grid,omitempty"`
}

// Data says which dataset to train and certify on.
type Data struct {
	Dataset string `yaml:"dataset"`
	DataDir string `yaml:"data_dir,omitempty"`
}

// Model says which architecture to train, or which existing model files to
// certify without training.
type Model struct {
	Arch          string `yaml:"arch"`
	Normalization string `yaml:"normalization,omitempty"` // inputlayer.Normalize, inputlayer.Center or inputlayer.None
	// Checkpoint, when set, is a model file to certify instead of training
	// one: a reference checkpoint.pth.tar (legacy or zip), MACER's
	// {'net', 'epoch'} (with arch) or our TorchScript. A glob pattern makes
	// one run per file; the grid may list paths too. Relative to
	// checkpoint_root when that is set, else to the experiment file.
	Checkpoint string `yaml:"checkpoint,omitempty"`
	// CheckpointRoot is the folder checkpoints are found under, such as
	// the reference's pretrained_models/; $VARIABLES in it are expanded.
	CheckpointRoot string `yaml:"checkpoint_root,omitempty"`
}

// Certification is how each trained model is certified.
type Certification struct {
	Sigma   *float64 `yaml:"sigma,omitempty"` // nil: the training noise_sd
	N0      int      `yaml:"N0"`
	N       int      `yaml:"N"`
	Alpha   float64  `yaml:"alpha"`
	Batch   int      `yaml:"batch"`
	Skip    int      `yaml:"skip"`
	Max     int      `yaml:"max"`
	Split   string   `yaml:"split"`
	Seed    uint64   `yaml:"seed"`
	Device  string   `yaml:"device,omitempty"` // "": the training device
	Workers int      `yaml:"workers"`          // 0: one per CPU core on a CPU
	// TargetRadius certifies adaptively, at a radius, a list of radii or
	// the analysis table's ("analysis"); none: a fixed N, as the reference.
	TargetRadius TargetSpec `yaml:"target_radius,omitempty"`
}

// Analysis is what is computed from the certify logs.
type Analysis struct {
	Radii   string   `yaml:"radii"`
	Formats []string `yaml:"formats"`
	Plot    bool     `yaml:"plot"`
	// CompareAt, in an experiment of two runs, is the radius at which a
	// sentence says which run certifies more of the same images.
	CompareAt *float64 `yaml:"compare_at,omitempty"`
}

// CertifyDefaults are the reference's certify.py defaults.
func CertifyDefaults() Certification {
	return Certification{N0: 100, N: 100000, Alpha: 0.001, Batch: 1000, Skip: 1, Max: -1, Split: data.Test}
}

// AnalysisDefaults are the radii of the paper's figures, a markdown and a
// LaTeX table, and a plot.
func AnalysisDefaults() Analysis {
	return Analysis{Radii: "0:2.25:0.25", Formats: []string{string(analysis.Markdown), string(analysis.LaTeX)}, Plot: true}
}

// defaults is what an experiment file starts from before it is decoded.
func defaults() Config {
	return Config{Training: settings.Defaults(), Certification: CertifyDefaults(), Analysis: AnalysisDefaults()}
}

// Experiment is a loaded experiment: the file with its defaults filled in,
// and its runs.
type Experiment struct {
	Config Config
	Runs   []Run
	source string // where it was read from, for messages
}

// DefaultMaxRuns caps the runs of an experiment's grid unless the caller
// raises it: a grid of a million runs (a typo in a list, say) would take
// minutes and gigabytes just to plan.
const DefaultMaxRuns = 10000

// Load reads and checks the experiment file at path; its grid may have up
// to maxRuns runs (0: DefaultMaxRuns).
func Load(path string, maxRuns int) (*Experiment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return Parse(b, path, filepath.Dir(path), maxRuns)
}

// Parse decodes and checks an experiment file's contents. source names it
// in messages; relative paths in it are relative to dir.
func Parse(b []byte, source, dir string, maxRuns int) (*Experiment, error) {
	cfg := defaults()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var problems []string
	if err := dec.Decode(&cfg); err != nil {
		var typeErr *yaml.TypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%s: empty file", source)
		case errors.As(err, &typeErr):
			problems = append(problems, yamlProblems(typeErr)...)
			// A key given twice stops the decoder before anything is set,
			// so the other checks would only report its defaults.
			if slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "already defined") }) {
				return nil, fmt.Errorf("%s: %d problem(s):\n  %s", source, len(problems), strings.Join(problems, "\n  "))
			}
		default:
			return nil, fmt.Errorf("%s: %w", source, err)
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		problems = append(problems, "more than one YAML document")
	}
	if err := cfg.resolvePaths(dir); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	problems = append(problems, cfg.checkExperiment()...)
	grids, gridProblems := parseGrid(&cfg.Grid)
	problems = append(problems, gridProblems...)
	if maxRuns <= 0 {
		maxRuns = DefaultMaxRuns
	}
	if n := gridRuns(grids); n > maxRuns {
		problems = append(problems, fmt.Sprintf("grid: %d runs, more than the limit of %d (raise it with --max-runs if you mean it)", n, maxRuns))
		return nil, fmt.Errorf("%s: %d problem(s):\n  %s", source, len(problems), strings.Join(problems, "\n  "))
	}
	runs, runProblems := expand(cfg, grids, dir)
	problems = append(problems, runProblems...)
	if len(runProblems) == 0 {
		problems = append(problems, cfg.Analysis.compareProblems(len(runs))...)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %d problem(s):\n  %s", source, len(problems), strings.Join(problems, "\n  "))
	}
	return &Experiment{Config: cfg, Runs: runs, source: source}, nil
}

// yamlProblems are the decoder's messages with Go type names replaced by the
// file's section names.
func yamlProblems(err *yaml.TypeError) []string {
	names := strings.NewReplacer(
		"in type experiment.Config", "at the top level",
		"in type experiment.Data", "in data",
		"in type experiment.Model", "in model",
		"in type settings.Config", "in training",
		"in type experiment.Certification", "in certification",
		"in type experiment.Analysis", "in analysis",
	)
	out := make([]string, len(err.Errors))
	for i, e := range err.Errors {
		out[i] = names.Replace(e)
	}
	return out
}

// resolvePaths makes the file's relative paths (and the grid's, once it
// has set them) relative to dir, and absolute; a checkpoint is relative to
// the checkpoint root, when there is one.
func (c *Config) resolvePaths(dir string) error {
	if root := c.Model.CheckpointRoot; root != "" {
		expanded, err := expandEnv(root)
		if err != nil {
			return fmt.Errorf("model.checkpoint_root: %w", err)
		}
		c.Model.CheckpointRoot = expanded
		if c.Model.Checkpoint != "" && !filepath.IsAbs(c.Model.Checkpoint) {
			c.Model.Checkpoint = filepath.Join(expanded, c.Model.Checkpoint)
		}
	}
	for _, p := range []*string{&c.Data.DataDir, &c.Training.PretrainedModel, &c.Training.UnlabelledPath, &c.Model.CheckpointRoot, &c.Model.Checkpoint} {
		if *p == "" || filepath.IsAbs(*p) {
			continue
		}
		abs, err := filepath.Abs(filepath.Join(dir, *p))
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// expandEnv expands $VARIABLES, refusing one that is not set.
func expandEnv(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, "$"+name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: %s not set", s, strings.Join(missing, ", "))
	}
	return out, nil
}

// validName is a name that is one folder and needs no quoting in a shell.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ownedByRunner are training knobs that the experiment sets itself, from
// the file's other sections or its own layout.
var ownedByRunner = map[string]string{
	"dataset":       "set data.dataset instead",
	"data_dir":      "set data.data_dir instead",
	"arch":          "set model.arch instead",
	"normalization": "set model.normalization instead",
	"outdir":        "the experiment names each run's folder",
	"resume":        "the runner resumes unfinished runs itself",
}

// checkExperiment lists the problems of the settings that the grid cannot
// change.
func (c *Config) checkExperiment() []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if c.Version == 0 {
		bad("version: missing, want %d", Version)
	} else if c.Version != Version {
		bad("version: %d, want %d", c.Version, Version)
	}
	if !validName.MatchString(c.Name) {
		bad("name: %q, want letters, digits, '.', '_' or '-' (it names the experiment's folder)", c.Name)
	}
	for _, key := range slices.Sorted(maps.Keys(ownedByRunner)) {
		if !c.Training.Knob(key).IsZero() {
			bad("training.%s: %s; remove it", key, ownedByRunner[key])
		}
	}
	if _, err := analysis.ParseRadii(c.Analysis.Radii); err != nil {
		bad("analysis.radii: %v", err)
	}
	if len(c.Analysis.Formats) == 0 {
		bad("analysis.formats: empty, want at least one of %v", analysis.Formats)
	}
	for i, f := range c.Analysis.Formats {
		if _, err := analysis.ParseFormat(f); err != nil {
			bad("analysis.formats[%d]: %v", i, err)
		} else if slices.Index(c.Analysis.Formats, f) < i {
			bad("analysis.formats[%d]: %s listed twice", i, f)
		}
	}
	return problems
}

// resolve fills in the defaults that depend on other settings: sigma is
// the training noise, the certification device the training device, and
// the method agrees with adv_training (settings.Config.Resolved). A run
// without adversarial training does not use the attack knobs, nor a run
// the knobs of other methods; they are set to base's, so that runs that
// differ only in them are one run.
func (c *Config) resolve(base Config) {
	c.Training = c.Training.Resolved()
	for method, keys := range settings.MethodKnobs {
		if method == c.Training.Method {
			continue
		}
		for _, key := range keys {
			c.Training.Knob(key).Set(base.Training.Knob(key))
		}
	}
	if c.Certification.Sigma == nil {
		sigma := c.Training.NoiseSD
		c.Certification.Sigma = &sigma
	}
	if c.Certification.Device == "" {
		c.Certification.Device = c.Training.Device
	}
	if !c.Training.AdvTraining {
		for _, key := range settings.AttackKnobs {
			c.Training.Knob(key).Set(base.Training.Knob(key))
		}
	}
}

// checkRun lists the problems of one resolved run's settings.
func (c *Config) checkRun() []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if c.Data.Dataset == "" {
		bad("data.dataset: missing")
	} else if !slices.Contains(data.Names(), c.Data.Dataset) {
		bad("data.dataset: %q, want one of %v", c.Data.Dataset, data.Names())
	}
	if c.Model.Checkpoint != "" {
		if st, err := os.Stat(c.Model.Checkpoint); err != nil || !st.Mode().IsRegular() {
			bad("model.checkpoint: %s is no model file", c.Model.Checkpoint)
		}
	} else if c.Model.Arch == "" {
		bad("model.arch: missing")
	}
	// trainProblems reports model.normalization and training.device too.
	problems = append(problems, trainProblems(c.trainConfig("run"))...)
	ct := c.Certification
	if err := noiselevel.CheckCertify(*ct.Sigma); err != nil {
		bad("certification.sigma %v (it defaults to training.noise_sd)", err)
	}
	if err := devicename.Check(ct.Device); err != nil {
		bad("certification.device: %v", err)
	}
	if ct.N0 < 1 {
		bad("certification.N0: %d, want >= 1", ct.N0)
	}
	if ct.N < 1 {
		bad("certification.N: %d, want >= 1", ct.N)
	}
	if !(ct.Alpha > 0 && ct.Alpha < 1) {
		bad("certification.alpha: %v, want in (0, 1)", ct.Alpha)
	}
	if ct.Batch < 1 {
		bad("certification.batch: %d, want >= 1", ct.Batch)
	}
	if ct.Skip < 1 {
		bad("certification.skip: %d, want >= 1", ct.Skip)
	}
	if ct.Max < -1 {
		bad("certification.max: %d, want >= -1 (-1: all)", ct.Max)
	}
	if ct.Split != data.Train && ct.Split != data.Test {
		bad("certification.split: %q, want %s or %s", ct.Split, data.Train, data.Test)
	}
	if ct.Workers < 0 {
		bad("certification.workers: %d, want >= 0 (0: one per CPU core)", ct.Workers)
	}
	if _, err := ct.TargetRadius.targets(c.Analysis.Radii); err != nil {
		bad("certification.target_radius: %v", err)
	}
	return problems
}

// trainConfig is the run's training configuration, training into outDir.
func (c *Config) trainConfig(outDir string) settings.Config {
	t := c.Training
	t.Dataset, t.DataDir = c.Data.Dataset, c.Data.DataDir
	t.Arch, t.Normalization = c.Model.Arch, c.Model.Normalization
	t.OutDir = outDir
	return t
}

// trainProblems are the training settings' problems, each under the name
// the experiment file gives its knob.
func trainProblems(cfg settings.Config) []string {
	where := map[string]string{"dataset": "data.dataset", "data_dir": "data.data_dir", "arch": "model.arch", "normalization": "model.normalization"}
	var out []string
	for _, p := range cfg.Problems() {
		switch {
		case p.Key == "":
			out = append(out, "training: "+p.Msg)
		case p.Key == "dataset" || p.Key == "arch":
			// Missing; checkRun has said so under the file's name for it.
		case where[p.Key] != "":
			out = append(out, where[p.Key]+": "+p.Msg)
		default:
			out = append(out, "training."+p.Key+": "+p.Msg)
		}
	}
	return out
}

// clone returns a copy of c that shares no memory that decoding writes to.
func (c Config) clone() Config {
	if c.Certification.Sigma != nil {
		s := *c.Certification.Sigma
		c.Certification.Sigma = &s
	}
	c.Analysis.Formats = slices.Clone(c.Analysis.Formats)
	c.Certification.TargetRadius.Radii = slices.Clone(c.Certification.TargetRadius.Radii)
	if c.Analysis.CompareAt != nil {
		r := *c.Analysis.CompareAt
		c.Analysis.CompareAt = &r
	}
	return c
}

// Marshal encodes c as the experiment file it resolves to: every default
// filled in, and without the training knobs that the runner owns.
func (c Config) Marshal() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode experiment: %w", err)
	}
	if training := mappingValue(&doc, "training"); training != nil {
		var kept []*yaml.Node
		for i := 0; i+1 < len(training.Content); i += 2 {
			if _, owned := ownedByRunner[training.Content[i].Value]; !owned {
				kept = append(kept, training.Content[i], training.Content[i+1])
			}
		}
		training.Content = kept
	}
	doc.HeadComment = "Resolved by smoothadv run: every default filled in."
	return encodeYAML(&doc)
}

// encodeYAML encodes v as YAML indented by two spaces, as the files in
// configs/ are.
func encodeYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return b.Bytes(), nil
}

// mappingValue returns the value of key in mapping node n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
