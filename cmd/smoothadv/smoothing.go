package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/smoothing"
	"github.com/smoothadv/smoothadv/torchbind"
)

// modelFlags pick a device and say how to read a model file.
type modelFlags struct {
	device             string
	arch               string
	normalization      string
	forceNormalization bool
}

func (f *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.device, "device", "auto", `device to run on: "cpu", "cuda", "cuda:N", or "auto" (cuda:0 when libtorch sees a GPU)`)
	fs.StringVar(&f.arch, "arch", "", "architecture of a model file that does not record it (a MACER checkpoint; not needed for a plain TorchScript model)")
	fs.StringVar(&f.normalization, "normalization", "", `input layer: "normalize" (NormalizeLayer, the default for reference checkpoints), "center" (InputCenterLayer) or "none" (the default for MACER's checkpoints)`)
	fs.BoolVar(&f.forceNormalization, "force-normalization", false, "use --normalization even where the model records another input layer")
}

// resolvedDevice is the --device value as libtorch takes it, checked.
func (f *modelFlags) resolvedDevice() (string, error) { return torchbind.ResolveDevice(f.device) }

func (f *modelFlags) loadOptions() models.Options {
	return models.Options{Device: f.device, Arch: f.arch, Normalization: f.normalization, ForceNormalization: f.forceNormalization}
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
	resumeUnchecked  bool
	overwrite        bool
	shard            string
	workers          int
	group            int
	unoptimized      bool
	infer            inferFlags
}

// inferFlags say how the sampler runs its forward passes; certify, predict
// and bench certify share them.
type inferFlags struct {
	precision    string
	channelsLast bool
}

func (f *inferFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.precision, "precision", "fp32", "precision of the sampler's forward passes: fp32, bf16 (autocast, cpu or cuda) "+
		"or fp16 (autocast, cuda only); the certificate then holds for the base classifier run in that precision")
	fs.BoolVar(&f.channelsLast, "channels-last", false, "give the sampler's model its noisy inputs in channels-last memory format (same values)")
}

func (f *inferFlags) options() (torchbind.InferOptions, error) {
	p, err := torchbind.ParsePrecision(f.precision)
	return torchbind.InferOptions{Precision: p, ChannelsLast: f.channelsLast}, err
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
	fs.BoolVar(&f.resume, "resume", false, "continue an existing output file after its last complete line; "+
		"refused when the run parameters recorded beside it (the output file's name + .json) differ from this run's")
	fs.BoolVar(&f.resumeUnchecked, "resume-unchecked", false, "like --resume, but also continue an output file that has no recorded "+
		"run parameters (one written by the Python reference or an older smoothadv), which cannot be checked")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace an output file that holds another run's lines (its recorded run parameters differ); "+
		"without it such a file is refused, so that a finished run is not lost by a mistyped name")
	fs.StringVar(&f.shard, "shard", "", `process part i of n of the selected examples: "i/n", "auto" (Slurm array) or "auto/n" (Kubernetes indexed Job or Slurm)`)
	fs.IntVar(&f.workers, "workers", 0, "batches run at once (0: one per CPU core on cpu, 1 on cuda)")
	fs.BoolVar(&f.unoptimized, "unoptimized", false, "sample with the model as loaded, not a frozen copy optimised for inference")
	fs.IntVar(&f.group, "group", 0, "examples sampled together in shared batches (0: enough to fill a batch with N0 samples each for certify, N for predict; ten times as many with --target-radius)")
	f.infer.register(fs)
}

// setup opens the dataset and model, and builds the job's sampler and
// example list. Before it opens anything, check validates the command's own
// parameters given sigma.
func (f *smoothingFlags) setup(datasetName, modelPath, sigmaArg, out string, notes io.Writer, check func(sigma float64) error) (smoothing.Job, *models.Model, error) {
	sigma, err := strconv.ParseFloat(sigmaArg, 64)
	if err != nil {
		return smoothing.Job{}, nil, fmt.Errorf("SIGMA must be a number, got %q", sigmaArg)
	}
	if err := smoothing.CheckSigma(sigma); err != nil {
		return smoothing.Job{}, nil, err
	}
	if err := check(sigma); err != nil {
		return smoothing.Job{}, nil, err
	}
	shard, err := certify.ParseShard(f.shard, os.LookupEnv)
	if err != nil {
		return smoothing.Job{}, nil, err
	}
	infer, err := f.infer.options()
	if err != nil {
		return smoothing.Job{}, nil, err
	}
	job, m, err := smoothing.NewJob(smoothing.JobOptions{
		Dataset: datasetName, DataDir: f.dataDir, Split: f.split, Skip: f.skip, Max: f.max, Shard: shard,
		Model: modelPath, Load: f.loadOptions(),
		Sigma: sigma, Batch: f.batch, Seed: f.seed, Workers: f.workers, Group: f.group, Unoptimized: f.unoptimized,
		Precision: infer.Precision, ChannelsLast: infer.ChannelsLast,
		Out: out, Resume: f.resume, ResumeUnchecked: f.resumeUnchecked, Overwrite: f.overwrite, Progress: progress.ForStderr("example"), Notes: notes,
	})
	return job, m, err
}

func newCertifyCmd() *cobra.Command {
	var f smoothingFlags
	var n0 int
	var targetRadius, radius string
	cmd := &cobra.Command{
		Use:   "certify DATASET MODEL SIGMA OUTFILE",
		Short: "Certify the smoothed classifier's robustness on a dataset (Cohen et al.'s CERTIFY)",
		Long: `Certify runs CERTIFY on the selected examples and writes the reference's log:
idx, label, predict, radius, correct, time; one line per example, flushed as written.
MODEL is a TorchScript model file or a reference checkpoint.pth.tar.

--target-radius R asks only whether each example is certified at R, with up to N
samples: it looks at the estimation samples in growing stages and stops as soon as
they certify R or show that N samples could not, with the same 1 - alpha guarantee
(alpha split over the looks). --target-radius R1,R2,... does the same for a table's
radii in one run: it stops once the largest is certified, or once N samples could not
certify the next radius above the one certified so far. The log keeps the reference's
format; its radius is what the samples used certify (at least R when R is certified).
OUTFILE.samples records the estimation samples each example used.`,
		Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := certify.ParseTargets(targetRadius)
			if err != nil {
				return fmt.Errorf("--target-radius: %w", err)
			}
			var p certify.CertifyParams
			job, m, err := f.setup(args[0], args[1], args[2], args[3], cmd.ErrOrStderr(), func(sigma float64) error {
				p = certify.CertifyParams{N0: n0, N: f.n, Alpha: f.alpha, Sigma: sigma,
					Radius: certify.RadiusRule(radius), TargetRadius: targets}
				return p.Validate()
			})
			if err != nil {
				return err
			}
			defer m.Close()
			defer job.Sampler.Close()
			if err := smoothing.Certify(cmd.Context(), job, p); err != nil {
				return err
			}
			if targets.Adaptive() {
				return reportSamples(cmd, args[3], p)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), 100000)
	cmd.Flags().IntVar(&n0, "N0", 100, "number of samples to select the class")
	cmd.Flags().StringVar(&targetRadius, "target-radius", "", "certify adaptively at this radius, or at these radii (R1,R2,...), with up to N samples per example (none: fixed N, as the reference)")
	cmd.Flags().StringVar(&radius, "radius", string(certify.RadiusPA), `radius: "pa" (the reference's, sigma * PhiInverse(pA_lower)) or "pb" `+
		`(Theorem 1's sigma/2 * (PhiInverse(pA_lower) - PhiInverse(pB_upper)), alpha split between the bounds)`)
	return cmd
}

// reportSamples says how many estimation samples the examples of an
// adaptive run used, from the samples file beside its log.
func reportSamples(cmd *cobra.Command, out string, p certify.CertifyParams) error {
	samples, err := certify.ReadSamples(out)
	if err != nil {
		return err
	}
	total := 0
	for _, n := range samples {
		total += n
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d examples used %.1f estimation samples each on average (at most N = %d), and N0 = %d each to select the class; per example in %s\n",
		len(samples), float64(total)/float64(max(len(samples), 1)), p.N, p.N0, certify.SamplesPath(out))
	return nil
}

func init() { commands = append(commands, newCertifyCmd) }
