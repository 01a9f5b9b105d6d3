package attack

import (
	"fmt"
	"slices"

	"github.com/smoothadv/smoothadv/torchbind"
)

// batch is an attack's view of its tiled inputs: images*m rows, each image's
// m copies consecutive, every sample flattened to size values.
type batch struct {
	scope         *torchbind.Scope // owns the views below
	shape         []int64          // of the tiled inputs
	images, m     int64
	tiled         *torchbind.Tensor // inputs [images, m, size]
	clean         *torchbind.Tensor // the first copy of each image [images, size]
	noise         *torchbind.Tensor // [images, m, size], or nil
	labels        *torchbind.Tensor // int64 [images]
	tiledLabels   *torchbind.Tensor // int64 [images*m], each label m times, for the Stein direction; nil until needed
	minLabel      int64
	maxLabel      int64
	checkedLogits bool
}

// newBatch checks the tensors' shapes and, unless checked (see
// Config.Checked), their values.
func newBatch(inputs, labels, noise *torchbind.Tensor, m int, checked bool) (*batch, error) {
	shape, _, err := inputs.Info()
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	if len(shape) < 2 || shape[0] == 0 || shape[0]%int64(m) != 0 {
		return nil, fmt.Errorf("inputs of shape %v are not a non-empty batch of images tiled %d times", shape, m)
	}
	b := &batch{scope: torchbind.NewScope(), shape: shape, images: shape[0] / int64(m), m: int64(m)}
	if err := b.fill(inputs, labels, noise, checked); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// fill checks the tensors and makes the batch's views of them.
func (b *batch) fill(inputs, labels, noise *torchbind.Tensor, checked bool) error {
	if err := b.setLabels(labels, checked); err != nil {
		return err
	}
	if noise != nil {
		if ns := noise.Shape(); !slices.Equal(ns, b.shape) {
			return fmt.Errorf("noise of shape %v does not match inputs %v", ns, b.shape)
		}
	}
	s := b.scope
	if !checked {
		if err := checkRange(s, inputs); err != nil {
			return err
		}
	}
	b.tiled = s.Reshape(inputs, b.images, b.m, -1)
	b.clean = s.Reshape(s.Narrow(b.tiled, 1, 0, 1), b.images, -1)
	if noise != nil {
		b.noise = s.Reshape(noise, b.images, b.m, -1)
	}
	return s.Err()
}

// setLabels checks the labels' shape and (unless the caller has) notes their
// range, which the first forward pass checks against the number of classes:
// an out-of-range label would be a device-side assertion on a GPU, not an
// error.
func (b *batch) setLabels(labels *torchbind.Tensor, checked bool) error {
	shape, dt, err := labels.Info()
	if err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if dt != torchbind.Int64 || !slices.Equal(shape, []int64{b.images}) {
		return fmt.Errorf("labels must be int64 [%d], one per image, got %v %v", b.images, dt, shape)
	}
	b.labels = labels
	if checked {
		b.checkedLogits = true
		return nil
	}
	ys, err := labels.Int64s()
	if err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	b.minLabel, b.maxLabel = slices.Min(ys), slices.Max(ys)
	return nil
}

// checkRange rejects inputs outside [0, 1] (or NaN), as the reference does.
func checkRange(s *torchbind.Scope, inputs *torchbind.Tensor) error {
	hi, err := s.Max(inputs).Item()
	if err != nil {
		return fmt.Errorf("inputs: %w", err)
	}
	negLo, err := s.Max(s.Neg(inputs)).Item()
	if err != nil {
		return fmt.Errorf("inputs: %w", err)
	}
	if !(hi <= 1 && negLo <= 0) {
		return fmt.Errorf("input values must lie in [0, 1], found [%v, %v]", -negLo, hi)
	}
	return nil
}

func (b *batch) close() { b.scope.Close() }

// perturb is inputs + delta, each image's delta added to its m copies,
// shaped like the inputs.
func (b *batch) perturb(s *torchbind.Scope, delta *torchbind.Tensor) *torchbind.Tensor {
	return s.Reshape(s.Add(b.tiled, s.Reshape(delta, b.images, 1, -1)), b.shape...)
}

// logits runs the classifier on inputs + delta + noise.
func (b *batch) logits(s *torchbind.Scope, model Classifier, delta *torchbind.Tensor) *torchbind.Tensor {
	x := b.perturb(s, delta)
	if b.noise != nil {
		x = s.Add(x, s.Reshape(b.noise, b.shape...))
	}
	out := model.Forward(s, x)
	if s.Err() != nil {
		return nil
	}
	shape := out.Shape()
	if len(shape) != 2 || shape[0] != b.images*b.m || shape[1] < 1 {
		s.Fail(fmt.Errorf("the classifier returned %v, want logits [%d, classes]", shape, b.images*b.m))
		return nil
	}
	if !b.checkedLogits {
		if b.minLabel < 0 || b.maxLabel >= shape[1] {
			s.Fail(fmt.Errorf("labels range over [%d, %d], outside the classifier's %d classes", b.minLabel, b.maxLabel, shape[1]))
			return nil
		}
		b.checkedLogits = true
	}
	return out
}

// loss is the reference's attack loss: m = 1, cross-entropy summed over the
// batch; m > 1, the NLL of the softmax averaged over each image's m copies
// (clamped at 1e-20 before the log), mean over the batch.
func (b *batch) loss(s *torchbind.Scope, logits *torchbind.Tensor) *torchbind.Tensor {
	if b.m == 1 {
		return s.CrossEntropy(logits, b.labels, torchbind.ReduceSum)
	}
	avg := s.MeanDim(s.Reshape(s.Softmax(logits, 1), b.images, b.m, -1), 1, false)
	return s.NLLLoss(s.Log(s.ClampMin(avg, 1e-20)), b.labels, torchbind.ReduceMean)
}

// gradient is the loss's gradient with respect to delta [images, size],
// with the logits it was taken at.
func (b *batch) gradient(s *torchbind.Scope, model Classifier, delta *torchbind.Tensor) (grad, logits *torchbind.Tensor) {
	leaf := s.Detach(delta)
	if s.Err() != nil {
		return nil, nil
	}
	if _, err := leaf.SetRequiresGrad(true); err != nil {
		s.Fail(err)
		return nil, nil
	}
	logits = b.logits(s, model, leaf)
	grads := s.Grad(b.loss(s, logits), leaf)
	if s.Err() != nil {
		return nil, nil
	}
	return grads[0], logits
}

// steinDirection is the gradient-free ascent direction of the smoothed loss:
// by Stein's lemma the gradient of E[softmax_y(x + n)] is
// E[n softmax_y(x + n)] / sigma^2, so the mean over the m copies of
// -softmax_y(x + delta + n_i) n_i points (up to scale) to lower probability
// of the label, that is up the loss.
func (b *batch) steinDirection(s *torchbind.Scope, model Classifier, delta *torchbind.Tensor) *torchbind.Tensor {
	logits := b.logits(s, model, delta)
	// nll_loss of probabilities picks -softmax_y per row, as the reference does.
	if b.tiledLabels == nil {
		b.tiledLabels = b.scope.Reshape(b.scope.Repeat(b.scope.Reshape(b.labels, b.images, 1), 1, b.m), -1)
	}
	negP := s.NLLLoss(s.Softmax(logits, 1), b.tiledLabels, torchbind.ReduceNone)
	return s.MeanDim(s.Mul(s.Reshape(negP, b.images, b.m, 1), b.noise), 1, false)
}

// predictions are the classifier's labels per image: the argmax for m = 1,
// the most frequent argmax over the m copies (the smallest among ties)
// otherwise.
func (b *batch) predictions(s *torchbind.Scope, logits *torchbind.Tensor) *torchbind.Tensor {
	top := s.Argmax(logits, 1)
	if b.m == 1 {
		return top
	}
	return s.Mode(s.Reshape(top, b.images, b.m), 1)
}

// project ends a step as the reference does: x + delta clamped to [0, 1],
// then delta scaled into the eps-ball with torch.renorm's rule.
func (b *batch) project(s *torchbind.Scope, delta *torchbind.Tensor, eps float64) *torchbind.Tensor {
	return s.Renorm(s.Sub(s.Clamp(s.Add(delta, b.clean), 0, 1), b.clean), eps)
}

// unitRows scales each row of v to unit L2 norm. A zero row has no
// direction, so it becomes its row of random (standard normal draws),
// unscaled, as in the reference. The draw is made for every row, needed or
// not: asking the device whether any row is zero would wait for it every
// step.
func unitRows(s *torchbind.Scope, v, random *torchbind.Tensor) *torchbind.Tensor {
	norms := s.Reshape(s.L2Norms(v), -1, 1)
	zero := s.Eq(norms, s.ZerosLike(norms))
	return s.Where(zero, random, s.Div(v, norms))
}

// iterate runs steps, each in its own scope. step gets the carried tensors
// and returns their next values; everything else it makes is freed with its
// scope, so an attack runs in constant memory however many steps it takes.
// Errors are the scope's. iterate owns carried and, on success, returns the
// final values for the caller to close.
func iterate(steps int, carried []*torchbind.Tensor, step func(s *torchbind.Scope, i int, cur []*torchbind.Tensor) []*torchbind.Tensor) ([]*torchbind.Tensor, error) {
	for i := range steps {
		s := torchbind.NewScope()
		next := step(s, i, carried)
		if err := s.Err(); err != nil {
			s.Close()
			closeAll(carried)
			return nil, fmt.Errorf("step %d: %w", i+1, err)
		}
		for j, t := range next {
			if t != carried[j] {
				carried[j].Close()
				carried[j] = s.Keep(t)
			}
		}
		s.Close()
	}
	return carried, nil
}

func closeAll(ts []*torchbind.Tensor) {
	for _, t := range ts {
		t.Close()
	}
}
