package smoothing

import (
	"fmt"
	"runtime"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/certify/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// JobOptions say what a certify or predict job runs on: which examples of
// which dataset, which model, and how to sample. The certify and predict
// commands and the experiment runner build their jobs from them.
type JobOptions struct {
	Dataset string
	DataDir string // "" means the dataset's usual place
	Split   string // data.Train or data.Test
	Skip    int    // process every Skip-th example
	Max     int    // stop before example index Max; -1 means all
	Shard   certify.Shard

	Model string         // a TorchScript model file or a reference checkpoint.pth.tar
	Load  models.Options // device ("auto" allowed, see ResolveDevice), architecture, input layer

	Sigma   float64
	Batch   int
	Seed    uint64
	Workers int // batches run at once; 0 means one per CPU core on a CPU, 1 on a GPU
	Group   int // examples sampled together; 0 fills a batch
	// Unoptimized samples with the model as loaded instead of a frozen copy
	// optimised for inference (whose logits differ in the last bits).
	Unoptimized bool

	Out    string // the log file
	Resume bool
	// ResumeUnchecked resumes (as Resume does) also a log that has no
	// recorded run parameters to check (see certify.OpenRunLog).
	ResumeUnchecked bool

	Progress progress.Reporter // nil reports nothing
}

// ResolveDevice turns a device name as users write it into one libtorch
// takes: "auto" is cuda:0 when libtorch sees a GPU and cpu otherwise, and
// "cuda" is cuda:0. Other names are returned as they are.
func ResolveDevice(device string) string {
	switch device {
	case "auto":
		if torchbind.CUDAAvailable() {
			return "cuda:0"
		}
		return "cpu"
	case "cuda":
		return "cuda:0"
	}
	return device
}

// NewJob opens the dataset and the model and builds the job's sampler and
// example list. The caller closes the model and the job's sampler.
func NewJob(o JobOptions) (Job, *models.Model, error) {
	if !(o.Sigma >= 0) {
		return Job{}, nil, fmt.Errorf("sigma must be a non-negative number, got %v", o.Sigma)
	}
	ds, err := data.Open(o.Dataset, o.DataDir, o.Split)
	if err != nil {
		return Job{}, nil, err
	}
	shard := o.Shard
	if shard == (certify.Shard{}) {
		shard = certify.Whole
	}
	indices, err := certify.Selection{DatasetLen: ds.Len(), Skip: o.Skip, Max: o.Max}.Shard(shard)
	if err != nil {
		return Job{}, nil, err
	}
	load := o.Load
	load.Device = ResolveDevice(load.Device)
	m, err := models.Load(o.Model, load)
	if err != nil {
		return Job{}, nil, err
	}
	shape := ds.Shape()
	if in := m.Meta.Input; len(in) == 3 && (in[0] != int64(shape.C) || in[1] != int64(shape.H) || in[2] != int64(shape.W)) {
		m.Close()
		return Job{}, nil, fmt.Errorf("model %s takes %dx%dx%d inputs but %s images are %v", o.Model, in[0], in[1], in[2], o.Dataset, shape)
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 1
		if m.Device() == "cpu" {
			workers = runtime.NumCPU()
		}
	}
	params, err := runParams(o, ds.Len(), shard, m, workers)
	if err != nil {
		m.Close()
		return Job{}, nil, err
	}
	sampler := &Sampler{
		Model: m, Device: m.Device(), Sigma: o.Sigma, Batch: o.Batch, NumClasses: max(m.Meta.NumClasses, ds.NumClasses()),
		Shape: []int64{int64(shape.C), int64(shape.H), int64(shape.W)}, Seed: o.Seed, Workers: workers,
	}
	if !o.Unoptimized {
		if err := sampler.UseOptimized(m.Module); err != nil {
			m.Close()
			return Job{}, nil, err
		}
	}
	job := Job{Dataset: ds, Sampler: sampler, Indices: indices, Out: o.Out, Resume: o.Resume,
		ResumeUnchecked: o.ResumeUnchecked, Params: params, Group: o.Group, Progress: o.Progress}
	return job, m, nil
}
