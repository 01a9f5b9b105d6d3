package smoothing

import (
	"fmt"
	"io"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/noiselevel"
	"github.com/smoothadv/smoothadv/internal/progress"
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

	Model string // a TorchScript model file or a reference checkpoint.pth.tar
	// Load says how to load the model: device (as users write it, see
	// torchbind.ResolveDevice), architecture, input layer. NewJob sets its
	// Fit to the dataset.
	Load models.Options

	Sigma   float64
	Batch   int
	Seed    uint64
	Workers int // batches run at once; 0 means one per CPU core on a CPU, 1 on a GPU
	Group   int // examples sampled together; 0 fills a batch
	// Unoptimized samples with the model as loaded instead of a frozen copy
	// optimised for inference (whose logits differ in the last bits).
	Unoptimized bool
	// Precision of the sampler's forward passes ("" is fp32). Certificates
	// then hold for the base classifier in that precision.
	Precision torchbind.Precision
	// ChannelsLast passes the sampler's noisy inputs in channels-last memory
	// format (the same values; convolutions may pick other kernels).
	ChannelsLast bool

	Out    string // the log file
	Resume bool
	// ResumeUnchecked resumes (as Resume does) also a log that has no
	// recorded run parameters to check (see certify.OpenRunLog).
	ResumeUnchecked bool
	// Overwrite replaces a log of another run (see certify.OpenRunLog).
	Overwrite bool

	Progress progress.Reporter // nil reports nothing
	Notes    io.Writer         // notes for the user; nil: stderr
}

// CheckSigma refuses a noise level that CERTIFY and PREDICT cannot use
// (noiselevel.CheckCertify).
func CheckSigma(sigma float64) error {
	if err := noiselevel.CheckCertify(sigma); err != nil {
		return fmt.Errorf("sigma %w", err)
	}
	return nil
}

// check refuses options that cannot make a job, before anything is opened.
func (o JobOptions) check() error {
	if err := CheckSigma(o.Sigma); err != nil {
		return err
	}
	switch {
	case o.Batch < 1:
		return fmt.Errorf("batch %d: want >= 1", o.Batch)
	case o.Workers < 0:
		return fmt.Errorf("workers %d: want >= 0 (0: one per CPU core on cpu, 1 on cuda)", o.Workers)
	case o.Group < 0:
		return fmt.Errorf("group %d: want >= 0 (0: enough examples to fill a batch)", o.Group)
	case o.Skip < 1:
		return fmt.Errorf("skip %d: want >= 1", o.Skip)
	case o.Max < -1:
		return fmt.Errorf("max %d: want >= -1 (-1: all examples)", o.Max)
	}
	return nil
}

// NewJob opens the dataset and the model and builds the job's sampler and
// example list. The model must fit the dataset (see models.Options.Fit).
// The caller closes the model and the job's sampler.
func NewJob(o JobOptions) (Job, *models.Model, error) {
	if err := o.check(); err != nil {
		return Job{}, nil, err
	}
	load := o.Load
	var err error
	if load.Device, err = torchbind.ResolveDevice(load.Device); err != nil {
		return Job{}, nil, err
	}
	if o.Precision == "" {
		o.Precision = torchbind.FP32
	}
	if err := o.Precision.CheckDevice(load.Device); err != nil {
		return Job{}, nil, err
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
	shape := ds.Shape()
	input := []int64{int64(shape.C), int64(shape.H), int64(shape.W)}
	load.Fit = &models.Fit{Dataset: o.Dataset, Input: input, NumClasses: ds.NumClasses()}
	m, err := models.Load(o.Model, load)
	if err != nil {
		return Job{}, nil, err
	}
	// Every sampling path evaluates: a model saved in training mode would
	// otherwise use batch statistics, and its lines change with --batch.
	if err := m.Train(false); err != nil {
		m.Close()
		return Job{}, nil, err
	}
	workers, err := Workers(o.Workers, m.Device())
	if err != nil {
		m.Close()
		return Job{}, nil, err
	}
	params, err := runParams(o, ds.Len(), shard, m, workers)
	if err != nil {
		m.Close()
		return Job{}, nil, err
	}
	sampler := &Sampler{
		Model: m, Name: o.Model, Device: m.Device(), Sigma: o.Sigma, Batch: o.Batch, NumClasses: ds.NumClasses(),
		Shape: input, Seed: o.Seed, Workers: workers,
		Infer: torchbind.InferOptions{Precision: o.Precision, ChannelsLast: o.ChannelsLast},
	}
	if !o.Unoptimized {
		if err := sampler.UseOptimized(m.Module); err != nil {
			m.Close()
			return Job{}, nil, err
		}
	}
	job := Job{Dataset: ds, Sampler: sampler, Indices: indices, Out: o.Out, Resume: o.Resume,
		ResumeUnchecked: o.ResumeUnchecked, Overwrite: o.Overwrite, Params: params, Group: o.Group, Progress: o.Progress, Notes: o.Notes}
	return job, m, nil
}
