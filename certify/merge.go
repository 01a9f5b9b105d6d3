package certify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/internal/outputs"
)

// Merge joins the logs of the shards of one run into a single log at out,
// in the reference's format, lines in index order. All shards must be
// complete logs of the same kind (certify or predict): a torn or damaged
// shard is an error (resume that shard first). No index may appear twice,
// and out may not be one of the shards.
//
// Shards written by smoothadv have their run parameters beside them (see
// RunParams): they must agree on every parameter but the shard and the
// informational ones, every part i/n must be there exactly once, and each
// shard must hold exactly its examples. The merged log gets run parameters
// of its own, as part 0/1, written before it. expect, when given, must
// agree with the shards' selection.
//
// Logs without run parameters (the Python reference's, or an older
// smoothadv's) need expect, the run's selection: the merged indices must
// then be exactly expect.Indices(), and the merged log has no run
// parameters either.
//
// The shards of an adaptive run (a target radius in their run parameters)
// must each have their samples file (SamplesPath) holding exactly their
// examples; the merged log gets the joined one.
//
// Nothing is written unless every check passes (and ctx is not done by
// then), and out is written atomically, after its sidecars and with any old
// log gone first, so that a kill never leaves an old log under the new
// parameters. out is locked while it is written, and none of its files may
// be a shard's. Merge returns the number of lines.
func Merge(ctx context.Context, out string, shards []string, expect *Selection) (int, error) {
	if len(shards) == 0 {
		return 0, fmt.Errorf("merge: no shard files")
	}
	if err := outputs.CheckFile("merge: the output", out); err != nil {
		return 0, err
	}
	var inputs []outputs.File
	for _, path := range shards {
		inputs = append(inputs, outputs.File{Role: "the shard", Path: path}, outputs.File{Role: "the shard's parameters", Path: ParamsPath(path)},
			outputs.File{Role: "the shard's samples", Path: SamplesPath(path)})
	}
	err := outputs.CheckDistinct(inputs, []outputs.File{{Role: "merge: the output", Path: out},
		{Role: "merge: the output's parameters", Path: ParamsPath(out)}, {Role: "merge: the output's samples", Path: SamplesPath(out)}})
	if err != nil {
		return 0, err
	}
	lock, err := outputs.Take(out, false)
	if err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	defer lock.Release()
	logs := make([]shardLog, len(shards))
	var all []entry
	from := map[int]string{}
	for i, path := range shards {
		l, err := readShard(path)
		if err != nil {
			return 0, fmt.Errorf("merge %s: %w", path, err)
		}
		if i > 0 && l.format.kind != logs[0].format.kind {
			return 0, fmt.Errorf("merge: %s and %s are different kinds of log", shards[0], path)
		}
		for _, e := range l.entries {
			if other, dup := from[e.index]; dup {
				return 0, fmt.Errorf("merge: index %d is in both %s and %s", e.index, other, path)
			}
			from[e.index] = path
		}
		logs[i] = l
		all = append(all, l.entries...)
	}
	merged, err := checkShards(logs, expect)
	if err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	samples, err := mergeSamples(logs, merged)
	if err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	slices.SortFunc(all, func(a, b entry) int { return a.index - b.index })
	var buf bytes.Buffer
	buf.WriteString(logs[0].format.header + "\n")
	for _, e := range all {
		buf.WriteString(e.line + "\n")
	}
	if err := ctx.Err(); err != nil {
		return 0, err // stopped before writing anything
	}
	if err := outputs.RemoveStaleTemps(out); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	// An old log goes first, then the run parameters and samples (or none:
	// not an old merge's), then the log.
	if err := removeStale(out); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if merged != nil {
		err = WriteParams(out, *merged)
	} else {
		err = removeStale(ParamsPath(out))
	}
	if err == nil && samples != nil {
		err = atomicfile.Write(SamplesPath(out), samples)
	} else if err == nil {
		err = removeStale(SamplesPath(out))
	}
	if err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if err := atomicfile.Write(out, buf.Bytes()); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	return len(all), nil
}

// removeStale removes the file at path, if there is one.
func removeStale(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// shardLog is one shard's complete log and its run parameters, if any.
type shardLog struct {
	path    string
	format  logFormat
	entries []entry
	params  *RunParams
}

// readShard reads a shard's log, which must be complete, and its run
// parameters.
func readShard(path string) (shardLog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return shardLog{}, err
	}
	header, _, _ := bytes.Cut(data, []byte("\n"))
	f, err := formatOf(string(header))
	if err != nil {
		return shardLog{}, err
	}
	entries, valid, err := scanLog(data, f)
	if err == nil && valid < len(data) {
		err = fmt.Errorf("torn or unparsable lines after byte %d; resume this shard first", valid)
	}
	if err != nil {
		return shardLog{}, err
	}
	l := shardLog{path: path, format: f, entries: entries}
	p, ok, err := ReadParams(path)
	if err != nil {
		return shardLog{}, err
	}
	if ok {
		if p.Kind != f.kind {
			return shardLog{}, fmt.Errorf("a %s log, but its run parameters (%s) are a %s run's", f.kind, ParamsPath(path), p.Kind)
		}
		l.params = &p
	}
	return l, nil
}

// checkShards checks that the shards make up one whole run and returns the
// merged log's run parameters (nil for shards without any).
func checkShards(logs []shardLog, expect *Selection) (*RunParams, error) {
	first := logs[0]
	for _, l := range logs[1:] {
		if (l.params == nil) != (first.params == nil) {
			with, without := first, l
			if l.params != nil {
				with, without = l, first
			}
			return nil, fmt.Errorf("%s has run parameters (%s) but %s has none: they are not shards of one run",
				with.path, ParamsPath(with.path), without.path)
		}
	}
	if first.params == nil {
		if expect == nil {
			return nil, fmt.Errorf("%s has no run parameters (%s), as logs of the Python reference or of an older smoothadv do: "+
				"give the run's --n (examples in the split), --skip and --max so that the merged indices can be checked",
				first.path, ParamsPath(first.path))
		}
		want, err := expect.Indices()
		if err != nil {
			return nil, err
		}
		var all []entry
		for _, l := range logs {
			all = append(all, l.entries...)
		}
		return nil, compareIndices(all, want, "the merged logs")
	}

	p := *first.params
	n := p.Shard.Count
	sel := Selection{DatasetLen: p.DatasetLen, Skip: p.Skip, Max: p.Max}
	if expect != nil && *expect != sel {
		return nil, fmt.Errorf("--n %d --skip %d --max %d, but the shards' run parameters say %d, %d, %d",
			expect.DatasetLen, expect.Skip, expect.Max, sel.DatasetLen, sel.Skip, sel.Max)
	}
	byPart := map[int]string{}
	for _, l := range logs {
		q := *l.params
		if diff := p.Diff(q, first.path, l.path, "shard"); len(diff) > 0 {
			return nil, fmt.Errorf("%s and %s are not shards of one run:\n  %s", first.path, l.path, strings.Join(diff, "\n  "))
		}
		if q.Shard.Count != n {
			return nil, fmt.Errorf("%s is part %s but %s is part %s: not shards of one run", first.path, p.Shard, l.path, q.Shard)
		}
		if other, dup := byPart[q.Shard.Index]; dup {
			return nil, fmt.Errorf("%s and %s are both part %s", other, l.path, q.Shard)
		}
		byPart[q.Shard.Index] = l.path
		want, err := sel.Shard(q.Shard)
		if err != nil {
			return nil, err
		}
		if err := compareIndices(l.entries, want, fmt.Sprintf("part %s (%s)", q.Shard, l.path)); err != nil {
			return nil, fmt.Errorf("%w: resume that shard first", err)
		}
	}
	var missing []string
	for i := range n {
		if _, ok := byPart[i]; !ok {
			missing = append(missing, Shard{Index: i, Count: n}.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the run has %d parts, but part(s) %s are not among the shards given", n, abbreviate(missing))
	}
	p.Shard = Whole
	return &p, nil
}

// compareIndices checks that entries hold exactly the indices want; what
// names the entries in errors.
func compareIndices(entries []entry, want []int, what string) error {
	got := make(map[int]bool, len(entries))
	for _, e := range entries {
		got[e.index] = true
	}
	var missing []string
	for _, i := range want {
		if !got[i] {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %d of %d expected indices are missing: %s", what, len(missing), len(want), abbreviate(missing))
	}
	wanted := make(map[int]bool, len(want))
	for _, i := range want {
		wanted[i] = true
	}
	var extra []string
	for _, e := range entries {
		if !wanted[e.index] {
			extra = append(extra, fmt.Sprint(e.index))
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%s: indices outside the selection: %s", what, abbreviate(extra))
	}
	return nil
}

// abbreviate joins up to 10 items and says how many more there are.
func abbreviate(items []string) string {
	if len(items) <= 10 {
		return strings.Join(items, " ")
	}
	return fmt.Sprintf("%s ... (%d more)", strings.Join(items[:10], " "), len(items)-10)
}
