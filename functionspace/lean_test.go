package functionspace

import (
	"context"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
)

// TestEnterBitsMatchesBranches: enterBits, enterBit and enterBitsAcc give
// the branches nn's unit-wise rule gives (nn.SwitchingOf of a ReLU layer:
// Branches with no acceleration), and enterBitsAcc the slope by the rule
// with the acceleration times it, on values drawn with many exact zeros,
// signed zeros, infinities and NaNs.
func TestEnterBitsMatchesBranches(t *testing.T) {
	layer := &nn.Activation{Kind: nn.ReLU, Width: 130}
	sw, ok := nn.SwitchingOf(layer)
	if !ok {
		t.Fatal("relu has no switching rule")
	}
	special := []float64{0, math.Copysign(0, -1), 1, -1, 1e-300, -1e-300, math.Inf(1), math.Inf(-1), math.NaN()}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 130).Draw(t, "n")
		val := func(name string) float64 {
			if rapid.Bool().Draw(t, name+"special") {
				return rapid.SampledFrom(special).Draw(t, name)
			}
			return rapid.Float64().Draw(t, name)
		}
		x, xd := make([]float64, n), make([]float64, n)
		for u := range x {
			x[u], xd[u] = val("x"), val("xd")
		}
		br := make([]int, n)
		sw.Branches(x, xd, nil, br)
		w := make([]uint64, (n+63)/64)
		for q := range w {
			w[q] = ^uint64(0) // enterBits must clear
		}
		enterBits(w, x, xd)
		for u, b := range br {
			if got := int(w[u>>6]>>(u&63)) & 1; got != b {
				t.Fatalf("unit %d (z %v, ż %v): enterBits %d, Branches %d", u, x[u], xd[u], got, b)
			}
			if got := enterBit(x[u], xd[u]); int(got) != b {
				t.Fatalf("unit %d (z %v, ż %v): enterBit %d, Branches %d", u, x[u], xd[u], got, b)
			}
		}
		// enterBitsAcc: the same bits, and the output's acceleration by
		// the rule with z̈
		xdd := make([]float64, n)
		for u := range xdd {
			xdd[u] = val("xdd")
		}
		on, off := 1.0, rapid.SampledFrom([]float64{0, 0.01}).Draw(t, "off")
		acc, w2 := make([]float64, n), make([]uint64, len(w))
		w2[0] = ^uint64(0)
		enterBitsAcc(w2, acc, x, xd, xdd, on, off)
		brA := make([]int, n)
		sw.Branches(x, xd, xdd, brA)
		for u := range x {
			if w2[u>>6] != w[u>>6] {
				t.Fatalf("word %d: enterBitsAcc %x, enterBits %x", u>>6, w2[u>>6], w[u>>6])
			}
			s := off
			if brA[u] == 1 {
				s = on
			}
			if want := s * xdd[u]; math.Float64bits(acc[u]) != math.Float64bits(want) && !(math.IsNaN(acc[u]) && math.IsNaN(want)) {
				t.Fatalf("unit %d (z %v, ż %v, z̈ %v): acceleration %v, want %v", u, x[u], xd[u], xdd[u], acc[u], want)
			}
		}
		for u := n; u < 64*len(w); u++ {
			if w[u>>6]>>(u&63)&1 != 0 {
				t.Fatalf("bit %d beyond %d units set", u, n)
			}
		}
	})
}

// TestLeanPointsMatchFullPoints: the grid Gauss length from lean grid
// points (no copy of the first kinked layer's input, its branches from the
// grid carry, branches as bits: leanPoints; γ‴ and cubicFast's slack per
// unit computed at the point: fastPoint) equals the one from full grid
// points (noLean) to 1e-13 relative per example (the same arithmetic but
// γ‴'s product, whose rows the BLAS may sum in another order), with the
// same kinks, on random two-hidden-layer ReLU-family MLPs whose grid is
// carried.
func TestLeanPointsMatchFullPoints(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolyNet(t)
		pl := p.polyPlan()
		if !p.leanPoints(pl, p.newGridCarry()) {
			t.Fatalf("grid points not lean")
		}
		o := GaussOptions{Intervals: rapid.SampledFrom([]int{2, 4, 8, 32}).Draw(t, "M")}
		o.MaxIntervals = o.Intervals
		r, err := p.GaussLength(context.Background(), 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		p.noLean = true
		ref, err := p.GaussLength(context.Background(), 0, 1, o)
		p.noLean = false
		if err != nil {
			t.Fatal(err)
		}
		if r.Kinks != ref.Kinks || r.ExtraRows != ref.ExtraRows {
			t.Fatalf("%d kinks, %d rows lean; %d, %d full", r.Kinks, r.ExtraRows, ref.Kinks, ref.ExtraRows)
		}
		for i, g := range ref.PerExample {
			if math.Abs(r.PerExample[i]-g) > 1e-13*g || math.Abs(r.PerExampleError[i]-ref.PerExampleError[i]) > 1e-13*g || r.KinkCount[i] != ref.KinkCount[i] {
				t.Fatalf("example %d: %v ± %v (%d kinks) lean, %v ± %v (%d) full", i, r.PerExample[i], r.PerExampleError[i], r.KinkCount[i], g, ref.PerExampleError[i], ref.KinkCount[i])
			}
		}
	})
}

// TestCubicFastJumpBoundNeeded: a second-layer unit pushed across 0 and
// back inside one grid interval by first-layer switches alone (its
// quadratic from the grid point is the constant 0.1: without the jumps'
// bound J in cubicFast's candidate test it would keep its branch on the
// whole interval). The 1-2-2-2 ReLU MLP on x = 1: z₁ = (α − 0.1, α − 0.3),
// z₂ᵥ = 0.1 − relu(α − 0.1) + 3·relu(α − 0.3), below 0 on (0.2, 0.35) and
// positive at the grid points 0, 0.5 and 1. The grid Gauss length with
// cubicFast must equal cubicJets' (noFastCubic) and the per-row passes'
// (noPoly), whose one-sided jets at the kink 0.3 take the unit off as the
// path does; dropping J from the bound makes it differ.
func TestCubicFastJumpBoundNeeded(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{1, 2, 2, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 2, 2)
	set := func(s nn.State, layer int, w, b []float64) {
		ps := m.LayerParams(s, layer)
		copy(ps[0].Data, w)
		copy(ps[1].Data, b)
	}
	set(s0, 0, []float64{0, 0}, []float64{-0.1, -0.3})
	set(sT, 0, []float64{1, 1}, []float64{-0.1, -0.3})
	for _, s := range []nn.State{s0, sT} {
		set(s, 2, []float64{-1, 3, 1, 1}, []float64{0.1, 1})
	}
	set(s0, 4, []float64{1, 0, 0, 1}, []float64{0, 0})
	set(sT, 4, []float64{1, 0.5, -0.5, 1}, []float64{1, -1})
	x := mat.NewDense(1, 1, []float64{1})
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(1, 2, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pl := p.polyPlan(); pl == nil || pl.out < 0 || pl.wcat == nil {
		t.Fatal("no cubicFast on the 1-2-2-2 ReLU MLP")
	}
	// the premise: the unit is positive at the grid points, negative inside
	for _, c := range []struct {
		alpha float64
		neg   bool
	}{{0, false}, {0.25, true}, {0.5, false}, {1, false}} {
		h1 := []float64{math.Max(c.alpha-0.1, 0), math.Max(c.alpha-0.3, 0)}
		if z := 0.1 - h1[0] + 3*h1[1]; (z < 0) != c.neg {
			t.Fatalf("z₂ᵥ(%v) = %v", c.alpha, z)
		}
	}
	o := GaussOptions{Intervals: 2, MaxIntervals: 2}
	run := func(name string, flag *bool) *GaussResult {
		if flag != nil {
			*flag = true
			defer func() { *flag = false }()
		}
		r, err := p.GaussLength(context.Background(), 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: G = %.15g ± %.3g, %d kinks", name, r.PerExample[0], r.PerExampleError[0], r.Kinks)
		return r
	}
	fast := run("cubicFast", nil)
	full := run("cubicJets", &p.noFastCubic)
	rows := run("per-row passes", &p.noPoly)
	for _, ref := range []*GaussResult{full, rows} {
		if d := math.Abs(fast.PerExample[0] - ref.PerExample[0]); d > 1e-12*ref.PerExample[0] || fast.Kinks != ref.Kinks {
			t.Fatalf("cubicFast %.15g (%d kinks), reference %.15g (%d kinks)", fast.PerExample[0], fast.Kinks, ref.PerExample[0], ref.Kinks)
		}
		if d := math.Abs(fast.PerExampleError[0] - ref.PerExampleError[0]); d > 1e-12*ref.PerExample[0] {
			t.Fatalf("cubicFast error estimate %.15g, reference %.15g", fast.PerExampleError[0], ref.PerExampleError[0])
		}
	}
}
