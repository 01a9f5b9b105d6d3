package certify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/filetest"
)

var testSel = Selection{DatasetLen: 100, Skip: 10, Max: -1}

func TestParamsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	p := testParams(testSel, Shard{2, 5})
	p.Kind = KindPredict
	p.Attack = &Attack{Kind: "DDN", Epsilon: 0.25, Steps: 20, NoiseVectors: 4, InitNorm: 1, Gamma: 0.05}
	if err := WriteParams(path, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filetest.Read(t, ParamsPath(path)), `"shard": "2/5"`) {
		t.Errorf("the shard is not written as i/n:\n%s", filetest.Read(t, ParamsPath(path)))
	}
	got, ok, err := ReadParams(path)
	if err != nil || !ok {
		t.Fatalf("ReadParams: %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("read %+v, want %+v", got, p)
	}
	if _, ok, err := ReadParams(filepath.Join(t.TempDir(), "none")); ok || err != nil {
		t.Errorf("missing run parameters: %v, %v; want none and no error", ok, err)
	}
}

func TestReadParamsRefusesDamage(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":      "{",
		"unknown field": `{"kind": "certify", "sigmaa": 1}`,
		"bad shard":     `{"kind": "certify", "shard": "3/2"}`,
		"no kind":       `{"sigma": 1}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			writeFile(t, ParamsPath(path), content)
			if _, _, err := ReadParams(path); err == nil || !strings.Contains(err.Error(), ParamsPath(path)) {
				t.Errorf("error %v, want one naming %s", err, ParamsPath(path))
			}
		})
	}
}

func TestParamsDiff(t *testing.T) {
	a := testParams(testSel, Shard{0, 2})
	b := a
	b.Device, b.Batch, b.Workers, b.Group, b.Unoptimized, b.Model, b.DataDir = "cuda:1", 7, 3, 2, true, "elsewhere.pt", "/data"
	b.ChannelsLast = true
	// A file without a precision was written before there was a choice: fp32.
	a.Precision, b.Precision = "", "fp32"
	if d := a.Diff(b, "a", "b"); len(d) != 0 {
		t.Errorf("informational changes give differences %v", d)
	}
	b.Sigma, b.Seed, b.Shard = 0.5, 4, Shard{1, 2}
	b.Attack = &Attack{Kind: "PGD", Epsilon: 0.25, Steps: 10, NoiseVectors: 1}
	want := []string{
		"sigma: 0.25 (a) vs 0.5 (b)",
		"seed: 3 (a) vs 4 (b)",
		"shard: \"0/2\" (a) vs \"1/2\" (b)",
		"attack.kind: none (a) vs \"PGD\" (b)",
	}
	got := a.Diff(b, "a", "b")
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("differences %q lack %q", got, w)
		}
	}
	if d := a.Diff(b, "a", "b", "shard", "sigma", "seed", "attack.kind", "attack.epsilon", "attack.steps", "attack.num_noise_vec", "attack.base", "attack.no_grad"); len(d) != 0 {
		t.Errorf("ignored keys still differ: %v", d)
	}
}

// runLogFixture is a certify log with two lines and its run parameters.
func runLogFixture(t *testing.T) (path string, p RunParams) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "sigma_0.25")
	p = testParams(testSel, Whole)
	writeFile(t, path, CertifyHeader+"\n"+certifyLine(0)+certifyLine(10))
	if err := WriteParams(path, p); err != nil {
		t.Fatal(err)
	}
	return path, p
}

// TestOpenRunLogFresh: a fresh run over the log of a run with other
// recorded parameters is refused, leaving it as it was, unless Overwrite.
func TestOpenRunLogFresh(t *testing.T) {
	path, p := runLogFixture(t)
	p.Sigma = 0.5
	before := filetest.Snapshot(t, filepath.Dir(path))
	if _, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{}); err == nil ||
		!strings.Contains(err.Error(), "holds 2 lines of another run") || !strings.Contains(err.Error(), "sigma: 0.25 (the log) vs 0.5 (now)") {
		t.Errorf("fresh run over another run's log: %v", err)
	}
	if after := filetest.Snapshot(t, filepath.Dir(path)); !reflect.DeepEqual(before, after) {
		t.Errorf("the refusal changed files")
	}
	l, done, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if done.Len() != 0 || filetest.Read(t, path) != CertifyHeader+"\n" {
		t.Errorf("a fresh log holds %d done, %q", done.Len(), filetest.Read(t, path))
	}
	if got, _, _ := ReadParams(path); !reflect.DeepEqual(got, p) {
		t.Errorf("run parameters %+v, want %+v", got, p)
	}
}

// TestOpenRunLogZeroShard: the zero Shard is the whole run.
func TestOpenRunLogZeroShard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	p := testParams(testSel, Shard{})
	for _, resume := range []bool{false, true} {
		l, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: resume})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if got, _, err := ReadParams(path); err != nil || got.Shard != Whole {
			t.Errorf("shard %v, %v; want the whole run", got.Shard, err)
		}
	}
}

func TestOpenRunLogResumes(t *testing.T) {
	path, p := runLogFixture(t)
	p.Device, p.Batch, p.Workers = "cuda:0", 50, 1 // informational
	l, done, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if done.Len() != 2 || !done.Contains(10) {
		t.Errorf("done %d, want 0 and 10", done.Len())
	}
	if got, _, _ := ReadParams(path); got.Device != "cuda:0" || got.Batch != 50 {
		t.Errorf("run parameters not updated: %+v", got)
	}
}

// TestOpenRunLogRefusesOtherParameters checks that resuming with any
// parameter that changes results refuses, naming it with both values, and
// leaves the log and its run parameters byte for byte as they were.
func TestOpenRunLogRefusesOtherParameters(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*RunParams)
		want []string
	}{
		{"sigma", func(p *RunParams) { p.Sigma = 0.5 }, []string{"sigma: 0.25 (the log) vs 0.5 (now)"}},
		{"N0 and N", func(p *RunParams) { p.N0, p.N = 10, 100 }, []string{"N0: 100 (the log) vs 10 (now)", "N: 1000 (the log) vs 100 (now)"}},
		{"alpha", func(p *RunParams) { p.Alpha = 0.01 }, []string{"alpha: 0.001 (the log) vs 0.01 (now)"}},
		{"skip", func(p *RunParams) { p.Skip = 20 }, []string{"skip: 10 (the log) vs 20 (now)"}},
		{"max", func(p *RunParams) { p.Max = 50 }, []string{"max: -1 (the log) vs 50 (now)"}},
		{"split", func(p *RunParams) { p.Split = "train" }, []string{`split: "test" (the log) vs "train" (now)`}},
		{"dataset", func(p *RunParams) { p.Dataset, p.DatasetLen = "imagenet32", 50000 }, []string{`dataset: "cifar10" (the log) vs "imagenet32" (now)`, "dataset_len: 100 (the log) vs 50000 (now)"}},
		{"shard", func(p *RunParams) { p.Shard = Shard{1, 2} }, []string{`shard: "0/1" (the log) vs "1/2" (now)`}},
		{"model", func(p *RunParams) { p.ModelHash = "def" }, []string{`model_sha256: "abc" (the log) vs "def" (now)`}},
		{"input layer", func(p *RunParams) { p.Input = "center" }, []string{`normalization: "normalize" (the log) vs "center" (now)`}},
		{"seed", func(p *RunParams) { p.Seed = 4 }, []string{"seed: 3 (the log) vs 4 (now)"}},
		{"noise scheme", func(p *RunParams) { p.Noise = "other" }, []string{`noise: "test-noise" (the log) vs "other" (now)`}},
		{"precision", func(p *RunParams) { p.Precision = "bf16" }, []string{`precision: "fp32" (the log) vs "bf16" (now)`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, p := runLogFixture(t)
			before := filetest.Snapshot(t, filepath.Dir(path))
			tt.edit(&p)
			_, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true, Unchecked: true})
			if err == nil {
				t.Fatal("resumed with other parameters")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if after := filetest.Snapshot(t, filepath.Dir(path)); !reflect.DeepEqual(before, after) {
				t.Errorf("refused resume changed files:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestOpenRunLogWithoutParameters(t *testing.T) {
	path, p := runLogFixture(t)
	os.Remove(ParamsPath(path))
	before := filetest.Read(t, path)
	_, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "--resume-unchecked") {
		t.Fatalf("error %v, want one pointing to --resume-unchecked", err)
	}
	if filetest.Read(t, path) != before {
		t.Error("refused resume changed the log")
	}
	if _, err := os.Stat(ParamsPath(path)); !os.IsNotExist(err) {
		t.Errorf("refused resume wrote run parameters (%v)", err)
	}
	l, done, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true, Unchecked: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if done.Len() != 2 {
		t.Errorf("unchecked resume: %d done, want 2", done.Len())
	}
	if got, ok, _ := ReadParams(path); !ok || !reflect.DeepEqual(got, p) {
		t.Errorf("unchecked resume recorded %+v (%v), want %+v", got, ok, p)
	}
}

// TestOpenRunLogNothingToCheck resumes logs without lines: nothing can be
// mixed, so no run parameters are needed and old ones do not matter.
func TestOpenRunLogNothingToCheck(t *testing.T) {
	for name, content := range map[string]string{"missing": "", "header only": CertifyHeader + "\n", "torn line": "0\t1"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			p := testParams(testSel, Whole)
			old := p
			old.Sigma = 1
			if err := WriteParams(path, old); err != nil {
				t.Fatal(err)
			}
			if content != "" {
				writeFile(t, path, CertifyHeader+"\n"+strings.TrimPrefix(content, CertifyHeader+"\n"))
			}
			l, done, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true})
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			if done.Len() != 0 || filetest.Read(t, path) != CertifyHeader+"\n" {
				t.Errorf("done %d, log %q", done.Len(), filetest.Read(t, path))
			}
			if got, _, _ := ReadParams(path); got.Sigma != p.Sigma {
				t.Errorf("run parameters not replaced: sigma %v", got.Sigma)
			}
		})
	}
}

func TestOpenRunLogRefusesModelAsOutput(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.pt")
	writeFile(t, model, "weights")
	t.Chdir(dir)
	for _, out := range []string{model, "model.pt", "./sub/../model.pt"} {
		p := testParams(testSel, Whole)
		p.Model = model
		for _, resume := range []bool{false, true} {
			_, _, err := OpenRunLog[CertifyRecord](out, p, OpenOptions{Resume: resume})
			if err == nil || !strings.Contains(err.Error(), "is the model file") {
				t.Errorf("OpenRunLog(%q, resume %v): error %v, want one saying it is the model", out, resume, err)
			}
		}
	}
	// The model's name plus .json would be the run parameters' file.
	p := testParams(testSel, Whole)
	p.Model = model + ".json"
	writeFile(t, p.Model, "{}")
	if _, _, err := OpenRunLog[CertifyRecord](model, p, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "is the model file") {
		t.Errorf("run parameters over the model: error %v", err)
	}
	if got := filetest.Snapshot(t, dir); !reflect.DeepEqual(got, map[string]string{"model.pt": "weights", "model.pt.json": "{}"}) {
		t.Errorf("refusals changed the folder: %v", got)
	}
}

// TestOpenRunLogParametersFirst: the run parameters are written before the
// log, so a log never has lines without them.
func TestOpenRunLogParametersFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(ParamsPath(path), 0o755); err != nil { // cannot be replaced by a file
		t.Fatal(err)
	}
	if _, _, err := OpenRunLog[CertifyRecord](path, testParams(testSel, Whole), OpenOptions{}); err == nil {
		t.Fatal("want an error")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("log created without its run parameters (%v)", err)
	}
}

func TestOpenRunLogRefusesOtherKind(t *testing.T) {
	p := testParams(testSel, Whole)
	p.Kind = KindPredict
	path := filepath.Join(t.TempDir(), "log")
	if _, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{}); err == nil {
		t.Fatal("predict parameters opened a certify log")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("log created (%v)", err)
	}
}

// TestOpenRunLogDamagedLogKeepsParameters checks that a resume refused
// for damage inside the log leaves the run parameters alone too.
func TestOpenRunLogDamagedLogKeepsParameters(t *testing.T) {
	path, p := runLogFixture(t)
	writeFile(t, path, CertifyHeader+"\n"+certifyLine(0)+"xx\n"+certifyLine(10))
	before := filetest.Snapshot(t, filepath.Dir(path))
	p.Device = "cuda:3"
	if _, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true}); err == nil || !strings.Contains(err.Error(), "damaged inside") {
		t.Fatalf("error %v, want damage", err)
	}
	if after := filetest.Snapshot(t, filepath.Dir(path)); !reflect.DeepEqual(before, after) {
		t.Errorf("files changed: %v", after)
	}
}

// TestOpenRunLogRefusesModelAsSamplesFile: the samples file beside the log,
// reached through a symlink, is an output too; the model is left whole.
func TestOpenRunLogRefusesModelAsSamplesFile(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.pt")
	writeFile(t, model, "weights")
	out := filepath.Join(dir, "log.tsv")
	if err := os.Symlink(model, SamplesPath(out)); err != nil {
		t.Fatal(err)
	}
	p := testParams(testSel, Whole)
	p.Model, p.TargetRadius = model, Targets{0.1}
	if _, _, err := OpenRunLog[CertifyRecord](out, p, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "is the model file") {
		t.Errorf("samples file linked to the model: %v", err)
	}
	if got := filetest.Read(t, model); got != "weights" {
		t.Errorf("the model now holds %q", got)
	}
}

// TestOpenRunLogIsExclusive: while one run has a log open, a second run on
// it is refused, naming it; once the first closes, it may go on.
func TestOpenRunLogIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	p := testParams(testSel, Whole)
	first, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []OpenOptions{{}, {Resume: true}, {Overwrite: true}} {
		if _, _, err := OpenRunLog[CertifyRecord](path, p, o); err == nil || !strings.Contains(err.Error(), path+" is busy") {
			t.Errorf("second run (%+v) beside the first: %v", o, err)
		}
	}
	first.Close()
	second, _, err := OpenRunLog[CertifyRecord](path, p, OpenOptions{Resume: true})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	second.Close()
}

// TestFreshRunDropsOldLinesFirst: a fresh run removes the old log before it
// records its parameters, so that a run stopped in between (here, the
// parameters cannot be written) leaves no old lines to be resumed under new
// parameters.
func TestFreshRunDropsOldLinesFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeFile(t, path, CertifyHeader+"\n"+certifyLine(0)+certifyLine(10))
	if err := os.Mkdir(ParamsPath(path), 0o755); err != nil { // cannot be replaced by a file
		t.Fatal(err)
	}
	if _, _, err := OpenRunLog[CertifyRecord](path, testParams(testSel, Whole), OpenOptions{}); err == nil {
		t.Fatal("want an error")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the old log is still there after the parameters failed (%v)", err)
	}
}

// TestReadParamsSaysWhatIsWrong: a hand-edited record's error names the key
// and the kind of value wanted, not Go's struct and types.
func TestReadParamsSaysWhatIsWrong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeFile(t, ParamsPath(path), `{"kind": "certify", "sigma": "0.25"}`)
	_, _, err := ReadParams(path)
	if err == nil || !strings.Contains(err.Error(), `"sigma" holds string, want a number`) || strings.Contains(err.Error(), "Go struct") {
		t.Errorf("hand-edited sigma: %v", err)
	}
}
