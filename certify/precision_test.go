package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// TestRoundingErrorIn checks the closed forms: float64 is RoundingError,
// 1e-12·(1+|L|) + n·2⁻⁵²·|L|; float32 scales the forward term by 2²⁹
// (2⁻²⁴/2⁻⁵³) and keeps the float64 summation term.
func TestRoundingErrorIn(t *testing.T) {
	for _, c := range []struct {
		l float64
		n int
	}{{0, 1}, {0.36, 5000}, {-2, 10}, {2.3, 60000}} {
		sum := float64(c.n) * 0x1p-52 * math.Abs(c.l)
		if got, want := RoundingError(c.l, c.n), 1e-12*(1+math.Abs(c.l))+sum; got != want {
			t.Errorf("RoundingError(%v, %d) = %v, want %v", c.l, c.n, got, want)
		}
		if got, want := RoundingErrorIn(functionspace.Float64, c.l, c.n), RoundingError(c.l, c.n); got != want {
			t.Errorf("float64 (%v, %d): %v, want RoundingError's %v", c.l, c.n, got, want)
		}
		f32 := RoundingErrorIn(functionspace.Float32, c.l, c.n)
		if want := 0x1p29*1e-12*(1+math.Abs(c.l)) + sum; math.Abs(f32-want) > 1e-15*want {
			t.Errorf("float32 (%v, %d): %v, want %v", c.l, c.n, f32, want)
		}
		if f32 < 1e7*RoundingError(c.l, c.n) {
			t.Errorf("float32 (%v, %d): %v is not far above float64's %v", c.l, c.n, f32, RoundingError(c.l, c.n))
		}
	}
}

// TestGridVerdictPrecision: a rise of 1e-5 on L ≈ 1 (far above float64
// rounding, within float32's) is a witness in float64 and not in float32; a
// rise of 1e-2 is one in both.
func TestGridVerdictPrecision(t *testing.T) {
	alphas := []float64{0, 0.5, 1}
	for _, c := range []struct {
		rise      float64
		precision functionspace.Precision
		want      Verdict
	}{
		{1e-5, functionspace.Float64, NonMonotone},
		{1e-5, functionspace.Float32, MonotoneOnGrid},
		{1e-2, functionspace.Float64, NonMonotone},
		{1e-2, functionspace.Float32, NonMonotone},
	} {
		loss := []float64{1, 1 + c.rise, 0.5}
		v, w := gridVerdict(alphas, loss, 0, 1000, c.precision)
		if v != c.want {
			t.Errorf("rise %g in %s: %s, want %s", c.rise, c.precision, v, c.want)
		}
		if w != nil && w.RoundingError != RoundingErrorIn(c.precision, loss[1], 1000)+RoundingErrorIn(c.precision, loss[0], 1000) {
			t.Errorf("rise %g in %s: witness rounding error %v", c.rise, c.precision, w.RoundingError)
		}
	}
}

// TestAnalyzeFloat32 analyses the same small path in both precisions: the
// report states the precision, the losses agree to 1e-5 relative and the
// per-layer L′ (evaluated in the path's precision) sums to L′ to float32
// accuracy.
func TestAnalyzeFloat32(t *testing.T) {
	m, _ := nn.Build(nn.MLPSpec([]int{4, 8, 8, 3}, "tanh", "cross_entropy"))
	s0, _ := nn.Init(m, "pytorch", 1, 5)
	sT, _ := nn.Init(m, "pytorch", 3, 6)
	x, tg := testnets.RandomData(rand.New(rand.NewPCG(5, 5)), 12, 4, 3, "cross_entropy", 1)
	reports := map[functionspace.Precision]*Report{}
	for _, prec := range []functionspace.Precision{"", functionspace.Float32} {
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: 5, Precision: prec})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: 5, NoPerLayer: prec == "", GaussIntervals: 8, GaussMaxIntervals: 8})
		if err != nil {
			t.Fatal(err)
		}
		reports[p.Precision()] = r
	}
	r32, r64 := reports[functionspace.Float32], reports[functionspace.Float64]
	if r32 == nil || r64 == nil || r32.Precision != "float32" || r64.Precision != "float64" {
		t.Fatalf("precision fields: %v", reports)
	}
	for j := range r64.Loss {
		if e := math.Abs(r32.Loss[j]-r64.Loss[j]) / r64.Loss[j]; e > 1e-5 {
			t.Errorf("α=%v: loss %v (float32), %v: relative %.2g", r64.Alphas[j], r32.Loss[j], r64.Loss[j], e)
		}
	}
	if len(r32.PerLayerDLoss) != 3 || r32.PerLayerDLossSumError > 1e-5 {
		t.Errorf("float32 per-layer L′: %d layers, sum error %v", len(r32.PerLayerDLoss), r32.PerLayerDLossSumError)
	}
}
