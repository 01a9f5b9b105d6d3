package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// addMethodFlags registers --method and the knobs of the methods after
// SmoothAdv. A knob whose reference name collides with a flag of
// train_pgd.py or of another method carries its method's name, as they all
// do here for one rule: --macer-gamma is not the learning rate's --gamma.
func addMethodFlags(fs *pflag.FlagSet, cfg *settings.Config) {
	fs.StringVar(&cfg.Method, "method", cfg.Method, fmt.Sprintf("training method: %s (default gaussian, or smoothadv with --adv-training; consistency with --adv-training trains on SmoothAdv's attack)", strings.Join(settings.Methods, ", ")))
	fs.Float64Var(&cfg.MACERLambda, "macer-lbd", cfg.MACERLambda, "MACER: weight of the robustness loss (its --lbd)")
	fs.Float64Var(&cfg.MACERGamma, "macer-gamma", cfg.MACERGamma, "MACER: hinge on the radius gap (its --gamma)")
	fs.Float64Var(&cfg.MACERBeta, "macer-beta", cfg.MACERBeta, "MACER: inverse softmax temperature of the robustness loss (its --beta)")
	fs.IntVar(&cfg.MACERDeferred, "macer-deferred", cfg.MACERDeferred, "MACER: first epochs trained without the robustness loss (0: none, as MACER's reference; consistency's MACER baseline defers it past the first learning-rate drop)")
	fs.Float64Var(&cfg.ConsistencyLambda, "consistency-lbd", cfg.ConsistencyLambda, "consistency: weight of the KL term (its --lbd)")
	fs.Float64Var(&cfg.ConsistencyEta, "consistency-eta", cfg.ConsistencyEta, "consistency: weight of the entropy term (its --eta)")
	fs.Float64Var(&cfg.SmoothMixEta, "smoothmix-eta", cfg.SmoothMixEta, "SmoothMix: weight of the mixup loss (its --eta)")
	fs.Float64Var(&cfg.SmoothMixAlpha, "smoothmix-alpha", cfg.SmoothMixAlpha, "SmoothMix: attack step size, pixel units (its --alpha)")
	fs.IntVar(&cfg.SmoothMixSteps, "smoothmix-num-steps", cfg.SmoothMixSteps, "SmoothMix: attack steps T (its --num-steps)")
	fs.IntVar(&cfg.SmoothMixMixStep, "smoothmix-mix-step", cfg.SmoothMixMixStep, "SmoothMix: the attack step whose start is the clean side, 0: the image (its --mix_step)")
	fs.Float64Var(&cfg.SmoothMixMaxNorm, "smoothmix-maxnorm", cfg.SmoothMixMaxNorm, "SmoothMix: L2 bound of the attack, pixel units; 0: none (its --maxnorm)")
	fs.Float64Var(&cfg.SmoothMixMaxNormS, "smoothmix-maxnorm-s", cfg.SmoothMixMaxNormS, "SmoothMix: L2 bound of the clean side; 0: alpha * mix-step (its --maxnorm_s)")
	fs.IntVar(&cfg.SmoothMixWarmup, "smoothmix-warmup", cfg.SmoothMixWarmup, "SmoothMix: epochs over which the mixup loss and maxnorm-s grow (its --warmup)")
}
