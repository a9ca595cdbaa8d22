package presentation

import (
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
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
	m, s0, sT, x, y := testnets.Overshoot()
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
