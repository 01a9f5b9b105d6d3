package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/experiment"
	"github.com/smoothadv/smoothadv/smoothadv/experiment/libtorch"
	"github.com/smoothadv/smoothadv/smoothadv/jobs"
)

// runOptions are the run command's flags.
type runOptions struct {
	config  string
	out     string
	only    string
	dryRun  bool
	maxRuns int
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [-c EXPERIMENT.yaml]",
		Short: "Train, certify and analyse every run of an experiment file (default: a small Fashion-MNIST experiment)",
		Long: `Run reads an experiment file (a dataset, a model, training and certification settings,
the analysis, and a grid of settings to vary), and for each run of the grid trains, certifies
and analyses, skipping what is already done and resuming what was cut short. Then it analyses
the experiment: a table over the runs, their upper envelope and a plot, in OUT/NAME.

Without -c it runs the built-in ` + experiment.DefaultFile + `: Gaussian augmentation
beside SmoothAdv on Fashion-MNIST, in under five minutes on two CPU cores, ending with a
sentence that says which certifies more of the same test images at radius 0.5.
The configs folder has the paper's CIFAR-10 and ImageNet grids and Cohen et al.'s baseline.

-c also takes the reference's job files (jobs.yaml: jobs with a name and command lines of
python code/train_pgd.py, train.py, certify.py or predict.py): each command runs as smoothadv's
train, certify or predict with the same arguments, the job's relative paths under OUT/NAME, and
the scheduler's fields ignored. Every command is checked before the first runs: a flag that
smoothadv does not take is refused, naming the job.`,
		Example: `  smoothadv run --out results/
  smoothadv run -c configs/cifar10_smoothadv_paper.yaml --dry-run
  smoothadv run -c configs/cifar10_cohen_gaussian.yaml --only certify`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.config, "config", "c", "", "experiment file (default: the built-in "+experiment.DefaultFile+")")
	fs.StringVar(&o.out, "out", "results", "results folder; the experiment's is OUT/NAME")
	fs.StringVar(&o.only, "only", "", "run one stage of every run: train, certify or analyze")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list the runs, their folders and how far each has got; run nothing")
	fs.IntVar(&o.maxRuns, "max-runs", experiment.DefaultMaxRuns, "refuse a grid of more runs than this")
	return cmd
}

func (o runOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	var only experiment.Stage
	if o.only != "" {
		var err error
		if only, err = experiment.ParseStage(o.only); err != nil {
			return err
		}
	}
	load := experiment.Default
	if o.config != "" {
		b, err := os.ReadFile(o.config)
		if err != nil {
			return fmt.Errorf("experiment: %w", err)
		}
		if jobs.IsJobsFile(b) {
			if o.dryRun || o.only != "" {
				return fmt.Errorf("%s is a job file of the reference's: --dry-run and --only are for experiment files", o.config)
			}
			return runJobs(ctx, b, o.config, o.out, stdout, stderr)
		}
		load = func() (*experiment.Experiment, error) { return experiment.Load(o.config, o.maxRuns) }
	}
	if st, err := os.Stat(o.out); err == nil && !st.IsDir() {
		return fmt.Errorf("--out %s is a file: give the results folder", o.out)
	}
	e, err := load()
	if err != nil {
		return err
	}
	if o.dryRun {
		return e.Plan(stdout, o.out)
	}
	return inJob(func(g *dist.Group) error {
		return e.Run(ctx, experiment.Options{Out: o.out, Only: only, Log: stdout, Worker: libtorch.Worker{Group: g}})
	})
}

func init() { commands = append(commands, newRunCmd) }
