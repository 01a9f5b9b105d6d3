package attack

import (
	"math"

	"github.com/smoothadv/smoothadv/torchbind"
)

// ddnMinLR is eta_min of DDN's cosine schedule.
const ddnMinLR = 0.01

// ddnLR is the learning rate of DDN's step i (from 0): torch's
// CosineAnnealingLR from 1 to 0.01 over steps, which the reference steps at
// the start of every iteration, so step i already uses epoch i+1.
func ddnLR(i, steps int) float64 {
	return ddnMinLR + (1-ddnMinLR)*(1+math.Cos(math.Pi*float64(i+1)/float64(steps)))/2
}

// quantize rounds values to the 256 levels of an 8-bit image.
func quantize(s *torchbind.Scope, v *torchbind.Tensor) *torchbind.Tensor {
	return s.MulScalar(s.Round(s.MulScalar(v, 255)), 1.0/255)
}

// ddn returns the per-image perturbation [images, size] of the reference's
// DDN (Rony et al. 2019): a normalised gradient step, then the perturbation
// rescaled to a norm that shrinks by gamma while the image is adversarial and
// grows otherwise. The answer is the smallest adversarial delta met at the
// start of a step, projected into the eps-ball and quantised; zero for images
// never made adversarial.
//
// The final quantisation, as in the reference, can take ||delta|| past eps by
// up to half a level per value, sqrt(size)/510; for 8-bit inputs (multiples
// of 1/255) x + delta stays in [0, 1].
func (c Config) ddn(model Classifier, b *batch, dirs rowsFrom) (*torchbind.Tensor, error) {
	s := b.scope
	worst := s.L2Norms(s.Maximum(b.clean, s.RSub(1, b.clean)))
	delta := s.ZerosLike(b.clean)
	norm := s.AddScalar(s.ZerosLike(worst), c.InitNorm)
	bestNorm := s.Clone(worst)
	best := s.ZerosLike(b.clean)
	if err := s.Err(); err != nil {
		return nil, err
	}
	carried := []*torchbind.Tensor{s.Keep(delta), s.Keep(norm), s.Keep(bestNorm), s.Keep(best)}
	final, err := iterate(c.Steps, carried, func(s *torchbind.Scope, i int, cur []*torchbind.Tensor) []*torchbind.Tensor {
		delta, norm, bestNorm, best := cur[0], cur[1], cur[2], cur[3]
		grad, logits := b.gradient(s, model, delta)
		l2 := s.L2Norms(delta)
		adv := s.Ne(b.predictions(s, logits), b.labels)
		better := s.Mul(adv, s.Lt(l2, bestNorm)) // logical and
		bestNorm = s.Where(better, l2, bestNorm)
		best = s.Where(s.Reshape(better, -1, 1), delta, best)

		delta = s.Add(delta, s.MulScalar(unitRows(s, grad, dirs.rows(s, i, b.images)), ddnLR(i, c.Steps)))
		// norm *= 1 - (2*adv - 1)*gamma, capped at the farthest point of the box.
		sign := s.AddScalar(s.MulScalar(s.ToFloat32(adv), 2), -1)
		norm = s.Minimum(s.Mul(norm, s.RSub(1, s.MulScalar(sign, c.Gamma))), worst)
		delta = s.Mul(delta, s.Reshape(s.Div(norm, s.L2Norms(delta)), -1, 1))
		delta = s.Sub(s.Clamp(quantize(s, s.Add(delta, b.clean)), 0, 1), b.clean)
		return []*torchbind.Tensor{delta, norm, bestNorm, best}
	})
	if err != nil {
		return nil, err
	}
	closeAll(final[:3])
	out := quantize(s, s.Renorm(final[3], c.Epsilon))
	final[3].Close()
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s.Keep(out), nil
}
