package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// straightToward is the straight path γ(α) = α·u (|u| = 1) with target
// y = c·u on the grid alphas: G = 0, S(α) = 1 − α, e = (1 − c)u, and
// ℓ(α) = (α − c)², strictly decreasing exactly on [0, min(c, 1)].
func straightToward(c float64, alphas []float64) PathQuantities {
	q := PathQuantities{Alphas: alphas, ResidualNorm: math.Abs(1 - c)}
	for _, a := range alphas {
		q.RemainingGauss = append(q.RemainingGauss, 0)
		q.RemainingArc = append(q.RemainingArc, 1-a)
		q.TangentResidual = append(q.TangentResidual, 1-c)
	}
	return q
}

func TestTheoremBRangeClosedForms(t *testing.T) {
	g := Grid(11) // 0, 0.1, …, 1
	for _, c := range []struct {
		name   string
		c      float64 // target y = c·u
		wantTo float64
	}{
		// Target beyond the end: ℓ = (α − 2)² decreases on all of [0, 1].
		{"undershoot", 2, 1},
		// Overshoot: ℓ = (α − 0.5)² decreases on [0, 0.5] only; the interval
		// test needs ⟨T, e⟩ = 0.5 < S(α_{j+1}) = 1 − α_{j+1}, so the last
		// proven interval is [0.3, 0.4].
		{"overshoot", 0.5, 0.4},
		// Overshoot at the very start: nothing is proven.
		{"far overshoot", 0.05, 0},
	} {
		proven, end := TheoremBRange(straightToward(c.c, g))
		if math.Abs(end-c.wantTo) > 1e-12 {
			t.Errorf("%s: range end %v, want %v (proven %v)", c.name, end, c.wantTo, proven)
		}
		// Never a claim where ℓ rises: ℓ′ = 2(α − c) < 0 ⇔ α < c.
		for j, ok := range proven {
			if ok && g[j+1] > c.c {
				t.Errorf("%s: interval [%v, %v] proven but ℓ rises there", c.name, g[j], g[j+1])
			}
		}
	}
	// A quarter turn left to go (G[α,1] ≥ π/2) proves nothing.
	q := straightToward(2, g)
	for j := range q.RemainingGauss {
		q.RemainingGauss[j] = math.Pi / 2
	}
	if _, end := TheoremBRange(q); end != 0 {
		t.Errorf("G = π/2: range end %v, want 0", end)
	}
}

// randomAutoencoderPath draws a small autoencoder d-h-d or d-m-h-m-d
// (targets = inputs, sum reduction), with θT near θ0 so that the output
// paths turn little and Theorem B has something to prove.
func randomAutoencoderPath(t *rapid.T) *functionspace.Path {
	act := rapid.SampledFrom([]string{"identity", "tanh", "relu", "softplus"}).Draw(t, "act")
	d := rapid.IntRange(2, 4).Draw(t, "d")
	h := rapid.IntRange(1, 3).Draw(t, "h")
	widths := []int{d, h, d}
	if rapid.Bool().Draw(t, "deep") {
		mid := rapid.IntRange(2, 5).Draw(t, "mid")
		widths = []int{d, mid, h, mid, d}
	}
	spec := nn.MLPSpec(widths, act, "mse")
	spec.LossReduction = nn.ReductionSum
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	eps := rapid.SampledFrom([]float64{0.05, 0.3, 1}).Draw(t, "step")
	sT, _ := nn.Init(m, "pytorch", 1, seed+1)
	for k, v := range sT {
		for j := range v.Data {
			v.Data[j] = s0[k].Data[j] + eps*v.Data[j]
		}
	}
	return autoencoderPath(t, m, s0, sT, rapid.IntRange(1, 6).Draw(t, "n"), d, rand.NewPCG(seed, 7))
}

// TestTheoremBNeverContradicted: over random small autoencoders, wherever
// Theorem B proves ℓ_i decreasing on [0, α*_i] (TheoremBRange on the report
// grid), ℓ_i evaluated densely on [0, α*_i] never rises, and the
// certificate's per-example enclosures never refute it (contradictions 0);
// wherever the certificate proves ℓ_i decreasing on [0, c*_i], the dense
// evaluation never rises either. The theory must also prove something
// somewhere, or the test would be vacuous.
func TestTheoremBNeverContradicted(t *testing.T) {
	provenSomewhere, certSomewhere := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		p := randomAutoencoderPath(t)
		r, err := Analyze(context.Background(), p, Options{Alphas: 21, Certificate: true, MaxIntervals: 64, ExampleIntervals: 16, NoPerLayer: true})
		if err != nil {
			t.Fatal(err)
		}
		th := r.Conditions.Theorems
		if th == nil || th.Examples == nil {
			t.Fatalf("no per-example theory in the report: %+v", th)
		}
		ex := th.Examples
		// The certificate's bounds are in the sum reduction's units too.
		if b := r.DeltaBounds; b != nil {
			slack := 1e-9 * (1 + r.Loss[0])
			if r.DeltaContinuous > b[1]+slack || b[0] > r.DeltaContinuous+slack {
				t.Fatalf("continuous Δ %v outside the certificate's bounds %v", r.DeltaContinuous, *b)
			}
		}
		if ex.Contradictions == nil || *ex.Contradictions != 0 {
			t.Fatalf("Theorem B contradicted by the certificate: %v", ex.Contradictions)
		}
		const dense = 400
		for i := 0; i < p.N; i++ {
			for _, c := range []struct {
				who string
				end float64
			}{{"Theorem B", ex.TheoremBRangeEnd[i]}, {"certificate", ex.CertificateRangeEnd[i]}} {
				if c.end <= 0 {
					continue
				}
				if c.who == "Theorem B" {
					provenSomewhere++
				} else {
					certSomewhere++
				}
				prev := math.Inf(1)
				for k := 0; k <= dense; k++ {
					a := c.end * float64(k) / dense
					l := p.At(a).ExampleLoss[i]
					if l > prev+1e-12*(1+math.Abs(l)) {
						t.Fatalf("%s proves ℓ_%d decreasing on [0, %v] but ℓ(%v) = %v > %v just before", c.who, i, c.end, a, l, prev)
					}
					prev = l
				}
			}
		}
	})
	if provenSomewhere == 0 || certSomewhere == 0 {
		t.Fatalf("vacuous: Theorem B proved a range %d times, the certificate %d times", provenSomewhere, certSomewhere)
	}
}

// autoencoderPath is the path θ0→θT of model m on n standard normal inputs
// [n, d] drawn from src, with the inputs as targets (THEORY.md §11).
func autoencoderPath(t *rapid.T, m *nn.Model, s0, sT nn.State, n, d int, src rand.Source) *functionspace.Path {
	rng := rand.New(src)
	x := mat.NewDense(n, d, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: mat.DenseCopyOf(x)}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
