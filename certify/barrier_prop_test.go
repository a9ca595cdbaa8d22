package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// TestBarrierBoundsProperty is issue 14's property test of the certified
// barrier over random networks: tanh or ReLU MLPs, with or without
// batchnorm1d (random running statistics, the interpolate policy), mse or
// cross-entropy, θA and θB two initialisations at scales up to 3. On every
// drawn network CertifyBarrier's [Lower, Upper] contains the dense maximum
// of g(α) = L(α) − ((1−α)L(0) + αL(1)) over 2,001 α (THEORY.md §10), g at
// the witness is at least Lower, and both up to the float64 evaluation's
// rounding 1e-9·(1 + |L|). A violation is a counterexample rapid shrinks.
func TestBarrierBoundsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		act := rapid.SampledFrom([]string{"tanh", "relu"}).Draw(rt, "act")
		loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(rt, "loss")
		bn := rapid.Bool().Draw(rt, "batchnorm")
		in := rapid.IntRange(1, 3).Draw(rt, "in")
		h := rapid.IntRange(2, 6).Draw(rt, "hidden")
		k := rapid.IntRange(2, 3).Draw(rt, "out")
		n := rapid.IntRange(1, 6).Draw(rt, "examples")
		seed := rapid.Uint64().Draw(rt, "seed")
		rng := rand.New(rand.NewPCG(seed, 14))
		spec := nn.MLPSpec([]int{in, h, h, k}, act, loss)
		if bn {
			spec = nn.InsertBatchNorm(spec)
		}
		m, err := nn.Build(spec)
		if err != nil {
			rt.Fatal(err)
		}
		sa, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), seed)
		sb, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), seed+1)
		if bn {
			testnets.RandomizeBatchNorm(m, rng, 0.3, sa, sb)
		}
		x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
		p, err := functionspace.NewLine(m, functionspace.Line{Start: sa, End: sb, StartName: "θA", EndName: "θB"}, x, tg, functionspace.Options{})
		if err != nil {
			rt.Fatal(err)
		}
		c, err := CertifyBarrier(context.Background(), p, BarrierOptions{Gap: 1e-6, Workers: 1, MaxIntervals: 1024})
		if err != nil {
			rt.Fatal(err)
		}
		l0, l1 := p.At(0).Loss, p.At(1).Loss
		g := func(a float64) (float64, float64) {
			l := p.At(a).Loss
			return l - ((1-a)*l0 + a*l1), l
		}
		const grid = 2001
		for j := 0; j < grid; j++ {
			a := float64(j) / (grid - 1)
			v, l := g(a)
			if v > c.Upper+1e-9*(1+math.Abs(l)+math.Abs(l0)+math.Abs(l1)) {
				rt.Fatalf("g(%v) = %.12g above the certified upper bound %.12g (bounds [%.12g, %.12g])", a, v, c.Upper, c.Lower, c.Upper)
			}
		}
		gw, lw := g(c.WitnessAlpha)
		if gw < c.Lower-1e-9*(1+math.Abs(lw)+math.Abs(l0)+math.Abs(l1)) {
			rt.Fatalf("g(witness %v) = %.12g below the lower bound %.12g", c.WitnessAlpha, gw, c.Lower)
		}
		if c.Lower > c.Upper || c.Lower < 0 {
			rt.Fatalf("bounds [%v, %v]", c.Lower, c.Upper)
		}
	})
}
