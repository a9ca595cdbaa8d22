package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// TestAnalyzeCarriedGridMatchesPasses: on a two-hidden-layer ReLU MLP,
// where the grid carries the second layer's input and splits L′ by layer
// from the carry (functionspace.Path.AtGridPerLayer), the report's loss,
// L′ and accuracy on the grid equal full passes (Path.At) to 1e-12, and
// its per-layer L′ equals PerLayerDLoss's restricted passes to 1e-9 and
// sums to L′ to 1e-12, for mse and cross-entropy.
func TestAnalyzeCarriedGridMatchesPasses(t *testing.T) {
	for _, loss := range []string{"cross_entropy", "mse"} {
		m, err := nn.Build(nn.MLPSpec([]int{4, 12, 10, 3}, "relu", loss))
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 31)
		sT, _ := nn.Init(m, "pytorch", 3, 32)
		rng := rand.New(rand.NewPCG(5, 5))
		x := mat.NewDense(9, 4, nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = 2 * rng.NormFloat64()
		}
		tg := nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2, 1, 0, 2}}
		if loss == "mse" {
			v := mat.NewDense(9, 3, nil)
			for i := range v.RawMatrix().Data {
				v.RawMatrix().Data[i] = rng.NormFloat64()
			}
			tg = nn.Targets{Values: v}
		}
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: 4})
		if err != nil {
			t.Fatal(err)
		}
		if !p.GridCarried() {
			t.Fatalf("%s: the grid is not carried", loss)
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: 9, GaussIntervals: 8, GaussMaxIntervals: 16, GaussTol: 1})
		if err != nil {
			t.Fatal(err)
		}
		for j, a := range r.Alphas {
			s := p.At(a)
			for _, c := range [][2]float64{{r.Loss[j], s.Loss}, {r.DLoss[j], s.DLoss}} {
				if math.Abs(c[0]-c[1]) > 1e-12*(1+math.Abs(c[1])) {
					t.Errorf("%s α = %g: report %v, full pass %v", loss, a, c[0], c[1])
				}
			}
			if r.Accuracy[j] != s.Accuracy {
				t.Errorf("%s α = %g: accuracy %v, full pass %v", loss, a, r.Accuracy[j], s.Accuracy)
			}
		}
		want, err := PerLayerDLoss(context.Background(), p, r.Alphas, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.PerLayerDLoss) != len(want) || r.PerLayerDLossSumError > 1e-12 {
			t.Fatalf("%s: %d layers (want %d), sum error %v", loss, len(r.PerLayerDLoss), len(want), r.PerLayerDLossSumError)
		}
		for li, w := range want {
			got := r.PerLayerDLoss[li]
			if got.Layer != w.Layer {
				t.Fatalf("%s: layer %d, want %d", loss, got.Layer, w.Layer)
			}
			for j := range w.DLoss {
				if math.Abs(got.DLoss[j]-w.DLoss[j]) > 1e-9*(1+math.Abs(w.DLoss[j])) {
					t.Errorf("%s α = %g layer %d: split %v, restricted pass %v", loss, r.Alphas[j], w.Layer, got.DLoss[j], w.DLoss[j])
				}
			}
		}
	}
}
