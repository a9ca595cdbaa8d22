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

// drawJumpNet draws a small network whose kinks exercise every way
// carryJumps carries a jump: an MLP of 1–3 hidden layers, each with a
// drawn activation (relu, leaky_relu, tanh, gelu) and sometimes a
// layernorm or batchnorm1d after its linear layer (per-row rules on the
// changed input), or a conv net (conv2d → relu → [conv2d → act] →
// [avgpool2d] → flatten → [linear → relu] → linear: Conv2d's JumpRows, a
// parameter-free pooling layer), or maxPoolCNN (max-pool may tie: the
// general path).
func drawJumpNet(t *rapid.T) *Path {
	seed := rapid.Uint64().Draw(t, "seed")
	n := rapid.IntRange(1, 3).Draw(t, "n")
	var spec *nn.Spec
	var in int
	switch rapid.SampledFrom([]string{"mlp", "mlp", "conv", "maxpool"}).Draw(t, "kind") {
	case "maxpool":
		return drawMaxPoolCNN(t)
	case "mlp":
		in = rapid.IntRange(1, 4).Draw(t, "in")
		spec = &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{in}, Loss: "mse"}
		w := in
		for l := rapid.IntRange(1, 3).Draw(t, "hidden layers"); l > 0; l-- {
			h := rapid.IntRange(1, 6).Draw(t, "width")
			spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: w, Out: h})
			switch rapid.SampledFrom([]string{"", "", "", "layernorm", "batchnorm1d"}).Draw(t, "norm") {
			case "layernorm":
				spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "layernorm"})
			case "batchnorm1d":
				spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "batchnorm1d", In: h})
			}
			spec.Layers = append(spec.Layers, nn.LayerSpec{Type: rapid.SampledFrom([]string{"relu", "relu", "leaky_relu", "tanh", "gelu"}).Draw(t, "act")})
			w = h
		}
		spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: w, Out: rapid.IntRange(1, 3).Draw(t, "k")})
	default:
		h := rapid.IntRange(4, 6).Draw(t, "h")
		in = h * h
		o := rapid.IntRange(1, 2).Draw(t, "o")
		spec = &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, h, h}, Loss: "mse",
			Layers: []nn.LayerSpec{{Type: "conv2d", In: 1, Out: o, Kernel: nn.IntPair{rapid.IntRange(2, 3).Draw(t, "k1")}, Padding: nn.IntPair{1}}, {Type: "relu"}}}
		if rapid.Bool().Draw(t, "second conv") {
			spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "conv2d", In: o, Out: 2, Kernel: nn.IntPair{2}},
				nn.LayerSpec{Type: rapid.SampledFrom([]string{"relu", "leaky_relu", "tanh"}).Draw(t, "act2")})
		}
		if rapid.Bool().Draw(t, "avgpool") {
			spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "avgpool2d", Kernel: nn.IntPair{2}})
		}
		spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "flatten"})
		shape := spec.InputShape
		for _, ls := range spec.Layers {
			_, out, err := nn.BuildLayer(ls, shape)
			if err != nil {
				t.Fatal(err)
			}
			shape = out
		}
		if rapid.Bool().Draw(t, "hidden") {
			spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: shape[0], Out: 3}, nn.LayerSpec{Type: "relu"})
			shape = []int{3}
		}
		spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: shape[0], Out: 2})
	}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	rng := rand.New(rand.NewPCG(seed, 5))
	x := mat.NewDense(n, in, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, m.OutSize(), nil)}, Options{Chunk: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// general runs f with p evaluating both sides of every kink.
func general(p *Path, f func()) {
	p.noJumps = true
	defer func() { p.noJumps = false }()
	f()
}

// jetScale is 1 + the largest |element| of the vectors.
func jetScale(vs ...[]float64) float64 {
	s := 1.0
	for _, v := range vs {
		for _, x := range v {
			s = math.Max(s, 1+math.Abs(x))
		}
	}
	return s
}

// TestCarriedJetsMatchBothSides: the one-sided jets at every kink of
// Path.Kinks with the right side carried from the left (carryJumps) equal
// those of the general path, which evaluates both sides, up to rounding,
// on random MLPs (several activations, layernorm, batchnorm1d) and conv
// nets with and without max-pool.
func TestCarriedJetsMatchBothSides(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawJumpNet(t)
		for i := 0; i < p.N; i++ {
			ks, err := p.Kinks(context.Background(), i, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			var kg []Kink
			general(p, func() { kg, err = p.Kinks(context.Background(), i, 0, 1) })
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) != len(kg) {
				t.Fatalf("example %d: %d kinks carried, %d general", i, len(ks), len(kg))
			}
			for g := range ks {
				a, b := ks[g], kg[g]
				if a.Alpha != b.Alpha {
					t.Fatalf("kink %d at α = %v carried, %v general", g, a.Alpha, b.Alpha)
				}
				tol := 1e-10 * jetScale(b.Left, b.Right, b.LeftAcc, b.RightAcc)
				for part, pair := range [][2][]float64{{a.Left, b.Left}, {a.Right, b.Right}, {a.LeftAcc, b.LeftAcc}, {a.RightAcc, b.RightAcc}} {
					for c := range pair[0] {
						if math.Abs(pair[0][c]-pair[1][c]) > tol {
							t.Fatalf("example %d kink %d (α = %v, site %d unit %d) part %d: carried %v, general %v", i, g, a.Alpha, a.Layer, a.Unit, part, pair[0], pair[1])
						}
					}
				}
			}
		}
	})
}

// TestCarriedGaussLengthMatches: the grid Gauss length (Path.GaussLength,
// one-sided jets batched across the examples of a chunk) with carried
// right sides equals the general path's up to rounding, with no more rows
// evaluated.
func TestCarriedGaussLengthMatches(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawJumpNet(t)
		o := GaussOptions{Intervals: rapid.SampledFrom([]int{4, 8, 16}).Draw(t, "M")}
		o.MaxIntervals = o.Intervals
		r, err := p.GaussLength(context.Background(), 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		var rg *GaussResult
		general(p, func() { rg, err = p.GaussLength(context.Background(), 0, 1, o) })
		if err != nil {
			t.Fatal(err)
		}
		if r.Kinks != rg.Kinks || r.ExtraRows > rg.ExtraRows {
			t.Fatalf("%d kinks and %d rows carried, %d and %d general", r.Kinks, r.ExtraRows, rg.Kinks, rg.ExtraRows)
		}
		for i, g := range rg.PerExample {
			if math.Abs(r.PerExample[i]-g) > 1e-9*(1+g) || math.Abs(r.PerExampleError[i]-rg.PerExampleError[i]) > 1e-9*(1+g) {
				t.Fatalf("example %d: Gauss length %v ± %v carried, %v ± %v general", i, r.PerExample[i], r.PerExampleError[i], g, rg.PerExampleError[i])
			}
		}
	})
}

// TestCarriedJetsMatchFiniteDifferences checks the carried one-sided jets
// at every kink of random ReLU MLPs against the path on either side: with
// ε = 1e-6 and no other kink within 4ε, γ″(α±) against the difference
// quotient of γ′ at α ± ε and α ± 2ε (error O(ε)), and γ′(α±) against
// γ′(α ± ε) ∓ ε γ″(α±) (error O(ε²)).
func TestCarriedJetsMatchFiniteDifferences(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomPath(t, rapid.SampledFrom([]string{"relu", "leaky_relu"}).Draw(t, "act"), "mse", 2)
		const eps = 1e-6
		for i := 0; i < p.N; i++ {
			ks, err := p.Kinks(context.Background(), i, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			vel := func(alpha float64) []float64 {
				return p.rowJet([]int{i}, []float64{alpha}, nil, nil).M.RawRowView(1)
			}
			for g, k := range ks {
				if (g > 0 && k.Alpha-ks[g-1].Alpha < 4*eps) || (g+1 < len(ks) && ks[g+1].Alpha-k.Alpha < 4*eps) || k.Alpha < 4*eps || k.Alpha > 1-4*eps {
					continue
				}
				scale := jetScale(k.Left, k.Right, k.LeftAcc, k.RightAcc)
				for _, side := range []struct {
					s      float64
					v, acc []float64
				}{{1, k.Right, k.RightAcc}, {-1, k.Left, k.LeftAcc}} {
					v1, v2 := vel(k.Alpha+side.s*eps), vel(k.Alpha+2*side.s*eps)
					for c := range side.v {
						fd := side.s * (v2[c] - v1[c]) / eps
						if math.Abs(fd-side.acc[c]) > 1e-3*scale {
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
