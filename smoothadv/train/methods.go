package train

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/train/losses"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Training methods. Gaussian augmentation and SmoothAdv are trainBatch's own;
// the methods that followed SmoothAdv train with methodBatch, each as its
// reference implementation does (../shared/spec/METHODS.md).
const (
	Gaussian    = "gaussian"
	SmoothAdv   = "smoothadv" // Gaussian with adv_training, the reference's spelling
	MACER       = "macer"
	Consistency = "consistency" // with adv_training: on SmoothAdv's attacked inputs
	SmoothMix   = "smoothmix"
)

// Methods lists the training methods.
var Methods = []string{Gaussian, SmoothAdv, MACER, Consistency, SmoothMix}

// MethodKnobs are the configuration keys (yaml) that only one method uses.
var MethodKnobs = map[string][]string{
	MACER:       {"macer_lbd", "macer_gamma", "macer_beta", "macer_deferred"},
	Consistency: {"consistency_lbd", "consistency_eta"},
	SmoothMix: {"smoothmix_eta", "smoothmix_alpha", "smoothmix_num_steps", "smoothmix_mix_step",
		"smoothmix_maxnorm", "smoothmix_maxnorm_s", "smoothmix_warmup"},
}

// methodDefaults sets the defaults of the reference implementations:
// MACER's main.py, consistency's train_consistency.py and SmoothMix's
// train.py.
func (c *Config) methodDefaults() {
	c.Method = Gaussian
	c.MACERLambda, c.MACERGamma, c.MACERBeta = 12, 8, 16
	c.ConsistencyLambda, c.ConsistencyEta = 10, 0.5
	c.SmoothMixEta, c.SmoothMixAlpha, c.SmoothMixSteps, c.SmoothMixWarmup = 1, 1, 8, 10
}

// Resolved makes the method and adv_training agree: smoothadv is Gaussian
// augmentation with adv_training (so a run says smoothadv either way), and
// an empty method (a record from before methods) is gaussian.
func (c Config) Resolved() Config {
	if c.Method == "" {
		c.Method = Gaussian
	}
	if c.Method == Gaussian && c.AdvTraining {
		c.Method = SmoothAdv
	}
	if c.Method == SmoothAdv {
		c.AdvTraining = true
	}
	return c
}

// methodProblems are the problems of the method's settings (c resolved).
func (c Config) methodProblems() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !slices.Contains(Methods, c.Method) {
		return []error{fmt.Errorf("method: %q, want one of %v", c.Method, Methods)}
	}
	switch c.Method {
	case MACER:
		check(!c.AdvTraining, "adv_training: MACER is attack-free; it does not combine with adv_training")
		check(c.MACERLambda >= 0 && finite(c.MACERLambda), "macer_lbd: %v, want a finite number >= 0", c.MACERLambda)
		check(c.MACERGamma > 0 && finite(c.MACERGamma), "macer_gamma: %v, want a finite number > 0", c.MACERGamma)
		check(c.MACERBeta > 0 && finite(c.MACERBeta), "macer_beta: %v, want a finite number > 0", c.MACERBeta)
		check(c.MACERDeferred >= 0, "macer_deferred: %d, want >= 0", c.MACERDeferred)
	case Consistency:
		check(c.ConsistencyLambda >= 0 && finite(c.ConsistencyLambda), "consistency_lbd: %v, want a finite number >= 0", c.ConsistencyLambda)
		check(c.ConsistencyEta >= 0 && finite(c.ConsistencyEta), "consistency_eta: %v, want a finite number >= 0", c.ConsistencyEta)
	case SmoothMix:
		check(!c.AdvTraining, "adv_training: SmoothMix runs its own attack; it does not combine with adv_training")
		check(c.SmoothMixEta >= 0 && finite(c.SmoothMixEta), "smoothmix_eta: %v, want a finite number >= 0", c.SmoothMixEta)
		check(c.SmoothMixAlpha > 0 && finite(c.SmoothMixAlpha), "smoothmix_alpha: %v, want a finite number > 0", c.SmoothMixAlpha)
		check(c.SmoothMixSteps >= 1, "smoothmix_num_steps: %d, want >= 1", c.SmoothMixSteps)
		check(c.SmoothMixMixStep >= 0 && c.SmoothMixMixStep <= c.SmoothMixSteps,
			"smoothmix_mix_step: %d, want in [0, smoothmix_num_steps = %d]", c.SmoothMixMixStep, c.SmoothMixSteps)
		check(c.SmoothMixMaxNorm >= 0 && finite(c.SmoothMixMaxNorm), "smoothmix_maxnorm: %v, want a finite number >= 0 (0: none)", c.SmoothMixMaxNorm)
		check(c.SmoothMixMaxNormS >= 0 && finite(c.SmoothMixMaxNormS), "smoothmix_maxnorm_s: %v, want a finite number >= 0 (0: smoothmix_alpha * smoothmix_mix_step)", c.SmoothMixMaxNormS)
		check(c.SmoothMixWarmup >= 1, "smoothmix_warmup: %d, want >= 1", c.SmoothMixWarmup)
	}
	return errs
}

// methodSettings are the method's settings that a resumed run must keep
// (both configurations resolved): the method (unless adv_training tells
// Gaussian from SmoothAdv already), and the knobs of the methods either side
// uses.
func methodSettings(was, now Config) []setting {
	var list []setting
	if (was.Method != Gaussian && was.Method != SmoothAdv) || (now.Method != Gaussian && now.Method != SmoothAdv) {
		list = append(list, setting{"method", was.Method, now.Method})
	}
	for _, method := range []string{MACER, Consistency, SmoothMix} {
		if was.Method != method && now.Method != method {
			continue
		}
		for _, key := range MethodKnobs[method] {
			list = append(list, setting{key, knob(was, key), knob(now, key)})
		}
	}
	return list
}

// knob is the value of c's setting whose yaml key is key, or nil.
func knob(c Config, key string) any {
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag == key {
			return v.Field(i).Interface()
		}
	}
	return nil
}

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
	compute, ok := map[string]methodLoss{MACER: t.macer, Consistency: t.consistency, SmoothMix: t.smoothMix}[t.cfg.Method]
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
	if t.cfg.Method == MACER {
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
	model, done, err := t.attackModel()
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
