package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Attacker perturbs a batch for training or testing: inputs are tiled m
// times (rows b*m .. b*m+m-1 copy image b), labels are per image, noise is
// shaped like inputs; it returns the tiled adversarial inputs (without
// noise). Its random draws come from g; epoch sets the warm-up radius.
type Attacker func(s *torchbind.Scope, model *torchbind.Module, g *torchbind.Generator, inputs, labels, noise *torchbind.Tensor, m, epoch int) *torchbind.Tensor

// batchTensors checks a loaded batch and copies it to the device. The
// checks are the attack's (pixels in [0, 1], labels among the model's
// classes), made here on the host so that the attack need not read them
// back from the device.
func (t *Trainer) batchTensors(s *torchbind.Scope, b *data.Batch) (*torchbind.Tensor, *torchbind.Tensor) {
	if err := checkBatch(b, t.model.Meta.NumClasses); err != nil {
		s.Fail(err)
		return nil, nil
	}
	sh := b.Shape
	x := s.FromFloat32(b.Images, t.model.Device(), int64(b.Len()), int64(sh.C), int64(sh.H), int64(sh.W))
	y := s.FromInt64(b.Labels, t.model.Device(), int64(b.Len()))
	return x, y
}

func checkBatch(b *data.Batch, classes int) error {
	for i, v := range b.Images {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("example %d: pixel value %v outside [0, 1]", b.Indices[i/b.Shape.Size()], v)
		}
	}
	for i, y := range b.Labels {
		if y < 0 || y >= int64(classes) {
			return fmt.Errorf("example %d: label %d outside the model's %d classes", b.Indices[i], y, classes)
		}
	}
	return nil
}

// tile repeats each row of x (along dimension 0) m times consecutively, as
// repeat_interleave does, but as a broadcast copy on the device: no index
// tensor goes up from the host.
func tile(s *torchbind.Scope, x *torchbind.Tensor, m int) *torchbind.Tensor {
	if s.Err() != nil {
		return nil
	}
	shape := x.Shape()
	tiled := append([]int64{shape[0] * int64(m)}, shape[1:]...)
	return s.Reshape(s.Repeat(s.Reshape(x, shape[0], 1, -1), 1, int64(m), 1), tiled...)
}

// firstCopies is rows 0, m, 2m, ... of a tiled batch x (one copy per image),
// a strided view rather than a gather.
func firstCopies(s *torchbind.Scope, x *torchbind.Tensor, m int) *torchbind.Tensor {
	if s.Err() != nil {
		return nil
	}
	shape := slices.Clone(x.Shape())
	shape[0] /= int64(m)
	return s.Reshape(s.Narrow(s.Reshape(x, shape[0], int64(m), -1), 1, 0, 1), shape...)
}

// The streams of an epoch's torch generators.
const (
	trainStream = iota
	testStream
	// attackDraws marks the generator of the attack's random directions
	// (which replace a zero gradient): apart from the noise's, a step draws
	// them whether or not a row needs one, without asking the device first.
	attackDraws = 1 << 7
)

// useGenerator replaces the torch generator (noise and attacks) by one seeded
// from (seed, epoch, stream). We derive every epoch's randomness from (seed,
// epoch) rather than save generator states in the checkpoint: the loader
// already shuffles and augments from (seed, epoch, example), so nothing
// random carries over from one epoch to the next, a run resumed at any epoch
// draws exactly what the uninterrupted run drew, and the checkpoint keeps the
// reference's layout with no state to restore (or to get wrong on another
// device).
func (t *Trainer) useGenerator(epoch int, stream uint64) error {
	for _, g := range []struct {
		gen    **torchbind.Generator
		stream uint64
	}{{&t.gen, stream}, {&t.attackGen, stream | attackDraws | t.attackStream()}} {
		seed := rand.New(rand.NewPCG(t.cfg.Seed, uint64(epoch)<<8|g.stream)).Uint64()
		next, err := torchbind.NewGenerator(t.model.Device(), seed)
		if err != nil {
			return err
		}
		(*g.gen).Close()
		*g.gen = next
	}
	return nil
}

// correct counts argmax(logits) == labels, on the device.
func correct(s *torchbind.Scope, logits, labels *torchbind.Tensor) *torchbind.Tensor {
	return s.Sum(s.Eq(s.Argmax(logits, 1), labels))
}

// attacked is the attack of inputs (tiled m times, see Attacker) on the
// model as torchbind.Module.ForAttack gives it.
func (t *Trainer) attacked(s *torchbind.Scope, inputs, labels, noise *torchbind.Tensor, m, epoch int) (*torchbind.Tensor, error) {
	model, done, err := t.model.ForAttack(t.cfg.FrozenAttack)
	if err != nil {
		return nil, err
	}
	adv := t.attacker(s, model, t.attackGen, inputs, labels, noise, m, epoch)
	if err := done(); err != nil {
		return nil, err
	}
	return adv, s.Err()
}

// step is one optimizer step on the cross-entropy of the model's logits on
// inputs against labels (see descend).
func (t *Trainer) step(s *torchbind.Scope, inputs, labels *torchbind.Tensor, weight float64, loss, acc *meter) error {
	logits := t.model.Forward(s, inputs)
	return t.descend(s, s.CrossEntropy(logits, labels, torchbind.ReduceMean), logits, labels, weight, loss, acc)
}

// descend is one optimizer step on the loss l scaled by weight; it adds the
// (unscaled) loss and the accuracy of logits against labels to the meters.
func (t *Trainer) descend(s *torchbind.Scope, l, logits, labels *torchbind.Tensor, weight float64, loss, acc *meter) error {
	scaled := l
	if weight != 1 {
		scaled = s.MulScalar(l, weight)
	}
	if err := s.Err(); err != nil {
		return err
	}
	if err := t.opt.ZeroGrad(); err != nil {
		return err
	}
	if err := scaled.Backward(); err != nil {
		return err
	}
	if err := t.syncGradients(); err != nil {
		return err
	}
	if err := t.opt.Step(); err != nil {
		return err
	}
	n := int(logits.Shape()[0])
	loss.add(s, l, float64(n), n)
	acc.add(s, correct(s, logits, labels), 100, n)
	return s.Err()
}

// trainBatch trains on one loaded batch as train_pgd.py does: the batch is
// split into m chunks; each chunk is tiled m times, noised and (with
// adversarial training) attacked; with multi-noise training every chunk
// takes an optimizer step on all its noisy copies, otherwise the first copy
// of each image is kept and the batch takes one step.
func (t *Trainer) trainBatch(b *data.Batch, epoch int, weight float64, loss, acc *meter) error {
	if done, err := t.methodBatch(b, epoch, weight, loss, acc); done {
		return err
	}
	s := torchbind.NewScope()
	defer s.Close()
	x, y := t.batchTensors(s, b)
	m := t.cfg.NumNoiseVec
	chunk := b.Len() / m
	if chunk == 0 {
		return nil // fewer images than noise vectors: nothing to split, as the reference yields empty chunks
	}
	var kept, keptLabels []*torchbind.Tensor
	for c := 0; c < m; c++ {
		xc := s.Narrow(x, 0, int64(c*chunk), int64(chunk))
		yc := s.Narrow(y, 0, int64(c*chunk), int64(chunk))
		inputs := tile(s, xc, m)
		noise := t.trainNoise(s, inputs)
		if t.cfg.AdvTraining {
			var err error
			if inputs, err = t.attacked(s, inputs, yc, noise, m, epoch); err != nil {
				return fmt.Errorf("chunk %d: %w", c, err)
			}
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("chunk %d: %w", c, err)
		}
		if t.cfg.TrainMultiNoise {
			if err := t.step(s, s.Add(inputs, noise), tile(s, yc, m), weight, loss, acc); err != nil {
				return err
			}
			continue
		}
		kept = append(kept, s.Add(firstCopies(s, inputs, m), firstCopies(s, noise, m)))
		keptLabels = append(keptLabels, yc)
	}
	if t.cfg.TrainMultiNoise {
		return s.Err()
	}
	return t.step(s, s.Cat(0, kept...), s.Cat(0, keptLabels...), weight, loss, acc)
}

// trainEpoch runs one epoch of training and returns the mean loss and
// accuracy (percent). With self-training, each labelled batch is followed by
// a pseudo-labelled one whose loss is scaled by SelfTrainingWeight.
func (t *Trainer) trainEpoch(ctx context.Context, epoch int) (float64, float64, error) {
	if err := t.useGenerator(epoch, trainStream); err != nil {
		return 0, 0, err
	}
	if err := t.model.Train(true); err != nil {
		return 0, 0, err
	}
	batches := t.train.Epoch(ctx, epoch)
	defer batches.Close()
	var extra *data.Epoch
	if t.extra != nil {
		extra = t.extra.Epoch(ctx, epoch)
		defer func() { extra.Close() }()
	}
	var loss, acc meter
	t.progress.Start(0, t.train.Len())
	defer t.progress.Finish()
	for i := 0; ; i++ {
		b, err := batches.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if err := t.trainBatch(b, epoch, 1, &loss, &acc); err != nil {
			return 0, 0, fmt.Errorf("epoch %d, batch %d: %w", epoch, i, err)
		}
		if extra != nil {
			pb, err := extra.Next()
			if errors.Is(err, io.EOF) { // the pseudo-labelled set ran out: start it over
				extra.Close()
				extra = t.extra.Epoch(ctx, epoch+i+1)
				pb, err = extra.Next()
			}
			if err != nil {
				return 0, 0, fmt.Errorf("pseudo-labelled batch: %w", err)
			}
			if err := t.trainBatch(pb, epoch, t.cfg.SelfTrainingWeight, &loss, &acc); err != nil {
				return 0, 0, fmt.Errorf("epoch %d, pseudo-labelled batch %d: %w", epoch, i, err)
			}
		}
		t.progress.Update(i + 1)
	}
	if err := t.reduceMeters(&loss, &acc); err != nil {
		return 0, 0, fmt.Errorf("epoch %d: %w", epoch, err)
	}
	return loss.avg(), acc.avg(), nil
}

// testEpoch measures, in eval mode, the loss and accuracy on noisy test
// inputs and, with adversarial training, under a single-noise attack. It
// returns loss, accuracy and noisy clean accuracy (the last only with
// adversarial training).
func (t *Trainer) testEpoch(ctx context.Context, epoch int) (float64, float64, float64, error) {
	if err := t.useGenerator(epoch, testStream); err != nil {
		return 0, 0, 0, err
	}
	if err := t.model.Train(false); err != nil {
		return 0, 0, 0, err
	}
	var attackWith *torchbind.Module
	done := func() error { return nil }
	if t.cfg.AdvTraining {
		// The weights stay fixed through the test: one attack model
		// serves every batch.
		var err error
		if attackWith, done, err = t.model.ForAttack(t.cfg.FrozenAttack); err != nil {
			return 0, 0, 0, err
		}
	}
	var loss, acc, accNoisy meter
	err := t.testBatches(ctx, epoch, attackWith, &loss, &acc, &accNoisy)
	if derr := done(); err == nil {
		err = derr
	}
	if err == nil {
		err = t.reduceMeters(&loss, &acc, &accNoisy)
	}
	if err != nil {
		return 0, 0, 0, err
	}
	if t.cfg.AdvTraining {
		return loss.avg(), acc.avg(), accNoisy.avg(), nil
	}
	return loss.avg(), accNoisy.avg(), 0, nil
}

// testBatches tests every batch of the test set, attacking with attackWith
// when it is not nil.
func (t *Trainer) testBatches(ctx context.Context, epoch int, attackWith *torchbind.Module, loss, acc, accNoisy *meter) error {
	loader, err := data.NewLoader(t.test, data.Options{BatchSize: t.cfg.Batch, Workers: t.cfg.Workers, Shard: t.shard(0)})
	if err != nil {
		return err
	}
	batches := loader.Epoch(ctx, 0)
	defer batches.Close()
	for k := 0; ; k++ {
		b, err := batches.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if b.Len() == 0 { // a process's share of a short last batch
			continue
		}
		if err := t.testBatch(b, k, epoch, attackWith, loss, acc, accNoisy); err != nil {
			return err
		}
	}
}

// testBatch tests batch k of the test set.
func (t *Trainer) testBatch(b *data.Batch, k, epoch int, attackWith *torchbind.Module, loss, acc, accNoisy *meter) error {
	s := torchbind.NewScope()
	defer s.Close()
	x, y := t.batchTensors(s, b)
	noise := t.testNoise(s, x, k)
	n := b.Len()
	// evaluate returns the loss on inputs + noise and adds the accuracy to acc.
	evaluate := func(inputs *torchbind.Tensor, acc *meter) *torchbind.Tensor {
		logits := t.model.Infer(s, s.Add(inputs, noise))
		acc.add(s, correct(s, logits, y), 100, n)
		return s.CrossEntropy(logits, y, torchbind.ReduceMean)
	}
	l := evaluate(x, accNoisy)
	if attackWith != nil && s.Err() == nil {
		adv := t.attacker(s, attackWith, t.attackGen, x, y, noise, 1, epoch)
		// With an attack the loss reported is the one under attack.
		l = evaluate(adv, acc)
	}
	loss.add(s, l, float64(n), n)
	return s.Err()
}
