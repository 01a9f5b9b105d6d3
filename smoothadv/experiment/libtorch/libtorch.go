// Package libtorch is the experiment runner's worker that trains with
// package train and certifies with package smoothing, on libtorch; package
// experiment itself plans and skips work in pure Go.
package libtorch

import (
	"context"
	"io"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/experiment"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/smoothing"
	"github.com/smoothadv/smoothadv/smoothadv/train"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// Worker trains as one process of Group (nil: alone) and certifies alone.
type Worker struct {
	Group *dist.Group
}

// Train runs train.RunIn on the device this process takes in the group.
func (w Worker) Train(ctx context.Context, cfg settings.Config, out io.Writer) error {
	dev, err := w.Group.Device(cfg.Device)
	if err != nil {
		return err
	}
	cfg.Device = dev
	return train.RunIn(ctx, cfg, w.Group, out)
}

// Certify runs CERTIFY on the run's selected examples, resuming the log.
func (Worker) Certify(ctx context.Context, r experiment.Run, model, log string) error {
	c := r.Config
	ct := c.Certification
	job, m, err := smoothing.NewJob(smoothing.JobOptions{
		Dataset: c.Data.Dataset, DataDir: c.Data.DataDir, Split: ct.Split, Skip: ct.Skip, Max: ct.Max,
		Model: model, Load: models.Options{Device: ct.Device, Arch: c.Model.Arch, Normalization: c.Model.Normalization},
		Sigma: r.Sigma(), Batch: ct.Batch, Seed: ct.Seed, Workers: ct.Workers,
		Out: log, Resume: true, Progress: progress.ForStderr("example"),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	defer job.Sampler.Close()
	return smoothing.Certify(ctx, job, certify.CertifyParams{N0: ct.N0, N: ct.N, Alpha: ct.Alpha, TargetRadius: r.Targets()})
}

// Rank is the group's rank and world; alone, 0 of 1.
func (w Worker) Rank() (rank, world int) {
	if w.Group == nil {
		return 0, 1
	}
	return w.Group.Rank, w.Group.World
}
