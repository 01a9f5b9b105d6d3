package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/internal/outputs"
	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/experiment"
	"github.com/smoothadv/smoothadv/smoothadv/train"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
)

func newTrainCmd() *cobra.Command {
	cfg := settings.Defaults()
	var mf modelFlags
	var gpu, experimentFile, out, cpuProfile string
	cmd := &cobra.Command{
		Use:   "train DATASET ARCH OUTDIR | train -c EXPERIMENT.yaml",
		Short: "Train a base classifier: Gaussian augmentation, SmoothAdv, MACER, consistency or SmoothMix",
		Long: `Train trains ARCH on DATASET into OUTDIR as the reference's train.py (Gaussian
augmentation, the default) and train_pgd.py (--adv-training: SmoothAdv) do, with their flags.
--method macer|consistency|smoothmix trains as MACER's, consistency regularisation's and
SmoothMix's references do, with their knobs under the method's name (--macer-gamma) and the
shared ones (--num-noise-vec, --noise_sd, the optimizer's) as they are; consistency with
--adv-training trains on SmoothAdv's attack (--attack, --epsilon, --num-steps, --warmup).
OUTDIR gets log.txt, checkpoint.pth.tar (every epoch, loadable by the reference's scripts),
checkpoint_line.txt (the checkpointed epoch's log line, for resuming) and run.json (the resolved
configuration and versions). --resume continues from the checkpoint and ends with the weights an
uninterrupted run would have; it refuses settings that differ from run.json's (dataset, arch,
seed, noise_sd, noise vectors, multi-noise, adversarial training and its attack's settings, the
method and its own knobs), while --epochs may grow.
With -c it trains every run of an experiment file (see smoothadv run), and nothing else.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if experimentFile != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(3)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if experimentFile != "" {
				return runOptions{config: experimentFile, out: out, only: string(experiment.Train)}.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			cfg.Dataset, cfg.Arch, cfg.OutDir = args[0], args[1], args[2]
			if gpu != "" {
				mf.device = "cuda:" + gpu
			}
			if cfg.UseUnlabelled && cfg.UnlabelledPath == "" {
				return fmt.Errorf("--use-unlabelled needs --unlabelled-path (the pseudo-labelled pickle)")
			}
			if cpuProfile != "" {
				err := outputs.CheckDistinct([]outputs.File{{Role: "--pretrained-model", Path: cfg.PretrainedModel},
					{Role: "--unlabelled-path", Path: cfg.UnlabelledPath},
					{Role: "OUTDIR's checkpoint", Path: filepath.Join(cfg.OutDir, settings.CheckpointFile)},
					{Role: "OUTDIR's log", Path: filepath.Join(cfg.OutDir, trainlog.File)},
					{Role: "OUTDIR's record", Path: filepath.Join(cfg.OutDir, settings.ConfigFile)}},
					[]outputs.File{{Role: "--cpuprofile", Path: cpuProfile}})
				if err != nil {
					return err
				}
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return inJob(func(g *dist.Group) error {
				device, err := g.Device(mf.device)
				if err != nil {
					return err
				}
				cfg.Device, cfg.Normalization = device, mf.normalization
				return train.RunIn(cmd.Context(), cfg, g, cmd.OutOrStdout())
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&experimentFile, "config", "c", "", "train the runs of this experiment file")
	fs.StringVar(&out, "out", "results", "with -c: the results folder")
	fs.StringVar(&mf.device, "device", "auto", `device: "cpu", "cuda:N" or "auto"`)
	fs.StringVar(&gpu, "gpu", "", "GPU index (the reference's flag; same as --device cuda:N)")
	fs.StringVar(&mf.normalization, "normalization", "", `input layer of a new model: "normalize" (default), "center" or "none" (as MACER's nets)`)
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "data loading goroutines")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "number of epochs")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "batch size")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "initial learning rate")
	fs.IntVar(&cfg.LRStepSize, "lr_step_size", cfg.LRStepSize, "epochs between learning-rate drops")
	fs.Float64Var(&cfg.Gamma, "gamma", cfg.Gamma, "learning-rate drop factor")
	fs.Float64Var(&cfg.Momentum, "momentum", cfg.Momentum, "SGD momentum")
	fs.Float64Var(&cfg.WeightDecay, "weight-decay", cfg.WeightDecay, "weight decay")
	fs.Float64Var(&cfg.NoiseSD, "noise_sd", cfg.NoiseSD, "standard deviation of the Gaussian noise for data augmentation")
	fs.IntVar(&cfg.PrintFreq, "print-freq", cfg.PrintFreq, "accepted for compatibility; progress shows on a terminal")
	fs.BoolVar(&cfg.Resume, "resume", false, "continue from OUTDIR/checkpoint.pth.tar (with none yet, start the run)")
	fs.BoolVar(&cfg.Overwrite, "overwrite", false, "train afresh into an OUTDIR that holds a run with other settings (refused without it)")
	fs.StringVar(&cfg.PretrainedModel, "pretrained-model", "", "start from this model (e.g. an imagenet32_resnet110 checkpoint, or a MACER checkpoint of ARCH) with a new classifier head")
	fs.BoolVar(&cfg.UseUnlabelled, "use-unlabelled", false, "self-training with a pseudo-labelled set")
	fs.StringVar(&cfg.UnlabelledPath, "unlabelled-path", "", "the pseudo-labelled pickle (data, extrapolated_targets)")
	fs.Float64Var(&cfg.SelfTrainingWeight, "self-training-weight", cfg.SelfTrainingWeight, "loss weight of the pseudo-labelled batches")
	fs.BoolVar(&cfg.AdvTraining, "adv-training", false, "SmoothAdv adversarial training")
	fs.StringVar(&cfg.Attack, "attack", cfg.Attack, "PGD or DDN")
	fs.Float64Var(&cfg.Epsilon, "epsilon", cfg.Epsilon, "attack radius in 1/256 units")
	fs.IntVar(&cfg.NumSteps, "num-steps", cfg.NumSteps, "attack steps")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "epochs over which epsilon grows to its value")
	fs.IntVar(&cfg.NumNoiseVec, "num-noise-vec", cfg.NumNoiseVec, "noise draws per image (m_train)")
	addMethodFlags(fs, &cfg)
	fs.BoolVar(&cfg.TrainMultiNoise, "train-multi-noise", false, "train on all m noisy copies, one step per chunk")
	fs.BoolVar(&cfg.NoGradAttack, "no-grad-attack", false, "gradient-free (Stein) attack")
	fs.Float64Var(&cfg.InitNormDDN, "init-norm-DDN", cfg.InitNormDDN, "DDN's initial norm in 1/256 units")
	fs.Float64Var(&cfg.GammaDDN, "gamma-DDN", cfg.GammaDDN, "DDN's norm step")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "dataset directory (default: the dataset's usual place)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of initialisation, shuffling, augmentation and noise")
	fs.IntVar(&cfg.TrainSubset, "train-subset", cfg.TrainSubset, "train on every k-th training image (1: all, as the reference)")
	fs.IntVar(&cfg.TestSubset, "test-subset", cfg.TestSubset, "test each epoch on every k-th test image (1: all, as the reference)")
	fs.BoolVar(&cfg.FrozenAttack, "frozen-attack", cfg.FrozenAttack, "attack a frozen eval-mode copy of the current weights, BatchNorm folded into the convolutions (same function, faster; --frozen-attack=false: the training module in eval mode, as the reference)")
	fs.BoolVar(&cfg.ChannelsLast, "channels-last", cfg.ChannelsLast, "give the model its inputs in channels-last memory format (same values, other kernels; --channels-last=false: NCHW as the reference)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write Go's CPU profile of the run to this file (go tool pprof); libtorch's own threads show as _ExternalCode")
	return cmd
}

// startCPUProfile starts Go's CPU profiler writing to path and returns the
// function that stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func init() { commands = append(commands, newTrainCmd) }
