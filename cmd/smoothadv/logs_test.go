package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/filetest"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
)

// fourImages certifies Fashion-MNIST test images 0, 500, 1000 and 1500.
func fourImages(model, out string, extra ...string) []string {
	return certifyArgs(model, out, append([]string{"--max", "2000"}, extra...)...)
}

// TestCertifyRecordsRunParameters: certify writes OUTFILE.json with the
// run's parameters, the model known by its hash.
func TestCertifyRecordsRunParameters(t *testing.T) {
	model := fashionModel(t)
	out := filepath.Join(t.TempDir(), "log.tsv")
	smoothadv(t, fourImages(model, out)...)
	b, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var p certify.RunParams
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(m)
	want := certify.RunParams{Kind: "certify", Dataset: "fashion-mnist", Split: "test", DatasetLen: 10000, Skip: 500, Max: 2000,
		Shard: certify.Whole, ModelHash: hex.EncodeToString(sum[:]), Arch: "fashion_cnn", Input: "normalize",
		Sigma: 1, N0: 50, N: 600, Alpha: 0.001, Seed: 7, Noise: p.Noise, Precision: "fp32",
		Model: model, Device: "cpu", Batch: 200, Workers: p.Workers, Threads: p.Threads}
	if p.Noise == "" || p.Workers < 1 || p.Threads < 1 {
		t.Errorf("noise scheme %q, workers %d, threads %d", p.Noise, p.Workers, p.Threads)
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("run parameters\n%+v\nwant\n%+v", p, want)
	}
}

// TestCertifyResumeRefusesOtherParameters: --resume with a parameter that
// changes results is refused, naming it with both values, and leaves the
// log and its run parameters byte for byte as they were; a change of batch
// size or workers is not refused.
func TestCertifyResumeRefusesOtherParameters(t *testing.T) {
	model := fashionModel(t)
	other := filepath.Join(t.TempDir(), "other.pt")
	m, err := models.New("fashion_cnn", 4, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(other); err != nil {
		t.Fatal(err)
	}
	m.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "log.tsv")
	smoothadv(t, fourImages(model, out)...)
	// Tear the last line, so that a resume has work to do.
	log, _ := os.ReadFile(out)
	if err := os.WriteFile(out, log[:len(log)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	before := filetest.Snapshot(t, dir)
	sigma := fourImages(model, out, "--resume")
	sigma[3] = "0.5"
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{sigma, []string{"sigma: 1 (the log) vs 0.5 (now)"}},
		{fourImages(model, out, "--resume", "--N", "700", "--seed", "8"), []string{"N: 600 (the log) vs 700 (now)", "seed: 7 (the log) vs 8 (now)"}},
		{fourImages(model, out, "--resume", "--shard", "1/2"), []string{`shard: "0/1" (the log) vs "1/2" (now)`}},
		{fourImages(model, out, "--resume", "--skip", "250"), []string{"skip: 500 (the log) vs 250 (now)"}},
		{fourImages(other, out, "--resume"), []string{"model_sha256: "}},
		{fourImages(model, out, "--resume-unchecked", "--alpha", "0.01"), []string{"alpha: 0.001 (the log) vs 0.01 (now)"}},
	} {
		msg := refused(t, tt.args...)
		for _, w := range append(tt.want, "were made with other parameters (recorded in "+out+".json)") {
			if !strings.Contains(msg, w) {
				t.Errorf("smoothadv %s:\n%s\nwant %q", strings.Join(tt.args[5:], " "), msg, w)
			}
		}
		if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
			t.Fatalf("refused resume changed files:\nbefore %q\nafter  %q", before, after)
		}
	}
	smoothadv(t, fourImages(model, out, "--resume", "--batch", "100", "--workers", "1")...)
	if n := lineCount(out); n != 5 {
		t.Errorf("resumed log has %d lines, want 5", n)
	}
}

// TestCertifyResumeWithoutRunParameters: a log with no run parameters (as
// the Python reference writes) is resumed only with --resume-unchecked.
func TestCertifyResumeWithoutRunParameters(t *testing.T) {
	model := fashionModel(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "log.tsv")
	smoothadv(t, fourImages(model, out)...)
	whole := withoutTime(t, out)
	lines := strings.SplitAfter(filetest.Snapshot(t, dir)["log.tsv"], "\n")
	if err := os.WriteFile(out, []byte(strings.Join(lines[:3], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(out + ".json"); err != nil {
		t.Fatal(err)
	}
	before := filetest.Snapshot(t, dir)
	msg := refused(t, fourImages(model, out, "--resume")...)
	if !strings.Contains(msg, "run parameters ("+out+".json) are missing") || !strings.Contains(msg, "--resume-unchecked continues it anyway") {
		t.Errorf("message:\n%s", msg)
	}
	if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
		t.Fatalf("refused resume changed files: %q", after)
	}
	smoothadv(t, fourImages(model, out, "--resume-unchecked")...)
	if got := withoutTime(t, out); got != whole {
		t.Errorf("resumed log:\n%s\nwant\n%s", got, whole)
	}
	if _, err := os.Stat(out + ".json"); err != nil {
		t.Errorf("no run parameters after the unchecked resume: %v", err)
	}
}

// TestOutputIsAnInput: certify into the model file, import over the
// checkpoint and merge over a shard are refused; nothing is written.
func TestOutputIsAnInput(t *testing.T) {
	model := fashionModel(t)
	dir := filepath.Dir(model)
	m, err := models.New("fashion_cnn", 3, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "checkpoint.pth.tar")
	if err := models.SaveCheckpoint(ckpt, m, 1, nil); err != nil {
		t.Fatal(err)
	}
	m.Close()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{certifyArgs(model, model), "is the model file " + model},
		{certifyArgs(model, filepath.Join(dir, "x", "..", "model.pt")), "is the model file"},
		{certifyArgs(model, model, "--resume"), "is the model file"},
		{[]string{"import", ckpt, "--out", ckpt}, "--out " + ckpt + " is the checkpoint being imported"},
		{[]string{"import", ckpt, "--out", filepath.Join(dir, ".", "checkpoint.pth.tar")}, "is the checkpoint being imported"},
	} {
		before := filetest.Snapshot(t, dir)
		if msg := refused(t, tt.args...); !strings.Contains(msg, tt.want) {
			t.Errorf("smoothadv %s:\n%s\nwant %q", strings.Join(tt.args, " "), msg, tt.want)
		}
		if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
			t.Errorf("smoothadv %s changed files", strings.Join(tt.args, " "))
		}
	}
}

// TestMergeRefusesIncompleteShards: merging one shard of two, or a shard
// that stopped early, is refused, and nothing is written.
func TestMergeRefusesIncompleteShards(t *testing.T) {
	model := fashionModel(t)
	dir := t.TempDir()
	var shards []string
	for i := range 2 {
		shard := filepath.Join(dir, fmt.Sprintf("shard%d.tsv", i))
		smoothadv(t, fourImages(model, shard, "--shard", fmt.Sprintf("%d/2", i))...)
		shards = append(shards, shard)
	}
	merged := filepath.Join(dir, "merged.tsv")
	before := filetest.Snapshot(t, dir)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"merge", merged, shards[0]}, "the run has 2 parts, but part(s) 1/2 are not among the shards given"},
		{[]string{"merge", merged, shards[0], shards[1], shards[0]}, "is in both"},
		{[]string{"merge", shards[1], shards[0], shards[1]}, "the output " + shards[1] + " is the shard"},
		{[]string{"merge", merged, "--n", "10000", "--skip", "500", shards[0], shards[1]}, "--n 10000 --skip 500 --max -1, but the shards' run parameters say 10000, 500, 2000"},
	} {
		if msg := refused(t, tt.args...); !strings.Contains(msg, tt.want) {
			t.Errorf("smoothadv %s:\n%s\nwant %q", strings.Join(tt.args, " "), msg, tt.want)
		}
		if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
			t.Errorf("smoothadv %s changed files", strings.Join(tt.args, " "))
		}
	}
	// Shard 1 stopped after its first example.
	lines := strings.SplitAfter(before["shard1.tsv"], "\n")
	if err := os.WriteFile(shards[1], []byte(strings.Join(lines[:2], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := refused(t, "merge", merged, shards[0], shards[1]); !strings.Contains(msg, "1 of 2 expected indices are missing: 1500: resume that shard first") {
		t.Errorf("merge of a short shard:\n%s", msg)
	}
	if _, err := os.Stat(merged); !os.IsNotExist(err) {
		t.Errorf("merged log written (%v)", err)
	}
}

// TestAnalyzeAndCompareRefuseBadLogs: analyze and compare refuse logs that
// the strict reader refuses, naming the file and line (every kind of bad
// line is tested in package certify).
func TestAnalyzeAndCompareRefuseBadLogs(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	head := certify.CertifyHeader + "\n0\t3\t3\t0.5\t1\t0:00:01\n"
	if err := os.WriteFile(good, []byte(head+"1\t2\t2\t0.25\t1\t0:00:01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct{ line, want string }{
		"duplicate":  {"0\t2\t2\t0.25\t1\t0:00:01", ":3: index 0 is also on line 2"},
		"nan radius": {"1\t2\t2\tnan\t1\t0:00:01", `:3: column radius: "nan": want a finite radius >= 0`},
	} {
		bad := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(bad, []byte(head+tt.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"analyze", "table", "--radii", "0:0.5:0.25", good, bad},
			{"compare", good, bad},
		} {
			if msg := refused(t, args...); !strings.Contains(msg, bad+tt.want) {
				t.Errorf("smoothadv %s %s:\n%s\nwant %q", args[0], name, msg, bad+tt.want)
			}
		}
	}
}

// TestPredictResumeRefusesOtherAttack: predict records its attack beside
// OUTDIR/.../predictions; resuming with other attack steps (which the
// folder name does not show) is refused.
func TestPredictResumeRefusesOtherAttack(t *testing.T) {
	model := fashionModel(t)
	root := t.TempDir()
	args := func(extra ...string) []string {
		return append([]string{"predict", "fashion-mnist", model, "0.25", root, "--attack", "PGD", "--num-steps", "1",
			"--N", "100", "--batch", "100", "--skip", "1000", "--max", "3000", "--device", "cpu"}, extra...)
	}
	smoothadv(t, args()...)
	dir := filepath.Join(root, "PGD_0.25_noise_0.25_mtest_1")
	before := filetest.Snapshot(t, dir)
	if _, ok := before["predictions.json"]; !ok {
		t.Fatalf("no run parameters beside the predictions: %v", before)
	}
	msg := refused(t, args("--resume", "--num-steps", "2")...)
	if !strings.Contains(msg, "attack.steps: 1 (the log) vs 2 (now)") {
		t.Errorf("message:\n%s", msg)
	}
	if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("refused resume changed files")
	}
	smoothadv(t, args("--resume", "--workers", "1")...)
}

// TestShardedCertifyMergesToTheWholeRun: three shards merged give the
// lines of the one-piece run.
func TestShardedCertifyMergesToTheWholeRun(t *testing.T) {
	model, dir, want := uninterrupted(t, smoothadv)
	var shards []string
	for i := range 3 {
		shard := filepath.Join(dir, fmt.Sprintf("shard%d.tsv", i))
		smoothadv(t, certifyArgs(model, shard, "--shard", fmt.Sprintf("%d/3", i), "--workers", "1")...)
		shards = append(shards, shard)
	}
	merged := filepath.Join(dir, "merged.tsv")
	smoothadv(t, append([]string{"merge", merged}, shards...)...)
	if got := withoutTime(t, merged); got != want {
		t.Errorf("merged shards:\n%s\none piece:\n%s", got, want)
	}
}

// TestCertifyKeepsAnotherRunsLog: a fresh certify into the log of a run
// with other parameters is refused and leaves it whole; --overwrite
// replaces it; the same run again replaces it without asking.
func TestCertifyKeepsAnotherRunsLog(t *testing.T) {
	model := fashionModel(t)
	out := filepath.Join(t.TempDir(), "log.tsv")
	smoothadv(t, fourImages(model, out)...)
	before := filetest.Snapshot(t, filepath.Dir(out))
	other := fourImages(model, out, "--seed", "8")
	if msg := refused(t, other...); !strings.Contains(msg, "holds 4 lines of another run") || !strings.Contains(msg, "--overwrite") {
		t.Errorf("fresh run over another run's log:\n%s", msg)
	}
	if after := filetest.Snapshot(t, filepath.Dir(out)); !reflect.DeepEqual(after, before) {
		t.Error("the refusal changed the log")
	}
	smoothadv(t, append(other, "--overwrite")...)
	smoothadv(t, other...)
	if p, _, err := certify.ReadParams(out); err != nil || p.Seed != 8 {
		t.Errorf("after --overwrite the log records seed %d (%v), want 8", p.Seed, err)
	}
}

// TestOutputMustBeAFile: a folder or /dev/null as OUTFILE is refused before
// anything is written beside it (no DIR.json, no /dev/null.json), and
// /dev/null stays the device.
func TestOutputMustBeAFile(t *testing.T) {
	model := fashionModel(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nowhere", "log.tsv")
	if msg := refused(t, certifyArgs(model, missing)...); !strings.Contains(msg, missing+": the folder "+filepath.Dir(missing)+" does not exist") {
		t.Errorf("certify into a missing folder:\n%s", msg)
	}
	for out, want := range map[string]string{dir: "is a folder", "/dev/null": "is not a regular file"} {
		if msg := refused(t, certifyArgs(model, out)...); !strings.Contains(msg, "output file "+out+" "+want) {
			t.Errorf("certify into %s:\n%s", out, msg)
		}
		if _, err := os.Stat(out + ".json"); err == nil {
			os.Remove(out + ".json")
			t.Errorf("%s.json was written", out)
		}
	}
	if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("/dev/null is no longer the device: %v %v", st.Mode(), err)
	}
}

// TestOutputsAreNotInputs: analyze plot's --out and train's --cpuprofile
// may not be an input, through a link or not; the input is left whole.
func TestOutputsAreNotInputs(t *testing.T) {
	model := fashionModel(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log.tsv")
	smoothadv(t, fourImages(model, log)...)
	link := filepath.Join(dir, "link.png")
	if err := os.Symlink(log, link); err != nil {
		t.Fatal(err)
	}
	pre := filepath.Join(dir, "pre.pth.tar")
	m, err := models.New("fashion_cnn", 3, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := models.SaveCheckpoint(pre, m, 1, nil); err != nil {
		t.Fatal(err)
	}
	m.Close()
	before := filetest.Snapshot(t, dir)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"analyze", "plot", "--out", log, log + "=x"}, "--out " + log + " is the log " + log},
		{[]string{"analyze", "plot", "--out", link, log}, "--out " + link + " is the log " + log},
		{[]string{"run", "--dry-run", "--out", log}, "--out " + log + " is a file: give the results folder"},
		{[]string{"train", "fashion-mnist", "fashion_cnn", filepath.Join(dir, "out"), "--pretrained-model", pre, "--cpuprofile", pre},
			"--cpuprofile " + pre + " is --pretrained-model " + pre},
	} {
		if msg := refused(t, c.args...); !strings.Contains(msg, c.want) {
			t.Errorf("smoothadv %s:\n%s\nwant %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
	if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
		t.Error("a refused command changed an input")
	}
}

// TestTrainingModeModelEvaluates: a TorchScript model saved in training
// mode (BatchNorm on batch statistics) certifies in evaluation mode on every
// path, so its lines do not change with --batch.
func TestTrainingModeModelEvaluates(t *testing.T) {
	m, err := models.New("fashion_cnn", 3, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Train(true); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "training.pt")
	if err := m.Save(model); err != nil {
		t.Fatal(err)
	}
	m.Close()
	var logs []string
	for _, batch := range []string{"200", "37"} {
		out := filepath.Join(dir, "batch"+batch+".tsv")
		smoothadv(t, certifyArgs(model, out, "--unoptimized", "--batch", batch, "--max", "2000")...)
		logs = append(logs, withoutTime(t, out))
	}
	if logs[0] != logs[1] {
		t.Errorf("--unoptimized lines change with --batch:\n%s\nvs\n%s", logs[0], logs[1])
	}
}

// TestResumeUncheckedChecksLabels: an unchecked resume of a log whose
// labels are not the dataset's (another dataset or split) is refused.
func TestResumeUncheckedChecksLabels(t *testing.T) {
	model := fashionModel(t)
	out := filepath.Join(t.TempDir(), "log.tsv")
	smoothadv(t, fourImages(model, out, "--max", "1000")...) // images 0 and 500
	if err := os.Remove(certify.ParamsPath(out)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(filetest.Read(t, out), "\n")
	fields := strings.Split(lines[1], "\t")
	label, _ := strconv.Atoi(fields[1])
	fields[1] = strconv.Itoa((label + 1) % 10)
	lines[1] = strings.Join(fields, "\t")
	if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	before := filetest.Snapshot(t, filepath.Dir(out))
	msg := refused(t, fourImages(model, out, "--resume-unchecked")...)
	if after := filetest.Snapshot(t, filepath.Dir(out)); !reflect.DeepEqual(after, before) {
		t.Error("the refusal changed files")
	}
	if want := fmt.Sprintf("its line for example 0 gives label %d, the dataset's label is %d", (label+1)%10, label); !strings.Contains(msg, want) {
		t.Errorf("unchecked resume of a log with another label:\n%s\nwant %q", msg, want)
	}
}

// TestResumeOnOtherThreadsSaysSo: a log continued with another number of
// intra-op threads per worker (here by --workers on the same cores) gets a
// note that its new lines may round otherwise.
func TestResumeOnOtherThreadsSaysSo(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one core: every worker count gives one thread")
	}
	model := fashionModel(t)
	out := filepath.Join(t.TempDir(), "log.tsv")
	smoothadv(t, fourImages(model, out, "--workers", "1")...)
	lines := strings.SplitAfter(filetest.Read(t, out), "\n")
	if err := os.WriteFile(out, []byte(strings.Join(lines[:3], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	said := smoothadv(t, fourImages(model, out, "--workers", "2", "--resume")...)
	if !strings.Contains(said, "note: the 2 lines of "+out+" were computed with") {
		t.Errorf("resume on other threads said:\n%s", said)
	}
}
