package smoothing

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/models/modelstest"
)

// templates is where make models exported the architectures.
var templates = testenv.ModelsDir()

// savedModel writes a freshly initialised arch as a reference checkpoint.
func savedModel(t *testing.T, arch string) string {
	t.Helper()
	m, err := models.New(arch, 1, models.Options{Dir: templates})
	if err != nil {
		t.Skipf("no exported %s (make models): %v", arch, err)
	}
	defer m.Close()
	path := filepath.Join(t.TempDir(), "checkpoint.pth.tar")
	if err := models.SaveCheckpoint(path, m, 0, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// fashionJobOptions certify every 2000th Fashion-MNIST test image.
func fashionJobOptions(model string) JobOptions {
	return JobOptions{Dataset: "fashion-mnist", Split: data.Test, Skip: 2000, Max: -1, Model: model,
		Load: models.Options{Device: "cpu", Dir: templates}, Sigma: 0.25, Batch: 100, Out: "log"}
}

// TestNewJob builds a job from a checkpoint: the reference's example
// selection, one sampling worker per CPU core, the model's classes.
func TestNewJob(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	o := fashionJobOptions(savedModel(t, "fashion_cnn"))
	job, m, err := NewJob(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer job.Sampler.Close()
	if want := []int{0, 2000, 4000, 6000, 8000}; !slices.Equal(job.Indices, want) {
		t.Errorf("indices %v, want %v", job.Indices, want)
	}
	s := job.Sampler
	if s.Sigma != 0.25 || s.Batch != 100 || s.NumClasses != 10 || !slices.Equal(s.Shape, []int64{1, 28, 28}) || s.Workers != runtime.NumCPU() || s.Device != "cpu" {
		t.Errorf("sampler %+v", s)
	}
	if job.Out != "log" || job.Resume {
		t.Errorf("job out %q resume %t", job.Out, job.Resume)
	}

	o.Shard = certify.Shard{Index: 1, Count: 2}
	o.Workers = 3
	sharded, m2, err := NewJob(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	defer sharded.Sampler.Close()
	if want := []int{2000, 6000}; !slices.Equal(sharded.Indices, want) || sharded.Sampler.Workers != 3 {
		t.Errorf("shard 1/2 with 3 workers: indices %v, workers %d", sharded.Indices, sharded.Sampler.Workers)
	}
}

func TestNewJobErrors(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	fashion := savedModel(t, "fashion_cnn")
	cifar := savedModel(t, "cifar_resnet20")
	sigma := "want a number in (0, 10000]: images lie in [0, 1]"
	for name, tc := range map[string]struct {
		change func(*JobOptions)
		want   string
	}{
		"sigma -1":  {func(o *JobOptions) { o.Sigma = -1 }, "sigma -1: " + sigma},
		"sigma 0":   {func(o *JobOptions) { o.Sigma = 0 }, "sigma 0: " + sigma},
		"sigma NaN": {func(o *JobOptions) { o.Sigma = math.NaN() }, "sigma NaN: " + sigma},
		"sigma inf": {func(o *JobOptions) { o.Sigma = math.Inf(1) }, "sigma +Inf: " + sigma},
		"sigma big": {func(o *JobOptions) { o.Sigma = 1e308 }, "sigma 1e+308: " + sigma},
		"batch":     {func(o *JobOptions) { o.Batch = 0 }, "batch 0: want >= 1"},
		"workers":   {func(o *JobOptions) { o.Workers = -1 }, "workers -1: want >= 0"},
		"group":     {func(o *JobOptions) { o.Group = -2 }, "group -2: want >= 0"},
		"skip":      {func(o *JobOptions) { o.Skip = 0 }, "skip 0: want >= 1"},
		"max":       {func(o *JobOptions) { o.Max = -2 }, "max -2: want >= -1"},
		"device":    {func(o *JobOptions) { o.Load.Device = "cpu:1" }, `device "cpu:1": cpu takes no index`},
		"dataset":   {func(o *JobOptions) { o.Dataset = "mnist" }, `unknown dataset "mnist"`},
		"model":     {func(o *JobOptions) { o.Model = filepath.Join(t.TempDir(), "none") }, "none"},
		"shape":     {func(o *JobOptions) { o.Model = cifar }, "takes 3x32x32 inputs but fashion-mnist images are 1x28x28"},
		"arch":      {func(o *JobOptions) { o.Load.Arch = "cifar_resnet20" }, "is a fashion_cnn checkpoint, not cifar_resnet20"},
	} {
		o := fashionJobOptions(fashion)
		tc.change(&o)
		job, m, err := NewJob(o)
		if err == nil {
			m.Close()
			job.Sampler.Close()
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestNewJobPlainModel certifies with a plain traced TorchScript model: the
// dataset says what it takes and how many classes it has.
func TestNewJobPlainModel(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	p := modelstest.WritePlain(t)
	o := fashionJobOptions(p.Models["traced"])
	o.Out = filepath.Join(t.TempDir(), "log")
	job, m, err := NewJob(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer job.Sampler.Close()
	if s := job.Sampler; s.NumClasses != 10 || !slices.Equal(s.Shape, []int64{1, 28, 28}) {
		t.Errorf("sampler %+v", s)
	}
	if err := Certify(context.Background(), job, certify.CertifyParams{N0: 10, N: 100, Alpha: 0.001, Sigma: 0.25}); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, o.Out); len(lines) != 1+len(job.Indices) {
		t.Errorf("log has %d lines for %d examples", len(lines), len(job.Indices))
	}
}

// TestNewJobRefusesWrongClasses is the case of a 1000-class ImageNet32
// model certifying CIFAR-10 (same 3x32x32 images), which used to give
// numbers and exit 0.
func TestNewJobRefusesWrongClasses(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "cifar-10-batches-bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two CIFAR-10 records: a label byte and 3072 pixel bytes each.
	if err := os.WriteFile(filepath.Join(bin, "test_batch.bin"), make([]byte, 2*3073), 0o644); err != nil {
		t.Fatal(err)
	}
	model := savedModel(t, "imagenet32_resnet110")
	o := JobOptions{Dataset: "cifar10", DataDir: dir, Split: data.Test, Skip: 1, Max: -1, Model: model,
		Load: models.Options{Device: "cpu", Dir: templates}, Sigma: 0.25, Batch: 100, Out: filepath.Join(dir, "log")}
	job, m, err := NewJob(o)
	if err == nil {
		m.Close()
		job.Sampler.Close()
		t.Fatal("an ImageNet32 model made a CIFAR-10 job")
	}
	if want := "model " + model + " outputs 1000 classes but cifar10 has 10"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
