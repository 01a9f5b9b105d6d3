package train

import (
	"fmt"

	"github.com/smoothadv/smoothadv/smoothadv/attack"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// newAttacker returns the attack of train_pgd.py: its radius, and DDN's
// initial norm, warm up over the first Warmup epochs to Epsilon. processes
// train on this node's cores.
func newAttacker(cfg settings.Config, processes int) (Attacker, error) {
	base := attack.Config{Kind: cfg.Attack, Epsilon: attack.From256(cfg.Epsilon), Steps: cfg.NumSteps,
		NoiseVectors: cfg.NumNoiseVec, NoGrad: cfg.NoGradAttack, InitNorm: attack.From256(cfg.Epsilon), Gamma: cfg.GammaDDN,
		Checked: true, // batchTensors checks every batch
		Workers: attack.PiecesFor(cfg.Device, processes)}
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	return func(s *torchbind.Scope, model *torchbind.Module, g *torchbind.Generator, inputs, labels, noise *torchbind.Tensor, m, epoch int) *torchbind.Tensor {
		c := base
		c.Epsilon = cfg.WarmEpsilon(epoch)
		c.InitNorm = c.Epsilon // the reference warms DDN's initial norm with epsilon
		c.NoiseVectors = m
		adv, err := c.Attack(s, model, inputs, labels, noise, g)
		if err != nil {
			s.Fail(err)
			return nil
		}
		return adv
	}, nil
}
