package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/smoothadv/bench"
	"github.com/smoothadv/smoothadv/torchbind"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks"}
	var o bench.Options
	var targetRadius string
	var mf modelFlags
	var inf inferFlags
	certifyCmd := &cobra.Command{
		Use:   "certify MODEL",
		Short: "Time CERTIFY's sampling: images/s and forward passes/s, beside the Python reference's loop",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			device, err := mf.resolvedDevice()
			if err != nil {
				return err
			}
			o.Model, o.Device = args[0], device
			if o.Infer, err = inf.options(); err != nil {
				return err
			}
			if o.TargetRadius, err = certify.ParseTargets(targetRadius); err != nil {
				return fmt.Errorf("--target-radius: %w", err)
			}
			rs, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model %s, N0 %d, N %d, batch %d, sigma %g, %d images, precision %s, channels-last %v\n",
				o.Model, o.N0, o.N, o.Batch, o.Sigma, o.Images, o.Infer.Precision, o.Infer.ChannelsLast)
			fmt.Fprintf(out, "smoothadv: allocator %s, %d intra-op thread(s) per worker\n", torchbind.Allocator(), torchbind.NumThreads())
			fmt.Fprintf(out, "%-62s %10s %12s %16s\n", "sampler", "s/image", "images/s", "forward passes/s")
			for _, r := range rs {
				fmt.Fprintf(out, "%-62s %10.3f %12.3f %16.0f\n", r.Name, r.Seconds/float64(r.Images), r.ImagesPerSecond, r.SamplesPerSecond)
			}
			if len(rs) == 2 {
				fmt.Fprintf(out, "speed-up: %.2fx\n", rs[0].ImagesPerSecond/rs[1].ImagesPerSecond)
			}
			return nil
		},
	}
	fs := certifyCmd.Flags()
	fs.StringVar(&mf.device, "device", "auto", `device: "cpu", "cuda:N" or "auto"`)
	fs.IntVar(&o.Images, "images", 4, "images to certify")
	fs.IntVar(&o.N0, "N0", 100, "selection samples per image")
	fs.IntVar(&o.N, "N", 100000, "estimation samples per image")
	fs.IntVar(&o.Batch, "batch", 1000, "batch size")
	fs.Float64Var(&o.Sigma, "sigma", 0.25, "noise level")
	fs.IntVar(&o.Workers, "workers", 0, "batches at once (0: one per core on cpu)")
	fs.StringVar(&targetRadius, "target-radius", "", "time adaptive CERTIFY at this radius or these radii (R1,R2,...); the reference samples N each time")
	fs.BoolVar(&o.Unoptimized, "unoptimized", false, "sample with the scripted model, not a copy optimised for inference")
	inf.register(fs)
	fs.StringVar(&o.Python, "reference", referencePython(), `python with torch to time the reference's loop ("" to skip; default $SMOOTHADV_PYTHON, else Debian's)`)
	cmd.AddCommand(certifyCmd, newBenchTrainCmd())
	return cmd
}

func init() { commands = append(commands, newBenchCmd) }

// referencePython is the python that bench runs the reference with by
// default: $SMOOTHADV_PYTHON (make exports the build's PY), else Debian's,
// whose torch make deps installs.
func referencePython() string {
	if p := os.Getenv("SMOOTHADV_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}
