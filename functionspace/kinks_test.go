package functionspace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/geometry"
	"github.com/certify-mli/certify/nn"
)

// TestRowJetMatchesAt: the per-row-α pass (six products per affine layer,
// each row at its own α) gives the same γ, γ′, γ″ as the batched pass of
// nn.Dense.Jet at a shared α, with and without the first layer's cache.
func TestRowJetMatchesAt(t *testing.T) {
	for _, act := range []string{"relu", "leaky_relu", "tanh"} {
		t.Run(act, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				p := randomPath(t, act, "mse", rapid.IntRange(1, 3).Draw(t, "chunk"))
				if rapid.Bool().Draw(t, "uncached") {
					q, err := New(p.Model, p.Theta0, addState(p.Theta0, p.Delta), p.X, p.Targets, Options{Chunk: p.opt.Chunk, FirstLayerCacheBytes: -1})
					if err != nil {
						t.Fatal(err)
					}
					p = q
				}
				rows := make([]int, 5)
				alphas := make([]float64, 5)
				for r := range rows {
					rows[r] = rapid.IntRange(0, p.N-1).Draw(t, "row")
					alphas[r] = rapid.Float64Range(-0.5, 1.5).Draw(t, "alpha")
				}
				j := p.rowJet(rows, alphas, nil, nil)
				for r, i := range rows {
					s := p.At(alphas[r])
					for part, m := range []*mat.Dense{s.Output, s.Velocity, s.Acceleration} {
						want := m.RawRowView(i)
						got := j.M.RawRowView(part*len(rows) + r)
						for c := range want {
							if math.Abs(got[c]-want[c]) > 1e-11*(1+math.Abs(want[c])) {
								t.Fatalf("row %d (example %d, α = %v) part %d: per-row pass %v, batched %v", r, i, alphas[r], part, got, want)
							}
						}
					}
				}
			})
		})
	}
}

// TestKinksAreCrossings checks every located kink against the exact path:
// the named pre-activation vanishes there, and the one-sided velocities agree
// with the velocity a little before and after (which differs from them by
// at most ε‖γ″‖); and no sign change of any pre-activation on a dense grid is
// missed.
func TestKinksAreCrossings(t *testing.T) {
	for _, act := range []string{"relu", "leaky_relu"} {
		t.Run(act, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				p := randomPath(t, act, "mse", 2)
				i := rapid.IntRange(0, p.N-1).Draw(t, "example")
				ks, err := p.Kinks(context.Background(), i, 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				for g, k := range ks {
					if g > 0 && !(ks[g-1].Alpha < k.Alpha) {
						t.Fatalf("kinks not strictly increasing: %v, %v", ks[g-1].Alpha, k.Alpha)
					}
					z, zd, _ := p.preJet(i, k.Layer, k.Unit, k.Alpha)
					if math.Abs(z) > 1e-12*(1+math.Abs(zd)) {
						t.Fatalf("kink at α = %v (layer %d unit %d): pre-activation %v, ż %v", k.Alpha, k.Layer, k.Unit, z, zd)
					}
					const eps = 1e-7
					for _, c := range []struct {
						name     string
						alpha    float64
						vel, acc []float64
					}{{"left", k.Alpha - eps, k.Left, k.LeftAcc}, {"right", k.Alpha + eps, k.Right, k.RightAcc}} {
						if (g > 0 && c.alpha <= ks[g-1].Alpha) || (g+1 < len(ks) && c.alpha >= ks[g+1].Alpha) {
							continue // another kink within ε
						}
						j := p.rowJet([]int{i}, []float64{c.alpha}, nil, nil)
						v := j.M.RawRowView(1)
						for q := range v {
							if math.Abs(v[q]-c.vel[q]) > 2*eps*(1+math.Abs(c.acc[q]))+1e-9*(1+math.Abs(v[q])) {
								t.Fatalf("kink at α = %v: %s velocity %v, path at %v has %v", k.Alpha, c.name, c.vel, c.alpha, v)
							}
						}
					}
				}
				// Sign changes on a dense grid, counted per unit, are at most the kinks found.
				const n = 2000
				rows, alphas := make([]int, n+1), make([]float64, n+1)
				for j := range rows {
					rows[j], alphas[j] = i, float64(j)/n
				}
				pre := map[int]*nn.Jet{}
				p.rowJet(rows, alphas, nil, pre)
				changes := 0
				var where []string
				for l, m := range pre {
					z := m.Value()
					_, w := z.Dims()
					for u := 0; u < w; u++ {
						for j := 0; j < n; j++ {
							if (z.At(j, u) > 0) != (z.At(j+1, u) > 0) {
								changes++
								where = append(where, fmt.Sprintf("layer %d unit %d in [%v, %v]", l, u, alphas[j], alphas[j+1]))
							}
						}
					}
				}
				if changes > len(ks) {
					var found []string
					for _, k := range ks {
						found = append(found, fmt.Sprintf("layer %d unit %d at %v", k.Layer, k.Unit, k.Alpha))
					}
					t.Fatalf("%d sign changes on a grid of %d, %d kinks located:\nchanges %v\nkinks %v", changes, n, len(ks), where, found)
				}
			})
		})
	}
}

// TestExampleGaussLengthCorner: the two-leg path of cornerNet has G = β,
// all of it in one corner, located at α = 1/2.
func TestExampleGaussLengthCorner(t *testing.T) {
	for _, beta := range []float64{0.3, 1.2, 0.9 * math.Pi} {
		m, s0, sT := cornerNet(beta)
		p, err := New(m, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 2, nil)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ks, err := p.Kinks(context.Background(), 0, 0, 1)
		if err != nil || len(ks) != 1 || ks[0].Alpha != 0.5 {
			t.Fatalf("kinks %+v, %v; want one at 1/2", ks, err)
		}
		g, err := p.ExampleGaussLength(context.Background(), 0, 0, 1, 1e-10)
		if err != nil || math.Abs(g.Value-beta) > 1e-12 || math.Abs(g.Corners-beta) > 1e-12 {
			t.Errorf("β = %v: %+v, %v", beta, g, err)
		}
	}
}

// compareOracle runs GaussLength on a grid of m intervals and checks every
// example against ExampleGaussLength within the sum of the error estimates.
func compareOracle(t fatalLogger, p *Path, m int, slack float64) *GaussResult {
	r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: m, MaxIntervals: m})
	if err != nil {
		t.Fatalf("%v", err)
	}
	for i := 0; i < p.N; i++ {
		g, err := p.ExampleGaussLength(context.Background(), i, 0, 1, 1e-10)
		if errors.Is(err, geometry.ErrZeroSpeed) {
			continue
		}
		if err != nil && !errors.Is(err, geometry.ErrNotConverged) {
			t.Fatalf("example %d: %v", i, err)
		}
		if d := math.Abs(r.PerExample[i] - g.Value); d > r.PerExampleError[i]+g.ErrorEstimate+slack {
			t.Fatalf("example %d: batched %v ± %v, oracle %v ± %v (%d kinks)", i, r.PerExample[i], r.PerExampleError[i], g.Value, g.ErrorEstimate, r.KinkCount[i])
		}
	}
	return r
}

// smallNet is a random MLP with the given widths and activation on n
// random examples (θ0 at scale 1, θT at scale 2, seeded).
func smallNet(t testing.TB, widths []int, act string, n int, seed uint64) *Path {
	m, err := nn.Build(nn.MLPSpec(widths, act, "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	rng := rand.New(rand.NewPCG(seed, 9))
	x := mat.NewDense(n, widths[0], nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, widths[len(widths)-1], nil)}, Options{Chunk: 3})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fatalLogger interface {
	Fatalf(string, ...any)
	Logf(string, ...any)
}

// TestGaussLengthMatchesOracle: on random ReLU and leaky-ReLU networks with
// two hidden layers the batched, kink-aware Gauss length agrees with the
// adaptive per-example oracle within the sum of their error estimates, plus
// 1e-6 for what neither sees: a pair of crossings of a deeper unit closer
// together than both the grid and the oracle's sweep (a pre-activation
// touching 0), which changes G by a few 1e-8 in the cases seen.
func TestGaussLengthMatchesOracle(t *testing.T) {
	for _, act := range []string{"relu", "leaky_relu"} {
		for seed := uint64(0); seed < 6; seed++ {
			p := smallNet(t, []int{2, 6, 6, 3}, act, 5, seed)
			compareOracle(t, p, 512, 1e-6)
		}
	}
}

// TestGaussLengthSmooth: on tanh networks the batched value agrees with the
// oracle to 1e-6 and no kinks are reported.
func TestGaussLengthSmooth(t *testing.T) {
	for seed := uint64(0); seed < 6; seed++ {
		p := smallNet(t, []int{2, 6, 6, 3}, "tanh", 5, seed)
		r := compareOracle(t, p, 2048, 1e-6)
		if r.Kinks != 0 || r.ExtraRows != 0 {
			t.Fatalf("%d kinks, %d extra rows on a smooth path", r.Kinks, r.ExtraRows)
		}
		for i := range r.PerExample {
			g, err := p.ExampleGaussLength(context.Background(), i, 0, 1, 1e-10)
			if err == nil && math.Abs(g.Value-r.PerExample[i]) > 1e-6 {
				t.Fatalf("seed %d example %d: batched %v, oracle %v", seed, i, r.PerExample[i], g.Value)
			}
		}
	}
}

// deepReLU is a fixed 3-16-16-16-2 ReLU network on 4 examples: its paths are
// polynomials of degree up to 4 between kinks, so the one-sided velocities
// extrapolated from the grid are O(h²) accurate, not exact.
func deepReLU(t *testing.T) *Path {
	m, err := nn.Build(nn.MLPSpec([]int{3, 16, 16, 16, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 3)
	sT, _ := nn.Init(m, "pytorch", 2, 4)
	rng := rand.New(rand.NewPCG(5, 6))
	x := mat.NewDense(4, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(4, 2, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGaussLengthConverges: on a deep ReLU network, whose paths are
// polynomials of degree up to 4 between kinks, the batched mean converges to
// the oracle at least as fast as O(h²) (the error at M = 512 is below 1/64 of
// that at M = 64), and from M = 128 on the error estimate is honest.
func TestGaussLengthConverges(t *testing.T) {
	p := deepReLU(t)
	var exact float64
	for i := 0; i < p.N; i++ {
		g, err := p.ExampleGaussLength(context.Background(), i, 0, 1, 1e-12)
		if err != nil {
			t.Fatal(err)
		}
		exact += g.Value / float64(p.N)
	}
	var first float64
	for _, m := range []int{64, 128, 256, 512} {
		r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: m, MaxIntervals: m})
		if err != nil {
			t.Fatal(err)
		}
		e := math.Abs(r.Mean - exact)
		t.Logf("M = %d: mean %.12f, error %.3g, estimate %.3g, kinks %d, extra rows %d", m, r.Mean, e, r.MeanError, r.Kinks, r.ExtraRows)
		if m == 64 {
			first = e
		} else if e > 2*r.MeanError+1e-9 {
			t.Errorf("M = %d: error %v above twice the estimate %v", m, e, r.MeanError)
		}
		if m == 512 && e > first/64 {
			t.Errorf("error %v at M = 512, %v at M = 64: slower than O(h²)", e, first)
		}
	}
}
