package functionspace

import (
	"context"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/geometry"
	"github.com/certify-mli/certify/nn"
)

func noNaN(t *testing.T, r *GaussResult) {
	t.Helper()
	all := [][]float64{r.PerExample, r.PerExampleError, r.ArcLength, r.ChordDeviation, r.Loss, r.DLoss,
		{r.Mean, r.MeanError, r.Stacked, r.StackedError, r.StackedArcLength, r.ChordDeviationMean}}
	for _, xs := range all {
		for _, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("non-finite value in %+v", r)
			}
		}
	}
}

// TestZeroDelta: θT = θ0, so δ = 0 and every velocity vanishes at every α:
// every grid point is reported in ZeroSpeed, the Gauss lengths are 0, and
// no NaN reaches the result.
func TestZeroDelta(t *testing.T) {
	p := smallNet(t, []int{2, 4, 4, 3}, "relu", 3, 1)
	q, err := New(p.Model, p.Theta0, p.Theta0, p.X, p.Targets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := q.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 8, MaxIntervals: 8})
	if err != nil {
		t.Fatal(err)
	}
	noNaN(t, r)
	if want := 9 * (q.N + 1); len(r.ZeroSpeed) != want {
		t.Errorf("%d zero-speed events, want %d (every example and Γ at 9 points)", len(r.ZeroSpeed), want)
	}
	if r.Mean != 0 || r.Stacked != 0 || len(r.ZeroChord) != q.N {
		t.Errorf("mean %v, stacked %v, zero chords %v", r.Mean, r.Stacked, r.ZeroChord)
	}
}

// TestVelocityVanishesOnce: a one-hidden-unit network with output
// γ(α) = ((α − 10.5)(αx + 9.5), 1): for x = 1 the velocity 2α − 1 vanishes at
// α = 1/2 and the path reverses there (G = π, a cusp); for x = 2 it is
// 4α − 11.5, never 0 on [0, 1] (G = 0).
func TestVelocityVanishesOnce(t *testing.T) {
	m, _ := nn.Build(nn.MLPSpec([]int{1, 1, 2}, "relu", "mse"))
	s0 := nn.State{
		"0.weight": {Shape: []int{1, 1}, Data: []float64{0}},
		"0.bias":   {Shape: []int{1}, Data: []float64{9.5}},
		"2.weight": {Shape: []int{2, 1}, Data: []float64{-10.5, 0}},
		"2.bias":   {Shape: []int{2}, Data: []float64{0, 1}},
	}
	sT := s0.Clone()
	sT["0.weight"].Data[0] = 1
	sT["2.weight"].Data[0] = -9.5
	x := mat.NewDense(2, 1, []float64{1, 2})
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(2, 2, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 16, MaxIntervals: 16})
	if err != nil {
		t.Fatal(err)
	}
	noNaN(t, r)
	if len(r.ZeroSpeed) != 1 || r.ZeroSpeed[0] != (ZeroSpeed{Example: 0, Alpha: 0.5}) {
		t.Errorf("zero speed %v, want example 0 at α = 1/2", r.ZeroSpeed)
	}
	if math.Abs(r.PerExample[0]-math.Pi) > 1e-12 || r.PerExample[1] != 0 {
		t.Errorf("Gauss lengths %v, want [π 0]", r.PerExample)
	}
	if _, err := p.ExampleGaussLength(context.Background(), 0, 0, 1, 1e-9); err == nil {
		t.Error("oracle: no error for a velocity vanishing inside (0, 1)")
	}
}

// TestChordDeviation: the streamed chord deviation equals
// geometry.ChordDeviation on the samples of the same grid with trapezoid
// weights.
func TestChordDeviation(t *testing.T) {
	p := smallNet(t, []int{2, 5, 5, 3}, "tanh", 4, 7)
	const m = 16
	r, err := p.GaussLength(context.Background(), 0.25, 1.5, GaussOptions{Intervals: m, MaxIntervals: m})
	if err != nil {
		t.Fatal(err)
	}
	w := geometry.TrapezoidWeights(r.Alphas)
	var samples []*Sample
	for _, a := range r.Alphas {
		samples = append(samples, p.At(a))
	}
	var mean float64
	for i := 0; i < p.N; i++ {
		var g [][]float64
		for _, s := range samples {
			g = append(g, s.Output.RawRowView(i))
		}
		want, err := geometry.ChordDeviation(g[0], g[m], g, w)
		if err != nil {
			t.Fatal(err)
		}
		mean += want / float64(p.N)
		if math.Abs(r.ChordDeviation[i]-want) > 1e-12*(1+want) {
			t.Errorf("example %d: chord deviation %v, geometry %v", i, r.ChordDeviation[i], want)
		}
	}
	if math.Abs(r.ChordDeviationMean-mean) > 1e-12*(1+mean) || mean == 0 {
		t.Errorf("mean %v, want %v (non-zero)", r.ChordDeviationMean, mean)
	}
}
