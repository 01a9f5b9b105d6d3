package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/smoothadv/bench"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

func newBenchTrainCmd() *cobra.Command {
	var o bench.TrainOptions
	var mf modelFlags
	cmd := &cobra.Command{
		Use:   "train MODEL",
		Short: "Time our training step per batch beside the Python reference's (train_pgd.py) on the same weights and batch",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			device, err := mf.resolvedDevice()
			if err != nil {
				return err
			}
			o.Model, o.Device = args[0], device
			rs, err := bench.RunTrain(cmd.Context(), o)
			if err != nil {
				return err
			}
			printTrainBench(cmd.OutOrStdout(), o, rs)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&mf.device, "device", "auto", `device: "cpu", "cuda:N" or "auto"`)
	fs.StringSliceVar(&o.Configs, "config", nil, "configurations to time, of "+bench.TrainConfigNames()+" (default all)")
	fs.IntVar(&o.Batch, "batch", 256, "images per loaded batch")
	fs.IntVar(&o.Steps, "steps", 5, "timed batches per side")
	fs.IntVar(&o.Warmup, "warmup", 2, "untimed batches per side before them (>= 1)")
	fs.Float64Var(&o.NoiseSD, "noise-sd", 0.25, "Gaussian noise level")
	fs.Float64Var(&o.Epsilon, "epsilon", 128, "PGD's L2 radius in units of 1/256, as the reference's flag")
	fs.Float64Var(&o.LR, "lr", 0.1, "SGD's learning rate (momentum 0.9 and weight decay 1e-4, as the reference's)")
	fs.IntVar(&o.Threads, "threads", 0, "our intra-op threads (0: as smoothadv train sets them)")
	fs.IntVar(&o.ReferenceThreads, "reference-threads", 0, "the reference's intra-op threads (0: as many as ours; -1: torch's default)")
	fs.BoolVar(&o.ChannelsLast, "channels-last", settings.Defaults().ChannelsLast, "our step with channels-last inputs (as smoothadv train by default)")
	fs.BoolVar(&o.FrozenAttack, "frozen-attack", settings.Defaults().FrozenAttack, "our attacks on a frozen copy of the model, BatchNorm folded (as smoothadv train by default)")
	fs.StringVar(&o.Python, "reference", referencePython(), `python with torch to time the reference's step ("" to skip; default $SMOOTHADV_PYTHON, else Debian's)`)
	return cmd
}

func printTrainBench(out io.Writer, o bench.TrainOptions, rs []bench.TrainResult) {
	fmt.Fprintf(out, "model %s on %s, batch %d, noise sd %g, PGD epsilon %g/256, SGD lr %g momentum 0.9 weight decay 1e-4\n",
		o.Model, o.Device, o.Batch, o.NoiseSD, o.Epsilon, o.LR)
	fmt.Fprintf(out, "ours with channels-last inputs: %v (the reference's are NCHW), attacks on a frozen copy: %v\n", o.ChannelsLast, o.FrozenAttack)
	fmt.Fprintf(out, "one fixed batch of uniform random images and labels; %d warm-up + %d timed batches per side\n", o.Warmup, o.Steps)
	if len(rs) == 0 {
		return
	}
	side := func(name string, s bench.TrainSide) {
		fmt.Fprintf(out, "%-10s torch %s, %d intra-op thread(s), allocator %s\n", name, s.Torch, s.Threads, s.Allocator)
	}
	side("ours:", rs[0].Ours)
	ref := o.Python != ""
	if ref {
		side("reference:", rs[0].Reference)
	}
	fmt.Fprintf(out, "%-12s %14s %14s %16s %22s\n", "config", "ours s/batch", "ref s/batch", "ours/reference", "first loss ours / ref")
	for _, r := range rs {
		if !ref {
			fmt.Fprintf(out, "%-12s %14.3f %14s %16s %22s\n", r.Config.Name, r.Ours.SecondsPerBatch, "-", "-", fmt.Sprintf("%.4f / -", r.Ours.FirstLoss))
			continue
		}
		fmt.Fprintf(out, "%-12s %14.3f %14.3f %15.2fx %22s\n", r.Config.Name, r.Ours.SecondsPerBatch, r.Reference.SecondsPerBatch,
			r.Ours.SecondsPerBatch/r.Reference.SecondsPerBatch, fmt.Sprintf("%.4f / %.4f", r.Ours.FirstLoss, r.Reference.FirstLoss))
	}
}
