// Package attack finds L2-bounded adversarial examples for a base classifier
// under Gaussian noise, as the reference's attacks.py does: PGD and DDN in the
// single-noise form and in SmoothAdv's multi-noise form (the attack on the
// smoothed soft classifier, eq. 6 of Salman et al. 2019), and PGD's
// gradient-free Stein variant (section 3.1).
package attack

import (
	"errors"
	"fmt"
	"math"

	"github.com/smoothadv/smoothadv/torchbind"
)

// Kinds of attack.
const (
	PGD = "PGD"
	DDN = "DDN"
)

// DDN defaults of the reference: gamma in training, and the initial norm of
// --init-norm-DDN 256.
const (
	DefaultGamma    = 0.05
	DefaultInitNorm = 1.0
)

// Classifier is a base classifier: logits [N, K] of a batch of images,
// recording autograd. *models.Model and *torchbind.Module satisfy it.
type Classifier interface {
	Forward(s *torchbind.Scope, x *torchbind.Tensor) *torchbind.Tensor
}

// Config says which attack to run. Radii are in pixel units (images lie in
// [0, 1]); From256 converts the reference's command-line values.
type Config struct {
	Kind    string  // PGD or DDN
	Epsilon float64 // L2 radius of the perturbation
	Steps   int
	// NoiseVectors is m, the noise draws per image. m = 1 attacks the base
	// classifier at one noisy point (cross-entropy summed over the batch);
	// m > 1 attacks the smoothed soft classifier (NLL of the softmax averaged
	// over the m copies, mean over the batch).
	NoiseVectors int
	// NoGrad replaces PGD's gradient by the Stein estimator, which needs no
	// backward pass. As in the reference it applies only when m > 1: a
	// single-noise attack always uses the gradient.
	NoGrad bool
	// DDN only: the initial perturbation norm and the factor by which the
	// norm shrinks or grows each step (DefaultGamma in training; EvalGamma
	// for evaluation).
	InitNorm float64
	Gamma    float64
	// Checked says the caller has made sure, on the host, that the inputs
	// lie in [0, 1] and the labels are among the classifier's classes (the
	// trainer checks its batches as it loads them). The attack then skips
	// those checks, which would wait for the device to read values back.
	Checked bool
	// Workers splits the batch into that many runs of whole images, attacked
	// at once, each on its own OS thread with cores/Workers intra-op threads
	// (see split); 0 or 1 attacks the batch in one piece. Meant for the CPU,
	// where one-thread passes side by side outrun one pass over all cores.
	Workers int
}

// From256 converts the reference's command-line units, 1/256 of the pixel
// range, to pixel units: --epsilon 64 is a radius of 0.25 and
// --init-norm-DDN 256 an initial norm of 1.
func From256(v float64) float64 { return v / 256 }

// EvalGamma is the DDN gamma of the reference's predict.py,
// 1 - (3/510/eps)^(1/steps): steps shrinking steps take a norm of eps down to
// 3/510, one and a half quantisation levels.
func EvalGamma(eps float64, steps int) (float64, error) {
	if !(eps > 0) || math.IsInf(eps, 1) {
		return 0, fmt.Errorf("DDN gamma: epsilon must be positive and finite, got %v", eps)
	}
	if steps < 1 {
		return 0, fmt.Errorf("DDN gamma: steps must be at least 1, got %d", steps)
	}
	if eps < 3.0/510 {
		return 0, fmt.Errorf("DDN gamma: epsilon %v is below 3/510, which would make gamma negative", eps)
	}
	return 1 - math.Pow(3.0/510/eps, 1/float64(steps)), nil
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Kind != PGD && c.Kind != DDN {
		bad("unknown attack %q (want %s or %s)", c.Kind, PGD, DDN)
	}
	if !(c.Epsilon > 0) || math.IsInf(c.Epsilon, 1) {
		bad("epsilon must be positive and finite, got %v", c.Epsilon)
	}
	if c.Workers < 0 {
		bad("workers must not be negative, got %d", c.Workers)
	}
	if c.Steps < 1 {
		bad("steps must be at least 1, got %d", c.Steps)
	}
	if c.NoiseVectors < 1 {
		bad("noise vectors must be at least 1, got %d", c.NoiseVectors)
	}
	if c.Kind == DDN {
		if !(c.InitNorm > 0) || math.IsInf(c.InitNorm, 1) {
			bad("DDN initial norm must be positive and finite, got %v", c.InitNorm)
		}
		if !(c.Gamma >= 0 && c.Gamma < 1) {
			bad("DDN gamma must lie in [0, 1), got %v", c.Gamma)
		}
		if c.NoGrad && c.NoiseVectors > 1 {
			bad("DDN has no gradient-free multi-noise variant")
		}
	}
	return errors.Join(errs...)
}

// stein reports whether the attack uses the gradient-free estimator.
func (c Config) stein() bool { return c.NoGrad && c.NoiseVectors > 1 }

// run is the perturbation [images, size] of the configured attack.
func (c Config) run(model Classifier, b *batch, dirs rowsFrom) (*torchbind.Tensor, error) {
	if c.Kind == DDN {
		return c.ddn(model, b, dirs)
	}
	return c.pgd(model, b, dirs)
}

// Attack perturbs inputs to raise the classifier's loss and returns the
// adversarial inputs x + delta (without noise), tiled like inputs and owned
// by s.
//
// Conventions, those of the reference: inputs [B*m, ...] hold each of B
// images m = NoiseVectors times in a row (rows b*m .. b*m+m-1 are copies of
// image b), with values in [0, 1]. labels are int64 [B], one per IMAGE, not
// tiled. noise, shaped like inputs, is added to every forward pass, the same
// draws in every step; nil means none (the attack on the base classifier
// itself). One delta per image is shared by its m copies. g draws the random
// direction that replaces a zero gradient.
//
// The caller puts the model in evaluation mode and freezes its parameters
// (SetRequiresGrad(false)) first. The attack differentiates with respect to
// delta only, so it leaves no gradient on parameters either way.
func (c Config) Attack(s *torchbind.Scope, model Classifier, inputs, labels, noise *torchbind.Tensor, g *torchbind.Generator) (*torchbind.Tensor, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	if s == nil || model == nil || g == nil {
		return nil, errors.New("attack: needs a scope, a model and a generator")
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("attack: the scope has already failed: %w", err)
	}
	if c.stein() && noise == nil {
		return nil, errors.New("attack: the gradient-free attack needs noise")
	}
	b, err := newBatch(inputs, labels, noise, c.NoiseVectors, c.Checked)
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	defer b.close()
	pieces := int(min(int64(max(c.Workers, 1)), b.images))
	dirs, err := newDirections(g, b, pieces)
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	defer dirs.close()
	var delta *torchbind.Tensor
	if pieces == 1 {
		delta, err = c.run(model, b, dirs.from(0))
	} else {
		delta, err = c.split(model, b, dirs, pieces)
	}
	if err != nil {
		return nil, fmt.Errorf("%s attack: %w", c.Kind, err)
	}
	defer delta.Close()
	adv := b.perturb(b.scope, delta)
	if err := b.scope.Err(); err != nil {
		return nil, fmt.Errorf("%s attack: %w", c.Kind, err)
	}
	return s.Own(b.scope.Keep(adv)), nil
}
