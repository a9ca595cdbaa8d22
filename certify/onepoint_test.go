package certify

import (
	"context"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// TestAnalyzeOnePoint (issue 12: on θT = θ0 the certificate took 0.3 s but
// the whole analysis 8–10 s): on a one-point line the report says what a
// constant loss and a one-point output path are, exactly — L at every
// grid α is At's at any α (an independent full pass), L′ and every
// per-layer L′ 0, Δ, the continuous Δ and the barrier 0 (the barrier's
// chord no longer rounds off a flat L), no bump, every Gauss and arc
// length 0, a zero-speed event per example (and the stacked path) at
// every point of the Gauss length's grid, and the certificate's Δ ∈
// [0, 0] — for cross-entropy and mse (whose theorem conditions read the
// Gauss length's records). functionspace's TestOnePointGrid and
// TestOnePointGauss check that the grid and the Gauss length make one
// pass.
func TestAnalyzeOnePoint(t *testing.T) {
	for _, loss := range []string{"cross_entropy", "mse"} {
		m, err := nn.Build(nn.MLPSpec([]int{3, 6, 5, 4}, "relu", loss))
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 7)
		rng := rand.New(rand.NewPCG(7, 7))
		const n = 11
		x := mat.NewDense(n, 3, nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = rng.NormFloat64()
		}
		tg := nn.Targets{Labels: make([]int, n)}
		for i := range tg.Labels {
			tg.Labels[i] = rng.IntN(4)
		}
		p, err := functionspace.New(m, s0, s0.Clone(), x, tg, functionspace.Options{Chunk: 4})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Analyze(context.Background(), p, Options{Certificate: true})
		if err != nil {
			t.Fatal(err)
		}
		at := p.At(0.3)
		for j := range r.Alphas {
			if r.Loss[j] != at.Loss || r.Accuracy[j] != at.Accuracy || r.DLoss[j] != 0 {
				t.Fatalf("%s: α %v: L %v, accuracy %v, L′ %v; At: L %v, accuracy %v", loss, r.Alphas[j], r.Loss[j], r.Accuracy[j], r.DLoss[j], at.Loss, at.Accuracy)
			}
		}
		if r.Delta != 0 || r.DeltaContinuous != 0 || r.BarrierHeight != 0 || len(r.Bumps) != 0 {
			t.Fatalf("%s: Δ %v, continuous %v, barrier %v, bumps %v", loss, r.Delta, r.DeltaContinuous, r.BarrierHeight, r.Bumps)
		}
		if r.GaussLengthMean != 0 || r.GaussLengthMeanError != 0 || r.GaussLengthStacked != 0 || r.GaussLengthStackedError != 0 ||
			r.GaussLengthMeanTrapezoid != 0 || r.GaussLengthStackedTrapezoid != 0 || r.ArcLength != 0 || r.ArcLengthMean != 0 ||
			r.GaussLengthStackedConverged == nil || !*r.GaussLengthStackedConverged {
			t.Fatalf("%s: Gauss length mean %v ± %v, stacked %v ± %v (converged %v), trapezoid %v, %v, arc %v, %v", loss, r.GaussLengthMean, r.GaussLengthMeanError,
				r.GaussLengthStacked, r.GaussLengthStackedError, r.GaussLengthStackedConverged, r.GaussLengthMeanTrapezoid, r.GaussLengthStackedTrapezoid, r.ArcLength, r.ArcLengthMean)
		}
		for i, g := range r.GaussLengthPerExample {
			if g != 0 {
				t.Fatalf("%s: example %d: Gauss length %v", loss, i, g)
			}
		}
		if r.GaussLengthIntervals == nil || r.ZeroSpeedEvents == nil || *r.ZeroSpeedEvents != (*r.GaussLengthIntervals+1)*(n+1) {
			t.Fatalf("%s: %v zero-speed events on %v intervals, want one per example and the stacked path at every grid point", loss, r.ZeroSpeedEvents, r.GaussLengthIntervals)
		}
		if len(r.PerLayerDLoss) != 3 || r.PerLayerDLossSumError != 0 {
			t.Fatalf("%s: per-layer L′ %+v (sum error %v), want layers 0, 2, 4", loss, r.PerLayerDLoss, r.PerLayerDLossSumError)
		}
		for k, l := range r.PerLayerDLoss {
			if l.Layer != 2*k || len(l.DLoss) != len(r.Alphas) {
				t.Fatalf("%s: per-layer L′ %+v", loss, l)
			}
			for _, d := range l.DLoss {
				if d != 0 {
					t.Fatalf("%s: layer %d: L′ %v", loss, l.Layer, d)
				}
			}
		}
		if r.Verdict != CertifiedMonotone || r.DeltaBounds == nil || *r.DeltaBounds != [2]float64{0, 0} {
			t.Fatalf("%s: verdict %s, delta_bounds %v", loss, r.Verdict, r.DeltaBounds)
		}
	}
}
