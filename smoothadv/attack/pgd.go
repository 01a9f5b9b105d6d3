package attack

import "github.com/smoothadv/smoothadv/torchbind"

// pgd returns the per-image perturbation [images, size] of the reference's
// PGD_L2: from delta = 0, steps SGD steps of learning rate 2*eps/steps along
// the per-image unit ascent direction, each followed by the projection.
func (c Config) pgd(model Classifier, b *batch, dirs rowsFrom) (*torchbind.Tensor, error) {
	delta := b.scope.ZerosLike(b.clean)
	if err := b.scope.Err(); err != nil {
		return nil, err
	}
	lr := 2 * c.Epsilon / float64(c.Steps)
	final, err := iterate(c.Steps, []*torchbind.Tensor{b.scope.Keep(delta)},
		func(s *torchbind.Scope, i int, cur []*torchbind.Tensor) []*torchbind.Tensor {
			var dir *torchbind.Tensor
			if c.stein() {
				dir = b.steinDirection(s, model, cur[0])
			} else {
				dir, _ = b.gradient(s, model, cur[0])
			}
			step := s.MulScalar(unitRows(s, dir, dirs.rows(s, i, b.images)), lr)
			return []*torchbind.Tensor{b.project(s, s.Add(cur[0], step), c.Epsilon)}
		})
	if err != nil {
		return nil, err
	}
	return final[0], nil
}
