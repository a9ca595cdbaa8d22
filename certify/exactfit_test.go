package certify

import (
	"context"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// exactFitLinear is the overshoot model with the target moved to where θT
// lands: y = w·x, x = 1, w from 1 to −0.5, target −0.5, so L(α) =
// (1.5 − 1.5α)², strictly decreasing, with L(1) = 0 and L′(1) = 0.
func exactFitLinear(t *testing.T) *functionspace.Path {
	m, s0, sT, x, _ := testnets.Overshoot()
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(1, 1, []float64{-0.5})}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExactFitEndpoint (issue 12, THEORY.md §7's endpoint-centred form):
// after an exact fit L(1) = 0 is the minimum and L′(1) = 0, but interval
// arithmetic only encloses ℓ_i′(1) in [−ε, ε] with ε a few ulps, so the
// last leaf's sup L′ is ε > 0 however narrow the leaf. The form
// ℓ_i′(1 − t) ≤ sup ℓ_i′(1) − t·inf ℓ_i″ bounds the rise on it by
// ε²/(2 inf L″) (Leaf.Rise), and upperRise no longer adds a rounding
// allowance over all leaves: the tiny ReLU corner paths of THEORY.md §6
// with β < π/2 (Theorem A: monotone; at β = π/2, L′ → 0 at the corner's
// kink too, whose leaf keeps a rounding-size sup L′) and the exact-fit linear model are
// certified at tolerance 1e-25 on the first 32 leaves with Δ ≤ 1e-28.
// Before, Δ ≤ 5.9e-13 stayed above any tolerance below that and the whole
// budget of 4096 leaves was spent. At tolerance 0 they stay inconclusive:
// the float64 fit is exact only up to rounding (y is the float64 output
// at θT, the certified line ends at θ0 + δ in real arithmetic), so a rise
// of order ε²/(2L″) is possible and is not excluded (docs/soundness.md).
func TestExactFitEndpoint(t *testing.T) {
	corner := func(b float64) func(*testing.T) *functionspace.Path {
		return func(t *testing.T) *functionspace.Path { return cornerPath(t, b*math.Pi) }
	}
	cases := []struct {
		name string
		path func(*testing.T) *functionspace.Path
	}{
		{"corner 0.3π", corner(0.3)},
		{"corner 0.45π", corner(0.45)},
		{"exact-fit linear", exactFitLinear},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			if l1 := p.At(1).Loss; l1 > 1e-30 {
				t.Fatalf("not an exact fit: L(1) = %v", l1)
			}
			cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 1e-25, MaxIntervals: 256})
			if err != nil {
				t.Fatal(err)
			}
			if cert.Verdict != CertifiedMonotone || cert.DeltaUpper > 1e-28 || cert.Leaves > 64 {
				t.Fatalf("%s, Δ ∈ [%v, %v], %d leaves: want certified_monotone with Δ ≤ 1e-28 within 64 leaves", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves)
			}
			last := cert.Intervals[len(cert.Intervals)-1]
			if !(last.Sup > 0) {
				t.Logf("last leaf settled by L′ ≤ 0 itself: [%v, %v]", last.Inf, last.Sup)
			}
			t.Logf("%s: Δ ∈ [%g, %g], %d leaves, last leaf L′ ∈ [%g, %g]", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves, last.Inf, last.Sup)
		})
	}
}
