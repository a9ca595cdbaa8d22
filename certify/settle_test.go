package certify

import (
	"context"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// lineNet is the affine model y = w x (Linear 1→1 without bias, mse) with
// w0 = s and wT = s(1 − 1/a) on the single example x = 1, target 0: the
// output path is γ(α) = s(1 − α/a), so L(α) = s²(1 − α/a)², which falls to
// 0 at α = a and, for a < 1, rises again to s²(1 − 1/a)² at α = 1.
func lineNet(t *testing.T, s, a float64, precision functionspace.Precision) *functionspace.Path {
	t.Helper()
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse",
		Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1, Bias: new(bool)}}}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	st := func(w float64) nn.State {
		return nn.State{nn.ParamKey(0, "weight"): {Shape: []int{1, 1}, Data: []float64{w}}}
	}
	p, err := functionspace.New(m, st(s), st(s*(1-1/a)), mat.NewDense(1, 1, []float64{1}),
		nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{Precision: precision})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFloat32CloseCallSettled: a real bump of height s²(1 − 1/a)² ≈ 1.1e-5
// (s = 0.03, a = 0.9) lies far above float64's rounding estimate and far
// below float32's (≈ 1e-3), so the float32 grid alone cannot call it; the
// analysis re-evaluates the close calls in float64 and reports the witness
// with float64 values — the same rise the float64 analysis finds.
func TestFloat32CloseCallSettled(t *testing.T) {
	ctx := context.Background()
	r64, err := Analyze(ctx, lineNet(t, 0.03, 0.9, functionspace.Float64), Options{Alphas: 50, LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r32, err := Analyze(ctx, lineNet(t, 0.03, 0.9, functionspace.Float32), Options{Alphas: 50, LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if r64.Verdict != NonMonotone || r64.Witness == nil {
		t.Fatalf("float64: verdict %s, want non_monotone", r64.Verdict)
	}
	if v, _ := gridVerdict(r32.Alphas, r32.Loss, 0, 1, functionspace.Float32); v != MonotoneOnGrid {
		t.Fatalf("the float32 grid alone already calls the bump (%s): the test needs a close call", v)
	}
	cc := r32.Float32CloseCalls
	if r32.Verdict != NonMonotone || r32.Witness == nil || cc == nil || cc.Settled == 0 {
		t.Fatalf("float32: verdict %s, witness %+v, close calls %+v; want non_monotone settled in float64", r32.Verdict, r32.Witness, cc)
	}
	if *r32.Witness != *r64.Witness {
		t.Errorf("float32's settled witness %+v, float64's %+v", *r32.Witness, *r64.Witness)
	}
	if want := 0.03 * 0.03 * (1 - 1/0.9) * (1 - 1/0.9); r32.Witness.Rise > want*(1+1e-12) || r32.Witness.Rise < want/2 {
		t.Errorf("rise %g, want at most the bump's height %g", r32.Witness.Rise, want)
	}
	if cc.Alphas > maxCloseCallAlphas || cc.Pairs != cc.Settled+cc.Unsettled {
		t.Errorf("close calls %+v", cc)
	}
}

// TestFloat32CloseCallRejected: on a monotone path (a = 2: L falls on all
// of [0, 1]) a float32 loss curve with rises of 1e-6 — rounding-sized for
// float32 — is settled in float64 as no rise at all; with more close calls
// than maxCloseCallAlphas can settle, the rest stay unsettled and are not
// called non-monotone.
func TestFloat32CloseCallRejected(t *testing.T) {
	p := lineNet(t, 0.5, 2, functionspace.Float32)
	alphas := Grid(20)
	loss := make([]float64, len(alphas))
	for k, a := range alphas {
		loss[k] = 0.25 * (1 - a/2) * (1 - a/2)
	}
	one := append([]float64(nil), loss...)
	one[7] = one[6] + 1e-6
	w, cc, err := settleFloat32(context.Background(), p, alphas, one, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil || cc == nil || cc.Pairs != 1 || cc.Settled != 1 || cc.Alphas != 2 {
		t.Errorf("one noisy rise: witness %+v, close calls %+v; want none, 1 pair settled from 2 α", w, cc)
	}
	many := append([]float64(nil), loss...)
	for k := 1; k < len(many); k += 2 {
		many[k] = many[k-1] + 1e-6
	}
	w, cc, err = settleFloat32(context.Background(), p, alphas, many, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil || cc == nil || cc.Alphas > maxCloseCallAlphas || cc.Unsettled == 0 || cc.Settled == 0 {
		t.Errorf("%d noisy rises: witness %+v, close calls %+v; want none, at most %d α, some unsettled", len(alphas)/2, w, cc, maxCloseCallAlphas)
	}
	if w, cc, _ := settleFloat32(context.Background(), p, alphas, loss, 0); w != nil || cc != nil {
		t.Errorf("monotone curve: witness %+v, close calls %+v; want neither", w, cc)
	}
}

// TestFloat32CloseCallBelowTolerance: float32 may round a rise just above
// the tolerance to just below it (a newcomer's case: tolerance 1.06321e-4,
// float64 rise 1.0632130e-4, float32 rise 1.0632031e-4). With the float64
// losses of the bump path and the tolerance 1e-10 under its rise, a float32
// curve whose witness rise is 1e-9 under the tolerance must still be
// settled — as the float64 witness.
func TestFloat32CloseCallBelowTolerance(t *testing.T) {
	ctx := context.Background()
	r64, err := Analyze(ctx, lineNet(t, 0.03, 0.9, functionspace.Float64), Options{Alphas: 50, LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	w := r64.Witness
	tol := w.Rise - 1e-10
	loss := append([]float64(nil), r64.Loss...)
	beta := -1
	for k, a := range r64.Alphas {
		if a == w.Beta {
			beta = k
		}
	}
	for k := beta; k < len(loss); k++ { // float32 understates the rise by 1.1e-9 from β on
		loss[k] -= 1.1e-9
	}
	if v, _ := gridVerdict(r64.Alphas, loss, tol, 1, functionspace.Float32); v != MonotoneOnGrid {
		t.Fatalf("the perturbed curve is %s on its own", v)
	}
	got, cc, err := settleFloat32(ctx, lineNet(t, 0.03, 0.9, functionspace.Float32), r64.Alphas, loss, tol)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || *got != *w || cc == nil || cc.Settled == 0 {
		t.Errorf("witness %+v, close calls %+v; want float64's witness %+v", got, cc, *w)
	}
}
