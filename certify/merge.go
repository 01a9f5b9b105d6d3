package certify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Merge joins the logs of the shards of one run into a single log at out,
// in the reference's format, lines in index order. All shards must be
// complete logs of the same kind (certify or predict): a torn or damaged
// shard is an error (resume that shard first). No index may appear twice.
//
// With expect set, the merged indices must be exactly expect.Indices().
// Without it they must start at 0 (the first selected index always is) and
// be evenly spaced, which catches a missing shard or one that stopped early
// unless all shards stopped at the same point; give expect for a full check.
//
// The result is written to a temporary file beside out and renamed over it,
// so out is never left half written. Merge returns the number of lines.
func Merge(out string, shards []string, expect *Selection) (int, error) {
	if len(shards) == 0 {
		return 0, fmt.Errorf("merge: no shard files")
	}
	var (
		format logFormat
		all    []entry
		from   = map[int]string{}
	)
	for i, path := range shards {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("merge: %w", err)
		}
		f, err := detectFormat(data)
		if err != nil {
			return 0, fmt.Errorf("merge %s: %w", path, err)
		}
		if i == 0 {
			format = f
		} else if f.header != format.header {
			return 0, fmt.Errorf("merge: %s and %s are different kinds of log", shards[0], path)
		}
		entries, valid, err := scanLog(data, f)
		if err == nil && valid < len(data) {
			err = fmt.Errorf("torn or unparsable lines after byte %d; resume this shard first", valid)
		}
		if err != nil {
			return 0, fmt.Errorf("merge %s: %w", path, err)
		}
		for _, e := range entries {
			if other, dup := from[e.index]; dup {
				return 0, fmt.Errorf("merge: index %d is in both %s and %s", e.index, other, path)
			}
			from[e.index] = path
		}
		all = append(all, entries...)
	}
	slices.SortFunc(all, func(a, b entry) int { return a.index - b.index })
	if err := checkIndices(all, expect); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(format.header + "\n")
	for _, e := range all {
		buf.WriteString(e.line + "\n")
	}
	if err := writeFileAtomic(out, buf.Bytes()); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	return len(all), nil
}

// detectFormat picks the log kind by the header line.
func detectFormat(data []byte) (logFormat, error) {
	header, _, _ := bytes.Cut(data, []byte("\n"))
	for _, f := range logFormats {
		if string(header) == f.header {
			return f, nil
		}
	}
	return logFormat{}, fmt.Errorf("header %q is neither a certify nor a predict log's", header)
}

// checkIndices checks the sorted entries' indices against expect, or for
// a start at 0 and even spacing when expect is nil.
func checkIndices(all []entry, expect *Selection) error {
	if expect != nil {
		want, err := expect.Indices()
		if err != nil {
			return err
		}
		got := make(map[int]bool, len(all))
		for _, e := range all {
			got[e.index] = true
		}
		var missing []string
		for _, i := range want {
			if !got[i] {
				missing = append(missing, fmt.Sprint(i))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d expected indices are missing: %s", len(missing), len(want), abbreviate(missing))
		}
		if len(all) != len(want) {
			return fmt.Errorf("%d lines for %d expected indices: some indices are not in the selection", len(all), len(want))
		}
		return nil
	}
	if len(all) == 0 {
		return nil
	}
	if all[0].index != 0 {
		return fmt.Errorf("indices start at %d, not 0", all[0].index)
	}
	for i := 2; i < len(all); i++ {
		if all[i].index-all[i-1].index != all[1].index-all[0].index {
			return fmt.Errorf("uneven gaps: %d follows %d, but %d follows %d (missing indices?)",
				all[i].index, all[i-1].index, all[1].index, all[0].index)
		}
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

// writeFileAtomic writes data to a temporary file in path's folder, syncs
// it and renames it to path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
