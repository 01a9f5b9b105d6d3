// Package compare asks whether two certify logs of the same model on the
// same examples could come from one smoothed classifier, differing only by
// the Monte Carlo noise of CERTIFY (for example two runs with different
// seeds, or this project's certify against the reference's).
//
// Null hypothesis: both logs are independent runs of CERTIFY, with the same
// N0, N, alpha and sigma, on the same smoothed classifier g and the same
// examples. Then for every example the two runs are exchangeable, and two
// tests follow, run on the indices the logs share:
//
//   - For each radius r, the indicators "certified correct at r" of the two
//     runs form paired binary data whose discordant pairs split evenly:
//     McNemar's exact test (b pairs certified only in A against c only in
//     B, b ~ Binomial(b+c, 1/2)).
//   - CERTIFY returns a class other than g(x) with probability at most alpha
//     (Cohen et al., Theorem 2), so two runs that both return a class and
//     disagree show at least one such failure; over n shared examples the
//     number of disagreements is at most Binomial(n, 2 alpha) under the null,
//     and its upper tail is the p-value.
//
// The p-values are adjusted together with Holm's method, and the logs are
// called consistent when no adjusted p-value is below the level. Shared
// examples must also carry the same labels.
//
// Limits: the tests detect differences in which examples get certified at
// the chosen radii, not every difference (shifts that leave those
// indicators symmetric go unseen), and their power grows with the number of
// discordant examples. Passing is evidence of no detectable difference, not
// proof of equality. Runs with different N, N0 or alpha are different
// procedures and may fail. Only shared indices are paired; the confidence
// intervals use each whole log.
package compare

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/stats"
	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// Options holds the settings of Compare; zero values take the defaults.
type Options struct {
	Radii      []float64 // default: 0, 0.25, ... up to the largest radius in either log
	Level      float64   // family-wise significance level; default 0.01
	Confidence float64   // confidence of the Clopper-Pearson intervals; default 0.95
	Alpha      float64   // the logs' CERTIFY alpha; default 0.001, the reference's
}

func (o Options) withDefaults(a, b *analysis.CertifyLog) (Options, error) {
	if o.Level == 0 {
		o.Level = 0.01
	}
	if o.Confidence == 0 {
		o.Confidence = 0.95
	}
	if o.Alpha == 0 {
		o.Alpha = 0.001
	}
	if len(o.Radii) == 0 {
		top := math.Max(a.MaxRadius(), b.MaxRadius())
		radii, err := analysis.Radii(0, math.Floor(top*4)/4, 0.25)
		if err != nil {
			return o, err
		}
		o.Radii = radii
	}
	return o, o.Check()
}

// Check reports every problem with options whose defaults are filled in:
// level, confidence and alpha must lie in (0, 1), radii be finite and not
// negative. A caller that sets every option (the compare command) checks
// them here before reading any log, so an explicit 0 is an error rather
// than a default.
func (o Options) Check() error {
	var problems []string
	for _, c := range []struct {
		name string
		v    float64
	}{{"level", o.Level}, {"confidence", o.Confidence}, {"alpha", o.Alpha}} {
		if !(c.v > 0 && c.v < 1) {
			problems = append(problems, fmt.Sprintf("%s %v not in (0, 1)", c.name, c.v))
		}
	}
	for _, r := range o.Radii {
		if !(r >= 0) || math.IsInf(r, 0) {
			problems = append(problems, fmt.Sprintf("radius %v is not a finite non-negative number", r))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("compare: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Log describes one of the two logs.
type Log struct {
	Path  string
	Lines int
}

// Radius is the comparison at one radius.
type Radius struct {
	Radius     float64
	AccA, AccB float64    // certified accuracy over each whole log
	CIA, CIB   [2]float64 // their Clopper-Pearson intervals
	OnlyA      int        // shared indices certified correct at Radius in A only
	OnlyB      int        // ... in B only
	P, Holm    float64    // McNemar's exact p-value, raw and Holm-adjusted
}

// Result is the outcome of Compare.
type Result struct {
	A, B                  Log
	Options               Options
	Shared, OnlyA, OnlyB  int // indices in both logs, in A only, in B only
	LabelMismatch         int // shared indices whose labels differ
	SamePredict           int // shared indices with the same prediction (abstentions included)
	Disagree              int // shared indices where both predict a class and the classes differ
	PredictP, PredictHolm float64
	Radii                 []Radius
	Consistent            bool
}

// Compare compares two certify logs; see the package documentation for the
// tests and their null hypothesis.
func Compare(a, b *analysis.CertifyLog, opt Options) (*Result, error) {
	opt, err := opt.withDefaults(a, b)
	if err != nil {
		return nil, err
	}
	byIdx, err := index(b)
	if err != nil {
		return nil, err
	}
	if _, err := index(a); err != nil {
		return nil, err
	}
	res := &Result{A: Log{a.Path, len(a.Records)}, B: Log{b.Path, len(b.Records)}, Options: opt}
	var pairs [][2]analysis.CertifyRecord
	for _, ra := range a.Records {
		rb, ok := byIdx[ra.Index]
		if !ok {
			res.OnlyA++
			continue
		}
		pairs = append(pairs, [2]analysis.CertifyRecord{ra, rb})
	}
	res.Shared = len(pairs)
	res.OnlyB = len(b.Records) - res.Shared
	if res.Shared == 0 {
		return nil, fmt.Errorf("compare %s and %s: no shared indices", a.Path, b.Path)
	}
	for _, p := range pairs {
		if p[0].Label != p[1].Label {
			res.LabelMismatch++
		}
		if p[0].Predict == p[1].Predict {
			res.SamePredict++
		} else if p[0].Predict != certify.Abstain && p[1].Predict != certify.Abstain {
			res.Disagree++
		}
	}
	if res.PredictP, err = stats.BinomialAtLeast(res.Disagree, res.Shared, math.Min(1, 2*opt.Alpha)); err != nil {
		return nil, err
	}
	pvalues := []float64{res.PredictP}
	for _, r := range opt.Radii {
		rr := Radius{Radius: r, AccA: a.CertifiedAccuracy(r), AccB: b.CertifiedAccuracy(r)}
		if rr.CIA, err = interval(a, r, opt.Confidence); err != nil {
			return nil, err
		}
		if rr.CIB, err = interval(b, r, opt.Confidence); err != nil {
			return nil, err
		}
		for _, p := range pairs {
			ca, cb := p[0].Certified(r), p[1].Certified(r)
			if ca && !cb {
				rr.OnlyA++
			} else if cb && !ca {
				rr.OnlyB++
			}
		}
		rr.P = McNemar(rr.OnlyA, rr.OnlyB)
		pvalues = append(pvalues, rr.P)
		res.Radii = append(res.Radii, rr)
	}
	adj := Holm(pvalues)
	res.PredictHolm = adj[0]
	for i := range res.Radii {
		res.Radii[i].Holm = adj[i+1]
	}
	res.Consistent = res.LabelMismatch == 0 && slices.Min(adj) >= opt.Level
	return res, nil
}

// interval is the Clopper-Pearson interval of the certified accuracy of l at r.
func interval(l *analysis.CertifyLog, r, conf float64) ([2]float64, error) {
	lo, hi, err := ClopperPearson(l.CertifiedCount(r), len(l.Records), conf)
	return [2]float64{lo, hi}, err
}

func index(l *analysis.CertifyLog) (map[int]analysis.CertifyRecord, error) {
	m := make(map[int]analysis.CertifyRecord, len(l.Records))
	for _, r := range l.Records {
		if _, dup := m[r.Index]; dup {
			return nil, fmt.Errorf("%s: index %d appears twice", l.Path, r.Index)
		}
		m[r.Index] = r
	}
	return m, nil
}

// Write prints the comparison for people.
func (r *Result) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	o := r.Options
	fmt.Fprintf(tw, "A: %s (%d lines)\nB: %s (%d lines)\n", r.A.Path, r.A.Lines, r.B.Path, r.B.Lines)
	fmt.Fprintf(tw, "shared indices: %d (only in A: %d, only in B: %d); labels differ on %d\n", r.Shared, r.OnlyA, r.OnlyB, r.LabelMismatch)
	fmt.Fprintf(tw, "same prediction: %d of %d (%.2f%%)\n", r.SamePredict, r.Shared, 100*float64(r.SamePredict)/float64(r.Shared))
	fmt.Fprintf(tw, "both predict a class but differ: %d; under the null at most Binomial(%d, 2*alpha=%s): p = %s, Holm p = %s\n\n",
		r.Disagree, r.Shared, pyfmt.Repr(math.Min(1, 2*o.Alpha)), pvalue(r.PredictP), pvalue(r.PredictHolm))
	ci := strconv.FormatFloat(100*o.Confidence, 'g', -1, 64) + "% CI"
	fmt.Fprintf(tw, "radius\tacc A\t%s\tacc B\t%s\tA-B\tonly A\tonly B\tMcNemar p\tHolm p\n", ci, ci)
	for _, x := range r.Radii {
		fmt.Fprintf(tw, "%s\t%.4f\t[%.4f, %.4f]\t%.4f\t[%.4f, %.4f]\t%+.4f\t%d\t%d\t%s\t%s\n",
			pyfmt.G(x.Radius, 3), x.AccA, x.CIA[0], x.CIA[1], x.AccB, x.CIB[0], x.CIB[1], x.AccA-x.AccB, x.OnlyA, x.OnlyB, pvalue(x.P), pvalue(x.Holm))
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, r.verdict())
	return err
}

func (r *Result) verdict() string {
	level := pyfmt.Repr(r.Options.Level)
	if r.Consistent {
		return "verdict: CONSISTENT with one smoothed classifier up to Monte Carlo noise (no Holm-adjusted p-value below " + level + ")"
	}
	var why []string
	if r.LabelMismatch > 0 {
		why = append(why, fmt.Sprintf("labels differ on %d shared indices", r.LabelMismatch))
	}
	if r.PredictHolm < r.Options.Level {
		why = append(why, "too many disagreeing predictions")
	}
	for _, x := range r.Radii {
		if x.Holm < r.Options.Level {
			why = append(why, "radius "+pyfmt.G(x.Radius, 3))
		}
	}
	return "verdict: INCONSISTENT at family-wise level " + level + ": " + strings.Join(why, ", ")
}

func pvalue(p float64) string {
	return fmt.Sprintf("%.3g", p)
}
