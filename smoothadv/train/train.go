// Package train trains base classifiers for randomized smoothing: Gaussian
// data augmentation (Cohen et al.'s train.py), SmoothAdv adversarial
// training (Salman et al.'s train_pgd.py, Pseudocode 1), vanilla
// adversarial training (noise 0), MACER, consistency regularisation and
// SmoothMix (methods.go), alone or data-parallel over a c10d process group
// (distributed.go), with the reference's log.txt and checkpoint.pth.tar in
// the output directory.
package train

import (
	"context"
	"io"
	"math"

	"github.com/smoothadv/smoothadv/internal/outputs"
	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// meter is a running average weighted by batch size. Its sum stays on the
// device, in float64, and is read once, by avg: a training step never waits
// for the device to report its loss. (A float32 batch value times a count of
// rows is exact in float64, so the sum rounds as a host sum would.)
type meter struct {
	sum *torchbind.Tensor // nil before the first add
	n   float64
}

// add adds weight*v, v a one-element tensor, to the sum and n to the count.
// Errors are s's.
func (m *meter) add(s *torchbind.Scope, v *torchbind.Tensor, weight float64, n int) {
	v = s.ToFloat64(v)
	if m.sum == nil && s.Err() == nil {
		m.sum = s.Keep(s.ZerosLike(v))
	}
	if s.Err() != nil {
		return
	}
	if err := m.sum.AddInPlace(v, weight); err != nil {
		s.Fail(err)
		return
	}
	m.n += float64(n)
}

// avg waits for the device and returns the average: 0 before any add, NaN
// if the sum cannot be read (the device has failed, and its next operation
// says why).
func (m *meter) avg() float64 {
	if m.n == 0 {
		return 0
	}
	sum, err := m.sum.Item()
	if err != nil {
		return math.NaN()
	}
	return sum / m.n
}

// Trainer runs a configured training.
type Trainer struct {
	cfg   settings.Config
	model *models.Model
	opt   *SGD
	gen   *torchbind.Generator
	// attackGen draws the attack's random directions, apart from gen's
	// noise (see attackDraws).
	attackGen *torchbind.Generator
	train     *data.Loader
	extra     *data.Loader // pseudo-labelled batches for self-training
	test      data.Dataset
	attacker  Attacker
	progress  progress.Reporter
	out       io.Writer     // per-epoch summaries
	group     *dist.Group   // the processes of data-parallel training; nil alone
	lock      *outputs.Lock // rank 0's hold on OutDir
}

// Run trains as cfg says, resuming from OutDir when cfg.Resume is set.
func Run(ctx context.Context, cfg settings.Config, out io.Writer) error {
	return RunIn(ctx, cfg, nil, out)
}
