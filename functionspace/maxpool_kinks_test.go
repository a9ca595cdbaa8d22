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

// maxPoolCNN builds conv2d (1 → o channels, kernel kc, padding pc) → act
// (none, relu, tanh) → maxpool2d (kernel 2, stride s) → flatten →
// [linear → relu when hidden] → linear to 2 outputs on h×h inputs, θ0 at
// init scale 1 and θT at scale 2 (seeded), n random examples, targets 0.
func maxPoolCNN(t fatalLogger, h, o, kc, pc, s int, act string, hidden bool, n int, seed uint64) *Path {
	layers := []nn.LayerSpec{{Type: "conv2d", In: 1, Out: o, Kernel: nn.IntPair{kc}, Padding: nn.IntPair{pc}}}
	if act != "none" {
		layers = append(layers, nn.LayerSpec{Type: act})
	}
	layers = append(layers, nn.LayerSpec{Type: "maxpool2d", Kernel: nn.IntPair{2}, Stride: nn.IntPair{s}}, nn.LayerSpec{Type: "flatten"})
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, h, h}, Loss: "mse", Layers: layers}
	shape := spec.InputShape
	for _, ls := range layers {
		_, out, err := nn.BuildLayer(ls, shape)
		if err != nil {
			t.Fatalf("%v", err)
		}
		shape = out
	}
	if hidden {
		spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: shape[0], Out: 3}, nn.LayerSpec{Type: "relu"})
		shape = []int{3}
	}
	spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: shape[0], Out: 2})
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	rng := rand.New(rand.NewPCG(seed, 11))
	x := mat.NewDense(n, h*h, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, 2, nil)}, Options{Chunk: 2})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// drawMaxPoolCNN draws maxPoolCNN's settings.
func drawMaxPoolCNN(t *rapid.T) *Path {
	return maxPoolCNN(t,
		rapid.IntRange(4, 6).Draw(t, "h"),
		rapid.IntRange(1, 2).Draw(t, "o"),
		rapid.IntRange(2, 3).Draw(t, "kc"),
		rapid.IntRange(0, 1).Draw(t, "pc"),
		rapid.IntRange(1, 2).Draw(t, "stride"),
		rapid.SampledFrom([]string{"none", "relu", "tanh"}).Draw(t, "act"),
		rapid.Bool().Draw(t, "hidden"),
		rapid.IntRange(1, 3).Draw(t, "n"),
		rapid.Uint64().Draw(t, "seed"))
}

// forwardSites runs example i through p's model at θ(α) by plain forward
// passes (nn.Model.ForwardTrace, no jets) and returns the input of every
// layer and the output γ_i(α).
func forwardSites(p *Path, i int, alpha float64) (ins [][]float64, out []float64) {
	s := nn.Interpolate(p.Theta0, addState(p.Theta0, p.Delta), alpha)
	x := mat.NewDense(1, p.X.RawMatrix().Cols, append([]float64(nil), p.X.RawRowView(i)...))
	acts := p.Model.ForwardTrace(s, x)
	for _, a := range acts[:len(acts)-1] {
		ins = append(ins, a.RawRowView(0))
	}
	return ins, acts[len(acts)-1].RawRowView(0)
}

// switchState is the oracle's branch of every switch unit of every kinked
// layer from its forward input x: a ReLU unit's sign (z > 0), a max-pool
// window's first maximal input, found by scanning the window from the
// layer's kernel, stride and padding (not from the layer's own tables).
func switchState(l nn.Layer, x []float64) []int {
	switch l := l.(type) {
	case *nn.MaxPool2d:
		var out []int
		for c := 0; c < l.C; c++ {
			for oh := 0; oh < l.OH; oh++ {
				for ow := 0; ow < l.OW; ow++ {
					best := -1
					for dh := 0; dh < l.KH; dh++ {
						for dw := 0; dw < l.KW; dw++ {
							hh, ww := oh*l.SH-l.PH+dh, ow*l.SW-l.PW+dw
							if hh < 0 || hh >= l.H || ww < 0 || ww >= l.W {
								continue
							}
							k := c*l.H*l.W + hh*l.W + ww
							if best < 0 || x[k] > x[best] {
								best = k
							}
						}
					}
					out = append(out, best)
				}
			}
		}
		return out
	case *nn.Activation:
		if !l.Kinked() {
			return nil
		}
		out := make([]int, len(x))
		for u, z := range x {
			if z > 0 {
				out[u] = 1
			}
		}
		return out
	}
	return nil
}

// kinkSwitches lists every switch of a kink, the merged ones included.
func kinkSwitches(k Kink) []Switch {
	return append([]Switch{{k.Layer, k.Unit, k.From, k.To}}, k.Merged...)
}

// TestMaxPoolKinks: on random small CNNs with a max-pool (after conv2d
// directly, after a ReLU or after tanh; windows overlapping or not; with or
// without a ReLU layer after it), every change of a window's arg-max (and
// of a ReLU's side) between neighbours of a grid of 2000 α, computed by
// plain forward passes, is bracketed by a located kink of that layer and
// unit; every located switch is a zero of its switching function (x_From =
// x_To for a window, z = 0 for a ReLU) in the forward pass; and the
// one-sided velocities agree with one-sided finite differences of the
// forward path γ_i(α) from each side.
func TestMaxPoolKinks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawMaxPoolCNN(t)
		i := rapid.IntRange(0, p.N-1).Draw(t, "example")
		ks, err := p.Kinks(context.Background(), i, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		for g, k := range ks {
			if g > 0 && !(ks[g-1].Alpha < k.Alpha) {
				t.Fatalf("kinks not strictly increasing: %v, %v", ks[g-1].Alpha, k.Alpha)
			}
			ins, _ := forwardSites(p, i, k.Alpha)
			for _, sw := range kinkSwitches(k) {
				x := ins[sw.Layer]
				xd := p.rowJetVelocityIn(i, sw.Layer, k.Alpha)
				var s, sd float64
				switch l := p.Model.Layers[sw.Layer].(type) {
				case *nn.MaxPool2d:
					if sw.From == sw.To || sw.From < 0 || sw.To < 0 {
						t.Fatalf("kink %+v: from %d to %d", k, sw.From, sw.To)
					}
					s, sd = x[sw.From]-x[sw.To], xd[sw.From]-xd[sw.To]
					_ = l
				default:
					s, sd = x[sw.Unit], xd[sw.Unit]
				}
				if math.Abs(s) > 1e-10*(1+math.Abs(sd)) {
					t.Fatalf("kink at α = %v (%+v): switching function %v (derivative %v) in the forward pass", k.Alpha, sw, s, sd)
				}
			}
			// One-sided finite differences of the forward path, second order:
			// (−3γ(α) + 4γ(α ± h) − γ(α ± 2h)) / (±2h).
			const h = 1e-5
			_, g0 := forwardSites(p, i, k.Alpha)
			for _, c := range []struct {
				name string
				dir  float64
				vel  []float64
			}{{"left", -1, k.Left}, {"right", 1, k.Right}} {
				near := false
				for _, o := range ks {
					d := (o.Alpha - k.Alpha) * c.dir
					near = near || (d > 0 && d <= 2*h*(1+1e-9))
				}
				if near {
					continue // another kink within the stencil
				}
				_, g1 := forwardSites(p, i, k.Alpha+c.dir*h)
				_, g2 := forwardSites(p, i, k.Alpha+c.dir*2*h)
				for q := range g0 {
					fd := (-3*g0[q] + 4*g1[q] - g2[q]) / (c.dir * 2 * h)
					if math.Abs(fd-c.vel[q]) > 1e-5*(1+math.Abs(fd)) {
						t.Fatalf("kink at α = %v (%+v): %s velocity %v, finite difference %v (output %d)", k.Alpha, kinkSwitches(k), c.name, c.vel, fd, q)
					}
				}
			}
		}
		// Every switch on a dense grid of α is bracketed by a located kink.
		const n = 2000
		prevIns, _ := forwardSites(p, i, 0)
		prev := make([][]int, len(prevIns))
		for l, x := range prevIns {
			prev[l] = switchState(p.Model.Layers[l], x)
		}
		for j := 1; j <= n; j++ {
			a, b := float64(j-1)/n, float64(j)/n
			ins, _ := forwardSites(p, i, b)
			for l, x := range ins {
				cur := switchState(p.Model.Layers[l], x)
				for u := range cur {
					if cur[u] == prev[l][u] {
						continue
					}
					found := false
					for _, k := range ks {
						for _, sw := range kinkSwitches(k) {
							found = found || (sw.Layer == l && sw.Unit == u && k.Alpha > a-1e-12 && k.Alpha <= b+1e-12)
						}
					}
					if !found {
						var list []string
						for _, k := range ks {
							list = append(list, fmt.Sprintf("%v %+v", k.Alpha, kinkSwitches(k)))
						}
						t.Fatalf("layer %d (%s) unit %d switches %d → %d in [%v, %v], no kink located there; kinks:\n%v",
							l, p.Model.Layers[l].Type(), u, prev[l][u], cur[u], a, b, list)
					}
				}
				prev[l] = cur
			}
		}
	})
}

// rowJetVelocityIn returns the velocity of the input of site l of example
// i at α (per-row pass).
func (p *Path) rowJetVelocityIn(i, l int, alpha float64) []float64 {
	pre := map[int]*nn.Jet{}
	p.rowJet([]int{i}, []float64{alpha}, nil, pre)
	if pre[l] == nil {
		return make([]float64, p.Model.Layers[l].InSize())
	}
	return pre[l].Velocity().RawRowView(0)
}

// polygonGauss is a fine-grid oracle of the Gauss length of example i's
// output path on [0, 1] that does not use the kink machinery: the sum of
// the angles between the tangents of consecutive points (p.At, the batched
// jet pass) of a uniform grid of m intervals, each interval whose angle is
// more than twice what the turning rates at its ends allow (a corner
// inside) bisected until it is not or is narrower than 1e-11. On smooth
// pieces the sum is the turning up to O(h²); at a corner it tends to the
// corner's angle plus the turning on either side (THEORY.md §3).
func polygonGauss(p *Path, i, m int) (float64, error) {
	type pt struct {
		v    []float64
		rate float64
	}
	at := func(alpha float64) (pt, error) {
		s := p.At(alpha)
		v := append([]float64(nil), s.Velocity.RawRowView(i)...)
		if s.Speed[i] == 0 {
			return pt{}, fmt.Errorf("zero speed at α = %v", alpha)
		}
		return pt{v, s.TurningRate[i]}, nil
	}
	var rec func(a, b float64, pa, pb pt, depth int) (float64, error)
	rec = func(a, b float64, pa, pb pt, depth int) (float64, error) {
		ang, err := geometry.CornerAngle(pa.v, pb.v)
		if err != nil {
			return 0, err
		}
		if ang <= 2*(b-a)*math.Max(pa.rate, pb.rate)+1e-12 || b-a < 1e-11 || depth > 60 {
			return ang, nil
		}
		mid := a + (b-a)/2
		pm, err := at(mid)
		if err != nil {
			return 0, err
		}
		l, err := rec(a, mid, pa, pm, depth+1)
		if err != nil {
			return 0, err
		}
		r, err := rec(mid, b, pm, pb, depth+1)
		return l + r, err
	}
	var sum float64
	prev, err := at(0)
	if err != nil {
		return 0, err
	}
	for j := 1; j <= m; j++ {
		a, b := float64(j-1)/float64(m), float64(j)/float64(m)
		cur, err := at(b)
		if err != nil {
			return 0, err
		}
		g, err := rec(a, b, prev, cur, 0)
		if err != nil {
			return 0, err
		}
		sum += g
		prev = cur
	}
	return sum, nil
}

// TestMaxPoolGaussLength: on paths through a max-pool (directly after a
// conv2d, and after a ReLU with a ReLU layer after the pool), the Gauss
// length with corners, batched (GaussLength) and per example
// (ExampleGaussLength, from the located kinks), agrees with the fine-grid
// oracle polygonGauss, and the arg-max switches add corners (the
// max-pool's kinks are counted).
func TestMaxPoolGaussLength(t *testing.T) {
	for _, c := range []struct {
		act    string
		stride int
		hidden bool
		seed   uint64
	}{{"none", 2, false, 1}, {"none", 1, false, 2}, {"relu", 2, true, 3}, {"tanh", 1, true, 4}} {
		t.Run(fmt.Sprintf("%s-stride%d-hidden%v", c.act, c.stride, c.hidden), func(t *testing.T) {
			p := maxPoolCNN(t, 5, 2, 2, 0, c.stride, c.act, c.hidden, 2, c.seed)
			r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 512, MaxIntervals: 512})
			if err != nil {
				t.Fatal(err)
			}
			pool := -1
			for l, layer := range p.Model.Layers {
				if layer.Type() == "maxpool2d" {
					pool = l
				}
			}
			poolKinks := 0
			for i := 0; i < p.N; i++ {
				oracle, err := polygonGauss(p, i, 4000)
				if err != nil {
					t.Logf("example %d: oracle: %v (skipped)", i, err)
					continue
				}
				ks, err := p.Kinks(context.Background(), i, 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range ks {
					for _, sw := range kinkSwitches(k) {
						if sw.Layer == pool {
							poolKinks++
						}
					}
				}
				g, err := p.ExampleGaussLength(context.Background(), i, 0, 1, 1e-10)
				if err != nil && !errors.Is(err, geometry.ErrNotConverged) {
					t.Fatalf("example %d: %v", i, err)
				}
				t.Logf("example %d: oracle %.10f, ExampleGaussLength %.10f (corners %.6f, %d kinks), GaussLength %.10f ± %.2g (%d kinks)",
					i, oracle, g.Value, g.Corners, len(ks), r.PerExample[i], r.PerExampleError[i], r.KinkCount[i])
				if d := math.Abs(g.Value - oracle); d > 1e-6 {
					t.Errorf("example %d: ExampleGaussLength %v, oracle %v", i, g.Value, oracle)
				}
				if d := math.Abs(r.PerExample[i] - oracle); d > r.PerExampleError[i]+1e-6 {
					t.Errorf("example %d: GaussLength %v ± %v, oracle %v", i, r.PerExample[i], r.PerExampleError[i], oracle)
				}
			}
			if poolKinks == 0 {
				t.Errorf("no arg-max switch located: the case does not test max-pool corners")
			}
		})
	}
}
