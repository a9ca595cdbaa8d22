package nn

import (
	"testing"

	"github.com/certify-mli/certify/interval"
)

// TestIntervalJetMarksJumps: a softplus input interval straddling βz =
// threshold marks the example in Jump (and Kink), and its value enclosure
// holds both of PyTorch's branches; a ReLU kink is a Kink but no Jump; the
// marks pass through a linear layer.
func TestIntervalJetMarksJumps(t *testing.T) {
	sp := &Activation{Kind: "softplus", Width: 1, Beta: 2, Threshold: 1}
	relu := &Activation{Kind: "relu", Width: 1}
	mk := func(lo, hi float64) *IJet {
		return &IJet{N: 1, D: 1, Order: 1, V: interval.Matrix{Rows: 1, Cols: 1, Lo: []float64{lo}, Hi: []float64{hi}},
			D1: interval.PointMatrix(1, 1, []float64{1}), Kink: []bool{false}}
	}
	for _, c := range []struct {
		a          *Activation
		lo, hi     float64
		kink, jump bool
	}{
		{sp, 0.4, 0.6, true, true},   // βz ∈ [0.8, 1.2] crosses 1
		{sp, 0.1, 0.4, false, false}, // softplus branch only
		{sp, 0.6, 0.9, false, false}, // identity branch only
		{relu, -1, 1, true, false},
	} {
		out := c.a.IntervalJet(nil, mk(c.lo, c.hi))
		if out.Kink[0] != c.kink || out.Jumped(0) != c.jump {
			t.Errorf("%s on [%v, %v]: kink %v jump %v", c.a.Kind, c.lo, c.hi, out.Kink[0], out.Jumped(0))
		}
		if c.jump {
			// both branches at z = 0.5 (βz = 1: softplus branch) and just above (identity)
			s, _, _ := c.a.Eval(0.5, false)
			v, _, _ := c.a.Eval(0.5000001, false)
			if !(out.V.Lo[0] <= v && s <= out.V.Hi[0]) {
				t.Errorf("value enclosure [%v, %v] misses a branch (%v, %v)", out.V.Lo[0], out.V.Hi[0], v, s)
			}
		}
	}
}
