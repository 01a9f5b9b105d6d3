package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/certify/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/smoothing"
	"github.com/smoothadv/smoothadv/torchbind"
)

// modelFlags pick a device and say how to read a model file.
type modelFlags struct {
	device        string
	arch          string
	normalization string
}

func (f *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.device, "device", "auto", `device to run on: "cpu", "cuda", "cuda:N", or "auto" (cuda:0 when libtorch sees a GPU)`)
	fs.StringVar(&f.arch, "arch", "", "architecture of a model file that does not record it")
	fs.StringVar(&f.normalization, "normalization", "", `input layer: "normalize" (NormalizeLayer, the default for reference checkpoints) or "center" (InputCenterLayer)`)
}

func (f *modelFlags) resolvedDevice() string {
	switch f.device {
	case "auto":
		if torchbind.CUDAAvailable() {
			return "cuda:0"
		}
		return "cpu"
	case "cuda":
		return "cuda:0"
	}
	return f.device
}

func (f *modelFlags) load(path string) (*models.Model, error) {
	return models.Load(path, models.Options{Device: f.resolvedDevice(), Arch: f.arch, Normalization: f.normalization})
}

// smoothingFlags are the flags certify and predict share with the reference
// (batch, skip, max, split, N, alpha) and ours.
type smoothingFlags struct {
	modelFlags
	batch, skip, max int
	split            string
	n                int
	alpha            float64
	dataDir          string
	seed             uint64
	resume           bool
	shard            string
	workers          int
	group            int
}

func (f *smoothingFlags) register(fs *pflag.FlagSet, defaultN int) {
	f.modelFlags.register(fs)
	fs.IntVar(&f.batch, "batch", 1000, "batch size")
	fs.IntVar(&f.skip, "skip", 1, "process every skip-th example")
	fs.IntVar(&f.max, "max", -1, "stop before example index max (-1: all)")
	fs.StringVar(&f.split, "split", "test", "train or test")
	fs.IntVar(&f.n, "N", defaultN, "number of samples to use")
	fs.Float64Var(&f.alpha, "alpha", 0.001, "failure probability")
	fs.StringVar(&f.dataDir, "data-dir", "", "dataset directory (default: the dataset's usual place)")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the noise")
	fs.BoolVar(&f.resume, "resume", false, "continue an existing output file after its last complete line")
	fs.StringVar(&f.shard, "shard", "", `process part i of n of the selected examples: "i/n", "auto" (Slurm array) or "auto/n" (Kubernetes indexed Job or Slurm)`)
	fs.IntVar(&f.workers, "workers", 0, "batches run at once (0: one per CPU core on cpu, 1 on cuda)")
	fs.IntVar(&f.group, "group", 0, "examples sampled together in shared batches (0: enough to fill a batch)")
}

// setup opens the dataset and model, and builds the job's sampler and
// example list.
func (f *smoothingFlags) setup(datasetName, modelPath, sigmaArg, out string) (smoothing.Job, *models.Model, float64, error) {
	sigma, err := strconv.ParseFloat(sigmaArg, 64)
	if err != nil || !(sigma >= 0) {
		return smoothing.Job{}, nil, 0, fmt.Errorf("SIGMA must be a non-negative number, got %q", sigmaArg)
	}
	ds, err := data.Open(datasetName, f.dataDir, f.split)
	if err != nil {
		return smoothing.Job{}, nil, 0, err
	}
	shard, err := certify.ParseShard(f.shard, os.LookupEnv)
	if err != nil {
		return smoothing.Job{}, nil, 0, err
	}
	indices, err := certify.Selection{DatasetLen: ds.Len(), Skip: f.skip, Max: f.max}.Shard(shard)
	if err != nil {
		return smoothing.Job{}, nil, 0, err
	}
	m, err := f.load(modelPath)
	if err != nil {
		return smoothing.Job{}, nil, 0, err
	}
	shape := ds.Shape()
	if in := m.Meta.Input; len(in) == 3 && (in[0] != int64(shape.C) || in[1] != int64(shape.H) || in[2] != int64(shape.W)) {
		m.Close()
		return smoothing.Job{}, nil, 0, fmt.Errorf("model %s takes %dx%dx%d inputs but %s images are %v", modelPath, in[0], in[1], in[2], datasetName, shape)
	}
	workers := f.workers
	if workers <= 0 {
		workers = 1
		if m.Device() == "cpu" {
			workers = runtime.NumCPU()
		}
	}
	sampler := &smoothing.Sampler{
		Model: m, Device: m.Device(), Sigma: sigma, Batch: f.batch, NumClasses: max(m.Meta.NumClasses, ds.NumClasses()),
		Shape: []int64{int64(shape.C), int64(shape.H), int64(shape.W)}, Seed: f.seed, Workers: workers,
	}
	if err := smoothing.PreferChannelsLast(sampler, m.Module); err != nil {
		m.Close()
		return smoothing.Job{}, nil, 0, err
	}
	job := smoothing.Job{Dataset: ds, Sampler: sampler, Indices: indices, Out: out, Resume: f.resume,
		Group: f.group, Progress: progress.ForStderr("example")}
	return job, m, sigma, nil
}

func newCertifyCmd() *cobra.Command {
	var f smoothingFlags
	var n0 int
	cmd := &cobra.Command{
		Use:   "certify DATASET MODEL SIGMA OUTFILE",
		Short: "Certify the smoothed classifier's robustness on a dataset (Cohen et al.'s CERTIFY)",
		Long: `Certify runs CERTIFY on the selected examples and writes the reference's log:
idx, label, predict, radius, correct, time; one line per example, flushed as written.
MODEL is a TorchScript model file or a reference checkpoint.pth.tar.`,
		Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, m, sigma, err := f.setup(args[0], args[1], args[2], args[3])
			if err != nil {
				return err
			}
			defer m.Close()
			defer job.Sampler.Close()
			return smoothing.Certify(cmd.Context(), job, certify.CertifyParams{N0: n0, N: f.n, Alpha: f.alpha, Sigma: sigma})
		},
	}
	f.register(cmd.Flags(), 100000)
	cmd.Flags().IntVar(&n0, "N0", 100, "number of samples to select the class")
	return cmd
}

func init() { commands = append(commands, newCertifyCmd) }
