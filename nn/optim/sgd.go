package optim

import (
	"fmt"
	"math"
)

// SGD is torch.optim.SGD (PyTorch 1.13, maximize=False): stochastic gradient descent
// with optional momentum, dampening, L2 weight decay and Nesterov momentum. See the
// package documentation for the update. The zero value has LR 0 (no update); set LR
// or use NewSGD. Hyperparameters may be changed between steps (as with a learning
// rate schedule).
type SGD struct {
	LR          float64 // learning rate λ (PyTorch: required)
	Momentum    float64 // momentum μ (PyTorch default 0)
	Dampening   float64 // dampening τ (PyTorch default 0)
	WeightDecay float64 // L2 penalty w added to the gradient as w·p (PyTorch default 0)
	Nesterov    bool    // Nesterov momentum: d + μ·b instead of b (PyTorch default false)

	buf [][]float64 // momentum buffers; nil entries before the first momentum step
}

// NewSGD returns plain SGD with learning rate lr and PyTorch's other defaults
// (momentum 0, dampening 0, weight decay 0, no Nesterov).
func NewSGD(lr float64) *SGD { return &SGD{LR: lr} }

func (o *SGD) validate() error {
	for _, c := range []struct {
		n string
		v float64
	}{{"learning rate", o.LR}, {"momentum", o.Momentum}, {"weight_decay", o.WeightDecay}} {
		if err := validNonNeg("sgd", c.n, c.v); err != nil {
			return err
		}
	}
	if o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0) {
		return fmt.Errorf("optim: sgd: Nesterov momentum requires a momentum and zero dampening")
	}
	return nil
}

// Step performs one torch.optim.SGD step; see Optimizer.Step.
func (o *SGD) Step(params, grads [][]float64) {
	checkShapes(params, grads)
	if o.Momentum != 0 {
		if o.buf == nil {
			o.buf = make([][]float64, len(params))
		}
		if len(o.buf) != len(params) {
			panic(fmt.Sprintf("optim: sgd has state for %d parameter tensors, Step got %d", len(o.buf), len(params)))
		}
	}
	lr, mu, wd := o.LR, o.Momentum, o.WeightDecay
	for i, p := range params {
		g := grads[i]
		var b []float64
		first := false
		if mu != 0 {
			b = o.buf[i]
			if b == nil {
				b = make([]float64, len(p))
				o.buf[i] = b
				first = true
			} else if len(b) != len(p) {
				panic(fmt.Sprintf("optim: sgd momentum buffer %d has length %d, parameter %d", i, len(b), len(p)))
			}
		}
		// ATen's add(x, alpha=a) computes fma(a, x, self); the fused products below
		// reproduce PyTorch's rounding exactly.
		for j := range p {
			d := g[j]
			if wd != 0 {
				d = math.FMA(wd, p[j], d)
			}
			if mu != 0 {
				if first {
					b[j] = d
				} else {
					b[j] = math.FMA(1-o.Dampening, d, b[j]*mu)
				}
				if o.Nesterov {
					d = math.FMA(mu, b[j], d)
				} else {
					d = b[j]
				}
			}
			p[j] = math.FMA(-lr, d, p[j])
		}
	}
}

// State returns the momentum buffers as "i.momentum_buffer"; see State.
func (o *SGD) State() State {
	s := State{}
	for i, b := range o.buf {
		if b != nil {
			s[fmt.Sprintf("%d.momentum_buffer", i)] = cloneSlice(b)
		}
	}
	return s
}

// SetState imports momentum buffers "i.momentum_buffer"; tensors without one start
// their buffer from the gradient at the next step, as in PyTorch.
func (o *SGD) SetState(s State) error {
	parts, err := splitState(s, "momentum_buffer")
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		o.buf = nil
		return nil
	}
	o.buf = make([][]float64, len(parts))
	for i, m := range parts {
		o.buf[i] = cloneSlice(m["momentum_buffer"])
	}
	return nil
}
