package certify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/filetest"
)

// certifyLine is a valid certify log line for index i.
func certifyLine(i int) string {
	return CertifyRecord{Index: i, Label: i % 10, Predict: i % 10, Radius: 0.5, Elapsed: 1500000000}.Line() + "\n"
}

// testParams are run parameters of a certify run over sel.
func testParams(sel Selection, sh Shard) RunParams {
	return RunParams{Kind: KindCertify, Dataset: "cifar10", Split: "test", DatasetLen: sel.DatasetLen, Skip: sel.Skip, Max: sel.Max,
		Shard: sh, ModelHash: "abc", Arch: "cifar_resnet20", Input: "normalize", Sigma: 0.25, N0: 100, N: 1000, Alpha: 0.001,
		Seed: 3, Noise: "test-noise", Model: "model.pt", Device: "cpu", Batch: 400}
}

// writeShards writes the shards of sel as logs in dir, each holding the
// lines of its part, with their run parameters when params is set, and
// returns their paths.
func writeShards(t *testing.T, dir string, sel Selection, n int, params bool) []string {
	t.Helper()
	var paths []string
	for i := range n {
		sh := Shard{i, n}
		part, err := sel.Shard(sh)
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
		if params {
			p := testParams(sel, sh)
			p.Device = fmt.Sprintf("cuda:%d", i) // informational: may differ
			if err := WriteParams(path, p); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, path)
	}
	return paths
}

func TestMergeJoinsShardsInOrder(t *testing.T) {
	sel := Selection{DatasetLen: 100, Skip: 20, Max: -1}
	var want strings.Builder
	want.WriteString(CertifyHeader + "\n")
	for _, i := range []int{0, 20, 40, 60, 80} {
		want.WriteString(certifyLine(i))
	}
	for _, tt := range []struct {
		name   string
		params bool
		expect *Selection
	}{
		{"run parameters", true, nil},
		{"run parameters and the same selection", true, &sel},
		{"no run parameters, selection given", false, &sel},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := writeShards(t, dir, sel, 3, tt.params)
			// Any order of the shards gives the same log.
			paths[0], paths[2] = paths[2], paths[0]
			out := filepath.Join(dir, "merged")
			// An earlier merge's run parameters, which must not outlive it.
			if err := WriteParams(out, testParams(Selection{DatasetLen: 7, Skip: 1, Max: -1}, Whole)); err != nil {
				t.Fatal(err)
			}
			n, err := Merge(context.Background(), out, paths, tt.expect)
			if err != nil || n != 5 {
				t.Fatalf("Merge: %d lines, %v", n, err)
			}
			if got := filetest.Read(t, out); got != want.String() {
				t.Errorf("merged %q, want %q", got, want.String())
			}
			p, ok, err := ReadParams(out)
			if err != nil || ok != tt.params {
				t.Fatalf("merged run parameters: %v, %v; want them: %v", ok, err, tt.params)
			}
			if ok {
				wantP := testParams(sel, Whole)
				wantP.Device = "cuda:2" // from the first shard given
				if !reflect.DeepEqual(p, wantP) {
					t.Errorf("merged run parameters %+v, want %+v", p, wantP)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".merged*.tmp-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestMergeRefuses(t *testing.T) {
	sel := Selection{DatasetLen: 100, Skip: 10, Max: -1}
	for _, tt := range []struct {
		name   string
		params bool
		edit   func(t *testing.T, paths []string) []string
		expect *Selection
		want   string
	}{
		{"overlap", true, func(t *testing.T, p []string) []string { return append(p, p[0]) }, nil,
			"index 0 is in both"},
		{"missing shard 0", true, func(t *testing.T, p []string) []string { return p[1:] }, nil,
			"the run has 3 parts, but part(s) 0/3 are not among the shards given"},
		{"missing middle shard", true, func(t *testing.T, p []string) []string { return []string{p[0], p[2]} }, nil,
			"part(s) 1/3 are not"},
		{"one shard of two", true, func(t *testing.T, p []string) []string { return p[:1] }, nil,
			"part(s) 1/3 2/3 are not"},
		{"shard stopped early", true, func(t *testing.T, p []string) []string {
			// Drop shard 1's last line: its 70 is missing.
			data := filetest.Read(t, p[1])
			lines := strings.SplitAfter(data, "\n")
			writeFile(t, p[1], strings.Join(lines[:len(lines)-2], ""))
			return p
		}, nil, "shard1): 1 of 3 expected indices are missing: 70: resume that shard first"},
		{"outside the selection", true, func(t *testing.T, p []string) []string {
			writeFile(t, p[0], filetest.Read(t, p[0])+certifyLine(5))
			return p
		}, nil, "shard0): indices outside the selection: 5"},
		{"other sigma", true, func(t *testing.T, p []string) []string {
			q := testParams(sel, Shard{1, 3})
			q.Sigma = 0.5
			if err := WriteParams(p[1], q); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil, "sigma: 0.25 ("},
		{"other number of shards", true, func(t *testing.T, p []string) []string {
			if err := WriteParams(p[1], testParams(sel, Shard{1, 4})); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil, "is part 0/3 but"},
		{"same part twice", true, func(t *testing.T, p []string) []string {
			if err := WriteParams(p[1], testParams(sel, Shard{0, 3})); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil, "are both part 0/3"},
		{"one shard without run parameters", true, func(t *testing.T, p []string) []string {
			os.Remove(ParamsPath(p[2]))
			return p
		}, nil, "shard2 has none"},
		{"selection disagrees with the run parameters", true, func(t *testing.T, p []string) []string { return p },
			&Selection{DatasetLen: 100, Skip: 20, Max: -1}, "--n 100 --skip 20 --max -1, but the shards' run parameters say 100, 10, -1"},
		{"predict parameters on a certify log", true, func(t *testing.T, p []string) []string {
			q := testParams(sel, Shard{0, 3})
			q.Kind = KindPredict
			if err := WriteParams(p[0], q); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil, "are a predict run's"},
		{"no run parameters, no selection", false, func(t *testing.T, p []string) []string { return p }, nil,
			"give the run's --n"},
		{"no run parameters, missing shard", false, func(t *testing.T, p []string) []string { return p[:2] }, &sel,
			"3 of 10 expected indices are missing: 20 50 80"},
		{"no run parameters, outside the selection", false, func(t *testing.T, p []string) []string {
			writeFile(t, p[0], filetest.Read(t, p[0])+certifyLine(5))
			return p
		}, &sel, "indices outside the selection: 5"},
		{"torn shard", true, func(t *testing.T, p []string) []string {
			writeFile(t, p[0], filetest.Read(t, p[0])+"95\t1")
			return p
		}, nil, "resume this shard first"},
		{"mixed kinds", false, func(t *testing.T, p []string) []string {
			writeFile(t, p[1], PredictHeader+"\n")
			return p
		}, &sel, "different kinds of log"},
		{"no shards", true, func(*testing.T, []string) []string { return nil }, nil, "no shard files"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := tt.edit(t, writeShards(t, dir, sel, 3, tt.params))
			out := filepath.Join(dir, "merged")
			n, err := Merge(context.Background(), out, paths, tt.expect)
			if err == nil {
				t.Fatalf("Merge wrote %d lines; want an error", n)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q", err, tt.want)
			}
			for _, p := range []string{out, ParamsPath(out)} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a refused merge (%v)", p, err)
				}
			}
		})
	}
}

// TestMergeRefusesOutputAmongShards checks that merge never writes over a
// shard, however the output path is spelled.
func TestMergeRefusesOutputAmongShards(t *testing.T) {
	dir := t.TempDir()
	paths := writeShards(t, dir, Selection{DatasetLen: 100, Skip: 10, Max: -1}, 2, true)
	before := filetest.Snapshot(t, dir)
	t.Chdir(dir)
	for _, out := range []string{paths[1], "shard1", "./x/../shard0"} {
		_, err := Merge(context.Background(), out, paths, nil)
		if err == nil || !strings.Contains(err.Error(), "is the shard") {
			t.Errorf("Merge(%q): error %v, want one saying it is a shard", out, err)
		}
	}
	if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(before, after) {
		t.Errorf("folder changed by refused merges:\nbefore %v\nafter  %v", before, after)
	}
}

// TestMergeGuardsItsOutput: a folder as OUT, and a merge stopped before
// writing (its context done), are refused with nothing written.
func TestMergeGuardsItsOutput(t *testing.T) {
	sel := Selection{DatasetLen: 100, Skip: 20, Max: -1}
	dir := t.TempDir()
	paths := writeShards(t, dir, sel, 2, true)
	folder := filepath.Join(dir, "isdir")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	before := filetest.Snapshot(t, dir)
	if _, err := Merge(context.Background(), folder, paths, nil); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("merge into a folder: %v", err)
	}
	if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
		t.Error("a merge into a folder wrote files (isdir.json?)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := Merge(ctx, out, paths, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("merge with its context done: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a stopped merge wrote %s (%v)", out, err)
	}
}
