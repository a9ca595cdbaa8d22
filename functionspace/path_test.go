package functionspace

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
)

func randomPath(t *rapid.T, act, loss string, chunk int) *Path {
	in := rapid.IntRange(1, 4).Draw(t, "in")
	hid := rapid.IntRange(1, 6).Draw(t, "hidden")
	k := rapid.IntRange(2, 4).Draw(t, "k")
	m, err := nn.Build(nn.MLPSpec([]int{in, hid, hid, k}, act, loss))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	n := rapid.IntRange(1, 7).Draw(t, "n")
	rng := rand.New(rand.NewPCG(seed, 9))
	x := mat.NewDense(n, in, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	tg := nn.Targets{Labels: make([]int, n)}
	for i := range tg.Labels {
		tg.Labels[i] = rng.IntN(k)
	}
	if loss == "mse" && rapid.Bool().Draw(t, "float targets") {
		tg = nn.Targets{Values: mat.NewDense(n, k, nil)}
		for i := range tg.Values.RawMatrix().Data {
			tg.Values.RawMatrix().Data[i] = rng.NormFloat64()
		}
	}
	p, err := New(m, s0, sT, x, tg, Options{Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLossDerivativesMatchFiniteDifferences checks L′ and L″ along α (THEORY.md
// §4) against central differences of L computed by plain forward passes at
// interpolated weights, for smooth activations and both losses.
func TestLossDerivativesMatchFiniteDifferences(t *testing.T) {
	for _, act := range []string{"tanh", "gelu", "softplus", "sigmoid"} {
		for _, loss := range []string{"mse", "cross_entropy"} {
			t.Run(act+"/"+loss, func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					p := randomPath(t, act, loss, rapid.IntRange(1, 3).Draw(t, "chunk"))
					alpha := rapid.Float64Range(-0.2, 1.2).Draw(t, "alpha")
					plain := func(a float64) float64 {
						thetaT := nn.State{}
						for k, t0 := range p.Theta0 {
							tt := t0.Clone()
							for j := range tt.Data {
								tt.Data[j] += p.Delta[k].Data[j]
							}
							thetaT[k] = tt
						}
						l, _ := nn.Loss(loss, p.Model.Forward(nn.Interpolate(p.Theta0, thetaT, a), p.X), p.Targets, false)
						return l
					}
					s := p.At(alpha)
					if l := plain(alpha); math.Abs(s.Loss-l) > 1e-12*(1+math.Abs(l)) {
						t.Fatalf("L(%v) = %v along the path, %v by a forward pass", alpha, s.Loss, l)
					}
					d1 := fd.Derivative(plain, alpha, &fd.Settings{Formula: fd.Central})
					d2 := fd.Derivative(plain, alpha, &fd.Settings{Formula: fd.Central2nd})
					if math.Abs(s.DLoss-d1) > 1e-7*(1+math.Abs(d1)) {
						t.Fatalf("L′(%v) = %v, finite differences %v", alpha, s.DLoss, d1)
					}
					if math.Abs(s.D2Loss-d2) > 1e-4*(1+math.Abs(d2)) {
						t.Fatalf("L″(%v) = %v, finite differences %v", alpha, s.D2Loss, d2)
					}
				})
			})
		}
	}
}

// TestChunkingAndCacheDoNotChangeResults: chunk sizes and the first-layer
// cache change the order of work, never the values.
func TestChunkingAndCacheDoNotChangeResults(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomPath(t, "relu", "cross_entropy", 1000)
		q, err := New(p.Model, p.Theta0, nn.Interpolate(p.Theta0, addState(p.Theta0, p.Delta), 1), p.X, p.Targets,
			Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk"), FirstLayerCacheBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		if q.first != nil {
			t.Fatal("cache not disabled")
		}
		alpha := rapid.Float64Range(0, 1).Draw(t, "alpha")
		a, b := p.At(alpha), q.At(alpha)
		for i := range a.Output.RawMatrix().Data {
			for _, pair := range [][2]float64{
				{a.Output.RawMatrix().Data[i], b.Output.RawMatrix().Data[i]},
				{a.Velocity.RawMatrix().Data[i], b.Velocity.RawMatrix().Data[i]},
				{a.Acceleration.RawMatrix().Data[i], b.Acceleration.RawMatrix().Data[i]},
			} {
				if math.Abs(pair[0]-pair[1]) > 1e-12*(1+math.Abs(pair[0])) {
					t.Fatalf("cached %v, uncached %v", pair[0], pair[1])
				}
			}
		}
	})
}

func addState(a, b nn.State) nn.State {
	out := a.Clone()
	for k, t := range out {
		for j := range t.Data {
			t.Data[j] += b[k].Data[j]
		}
	}
	return out
}

// cornerNet builds a one-input ReLU network whose output path is two straight
// legs: velocity e1 until α = 1/2, then (cos β, sin β) (THEORY.md §6's
// two-leg path). Hidden unit 1 is h1 = relu(1 + α), unit 2 is
// h2 = relu(α − 1/2); the output is W2 h with W2 fixed.
func cornerNet(beta float64) (*nn.Model, nn.State, nn.State) {
	m, _ := nn.Build(nn.MLPSpec([]int{1, 2, 2}, "relu", "mse"))
	s0 := nn.State{
		"0.weight": {Shape: []int{2, 1}, Data: []float64{0, 0}},
		"0.bias":   {Shape: []int{2}, Data: []float64{1, -0.5}},
		"2.weight": {Shape: []int{2, 2}, Data: []float64{1, math.Cos(beta) - 1, 0, math.Sin(beta)}},
		"2.bias":   {Shape: []int{2}, Data: []float64{0, 0}},
	}
	sT := s0.Clone()
	sT["0.weight"].Data = []float64{1, 1}
	return m, s0, sT
}

func TestGaussLengthCountsCorners(t *testing.T) {
	for _, beta := range []float64{0.3, math.Pi / 4, 1.2, 0.55 * math.Pi, 0.9 * math.Pi} {
		m, s0, sT := cornerNet(beta)
		x := mat.NewDense(1, 1, []float64{1})
		p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(1, 2, nil)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 63})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.Mean-beta) > 1e-12 || math.Abs(r.Stacked-beta) > 1e-12 {
			t.Errorf("β = %v: Gauss length mean %v, stacked %v", beta, r.Mean, r.Stacked)
		}
		// The paper's trapezoid of ‖T′‖ sees no corner: 0 for a piecewise-linear path.
		var samples []*Sample
		for j := 0; j <= 49; j++ {
			samples = append(samples, p.At(float64(j)/49))
		}
		if g, gs := GaussLengthTrapezoid(samples); g != 0 || gs != 0 {
			t.Errorf("trapezoid Gauss length of a polygon = %v, %v, want 0", g, gs)
		}
	}
}

// TestCumulativeLengths: on the two-leg path, G[0, α] is 0 before the corner
// at α = 1/2 and β after it; S[0, α] = α on the first leg (unit speed).
func TestCumulativeLengths(t *testing.T) {
	beta := 1.0
	m, s0, sT := cornerNet(beta)
	p, err := New(m, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 2, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 64, Record: []float64{0, 0.25, 0.75, 1}})
	if err != nil {
		t.Fatal(err)
	}
	wantG := []float64{0, 0, beta, beta}
	wantS := []float64{0, 0.25}
	if len(r.CumulativeAlphas) != 4 {
		t.Fatalf("recorded at %v", r.CumulativeAlphas)
	}
	for k := range wantG {
		if math.Abs(r.CumulativeGauss[k][0]-wantG[k]) > 1e-12 || math.Abs(r.CumulativeStackedGauss[k]-wantG[k]) > 1e-12 {
			t.Errorf("G[0, %v] = %v (stacked %v), want %v", r.CumulativeAlphas[k], r.CumulativeGauss[k][0], r.CumulativeStackedGauss[k], wantG[k])
		}
		if k < len(wantS) && math.Abs(r.CumulativeArc[k][0]-wantS[k]) > 1e-12 {
			t.Errorf("S[0, %v] = %v, want %v", r.CumulativeAlphas[k], r.CumulativeArc[k][0], wantS[k])
		}
	}
	if math.Abs(r.CumulativeArc[3][0]-r.ArcLength[0]) > 1e-15 {
		t.Errorf("S[0, 1] = %v, total %v", r.CumulativeArc[3][0], r.ArcLength[0])
	}
}

// TestFirstLayerCacheBound checks the cache's budget at its edge: 2·8·N·width
// bytes fit a bound of exactly that many bytes and not one byte less, a
// negative bound never caches, and the default caches all 60,000 MNIST
// images at 1024 units (the issue-7 benchmark network).
func TestFirstLayerCacheBound(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{3, 4, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	n := 7
	x := mat.NewDense(n, 3, nil)
	y := nn.Targets{Values: mat.NewDense(n, 2, nil)}
	need := 2 * 8 * n * 4
	for _, c := range []struct {
		bound int
		want  bool
	}{{need, true}, {need - 1, false}, {-1, false}, {0, true}} {
		p, err := New(m, s0, sT, x, y, Options{FirstLayerCacheBytes: c.bound})
		if err != nil {
			t.Fatal(err)
		}
		if p.FirstLayerCached() != c.want {
			t.Errorf("bound %d bytes for %d: cached %v, want %v", c.bound, need, p.FirstLayerCached(), c.want)
		}
	}
	if 2*8*60000*1024 > DefaultFirstLayerCacheBytes {
		t.Errorf("the default bound %d B does not hold 60,000 × 1024 first-layer products", DefaultFirstLayerCacheBytes)
	}
}
