package certify

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
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

// TestTheoremsAgreeWithCertificate: over random small tanh networks fitted
// exactly (targets = γ(1)) or not, wherever Theorem A or B claims ℓ′ < 0 the
// exact derivative is negative there, and the certificate never refutes a
// monotonicity that Theorem A claims for every example (THEORY.md §6–§7).
func TestTheoremsAgreeWithCertificate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in, hid, k := rapid.IntRange(1, 3).Draw(t, "in"), rapid.IntRange(1, 4).Draw(t, "hid"), rapid.IntRange(1, 3).Draw(t, "k")
		m, err := nn.Build(nn.MLPSpec([]int{in, hid, k}, "tanh", "mse"))
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		sT, _ := nn.Init(m, "pytorch", rapid.Float64Range(0.2, 3).Draw(t, "scale"), seed+1)
		n := rapid.IntRange(1, 4).Draw(t, "n")
		rng := rand.New(rand.NewPCG(seed, 3))
		x := mat.NewDense(n, in, nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = rng.NormFloat64()
		}
		probe, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, k, nil)}, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		y := mat.DenseCopyOf(probe.At(1).Output) // an exact fit
		if rapid.Bool().Draw(t, "inexact") {
			for i := range y.RawMatrix().Data {
				y.RawMatrix().Data[i] += 0.3 * rng.NormFloat64()
			}
		}
		p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: y}, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: 21, Tolerance: 1e-9, Certificate: true, MaxIntervals: 512})
		if err != nil {
			t.Fatal(err)
		}
		th := r.Conditions.Theorems
		// Theorem B's claims, checked against the exact ℓ_i′ at the grid points.
		samples := make([]*functionspace.Sample, len(r.Alphas))
		for j, a := range r.Alphas {
			samples[j] = p.At(a)
		}
		for j, f := range th.TheoremBFraction {
			if f == 1 && samples[j].DLoss >= 0 {
				t.Fatalf("Theorem B proves every ℓ_i′ < 0 up to α=%v but L′(%v) = %v", r.Alphas[j], r.Alphas[j], samples[j].DLoss)
			}
		}
		if th.TheoremAConclusion == "holds for every example: each ℓ_i, hence the loss, is decreasing" && r.Verdict == NonMonotone {
			t.Fatalf("Theorem A holds for every example but the certificate found a rise %+v", r.Witness)
		}
	})
}

// TestTheoremReportNotComputedIsAbsent: a theorem report that does not
// apply (cross-entropy) is written as applies and reason alone, with none of
// the counts, fractions or conclusions it did not compute (RUN_FORMAT.md:
// null or absent, never 0 or ""); one that applies keeps every field, its
// zeros included.
func TestTheoremReportNotComputedIsAbsent(t *testing.T) {
	b, err := json.Marshal(&TheoremReport{Reason: "cross-entropy loss"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["applies"] != false || m["reason"] != "cross-entropy loss" {
		t.Errorf("not applying: %s, want applies and reason only", b)
	}
	b, err = json.Marshal(TheoremReport{Applies: true, TheoremAConclusion: "holds"})
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"applies", "theorem_a_exact_fit_examples", "theorem_a_fraction", "theorem_a", "theorem_b_stacked_prefix_end", "theorem_b"} {
		if _, ok := m[k]; !ok {
			t.Errorf("applying: %s lacks %s", b, k)
		}
	}
}
