package presentation

import (
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"gonum.org/v1/gonum/mat"
)

// deltaIndex returns Δ of loss (THEORY.md §5) and a pair i < j with
// L[j] − L[i] = Δ, by brute force over all pairs (i = j = 0 when Δ = 0):
// the test figures' fixture, independent of certify's linear-time scan.
func deltaIndex(loss []float64) (delta float64, from, to int) {
	for j := range loss {
		for i := range j {
			if r := loss[j] - loss[i]; r > delta {
				delta, from, to = r, i, j
			}
		}
	}
	return delta, from, to
}

// overshootPath is y = w·x, x = 1, target 0, w from 1 to −0.5:
// L(α) = (1 − 1.5α)², Δ = 0.25 (THEORY.md §6).
func overshootPath(t *testing.T) *functionspace.Path {
	f := false
	m, err := nn.Build(&nn.Spec{Format: "sequential/v1", InputShape: []int{1}, Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1, Bias: &f}}, Loss: "mse"})
	if err != nil {
		t.Fatal(err)
	}
	s0 := nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{1}}}
	sT := nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{-0.5}}}
	p, err := functionspace.New(m, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
