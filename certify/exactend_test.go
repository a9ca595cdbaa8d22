package certify

import (
	"context"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"

	"github.com/certify-mli/certify/functionspace"
)

// cornerLossExact is the corner path's unscaled loss Σ_k r_k(α)² in exact
// dyadic arithmetic, written out from cornerPath's weights (an oracle
// independent of exactEndSlopes): z = (α + 1, α − 0.7), h = relu(z),
// y = (h₁ + (cos β − 1)·h₂, sin β·h₂), r = y − target.
func cornerLossExact(t *testing.T, p *functionspace.Path, alpha *big.Float) *big.Float {
	nf := func(v float64) *big.Float { return new(big.Float).SetPrec(2000).SetFloat64(v) }
	w2 := p.Theta0["2.weight"].Data
	ex := func(z *big.Float) *big.Float {
		if z.Acc() != big.Exact {
			t.Fatal("inexact")
		}
		return z
	}
	z1 := ex(nf(0).Add(alpha, nf(1)))
	z2 := ex(nf(0).Sub(alpha, nf(0.7)))
	if z2.Sign() < 0 {
		z2 = nf(0)
	}
	y1 := ex(nf(0).Add(z1, ex(nf(0).Mul(nf(w2[1]), z2))))
	y2 := ex(nf(0).Mul(nf(w2[3]), z2))
	tg := p.Targets.Values.RawRowView(0)
	r1, r2 := ex(nf(0).Sub(y1, nf(tg[0]))), ex(nf(0).Sub(y2, nf(tg[1])))
	return ex(nf(0).Add(ex(nf(0).Mul(r1, r1)), ex(nf(0).Mul(r2, r2))))
}

// TestExactFitToleranceZero (issue 12): exactEndSlopes decides ℓ′(1) of an
// exact fit exactly, and with it the last leaf at tolerance 0. The exact
// fit of the linear model (residual exactly 0 at α = 1) and the corner
// path at β = 0.3π (ℓ′(1) < 0 exactly) are certified_monotone at tolerance
// 0 with Δ ≤ 0. The corner path at 0.45π is not: its target is the float64
// output at θT, and in exact arithmetic ℓ′(1) > 0, so L really rises just
// before α = 1 (checked here with the independent exact oracle
// cornerLossExact: L(1 − 2⁻⁶⁰) < L(1)); certifying it at tolerance 0 would
// be false.
func TestExactFitToleranceZero(t *testing.T) {
	corner := func(b float64) func(*testing.T) *functionspace.Path {
		return func(t *testing.T) *functionspace.Path { return cornerPath(t, b*math.Pi) }
	}
	cases := []struct {
		name    string
		path    func(*testing.T) *functionspace.Path
		sign    int // of the exact ℓ′(1)
		certify bool
	}{
		{"exact-fit linear", exactFitLinear, 0, true},
		{"corner 0.3π", corner(0.3), -1, true},
		{"corner 0.45π", corner(0.45), 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			d, ok := exactEndSlopes(p, -1)
			if d == nil || !ok[0] || d[0].Sign() != c.sign {
				t.Fatalf("exact ℓ′(1) = %v (decided %v), want sign %d", d, ok, c.sign)
			}
			if c.name != "exact-fit linear" {
				// the oracle agrees on the sign: L(1) − L(1 − t) has the sign of ℓ′(1) for tiny t
				one := new(big.Float).SetPrec(2000).SetFloat64(1)
				a := new(big.Float).SetPrec(2000).Sub(one, new(big.Float).SetMantExp(big.NewFloat(1), -60))
				diff := new(big.Float).SetPrec(2000).Sub(cornerLossExact(t, p, one), cornerLossExact(t, p, a))
				if diff.Sign() != c.sign {
					t.Fatalf("oracle: L(1) − L(1 − 2⁻⁶⁰) = %v, want sign %d", diff, c.sign)
				}
			}
			cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 0, MaxIntervals: 512})
			if err != nil {
				t.Fatal(err)
			}
			if c.certify != (cert.Verdict == CertifiedMonotone) {
				t.Fatalf("%s, Δ ∈ [%g, %g], %d leaves: want certified %v", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves, c.certify)
			}
			if c.certify && (cert.DeltaUpper != 0 || cert.Leaves > 64) {
				t.Errorf("Δ ≤ %g on %d leaves, want Δ ≤ 0 within 64 leaves", cert.DeltaUpper, cert.Leaves)
			}
			t.Logf("%s: Δ ∈ [%g, %g], %d leaves", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves)
		})
	}
}

// TestExactEndSlopesAgree: on random tiny relu / leaky_relu / identity mse
// networks, every decided exact ℓ_i′ at α = 1 (left) and α = 0 (right),
// rounded to float64, agrees with the float64 forward-mode jet's
// per-example ℓ_i′ (functionspace, an independent implementation) to
// 1e-9 relative, and lies in the certificate's interval enclosure
// (tightenEnds never finds an empty intersection).
func TestExactEndSlopesAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		act := rapid.SampledFrom([]string{"relu", "leaky_relu", "identity"}).Draw(t, "act")
		in, h, k, n := rapid.IntRange(1, 3).Draw(t, "in"), rapid.IntRange(1, 4).Draw(t, "h"), rapid.IntRange(1, 3).Draw(t, "k"), rapid.IntRange(1, 5).Draw(t, "n")
		m, err := nn.Build(nn.MLPSpec([]int{in, h, k}, act, "mse"))
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		sT, _ := nn.Init(m, "pytorch", 1, seed+1)
		x, tg := testnets.RandomData(rand.New(rand.NewPCG(seed, 3)), n, in, k, "mse", 2)
		if rapid.Bool().Draw(t, "fit") { // an exact fit at θT: targets are the float64 outputs there
			tg = nn.Targets{Values: m.Forward(sT, x)}
		}
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		ip.point(1, true)
		ip.keepStart()
		for _, end := range []struct {
			side  int
			alpha float64
			encs  [][]interval.I
		}{{-1, 1, ip.dl1}, {+1, 0, ip.dl0}} {
			d, ok := exactEndSlopes(p, end.side)
			if d == nil {
				t.Fatal("a supported model was refused")
			}
			fl := p.At(end.alpha).ExampleDLoss
			scale := 1.0 // ExampleDLoss is unscaled, Σ_k 2 r_k r_k′, as the interval path's ℓ_i′
			for i := range d {
				if !ok[i] {
					continue
				}
				v, _ := d[i].Float64()
				if want := fl[i] * scale; math.Abs(v-want) > 1e-9*(1+math.Abs(want)) {
					t.Fatalf("α = %v, example %d: exact ℓ′ = %v, float64 jet %v", end.alpha, i, v, want)
				}
				enc := end.encs[0][i]
				if o := outward(d[i]); o.Hi < enc.Lo || o.Lo > enc.Hi {
					t.Fatalf("α = %v, example %d: exact ℓ′ = %v outside the enclosure %v", end.alpha, i, v, enc)
				}
			}
		}
	})
}
