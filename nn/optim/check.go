package optim

import "fmt"

// CheckParams implements nn.StateChecker: it returns an error, naming the
// tensor and both lengths, when the momentum buffers (set by SetState, e.g.
// from a checkpoint) do not fit params, where Step would panic.
func (o *SGD) CheckParams(params [][]float64) error {
	if o.buf == nil {
		return nil
	}
	if len(o.buf) != len(params) {
		return fmt.Errorf("optim: sgd state has %d parameter tensors, the model %d", len(o.buf), len(params))
	}
	for i, b := range o.buf {
		if b != nil && len(b) != len(params[i]) {
			return fmt.Errorf("optim: sgd state \"%d.momentum_buffer\" has length %d, the parameter %d", i, len(b), len(params[i]))
		}
	}
	return nil
}

// CheckParams implements nn.StateChecker for Adam (see SGD.CheckParams).
func (o *Adam) CheckParams(params [][]float64) error { return o.st.check(params, NameAdam) }

// CheckParams implements nn.StateChecker for AdamW (see SGD.CheckParams).
func (o *AdamW) CheckParams(params [][]float64) error { return o.st.check(params, NameAdamW) }

func (st *adamState) check(params [][]float64, name string) error {
	if !st.inited {
		return nil
	}
	if len(st.step) != len(params) {
		return fmt.Errorf("optim: %s state has %d parameter tensors, the model %d", name, len(st.step), len(params))
	}
	for i, p := range params {
		for _, b := range []struct {
			key string
			v   []float64
		}{{"exp_avg", st.m[i]}, {"exp_avg_sq", st.v[i]}} {
			if len(b.v) != len(p) {
				return fmt.Errorf("optim: %s state \"%d.%s\" has length %d, the parameter %d", name, i, b.key, len(b.v), len(p))
			}
		}
		if st.vmax != nil && st.vmax[i] != nil && len(st.vmax[i]) != len(p) {
			return fmt.Errorf("optim: %s state \"%d.max_exp_avg_sq\" has length %d, the parameter %d", name, i, len(st.vmax[i]), len(p))
		}
	}
	return nil
}
