package functionspace

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
)

// residualPath draws linear → residual{body: linear, act, linear; shortcut:
// none or linear; scale or not} → act → linear on a few examples, θ0 at
// init scale 1 and θT at scale 2 (a drawn scale gain at both ends).
func residualPath(t *rapid.T, act string) *Path {
	in := rapid.IntRange(1, 3).Draw(t, "in")
	w := rapid.IntRange(1, 4).Draw(t, "w")
	h := rapid.IntRange(1, 4).Draw(t, "h")
	k := rapid.IntRange(1, 3).Draw(t, "k")
	var short []nn.LayerSpec
	if rapid.Bool().Draw(t, "linear shortcut") {
		short = []nn.LayerSpec{{Type: "linear", In: w, Out: w}}
	}
	scale := rapid.Bool().Draw(t, "scale")
	s := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{in}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: in, Out: w},
		{Type: "residual", Scale: &scale, Shortcut: short,
			Body: []nn.LayerSpec{{Type: "linear", In: w, Out: h}, {Type: act}, {Type: "linear", In: h, Out: w}}},
		{Type: act},
		{Type: "linear", In: w, Out: k},
	}}
	m, err := nn.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	if scale {
		s0["1.scale"].Data[0] = rapid.Float64Range(-1.5, 1.5).Draw(t, "c0")
		sT["1.scale"].Data[0] = rapid.Float64Range(-1.5, 1.5).Draw(t, "cT")
	}
	n := rapid.IntRange(1, 4).Draw(t, "n")
	rng := rand.New(rand.NewPCG(seed, 9))
	x := mat.NewDense(n, in, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	tg := nn.Targets{Values: mat.NewDense(n, k, nil)}
	for i := range tg.Values.RawMatrix().Data {
		tg.Values.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, tg, Options{Chunk: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forwardPre computes, by plain forward passes of the layers (nn.Layer.Forward
// at θ(α), no jets), the input of every ReLU of p's residual model for
// example i at α, keyed by site index: site 2 is the ReLU inside the
// block's body, site 4 + (1 if a linear shortcut) the ReLU after it. It is
// the oracle for the kink search, independent of the per-row pass.
func forwardPre(p *Path, i int, alpha float64) map[int][]float64 {
	m := p.Model
	sa := nn.Interpolate(p.Theta0, addState(p.Theta0, p.Delta), alpha)
	x := mat.NewDense(1, p.X.RawMatrix().Cols, append([]float64(nil), p.X.RawRowView(i)...))
	h := m.Layers[0].Forward(m.LayerParams(sa, 0), x)
	r := m.Layers[1].(*nn.Residual)
	z1 := r.Body[0].Forward(nn.KeyParams(sa, "1.body.0", r.Body[0]), h)
	out := map[int][]float64{2: append([]float64(nil), z1.RawRowView(0)...)}
	y := m.Layers[1].Forward(m.LayerParams(sa, 1), h)
	out[4+len(r.Shortcut)] = append([]float64(nil), y.RawRowView(0)...)
	return out
}

// TestResidualKinks: on random networks with a ReLU inside a residual block
// (and one after it), every sign change of a ReLU input on a dense grid of
// α, computed by plain forward passes, is bracketed by a located kink of
// that site and unit, every located kink is a zero of that input, and the
// kinks' one-sided velocities are the path's velocity just before and after.
func TestResidualKinks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := residualPath(t, "relu")
		if got := p.kinkedLayers(); len(got) != 2 || got[0] != 2 {
			t.Fatalf("kinked sites %v, want the body's ReLU (2) and the one after the block", got)
		}
		i := rapid.IntRange(0, p.N-1).Draw(t, "example")
		ks, err := p.Kinks(context.Background(), i, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			z := forwardPre(p, i, k.Alpha)[k.Layer][k.Unit]
			_, zd, _ := p.preJet(i, k.Layer, k.Unit, k.Alpha)
			if math.Abs(z) > 1e-10*(1+math.Abs(zd)) {
				t.Fatalf("kink at α = %v (site %d unit %d): forward pre-activation %v", k.Alpha, k.Layer, k.Unit, z)
			}
			const eps = 1e-7
			for _, c := range []struct {
				alpha    float64
				vel, acc []float64
			}{{k.Alpha - eps, k.Left, k.LeftAcc}, {k.Alpha + eps, k.Right, k.RightAcc}} {
				near := false
				for _, o := range ks {
					near = near || (o.Alpha != k.Alpha && math.Abs(o.Alpha-c.alpha) <= eps)
				}
				if near {
					continue
				}
				v := p.rowJet([]int{i}, []float64{c.alpha}, nil, nil).M.RawRowView(1)
				for q := range v {
					if math.Abs(v[q]-c.vel[q]) > 2*eps*(1+math.Abs(c.acc[q]))+1e-9*(1+math.Abs(v[q])) {
						t.Fatalf("kink at α = %v: one-sided velocity %v, path at %v has %v", k.Alpha, c.vel, c.alpha, v)
					}
				}
			}
		}
		const n = 1000
		prev := forwardPre(p, i, 0)
		for j := 1; j <= n; j++ {
			a, b := float64(j-1)/n, float64(j)/n
			cur := forwardPre(p, i, b)
			for site, zs := range cur {
				for u, z := range zs {
					if (prev[site][u] > 0) == (z > 0) {
						continue
					}
					found := false
					for _, k := range ks {
						found = found || (k.Layer == site && k.Unit == u && k.Alpha > a-1e-12 && k.Alpha <= b+1e-12)
					}
					if !found {
						var list []string
						for _, k := range ks {
							list = append(list, fmt.Sprintf("site %d unit %d at %v", k.Layer, k.Unit, k.Alpha))
						}
						t.Fatalf("site %d unit %d changes sign in [%v, %v]; kinks: %s", site, u, a, b, strings.Join(list, ", "))
					}
				}
			}
			prev = cur
		}
	})
}

// TestResidualGaussLengthMatchesOracle: the batched Gauss length, whose grid
// pass descends into the block to see the body's ReLU, agrees with the
// per-example oracle (kinks located by Path.Kinks) on a residual network.
func TestResidualGaussLengthMatchesOracle(t *testing.T) {
	for seed := uint64(0); seed < 4; seed++ {
		yes := true
		s := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{2}, Loss: "mse", Layers: []nn.LayerSpec{
			{Type: "linear", In: 2, Out: 5},
			{Type: "residual", Scale: &yes, Body: []nn.LayerSpec{{Type: "linear", In: 5, Out: 6}, {Type: "relu"}, {Type: "linear", In: 6, Out: 5}}},
			{Type: "relu"},
			{Type: "linear", In: 5, Out: 3},
		}}
		m, err := nn.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		sT, _ := nn.Init(m, "pytorch", 2, seed+1)
		s0["1.scale"].Data[0], sT["1.scale"].Data[0] = 0.3, 1.1
		rng := rand.New(rand.NewPCG(seed, 9))
		x := mat.NewDense(4, 2, nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = rng.NormFloat64()
		}
		p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(4, 3, nil)}, Options{Chunk: 3})
		if err != nil {
			t.Fatal(err)
		}
		r := compareOracle(t, p, 512, 1e-6)
		if r.Kinks == 0 {
			t.Logf("seed %d: no kinks", seed)
		}
	}
}

// TestResidualFloat32: the float32 passes run through residual blocks
// (nn.Residual.Jet32) and agree with float64 to float32 accuracy; the
// Gauss-length grid, whose kink sites inside the block come from a float64
// pass, finds the same number of kinks as in float64.
func TestResidualFloat32(t *testing.T) {
	yes := true
	s := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{3}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 3, Out: 6},
		{Type: "residual", Scale: &yes, Body: []nn.LayerSpec{{Type: "linear", In: 6, Out: 6}, {Type: "relu"}, {Type: "linear", In: 6, Out: 6}},
			Shortcut: []nn.LayerSpec{{Type: "linear", In: 6, Out: 6}}},
		{Type: "tanh"},
		{Type: "linear", In: 6, Out: 2},
	}}
	m, err := nn.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 3)
	sT, _ := nn.Init(m, "pytorch", 2, 4)
	s0["1.scale"].Data[0], sT["1.scale"].Data[0] = 0.2, 0.9
	rng := rand.New(rand.NewPCG(5, 9))
	x := mat.NewDense(8, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	tg := nn.Targets{Values: mat.NewDense(8, 2, nil)}
	p64, err := New(m, s0, sT, x, tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p32, err := New(m, s0, sT, x, tg, Options{Precision: Float32})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []float64{0, 0.37, 1} {
		l64, l32 := p64.At(a), p32.At(a)
		if math.Abs(l64.Loss-l32.Loss) > 1e-5*(1+l64.Loss) || math.Abs(l64.DLoss-l32.DLoss) > 1e-4*(1+math.Abs(l64.DLoss)) {
			t.Fatalf("α=%v: float64 L %v L′ %v, float32 L %v L′ %v", a, l64.Loss, l64.DLoss, l32.Loss, l32.DLoss)
		}
	}
	g64, err := p64.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 256, MaxIntervals: 256})
	if err != nil {
		t.Fatal(err)
	}
	g32, err := p32.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 256, MaxIntervals: 256})
	if err != nil {
		t.Fatal(err)
	}
	if g64.Kinks == 0 || g64.Kinks != g32.Kinks || math.Abs(g64.Mean-g32.Mean) > 1e-3*(1+g64.Mean) {
		t.Fatalf("kinks %d (float64) vs %d (float32); mean G %v vs %v", g64.Kinks, g32.Kinks, g64.Mean, g32.Mean)
	}
}

// TestResidualRowJetMatchesAt: the per-row pass, which descends into the
// block, gives the batched pass's γ, γ′, γ″ at every row's own α, under
// both BatchNorm policies for a batchnorm1d after the block (recompute:
// the reference statistics at each row's α) and a ReLU in the body.
func TestResidualRowJetMatchesAt(t *testing.T) {
	for _, policy := range []BNPolicy{BNInterpolate, BNRecompute} {
		t.Run(policy.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				w := rapid.IntRange(2, 4).Draw(t, "w")
				scale := rapid.Bool().Draw(t, "scale")
				m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{2}, Loss: "mse", Layers: []nn.LayerSpec{
					{Type: "linear", In: 2, Out: w},
					{Type: "residual", Scale: &scale, Body: []nn.LayerSpec{{Type: "linear", In: w, Out: w}, {Type: "relu"}, {Type: "linear", In: w, Out: w}}},
					{Type: "batchnorm1d"},
					{Type: "relu"},
					{Type: "linear", In: w, Out: 2},
				}})
				if err != nil {
					t.Fatal(err)
				}
				seed := rapid.Uint64().Draw(t, "seed")
				s0, _ := nn.Init(m, "pytorch", 1, seed)
				sT, _ := nn.Init(m, "pytorch", 2, seed+1)
				if scale {
					s0["1.scale"].Data[0], sT["1.scale"].Data[0] = 0.3, -0.8
				}
				for j := 0; j < w; j++ {
					sT["2.running_var"].Data[j], sT["2.running_mean"].Data[j], sT["2.weight"].Data[j] = 1.5, 0.2, 0.7
				}
				n := rapid.IntRange(2, 6).Draw(t, "n")
				rng := rand.New(rand.NewPCG(seed, 9))
				x := mat.NewDense(n, 2, nil)
				for i := range x.RawMatrix().Data {
					x.RawMatrix().Data[i] = rng.NormFloat64()
				}
				p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, 2, nil)}, Options{Chunk: 2, BNPolicy: policy})
				if err != nil {
					t.Fatal(err)
				}
				rows, alphas := make([]int, 4), make([]float64, 4)
				for r := range rows {
					rows[r] = rapid.IntRange(0, n-1).Draw(t, "row")
					alphas[r] = rapid.Float64Range(-0.5, 1.5).Draw(t, "alpha")
				}
				j := p.rowJet(rows, alphas, nil, nil)
				for r, i := range rows {
					s := p.At(alphas[r])
					for part, mm := range []*mat.Dense{s.Output, s.Velocity, s.Acceleration} {
						want, got := mm.RawRowView(i), j.M.RawRowView(part*len(rows)+r)
						for c := range want {
							if math.Abs(got[c]-want[c]) > 1e-10*(1+math.Abs(want[c])) {
								t.Fatalf("row %d (example %d, α = %v) part %d: per-row %v, batched %v", r, i, alphas[r], part, got, want)
							}
						}
					}
				}
			})
		})
	}
}
