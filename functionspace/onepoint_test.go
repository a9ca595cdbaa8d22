package functionspace

import (
	"context"
	"math"
	"reflect"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// onePointPath is randomPath's network, examples and targets on the
// one-point line θT = θ0 (its θ0).
func onePointPath(t *rapid.T, act, loss string, chunk int) *Path {
	q := randomPath(t, act, loss, chunk)
	p, err := New(q.Model, q.Theta0, q.Theta0.Clone(), q.X, q.Targets, Options{Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	if !p.OnePoint() {
		t.Fatal("θT = θ0 but not OnePoint")
	}
	return p
}

// TestOnePointGrid (issue 12: θT = θ0 took 8–10 s of grid and Gauss
// length for a constant loss): on a one-point line AtGrid makes one pass
// (the chunks of one pass start, not one pass per α), and each α's
// sample is At's at that α (an independent full pass: θ0 + α·0 = θ0).
func TestOnePointGrid(t *testing.T) {
	for _, act := range []string{"relu", "tanh"} {
		for _, loss := range []string{"cross_entropy", "mse"} {
			t.Run(act+"/"+loss, func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					p := onePointPath(t, act, loss, rapid.IntRange(1, 3).Draw(t, "chunk"))
					alphas := []float64{0, 0.25, 0.5, 0.75, 1}
					started := 0
					p.chunkStarted = func(int) { started++ }
					var got []*Sample
					err := p.AtGridPerLayer(context.Background(), alphas, func(j int, s *Sample) error {
						got = append(got, s)
						return nil
					})
					p.chunkStarted = nil
					if err != nil {
						t.Fatal(err)
					}
					if started != len(p.Chunks()) {
						t.Fatalf("%d chunks started for %d α, want one pass of %d chunks", started, len(alphas), len(p.Chunks()))
					}
					for j, a := range alphas {
						want, s := p.At(a), got[j]
						if s.Alpha != a || s.Loss != want.Loss || s.DLoss != want.DLoss || s.Accuracy != want.Accuracy || s.D2Loss != want.D2Loss ||
							!mat.Equal(s.Output, want.Output) || !mat.Equal(s.Velocity, want.Velocity) || !reflect.DeepEqual(s.Speed, want.Speed) {
							t.Fatalf("α %v: sample (α %v, L %v, L′ %v, acc %v) differs from At's (L %v, L′ %v, acc %v)", a, s.Alpha, s.Loss, s.DLoss, s.Accuracy, want.Loss, want.DLoss, want.Accuracy)
						}
						if s.DLoss != 0 || s.StackedVV != 0 {
							t.Fatalf("α %v: L′ %v, ‖V‖² %v on a one-point line", a, s.DLoss, s.StackedVV)
						}
					}
				})
			})
		}
	}
}

// TestOnePointGauss: on a one-point line GaussLength makes one pass and
// gives what the grid computation (gaussGrid, one pass per grid point,
// the oracle) gives on the same grid: zero lengths, errors, kinks and
// chord deviations, a zero-speed event per example and grid point, every
// chord zero, the same grid, L (to 1e-15: another pass), L′, accuracy
// and cumulative records.
func TestOnePointGauss(t *testing.T) {
	for _, act := range []string{"relu", "tanh"} {
		for _, loss := range []string{"cross_entropy", "mse"} {
			t.Run(act+"/"+loss, func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					p := onePointPath(t, act, loss, rapid.IntRange(1, 3).Draw(t, "chunk"))
					m := 2 * rapid.IntRange(1, 8).Draw(t, "half intervals")
					record := []float64{0, 0.5, 1}
					started := 0
					p.chunkStarted = func(int) { started++ }
					got, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: m, MaxIntervals: 4 * m, Record: record})
					p.chunkStarted = nil
					if err != nil {
						t.Fatal(err)
					}
					if started != len(p.Chunks()) {
						t.Fatalf("%d chunks started, want one pass of %d chunks", started, len(p.Chunks()))
					}
					want, err := p.gaussGrid(context.Background(), 0, 1, m, nil, record)
					if err != nil {
						t.Fatal(err)
					}
					want.StackedConverged = want.Kinks == 0 && want.StackedError <= 1e-4
					// L from another pass (the grid point's, with its visit)
					// may differ by a rounding: compared to 1e-15, the rest exactly
					for j := range want.Loss {
						if math.Abs(got.Loss[j]-want.Loss[j]) > 1e-15*(1+math.Abs(want.Loss[j])) {
							t.Fatalf("grid point %d: L %v, the grid's %v", j, got.Loss[j], want.Loss[j])
						}
					}
					want.Loss = got.Loss
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("one-point Gauss length differs from the grid's:\n got %+v\nwant %+v", got, want)
					}
					if got.Mean != 0 || got.Stacked != 0 || got.StackedArcLength != 0 || len(got.ZeroSpeed) != (m+1)*(p.N+1) || len(got.ZeroChord) != p.N || math.IsNaN(got.Loss[0]) {
						t.Fatalf("mean %v, stacked %v, arc %v, %d zero-speed events, %d zero chords", got.Mean, got.Stacked, got.StackedArcLength, len(got.ZeroSpeed), len(got.ZeroChord))
					}
				})
			})
		}
	}
}
