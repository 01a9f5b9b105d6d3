package certify

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
)

// An adaptive certify run (CertifyParams.TargetRadius > 0) uses a different
// number of estimation samples for each example. The reference's log has
// no column for it, so it is recorded beside the log, in LOG.samples
// (SamplesPath): the header SamplesHeader, then one line "idx<TAB>samples"
// per example.

// SamplesHeader is the header of a samples file.
const SamplesHeader = "idx\tsamples"

// SamplesPath is the samples file of the log at path.
func SamplesPath(log string) string { return log + ".samples" }

// SamplesLog appends to a samples file one line at a time, each in a
// single write. A run writes an example's samples line before its log
// line, so the samples file holds every example of the log.
type SamplesLog struct {
	lineFile
}

// OpenSamples opens the samples file of the log at path, for a run that
// opened the log with OpenRunLog and found done in it. Without resume it is
// created with its header, replacing an old one. With resume the lines of
// the examples in done are kept and the others dropped (a run stopped
// between an example's two lines leaves a samples line for an example that
// the log does not hold, or a torn line); an example of done without a line
// is an error.
func OpenSamples(log string, done Done, resume bool) (*SamplesLog, error) {
	path := SamplesPath(log)
	if !resume {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("create samples file: %w", err)
		}
		l := &SamplesLog{lineFile{f, "samples file"}}
		if err := l.writeLine(SamplesHeader); err != nil {
			f.Close()
			return nil, err
		}
		return l, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume samples file: %w", err)
	}
	// A torn last line is cut off; every complete line must be good.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	samples, err := parseSamples(data, path, recordedN(log))
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	var b strings.Builder
	b.WriteString(SamplesHeader + "\n")
	for _, i := range slices.Sorted(maps.Keys(done.set)) {
		n, ok := samples[i]
		if !ok {
			return nil, fmt.Errorf("resume: %s has no line for example %d, which the log %s holds: the samples file is damaged or from another run; start over without --resume",
				path, i, log)
		}
		b.WriteString(samplesLine(i, n) + "\n")
	}
	if err := atomicfile.Write(path, []byte(b.String())); err != nil {
		return nil, fmt.Errorf("resume samples file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("resume samples file: %w", err)
	}
	return &SamplesLog{lineFile{f, "samples file"}}, nil
}

func samplesLine(index, samples int) string { return fmt.Sprintf("%d\t%d", index, samples) }

// Write appends the number of estimation samples of one example.
func (l *SamplesLog) Write(index, samples int) error {
	return l.writeLine(samplesLine(index, samples))
}

// ReadSamples reads the samples file of the log at path strictly: the
// number of estimation samples of each example, by dataset index.
func ReadSamples(log string) (map[int]int, error) {
	path := SamplesPath(log)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%s: the last line is torn (resume the run)", path)
	}
	return parseSamples(data, path, recordedN(log))
}

// recordedN is the N of the run recorded beside the log, the most samples
// an example can use; 0 when no run is recorded.
func recordedN(log string) int {
	p, ok, err := ReadParams(log)
	if err != nil || !ok {
		return 0
	}
	return p.N
}

// parseSamples reads the complete lines of a samples file: the header (none
// in an empty file), then lines of an index and a number of samples, no
// index twice, and no number above maxN (when it is not 0: the run's N).
func parseSamples(data []byte, name string, maxN int) (map[int]int, error) {
	out := map[int]int{}
	lines := strings.Split(string(data), "\n")
	for k, line := range lines[:max(len(lines)-1, 0)] {
		if k == 0 {
			if line != SamplesHeader {
				return nil, fmt.Errorf("%s:1: header %q, want %q", name, line, SamplesHeader)
			}
			continue
		}
		first, second, ok := strings.Cut(line, "\t")
		i, errI := strconv.Atoi(first)
		n, errN := strconv.Atoi(second)
		if !ok || errI != nil || errN != nil || i < 0 || n < 1 {
			return nil, fmt.Errorf("%s:%d: %q is not an index and a number of samples", name, k+1, line)
		}
		if maxN > 0 && n > maxN {
			return nil, fmt.Errorf("%s:%d: example %d used %d samples, more than the run's N = %d", name, k+1, i, n, maxN)
		}
		if _, dup := out[i]; dup {
			return nil, fmt.Errorf("%s:%d: index %d is on an earlier line too", name, k+1, i)
		}
		out[i] = n
	}
	return out, nil
}

// mergeSamples joins the samples files of the shards of an adaptive run
// (merged, the merged run parameters, has a target radius) into the
// content of the merged samples file; nil for other runs. Each shard's file
// must hold exactly the examples of its log.
func mergeSamples(logs []shardLog, merged *RunParams) ([]byte, error) {
	if merged == nil || !merged.TargetRadius.Adaptive() {
		return nil, nil
	}
	all := map[int]int{}
	for _, l := range logs {
		samples, err := ReadSamples(l.path)
		if err != nil {
			return nil, fmt.Errorf("%s is a shard of an adaptive run: %w", l.path, err)
		}
		want := make([]int, 0, len(l.entries))
		for _, e := range l.entries {
			want = append(want, e.index)
		}
		var got []entry
		for i := range samples {
			got = append(got, entry{index: i})
		}
		if err := compareIndices(got, want, SamplesPath(l.path)); err != nil {
			return nil, fmt.Errorf("%w (the examples of %s)", err, l.path)
		}
		maps.Copy(all, samples)
	}
	var b bytes.Buffer
	b.WriteString(SamplesHeader + "\n")
	for _, i := range slices.Sorted(maps.Keys(all)) {
		b.WriteString(samplesLine(i, all[i]) + "\n")
	}
	return b.Bytes(), nil
}
