package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// TestBarrierContainsDenseMax: on random small tanh and ReLU MLPs (mse and
// cross-entropy, θ0 and θT two initialisations at scales up to 3, so the
// loss often rises above its chord), CertifyBarrier's bounds contain the
// barrier max_α g(α), g(α) = L(α) − ((1−α)L(0) + αL(1)) (THEORY.md §10),
// computed by dense float64 evaluation on 20,001 α: the dense maximum is at
// most Upper, and g at the witness α is at least Lower (both up to
// 1e-9·(1 + |L|), the float64 evaluation's rounding). The search converges
// to its gap on every network.
func TestBarrierContainsDenseMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	n := 12
	if testing.Short() {
		n = 4
	}
	positive := 0
	for i := 0; i < n; i++ {
		act := []string{"tanh", "relu"}[i%2]
		loss := []string{"mse", "cross_entropy"}[(i/2)%2]
		in, h, k := 1+rng.IntN(3), 2+rng.IntN(6), 2+rng.IntN(2)
		m, err := nn.Build(nn.MLPSpec([]int{in, h, h, k}, act, loss))
		if err != nil {
			t.Fatal(err)
		}
		seed := rng.Uint64()
		s0, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), seed)
		sT, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), seed+1)
		x, tg := testnets.RandomData(rng, 2+rng.IntN(6), in, k, loss, 2)
		p, err := functionspace.NewLine(m, functionspace.Line{Start: s0, End: sT, StartName: "θA", EndName: "θB"}, x, tg, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := CertifyBarrier(context.Background(), p, BarrierOptions{Gap: 1e-7, Workers: 1})
		if err != nil {
			t.Fatalf("network %d: %v", i, err)
		}
		l0, l1 := p.At(0).Loss, p.At(1).Loss
		g := func(a float64) (float64, float64) {
			l := p.At(a).Loss
			return l - ((1-a)*l0 + a*l1), l
		}
		dense, at := math.Inf(-1), 0.0
		const grid = 20001
		for j := 0; j < grid; j++ {
			a := float64(j) / (grid - 1)
			if v, _ := g(a); v > dense {
				dense, at = v, a
			}
		}
		_, la := g(at)
		slack := 1e-9 * (1 + math.Abs(la) + math.Abs(l0) + math.Abs(l1))
		if dense > c.Upper+slack {
			t.Errorf("network %d (%s, %s): dense max g(%v) = %v above the upper bound %v", i, act, loss, at, dense, c.Upper)
		}
		gw, lw := g(c.WitnessAlpha)
		if gw < c.Lower-1e-9*(1+math.Abs(lw)+math.Abs(l0)+math.Abs(l1)) {
			t.Errorf("network %d (%s, %s): g(witness %v) = %v below the lower bound %v", i, act, loss, c.WitnessAlpha, gw, c.Lower)
		}
		if !c.Converged || c.Upper-c.Lower > c.Gap {
			t.Errorf("network %d (%s, %s): not converged: [%v, %v], gap %v, %s", i, act, loss, c.Lower, c.Upper, c.Gap, c.Reason)
		}
		if dense > 1e-3 {
			positive++
		}
		t.Logf("network %d (%s, %s): B ∈ [%.9g, %.9g], witness α = %.6g; dense max %.9g at α = %.6g; %d leaves", i, act, loss, c.Lower, c.Upper, c.WitnessAlpha, dense, at, c.Leaves)
	}
	if positive < n/4 {
		t.Errorf("only %d of %d networks have a barrier above 1e-3: the test does not exercise the bound", positive, n)
	}
}

// TestBarrierConvex: on THEORY.md §6's overshoot model L(α) = (1 − 1.5α)²
// is convex, so g ≤ 0 with g(0) = g(1) = 0: the barrier is exactly 0, and
// the bounds are [0, ≤ gap]; on a one-point line (θT = θ0) both are 0.
func TestBarrierConvex(t *testing.T) {
	p := overshootPath(t)
	c, err := CertifyBarrier(context.Background(), p, BarrierOptions{Gap: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	if c.Lower != 0 || c.Upper > 1e-9 || !c.Converged {
		t.Errorf("overshoot: B ∈ [%v, %v], converged %v; want [0, ≤ 1e-9]", c.Lower, c.Upper, c.Converged)
	}
	if !(c.Loss0[0] <= 1 && 1 <= c.Loss0[1] && c.Loss0[1]-c.Loss0[0] < 1e-14) || !(c.Loss1[0] <= 0.25 && 0.25 <= c.Loss1[1] && c.Loss1[1]-c.Loss1[0] < 1e-14) {
		t.Errorf("L(0) ∈ %v, L(1) ∈ %v; want narrow enclosures of 1 and 0.25", c.Loss0, c.Loss1)
	}
	m, s0, _, x, y := testnets.Overshoot()
	q, err := functionspace.NewLine(m, functionspace.Line{Start: s0, End: s0}, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err = CertifyBarrier(context.Background(), q, BarrierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Lower != 0 || c.Upper != 0 || c.Leaves != 0 || !c.Converged {
		t.Errorf("one-point line: B ∈ [%v, %v], %d leaves", c.Lower, c.Upper, c.Leaves)
	}
}
