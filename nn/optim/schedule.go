package optim

import (
	"fmt"
	"math"
)

// LRSetter is an optimizer whose learning rate a schedule may change between
// steps (PyTorch's param_group["lr"]). SGD, Adam and AdamW implement it.
type LRSetter interface {
	SetLR(lr float64)
}

// SetLR implements LRSetter.
func (o *SGD) SetLR(lr float64) { o.LR = lr }

// SetLR implements LRSetter.
func (o *Adam) SetLR(lr float64) { o.LR = lr }

// SetLR implements LRSetter.
func (o *AdamW) SetLR(lr float64) { o.LR = lr }

var (
	_ LRSetter = (*SGD)(nil)
	_ LRSetter = (*Adam)(nil)
	_ LRSetter = (*AdamW)(nil)
)

// MultiStepLR is torch.optim.lr_scheduler.MultiStepLR (PyTorch 1.13) with
// scheduler.step() called once at the end of every epoch, the paper's step
// schedule (Lucas et al. 2021's ResNets: milestones at fixed epochs, γ = 0.1):
// during epoch e (from 0) the learning rate is the base rate multiplied, at
// every milestone m ≤ e in turn, by Gamma^(times m is listed), in PyTorch's
// chainable form (lr ← lr·γ^c at the milestone, not base·γ^k in closed
// form, so the rounding is PyTorch's).
type MultiStepLR struct {
	// Milestones are epoch indices, non-decreasing; a repeated milestone
	// multiplies by Gamma once per repetition (PyTorch counts them).
	Milestones []int
	// Gamma is the factor at each milestone (PyTorch default 0.1).
	Gamma float64
}

// Validate refuses negative or decreasing milestones and a Gamma that is not
// positive and finite, naming the value.
func (s MultiStepLR) Validate() error {
	for i, m := range s.Milestones {
		if m < 0 {
			return fmt.Errorf("optim: multistep: milestone %d is negative", m)
		}
		if i > 0 && m < s.Milestones[i-1] {
			return fmt.Errorf("optim: multistep: milestones must not decrease, found %d after %d", m, s.Milestones[i-1])
		}
	}
	if !(s.Gamma > 0) || math.IsInf(s.Gamma, 0) {
		return fmt.Errorf("optim: multistep: gamma must be positive and finite, found %v", s.Gamma)
	}
	return nil
}

// LR returns the learning rate during epoch (from 0) for the base rate base.
func (s MultiStepLR) LR(base float64, epoch int) float64 {
	lr := base
	for i := 0; i < len(s.Milestones); {
		m := s.Milestones[i]
		if m > epoch {
			break
		}
		c := 0
		for i < len(s.Milestones) && s.Milestones[i] == m {
			c++
			i++
		}
		lr *= powInt(s.Gamma, c) // Python's gamma ** count, glibc's pow
	}
	return lr
}
