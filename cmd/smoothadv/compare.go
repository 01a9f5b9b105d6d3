package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/compare"
)

func init() { commands = append(commands, newCompareCmd) }

// errInconsistent makes the exit status say what the verdict says.
var errInconsistent = errors.New("compare: the logs are not consistent with one smoothed classifier")

func newCompareCmd() *cobra.Command {
	var (
		radii string
		opt   compare.Options
	)
	cmd := &cobra.Command{
		Use:   "compare A B",
		Short: "Could two certify logs of one model differ only by Monte Carlo noise?",
		Long: `Compares two certify logs of the same model on the same examples: certified
accuracy of each at a set of radii with Clopper-Pearson intervals, their
difference, agreement of predictions on the indices both logs hold, and a
verdict.

Null hypothesis: A and B are independent runs of CERTIFY (same N0, N, alpha
and sigma) of one smoothed classifier on the same examples. On shared indices:
  - at each radius, McNemar's exact test on the paired indicators "certified
    correct at r" (discordant pairs split evenly under the null);
  - CERTIFY names a class other than the smoothed classifier's with
    probability at most alpha, so shared indices where both logs name a class
    and the classes differ number at most Binomial(n, 2*alpha): a one-sided
    binomial tail test.
The p-values are Holm-adjusted together; the logs are CONSISTENT when none is
below --level and the labels of shared indices agree, and the command then
exits 0; otherwise it prints INCONSISTENT and exits 1.

Limits: the tests see differences in which examples are certified at the
chosen radii, not every difference; their power grows with the number of
examples. Passing is no proof of equality. Logs made with different N, N0 or
alpha are different procedures and may fail.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if radii != "" {
				r, err := analysis.ParseRadii(radii)
				if err != nil {
					return err
				}
				opt.Radii = r
			}
			// Every option has a flag default, so a 0 here was typed: refuse
			// it rather than let Compare read it as "use the default".
			if err := opt.Check(); err != nil {
				return err
			}
			var logs [2]*analysis.CertifyLog
			for i, path := range args {
				l, err := analysis.ReadCertifyLog(path)
				if err != nil {
					return err
				}
				logs[i] = l
			}
			res, err := compare.Compare(logs[0], logs[1], opt)
			if err != nil {
				return err
			}
			if err := res.Write(cmd.OutOrStdout()); err != nil {
				return err
			}
			if !res.Consistent {
				return errInconsistent
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&radii, "radii", "", "radii START:STOP:STEP (default 0:R:0.25, R the largest radius in either log)")
	f.Float64Var(&opt.Level, "level", 0.01, "family-wise significance level")
	f.Float64Var(&opt.Confidence, "confidence", 0.95, "confidence of the Clopper-Pearson intervals")
	f.Float64Var(&opt.Alpha, "alpha", 0.001, "the alpha CERTIFY was run with")
	return cmd
}
