package optim

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMultiStepSGDAgainstTorch replays testdata/torch_multistep.json
// (torch.optim.SGD with momentum, weight decay and Nesterov, under
// MultiStepLR stepped every epoch, repeated milestones included): the
// learning rate of every epoch and the parameters after every step agree
// with PyTorch's to relTol (bit for bit on x86-64, as TestAgainstTorch).
func TestMultiStepSGDAgainstTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/torch_multistep.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		B             float64     `json:"B"`
		X0            [][]float64 `json:"x0"`
		Epochs        int         `json:"epochs"`
		StepsPerEpoch int         `json:"steps_per_epoch"`
		Cases         []struct {
			Name        string        `json:"name"`
			LR          float64       `json:"lr"`
			Momentum    float64       `json:"momentum"`
			WeightDecay float64       `json:"weight_decay"`
			Nesterov    bool          `json:"nesterov"`
			Milestones  []int         `json:"milestones"`
			Gamma       float64       `json:"gamma"`
			LRs         []float64     `json:"lrs"`
			Params      [][][]float64 `json:"params"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			sched := MultiStepLR{Milestones: c.Milestones, Gamma: c.Gamma}
			if err := sched.Validate(); err != nil {
				t.Fatal(err)
			}
			o, err := New(NameSGD, Config{LR: c.LR, Momentum: c.Momentum, WeightDecay: c.WeightDecay, Nesterov: c.Nesterov})
			if err != nil {
				t.Fatal(err)
			}
			params := make([][]float64, len(f.X0))
			for i, x := range f.X0 {
				params[i] = append([]float64(nil), x...)
			}
			step := 0
			for e := 0; e < f.Epochs; e++ {
				lr := sched.LR(c.LR, e)
				if lr != c.LRs[e] {
					t.Fatalf("epoch %d: lr %.17g, torch %.17g", e, lr, c.LRs[e])
				}
				o.(LRSetter).SetLR(lr)
				for k := 0; k < f.StepsPerEpoch; k++ {
					o.Step(params, rosenGrad(f.B, params))
					if w := compareTensors(t, fmt.Sprintf("step %d", step+1), params, c.Params[step]); w != 0 {
						t.Logf("step %d: not bit-identical (worst %.3g)", step+1, w)
					}
					step++
				}
			}
		})
	}
}

func TestMultiStepLRValidate(t *testing.T) {
	for _, c := range []struct {
		s    MultiStepLR
		want string
	}{
		{MultiStepLR{Milestones: []int{3, 2}, Gamma: 0.1}, "must not decrease"},
		{MultiStepLR{Milestones: []int{-1}, Gamma: 0.1}, "negative"},
		{MultiStepLR{Milestones: []int{1}, Gamma: 0}, "gamma"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.s, err, c.want)
		}
	}
}
