package optim

import (
	"strings"
	"testing"
)

// TestCheckParams: a state restored by SetState whose tensors do not fit
// the parameters is an error naming the tensor (Step would panic on it),
// and a fitting one is not.
func TestCheckParams(t *testing.T) {
	params := [][]float64{make([]float64, 3), make([]float64, 2)}
	cases := []struct {
		name string
		opt  interface {
			SetState(State) error
			CheckParams([][]float64) error
		}
		state State
		want  string // substring of the error; "" for none
	}{
		{"sgd fits", &SGD{LR: 0.1, Momentum: 0.9}, State{"0.momentum_buffer": make([]float64, 3), "1.momentum_buffer": make([]float64, 2)}, ""},
		{"sgd length", &SGD{LR: 0.1, Momentum: 0.9}, State{"0.momentum_buffer": make([]float64, 3), "1.momentum_buffer": make([]float64, 5)}, `"1.momentum_buffer" has length 5, the parameter 2`},
		{"sgd count", &SGD{LR: 0.1, Momentum: 0.9}, State{"0.momentum_buffer": make([]float64, 3)}, "1 parameter tensors, the model 2"},
		{"adam fits", NewAdam(), State{"0.step": {1}, "0.exp_avg": make([]float64, 3), "0.exp_avg_sq": make([]float64, 3), "1.step": {1}, "1.exp_avg": make([]float64, 2), "1.exp_avg_sq": make([]float64, 2)}, ""},
		{"adam length", NewAdam(), State{"0.step": {1}, "0.exp_avg": make([]float64, 4), "0.exp_avg_sq": make([]float64, 4), "1.step": {1}, "1.exp_avg": make([]float64, 2), "1.exp_avg_sq": make([]float64, 2)}, `"0.exp_avg" has length 4, the parameter 3`},
		{"adamw count", NewAdamW(), State{"0.step": {1}, "0.exp_avg": make([]float64, 3), "0.exp_avg_sq": make([]float64, 3)}, "1 parameter tensors, the model 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.opt.SetState(c.state); err != nil {
				t.Fatal(err)
			}
			err := c.opt.CheckParams(params)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
