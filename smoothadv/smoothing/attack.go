package smoothing

import (
	"context"
	"fmt"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/smoothadv/attack"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Attacked is the Prepare of predict.py --attack: each image is tiled m
// times, noised (no noise for an attack on the base classifier), attacked,
// and replaced by the first copy of its adversarial version; the base
// prediction is the classifier's on that image without noise. The caller
// puts the model in evaluation mode with frozen parameters.
//
// The noise comes from each example's own stream (stage attack) of Streams,
// so an example's attack does not depend on the examples beside it. Gen
// only draws the random direction of a row whose gradient is exactly zero.
type Attacked struct {
	Model interface {
		Classifier
		attack.Classifier
	}
	Device  string
	Shape   []int64
	Streams *Sampler // draws the noise, with its sigma and seed
	Attack  attack.Config
	// Base attacks the base classifier itself: zero noise.
	Base bool
	Gen  *torchbind.Generator
	// Visualize, when set, receives each example's dataset index and its
	// clean and attacked image.
	Visualize func(index int, clean, adv []float32) error
}

// Prepare attacks the images in place and returns the base predictions.
func (a *Attacked) Prepare(_ context.Context, indices []int, images [][]float32, labels []int) ([]int, error) {
	m := a.Attack.NoiseVectors
	per := int(a.Shape[0] * a.Shape[1] * a.Shape[2])
	host := make([]float32, 0, per*len(images))
	for _, img := range images {
		host = append(host, img...)
	}
	y := make([]int64, len(labels))
	for i, l := range labels {
		y[i] = int64(l)
	}
	s := torchbind.NewScope()
	defer s.Close()
	n := int64(len(images))
	x := s.FromFloat32(host, a.Device, append([]int64{n}, a.Shape...)...)
	reps := make([]int64, n)
	for i := range reps {
		reps[i] = int64(m)
	}
	tiled := s.RepeatInterleave(x, reps)
	var noise *torchbind.Tensor
	if a.Base {
		noise = s.ZerosLike(tiled)
	} else {
		xs := make([]certify.Input, n)
		for i, idx := range indices {
			xs[i] = certify.Input(idx)
		}
		noise = a.Streams.Noise(s, xs, certify.StageAttack, m)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	adv, err := a.Attack.Attack(s, a.Model, tiled, s.FromInt64(y, a.Device, n), noise, a.Gen)
	if err != nil {
		return nil, err
	}
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = int64(i * m)
	}
	first, err := s.IndexSelect(adv, 0, s.FromInt64(idx, a.Device, n)).Float32s()
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	for i := range images {
		attacked := first[i*per : (i+1)*per]
		if a.Visualize != nil {
			if err := a.Visualize(indices[i], images[i], attacked); err != nil {
				return nil, err
			}
		}
		images[i] = attacked
	}
	return Argmax(a.Model, a.Device, a.Shape, images)
}

// PredictAttack is predict.py's --attack.
type PredictAttack struct {
	Config attack.Config
	Base   bool // attack the base classifier: no noise
	Frozen bool // attack a frozen copy of the weights (torchbind.Module.ForAttack)
	// Visualize, when set, receives each example's dataset index and its
	// clean and attacked image.
	Visualize func(index int, clean, adv []float32) error
}

// PredictModel runs PREDICT on the job with its model m in evaluation
// mode. With an attack (at not nil) each image is first attacked as
// predict.py does (Attacked); the attack's random directions come from a
// generator seeded with the job's seed + 2^32, apart from the noise.
func PredictModel(ctx context.Context, j Job, m *models.Model, p certify.PredictParams, at *PredictAttack) error {
	if err := m.Train(false); err != nil {
		return err
	}
	prepare := BasePredictions(m, m.Device(), j.Sampler.Shape)
	if at != nil {
		target, done, err := m.ForAttack(at.Frozen)
		if err != nil {
			return err
		}
		defer done()
		gen, err := torchbind.NewGenerator(m.Device(), j.Sampler.Seed+1<<32)
		if err != nil {
			return err
		}
		defer gen.Close()
		cfg := at.Config
		cfg.Workers = attack.PiecesFor(m.Device(), 1)
		a := &Attacked{Model: target, Device: m.Device(), Shape: j.Sampler.Shape, Streams: j.Sampler,
			Attack: cfg, Base: at.Base, Gen: gen, Visualize: at.Visualize}
		prepare = a.Prepare
		j.Params.Attack = AttackParams(cfg, at.Base)
	}
	return Predict(ctx, j, p, prepare)
}
