package train

import (
	"fmt"
	"path/filepath"

	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// resumeState is what a checkpoint restores.
type resumeState struct {
	model *models.Model
	done  int // epochs trained: the checkpoint's 'epoch', as train_pgd.py saves it (epoch + 1)
	optim *models.OptimizerState
}

// loadCheckpoint reads the output directory's checkpoint for resuming.
func loadCheckpoint(dir string, opt models.Options) (*resumeState, error) {
	path := filepath.Join(dir, settings.CheckpointFile)
	m, err := models.Load(path, opt)
	if err != nil {
		return nil, err
	}
	o, err := models.LoadOptimizerState(path, m)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &resumeState{model: m, done: m.Meta.Epoch, optim: o}, nil
}

// restoreOptimizer hands the checkpoint's momentum buffers to the optimizer.
func (t *Trainer) restoreOptimizer(st *resumeState) {
	if st == nil || st.optim == nil || t.opt == nil {
		return
	}
	copy(t.opt.Buffers, st.optim.MomentumBuffers)
	st.optim.MomentumBuffers = nil
}

// saveCheckpoint writes the model and optimizer after epoch (from 0),
// atomically, recording epoch + 1 epochs done as train_pgd.py does.
func (t *Trainer) saveCheckpoint(epoch int) error {
	o := &models.OptimizerState{LR: t.opt.LR, Momentum: t.opt.Momentum, Dampening: t.opt.Dampening,
		WeightDecay: t.opt.WeightDecay, Nesterov: t.opt.Nesterov, MomentumBuffers: t.opt.Buffers}
	t.model.Meta.Epoch = epoch + 1
	if err := models.SaveCheckpoint(filepath.Join(t.cfg.OutDir, settings.CheckpointFile), t.model, epoch+1, o); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}
