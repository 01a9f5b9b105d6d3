// Package losses holds the training objectives of the methods that followed
// SmoothAdv, as their reference implementations compute them
// (../shared/spec/METHODS.md): MACER (Zhai et al. 2020, macer.py),
// consistency regularisation (Jeong & Shin 2020, consistency.py) and
// SmoothMix (Jeong et al. 2021, train.py). They are pure functions of the
// logits, recording autograd, so that a test can check them on a tiny batch.
//
// Logits come per image: [B, m, K] holds image b's m noisy copies in row b
// (the reference of consistency and SmoothMix orders its batch draw-major,
// MACER image-major; the losses do not depend on the order).
package losses

import (
	"fmt"
	"math"

	"github.com/smoothadv/smoothadv/torchbind"
)

// MACER are MACER's hyperparameters.
type MACER struct {
	Sigma  float64 // the noise level, which scales the radius
	Lambda float64 // weight of the robustness loss (lbd)
	Gamma  float64 // hinge: only radius gaps |r| <= Gamma count
	Beta   float64 // inverse temperature of the robustness loss's softmax
}

// Loss is MACER's objective on logits [B, m, K] and labels [B]:
// (L_cls + Lambda * L_rob) / B, where L_cls = sum over images of
// -log(p_y + 1e-10), p the softmax averaged over the copies, and L_rob =
// Sigma/2 * sum of (r + Gamma) over the images whose top class under q (the
// averaged softmax of Beta * logits) is the label and whose r =
// PhiInv(q2) - PhiInv(q1) (its top two values) is finite with |r| <= Gamma.
func (p MACER) Loss(s *torchbind.Scope, logits, labels *torchbind.Tensor) *torchbind.Tensor {
	b, _, k, ok := perImage(s, logits)
	if !ok {
		return nil
	}
	if k < 2 {
		s.Fail(fmt.Errorf("MACER needs at least 2 classes, the logits have %d", k))
		return nil
	}
	avg := s.MeanDim(s.Softmax(logits, 2), 1, false)
	cls := s.NLLLoss(s.Log(s.AddScalar(avg, 1e-10)), labels, torchbind.ReduceSum)

	q := s.MeanDim(s.Softmax(s.MulScalar(logits, p.Beta), 2), 1, false)
	top, idx := s.TopK(q, 2, 1)
	top = s.MaskRows(top, s.Eq(s.Reshape(s.Narrow(idx, 1, 0, 1), -1), labels))
	// As the reference, the hinge's mask is taken on the gaps of all
	// correctly classified images, and the loss recomputed on those kept,
	// so that no infinite gap enters the graph.
	kept := s.MaskRows(top, s.LeScalar(s.Abs(s.Detach(radiusGap(s, top))), p.Gamma))
	rob := s.MulScalar(s.Sum(s.AddScalar(radiusGap(s, kept), p.Gamma)), p.Sigma/2)
	return s.MulScalar(s.Add(cls, s.MulScalar(rob, p.Lambda)), 1/float64(b))
}

// radiusGap is PhiInv(q2) - PhiInv(q1) for rows [q1, q2] of top.
func radiusGap(s *torchbind.Scope, top *torchbind.Tensor) *torchbind.Tensor {
	return s.Reshape(s.Sub(phiInv(s, s.Narrow(top, 1, 1, 1)), phiInv(s, s.Narrow(top, 1, 0, 1))), -1)
}

// phiInv is the standard normal quantile, sqrt(2) erfinv(2q - 1), as
// torch.distributions.Normal(0, 1).icdf computes it.
func phiInv(s *torchbind.Scope, q *torchbind.Tensor) *torchbind.Tensor {
	return s.MulScalar(s.Erfinv(s.AddScalar(s.MulScalar(q, 2), -1)), math.Sqrt2)
}

// Consistency is consistency regularisation's objective on logits
// [B, m, K] and labels [B]: the mean cross-entropy over the B*m copies plus,
// averaged over images, Lambda times the mean over copies of KL(p || p_i)
// and Eta times the entropy of p (log of p clamped at 1e-20), where p_i is
// copy i's softmax and p their mean.
func Consistency(s *torchbind.Scope, logits, labels *torchbind.Tensor, lambda, eta float64) *torchbind.Tensor {
	b, m, k, ok := perImage(s, logits)
	if !ok {
		return nil
	}
	xent := s.CrossEntropy(s.Reshape(logits, b*m, k), tileLabels(s, labels, m), torchbind.ReduceMean)
	avg := s.MeanDim(s.Softmax(logits, 2), 1, true) // [B, 1, K]
	kl := s.MeanDim(klDiv(s, avg, s.LogSoftmax(logits, 2)), 1, false)
	entropy := s.Neg(s.SumDim(s.Mul(avg, s.Log(s.ClampMin(avg, 1e-20))), 2, false))
	reg := s.Add(s.MulScalar(kl, lambda), s.MulScalar(s.Reshape(entropy, -1), eta))
	return s.Add(xent, s.Mean(reg))
}

// SmoothMix is SmoothMix's objective: clean [B, m, K] are the logits of
// the clean side (init + n_i), mixed [B, m, K] those of the mixed inputs
// (x_mix + n_i, the same noise), lam [B] the mixup weights in [0, 1/2] and
// weight eta times the warm-up factor. It is the mean cross-entropy of the
// clean logits plus weight times the mean over all B*m copies of
// 1[argmax p_clean = y] KL(y_mix || softmax(mixed)), where p_clean is the
// clean softmax averaged over the copies and y_mix = (1 - lam) p_clean +
// lam / K. As in the reference, p_clean is not detached: the gradient flows
// through the target too.
func SmoothMix(s *torchbind.Scope, clean, mixed, labels, lam *torchbind.Tensor, weight float64) *torchbind.Tensor {
	b, m, k, ok := perImage(s, clean)
	if !ok {
		return nil
	}
	xent := s.CrossEntropy(s.Reshape(clean, b*m, k), tileLabels(s, labels, m), torchbind.ReduceMean)
	pClean := s.MeanDim(s.Softmax(clean, 2), 1, false) // [B, K]
	l := s.Reshape(lam, b, 1)
	target := s.Add(s.Mul(s.RSub(1, l), pClean), s.MulScalar(l, 1/float64(k)))
	kl := klDiv(s, s.Reshape(target, b, 1, k), s.LogSoftmax(mixed, 2)) // [B, m]
	correct := s.ToFloat32(s.Eq(s.Argmax(pClean, 1), labels))
	mix := s.Mean(s.Mul(kl, s.Reshape(correct, b, 1)))
	return s.Add(xent, s.MulScalar(mix, weight))
}

// klDiv is KL(p || q) summed over the last dimension, from p and log q (as
// torch's kl_div(logq, p).sum(-1), with 0 log 0 = 0); p broadcasts.
func klDiv(s *torchbind.Scope, p, logq *torchbind.Tensor) *torchbind.Tensor {
	return s.SumDim(s.Sub(s.XLogY(p, p), s.Mul(p, logq)), -1, false)
}

// perImage reads the sizes of logits [B, m, K].
func perImage(s *torchbind.Scope, logits *torchbind.Tensor) (b, m, k int64, ok bool) {
	if s.Err() != nil {
		return 0, 0, 0, false
	}
	shape := logits.Shape()
	if len(shape) != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1 {
		s.Fail(fmt.Errorf("logits are %v, want [images, noise draws, classes]", shape))
		return 0, 0, 0, false
	}
	return shape[0], shape[1], shape[2], true
}

// tileLabels repeats each label m times in a row, as the copies of
// [B, m, K] logits flattened to [B*m, K] are ordered.
func tileLabels(s *torchbind.Scope, labels *torchbind.Tensor, m int64) *torchbind.Tensor {
	return s.Reshape(s.Repeat(s.Reshape(labels, -1, 1), 1, m), -1)
}
