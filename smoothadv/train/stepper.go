package train

import (
	"fmt"

	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// Stepper runs the training step of a configuration on batches the caller
// gives it, without data loading, testing, logs or checkpoints, so that a
// benchmark times the step alone (bench train). It steps at the full attack
// radius, as after warm-up.
type Stepper struct {
	t         *Trainer
	loss, acc meter
}

// NewStepper trains model (which the Stepper does not own) with cfg's
// optimizer, noise, attack and noise vectors, and sets libtorch's threads as
// Run does. Only the settings of the step are checked: cfg's data, epochs and
// output directory are not used.
func NewStepper(cfg settings.Config, model *models.Model) (*Stepper, error) {
	cfg = cfg.Resolved()
	cfg.Dataset, cfg.Arch, cfg.OutDir, cfg.Epochs, cfg.Device = "-", model.Meta.Arch, "-", 1, model.Device()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid training configuration:\n%w", err)
	}
	if err := useTrainingThreads(1); err != nil {
		return nil, err
	}
	params, err := model.Parameters()
	if err != nil {
		return nil, err
	}
	model.SetChannelsLast(cfg.ChannelsLast)
	t := &Trainer{cfg: cfg, model: model, opt: NewSGD(params, cfg.LR, cfg.Momentum, cfg.WeightDecay)}
	s := &Stepper{t: t}
	if cfg.AdvTraining {
		if t.attacker, err = newAttacker(cfg, 1); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := t.useGenerator(s.epoch(), trainStream); err != nil {
		s.Close()
		return nil, err
	}
	if err := model.Train(true); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// epoch is the first epoch at the full attack radius.
func (s *Stepper) epoch() int { return max(s.t.cfg.Warmup, 1) - 1 }

// Step trains on one batch as an epoch of Run does.
func (s *Stepper) Step(b *data.Batch) error {
	return s.t.trainBatch(b, s.epoch(), 1, &s.loss, &s.acc)
}

// Loss is the mean training loss of the steps so far; reading it waits for
// the device to finish them.
func (s *Stepper) Loss() float64 { return s.loss.avg() }

// Close frees what the Stepper made; the model stays open.
func (s *Stepper) Close() {
	s.t.model = nil // the caller's
	s.t.close()
}
