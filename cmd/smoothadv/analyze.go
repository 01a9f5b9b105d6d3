package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/figure"
	"github.com/smoothadv/smoothadv/certify/analysis/spec"
	"github.com/smoothadv/smoothadv/internal/outputs"
)

func init() { commands = append(commands, newAnalyzeCmd) }

const logArgs = `Each LOG is a certify log (idx label predict radius correct time), optionally
followed by =LEGEND; the legend may contain "=" but the path may not. Without a
legend a log is named like the reference names it: the part of its path
between "certify/" and "/test".`

func newAnalyzeCmd() *cobra.Command {
	var config, outDir string
	cmd := &cobra.Command{
		Use:   "analyze -c FILE.yaml | analyze COMMAND",
		Short: "Tables and plots of certified accuracy from certify logs",
		Long: `Tables and plots of certified accuracy from certify logs, computed as the
reference's analyze.py does (certified accuracy at r: the fraction of lines
that are correct with radius >= r).

With -c, runs a whole analysis described in a YAML file (see
configs/analysis/ for an example reproducing the paper's Table 2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return fmt.Errorf("analyze: give -c FILE.yaml or a command (%s --help)", cmd.CommandPath())
			}
			s, err := spec.Load(config, outDir)
			if err != nil {
				return err
			}
			return s.Run(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "YAML analysis spec to run")
	cmd.Flags().StringVar(&outDir, "out-dir", "", "folder for the spec's output files (overrides its output_dir)")
	cmd.AddCommand(newEnvelopeCmd(), newTableCmd(), newBestCmd(), newPlotCmd())
	return cmd
}

// tableWriter is what the grid commands print: an analysis.Table or Envelope.
type tableWriter interface {
	Write(io.Writer, analysis.Format) error
}

// gridCommand completes cmd into a command that prints the table that build
// makes from the logs at a radius grid.
func gridCommand(cmd *cobra.Command, format analysis.Format, build func([]analysis.Model, []float64) tableWriter) *cobra.Command {
	var radii, formatName string
	cmd.Flags().StringVar(&radii, "radii", "0.25:2.25:0.25", "radii START:STOP:STEP (numpy.arange(START, STOP+STEP, STEP))")
	cmd.Flags().StringVar(&formatName, "format", string(format), fmt.Sprintf("output format, one of %v", analysis.Formats))
	cmd.Long += "\n\n" + logArgs
	cmd.Args = cobra.MinimumNArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r, err := analysis.ParseRadii(radii)
		if err != nil {
			return err
		}
		f, err := analysis.ParseFormat(formatName)
		if err != nil {
			return err
		}
		models, err := analysis.LoadModels(args)
		if err != nil {
			return err
		}
		return build(models, r).Write(cmd.OutOrStdout(), f)
	}
	return cmd
}

func newEnvelopeCmd() *cobra.Command {
	return gridCommand(&cobra.Command{
		Use:   "envelope [--radii START:STOP:STEP] [--format latex] LOG[=LEGEND]...",
		Short: "Upper envelope of several logs (the paper's Table 2 rows)",
		Long: `At each radius, the largest certified accuracy among the logs (on ties, the log
most accurate at radius 0), with that log's clean accuracy. The LaTeX output is
byte for byte what the reference's latex_table_certified_accuracy_upper_envelope
writes.`,
	}, analysis.LaTeX, func(m []analysis.Model, r []float64) tableWriter { return analysis.UpperEnvelope(m, r) })
}

func newTableCmd() *cobra.Command {
	return gridCommand(&cobra.Command{
		Use:   "table [--radii START:STOP:STEP] [--format latex|markdown|csv|text] LOG[=LEGEND]...",
		Short: "Certified accuracy of each log at each radius",
		Long: `One row per log, one column per radius, the column maximum in bold (LaTeX) or
starred (markdown, text), as the reference's latex_table_certified_accuracy and
markdown_table_certified_accuracy write them. CSV keeps full precision.`,
	}, analysis.Text, func(m []analysis.Model, r []float64) tableWriter { return analysis.NewTable(m, r) })
}

func newBestCmd() *cobra.Command {
	var maxRadius, step float64
	cmd := &cobra.Command{
		Use:   "best [--max-radius R] [--step S] LOG[=LEGEND]...",
		Short: "The best log at each radius 0, S, ..., R",
		Long: `Which log has the largest certified accuracy at each radius, in the format of
the reference's radii_to_best_models: radius, accuracy, log.

` + logArgs,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			radii, err := analysis.Radii(0, maxRadius, step)
			if err != nil {
				return fmt.Errorf("--max-radius %v, --step %v: %w", maxRadius, step, err)
			}
			models, err := analysis.LoadModels(args)
			if err != nil {
				return err
			}
			return analysis.WriteBest(cmd.OutOrStdout(), analysis.BestModels(models, radii))
		},
	}
	cmd.Flags().Float64Var(&maxRadius, "max-radius", 2.25, "largest radius")
	cmd.Flags().Float64Var(&step, "step", 0.125, "radius step")
	return cmd
}

// checkOutOverLogs refuses an output file that is one of the logs read.
func checkOutOverLogs(flag, out string, models []analysis.Model) error {
	var logs []outputs.File
	for _, m := range models {
		logs = append(logs, outputs.File{Role: "the log", Path: m.Log.Path})
	}
	return outputs.CheckDistinct(logs, []outputs.File{{Role: flag, Path: out}})
}

func newPlotCmd() *cobra.Command {
	var (
		out string
		opt figure.Options
	)
	cmd := &cobra.Command{
		Use:   "plot --out FILE.png|svg|pdf [--envelope] LOG[=LEGEND]...",
		Short: "Plot certified accuracy against radius, one curve per log",
		Long: `Plots certified accuracy against L2 radius, one curve per log, optionally with
their upper envelope. The format follows the extension of --out. LaTeX in
legends ($\sigma = 0.25$) is shown as plain text (σ = 0.25).

` + logArgs,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The flags give every default, so a 0 here was typed: refuse it
			// rather than let Save read it as "use the default".
			if err := opt.Check(); err != nil {
				return err
			}
			models, err := analysis.LoadModels(args)
			if err != nil {
				return err
			}
			if err := checkOutOverLogs("--out", out, models); err != nil {
				return err
			}
			return figure.Save(out, models, opt)
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "image file to write (.png, .svg or .pdf)")
	f.StringVar(&opt.Title, "title", "", "title")
	f.BoolVar(&opt.Envelope, "envelope", false, "also draw the upper envelope of the curves")
	f.Float64Var(&opt.MaxRadius, "max-radius", 0, "right end of the radius axis (0: the logs' largest radius)")
	f.Float64Var(&opt.Step, "step", 0.01, "radius step of the curves")
	f.Float64Var(&opt.Width, "width", 6, "width in inches")
	f.Float64Var(&opt.Height, "height", 4.5, "height in inches")
	f.IntVar(&opt.DPI, "dpi", 150, "dots per inch (PNG)")
	_ = cmd.MarkFlagRequired("out") // fails only for an unknown flag name
	return cmd
}
