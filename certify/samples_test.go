package certify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/filetest"
)

// TestSamplesResumeKeepsTheLogsExamples: a resumed samples file keeps the
// lines of the examples its log holds, drops a line written just before a
// stop (its log line is missing) and a torn line, and goes on appending.
func TestSamplesResumeKeepsTheLogsExamples(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	l, err := OpenSamples(log, newDone(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]int{{0, 157}, {5, 10000}, {10, 313}} {
		if err := l.Write(w[0], w[1]); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// The log holds 0 and 5: 10's samples line was written, its log line not.
	// And a torn line after it.
	writeFile(t, SamplesPath(log), filetest.Read(t, SamplesPath(log))+"15\t62")
	done := newDone([]entry{{index: 0}, {index: 5}})
	l, err = OpenSamples(log, done, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(10, 313); err != nil {
		t.Fatal(err)
	}
	l.Close()
	want := "idx\tsamples\n0\t157\n5\t10000\n10\t313\n"
	if got := filetest.Read(t, SamplesPath(log)); got != want {
		t.Errorf("resumed samples file %q, want %q", got, want)
	}
	got, err := ReadSamples(log)
	if err != nil || !reflect.DeepEqual(got, map[int]int{0: 157, 5: 10000, 10: 313}) {
		t.Errorf("ReadSamples = %v, %v", got, err)
	}
	// A missing samples file, nothing done: started afresh.
	other := filepath.Join(dir, "other")
	if l, err = OpenSamples(other, newDone(nil), true); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := filetest.Read(t, SamplesPath(other)); got != SamplesHeader+"\n" {
		t.Errorf("fresh samples file on resume: %q", got)
	}
}

func TestSamplesRefusesDamage(t *testing.T) {
	done := newDone([]entry{{index: 0}, {index: 5}})
	for _, tt := range []struct {
		name, content, want string
	}{
		{"missing example", "idx\tsamples\n0\t157\n", "no line for example 5"},
		{"no file", "", "no line for example 0"},
		{"bad line", "idx\tsamples\n0\t157\nx\t3\n5\t9\n", `"x\t3" is not an index`},
		{"zero samples", "idx\tsamples\n0\t0\n5\t9\n", `"0\t0" is not an index`},
		{"twice", "idx\tsamples\n0\t157\n0\t157\n5\t9\n", "index 0 is on an earlier line"},
		{"header", "idx\tn\n0\t157\n5\t9\n", "header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			if tt.content != "" {
				writeFile(t, SamplesPath(log), tt.content)
			}
			l, err := OpenSamples(log, done, true)
			if err == nil {
				l.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q", err, tt.want)
			}
			if tt.content != "" && filetest.Read(t, SamplesPath(log)) != tt.content {
				t.Error("a refused samples file was changed")
			}
		})
	}
	log := filepath.Join(t.TempDir(), "log")
	writeFile(t, SamplesPath(log), "idx\tsamples\n0\t15")
	if _, err := ReadSamples(log); err == nil || !strings.Contains(err.Error(), "torn") {
		t.Errorf("ReadSamples of a torn file: %v", err)
	}
	// More samples than the recorded run's N could not have been drawn.
	p := testParams(testSel, Whole)
	p.TargetRadius = Targets{0.1}
	if err := WriteParams(log, p); err != nil {
		t.Fatal(err)
	}
	writeFile(t, SamplesPath(log), fmt.Sprintf("idx\tsamples\n0\t%d\n", p.N+1))
	want := fmt.Sprintf("example 0 used %d samples, more than the run's N = %d", p.N+1, p.N)
	if _, err := ReadSamples(log); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadSamples of an impossible count: %v", err)
	}
	if _, err := OpenSamples(log, newDone([]entry{{index: 0}}), true); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("resuming an impossible count: %v", err)
	}
}

// writeSamples gives each shard of writeShards the run parameters of an
// adaptive run and a samples file: example i used 100+i samples.
func writeSamples(t *testing.T, sel Selection, paths []string) {
	t.Helper()
	for k, path := range paths {
		sh := Shard{k, len(paths)}
		p := testParams(sel, sh)
		p.TargetRadius, p.Adaptive = Targets{0.25}, AdaptiveScheme
		if err := WriteParams(path, p); err != nil {
			t.Fatal(err)
		}
		part, err := sel.Shard(sh)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString(SamplesHeader + "\n")
		for _, i := range part {
			fmt.Fprintf(&b, "%d\t%d\n", i, 100+i)
		}
		writeFile(t, SamplesPath(path), b.String())
	}
}

func TestMergeJoinsSamples(t *testing.T) {
	sel := Selection{DatasetLen: 100, Skip: 20, Max: -1}
	dir := t.TempDir()
	paths := writeShards(t, dir, sel, 3, true)
	writeSamples(t, sel, paths)
	out := filepath.Join(dir, "merged")
	if _, err := Merge(context.Background(), out, paths, nil); err != nil {
		t.Fatal(err)
	}
	want := "idx\tsamples\n0\t100\n20\t120\n40\t140\n60\t160\n80\t180\n"
	if got := filetest.Read(t, SamplesPath(out)); got != want {
		t.Errorf("merged samples %q, want %q", got, want)
	}
	// A merge of fixed-N shards into the same place leaves no samples file.
	fixed := writeShards(t, t.TempDir(), sel, 2, true)
	if _, err := Merge(context.Background(), out, fixed, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(SamplesPath(out)); !os.IsNotExist(err) {
		t.Errorf("samples file of an earlier merge outlives a fixed-N merge (%v)", err)
	}
}

func TestMergeRefusesBadSamples(t *testing.T) {
	sel := Selection{DatasetLen: 100, Skip: 20, Max: -1}
	for _, tt := range []struct {
		name string
		edit func(t *testing.T, paths []string)
		want string
	}{
		{"missing file", func(t *testing.T, p []string) { os.Remove(SamplesPath(p[1])) }, "shard1 is a shard of an adaptive run"},
		{"missing example", func(t *testing.T, p []string) {
			writeFile(t, SamplesPath(p[0]), SamplesHeader+"\n0\t100\n")
		}, "1 of 2 expected indices are missing: 60"},
		{"example of another shard", func(t *testing.T, p []string) {
			writeFile(t, SamplesPath(p[0]), filetest.Read(t, SamplesPath(p[0]))+"20\t3\n")
		}, "indices outside the selection: 20"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := writeShards(t, dir, sel, 3, true)
			writeSamples(t, sel, paths)
			tt.edit(t, paths)
			out := filepath.Join(dir, "merged")
			_, err := Merge(context.Background(), out, paths, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			for _, p := range []string{out, ParamsPath(out), SamplesPath(out)} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a refused merge (%v)", p, err)
				}
			}
		})
	}
}

// Resuming or merging refuses lines made with another target radius or
// radius rule, or a fixed-N run's beside an adaptive one's.
func TestParamsDiffAdaptive(t *testing.T) {
	fixed := testParams(testSel, Whole)
	adaptive := fixed
	adaptive.TargetRadius, adaptive.Adaptive = Targets{0.25}, AdaptiveScheme
	other := adaptive
	other.TargetRadius, other.Radius = Targets{0.5}, string(RadiusPB)
	for _, tt := range []struct {
		a, b RunParams
		want []string
	}{
		{fixed, adaptive, []string{"adaptive: none (a) vs \"" + AdaptiveScheme + "\" (b)", "target_radius: none (a) vs 0.25 (b)"}},
		{adaptive, other, []string{"radius: none (a) vs \"pb\" (b)", "target_radius: 0.25 (a) vs 0.5 (b)"}},
		{adaptive, adaptive, nil},
	} {
		if got := tt.a.Diff(tt.b, "a", "b"); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Diff = %q, want %q", got, tt.want)
		}
	}
}

// A fixed-N run into the place of an adaptive one removes the old samples
// file, whose lines would no longer belong to the log; an adaptive run
// leaves it to OpenSamples.
func TestOpenRunLogRemovesStaleSamples(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	adaptive := testParams(testSel, Whole)
	adaptive.TargetRadius, adaptive.Adaptive = Targets{0.25}, AdaptiveScheme
	for _, tt := range []struct {
		p    RunParams
		kept bool
	}{{adaptive, true}, {testParams(testSel, Whole), false}} {
		writeFile(t, SamplesPath(log), SamplesHeader+"\n")
		l, _, err := OpenRunLog[CertifyRecord](log, tt.p, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if _, err := os.Stat(SamplesPath(log)); (err == nil) != tt.kept {
			t.Errorf("target radius %v: samples file kept %v, want %v", tt.p.TargetRadius, err == nil, tt.kept)
		}
	}
}
