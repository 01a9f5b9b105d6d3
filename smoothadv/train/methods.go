package train

import (
	"fmt"
	"math"

	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/train/losses"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// methodLoss computes a method's loss on images x and labels y [B]; it
// returns the loss, the logits [B*m, K] of the noisy copies it trains on
// and their labels, for the meters.
type methodLoss func(s *torchbind.Scope, x, y *torchbind.Tensor, epoch int) (l, logits, labels *torchbind.Tensor, err error)

// methodBatch trains on one loaded batch with MACER, consistency
// regularisation or SmoothMix, and reports false for the methods trainBatch
// trains itself. MACER takes one optimizer step per loaded batch;
// consistency and SmoothMix split the batch into m mini-batches, each with
// its own step, as their references do.
func (t *Trainer) methodBatch(b *data.Batch, epoch int, weight float64, loss, acc *meter) (bool, error) {
	compute, ok := map[string]methodLoss{settings.MACER: t.macer, settings.Consistency: t.consistency, settings.SmoothMix: t.smoothMix}[t.cfg.Method]
	if !ok {
		return false, nil
	}
	s := torchbind.NewScope()
	defer s.Close()
	x, y := t.batchTensors(s, b)
	if err := s.Err(); err != nil {
		return true, err
	}
	pieces := t.cfg.NumNoiseVec
	if t.cfg.Method == settings.MACER {
		pieces = 1
	}
	size := int64(b.Len() / pieces) // 0: fewer images than pieces, nothing to train on, as in the references
	for c := int64(0); c < int64(pieces) && size > 0; c++ {
		ps := torchbind.NewScope()
		l, logits, labels, err := compute(ps, s.Narrow(x, 0, c*size, size), s.Narrow(y, 0, c*size, size), epoch)
		if err == nil {
			err = t.descend(ps, l, logits, labels, weight, loss, acc)
		}
		ps.Close()
		if err != nil {
			return true, fmt.Errorf("mini-batch %d: %w", c, err)
		}
	}
	return true, s.Err()
}

// macer is MACER's loss on images x and labels y [B]: m noisy copies of
// each image, one forward pass. It returns the loss, the logits of the
// copies and their labels. The first MACERDeferred epochs train without the
// robustness loss (lambda 0), as the MACER baseline of consistency's
// repository does (train_macer.py --deferred): from a fresh network the
// robustness loss's gradient can blow the weights up.
func (t *Trainer) macer(s *torchbind.Scope, x, y *torchbind.Tensor, epoch int) (l, logits, labels *torchbind.Tensor, err error) {
	m := t.cfg.NumNoiseVec
	inputs := tile(s, x, m)
	logits = t.model.Forward(s, s.Add(inputs, t.trainNoise(s, inputs)))
	p := losses.MACER{Sigma: t.cfg.NoiseSD, Lambda: t.cfg.MACERLambda, Gamma: t.cfg.MACERGamma, Beta: t.cfg.MACERBeta}
	if epoch < t.cfg.MACERDeferred {
		p.Lambda = 0
	}
	l = p.Loss(s, perImage(s, logits, m), y)
	return l, logits, tile(s, y, m), s.Err()
}

// consistency is consistency regularisation's loss on a mini-batch: m
// noisy copies of each image (of its SmoothAdv attack, with adv_training),
// one forward pass.
func (t *Trainer) consistency(s *torchbind.Scope, x, y *torchbind.Tensor, epoch int) (l, logits, labels *torchbind.Tensor, err error) {
	m := t.cfg.NumNoiseVec
	inputs := tile(s, x, m)
	noise := t.trainNoise(s, inputs)
	if t.cfg.AdvTraining {
		if inputs, err = t.attacked(s, inputs, y, noise, m, epoch); err != nil {
			return nil, nil, nil, err
		}
	}
	logits = t.model.Forward(s, s.Add(inputs, noise))
	l = losses.Consistency(s, perImage(s, logits, m), y, t.cfg.ConsistencyLambda, t.cfg.ConsistencyEta)
	return l, logits, tile(s, y, m), s.Err()
}

// smoothMix is SmoothMix's loss on a mini-batch: its attack (model frozen in
// eval mode) gives the clean side init and the adversary adv; the model sees
// m noisy copies of init and of a random mixup of the two, with the same
// noise. The logits returned are the clean side's.
func (t *Trainer) smoothMix(s *torchbind.Scope, x, y *torchbind.Tensor, epoch int) (l, logits, labels *torchbind.Tensor, err error) {
	c, m := t.cfg, t.cfg.NumNoiseVec
	warm := math.Min(1, float64(epoch+1)/float64(c.SmoothMixWarmup))
	noise := t.trainNoise(s, tile(s, x, m))
	model, done, err := t.model.ForAttack(t.cfg.FrozenAttack)
	if err != nil {
		return nil, nil, nil, err
	}
	init, adv := t.smoothMixAttack(s, model, x, y, noise, warm)
	if err := done(); err != nil {
		return nil, nil, nil, err
	}
	if err := s.Err(); err != nil {
		return nil, nil, nil, err
	}
	n := x.Shape()[0]
	lam := s.MulScalar(t.trainRand(s, n), 0.5)
	mixed := s.Add(init, s.Mul(perRow(s, lam, x), s.Sub(adv, init))) // (1 - lam) init + lam adv
	logits = t.model.Forward(s, s.Add(tile(s, init, m), noise))
	mixedLogits := t.model.Forward(s, s.Add(tile(s, mixed, m), noise))
	l = losses.SmoothMix(s, perImage(s, logits, m), perImage(s, mixedLogits, m), y, lam, c.SmoothMixEta*warm)
	return l, logits, tile(s, y, m), s.Err()
}

// smoothMixAttack is SmoothMix's attack on the smoothed soft classifier:
// from adv = x, SmoothMixSteps steps of SmoothMixAlpha along the per-image
// unit gradient of the summed -log(mean softmax_y over the m noisy copies)
// (clamped at 1e-20), each projected onto the SmoothMixMaxNorm ball around x
// (if set) and into [0, 1]. init is adv as step SmoothMixMixStep begins,
// projected at the end onto the ball of radius warm * maxnorm_s around x.
func (t *Trainer) smoothMixAttack(s *torchbind.Scope, model *torchbind.Module, x, y, noise *torchbind.Tensor, warm float64) (init, adv *torchbind.Tensor) {
	c, m := t.cfg, t.cfg.NumNoiseVec
	n := x.Shape()[0]
	init, adv = x, x
	for i := range c.SmoothMixSteps {
		if i == c.SmoothMixMixStep {
			init = adv
		}
		st := torchbind.NewScope()
		leaf := st.Detach(adv)
		if st.Err() == nil {
			if _, err := leaf.SetRequiresGrad(true); err != nil {
				st.Fail(err)
			}
		}
		logits := model.Forward(st, st.Add(tile(st, leaf, m), noise))
		avg := st.MeanDim(st.Softmax(st.Reshape(logits, n, int64(m), -1), 2), 1, false)
		grads := st.Grad(st.NLLLoss(st.Log(st.ClampMin(avg, 1e-20)), y, torchbind.ReduceSum), leaf)
		var next *torchbind.Tensor
		if st.Err() == nil {
			unit := st.Div(grads[0], perRow(st, st.AddScalar(st.L2Norms(grads[0]), 1e-8), x))
			next = project(st, st.Add(adv, st.MulScalar(unit, c.SmoothMixAlpha)), x, c.SmoothMixMaxNorm, c.SmoothMixMaxNorm > 0)
		}
		if err := st.Err(); err != nil {
			s.Fail(fmt.Errorf("SmoothMix attack, step %d: %w", i+1, err))
			st.Close()
			return nil, nil
		}
		adv = s.Own(st.Keep(next))
		st.Close()
	}
	maxNormS := c.SmoothMixMaxNormS
	if maxNormS == 0 {
		maxNormS = c.SmoothMixAlpha * float64(c.SmoothMixMixStep)
	}
	return project(s, init, x, warm*maxNormS, true), adv
}

// project is the reference's _project: v - x0 scaled into the L2 ball of
// radius maxNorm (when bounded), then clamped to [0, 1].
func project(s *torchbind.Scope, v, x0 *torchbind.Tensor, maxNorm float64, bounded bool) *torchbind.Tensor {
	if bounded {
		v = s.Add(x0, s.Renorm(s.Sub(v, x0), maxNorm))
	}
	return s.Clamp(v, 0, 1)
}

// perRow shapes v [n] to broadcast over the rows of like ([n, 1, 1, ...]).
func perRow(s *torchbind.Scope, v, like *torchbind.Tensor) *torchbind.Tensor {
	if s.Err() != nil {
		return nil
	}
	shape := make([]int64, len(like.Shape()))
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = -1
	return s.Reshape(v, shape...)
}

// perImage shapes the logits of m consecutive copies per image [B*m, K]
// to [B, m, K].
func perImage(s *torchbind.Scope, logits *torchbind.Tensor, m int) *torchbind.Tensor {
	if s.Err() != nil {
		return nil
	}
	return s.Reshape(logits, -1, int64(m), logits.Shape()[1])
}
