package certify

import (
	"math"
	"testing"
)

// straightPath is γ(α) = α·d on a grid, with target y = (1 − c)·d: G = 0,
// S(α) = (1−α)‖d‖, e = c·d, so ⟨T, e⟩ = c‖d‖ and ℓ(α) = ‖d‖²(α − 1 + c)² is
// decreasing exactly on [0, 1 − c).
func straightPath(c float64, m int) PathQuantities {
	q := PathQuantities{ResidualNorm: math.Abs(c)}
	for j := 0; j < m; j++ {
		a := float64(j) / float64(m-1)
		q.Alphas = append(q.Alphas, a)
		q.RemainingGauss = append(q.RemainingGauss, 0)
		q.RemainingArc = append(q.RemainingArc, 1-a)
		q.TangentResidual = append(q.TangentResidual, c)
	}
	return q
}

func TestTheoremBOnAStraightPathIsExact(t *testing.T) {
	for _, c := range []float64{0.25, 0.5, -0.3} {
		q := straightPath(c, 101)
		proven, end := TheoremBCoverage(q)
		for j, a := range q.Alphas {
			// ℓ′(α) = 2(α − 1 + c) < 0 ⟺ α < 1 − c.
			if want := a < 1-c; proven[j] != want {
				t.Errorf("c=%v α=%v: proven %v, ℓ′ < 0 is %v", c, a, proven[j], want)
			}
		}
		want := 1.0
		if c > 0 {
			want = math.Nextafter(1-c, 0)
			// the last grid point strictly below 1 − c
			want = math.Floor(want*100) / 100
		}
		if math.Abs(end-want) > 1e-12 {
			t.Errorf("c=%v: prefix end %v, want %v", c, end, want)
		}
	}
}

// TestTheoremAOnCircularArcs: an arc of swept angle φ ending at the target
// has G = φ and e = 0; Theorem A holds iff φ < π/2 (THEORY.md §6).
func TestTheoremAOnCircularArcs(t *testing.T) {
	for _, phi := range []float64{0.3, math.Pi/2 - 1e-9, math.Pi / 2, 2} {
		q := PathQuantities{Alphas: []float64{0, 1}, RemainingGauss: []float64{phi, 0}, RemainingArc: []float64{phi, 0}, TangentResidual: []float64{0, 0}}
		applies, holds := TheoremA(q)
		if !applies || holds != (phi < math.Pi/2) {
			t.Errorf("φ=%v: applies %v holds %v", phi, applies, holds)
		}
		q.ResidualNorm = 1e-300
		if applies, _ := TheoremA(q); applies {
			t.Errorf("φ=%v: Theorem A applied with a nonzero residual", phi)
		}
	}
}

func TestTheoremsSummary(t *testing.T) {
	ex := []PathQuantities{straightPath(0.5, 11), straightPath(-0.5, 11), straightPath(0.2, 11)}
	r := Theorems(ex, straightPath(0.1, 11), []float64{1, -1, 1})
	// Fractions proven up to α: α ≤ 0.4 all three; 0.5 ≤ α ≤ 0.7: two (c=−0.5 and c=0.2); α ≥ 0.8: one.
	want := []float64{1, 1, 1, 1, 1, 2. / 3, 2. / 3, 2. / 3, 1. / 3, 1. / 3, 1. / 3}
	for j, f := range r.TheoremBFraction {
		if math.Abs(f-want[j]) > 1e-15 {
			t.Errorf("fraction proven up to α=%v: %v, want %v", r.TheoremBAlphas[j], f, want[j])
		}
	}
	if math.Abs(r.FinalVelocityAlongResidual-2./3) > 1e-15 {
		t.Errorf("final velocity along residual fraction %v", r.FinalVelocityAlongResidual)
	}
	if r.TheoremBStackedPrefix != 0.8 || r.ExactFitExamples != 0 {
		t.Errorf("stacked prefix %v, exact fits %d", r.TheoremBStackedPrefix, r.ExactFitExamples)
	}
}
