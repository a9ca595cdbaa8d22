package nn

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/certify-mli/certify/interval"
)

// bigLSE returns logsumexp(x) − x[y] to ~60 digits: exp and log in float64
// are not needed because the terms are shifted by the max and summed in
// big.Float after exp of values ≤ 0 (math.Exp is within an ulp, far inside
// the enclosure's widening); the log of the sum s ∈ [1, K] is one float64
// log of a big sum rounded to nearest.
func bigLSE(x []float64, y int) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	s := new(big.Float).SetPrec(200)
	for _, v := range x {
		s.Add(s, new(big.Float).SetFloat64(math.Exp(v-m)))
	}
	f, _ := s.Float64()
	return (m - x[y]) + math.Log(f)
}

// TestCrossEntropyEnclosureHugeLogits (issue 18): for logits of any
// magnitude up to 1e6 (per-example losses far above 745, where the quotient
// form's exp underflows), the enclosures of ℓ, ℓ′ and ℓ″ are finite and ℓ's
// holds logsumexp(γ) − γ_y; ℓ′ holds ⟨softmax(γ) − e_y, v⟩.
func TestCrossEntropyEnclosureHugeLogits(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2))
	for it := 0; it < 2000; it++ {
		k := 2 + rng.IntN(9)
		scale := math.Pow(10, 6*rng.Float64())
		g := make([]float64, k)
		v := make([]float64, k)
		for j := range g {
			g[j] = scale * (2*rng.Float64() - 1)
			v[j] = 2*rng.Float64() - 1
		}
		y := rng.IntN(k)
		j := &IJet{N: 1, D: k, Order: 2, V: interval.PointMatrix(1, k, g), D1: interval.PointMatrix(1, k, v), D2: interval.NewMatrix(1, k)}
		l, dl, d2l := LossEnclosure("cross_entropy", j, Targets{Labels: []int{y}})
		for name, e := range map[string]interval.I{"ℓ": l[0], "ℓ′": dl[0], "ℓ″": d2l[0]} {
			if !(e.Lo <= e.Hi) || math.IsInf(e.Lo, 0) || math.IsInf(e.Hi, 0) {
				t.Fatalf("logits ×%.3g, K %d: %s enclosure %v not finite", scale, k, name, e)
			}
		}
		want := bigLSE(g, y)
		if s := 1e-13 * (1 + math.Abs(want)); want < l[0].Lo-s || want > l[0].Hi+s {
			t.Fatalf("logits ×%.3g: ℓ = %v outside %v", scale, want, l[0])
		}
		// ℓ′ = Σ_j p_j v_j − v_y with p = softmax(γ)
		// p_q = exp((γ_q − m) − log s), γ_q − m exact in big.Float (|·| up
		// to 2e6, then rounded once), s = Σ exp(γ − m) ∈ [1, K]
		m := math.Inf(-1)
		for _, x := range g {
			m = math.Max(m, x)
		}
		var sum float64
		for _, x := range g {
			sum += math.Exp(x - m) // x − m is exact for the terms that matter
		}
		d := -v[y]
		for q := range g {
			diff := new(big.Float).SetPrec(200).Sub(new(big.Float).SetFloat64(g[q]), new(big.Float).SetFloat64(m))
			diff.Sub(diff, new(big.Float).SetFloat64(math.Log(sum)))
			x, _ := diff.Float64()
			d += math.Exp(x) * v[q]
		}
		if s := 1e-12 * (1 + math.Abs(d)); d < dl[0].Lo-s || d > dl[0].Hi+s {
			t.Fatalf("logits ×%.3g: ℓ′ = %v outside %v", scale, d, dl[0])
		}
	}
}
