package certify

import (
	"context"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// flatTailPath is a 1-3-2 ReLU network with cross-entropy whose hidden
// units' weights move from (1, 0.5, 2) to their negatives: every
// pre-activation is w_j(α)·x = (1 − 2α)·w_j·x, so all three units die at
// α = 1/2 and the output is the constant output bias on [1/2, 1] (the
// output layer does not move). The labels favour the bias's class and the
// live units push the logits away from it, so L falls on [0, 1/2] and is
// exactly flat after: Δ = 0.
func flatTailPath(t testing.TB) *functionspace.Path {
	m, err := nn.Build(nn.MLPSpec([]int{1, 3, 2}, "relu", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	s0 := nn.State{
		"0.weight": {Shape: []int{3, 1}, Data: []float64{1, 0.5, 2}},
		"0.bias":   {Shape: []int{3}, Data: []float64{0, 0, 0}},
		"2.weight": {Shape: []int{2, 3}, Data: []float64{-1, -1, -1, 1, 1, 1}},
		"2.bias":   {Shape: []int{2}, Data: []float64{0.1, -0.2}},
	}
	sT := s0.Clone()
	sT["0.weight"].Data = []float64{-1, -0.5, -2}
	x := mat.NewDense(2, 1, []float64{1, 2})
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Labels: []int{0, 0}}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deadPath is flatTailPath with the hidden biases at −10: every unit is
// dead on the whole line (pre-activations ≤ −10 + 2·2 < 0), the first
// layer moves but the output is the constant output bias, so L is
// constant although δ ≠ 0.
func deadPath(t testing.TB) *functionspace.Path {
	p := flatTailPath(t)
	s0, sT := p.Theta0.Clone(), p.Theta0.Clone()
	for k, v := range p.Delta {
		for j := range v.Data {
			sT[k].Data[j] += v.Data[j]
		}
	}
	for _, s := range []nn.State{s0, sT} {
		s["0.bias"].Data = []float64{-10, -10, -10}
	}
	q, err := functionspace.New(p.Model, s0, sT, p.X, p.Targets, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestFlatTail (issue 12): where every hidden unit is dead over a leaf and
// the output layer does not move, γ′ = 0 exactly, and L′ is enclosed by
// exactly [0, 0] (exact zeros stay exact through the interval products,
// sums and the loss), so those leaves are settled at once. Before, L′ was
// enclosed by about ±1e-306 there: a dead network at tolerance 0 spent the
// whole budget and was inconclusive. The leaf holding the tail's start (a
// kink where every unit dies, L′ < 0 before it) kept a rounding-size
// positive sup L′ from the midpoint–radius product; the first ReLU's
// pattern hull (kinkPatternDL) now bounds it by exactly 0, so the flat
// tail too is certified at tolerance 0 at once, with the tail's leaves
// exactly [0, 0].
func TestFlatTail(t *testing.T) {
	cases := []struct {
		name string
		path func(testing.TB) *functionspace.Path
		tol  float64
		from float64 // L is constant on [from, 1]
	}{
		{"dead network, tolerance 0", deadPath, 0, 0},
		{"flat tail", flatTailPath, 0, 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			// the float64 loss really is constant on [from, 1] (and falls before)
			l := func(a float64) float64 { return p.At(a).Loss }
			m := 0.5*c.from + 0.5
			if l(c.from) != l(m) || l(m) != l(1) || (c.from > 0 && !(l(0) > l(c.from/2) && l(c.from/2) > l(c.from))) {
				t.Fatalf("test path: L(0, from/2, from, mid, 1) = %v %v %v %v %v", l(0), l(c.from/2), l(c.from), l(m), l(1))
			}
			cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: c.tol, MaxIntervals: 4096})
			if err != nil {
				t.Fatal(err)
			}
			if cert.Verdict != CertifiedMonotone {
				t.Fatalf("%s, Δ ∈ [%v, %v], %d leaves, unsettled %v: want certified_monotone", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves, cert.Unsettled)
			}
			flat := 0
			for _, lf := range cert.Intervals {
				if lf.A >= c.from && (lf.A > c.from || c.from == 0) {
					if lf.Inf != 0 || lf.Sup != 0 {
						t.Errorf("leaf [%v, %v] on the flat part: L′ ∈ [%v, %v], want exactly [0, 0]", lf.A, lf.B, lf.Inf, lf.Sup)
					}
					flat++
				}
			}
			if c.from == 0 { // a dead line is decided before any leaf (TestDeadLineConstant)
				if cert.Leaves != 0 {
					t.Errorf("dead line: %d leaves, want none", cert.Leaves)
				}
			} else if flat == 0 || cert.Leaves > 64 {
				t.Errorf("%d leaves, %d on the flat part: it should be settled by the first leaves", cert.Leaves, flat)
			}
			if c.from == 0 && cert.DeltaUpper != 0 {
				t.Errorf("Δ ≤ %v, want Δ ≤ 0 exactly", cert.DeltaUpper)
			}
			t.Logf("%s: Δ ∈ [%g, %g], %d leaves", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves)
		})
	}
}
