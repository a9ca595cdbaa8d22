package functionspace

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
)

// drawPolyNet draws a two-hidden-layer MLP of the polyPlan shape (relu or
// leaky_relu, widths up to 24 so that an interval of a coarse grid holds
// many kinks of both layers) with a few examples.
func drawPolyNet(t *rapid.T) *Path {
	in := rapid.IntRange(1, 4).Draw(t, "in")
	h1 := rapid.IntRange(1, 24).Draw(t, "h1")
	h2 := rapid.IntRange(1, 24).Draw(t, "h2")
	k := rapid.IntRange(1, 4).Draw(t, "k")
	act := rapid.SampledFrom([]string{"relu", "relu", "leaky_relu"}).Draw(t, "act")
	m, err := nn.Build(nn.MLPSpec([]int{in, h1, h2, k}, act, "mse"))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	n := rapid.IntRange(1, 5).Draw(t, "n")
	rng := rand.New(rand.NewPCG(seed, 3))
	x := mat.NewDense(n, in, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = 2 * rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, k, nil)}, Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk")})
	if err != nil {
		t.Fatal(err)
	}
	if p.polyPlan() == nil {
		t.Fatalf("%s MLP %d-%d-%d-%d: no polyPlan", act, in, h1, h2, k)
	}
	return p
}

// TestPolyGaussLengthMatchesRowPasses: the grid Gauss length with the
// one-sided jets from the piecewise-polynomial path (polyJets, the output
// carried as a cubic by cubicJets) equals the one from per-row passes
// (polyJets with a pass of the layers after the second kinked layer,
// sideJets with carried right sides, and the general path evaluating both
// sides) up to rounding: every example's value, its error estimate and
// its kink count, on coarse grids where an interval holds many kinks of
// both layers and crossings located out of order.
func TestPolyGaussLengthMatchesRowPasses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolyNet(t)
		o := GaussOptions{Intervals: rapid.SampledFrom([]int{2, 4, 8, 32}).Draw(t, "M")}
		o.MaxIntervals = o.Intervals
		r, err := p.GaussLength(context.Background(), 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		var rows, tail, gen *GaussResult
		p.noPoly = true
		rows, err = p.GaussLength(context.Background(), 0, 1, o)
		p.noPoly = false
		if err != nil {
			t.Fatal(err)
		}
		p.noCubic = true
		tail, err = p.GaussLength(context.Background(), 0, 1, o)
		p.noCubic = false
		if err != nil {
			t.Fatal(err)
		}
		general(p, func() { gen, err = p.GaussLength(context.Background(), 0, 1, o) })
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []*GaussResult{rows, tail, gen} {
			if r.Kinks != ref.Kinks {
				t.Fatalf("%d kinks polynomial, %d by rows", r.Kinks, ref.Kinks)
			}
			for i, g := range ref.PerExample {
				if r.KinkCount[i] != ref.KinkCount[i] {
					t.Fatalf("example %d: %d kinks polynomial, %d by rows", i, r.KinkCount[i], ref.KinkCount[i])
				}
				if math.Abs(r.PerExample[i]-g) > 1e-9*(1+g) || math.Abs(r.PerExampleError[i]-ref.PerExampleError[i]) > 1e-9*(1+g) {
					t.Fatalf("example %d: Gauss length %v ± %v polynomial, %v ± %v by rows", i, r.PerExample[i], r.PerExampleError[i], g, ref.PerExampleError[i])
				}
			}
		}
	})
}

// polyAt runs polyJets on example i over [a, b] for the given kinks (the
// switches of Path.Kinks, merged ones included) and returns its jet and
// the pending entry.
func polyAt(p *Path, i int, a, b float64, ks []Kink) (*nn.Jet, pendingKinks) {
	pl := p.polyPlan()
	kl := p.kinkedLayers()
	pa := p.point(a, kl, pl, nil)
	var cs []crossing
	for _, k := range ks {
		cs = append(cs, crossing{k.Alpha, k.Layer, k.Unit, k.From, k.To})
		for _, s := range k.Merged {
			cs = append(cs, crossing{k.Alpha, s.Layer, s.Unit, s.From, s.To})
		}
	}
	pend := []pendingKinks{{i: i, cs: cs}}
	j, _ := p.polyJets(pl, pa, b, pend)
	return j, pend[0]
}

// TestPolyJetsMatchKinksAndFiniteDifferences: given the exact kinks of an
// interval (Path.Kinks, the oracle, whose one-sided jets come from per-row
// passes), polyJets carries the second layer's input from the interval's
// start through every first-layer jump and returns the same one-sided
// velocities and accelerations at every kink (1e-9 relative), and they
// match finite differences of γ′ on either side (as
// TestCarriedJetsMatchFiniteDifferences). Dropping a jump or a kink
// changes every later jet of the interval.
func TestPolyJetsMatchKinksAndFiniteDifferences(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolyNet(t)
		a := rapid.SampledFrom([]float64{0, 0.25, 0.5}).Draw(t, "a")
		b := a + rapid.SampledFrom([]float64{0.5, 1}).Draw(t, "h")
		const eps = 1e-6
		for i := 0; i < p.N; i++ {
			ks, err := p.Kinks(context.Background(), i, a, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) == 0 {
				continue
			}
			j, pd := polyAt(p, i, a, b, ks)
			if len(pd.ks) != len(ks) {
				t.Fatalf("example %d: %d kinks, polyJets grouped %d", i, len(ks), len(pd.ks))
			}
			vm, am := j.Velocity(), j.Acceleration()
			vel := func(alpha float64) []float64 {
				return p.rowJet([]int{i}, []float64{alpha}, nil, nil).M.RawRowView(1)
			}
			for g, k := range ks {
				if math.Abs(pd.ks[g]-k.Alpha) > 1e-12*(1+math.Abs(k.Alpha)) {
					t.Fatalf("example %d kink %d at %v, polyJets %v", i, g, k.Alpha, pd.ks[g])
				}
				r := pd.r0 + 2*g
				left, right := vm.RawRowView(r), vm.RawRowView(r+1)
				lacc, racc := am.RawRowView(r), am.RawRowView(r+1)
				scale := jetScale(k.Left, k.Right, k.LeftAcc, k.RightAcc)
				for part, pair := range [][2][]float64{{left, k.Left}, {right, k.Right}, {lacc, k.LeftAcc}, {racc, k.RightAcc}} {
					for c := range pair[0] {
						if math.Abs(pair[0][c]-pair[1][c]) > 1e-9*scale {
							t.Fatalf("example %d kink %d (α = %v, site %d unit %d, %d merged) part %d: polyJets %v, per-row passes %v", i, g, k.Alpha, k.Layer, k.Unit, len(k.Merged), part, pair[0], pair[1])
						}
					}
				}
				if (g > 0 && k.Alpha-ks[g-1].Alpha < 4*eps) || (g+1 < len(ks) && ks[g+1].Alpha-k.Alpha < 4*eps) || k.Alpha < a+4*eps || k.Alpha > b-4*eps {
					continue
				}
				for _, side := range []struct {
					s      float64
					v, acc []float64
				}{{1, right, racc}, {-1, left, lacc}} {
					v1, v2 := vel(k.Alpha+side.s*eps), vel(k.Alpha+2*side.s*eps)
					for c := range side.v {
						if fd := side.s * (v2[c] - v1[c]) / eps; math.Abs(fd-side.acc[c]) > 1e-3*scale {
							t.Fatalf("example %d kink %d (α = %v) side %v: γ″ %v, difference quotient %v", i, g, k.Alpha, side.s, side.acc, fd)
						}
						if ext := v1[c] - side.s*eps*side.acc[c]; math.Abs(ext-side.v[c]) > 1e-8*scale {
							t.Fatalf("example %d kink %d (α = %v) side %v: γ′ %v, extrapolated %v", i, g, k.Alpha, side.s, side.v, ext)
						}
					}
				}
			}
		}
	})
}

// TestPolyPlanShapes: polyPlan applies to two-hidden-layer ReLU-family
// MLPs only; one or three hidden layers, smooth activations, max-pool
// and residual models take the per-row passes.
func TestPolyPlanShapes(t *testing.T) {
	build := func(sizes []int, act string) *Path {
		m, err := nn.Build(nn.MLPSpec(sizes, act, "mse"))
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 1)
		sT, _ := nn.Init(m, "pytorch", 2, 2)
		p, err := New(m, s0, sT, mat.NewDense(1, sizes[0], []float64{1, 2, 3}[:sizes[0]]), nn.Targets{Values: mat.NewDense(1, sizes[len(sizes)-1], nil)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		sizes []int
		act   string
		want  bool
	}{
		{[]int{3, 5, 4, 2}, "relu", true},
		{[]int{3, 5, 4, 2}, "leaky_relu", true},
		{[]int{3, 5, 2}, "relu", false},
		{[]int{3, 5, 4, 4, 2}, "relu", false},
		{[]int{3, 5, 4, 2}, "tanh", false},
	} {
		p := build(c.sizes, c.act)
		if got := p.polyPlan() != nil; got != c.want {
			t.Errorf("%v %s: polyPlan %v, want %v", c.sizes, c.act, got, c.want)
		}
		if c.want {
			p.noPoly = true
			if p.polyPlan() != nil {
				t.Errorf("%v %s: noPoly ignored", c.sizes, c.act)
			}
		}
	}
}

// TestColumnJumpsEqualJumpUnitRows: the mid layer's jumps from its
// transposed weights (columnJumps) are nn.Dense.JumpUnitRows exactly (the
// same products in the same order).
func TestColumnJumpsEqualJumpUnitRows(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolyNet(t)
		pl := p.polyPlan()
		n := rapid.IntRange(1, 5).Draw(t, "rows")
		in := p.Model.Layers[pl.mid].InSize()
		units := make([]int, n)
		als, dz, dv, da := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for r := range units {
			units[r] = rapid.IntRange(0, in-1).Draw(t, "unit")
			als[r] = rapid.Float64Range(-1, 2).Draw(t, "alpha")
			dz[r], dv[r], da[r] = rapid.Float64Range(-1, 1).Draw(t, "dz"), rapid.Float64Range(-3, 3).Draw(t, "dv"), rapid.Float64Range(-3, 3).Draw(t, "da")
		}
		got := pl.columnJumps(als, units, dz, dv, da)
		want := pl.jumps.JumpUnitRows(pl.p0, pl.dp, als, units, dz, dv, da).M
		if !mat.Equal(got, want) {
			t.Fatalf("columnJumps\n%v\nJumpUnitRows\n%v", mat.Formatted(got), mat.Formatted(want))
		}
	})
}

// TestCubicFastMatchesCubicJets: the grid Gauss length with the one-sided
// jets of cubicFast (only the second-layer units near a sign change
// carried kink by kink, the first-layer jumps through the output layer by
// one product per block) equals the one with cubicJets' carry of the whole
// second-layer input at every kink, to 1e-12 relative per example (value,
// error estimate, kink count), and the jets polyJets returns for one
// interval agree to 1e-10 of their scale; on grids from 2 intervals (many
// kinks per interval, restarts handed to cubicJets) to 64.
func TestCubicFastMatchesCubicJets(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPolyNet(t)
		if pl := p.polyPlan(); pl.out < 0 || pl.wcat == nil {
			t.Fatalf("no cubicFast tables")
		}
		o := GaussOptions{Intervals: rapid.SampledFrom([]int{2, 4, 8, 32, 64}).Draw(t, "M")}
		o.MaxIntervals = o.Intervals
		r, err := p.GaussLength(context.Background(), 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		p.noFastCubic = true
		ref, err := p.GaussLength(context.Background(), 0, 1, o)
		p.noFastCubic = false
		if err != nil {
			t.Fatal(err)
		}
		if r.Kinks != ref.Kinks {
			t.Fatalf("%d kinks fast, %d full width", r.Kinks, ref.Kinks)
		}
		for i, g := range ref.PerExample {
			if r.KinkCount[i] != ref.KinkCount[i] {
				t.Fatalf("example %d: %d kinks fast, %d full width", i, r.KinkCount[i], ref.KinkCount[i])
			}
			if math.Abs(r.PerExample[i]-g) > 1e-12*(1+g) || math.Abs(r.PerExampleError[i]-ref.PerExampleError[i]) > 1e-12*(1+g) {
				t.Fatalf("example %d: Gauss length %v ± %v fast, %v ± %v full width", i, r.PerExample[i], r.PerExampleError[i], g, ref.PerExampleError[i])
			}
		}
		// one interval's jets, directly
		a := rapid.SampledFrom([]float64{0, 0.25, 0.5}).Draw(t, "a")
		b := a + rapid.SampledFrom([]float64{0.125, 0.5}).Draw(t, "h")
		for i := 0; i < p.N; i++ {
			ks, err := p.Kinks(context.Background(), i, a, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) == 0 {
				continue
			}
			jf, pf := polyAt(p, i, a, b, ks)
			p.noFastCubic = true
			jr, pr := polyAt(p, i, a, b, ks)
			p.noFastCubic = false
			if len(pf.ks) != len(pr.ks) {
				t.Fatalf("example %d: %d kinks fast, %d full width", i, len(pf.ks), len(pr.ks))
			}
			for g := range pf.ks {
				for s := 0; s < 2; s++ {
					vf, vr := jf.Velocity().RawRowView(pf.r0+2*g+s), jr.Velocity().RawRowView(pr.r0+2*g+s)
					af, ar := jf.Acceleration().RawRowView(pf.r0+2*g+s), jr.Acceleration().RawRowView(pr.r0+2*g+s)
					scale := jetScale(vr, ar)
					for c := range vf {
						if math.Abs(vf[c]-vr[c]) > 1e-10*scale || math.Abs(af[c]-ar[c]) > 1e-10*scale {
							t.Fatalf("example %d kink %d side %d: fast %v %v, full width %v %v", i, g, s, vf, af, vr, ar)
						}
					}
				}
			}
		}
	})
}
