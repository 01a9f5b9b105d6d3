// Package trainlog owns log.txt, the reference's training log: its header
// and lines as train_pgd.py writes them, its writer, the epochs a log holds,
// and the repair of a log before a resumed run appends to it. Pure Go: an
// experiment reads a run's progress without libtorch.
package trainlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/internal/pyfmt"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// File is the log, in a training's output directory.
const File = "log.txt"

// LastLineFile holds the log.txt line of the epoch being checkpointed,
// written just before the checkpoint: the checkpoint is saved before its line
// is appended to log.txt (so the log never claims an epoch the checkpoint
// lacks), and a run killed between the two gets the line back from here when
// it resumes.
const LastLineFile = "checkpoint_line.txt"

// Stats are one epoch's numbers, as log.txt records them (accuracies in percent).
type Stats struct {
	Epoch               int
	Time                time.Duration
	LR                  float64
	TrainLoss, TestLoss float64
	TrainAcc, TestAcc   float64
	TestAccNoisy        float64 // testaccNor: noisy clean inputs, with adversarial training
}

// Header is log.txt's first line; noisy adds the testaccNor column of
// adversarial training.
func Header(noisy bool) string {
	h := "epoch\ttime\tlr\ttrainloss\ttestloss\ttrainacc\ttestacc"
	if noisy {
		h += "\ttestaccNor"
	}
	return h
}

// Line is st's line under Header(noisy), without its newline, as
// train_pgd.py writes it: tab-separated, the time in Python's '{:.2f}' and
// the other numbers in '{:.3}'.
func Line(st Stats, noisy bool) string {
	vals := []float64{st.LR, st.TrainLoss, st.TestLoss, st.TrainAcc, st.TestAcc}
	if noisy {
		vals = append(vals, st.TestAccNoisy)
	}
	parts := []string{fmt.Sprint(st.Epoch), pyfmt.F(st.Time.Seconds(), 2)}
	for _, v := range vals {
		parts = append(parts, pyfmt.G(v, 3))
	}
	return strings.Join(parts, "\t")
}

// Writer appends epochs' lines to a log.
type Writer struct {
	f   *os.File
	dir string
}

// Create starts dir's log afresh with header (fresh) or opens it to append
// (a resumed run, after Resume).
func Create(dir, header string, fresh bool) (*Writer, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(filepath.Join(dir, File), flags, 0o644)
	if err != nil {
		return nil, err
	}
	if fresh {
		if _, err := fmt.Fprintln(f, header); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &Writer{f: f, dir: dir}, nil
}

// Pending saves the line of the epoch about to be checkpointed in
// LastLineFile: the checkpoint is written before its line is appended (so
// that the log never claims an epoch the checkpoint lacks), and Resume takes
// the line from there after a kill between the two.
func (w *Writer) Pending(line string) error {
	return atomicfile.Write(filepath.Join(w.dir, LastLineFile), []byte(line+"\n"))
}

// Append appends line and flushes it to disk.
func (w *Writer) Append(line string) error {
	if _, err := io.WriteString(w.f, line+"\n"); err != nil {
		return err
	}
	return w.f.Sync()
}

// Close closes the log.
func (w *Writer) Close() error { return w.f.Close() }

// Epochs returns the epochs of the complete lines of the log at path,
// whose header must be Header's without or with its noisy column. A missing
// or empty file has none; a torn last line does not count.
func Epochs(path string) (map[int]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	lines = lines[:len(lines)-1] // a torn line, or "" after the last newline
	if len(lines) == 0 {
		return nil, nil
	}
	if lines[0] != Header(false) && lines[0] != Header(true) {
		return nil, fmt.Errorf("%s: header %q, want %q", path, lines[0], Header(true))
	}
	out := map[int]bool{}
	for n, line := range lines[1:] {
		e, err := lineEpoch(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n+2, err)
		}
		out[e] = true
	}
	return out, nil
}

// Resume makes log.txt in dir hold the header and one line for each epoch
// up to last (the checkpoint's), before a resumed run appends to it. Lines of
// later epochs (a log written before its checkpoint, as the reference does)
// are cut, to be written again when those epochs are retrained; a line for
// epoch last that a kill kept out of the log comes from LastLineFile. Lines
// that cannot be recreated are reported on warn. Nothing is written when the
// log is already right, or when it is not a training log with this header.
func Resume(dir, header string, last int, warn io.Writer) error {
	path := filepath.Join(dir, File)
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
			path, strings.Join(missing, ", "), filepath.Join(dir, settings.CheckpointFile))
	}
	if bytes.Equal(fixed, old) {
		return nil
	}
	return atomicfile.Write(path, fixed)
}

// cutLog is Resume on the log's bytes: the fixed log and the epochs it
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
