package certify

import (
	"context"
	"math/big"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// dyadicFit is a 2-4-1 relu mse network with weights and inputs multiples
// of 1/8 drawn from seed, and targets the float64 outputs at θT (exact:
// every value is dyadic), so L(1) = 0 exactly: the first-user check of
// issue 12.
func dyadicFit(t *testing.T, seed uint64) *functionspace.Path {
	m, err := nn.Build(nn.MLPSpec([]int{2, 4, 1}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 12))
	q := func() float64 { return float64(r.IntN(17)-8) / 8 }
	state := func() nn.State {
		s, err := nn.Init(m, "pytorch", 1, seed)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.Layers {
			for _, p := range m.LayerParams(s, i) {
				if p != nil {
					for k := range p.Data {
						p.Data[k] = q()
					}
				}
			}
		}
		return s
	}
	const n = 16
	xs := make([]float64, 2*n)
	for k := range xs {
		xs[k] = q()
	}
	x := mat.NewDense(n, 2, xs)
	s0, sT := state(), state()
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: m.Forward(sT, x)}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dyadicFitLoss is dyadicFit's unscaled loss Σ_i (y_i(α) − t_i)² at a
// dyadic α in exact arithmetic (math/big, every operation checked exact),
// written out from θ(α) = θ0 + αδ: an oracle independent of the interval
// path and of exactEndSlopes. It also returns whether some hidden
// pre-activation is exactly 0 there.
func dyadicFitLoss(t *testing.T, p *functionspace.Path, alpha *big.Float) (*big.Float, bool) {
	nf := func(v float64) *big.Float { return new(big.Float).SetPrec(4000).SetFloat64(v) }
	ex := func(z *big.Float) *big.Float {
		if z.Acc() != big.Exact {
			t.Fatal("inexact")
		}
		return z
	}
	at := func(layer, k int) []*big.Float {
		a, d := p.Model.LayerParams(p.Theta0, layer)[k].Data, p.Model.LayerParams(p.Delta, layer)[k].Data
		out := make([]*big.Float, len(a))
		for j := range a {
			out[j] = ex(nf(0).Add(nf(a[j]), ex(nf(0).Mul(alpha, nf(d[j])))))
		}
		return out
	}
	w1, b1, w2, b2 := at(0, 0), at(0, 1), at(2, 0), at(2, 1)
	sum, zero := nf(0), false
	for i := 0; i < p.N; i++ {
		x := p.X.RawRowView(i)
		y := nf(0).Set(b2[0])
		for j := 0; j < 4; j++ {
			z := nf(0).Set(b1[j])
			for k := 0; k < 2; k++ {
				ex(z.Add(z, ex(nf(0).Mul(w1[2*j+k], nf(x[k])))))
			}
			zero = zero || z.Sign() == 0
			if z.Sign() > 0 {
				ex(y.Add(y, ex(nf(0).Mul(w2[j], z))))
			}
		}
		r := ex(nf(0).Sub(y, nf(p.Targets.Values.At(i, 0))))
		ex(sum.Add(sum, ex(nf(0).Mul(r, r))))
	}
	return sum, zero
}

// TestExactFitKinkAtOne (issue 12): exact fits whose ReLU input is exactly
// 0 at θT for some example (the kink sits at α = 1) are decided at
// tolerance 0. Before endPatternDL, the last leaf [1 − t, 1] kept those
// examples' hull across the kink (ReLU interval rule), a rounding-size
// positive sup ℓ_i′, and every such fit in the first-user check stayed
// inconclusive after the whole budget. On the dyadic fits of seeds 1..40
// with such a zero, every certified_monotone verdict is checked against
// the exact oracle dyadicFitLoss (L non-increasing on the grid of α =
// k/256 and at 1 − 2⁻ʲ, j = 9..60), no verdict is inconclusive, and at
// least three are certified_monotone with Δ ≤ 0.
func TestExactFitKinkAtOne(t *testing.T) {
	one := big.NewFloat(1)
	certified, kinked := 0, 0
	for seed := uint64(1); seed <= 40; seed++ {
		p := dyadicFit(t, seed)
		l1, zero := dyadicFitLoss(t, p, one)
		if l1.Sign() != 0 {
			t.Fatalf("seed %d: not an exact fit, L(1) = %v", seed, l1)
		}
		if !zero {
			continue
		}
		kinked++
		cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 0, MaxIntervals: 4096})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %s, Δ ∈ [%g, %g], %d leaves", seed, cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves)
		switch cert.Verdict {
		case CertifiedMonotone:
			certified++
			if cert.DeltaUpper != 0 {
				t.Errorf("seed %d: certified with Δ ≤ %g, want 0", seed, cert.DeltaUpper)
			}
			var alphas []*big.Float
			for k := 0; k <= 256; k++ {
				alphas = append(alphas, new(big.Float).SetPrec(100).SetFloat64(float64(k)/256))
			}
			for j := 9; j <= 60; j++ {
				alphas = append(alphas, new(big.Float).SetPrec(100).Sub(one, new(big.Float).SetMantExp(one, -j)))
			}
			alphas = append(alphas, one)
			prev, _ := dyadicFitLoss(t, p, alphas[0])
			for q, a := range alphas[1:] {
				l, _ := dyadicFitLoss(t, p, a)
				if l.Cmp(prev) > 0 && q+1 != 257 { // index 257 restarts below 1 (1 − 2⁻⁹ < 1)
					t.Fatalf("seed %d: certified_monotone but the exact L rises to α = %v: %v → %v", seed, a, prev, l)
				}
				prev = l
			}
		case NonMonotone:
		default:
			t.Errorf("seed %d: %s at tolerance 0, Δ ∈ [%g, %g]: an exact fit with a kink at α = 1 not decided", seed, cert.Verdict, cert.DeltaLower, cert.DeltaUpper)
		}
	}
	if certified < 3 {
		t.Fatalf("%d of %d fits with a zero ReLU input at θT certified, want ≥ 3", certified, kinked)
	}
}
