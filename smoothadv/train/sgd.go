package train

import (
	"fmt"
	"math"

	"github.com/smoothadv/smoothadv/torchbind"
)

// SGD is torch.optim.SGD (momentum, dampening, weight decay, Nesterov) over
// a model's parameters, with its momentum buffers held in libtorch memory on
// the parameters' device:
//
//	g = grad + weight_decay * p
//	buf = g (first step), else momentum * buf + (1 - dampening) * g
//	g = buf, or g + momentum * buf with Nesterov
//	p -= lr * g
type SGD struct {
	Params                               []torchbind.Named
	LR, Momentum, Dampening, WeightDecay float64
	Nesterov                             bool
	// Buffers holds each parameter's momentum buffer; nil before its first step.
	Buffers []*torchbind.Tensor
}

// NewSGD returns an optimizer over params (which it closes on Close).
func NewSGD(params []torchbind.Named, lr, momentum, weightDecay float64) *SGD {
	return &SGD{Params: params, LR: lr, Momentum: momentum, WeightDecay: weightDecay,
		Buffers: make([]*torchbind.Tensor, len(params))}
}

// Close frees the parameter handles and momentum buffers.
func (o *SGD) Close() {
	torchbind.CloseAll(o.Params)
	for _, b := range o.Buffers {
		b.Close()
	}
}

// ZeroGrad drops every parameter's gradient.
func (o *SGD) ZeroGrad() error {
	for _, p := range o.Params {
		if err := p.T.ZeroGrad(); err != nil {
			return fmt.Errorf("zero grad %s: %w", p.Name, err)
		}
	}
	return nil
}

// Step updates every parameter that has a gradient.
func (o *SGD) Step() error {
	s := torchbind.NewScope()
	defer s.Close()
	for i, p := range o.Params {
		g := s.GradOf(p.T)
		if g == nil {
			if err := s.Err(); err != nil {
				return err
			}
			continue // a parameter the loss does not reach, as torch skips it
		}
		if o.WeightDecay != 0 {
			g = s.Add(g, s.MulScalar(s.Detach(p.T), o.WeightDecay))
		}
		if o.Momentum != 0 {
			if o.Buffers[i] == nil {
				o.Buffers[i] = s.Keep(s.Clone(g))
			} else {
				if err := o.Buffers[i].MulInPlace(o.Momentum); err != nil {
					return err
				}
				if err := o.Buffers[i].AddInPlace(g, 1-o.Dampening); err != nil {
					return err
				}
			}
			if o.Nesterov {
				g = s.Add(g, s.MulScalar(o.Buffers[i], o.Momentum))
			} else {
				g = o.Buffers[i]
			}
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("sgd %s: %w", p.Name, err)
		}
		if err := p.T.AddInPlace(g, -o.LR); err != nil {
			return fmt.Errorf("sgd %s: %w", p.Name, err)
		}
	}
	return nil
}

// StepLR is torch.optim.lr_scheduler.StepLR in closed form: the learning
// rate of epoch e (from 0) is base * gamma^(e / stepSize).
func StepLR(base, gamma float64, stepSize, epoch int) float64 {
	if stepSize <= 0 {
		return base
	}
	return base * math.Pow(gamma, float64(epoch/stepSize))
}
