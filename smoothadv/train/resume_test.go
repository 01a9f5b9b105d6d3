package train

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/filetest"
)

const testHeader = "epoch\ttime\tlr\ttrainloss\ttestloss\ttrainacc\ttestacc"

func logLine(epoch string) string { return epoch + "\t1.0\t0.1\t2.3\t2.2\t10.0\t11.0\n" }

func TestCutLog(t *testing.T) {
	h := testHeader + "\n"
	l0, l1, l2 := logLine("0"), logLine("1"), logLine("2")
	l1again := "1\t9.0\t0.1\t2.0\t2.0\t20.0\t21.0\n"
	cases := []struct {
		name, old, pending string
		last               int
		want               string
		missing            string
	}{
		{"complete", h + l0 + l1, "", 1, h + l0 + l1, ""},
		{"one line more: cut", h + l0 + l1 + l2, l2, 1, h + l0 + l1, ""},
		{"torn last line: dropped", h + l0 + l1 + "2\t1.0\t0.", "", 1, h + l0 + l1, ""},
		{"killed before the line: from the pending file", h + l0, l1, 1, h + l0 + l1, ""},
		{"torn line of the checkpoint's epoch: from the pending file", h + l0 + "1\t1.0", l1, 1, h + l0 + l1, ""},
		{"pending file of another epoch: missing", h + l0, l2, 1, h + l0, "1"},
		{"no pending file: missing", h + l0, "", 1, h + l0, "1"},
		{"no log", "", "", 1, h, "0 1"},
		{"an epoch logged twice: the later line", h + l0 + l1 + l1again, "", 1, h + l0 + l1again, ""},
	}
	for _, c := range cases {
		got, missing, err := cutLog([]byte(c.old), testHeader, c.last, c.pending)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s: log\n%q\nwant\n%q", c.name, got, c.want)
		}
		if strings.Join(missing, " ") != c.missing {
			t.Errorf("%s: missing epochs %v, want %q", c.name, missing, c.missing)
		}
	}
	for _, c := range []struct{ old, want string }{
		{"epoch\ttime\n" + logLine("0"), `not this run's header`},
		{h + logLine("0") + "hello\n", `line 3: "hello" is not a training log line`},
		{h + logLine("-1"), `line 2: "-1\t`},
	} {
		if _, _, err := cutLog([]byte(c.old), testHeader, 0, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("log %q: error %v, want it to say %s", c.old, err, c.want)
		}
	}
}

func TestResumeLogRewritesOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LogFile)
	good := testHeader + "\n" + logLine("0")
	if err := os.WriteFile(path, []byte(good+logLine("1")), 0o644); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	if err := resumeLog(dir, testHeader, 0, &warn); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Errorf("log after the cut: %q", b)
	}
	if warn.Len() != 0 {
		t.Errorf("warned %q", warn.String())
	}
	if err := resumeLog(dir, testHeader, 1, &warn); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Errorf("log with a line missing: %q, want it kept", b)
	}
	if want := "has no line for epoch 1, which " + filepath.Join(dir, CheckpointFile) + " holds"; !strings.Contains(warn.String(), want) {
		t.Errorf("warning %q, want it to say %q", warn.String(), want)
	}
}

func TestChangedSettings(t *testing.T) {
	was := Defaults()
	was.Dataset, was.Arch, was.NoiseSD = "cifar10", "cifar_resnet20", 0.25
	now := was
	now.Epochs, now.LR, now.Batch, now.Epsilon = 150, 0.01, 128, 64
	if d := changedSettings(was, now); d != nil {
		t.Errorf("longer training, other optimiser settings, attack settings without adversarial training: %v", d)
	}
	now.Dataset, now.NoiseSD, now.AdvTraining = "imagenet32", 0.5, true
	got := strings.Join(changedSettings(was, now), "; ")
	want := `dataset was "cifar10", now "imagenet32"; noise_sd was 0.25, now 0.5; adv_training was false, now true; epsilon was 256, now 64`
	if got != want {
		t.Errorf("changed settings\n%s\nwant\n%s", got, want)
	}
	// A method's knobs count when either side trains with it; a record from
	// before methods (no method) is Gaussian augmentation.
	was.Method, was.MACERLambda = "", 4
	now = was
	now.MACERLambda, now.ConsistencyLambda = 12, 20
	if d := changedSettings(was, now); d != nil {
		t.Errorf("knobs of methods neither side uses: %v", d)
	}
	now.Method = MACER
	got = strings.Join(changedSettings(was, now), "; ")
	want = `method was "gaussian", now "macer"; macer_lbd was 4, now 12`
	if got != want {
		t.Errorf("changed method\n%s\nwant\n%s", got, want)
	}
}

// TestResumeRefusesChangedSettings resumes a finished run with other
// settings: refused with a message naming each, and the output directory
// left byte for byte as it was.
func TestResumeRefusesChangedSettings(t *testing.T) {
	c := small(t)
	c.Epochs, c.TrainSubset, c.TestSubset = 1, 400, 200
	c.AdvTraining, c.Attack, c.Epsilon, c.NumSteps, c.NumNoiseVec = true, "PGD", 64, 1, 2
	if err := Run(context.Background(), c, io.Discard); err != nil {
		t.Fatal(err)
	}
	before := filetest.Snapshot(t, c.OutDir)
	changed := c
	changed.Resume, changed.Epochs = true, 2
	changed.Arch, changed.NoiseSD, changed.Attack, changed.NumSteps, changed.NumNoiseVec = "cifar_resnet20", 0.5, "DDN", 3, 1
	err := Run(context.Background(), changed, io.Discard)
	if err == nil {
		t.Fatal("resumed with other settings")
	}
	for _, want := range []string{`arch was "fashion_cnn", now "cifar_resnet20"`, "noise_sd was 0.25, now 0.5", "num_noise_vec was 2, now 1",
		`attack was "PGD", now "DDN"`, "num_steps was 1, now 3", "recorded in " + filepath.Join(c.OutDir, ConfigFile)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if after := filetest.Snapshot(t, c.OutDir); !reflect.DeepEqual(after, before) {
		t.Errorf("the refusal changed OUTDIR: %d files before, %d after", len(before), len(after))
	}
}

// TestRunRecordReadsBack checks that the record written by a run decodes
// into the Config that checkResumable compares.
func TestRunRecordReadsBack(t *testing.T) {
	c := Defaults()
	c.Dataset, c.Arch, c.OutDir, c.NoiseSD, c.Seed = "cifar10", "cifar_resnet110", t.TempDir(), 0.12, 1<<63+5
	tr := &Trainer{cfg: c}
	if err := tr.writeRunInfo(); err != nil {
		t.Fatal(err)
	}
	if err := checkResumable(c); err != nil {
		t.Errorf("the run's own settings: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(c.OutDir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Config Config }
	if err := json.Unmarshal(b, &rec); err != nil || rec.Config != c {
		t.Errorf("record %+v (%v), want %+v", rec.Config, err, c)
	}
}
