package settings

import (
	"slices"
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
	c.Method = "" // Gaussian, or SmoothAdv with adv_training (Resolved)
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
func (c Config) methodProblems(ps *problems) {
	if !slices.Contains(Methods, c.Method) {
		ps.check(false, "method", "%q, want one of %v", c.Method, Methods)
		return
	}
	switch c.Method {
	case MACER:
		ps.check(!c.AdvTraining, "adv_training", "MACER is attack-free; it does not combine with adv_training")
		ps.check(c.MACERLambda >= 0 && finite(c.MACERLambda), "macer_lbd", "%v, want a finite number >= 0", c.MACERLambda)
		ps.check(c.MACERGamma > 0 && finite(c.MACERGamma), "macer_gamma", "%v, want a finite number > 0", c.MACERGamma)
		ps.check(c.MACERBeta > 0 && finite(c.MACERBeta), "macer_beta", "%v, want a finite number > 0", c.MACERBeta)
		ps.check(c.MACERDeferred >= 0, "macer_deferred", "%d, want >= 0", c.MACERDeferred)
	case Consistency:
		ps.check(c.ConsistencyLambda >= 0 && finite(c.ConsistencyLambda), "consistency_lbd", "%v, want a finite number >= 0", c.ConsistencyLambda)
		ps.check(c.ConsistencyEta >= 0 && finite(c.ConsistencyEta), "consistency_eta", "%v, want a finite number >= 0", c.ConsistencyEta)
	case SmoothMix:
		ps.check(!c.AdvTraining, "adv_training", "SmoothMix runs its own attack; it does not combine with adv_training")
		ps.check(c.SmoothMixEta >= 0 && finite(c.SmoothMixEta), "smoothmix_eta", "%v, want a finite number >= 0", c.SmoothMixEta)
		ps.check(c.SmoothMixAlpha > 0 && finite(c.SmoothMixAlpha), "smoothmix_alpha", "%v, want a finite number > 0", c.SmoothMixAlpha)
		ps.check(c.SmoothMixSteps >= 1, "smoothmix_num_steps", "%d, want >= 1", c.SmoothMixSteps)
		ps.check(c.SmoothMixMixStep >= 0 && c.SmoothMixMixStep <= c.SmoothMixSteps,
			"smoothmix_mix_step", "%d, want in [0, smoothmix_num_steps = %d]", c.SmoothMixMixStep, c.SmoothMixSteps)
		ps.check(c.SmoothMixMaxNorm >= 0 && finite(c.SmoothMixMaxNorm), "smoothmix_maxnorm", "%v, want a finite number >= 0 (0: none)", c.SmoothMixMaxNorm)
		ps.check(c.SmoothMixMaxNormS >= 0 && finite(c.SmoothMixMaxNormS), "smoothmix_maxnorm_s", "%v, want a finite number >= 0 (0: smoothmix_alpha * smoothmix_mix_step)", c.SmoothMixMaxNormS)
		ps.check(c.SmoothMixWarmup >= 1, "smoothmix_warmup", "%d, want >= 1", c.SmoothMixWarmup)
	}
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
			list = append(list, setting{key, was.Knob(key).Interface(), now.Knob(key).Interface()})
		}
	}
	return list
}
