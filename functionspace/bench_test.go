package functionspace

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// benchPath builds a path of a random MLP with the given widths on n random
// examples (inputs in [0,1], like MNIST pixels).
func benchPath(b *testing.B, widths []int, n int, opt Options) *Path {
	b.Helper()
	m, err := nn.Build(nn.MLPSpec(widths, "relu", "cross_entropy"))
	if err != nil {
		b.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	rng := rand.New(rand.NewPCG(1, 1))
	x := mat.NewDense(n, widths[0], nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.Float64()
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(widths[len(widths)-1])
	}
	p, err := New(m, s0, sT, x, nn.Targets{Labels: labels}, opt)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkAtDemo times one α of the demo's analysis: a 784-64-10 ReLU MLP
// on 5000 examples (the first layer's products cached).
func BenchmarkAtDemo(b *testing.B) {
	p := benchPath(b, []int{784, 64, 10}, 5000, Options{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.At(float64(i%50) / 49)
	}
}

// The cost bound: for a 784-1024-1024-10 ReLU MLP on 1000 examples,
// one second-order pass (JetChunk without the first layer's cache: W x and
// ΔW x, 2 products, then 5 products per further affine layer, THEORY.md §2)
// does 3.7× the multiply-adds of a forward pass (nn.Model.Forward); its time
// must stay within 1.15× of that, ≤ 4.3×. Both get their parameters at α
// ready-made, outside the timed loop.
var passWidths = []int{784, 1024, 1024, 10}

func BenchmarkForwardPass(b *testing.B) {
	p := benchPath(b, passWidths, 1000, Options{})
	theta := nn.Interpolate(p.Theta0, addState(p.Theta0, p.Delta), 0.5)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Model.Forward(theta, p.X)
	}
}

// BenchmarkSecondOrderPass reuses one workspace across passes, as the
// analysis's workers do (Path.At).
func BenchmarkSecondOrderPass(b *testing.B) {
	p := benchPath(b, passWidths, 1000, Options{Chunk: 1000, FirstLayerCacheBytes: -1})
	ps := p.ParamsAt(0.5)
	ws := new(nn.Workspace)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ws.Reset()
		p.jetChunk(ps, 0, nil, ws)
	}
}

// BenchmarkAtBenchNet times one α of the benchmark network (issue 7): a
// 784-1024-1024-10 ReLU MLP on 2000 examples in chunks of 1000, first layer
// cached — the loop `certify bench` runs 50 times on 5000 examples.
func BenchmarkAtBenchNet(b *testing.B) {
	p := benchPath(b, passWidths, 2000, Options{Chunk: 1000})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.At(float64(i%50) / 49)
	}
}

// BenchmarkSecondOrderPass32 is BenchmarkSecondOrderPass with the layer
// passes in float32 (Options.Precision): blas32.Gemm instead of blas64.Gemm.
func BenchmarkSecondOrderPass32(b *testing.B) {
	p := benchPath(b, passWidths, 1000, Options{Chunk: 1000, FirstLayerCacheBytes: -1, Precision: Float32})
	ps := p.ParamsAt(0.5)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.JetChunk(ps, 0, nil)
	}
}

// BenchmarkAtBenchNet32 is BenchmarkAtBenchNet in float32 (Options.Precision).
func BenchmarkAtBenchNet32(b *testing.B) {
	p := benchPath(b, passWidths, 2000, Options{Chunk: 1000, Precision: Float32})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.At(float64(i%50) / 49)
	}
}
