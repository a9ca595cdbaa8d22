package nn

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestExactEndMatchesForward: the exact rules of a relu and a leaky_relu
// MLP give, at both ends, the float64 forward pass's outputs (to rounding)
// and a velocity that agrees with a central difference of the forward pass
// in α; a tanh layer is refused by name.
func TestExactEndMatchesForward(t *testing.T) {
	for _, act := range []string{"relu", "leaky_relu"} {
		m, err := Build(MLPSpec([]int{3, 5, 4, 2}, act, "mse"))
		if err != nil {
			t.Fatal(err)
		}
		th0, err := Init(m, "pytorch", 1, 7)
		if err != nil {
			t.Fatal(err)
		}
		th1, _ := Init(m, "pytorch", 1, 8)
		delta := th1.Clone()
		for k, v := range delta {
			for j := range v.Data {
				v.Data[j] -= th0[k].Data[j]
			}
		}
		at := func(a float64) State {
			s := th0.Clone()
			for k, v := range s {
				for j := range v.Data {
					v.Data[j] += a * delta[k].Data[j]
				}
			}
			return s
		}
		r := rand.New(rand.NewPCG(1, 2))
		x := mat.NewDense(6, 3, nil)
		for i := 0; i < 6; i++ {
			for j := 0; j < 3; j++ {
				x.Set(i, j, r.NormFloat64())
			}
		}
		for _, side := range []int{-1, 1} {
			alpha := 0.0
			if side < 0 {
				alpha = 1
			}
			d := &Dyadic{Prec: 4096, Side: side}
			maps, work, err := m.ExactEnd(d, th0, delta)
			if err != nil || work != 3*5+5*4+4*2 || d.Inexact {
				t.Fatalf("%s: ExactEnd: work %d, inexact %v, err %v", act, work, d.Inexact, err)
			}
			const h = 1e-6
			y, yp, ym := m.Forward(at(alpha), x), m.Forward(at(alpha+h), x), m.Forward(at(alpha-h), x)
			for i := 0; i < 6; i++ {
				d.Inexact, d.Undecided = false, false
				v, vd := make([]*big.Float, 3), make([]*big.Float, 3)
				for j := range v {
					v[j], vd[j] = d.Of(x.At(i, j)), d.Of(0)
				}
				for _, f := range maps {
					v, vd = f(v, vd)
				}
				if d.Inexact || d.Undecided {
					t.Fatalf("%s side %d example %d: inexact %v undecided %v", act, side, i, d.Inexact, d.Undecided)
				}
				for k := 0; k < 2; k++ {
					got, _ := v[k].Float64()
					if want := y.At(i, k); math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
						t.Errorf("%s side %d example %d output %d: exact %v, forward %v", act, side, i, k, got, want)
					}
					gd, _ := vd[k].Float64()
					fd := (yp.At(i, k) - ym.At(i, k)) / (2 * h)
					if math.Abs(gd-fd) > 1e-5*(1+math.Abs(fd)) {
						t.Errorf("%s side %d example %d output %d: exact velocity %v, central difference %v", act, side, i, k, gd, fd)
					}
				}
			}
		}
	}
	m, _ := Build(MLPSpec([]int{3, 4, 2}, "tanh", "mse"))
	s, _ := Init(m, "pytorch", 1, 1)
	if _, _, err := m.ExactEnd(&Dyadic{Prec: 64, Side: 1}, s, s); err == nil || !strings.Contains(err.Error(), "layer 1 (tanh)") {
		t.Errorf("tanh MLP: err %v, want a refusal naming layer 1 (tanh)", err)
	}
}
