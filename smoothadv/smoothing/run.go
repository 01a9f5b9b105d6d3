package smoothing

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Job is a certify or predict run over examples of a dataset, writing one
// reference-format line per example to Out as it goes.
type Job struct {
	Dataset data.Dataset
	Sampler *Sampler // its Image is set by the run
	Indices []int    // the selected (and sharded) examples, in order
	Out     string
	Resume  bool
	// ResumeUnchecked resumes (as Resume does) also a log that has no
	// recorded run parameters to check.
	ResumeUnchecked bool
	// Overwrite replaces a log of another run (see certify.OpenRunLog).
	Overwrite bool
	// Params are recorded beside Out and checked on resuming (see
	// certify.OpenRunLog); Certify and Predict fill in the kind of run and
	// its sample sizes.
	Params certify.RunParams
	// Group is how many examples are sampled together: their noisy copies
	// share batches. 0 picks enough to fill a batch with the smallest round
	// of samples (N0 for certify), ten times as many for adaptive certify.
	Group    int
	Progress progress.Reporter
	Notes    io.Writer // notes for the user (a resume on other threads); nil: stderr
}

// example is a dataset example read for sampling.
type example struct {
	index, label int
	image        []float32
}

// decided is what a run decides for a group of examples: a line for each,
// and for an adaptive certify run the estimation samples each used.
type decided[R certify.Record] struct {
	records []R
	samples []int
}

// run drives the shared loop: resume, group the remaining examples (group
// of them by default), decide each group with decide, write the lines, and
// with samples the samples file too.
func run[R certify.Record](ctx context.Context, j Job, group int, samples bool,
	decide func(ctx context.Context, xs []certify.Input, group []example) (decided[R], error)) error {
	before, recorded, _ := certify.ReadParams(j.Out)
	if j.ResumeUnchecked && !recorded {
		// Nothing records which data the lines are of: their labels tell.
		logged, err := certify.ReadDone[R](j.Out)
		if err != nil {
			return err
		}
		if err := checkLabels(j, logged); err != nil {
			return err
		}
	}
	log, done, err := certify.OpenRunLog[R](j.Out, j.Params, certify.OpenOptions{Resume: j.Resume, Unchecked: j.ResumeUnchecked, Overwrite: j.Overwrite})
	if err != nil {
		return err
	}
	defer log.Close()
	var samplesLog *certify.SamplesLog
	if samples {
		if samplesLog, err = certify.OpenSamples(j.Out, done, j.Resume || j.ResumeUnchecked); err != nil {
			return err
		}
		defer samplesLog.Close()
	}
	if t := before.Threads; done.Len() > 0 && t != 0 && t != j.Params.Threads {
		notes := j.Notes
		if notes == nil {
			notes = os.Stderr
		}
		fmt.Fprintf(notes, "note: the %d lines of %s were computed with %d intra-op threads per worker, this run uses %d: "+
			"sums may round otherwise, so new lines can differ in the last digits from an uninterrupted run's\n", done.Len(), j.Out, t, j.Params.Threads)
	}
	todo := done.Remaining(j.Indices)
	if j.Group > 0 {
		group = j.Group
	}
	rep := j.Progress
	if rep == nil {
		rep = progress.Nop{}
	}
	rep.Start(len(j.Indices)-len(todo), len(j.Indices))
	defer rep.Finish()

	shape := j.Dataset.Shape()
	// Inputs are dataset indices, which key the examples' noise streams.
	var current []example
	j.Sampler.Image = func(x certify.Input) ([]float32, error) {
		for _, e := range current {
			if e.index == int(x) {
				return e.image, nil
			}
		}
		return nil, fmt.Errorf("example %d is not in the current group", x)
	}
	finished := len(j.Indices) - len(todo)
	for start := 0; start < len(todo); start += group {
		ids := todo[start:min(start+group, len(todo))]
		current = current[:0]
		xs := make([]certify.Input, len(ids))
		for k, i := range ids {
			img := make([]float32, shape.Size())
			label, err := j.Dataset.Read(i, nil, img)
			if err != nil {
				return fmt.Errorf("example %d: %w", i, err)
			}
			current = append(current, example{index: i, label: label, image: img})
			xs[k] = certify.Input(i)
		}
		d, err := decide(ctx, xs, current)
		if err != nil {
			return fmt.Errorf("examples %d..%d: %w", ids[0], ids[len(ids)-1], err)
		}
		for k, r := range d.records {
			// The samples line first: a stop between the two leaves
			// one that resuming drops, never a log line without it.
			if samplesLog != nil {
				if err := samplesLog.Write(ids[k], d.samples[k]); err != nil {
					return err
				}
			}
			if err := log.Write(r); err != nil {
				return err
			}
		}
		finished += len(ids)
		rep.Update(finished)
	}
	if samplesLog != nil {
		if err := samplesLog.Close(); err != nil {
			return err
		}
	}
	return log.Close()
}

// perExample splits a group's wall time among its examples in proportion
// to their samples, so that the time column keeps the reference's meaning
// of seconds per example.
func perExample(start time.Time, samples []int) []time.Duration {
	elapsed := float64(time.Since(start))
	total := 0
	for _, n := range samples {
		total += n
	}
	out := make([]time.Duration, len(samples))
	for k, n := range samples {
		out[k] = time.Duration(elapsed * float64(n) / float64(total))
	}
	return out
}

// Certify runs CERTIFY on every example of the job. An adaptive run
// (p.TargetRadius > 0) also writes the samples file beside the log
// (certify.SamplesPath). Sigma is the job's: it scales the sampler's noise
// and the radius alike, so p.Sigma is left 0 or must equal it.
func Certify(ctx context.Context, j Job, p certify.CertifyParams) error {
	if p.Sigma != 0 && p.Sigma != j.Sampler.Sigma {
		return fmt.Errorf("certify: sigma %v for the radius, but the job samples noise of sigma %v", p.Sigma, j.Sampler.Sigma)
	}
	p.Sigma = j.Sampler.Sigma
	j.Params.Kind, j.Params.N0, j.Params.N, j.Params.Alpha = certify.KindCertify, p.N0, p.N, p.Alpha
	if p.Radius == certify.RadiusPB {
		j.Params.Radius = string(p.Radius)
	}
	adaptive := p.TargetRadius.Adaptive()
	if adaptive {
		j.Params.TargetRadius, j.Params.Adaptive = p.TargetRadius, certify.AdaptiveScheme
	}
	// Before the log is created.
	if err := p.Validate(); err != nil {
		return err
	}
	if err := p.CheckTarget(j.Sampler.NumClasses); err != nil {
		return err
	}
	group := CertifyGroup(j.Sampler.Batch, p.N0, adaptive)
	return run(ctx, j, group, adaptive, func(ctx context.Context, xs []certify.Input, group []example) (decided[certify.CertifyRecord], error) {
		start := time.Now()
		res, err := certify.CertifyMany(ctx, j.Sampler, xs, p)
		if err != nil {
			return decided[certify.CertifyRecord]{}, err
		}
		d := decided[certify.CertifyRecord]{records: make([]certify.CertifyRecord, len(res))}
		weights := make([]int, len(res))
		for k, r := range res {
			d.samples = append(d.samples, r.Samples)
			weights[k] = p.N0 + r.Samples
		}
		elapsed := perExample(start, weights)
		for k, r := range res {
			d.records[k] = certify.CertifyRecord{Index: group[k].index, Label: group[k].label, Predict: r.Class,
				Radius: r.Radius, Elapsed: elapsed[k]}
		}
		return d, nil
	})
}

// checkLabels refuses to continue a log whose lines give other labels than
// the dataset's for the same examples: it was written on another dataset or
// split, which a log without recorded parameters cannot tell otherwise.
func checkLabels(j Job, done certify.Done) error {
	if done.Len() == 0 {
		return nil
	}
	buf := make([]float32, j.Dataset.Shape().Size())
	for _, i := range j.Indices {
		logged, ok := done.Label(i)
		if !ok {
			continue
		}
		label, err := j.Dataset.Read(i, nil, buf)
		if err != nil {
			return fmt.Errorf("example %d: %w", i, err)
		}
		if label != logged {
			return fmt.Errorf("resume %s: its line for example %d gives label %d, the dataset's label is %d: the log was written on other data; certify into another file",
				j.Out, i, logged, label)
		}
	}
	return nil
}

// CertifyGroup is how many examples CERTIFY samples together with batches
// of batch samples: enough that their n0 selection samples fill a batch;
// adaptively ten times as many, as most of them stop after a few hundred
// samples, and the later looks still fill whole batches with the few that
// go on.
func CertifyGroup(batch, n0 int, adaptive bool) int {
	group := max(1, batch/max(n0, 1))
	if adaptive {
		group *= 10
	}
	return group
}

// Prepare is called on each group of examples (dataset indices, images,
// labels) before PREDICT samples them: it may replace the images in place (an
// attack) and returns the base classifier's prediction on each, without noise.
type Prepare func(ctx context.Context, indices []int, images [][]float32, labels []int) ([]int, error)

// Predict runs PREDICT on every example of the job.
func Predict(ctx context.Context, j Job, p certify.PredictParams, prepare Prepare) error {
	j.Params.Kind, j.Params.N, j.Params.Alpha = certify.KindPredict, p.N, p.Alpha
	if err := p.Validate(); err != nil { // before the log is created
		return err
	}
	return run(ctx, j, max(1, j.Sampler.Batch/p.N), false, func(ctx context.Context, xs []certify.Input, group []example) (decided[certify.PredictRecord], error) {
		start := time.Now()
		indices := make([]int, len(group))
		images := make([][]float32, len(group))
		labels := make([]int, len(group))
		for k, e := range group {
			indices[k], images[k], labels[k] = e.index, e.image, e.label
		}
		var d decided[certify.PredictRecord]
		base, err := prepare(ctx, indices, images, labels)
		if err != nil {
			return d, err
		}
		for k := range group {
			group[k].image = images[k]
		}
		classes, err := certify.PredictMany(ctx, j.Sampler, xs, p)
		if err != nil {
			return d, err
		}
		weights := make([]int, len(classes))
		for k := range weights {
			weights[k] = p.N
		}
		elapsed := perExample(start, weights)
		d.records = make([]certify.PredictRecord, len(classes))
		for k, c := range classes {
			d.records[k] = certify.PredictRecord{Index: group[k].index, Label: group[k].label, Predict: c,
				BasePredict: base[k], Elapsed: elapsed[k]}
		}
		return d, nil
	})
}

// BasePredictions is the Prepare of a predict run without attack: the base
// classifier's argmax on the clean images.
func BasePredictions(m Classifier, device string, shape []int64) Prepare {
	return func(_ context.Context, _ []int, images [][]float32, _ []int) ([]int, error) {
		return Argmax(m, device, shape, images)
	}
}

// Argmax is the base classifier's prediction on each image, without noise.
func Argmax(m Classifier, device string, shape []int64, images [][]float32) ([]int, error) {
	var host []float32
	for _, img := range images {
		host = append(host, img...)
	}
	sc := torchbind.NewScope()
	defer sc.Close()
	x := sc.FromFloat32(host, device, append([]int64{int64(len(images))}, shape...)...)
	pred := sc.Argmax(m.Infer(sc, x), 1)
	if err := sc.Err(); err != nil {
		return nil, err
	}
	p, err := pred.Int64s()
	if err != nil {
		return nil, err
	}
	out := make([]int, len(p))
	for i, v := range p {
		out[i] = int(v)
	}
	return out, nil
}
