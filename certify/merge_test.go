package certify

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// certifyLine is a valid certify log line for index i.
func certifyLine(i int) string {
	return CertifyRecord{Index: i, Label: i % 10, Predict: i % 10, Radius: 0.5, Elapsed: 1500000000}.Line() + "\n"
}

// writeShards writes the shards of sel as logs in dir, each holding the
// lines of its part, and returns their paths.
func writeShards(t *testing.T, dir string, sel Selection, n int) []string {
	t.Helper()
	var paths []string
	for i := range n {
		part, err := sel.Shard(Shard{i, n})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString(CertifyHeader + "\n")
		for _, idx := range part {
			b.WriteString(certifyLine(idx))
		}
		path := filepath.Join(dir, fmt.Sprintf("shard%d", i))
		writeFile(t, path, b.String())
		paths = append(paths, path)
	}
	return paths
}

func TestMergeJoinsShardsInOrder(t *testing.T) {
	dir := t.TempDir()
	sel := Selection{DatasetLen: 100, Skip: 20, Max: -1}
	paths := writeShards(t, dir, sel, 3)
	var want strings.Builder
	want.WriteString(CertifyHeader + "\n")
	for _, i := range []int{0, 20, 40, 60, 80} {
		want.WriteString(certifyLine(i))
	}
	for _, expect := range []*Selection{&sel, nil} {
		out := filepath.Join(dir, "merged")
		n, err := Merge(out, paths, expect)
		if err != nil || n != 5 {
			t.Fatalf("Merge: %d lines, %v", n, err)
		}
		if got := readFile(t, out); got != want.String() {
			t.Errorf("merged %q, want %q", got, want.String())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".merged.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestMergeRefuses(t *testing.T) {
	sel := Selection{DatasetLen: 100, Skip: 10, Max: -1}
	for _, tt := range []struct {
		name   string
		edit   func(t *testing.T, paths []string) []string
		expect *Selection
	}{
		{"overlap", func(t *testing.T, p []string) []string { return append(p, p[0]) }, nil},
		{"missing shard 0", func(t *testing.T, p []string) []string { return p[1:] }, nil},
		{"missing middle shard", func(t *testing.T, p []string) []string { return []string{p[0], p[2]} }, nil},
		{"missing shard, expected set", func(t *testing.T, p []string) []string { return p[:2] }, &sel},
		{"shard stopped early", func(t *testing.T, p []string) []string {
			// Drop shard 1's last line: 0..90 with 70 missing.
			data := readFile(t, p[1])
			lines := strings.SplitAfter(data, "\n")
			writeFile(t, p[1], strings.Join(lines[:len(lines)-2], ""))
			return p
		}, nil},
		{"outside the selection", func(t *testing.T, p []string) []string {
			writeFile(t, p[0], readFile(t, p[0])+certifyLine(5))
			return p
		}, &sel},
		{"torn shard", func(t *testing.T, p []string) []string {
			writeFile(t, p[0], readFile(t, p[0])+"95\t1")
			return p
		}, nil},
		{"mixed kinds", func(t *testing.T, p []string) []string {
			writeFile(t, p[0], PredictHeader+"\n")
			return p
		}, nil},
		{"no shards", func(*testing.T, []string) []string { return nil }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := tt.edit(t, writeShards(t, dir, sel, 3))
			out := filepath.Join(dir, "merged")
			if n, err := Merge(out, paths, tt.expect); err == nil {
				t.Fatalf("Merge wrote %d lines; want an error", n)
			} else {
				t.Log(err)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output exists after a refused merge (%v)", err)
			}
		})
	}
}
