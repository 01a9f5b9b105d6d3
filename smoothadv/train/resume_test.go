package train

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/filetest"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

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
		`attack was "PGD", now "DDN"`, "num_steps was 1, now 3", "recorded in " + filepath.Join(c.OutDir, settings.ConfigFile)} {
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
	c := settings.Defaults()
	c.Dataset, c.Arch, c.OutDir, c.NoiseSD, c.Seed = "cifar10", "cifar_resnet110", t.TempDir(), 0.12, 1<<63+5
	tr := &Trainer{cfg: c}
	if err := tr.writeRunInfo(); err != nil {
		t.Fatal(err)
	}
	if err := checkResumable(c); err != nil {
		t.Errorf("the run's own settings: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(c.OutDir, settings.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Config settings.Config }
	if err := json.Unmarshal(b, &rec); err != nil || rec.Config != c {
		t.Errorf("record %+v (%v), want %+v", rec.Config, err, c)
	}
}

// TestCheckpointEpochAsTrainPGD: the checkpoint's 'epoch' is the number of
// epochs done, as train_pgd.py saves it ({'epoch': epoch + 1, ...}), both
// ways. A checkpoint saved by the reference's own code after its first
// epoch resumes at epoch 1 (one epoch left of two, not none); ours after two
// epochs reads 2 in PyTorch, where the reference's resume starts.
func TestCheckpointEpochAsTrainPGD(t *testing.T) {
	c := small(t)
	script := `import sys; sys.path.insert(0, "../models"); import torch; from export_models import build
torch.manual_seed(4)
model = build("fashion_cnn")
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
epoch = 0  # train_pgd.py after its first epoch:
torch.save({'epoch': epoch + 1, 'arch': "fashion_cnn", 'state_dict': model.state_dict(), 'optimizer': optimizer.state_dict()}, sys.argv[1])`
	path := filepath.Join(c.OutDir, settings.CheckpointFile)
	if out, err := exec.Command(testenv.Python(), "-c", script, path).CombinedOutput(); err != nil {
		t.Fatalf("saving as train_pgd.py (needs %s with torch): %v\n%s", testenv.Python(), err, out)
	}
	c.Resume = true
	var out strings.Builder
	if err := Run(context.Background(), c, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Contains(got, "epoch 0:") || !strings.Contains(got, "epoch 1:") {
		t.Errorf("resuming the reference's checkpoint of one epoch trained:\n%s\nwant epoch 1 alone", got)
	}
	const read = `import sys, torch; print(torch.load(sys.argv[1], map_location="cpu")["epoch"])`
	b, err := exec.Command(testenv.Python(), "-c", read, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "2" {
		t.Errorf("PyTorch reads 'epoch' %s from our checkpoint after two epochs, want 2 (epochs done, as train_pgd.py)", got)
	}
}

// TestFreshRunKeepsAnotherRun: training afresh into a directory that holds
// a run with other settings is refused and changes nothing; with Overwrite
// the old checkpoint is gone before the first epoch starts, so that a kill
// in epoch 0 cannot leave the old weights to be resumed.
func TestFreshRunKeepsAnotherRun(t *testing.T) {
	c := small(t)
	c.Epochs, c.TrainSubset, c.TestSubset = 1, 400, 200
	if err := Run(context.Background(), c, io.Discard); err != nil {
		t.Fatal(err)
	}
	before := filetest.Snapshot(t, c.OutDir)
	other := c
	other.Arch = "fashion_lenet"
	err := Run(context.Background(), other, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "holds another run") || !strings.Contains(err.Error(), `arch was "fashion_cnn", now "fashion_lenet"`) {
		t.Fatalf("fresh run over another run: %v", err)
	}
	if after := filetest.Snapshot(t, c.OutDir); !reflect.DeepEqual(after, before) {
		t.Error("the refusal changed OUTDIR")
	}
	other.Overwrite = true
	tr, start, err := newTrainer(other, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if _, err := os.Stat(filepath.Join(c.OutDir, settings.CheckpointFile)); start != 0 || !os.IsNotExist(err) {
		t.Errorf("an overwriting run ready to train epoch %d keeps the old checkpoint (%v)", start, err)
	}
	// While it holds the directory, another run is refused.
	if _, _, err := newTrainer(other, nil, io.Discard); err == nil || !strings.Contains(err.Error(), c.OutDir+" is busy") {
		t.Errorf("a second run in the same directory: %v", err)
	}
}

// TestResumeBeforeTheFirstCheckpoint: a run stopped before its first
// checkpoint leaves nothing to resume; --resume then starts it.
func TestResumeBeforeTheFirstCheckpoint(t *testing.T) {
	c := small(t)
	c.Epochs, c.TrainSubset, c.TestSubset, c.Resume = 1, 400, 200, true
	var out strings.Builder
	if err := Run(context.Background(), c, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "nothing to resume") || !strings.Contains(got, "epoch 0:") {
		t.Errorf("resume with no checkpoint said:\n%s", got)
	}
}

// TestResumeChecksTheCheckpoint: without run.json (removed, as a copied
// folder may lack it), a resume with another noise level than the one the
// checkpoint records is refused.
func TestResumeChecksTheCheckpoint(t *testing.T) {
	c := small(t)
	c.Epochs, c.TrainSubset, c.TestSubset = 1, 400, 200
	if err := Run(context.Background(), c, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(c.OutDir, settings.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	other := c
	other.Resume, other.Epochs, other.NoiseSD = true, 2, 0.5
	if err := Run(context.Background(), other, io.Discard); err == nil || !strings.Contains(err.Error(), "its checkpoint was trained with noise_sd 0.25, not 0.5") {
		t.Errorf("resume at another noise level: %v", err)
	}
}

// TestResumeOnOtherThreadsSaysSo: a run resumed with another number of
// intra-op threads than run.json records says that its weights may drift.
func TestResumeOnOtherThreadsSaysSo(t *testing.T) {
	c := small(t)
	c.Epochs, c.TrainSubset, c.TestSubset = 1, 400, 200
	if err := Run(context.Background(), c, io.Discard); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.OutDir, settings.ConfigFile)
	var rec map[string]any
	if err := json.Unmarshal([]byte(filetest.Read(t, path)), &rec); err != nil {
		t.Fatal(err)
	}
	rec["threads"] = 99
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Resume, c.Epochs = true, 2
	var out strings.Builder
	if err := Run(context.Background(), c, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "was trained so far with 99 intra-op threads per process") {
		t.Errorf("resume on other threads said:\n%s", out.String())
	}
}
