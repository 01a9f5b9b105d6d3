package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
)

// Stage is one step of a run.
type Stage string

// The stages, in the order they run.
const (
	Train   Stage = "train"
	Certify Stage = "certify"
	Analyze Stage = "analyze"
)

// Stages lists the stages in the order they run.
var Stages = []Stage{Train, Certify, Analyze}

// ParseStage checks that s names a stage.
func ParseStage(s string) (Stage, error) {
	if i := slices.Index(Stages, Stage(s)); i >= 0 {
		return Stages[i], nil
	}
	return "", fmt.Errorf("stage %q: want one of %v", s, Stages)
}

// Files the runner writes.
const (
	ExperimentFile = "experiment.yaml" // the resolved experiment, in its folder
	RunConfigFile  = "config.yaml"     // a run's resolved configuration, in the run's folder
	AnalysisFile   = "analysis.yaml"   // the analysis spec over the certified runs
)

// Worker does the expensive work of the train and certify stages; the
// runner decides what is left to do. Package experiment/libtorch's is the
// one that trains and certifies.
type Worker interface {
	// Train trains as cfg says (its device as the user wrote it), resuming
	// from cfg.OutDir when cfg.Resume is set, and reports each epoch to out.
	Train(ctx context.Context, cfg settings.Config, out io.Writer) error
	// Certify certifies the model file with the run's settings into the
	// certify log, keeping the lines the log already has.
	Certify(ctx context.Context, run Run, model, log string) error
	// Rank places the worker's process in a data-parallel job of world
	// processes; alone, it is rank 0 of 1.
	Rank() (rank, world int)
}

// Options say where an experiment runs and what to do.
type Options struct {
	Out  string    // the results folder; the experiment's is Out/Name
	Only Stage     // "" runs every stage
	Log  io.Writer // progress and tables; nil discards them
	// Worker trains and certifies. In a data-parallel job every process
	// trains every run together, then rank 0 alone certifies and analyses.
	Worker Worker
}

// runner runs one experiment's stages.
type runner struct {
	exp     *Experiment
	dir     string // the experiment's folder
	log     io.Writer
	worker  Worker
	leader  bool                        // rank 0, or alone: writes the experiment's files, certifies and analyses
	group   bool                        // one of several processes of a data-parallel job
	lengths map[[3]string]datasetLength // by dataset, data folder, split
}

// datasetLength is a dataset split's length, or why it could not be opened.
type datasetLength struct {
	n   int
	err error
}

func newRunner(e *Experiment, o Options) *runner {
	rank, world := 0, 1 // a plan has no worker
	if o.Worker != nil {
		rank, world = o.Worker.Rank()
	}
	x := &runner{exp: e, dir: filepath.Join(o.Out, e.Config.Name), log: o.Log, worker: o.Worker,
		leader: rank == 0, group: world > 1, lengths: map[[3]string]datasetLength{}}
	if x.log == nil || !x.leader {
		x.log = io.Discard
	}
	return x
}

// Run trains, certifies and analyses every run, skipping what is already
// done and resuming what was cut short, then analyses the experiment: a
// table over the runs, their upper envelope and a plot.
func (e *Experiment) Run(ctx context.Context, o Options) error {
	if o.Worker == nil {
		return errors.New("experiment: no worker to train and certify")
	}
	x := newRunner(e, o)
	if x.leader {
		if err := os.MkdirAll(x.dir, 0o755); err != nil {
			return err
		}
		if err := writeConfig(filepath.Join(x.dir, ExperimentFile), e.Config); err != nil {
			return err
		}
	}
	if x.group {
		// Certifying between trainings would keep the other processes
		// waiting (past the group's timeout): every run is trained first.
		if o.Only == "" || o.Only == Train {
			if err := x.runAll(ctx, Train); err != nil {
				return err
			}
		}
		if !x.leader || o.Only == Train {
			return nil
		}
	}
	if err := x.runAll(ctx, o.Only); err != nil {
		return err
	}
	if o.Only == "" || o.Only == Analyze {
		if err := x.analyzeExperiment(); err != nil {
			return fmt.Errorf("experiment analysis: %w", err)
		}
	}
	return nil
}

// runAll runs the stages of every run (only one when only is set).
func (x *runner) runAll(ctx context.Context, only Stage) error {
	for i, r := range x.exp.Runs {
		fmt.Fprintf(x.log, "[%d/%d] %s\n", i+1, len(x.exp.Runs), r.Rel)
		if err := x.run(ctx, r, only); err != nil {
			return fmt.Errorf("run %s: %w", r.Rel, err)
		}
	}
	return nil
}

func (x *runner) run(ctx context.Context, r Run, only Stage) error {
	if err := x.checkRecorded(r); err != nil {
		return err
	}
	if only != Analyze {
		if err := x.record(r); err != nil {
			return err
		}
	}
	for _, s := range Stages {
		if only != "" && s != only {
			continue
		}
		var err error
		switch s {
		case Train:
			err = x.train(ctx, r)
		case Certify:
			err = x.certify(ctx, r)
		case Analyze:
			err = x.analyze(r)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// train trains the run unless its log has every epoch and its checkpoint
// is there; a cut-short training resumes from its checkpoint.
func (x *runner) train(ctx context.Context, r Run) error {
	if ckpt := r.Config.Model.Checkpoint; ckpt != "" {
		fmt.Fprintf(x.log, "  train: none, certifies %s\n", ckpt)
		return nil
	}
	epochs := r.Config.Training.Epochs
	done, checkpoint, err := x.trainProgress(r)
	if err != nil {
		return err
	}
	if done == epochs && checkpoint {
		fmt.Fprintf(x.log, "  train: done (%d/%d epochs), skipped\n", done, epochs)
		return nil
	}
	cfg := r.Config.trainConfig(r.TrainDir(x.dir))
	cfg.Resume = done > 0 && checkpoint
	if cfg.Resume {
		fmt.Fprintf(x.log, "  train: resuming after %d/%d epochs in %s\n", done, epochs, cfg.OutDir)
	} else {
		fmt.Fprintf(x.log, "  train: %d epochs in %s\n", epochs, cfg.OutDir)
	}
	if err := x.worker.Train(ctx, cfg, x.log); err != nil {
		return err
	}
	if done, checkpoint, err = x.trainProgress(r); err != nil {
		return err
	}
	if done != epochs || !checkpoint {
		return fmt.Errorf("training returned with %d of %d epochs logged (checkpoint written: %t)", done, epochs, checkpoint)
	}
	return nil
}

// certify certifies the trained model unless the certify log has a line
// for every selected example; a cut-short log is continued.
func (x *runner) certify(ctx context.Context, r Run) error {
	epochs := r.Config.Training.Epochs
	if r.Config.Model.Checkpoint != "" {
		// An existing model: nothing to train.
	} else if done, checkpoint, err := x.trainProgress(r); err != nil {
		return err
	} else if done != epochs || !checkpoint {
		return fmt.Errorf("not trained yet (%d of %d epochs, checkpoint written: %t): run the train stage first", done, epochs, checkpoint)
	}
	done, total, err := x.certifyProgress(r)
	if err != nil {
		return err
	}
	path := r.CertifyLog(x.dir)
	if done == total {
		fmt.Fprintf(x.log, "  certify: done (%d/%d examples), skipped\n", done, total)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	ct := r.Config.Certification
	fmt.Fprintf(x.log, "  certify: %d of %d examples left (N0=%d, N=%d, sigma=%v) into %s\n", total-done, total, ct.N0, ct.N, r.Sigma(), path)
	if err := x.worker.Certify(ctx, r, r.ModelFile(x.dir), path); err != nil {
		return err
	}
	if done, total, err = x.certifyProgress(r); err != nil {
		return err
	}
	if done != total {
		return fmt.Errorf("certification returned with %d of %d examples in %s", done, total, path)
	}
	return nil
}

// trainProgress counts the epochs in the run's training log and says
// whether its checkpoint is there.
func (x *runner) trainProgress(r Run) (epochs int, checkpoint bool, err error) {
	dir := r.TrainDir(x.dir)
	logged, err := trainlog.Epochs(filepath.Join(dir, trainlog.File))
	if err != nil {
		return 0, false, err
	}
	for e := range logged {
		if e < r.Config.Training.Epochs {
			epochs++
		}
	}
	_, err = os.Stat(filepath.Join(dir, settings.CheckpointFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, false, err
	}
	return epochs, err == nil, nil
}

// certifyProgress counts the selected examples that the run's certify log
// has a line for, and the selected examples.
func (x *runner) certifyProgress(r Run) (done, total int, err error) {
	selected, err := x.selected(r.Config)
	if err != nil {
		return 0, 0, err
	}
	logged, err := certify.ReadDone[certify.CertifyRecord](r.CertifyLog(x.dir))
	if err != nil {
		return 0, 0, err
	}
	for _, i := range selected {
		if logged.Contains(i) {
			done++
		}
	}
	return done, len(selected), nil
}

// selected returns the examples a run certifies.
func (x *runner) selected(c Config) ([]int, error) {
	ct := c.Certification
	key := [3]string{c.Data.Dataset, c.Data.DataDir, ct.Split}
	l, ok := x.lengths[key]
	if !ok {
		ds, err := data.Open(c.Data.Dataset, c.Data.DataDir, ct.Split)
		if err == nil {
			l.n = ds.Len()
		}
		l.err = err
		x.lengths[key] = l
	}
	if l.err != nil {
		return nil, l.err
	}
	return certify.Selection{DatasetLen: l.n, Skip: ct.Skip, Max: ct.Max}.Indices()
}

// checkRecorded fails when the run's folder holds results made with
// settings that change results (outcome), so that a changed experiment
// never skips or continues work done under the old settings.
func (x *runner) checkRecorded(r Run) error {
	path := filepath.Join(r.Dir(x.dir), RunConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := Parse(b, path, filepath.Dir(path), 0)
	if err != nil {
		return err
	}
	if len(old.Runs) != 1 {
		return fmt.Errorf("%s: holds %d runs, want one", path, len(old.Runs))
	}
	if diff := outcomeDiff(old.Runs[0].Config, r.Config); len(diff) > 0 {
		return fmt.Errorf("%s holds results of other settings (%s); move it away or pick another output folder",
			r.Dir(x.dir), strings.Join(diff, "; "))
	}
	return nil
}

// record writes the run's resolved configuration into its folder (in a
// group, rank 0 does).
func (x *runner) record(r Run) error {
	if !x.leader {
		return nil
	}
	dir := r.Dir(x.dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeConfig(filepath.Join(dir, RunConfigFile), r.Config)
}

func writeConfig(path string, c Config) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// outcome is c without the knobs that leave results as they are: where the
// data lies, devices, workers, the certify batch size, how often training
// prints, and the analysis, which is always redone.
func (c Config) outcome() Config {
	c.Data.DataDir = ""
	c.Model.CheckpointRoot, c.Model.Checkpoint = "", "" // the certify log's run parameters know the model by its hash
	c.Training.Device, c.Training.Workers, c.Training.PrintFreq = "", 0, 0
	c.Certification.Device, c.Certification.Workers, c.Certification.Batch = "", 0, 0
	c.Analysis = Analysis{}
	return c
}

// outcomeDiff lists the knobs whose values differ between the outcomes of
// old and new, as "section.key: old -> new".
func outcomeDiff(old, new Config) []string {
	a, b := flatten(old.outcome()), flatten(new.outcome())
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var diff []string
	for _, k := range keys {
		if a[k] != b[k] {
			diff = append(diff, fmt.Sprintf("%s: %s -> %s", k, a[k], b[k]))
		}
	}
	return diff
}

// flatten maps each scalar knob of c (section.key) to its value as YAML
// writes it.
func flatten(c Config) map[string]string {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, v := doc.Content[i].Value, doc.Content[i+1]
		if v.Kind == yaml.ScalarNode {
			out[key] = v.Value
		}
		for j := 0; v.Kind == yaml.MappingNode && j+1 < len(v.Content); j += 2 {
			out[key+"."+v.Content[j].Value] = nodeText(v.Content[j+1])
		}
	}
	return out
}

// nodeText is a knob's value as one line: a scalar's text, or a list's
// values in brackets (certification.target_radius: [0.25, 0.5]).
func nodeText(n *yaml.Node) string {
	if n.Kind != yaml.SequenceNode {
		return n.Value
	}
	vals := make([]string, len(n.Content))
	for i, c := range n.Content {
		vals[i] = nodeText(c)
	}
	return "[" + strings.Join(vals, ", ") + "]"
}
