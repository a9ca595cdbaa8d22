package nn

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestLossReducedClosedForm: out [[1, 2], [3, 4]] against zero targets has
// Σ‖out_i‖² = 30: the sum reduction (per example, averaged over the 2
// examples) gives 15 and gradient 2·out/2, the mean reduction 30/4 = 7.5 and
// gradient 2·out/4 (THEORY.md §4, §11).
func TestLossReducedClosedForm(t *testing.T) {
	out := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	tg := Targets{Values: mat.NewDense(2, 2, nil)}
	for _, c := range []struct {
		red       string
		want, div float64
	}{{ReductionSum, 15, 2}, {ReductionMean, 7.5, 4}} {
		l, g := LossReduced("mse", c.red, out, tg, true)
		if l != c.want {
			t.Errorf("%s: loss %v, want %v", c.red, l, c.want)
		}
		for i, v := range out.RawMatrix().Data {
			if got := g.RawMatrix().Data[i]; math.Abs(got-2*v/c.div) > 1e-15 {
				t.Errorf("%s: gradient[%d] %v, want %v", c.red, i, got, 2*v/c.div)
			}
		}
	}
}

// TestSpecLossReduction: model.json's loss_reduction is validated, and
// OutputDivisor follows it.
func TestSpecLossReduction(t *testing.T) {
	s := MLPSpec([]int{3, 2, 3}, "relu", "mse")
	if s.OutputDivisor(3) != 3 || s.Reduction() != ReductionMean {
		t.Errorf("absent loss_reduction: divisor %d, reduction %q; want 3, mean", s.OutputDivisor(3), s.Reduction())
	}
	s.LossReduction = ReductionSum
	if err := s.Validate(); err != nil || s.OutputDivisor(3) != 1 {
		t.Errorf("sum: %v, divisor %d; want valid, 1", err, s.OutputDivisor(3))
	}
	for _, c := range []struct{ loss, red, want string }{
		{"mse", "max", `loss_reduction: want "mean" or "sum", found "max"`},
		{"cross_entropy", "sum", "loss_reduction"},
	} {
		s := MLPSpec([]int{3, 2, 3}, "relu", c.loss)
		s.LossReduction = c.red
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %q: error %v, want one containing %q", c.loss, c.red, err, c.want)
		}
	}
}
