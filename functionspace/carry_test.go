package functionspace

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// closeRel reports whether got and want agree to tol relative to scale
// (1 plus the largest magnitude of want).
func closeRel(got, want []float64, tol float64) (bool, float64) {
	scale := 1.0
	for _, w := range want {
		scale = max(scale, math.Abs(w))
	}
	worst := 0.0
	for i := range want {
		worst = max(worst, math.Abs(got[i]-want[i])/scale)
	}
	return worst <= tol, worst
}

// TestQuadCarryMatchesDirect: the carried jet of z₂ equals the direct
// evaluation z₂ = W(α)(s⊙(αb + a)) + b(α), ż₂ = ΔW h + W(α)ḣ + Δb,
// z̈₂ = 2ΔW ḣ (s the slopes the branch rule gives at α, W(α) = W0 + αΔW
// formed first, as a full pass does) at α visited in any order, with
// kinks placed exactly on some of them and refreshes forced often or
// never.
func TestQuadCarryMatchesDirect(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 4).Draw(t, "n")
		in := rapid.IntRange(1, 12).Draw(t, "in")
		out := rapid.IntRange(1, 8).Draw(t, "out")
		seed := rapid.Uint64().Draw(t, "seed")
		rng := rand.New(rand.NewPCG(seed, 7))
		leaky := rapid.Bool().Draw(t, "leaky")
		on, off := 1.0, 0.0
		if leaky {
			off = 0.01
		}
		// α on a dyadic grid, so that a = −α·b is exact for dyadic b
		m := rapid.SampledFrom([]int{2, 4, 8, 16}).Draw(t, "m")
		alphas := make([]float64, m+1)
		for j := range alphas {
			alphas[j] = float64(j) / float64(m)
		}
		a, b := mat.NewDense(n, in, nil), mat.NewDense(n, in, nil)
		for i := 0; i < n; i++ {
			for u := 0; u < in; u++ {
				b.Set(i, u, rng.NormFloat64())
				a.Set(i, u, rng.NormFloat64())
				if rng.IntN(3) == 0 { // a kink exactly on a grid point
					bu := float64(rng.IntN(9)-4) / 2
					b.Set(i, u, bu)
					a.Set(i, u, -alphas[rng.IntN(len(alphas))]*bu)
				}
			}
		}
		w0, dw := make([]float64, out*in), make([]float64, out*in)
		b0, db := make([]float64, out), make([]float64, out)
		for k := range w0 {
			w0[k], dw[k] = rng.NormFloat64(), rng.NormFloat64()
		}
		for k := range b0 {
			b0[k], db[k] = rng.NormFloat64(), rng.NormFloat64()
		}
		var act nn.Layer
		if leaky {
			act = &nn.Activation{Kind: nn.LeakyReLU, Width: in, Slope: off}
		} else {
			act = &nn.Activation{Kind: nn.ReLU, Width: in}
		}
		sw, _ := nn.SwitchingOf(act)
		c := NewQuadCarry(a, b, w0, dw, b0, db, out, on, off, sw.Branches)
		c.MaxUpdates = rapid.SampledFrom([]int{1, 3, 1 << 30}).Draw(t, "maxUpdates")
		order := rapid.SliceOfN(rapid.IntRange(0, m), 1, 3*m).Draw(t, "order")
		z, zd, zdd := mat.NewDense(n, out, nil), mat.NewDense(n, out, nil), mat.NewDense(n, out, nil)
		wa := make([]float64, out*in)
		h, hd := make([]float64, in), make([]float64, in)
		wz, wzd, wzdd := make([]float64, out), make([]float64, out), make([]float64, out)
		br := make([]int, in)
		x := make([]float64, in)
		for _, j := range order {
			al := alphas[j]
			c.MoveTo(al)
			c.Jet(al, z, zd, zdd)
			for k := range wa {
				wa[k] = w0[k] + al*dw[k]
			}
			for i := 0; i < n; i++ {
				for u := 0; u < in; u++ {
					x[u] = al*b.At(i, u) + a.At(i, u)
				}
				sw.Branches(x, b.RawRowView(i), nil, br)
				for u := range h {
					s := off
					if br[u] == 1 {
						s = on
					}
					h[u], hd[u] = s*x[u], s*b.At(i, u)
				}
				for o := 0; o < out; o++ {
					var v, d, dd float64
					for u := 0; u < in; u++ {
						v += wa[o*in+u] * h[u]
						d += dw[o*in+u]*h[u] + wa[o*in+u]*hd[u]
						dd += 2 * dw[o*in+u] * hd[u]
					}
					wz[o], wzd[o], wzdd[o] = v+b0[o]+al*db[o], d+db[o], dd
				}
				for q, pair := range [][2][]float64{{z.RawRowView(i), wz}, {zd.RawRowView(i), wzd}, {zdd.RawRowView(i), wzdd}} {
					if ok, e := closeRel(pair[0], pair[1], 1e-12); !ok {
						t.Fatalf("α = %g, example %d, part %d: carried %v, direct %v (error %.3g; %d refreshes, %d updates)", al, i, q, pair[0], pair[1], e, c.Refreshes, c.Updates)
					}
				}
			}
		}
	})
}

// drawCarryNet draws an MLP of two or three hidden relu or leaky_relu
// layers (the carryPlan shape) on a few examples, the first of them all
// zero with first-layer biases chosen so that some first-layer units of
// it switch exactly on a point of the dyadic grid alphas (a = b0,
// b = Δb with b0 = −α·Δb exact).
func drawCarryNet(t *rapid.T, alphas []float64) *Path {
	in := rapid.IntRange(1, 4).Draw(t, "in")
	hs := rapid.SliceOfN(rapid.IntRange(1, 16), 2, 3).Draw(t, "hidden")
	k := rapid.IntRange(1, 4).Draw(t, "k")
	act := rapid.SampledFrom([]string{"relu", "relu", "leaky_relu"}).Draw(t, "act")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	widths := append(append([]int{in}, hs...), k)
	m, err := nn.Build(nn.MLPSpec(widths, act, loss))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	rng := rand.New(rand.NewPCG(seed, 5))
	bias0, biasT := m.LayerParams(s0, 0)[1].Data, m.LayerParams(sT, 0)[1].Data
	for u := range bias0 {
		if rng.IntN(2) == 0 {
			d := float64(rng.IntN(9)-4) / 4
			bias0[u] = -alphas[rng.IntN(len(alphas))] * d
			biasT[u] = bias0[u] + d
		}
	}
	n := rapid.IntRange(1, 6).Draw(t, "n")
	x := mat.NewDense(n, in, nil)
	for i := 1; i < n; i++ {
		for j := 0; j < in; j++ {
			x.Set(i, j, 2*rng.NormFloat64())
		}
	}
	var tg nn.Targets
	if loss == "mse" {
		tg.Values = mat.NewDense(n, k, nil)
		for i := range tg.Values.RawMatrix().Data {
			tg.Values.RawMatrix().Data[i] = rng.NormFloat64()
		}
	} else {
		for i := 0; i < n; i++ {
			tg.Labels = append(tg.Labels, rng.IntN(k))
		}
	}
	p, err := New(m, s0, sT, x, tg, Options{Chunk: rapid.IntRange(1, 4).Draw(t, "chunk")})
	if err != nil {
		t.Fatal(err)
	}
	if !p.GridCarried() {
		t.Fatalf("%s MLP %v: not carried", act, widths)
	}
	return p
}

// sameSample fails t unless s equals the plain pass's sample w up to
// tol relative: the loss and its derivatives, the accuracy exactly, and
// every example's γ, γ′, γ″, speed and turning rate.
func sameSample(t interface {
	Helper()
	Fatalf(string, ...any)
}, s, w *Sample, tol float64) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want []float64
	}{
		{"L, L′, L″", []float64{s.Loss, s.DLoss, s.D2Loss}, []float64{w.Loss, w.DLoss, w.D2Loss}},
		{"γ", s.Output.RawMatrix().Data, w.Output.RawMatrix().Data},
		{"γ′", s.Velocity.RawMatrix().Data, w.Velocity.RawMatrix().Data},
		{"γ″", s.Acceleration.RawMatrix().Data, w.Acceleration.RawMatrix().Data},
		{"speed", s.Speed, w.Speed},
		{"turning rate", s.TurningRate, w.TurningRate},
		{"stacked", []float64{s.StackedVV, s.StackedVA, s.StackedAA, s.StackedTurningRate}, []float64{w.StackedVV, w.StackedVA, w.StackedAA, w.StackedTurningRate}},
	} {
		if ok, e := closeRel(c.got, c.want, tol); !ok {
			t.Fatalf("α = %g: %s carried %v, plain pass %v (error %.3g)", s.Alpha, c.name, c.got, c.want, e)
		}
	}
	if s.Accuracy != w.Accuracy {
		t.Fatalf("α = %g: accuracy carried %g, plain pass %g", s.Alpha, s.Accuracy, w.Accuracy)
	}
}

// TestAtGridMatchesAt: on random MLPs of two or three hidden ReLU-family
// layers, AtGrid's samples (the second layer's input carried across the
// grid, refreshed often or never) equal At's full passes at every α of
// the grid up to 1e-12 relative, first-layer kinks placed exactly on grid
// points included (the carry takes the side the pass takes there: a
// wrong side changes γ′ by a weight column, far above the tolerance).
func TestAtGridMatchesAt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.SampledFrom([]int{1, 2, 4, 8, 16}).Draw(t, "m")
		alphas := make([]float64, m+1)
		for j := range alphas {
			alphas[j] = float64(j) / float64(m)
		}
		p := drawCarryNet(t, alphas)
		p.carryRefresh = rapid.SampledFrom([]int{0, 1, 2}).Draw(t, "refresh")
		// the grid in order, or any order with repeats (the carry does
		// not depend on the order)
		grid := alphas
		if rapid.Bool().Draw(t, "shuffled") {
			grid = nil
			for _, j := range rapid.SliceOfN(rapid.IntRange(0, m), 1, 2*m+2).Draw(t, "order") {
				grid = append(grid, alphas[j])
			}
		}
		got := 0
		err := p.AtGrid(context.Background(), grid, func(j int, s *Sample) error {
			if j != got || s.Alpha != grid[j] {
				t.Fatalf("sample %d at α = %g, want %d at %g", j, s.Alpha, got, grid[j])
			}
			got++
			sameSample(t, s, p.At(grid[j]), 1e-12)
			return nil
		})
		if err != nil || got != len(grid) {
			t.Fatalf("%d samples, error %v", got, err)
		}
		if w, ok := p.LastCarryWork(); !ok || w.Refreshes < len(p.Chunks()) {
			t.Fatalf("carry work %+v (%v): want a refresh per chunk at least", w, ok)
		}
	})
}

// TestAtGridPlainElsewhere: a model without the carry's shape (one
// hidden layer, smooth activations) or without a first-layer cache is not
// carried, and AtGrid is then At exactly.
func TestAtGridPlainElsewhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		widths []int
		act    string
		cache  int
	}{
		{[]int{3, 8, 2}, "relu", 0},
		{[]int{3, 8, 8, 2}, "tanh", 0},
		{[]int{3, 8, 8, 2}, "relu", -1},
	} {
		m, err := nn.Build(nn.MLPSpec(c.widths, c.act, "mse"))
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 3)
		sT, _ := nn.Init(m, "pytorch", 2, 4)
		x := mat.NewDense(5, c.widths[0], nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = rng.NormFloat64()
		}
		p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(5, 2, nil)}, Options{FirstLayerCacheBytes: c.cache})
		if err != nil {
			t.Fatal(err)
		}
		if p.GridCarried() {
			t.Fatalf("%v %s cache %d: carried", c.widths, c.act, c.cache)
		}
		grid := []float64{0, 0.3, 1}
		err = p.AtGrid(context.Background(), grid, func(j int, s *Sample) error {
			w := p.At(grid[j])
			if s.Loss != w.Loss || s.DLoss != w.DLoss || !mat.Equal(s.Velocity, w.Velocity) {
				t.Errorf("%v %s: α = %g differs from At", c.widths, c.act, grid[j])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.LastCarryWork(); ok {
			t.Errorf("%v %s: carry work recorded", c.widths, c.act)
		}
	}
}

// TestAtGridCancelled: a cancelled context stops AtGrid with its error.
func TestAtGridCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rapid.Check(t, func(rt *rapid.T) {
		p := drawCarryNet(rt, []float64{0, 0.5, 1})
		if err := p.AtGrid(ctx, []float64{0, 0.5, 1}, func(int, *Sample) error {
			rt.Fatal("a sample after cancellation")
			return nil
		}); err != context.Canceled {
			rt.Fatalf("error %v, want %v", err, context.Canceled)
		}
	})
}

// TestGridCarryLive compares AtGrid with At on the run directory
// CERTIFY_GRID_RUN (skipped when unset; CERTIFY_GRID_EXAMPLES examples,
// default 500; CERTIFY_GRID_ALPHAS α, default 50; the BLAS CERTIFY_BLAS
// names): every sample of the grid to 1e-12 relative, and prints the
// largest errors of L and γ′ and the carry's work (docs/performance.md,
// grid-carry, has them for the benchmark network).
func TestGridCarryLive(t *testing.T) {
	dir := os.Getenv("CERTIFY_GRID_RUN")
	if dir == "" {
		t.Skip("CERTIFY_GRID_RUN not set")
	}
	be, _, err := blasbackend.Select(os.Getenv("CERTIFY_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	be.Use()
	n, alphas := 500, 50
	if s := os.Getenv("CERTIFY_GRID_EXAMPLES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("CERTIFY_GRID_ALPHAS"); s != "" {
		alphas, _ = strconv.Atoi(s)
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.GridCarried() {
		t.Fatal("not carried")
	}
	grid := make([]float64, alphas)
	for j := range grid {
		grid[j] = float64(j) / float64(alphas-1)
	}
	var eL, eV, eA float64
	err = p.AtGrid(context.Background(), grid, func(j int, s *Sample) error {
		w := p.At(grid[j])
		sameSample(t, s, w, 1e-12)
		_, e := closeRel([]float64{s.Loss, s.DLoss, s.D2Loss}, []float64{w.Loss, w.DLoss, w.D2Loss}, 0)
		eL = max(eL, e)
		_, e = closeRel(s.Velocity.RawMatrix().Data, w.Velocity.RawMatrix().Data, 0)
		eV = max(eV, e)
		_, e = closeRel(s.Acceleration.RawMatrix().Data, w.Acceleration.RawMatrix().Data, 0)
		eA = max(eA, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wk, _ := p.LastCarryWork()
	fmt.Printf("grid carry, %d examples × %d α: largest relative error of (L, L′, L″) %.3g, γ′ %.3g, γ″ %.3g; %d refreshes, %d updates (%.2f per example and α), %.2f GFLOP\n",
		n, alphas, eL, eV, eA, wk.Refreshes, wk.Updates, float64(wk.Updates)/float64(n*alphas), wk.FLOPs/1e9)
}

// TestGaussLengthCarriedMatchesPasses: the grid Gauss length with its grid
// points' passes carried (gridCarry, refreshed often or never) equals the
// one with full passes at every grid point: the same kinks per example,
// every example's Gauss length and error estimate to 1e-9, and the loss,
// L′ and accuracy on the grid to 1e-12, on random MLPs of two or three
// hidden ReLU-family layers with first-layer kinks exactly on grid points.
func TestGaussLengthCarriedMatchesPasses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.SampledFrom([]int{2, 4, 8, 16}).Draw(t, "M")
		alphas := make([]float64, m+1)
		for j := range alphas {
			alphas[j] = float64(j) / float64(m)
		}
		p := drawCarryNet(t, alphas)
		p.carryRefresh = rapid.SampledFrom([]int{0, 1, 2}).Draw(t, "refresh")
		o := GaussOptions{Intervals: m, MaxIntervals: m}
		r, err := p.GaussLength(context.Background(), 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := p.LastCarryWork(); !ok || w.Refreshes < len(p.Chunks()) {
			t.Fatalf("carry work %+v (%v)", w, ok)
		}
		p.noCarry = true
		ref, err := p.GaussLength(context.Background(), 0, 1, o)
		p.noCarry = false
		if err != nil {
			t.Fatal(err)
		}
		if r.Kinks != ref.Kinks {
			t.Fatalf("%d kinks carried, %d with full passes", r.Kinks, ref.Kinks)
		}
		for i, g := range ref.PerExample {
			if r.KinkCount[i] != ref.KinkCount[i] {
				t.Fatalf("example %d: %d kinks carried, %d with full passes", i, r.KinkCount[i], ref.KinkCount[i])
			}
			if math.Abs(r.PerExample[i]-g) > 1e-9*(1+g) || math.Abs(r.PerExampleError[i]-ref.PerExampleError[i]) > 1e-9*(1+g) {
				t.Fatalf("example %d: Gauss length %v ± %v carried, %v ± %v with full passes", i, r.PerExample[i], r.PerExampleError[i], g, ref.PerExampleError[i])
			}
		}
		for _, c := range [][2][]float64{{r.Loss, ref.Loss}, {r.DLoss, ref.DLoss}, {r.ArcLength, ref.ArcLength}} {
			if ok, e := closeRel(c[0], c[1], 1e-12); !ok {
				t.Fatalf("grid values carried %v, full passes %v (error %.3g)", c[0], c[1], e)
			}
		}
		for j := range r.Accuracy {
			if r.Accuracy[j] != ref.Accuracy[j] {
				t.Fatalf("accuracy at α = %g: %g carried, %g full", r.Alphas[j], r.Accuracy[j], ref.Accuracy[j])
			}
		}
	})
}

// TestAtGridPerLayerMatchesRestrictedPasses: AtGridPerLayer's split of L′
// by layer equals, for every layer with parameters, L′ of a full pass
// along the line θα → θα + δ_l with δ restricted to that layer's tensors
// (an independent oracle, the definition of THEORY.md §8, as
// certify.PerLayerDLoss evaluates it) to 1e-9, and the contributions sum
// to the sample's L′ to 1e-12, on random MLPs of two hidden ReLU-family
// layers (the split's shape) with mse or cross-entropy; on three hidden
// layers LayerDLoss stays nil.
func TestAtGridPerLayerMatchesRestrictedPasses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.SampledFrom([]int{1, 2, 4}).Draw(t, "m")
		var grid []float64
		for j := 0; j <= m; j++ {
			grid = append(grid, (float64(j)+1.0/3)/float64(m+1)) // off the dyadic kinks drawCarryNet places
		}
		p := drawCarryNet(t, []float64{0, 0.5, 1})
		split := len(p.Model.Layers) == 5
		err := p.AtGridPerLayer(context.Background(), grid, func(j int, s *Sample) error {
			if !split {
				if s.LayerDLoss != nil {
					t.Fatalf("%d layers: split %v", len(p.Model.Layers), s.LayerDLoss)
				}
				return nil
			}
			if len(s.LayerDLoss) != 3 {
				t.Fatalf("split %v: want layers 0, 2, 4", s.LayerDLoss)
			}
			var sum float64
			for l, dl := range s.LayerDLoss {
				sum += dl
				at, end := nn.State{}, nn.State{}
				for key, t0 := range p.Theta0 {
					d := p.Delta[key]
					a := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
					for q := range a.Data {
						a.Data[q] = t0.Data[q] + s.Alpha*d.Data[q]
					}
					at[key], end[key] = a, a
				}
				for _, prm := range p.Model.Layers[l].Params() {
					key := nn.ParamKey(l, prm.Name)
					a, d := at[key], p.Delta[key]
					e := &nn.Tensor{Shape: a.Shape, Data: make([]float64, len(a.Data))}
					for q := range e.Data {
						e.Data[q] = a.Data[q] + d.Data[q]
					}
					end[key] = e
				}
				q, err := New(p.Model, at, end, p.X, p.Targets, Options{FirstLayerCacheBytes: -1})
				if err != nil {
					t.Fatal(err)
				}
				want := q.At(0).DLoss
				if math.Abs(dl-want) > 1e-9*(1+math.Abs(want)) {
					t.Fatalf("α = %g, layer %d: L′ split %v, restricted pass %v", s.Alpha, l, dl, want)
				}
			}
			if math.Abs(sum-s.DLoss) > 1e-12*(1+math.Abs(s.DLoss)) {
				t.Fatalf("α = %g: split sums to %v, L′ %v", s.Alpha, sum, s.DLoss)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestSortedKinks: the kinks listed are exactly the units whose input
// a + αb changes sign strictly inside (lo, hi) (checked at both ends away
// from the kinks), sorted by α, each −a/b; a unit with b = 0 never
// switches.
func TestSortedKinks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(t, "n")
		seed := rapid.Uint64().Draw(t, "seed")
		rng := rand.New(rand.NewPCG(seed, 9))
		a, b := make([]float64, n), make([]float64, n)
		for u := range a {
			a[u], b[u] = rng.NormFloat64(), rng.NormFloat64()
			if rng.IntN(8) == 0 {
				b[u] = 0
			}
		}
		lo := rapid.Float64Range(-1, 1).Draw(t, "lo")
		hi := lo + rapid.Float64Range(0, 2).Draw(t, "h")
		ks := SortedKinks([]UnitKink{{Unit: -1}}, a, b, lo, hi)
		if ks[0].Unit != -1 {
			t.Fatal("dst's own elements changed")
		}
		ks = ks[1:]
		seen := map[int]bool{}
		for q, k := range ks {
			if q > 0 && (k.Alpha < ks[q-1].Alpha || (k.Alpha == ks[q-1].Alpha && k.Unit < ks[q-1].Unit)) {
				t.Fatalf("not sorted: %v", ks)
			}
			if k.Alpha != -a[k.Unit]/b[k.Unit] || !(k.Alpha > lo && k.Alpha <= hi) || seen[k.Unit] {
				t.Fatalf("kink %+v (lo %g, hi %g)", k, lo, hi)
			}
			seen[k.Unit] = true
		}
		for u := range a {
			if b[u] == 0 {
				if seen[u] {
					t.Fatalf("unit %d with b = 0 listed", u)
				}
				continue
			}
			k := -a[u] / b[u]
			if math.Abs(k-lo) < 1e-9 || math.Abs(k-hi) < 1e-9 {
				continue
			}
			flips := (a[u]+lo*b[u] > 0) != (a[u]+hi*b[u] > 0)
			if flips != seen[u] {
				t.Fatalf("unit %d: sign change %v, listed %v (kink %g in (%g, %g])", u, flips, seen[u], k, lo, hi)
			}
		}
	})
}
