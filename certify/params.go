package certify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/internal/jsonerr"
	"github.com/smoothadv/smoothadv/internal/outputs"
)

// RunParams are the parameters of a certify or predict run. The reference's
// log format has no room for them, so they are recorded beside the log as
// LOG.json (ParamsPath), written before the log's first line. Resuming and
// merging compare them, so that lines made with different parameters are
// never mixed in one log.
type RunParams struct {
	Kind       string  `json:"kind"` // KindCertify or KindPredict
	Dataset    string  `json:"dataset"`
	Split      string  `json:"split"`
	DatasetLen int     `json:"dataset_len"` // examples in the split: with Skip and Max, the selection
	Skip       int     `json:"skip"`
	Max        int     `json:"max"`
	Shard      Shard   `json:"shard"`
	ModelHash  string  `json:"model_sha256"`  // of the model file
	Arch       string  `json:"arch"`          // as loaded
	Input      string  `json:"normalization"` // the input layer, as loaded
	Sigma      float64 `json:"sigma"`
	N0         int     `json:"N0,omitempty"` // certify only
	N          int     `json:"N"`
	Alpha      float64 `json:"alpha"`
	// Radius is the radius rule of a certify run: "" for the reference's,
	// or RadiusPB.
	Radius string `json:"radius,omitempty"`
	// TargetRadius > 0 marks an adaptive certify run, whose schedule of
	// looks is Adaptive (AdaptiveScheme); each example's number of samples
	// is in the samples file beside the log (SamplesPath).
	TargetRadius Targets `json:"target_radius,omitempty"`
	Adaptive     string  `json:"adaptive,omitempty"`
	Seed         uint64  `json:"seed"`
	Noise        string  `json:"noise"` // the scheme that draws the noise from the seed
	// Precision of the base classifier's forward passes (fp32, bf16, fp16):
	// another precision is another base classifier. Diff reads none (files
	// written before it was recorded) as fp32, which was all there was.
	Precision string  `json:"precision"`
	Attack    *Attack `json:"attack,omitempty"`

	// Informational: these may change when a run is resumed, as they do
	// not change its results (the model file is known by its hash).
	Model   string `json:"model"`
	DataDir string `json:"data_dir"`
	Device  string `json:"device"`
	Batch   int    `json:"batch"`
	Workers int    `json:"workers"`
	// Threads is each worker's intra-op threads: sums over other thread
	// counts may round otherwise, so a resume on another count says so.
	Threads     int  `json:"threads,omitempty"`
	Group       int  `json:"group"`
	Unoptimized bool `json:"unoptimized"`
	// ChannelsLast changes only the memory layout of the inputs (the
	// fp32 counts agree, see smoothing's tests).
	ChannelsLast bool `json:"channels_last"`
}

// Attack is the attack a predict run makes before PREDICT; radii in L2
// units (not the command line's 1/256).
type Attack struct {
	Kind         string  `json:"kind"` // PGD or DDN
	Epsilon      float64 `json:"epsilon"`
	Steps        int     `json:"steps"`
	NoiseVectors int     `json:"num_noise_vec"`
	Base         bool    `json:"base"`
	NoGrad       bool    `json:"no_grad"`
	InitNorm     float64 `json:"init_norm_ddn,omitempty"` // DDN only
	Gamma        float64 `json:"gamma_ddn,omitempty"`     // DDN only
}

// informational lists the RunParams keys that may differ between the
// parts of one run.
var informational = []string{"model", "data_dir", "device", "batch", "workers", "threads", "group", "unoptimized", "channels_last"}

// ParamsPath is the file that records the parameters of the log at path.
func ParamsPath(log string) string { return log + ".json" }

// WriteParams records p beside the log at path, atomically.
func WriteParams(log string, p RunParams) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(ParamsPath(log), append(b, '\n'))
}

// ReadParams reads the parameters recorded beside the log at path; ok is
// false when there are none.
func ReadParams(log string) (p RunParams, ok bool, err error) {
	path := ParamsPath(log)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return RunParams{}, false, nil
	}
	if err != nil {
		return RunParams{}, false, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return RunParams{}, false, fmt.Errorf("run parameters %s: %w", path, jsonerr.Describe(err))
	}
	if p.Kind != KindCertify && p.Kind != KindPredict {
		return RunParams{}, false, fmt.Errorf("run parameters %s: kind %q, want %s or %s", path, p.Kind, KindCertify, KindPredict)
	}
	return p, true, nil
}

// Diff lists the parameters in which p and q differ, leaving out the
// informational ones and the named keys (JSON names, "attack.kind" for
// nested ones), as "name: P (pName) vs Q (qName)".
func (p RunParams) Diff(q RunParams, pName, qName string, ignore ...string) []string {
	a, b := p.flatten(), q.flatten()
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // keys of b alone too: the same message every time
	var diff []string
	for _, k := range keys {
		if slices.Contains(informational, k) || slices.Contains(ignore, k) || a[k] == b[k] {
			continue
		}
		diff = append(diff, fmt.Sprintf("%s: %s (%s) vs %s (%s)", k, orNone(a[k]), pName, orNone(b[k]), qName))
	}
	return diff
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// flatten maps each parameter's JSON name (parent.child when nested) to
// its JSON value.
func (p RunParams) flatten() map[string]string {
	if p.Precision == "" {
		p.Precision = "fp32"
	}
	b, _ := json.Marshal(p) // plain structs: cannot fail
	var tree map[string]json.RawMessage
	_ = json.Unmarshal(b, &tree)
	out := map[string]string{}
	for k, v := range tree {
		var sub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) == nil {
			for sk, sv := range sub {
				out[k+"."+sk] = string(sv)
			}
			continue
		}
		out[k] = string(v)
	}
	return out
}

// MarshalText writes a shard as "i/n".
func (sh Shard) MarshalText() ([]byte, error) { return []byte(sh.String()), nil }

// UnmarshalText reads "i/n".
func (sh *Shard) UnmarshalText(b []byte) error {
	first, second, ok := strings.Cut(string(b), "/")
	i, errI := strconv.Atoi(first)
	n, errN := strconv.Atoi(second)
	if !ok || errI != nil || errN != nil {
		return fmt.Errorf("shard %q: want i/n", b)
	}
	v := Shard{Index: i, Count: n}
	if err := v.validate(); err != nil {
		return fmt.Errorf("shard %q: %w", b, err)
	}
	*sh = v
	return nil
}

// OpenOptions say how OpenRunLog treats a log that is already there.
type OpenOptions struct {
	// Resume continues the log's lines, which must have been made with the
	// same parameters.
	Resume bool
	// Unchecked resumes also a log with no recorded parameters.
	Unchecked bool
	// Overwrite replaces a log whose recorded parameters are another run's.
	Overwrite bool
}

// OpenRunLog opens the log at path for a run with parameters p, keeping the
// record of its parameters (ParamsPath) in step, and refuses anything that
// would mix results of different runs in one log, destroy another run's
// results, or write over the model:
//
//   - No output (the log, its parameters, its samples file) may be the
//     model file, through links or other spellings.
//   - The log is locked for this run until Close: a second run on the same
//     log is refused at once. Temporary files of killed runs are removed.
//   - Without resume, the old log is removed, the parameters recorded and
//     the log created, replacing any old ones, as the reference overwrites
//     its log; in that order, so that a run killed between two steps never
//     leaves old lines under new parameters. A log that holds lines of a run
//     with other recorded parameters is refused unless o.Overwrite.
//   - With resume, a log that already holds lines must have been written
//     with the same parameters (but for informational ones such as the
//     device and batch size): a difference is refused, naming each
//     parameter. A log without recorded parameters (the Python reference's,
//     or an older smoothadv's) is refused unless o.Unchecked, because
//     nothing can be checked. A refused log and its parameters are left as
//     they were. A missing or empty log starts afresh.
//
// The log itself is opened as OpenLog opens it. A samples file left beside
// it by an earlier adaptive run is removed unless p is adaptive too.
func OpenRunLog[R Record](path string, p RunParams, o OpenOptions) (_ *Log[R], _ Done, err error) {
	var zero R
	format := zero.format()
	if p.Shard == (Shard{}) {
		p.Shard = Whole // the zero Shard, as elsewhere
	}
	if p.Kind != format.kind {
		return nil, Done{}, fmt.Errorf("run parameters of kind %q for a %s log", p.Kind, format.kind)
	}
	if err := outputs.CheckFile("output file", path); err != nil {
		return nil, Done{}, err
	}
	err = outputs.CheckDistinct([]outputs.File{{Role: "the model file", Path: p.Model}},
		[]outputs.File{{Role: "output file", Path: path}, {Role: "output file", Path: ParamsPath(path)}, {Role: "output file", Path: SamplesPath(path)}})
	if err != nil {
		return nil, Done{}, err
	}
	lock, err := outputs.Take(path, false)
	if err != nil {
		return nil, Done{}, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	if err := outputs.RemoveStaleTemps(ParamsPath(path)); err != nil {
		return nil, Done{}, err
	}
	resume := o.Resume || o.Unchecked
	if resume {
		if err := checkResume(path, format, p, o.Unchecked); err != nil {
			return nil, Done{}, err
		}
		if err := WriteParams(path, p); err != nil {
			return nil, Done{}, err
		}
	} else {
		if !o.Overwrite {
			if err := checkNotAnotherRun(path, format, p); err != nil {
				return nil, Done{}, err
			}
		}
		// The old lines go before the new parameters are recorded, so that
		// a run killed between the two leaves no lines under the wrong ones.
		if err := removeStale(path); err != nil {
			return nil, Done{}, err
		}
		if err := WriteParams(path, p); err != nil {
			return nil, Done{}, err
		}
	}
	// Only an adaptive run has a samples file (see OpenSamples).
	if !p.TargetRadius.Adaptive() {
		if err := removeStale(SamplesPath(path)); err != nil {
			return nil, Done{}, err
		}
	}
	log, done, err := OpenLog[R](path, resume)
	if err != nil {
		return nil, Done{}, err
	}
	log.lock = lock
	return log, done, nil
}

// checkNotAnotherRun refuses to start a fresh run over a log that holds
// lines of a run whose recorded parameters differ from p: its results would
// be lost. A log without recorded parameters (the reference's) is replaced,
// as the reference replaces its logs.
func checkNotAnotherRun(path string, format logFormat, p RunParams) error {
	entries, _, err := readEntries(path, format)
	if err != nil || len(entries) == 0 {
		return nil // nothing readable to lose: the log is recreated
	}
	old, ok, err := ReadParams(path)
	if err != nil || !ok {
		return nil
	}
	if diff := old.Diff(p, "the log", "now"); len(diff) > 0 {
		return fmt.Errorf("%s holds %d lines of another run (recorded in %s):\n  %s\n"+
			"certify into another file, or pass --overwrite to replace them", path, len(entries), ParamsPath(path), strings.Join(diff, "\n  "))
	}
	return nil
}

// checkResume refuses to resume the log at path for a run with parameters
// p when the lines it holds may come from another run.
func checkResume(path string, format logFormat, p RunParams, unchecked bool) error {
	entries, _, err := readEntries(path, format)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	old, ok, err := ReadParams(path)
	if err != nil {
		return fmt.Errorf("resume %s: %w", path, err)
	}
	if !ok {
		if unchecked {
			return nil
		}
		return fmt.Errorf("resume %s: its run parameters (%s) are missing, so nothing says that its %d lines were made with these parameters "+
			"(a log of the Python reference or of an older smoothadv has none); --resume-unchecked continues it anyway",
			path, ParamsPath(path), len(entries))
	}
	if diff := old.Diff(p, "the log", "now"); len(diff) > 0 {
		return fmt.Errorf("resume %s: its %d lines were made with other parameters (recorded in %s):\n  %s\n"+
			"certify into another file, or start over without --resume", path, len(entries), ParamsPath(path), strings.Join(diff, "\n  "))
	}
	return nil
}
