package optim

import (
	"fmt"
	"math"
)

// adamHyper holds the hyperparameters shared by Adam and AdamW (fields as in Adam).
type adamHyper struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	AMSGrad                            bool
}

func (h adamHyper) validate(name string) error {
	for _, c := range []struct {
		n string
		v float64
	}{{"learning rate", h.LR}, {"epsilon value", h.Eps}, {"weight_decay value", h.WeightDecay}} {
		if err := validNonNeg(name, c.n, c.v); err != nil {
			return err
		}
	}
	if !(h.Beta1 >= 0 && h.Beta1 < 1) {
		return fmt.Errorf("optim: %s: invalid beta parameter at index 0: %v", name, h.Beta1)
	}
	if !(h.Beta2 >= 0 && h.Beta2 < 1) {
		return fmt.Errorf("optim: %s: invalid beta parameter at index 1: %v", name, h.Beta2)
	}
	return nil
}

// adamState is the per-tensor state of Adam and AdamW.
type adamState struct {
	step   []int       // step count t per tensor
	m, v   [][]float64 // exp_avg, exp_avg_sq
	vmax   [][]float64 // max_exp_avg_sq (AMSGrad only)
	inited bool
}

// stepAll performs one Adam (decoupled=false) or AdamW (decoupled=true) step exactly as
// torch.optim's _single_tensor_adam / _single_tensor_adamw in PyTorch 1.13.
func (st *adamState) stepAll(h adamHyper, decoupled bool, params, grads [][]float64) {
	checkShapes(params, grads)
	if !st.inited {
		n := len(params)
		st.step = make([]int, n)
		st.m = make([][]float64, n)
		st.v = make([][]float64, n)
		for i, p := range params {
			st.m[i] = make([]float64, len(p))
			st.v[i] = make([]float64, len(p))
		}
		st.inited = true
	}
	if len(st.step) != len(params) {
		panic(fmt.Sprintf("optim: adam has state for %d parameter tensors, Step got %d", len(st.step), len(params)))
	}
	if h.AMSGrad && st.vmax == nil {
		// PyTorch creates max_exp_avg_sq (zeros) together with the other buffers; a
		// fresh state or one imported without it starts from zeros here too.
		st.vmax = make([][]float64, len(params))
		for i, p := range params {
			st.vmax[i] = make([]float64, len(p))
		}
	}
	lr, b1, b2, eps, wd := h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay
	for i, p := range params {
		g, m, v := grads[i], st.m[i], st.v[i]
		if len(m) != len(p) || len(v) != len(p) || (h.AMSGrad && len(st.vmax[i]) != len(p)) {
			panic(fmt.Sprintf("optim: adam state for tensor %d does not have the parameter's length %d", i, len(p)))
		}
		st.step[i]++
		bc1 := 1 - powInt(b1, st.step[i])
		bc2 := 1 - powInt(b2, st.step[i])
		stepSize := lr / bc1
		bc2Sqrt := math.Sqrt(bc2)
		// Rounding as in ATen's CPU kernels: add(x, alpha=a) is fma(a, x, self),
		// addcmul(g, g, value=c) is fma(c·g, g, self), addcdiv is self + (c·m)/denom.
		for j := range p {
			if decoupled {
				p[j] = p[j] * (1 - lr*wd)
			}
			gj := g[j]
			if !decoupled && wd != 0 {
				gj = math.FMA(wd, p[j], gj)
			}
			m[j] = math.FMA(1-b1, gj, m[j]*b1)
			v[j] = math.FMA((1-b2)*gj, gj, v[j]*b2)
			vv := v[j]
			if h.AMSGrad {
				if vv > st.vmax[i][j] || math.IsNaN(vv) { // torch.maximum propagates NaN
					st.vmax[i][j] = vv
				}
				vv = st.vmax[i][j]
			}
			denom := math.Sqrt(vv)/bc2Sqrt + eps
			p[j] = p[j] + -stepSize*m[j]/denom
		}
	}
}

func (st *adamState) export(amsgrad bool) State {
	s := State{}
	if !st.inited {
		return s
	}
	for i := range st.step {
		s[fmt.Sprintf("%d.step", i)] = []float64{float64(st.step[i])}
		s[fmt.Sprintf("%d.exp_avg", i)] = cloneSlice(st.m[i])
		s[fmt.Sprintf("%d.exp_avg_sq", i)] = cloneSlice(st.v[i])
		if amsgrad && st.vmax != nil {
			s[fmt.Sprintf("%d.max_exp_avg_sq", i)] = cloneSlice(st.vmax[i])
		}
	}
	return s
}

func (st *adamState) load(s State, amsgrad bool, name string) error {
	allowed := []string{"step", "exp_avg", "exp_avg_sq"}
	if amsgrad {
		allowed = append(allowed, "max_exp_avg_sq")
	}
	parts, err := splitState(s, allowed...)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		*st = adamState{}
		return nil
	}
	var ns adamState
	ns.inited = true
	n := len(parts)
	ns.step = make([]int, n)
	ns.m = make([][]float64, n)
	ns.v = make([][]float64, n)
	if amsgrad {
		ns.vmax = make([][]float64, n)
	}
	for i, part := range parts {
		for _, k := range allowed {
			if _, ok := part[k]; !ok {
				return fmt.Errorf("optim: %s state lacks \"%d.%s\"", name, i, k)
			}
		}
		stp := part["step"]
		if len(stp) != 1 || stp[0] < 0 || stp[0] != math.Trunc(stp[0]) || stp[0] > 1<<53 {
			return fmt.Errorf("optim: %s state \"%d.step\" = %v is not one non-negative integer", name, i, stp)
		}
		ns.step[i] = int(stp[0])
		ns.m[i] = cloneSlice(part["exp_avg"])
		ns.v[i] = cloneSlice(part["exp_avg_sq"])
		if len(ns.v[i]) != len(ns.m[i]) {
			return fmt.Errorf("optim: %s state for tensor %d: exp_avg has length %d, exp_avg_sq %d", name, i, len(ns.m[i]), len(ns.v[i]))
		}
		if amsgrad {
			ns.vmax[i] = cloneSlice(part["max_exp_avg_sq"])
			if len(ns.vmax[i]) != len(ns.m[i]) {
				return fmt.Errorf("optim: %s state for tensor %d: exp_avg has length %d, max_exp_avg_sq %d", name, i, len(ns.m[i]), len(ns.vmax[i]))
			}
		}
	}
	*st = ns
	return nil
}

// Adam is torch.optim.Adam (PyTorch 1.13, maximize=False): weight decay is an L2
// term w·p added to the gradient (not AdamW's decoupled decay), and the bias
// correction is PyTorch's: denom = √v/√(1−β2ᵗ) + ε, step size λ/(1−β1ᵗ). See the
// package documentation for the update. Use NewAdam for PyTorch's defaults; the
// zero value has LR 0 and makes no progress. Hyperparameters may be changed between
// steps; AMSGrad should be fixed before the first step.
type Adam struct {
	LR          float64 // learning rate λ (PyTorch default 1e-3)
	Beta1       float64 // β1, decay of the first moment m (PyTorch default 0.9)
	Beta2       float64 // β2, decay of the second moment v (PyTorch default 0.999)
	Eps         float64 // ε added to the bias-corrected √v (PyTorch default 1e-8)
	WeightDecay float64 // L2 penalty w added to the gradient as w·p (PyTorch default 0)
	AMSGrad     bool    // use the running maximum v̂ of v (PyTorch default false)

	st adamState
}

// NewAdam returns Adam with PyTorch's defaults: lr 1e-3, betas (0.9, 0.999),
// eps 1e-8, weight decay 0, no AMSGrad.
func NewAdam() *Adam {
	return &Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

func (o *Adam) hyper() adamHyper {
	return adamHyper{o.LR, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.AMSGrad}
}

// Step performs one torch.optim.Adam step; see Optimizer.Step.
func (o *Adam) Step(params, grads [][]float64) { o.st.stepAll(o.hyper(), false, params, grads) }

// State returns "i.step", "i.exp_avg", "i.exp_avg_sq" (and "i.max_exp_avg_sq" with
// AMSGrad); see State.
func (o *Adam) State() State { return o.st.export(o.AMSGrad) }

// SetState imports a state as exported by State. All of "i.step", "i.exp_avg",
// "i.exp_avg_sq" (and "i.max_exp_avg_sq" if AMSGrad) must be present for every
// tensor i, and "i.step" must be a non-negative integer.
func (o *Adam) SetState(s State) error { return o.st.load(s, o.AMSGrad, NameAdam) }

// AdamW is torch.optim.AdamW (PyTorch 1.13, maximize=False): Adam with decoupled
// weight decay, p ← p·(1 − λ·w) before the Adam update, gradient unmodified. Use
// NewAdamW for PyTorch's defaults (note weight decay 1e-2). State names are Adam's.
type AdamW struct {
	LR          float64 // learning rate λ (PyTorch default 1e-3)
	Beta1       float64 // β1, decay of the first moment m (PyTorch default 0.9)
	Beta2       float64 // β2, decay of the second moment v (PyTorch default 0.999)
	Eps         float64 // ε added to the bias-corrected √v (PyTorch default 1e-8)
	WeightDecay float64 // decoupled weight decay w: p ← p·(1 − λ·w) (PyTorch default 1e-2)
	AMSGrad     bool    // use the running maximum v̂ of v (PyTorch default false)

	st adamState
}

// NewAdamW returns AdamW with PyTorch's defaults: lr 1e-3, betas (0.9, 0.999),
// eps 1e-8, weight decay 1e-2, no AMSGrad.
func NewAdamW() *AdamW {
	return &AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
}

func (o *AdamW) hyper() adamHyper {
	return adamHyper{o.LR, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.AMSGrad}
}

// Step performs one torch.optim.AdamW step; see Optimizer.Step.
func (o *AdamW) Step(params, grads [][]float64) { o.st.stepAll(o.hyper(), true, params, grads) }

// State returns the same names as Adam.State.
func (o *AdamW) State() State { return o.st.export(o.AMSGrad) }

// SetState imports a state as Adam.SetState does.
func (o *AdamW) SetState(s State) error { return o.st.load(s, o.AMSGrad, NameAdamW) }
