package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LastLineFile holds the log.txt line of the epoch being checkpointed,
// written just before the checkpoint: the checkpoint is saved before its line
// is appended to log.txt (so the log never claims an epoch the checkpoint
// lacks), and a run killed between the two gets the line back from here when
// it resumes.
const LastLineFile = "checkpoint_line.txt"

// checkResumable refuses to resume a run that its record (run.json) says was
// trained with other settings deciding what the checkpoint's weights mean. A
// directory without a record (one the reference trained) is not checked.
func checkResumable(cfg Config) error {
	path := filepath.Join(cfg.OutDir, ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var rec struct {
		Config *Config `json:"config"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("resume: %s is not a training record: %w", path, err)
	}
	if rec.Config == nil {
		return fmt.Errorf("resume: %s is not a training record: it has no config", path)
	}
	if diffs := changedSettings(*rec.Config, cfg); len(diffs) > 0 {
		return fmt.Errorf("resume %s: settings differ from the run's (recorded in %s): %s; resume with the run's settings or train into a new directory",
			cfg.OutDir, path, strings.Join(diffs, "; "))
	}
	return nil
}

// changedSettings lists, as "name was RECORDED, now GIVEN", the settings of now
// that differ from was among those a resumed run must keep: the data, the
// model, the seed and everything that shapes the noise and the attack. The
// number of epochs (to train longer) and the optimiser's settings may change,
// as the reference allows. Attack settings count only with adversarial
// training on one side or the other, a method's own knobs only when one side
// trains with it.
func changedSettings(was, now Config) []string {
	was, now = was.Resolved(), now.Resolved()
	list := []setting{
		{"dataset", was.Dataset, now.Dataset},
		{"arch", was.Arch, now.Arch},
		{"seed", was.Seed, now.Seed},
		{"noise_sd", was.NoiseSD, now.NoiseSD},
		{"num_noise_vec", was.NumNoiseVec, now.NumNoiseVec},
		{"train_multi_noise", was.TrainMultiNoise, now.TrainMultiNoise},
		{"adv_training", was.AdvTraining, now.AdvTraining},
	}
	if was.AdvTraining || now.AdvTraining {
		list = append(list,
			setting{"attack", was.Attack, now.Attack},
			setting{"epsilon", was.Epsilon, now.Epsilon},
			setting{"num_steps", was.NumSteps, now.NumSteps},
			setting{"warmup", was.Warmup, now.Warmup},
			setting{"no_grad_attack", was.NoGradAttack, now.NoGradAttack},
			setting{"init_norm_ddn", was.InitNormDDN, now.InitNormDDN},
			setting{"gamma_ddn", was.GammaDDN, now.GammaDDN})
	}
	list = append(list, methodSettings(was, now)...)
	var diffs []string
	for _, s := range list {
		if s.was != s.now {
			diffs = append(diffs, fmt.Sprintf("%s was %s, now %s", s.name, show(s.was), show(s.now)))
		}
	}
	return diffs
}

// setting is one setting of a recorded run and of a resumed one.
type setting struct {
	name     string
	was, now any
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// resumeLog makes log.txt in dir hold the header and one line for each epoch
// up to last (the checkpoint's), before a resumed run appends to it. Lines of
// later epochs (a log written before its checkpoint, as the reference does)
// are cut, to be written again when those epochs are retrained; a line for
// epoch last that a kill kept out of the log comes from LastLineFile. Lines
// that cannot be recreated are reported on warn. Nothing is written when the
// log is already right, or when it is not a training log with this header.
func resumeLog(dir, header string, last int, warn io.Writer) error {
	path := filepath.Join(dir, LogFile)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resume: %w", err)
	}
	pending, err := os.ReadFile(filepath.Join(dir, LastLineFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resume: %w", err)
	}
	fixed, missing, err := cutLog(old, header, last, string(pending))
	if err != nil {
		return fmt.Errorf("resume: %s: %w", path, err)
	}
	if len(missing) > 0 {
		fmt.Fprintf(warn, "warning: %s has no line for epoch %s, which %s holds; "+
			"the numbers were not saved and cannot be recreated: the log goes on without them\n",
			path, strings.Join(missing, ", "), filepath.Join(dir, CheckpointFile))
	}
	if bytes.Equal(fixed, old) {
		return nil
	}
	return writeAtomic(path, fixed)
}

// cutLog is resumeLog on the log's bytes: the fixed log and the epochs it
// lacks. pending is LastLineFile's content. An epoch logged twice (a run
// resumed after a kill between the line and the checkpoint, by the reference
// or by an older smoothadv) keeps its later line, the one of the weights that
// went on. A last line without its newline was cut short by a kill: it is
// dropped.
func cutLog(old []byte, header string, last int, pending string) ([]byte, []string, error) {
	lines := strings.SplitAfter(string(old), "\n")
	if len(lines) > 0 && !strings.HasSuffix(lines[len(lines)-1], "\n") {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > 0 && strings.TrimSuffix(lines[0], "\n") != header {
		return nil, nil, fmt.Errorf("the first line is %q, not this run's header %q", strings.TrimSuffix(lines[0], "\n"), header)
	}
	byEpoch := map[int]string{}
	for n, l := range lines[min(1, len(lines)):] {
		e, err := lineEpoch(l)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", n+2, err)
		}
		byEpoch[e] = l
	}
	if _, ok := byEpoch[last]; !ok && pending != "" {
		if e, err := lineEpoch(pending); err == nil && e == last && strings.Count(pending, "\n") == 1 && strings.HasSuffix(pending, "\n") {
			byEpoch[last] = pending
		}
	}
	out := []byte(header + "\n")
	var missing []string
	for e := 0; e <= last; e++ {
		l, ok := byEpoch[e]
		if !ok {
			missing = append(missing, strconv.Itoa(e))
		}
		out = append(out, l...)
	}
	return out, missing, nil
}

// lineEpoch is the epoch in the first column of a log.txt line.
func lineEpoch(line string) (int, error) {
	first, _, _ := strings.Cut(line, "\t")
	e, err := strconv.Atoi(first)
	if err != nil || e < 0 {
		return 0, fmt.Errorf("%q is not a training log line (no epoch in its first column)", strings.TrimSuffix(line, "\n"))
	}
	return e, nil
}
