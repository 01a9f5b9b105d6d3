package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/spec"
	"github.com/smoothadv/smoothadv/internal/atomicfile"
)

// Files of the analyses, without the format's extension.
const (
	accuracyTable = "certified_accuracy" // certified accuracy of each run at the radii
	envelopeTable = "envelope"           // the upper envelope over the runs
	bestModels    = "best_models.txt"    // the best run at each radius
	accuracyPlot  = "certified_accuracy.png"
	runsGroup     = "runs"
)

// extensions name the table files of each format.
var extensions = map[analysis.Format]string{analysis.LaTeX: ".tex", analysis.Markdown: ".md", analysis.CSV: ".csv", analysis.Text: ".txt"}

// legend names a run in tables and plots: its folder.
func (r Run) legend() string { return filepath.ToSlash(r.Rel) }

// analyze writes the run's certified accuracy at the radii, in each format,
// into its folder; a run that is not certified yet is left alone.
func (x *runner) analyze(r Run) error {
	done, total, err := x.certifyProgress(r)
	if err != nil {
		return err
	}
	if done != total {
		fmt.Fprintf(x.log, "  analyze: not certified yet (%d/%d examples), skipped\n", done, total)
		return nil
	}
	log, err := analysis.ReadCertifyLog(r.CertifyLog(x.dir))
	if err != nil {
		return err
	}
	a := x.exp.Config.Analysis
	radii, err := analysis.ParseRadii(a.Radii)
	if err != nil {
		return err
	}
	table := analysis.NewTable([]analysis.Model{{Legend: r.legend(), Log: log}}, radii)
	for _, f := range a.Formats {
		var b bytes.Buffer
		if err := table.Write(&b, analysis.Format(f)); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(r.Dir(x.dir), accuracyTable+extensions[analysis.Format(f)]), b.Bytes()); err != nil {
			return err
		}
	}
	fmt.Fprintf(x.log, "  analyze: certified accuracy %.3f at radius 0, %.3f at %v; abstained on %.1f%%\n",
		log.CertifiedAccuracy(0), log.CertifiedAccuracy(radii[len(radii)-1]), radii[len(radii)-1], log.AbstentionRate())
	return nil
}

// analyzeExperiment writes the analysis spec over every certified run into
// the experiment's folder and runs it: the per-run table and the envelope
// in each format, the best run per radius, a plot, and a text table on the
// log.
func (x *runner) analyzeExperiment() error {
	a := x.exp.Config.Analysis
	var logs []spec.Log
	for _, r := range x.exp.Runs {
		done, total, err := x.certifyProgress(r)
		if err != nil {
			return fmt.Errorf("run %s: %w", r.Rel, err)
		}
		if done == total {
			rel, err := filepath.Rel(x.dir, r.CertifyLog(x.dir))
			if err != nil {
				return err
			}
			logs = append(logs, spec.Log{Path: filepath.ToSlash(rel), Legend: r.legend()})
		}
	}
	if len(logs) == 0 {
		return errors.New("no run is certified yet")
	}
	s := spec.Spec{Version: spec.Version, OutputDir: ".", Groups: []spec.Group{{Name: runsGroup, Logs: logs}}}
	for _, f := range a.Formats {
		ext := extensions[analysis.Format(f)]
		s.Tables = append(s.Tables,
			spec.Table{Group: runsGroup, Kind: spec.Models, Radii: a.Radii, Format: f, Out: accuracyTable + ext},
			spec.Table{Group: runsGroup, Kind: spec.Envelope, Radii: a.Radii, Format: f, Out: envelopeTable + ext})
	}
	s.Tables = append(s.Tables,
		spec.Table{Group: runsGroup, Kind: spec.Best, Radii: a.Radii, Out: bestModels},
		spec.Table{Group: runsGroup, Kind: spec.Models, Radii: a.Radii, Format: string(analysis.Text)})
	if a.Plot {
		s.Plots = append(s.Plots, spec.Plot{Group: runsGroup, Out: accuracyPlot, Title: x.exp.Config.Name, Envelope: len(logs) > 1})
	}
	b, err := encodeYAML(s)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# Written by smoothadv run: the analysis of experiment %s over its %d certified run(s).\n"+
		"# Paths are relative to this file; smoothadv analyze -c %s redoes it.\n", x.exp.Config.Name, len(logs), AnalysisFile)
	path := filepath.Join(x.dir, AnalysisFile)
	if err := atomicfile.Write(path, append([]byte(header), b...)); err != nil {
		return err
	}
	loaded, err := spec.Load(path, x.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(x.log, "certified accuracy of %d run(s); tables, envelope and plot in %s\n", len(logs), x.dir)
	if err := loaded.Run(x.log); err != nil {
		return err
	}
	if r := a.CompareAt; r != nil {
		if len(logs) < len(x.exp.Runs) {
			fmt.Fprintf(x.log, "comparison at r = %g: waits until both runs are certified\n", *r)
			return nil
		}
		return x.compareRuns(*r)
	}
	return nil
}

// Plan writes the runs, their folders and how far each has got under the
// results folder out, without running anything.
func (e *Experiment) Plan(w io.Writer, out string) error {
	x := newRunner(e, Options{Out: out})
	fmt.Fprintf(w, "experiment %s (%s): %d run(s) in %s\n", e.Config.Name, e.source, len(e.Runs), x.dir)
	for i, r := range e.Runs {
		t := r.Config.Training
		ct := r.Config.Certification
		fmt.Fprintf(w, "%4d. %s\n", i+1, r.Rel)
		var trained, certified string
		if ckpt := r.Config.Model.Checkpoint; ckpt != "" {
			fmt.Fprintf(w, "        model    %s  (no training)\n", ckpt)
		} else if done, checkpoint, err := x.trainProgress(r); err != nil {
			trained = "? epochs: " + err.Error()
		} else {
			trained = fmt.Sprintf("%d/%d epochs", done, t.Epochs)
			if done > 0 && !checkpoint {
				trained += ", no checkpoint"
			}
		}
		if trained != "" {
			fmt.Fprintf(w, "        train    %s  (%s)\n", r.TrainDir(x.dir), trained)
		}
		if done, total, err := x.certifyProgress(r); err != nil {
			certified = "? examples: " + err.Error()
		} else {
			certified = fmt.Sprintf("%d/%d examples", done, total)
		}
		fmt.Fprintf(w, "        certify  %s  (%s; N0=%d N=%d alpha=%v sigma=%v)\n", r.CertifyLog(x.dir), certified, ct.N0, ct.N, ct.Alpha, r.Sigma())
	}
	return nil
}
