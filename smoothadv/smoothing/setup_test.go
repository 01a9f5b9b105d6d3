package smoothing

import (
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// templates is where make models exported the architectures.
var templates = filepath.Join("..", "..", "build", "models")

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
	if _, err := data.Open("fashion-mnist", "", data.Test); err != nil {
		t.Skipf("no Fashion-MNIST: %v", err)
	}
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
	if _, err := data.Open("fashion-mnist", "", data.Test); err != nil {
		t.Skipf("no Fashion-MNIST: %v", err)
	}
	fashion := savedModel(t, "fashion_cnn")
	cifar := savedModel(t, "cifar_resnet20")
	for name, tc := range map[string]struct {
		change func(*JobOptions)
		want   string
	}{
		"sigma":   {func(o *JobOptions) { o.Sigma = -1 }, "sigma must be a non-negative number"},
		"dataset": {func(o *JobOptions) { o.Dataset = "mnist" }, `unknown dataset "mnist"`},
		"skip":    {func(o *JobOptions) { o.Skip = 0 }, "skip >= 1"},
		"model":   {func(o *JobOptions) { o.Model = filepath.Join(t.TempDir(), "none") }, "none"},
		"shape":   {func(o *JobOptions) { o.Model = cifar }, "takes 3x32x32 inputs but fashion-mnist images are 1x28x28"},
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

func TestResolveDevice(t *testing.T) {
	auto := "cpu"
	if torchbind.CUDAAvailable() {
		auto = "cuda:0"
	}
	for in, want := range map[string]string{"auto": auto, "cuda": "cuda:0", "cuda:1": "cuda:1", "cpu": "cpu"} {
		if got := ResolveDevice(in); got != want {
			t.Errorf("ResolveDevice(%q) = %q, want %q", in, got, want)
		}
	}
}
