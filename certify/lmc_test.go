package certify

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// lmcNet returns a model with two independently initialised states and
// random data: labels for cross_entropy, float targets for mse.
func lmcNet(t *testing.T, spec *nn.Spec, n int, seed uint64) (*nn.Model, nn.State, nn.State, *mat.Dense, nn.Targets) {
	t.Helper()
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	a, err := nn.Init(m, "pytorch", 1, seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := nn.Init(m, "pytorch", 1, seed+1)
	rng := rand.New(rand.NewPCG(seed, 7))
	// BatchNorm buffers away from their initial 0 and 1, so that they matter.
	for _, s := range []nn.State{a, b} {
		for _, key := range s.Names() {
			tn := s[key]
			switch {
			case len(key) > 13 && key[len(key)-13:] == ".running_mean":
				for i := range tn.Data {
					tn.Data[i] = rng.NormFloat64() * 0.3
				}
			case len(key) > 12 && key[len(key)-12:] == ".running_var":
				for i := range tn.Data {
					tn.Data[i] = 0.5 + rng.Float64()
				}
			}
		}
	}
	d, k := spec.InputSize(), m.OutSize()
	x := mat.NewDense(n, d, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	var tg nn.Targets
	if spec.Loss == "mse" {
		y := mat.NewDense(n, k, nil)
		for i := range y.RawMatrix().Data {
			y.RawMatrix().Data[i] = rng.NormFloat64()
		}
		tg = nn.Targets{Values: y}
	} else {
		tg.Labels = make([]int, n)
		for i := range tg.Labels {
			tg.Labels[i] = rng.IntN(k)
		}
	}
	return m, a, b, x, tg
}

func lineMeasures(t *testing.T, m *nn.Model, a, b nn.State, x *mat.Dense, tg nn.Targets, n int) LMCMeasures {
	t.Helper()
	p, err := functionspace.New(m, a, b, x, tg, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	al, err := LMCGrid(n)
	if err != nil {
		t.Fatal(err)
	}
	r, err := LineMeasures(p, al)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Identical endpoints: L is constant along the line, so every gap and
// barrier is exactly 0.
func TestLMCIdenticalEndpoints(t *testing.T) {
	m, a, _, x, tg := lmcNet(t, nn.InsertBatchNorm(nn.MLPSpec([]int{5, 8, 8, 3}, "relu", "cross_entropy")), 40, 3)
	r := lineMeasures(t, m, a, a.Clone(), x, tg, 11)
	for name, v := range map[string]Num{"barrier_loss": r.BarrierLoss, "barrier_loss_ainsworth": r.BarrierLossAinsworth,
		"barrier_error": r.BarrierError, "barrier_error_ainsworth": r.BarrierErrorAinsworth,
		"midpoint_gap": r.MidpointGap, "midpoint_gap_error": r.MidpointGapError} {
		if v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	for i := range r.ConvexityGap {
		if r.ConvexityGap[i] != 0 || r.ConvexityGapError[i] != 0 {
			t.Errorf("convexity gap at α = %v: %v, %v; want 0", r.Alphas[i], r.ConvexityGap[i], r.ConvexityGapError[i])
		}
	}
}

// A linear model with mse: L(α) = c + bα + aα² with a = mean‖ΔW x + Δb‖²
// (over examples and outputs), so g(α) = −aα(1−α): the barrier is 0 (at the
// ends), the midpoint gap −a/4, and Ainsworth's barrier ½|L(0) − L(1)|.
func TestLMCLinearMSEClosedForm(t *testing.T) {
	spec := nn.MLPSpec([]int{4, 3}, "relu", "mse") // one linear layer: no activation
	m, a, b, x, tg := lmcNet(t, spec, 30, 5)
	r := lineMeasures(t, m, a, b, x, tg, 21)
	n, d := x.Dims()
	dw, db := nn.Difference(a, b)["0.weight"], nn.Difference(a, b)["0.bias"]
	var sum float64
	for i := 0; i < n; i++ {
		for o := 0; o < 3; o++ {
			v := db.Data[o]
			for j := 0; j < d; j++ {
				v += dw.Data[o*d+j] * x.At(i, j)
			}
			sum += v * v
		}
	}
	qa := sum / float64(n*3)
	close := func(name string, got Num, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.17g, want %.17g", name, got, want)
		}
	}
	close("midpoint_gap", r.MidpointGap, -qa/4)
	for i, al := range r.Alphas {
		close("convexity_gap", r.ConvexityGap[i], -qa*al*(1-al))
	}
	if r.BarrierLoss != 0 {
		t.Errorf("barrier_loss = %v, want 0 (a convex L lies under its chord)", r.BarrierLoss)
	}
	l0, l1 := float64(r.Loss[0]), float64(r.Loss[len(r.Loss)-1])
	close("barrier_loss_ainsworth", r.BarrierLossAinsworth, math.Abs(l0-l1)/2)
	// Float targets: no 0–1 error, so every error quantity is null.
	if r.Error != nil || !math.IsNaN(float64(r.BarrierError)) || !math.IsNaN(float64(r.MidpointGapError)) {
		t.Errorf("error quantities for float targets: %v %v %v, want null", r.Error, r.BarrierError, r.MidpointGapError)
	}
	js, _ := json.Marshal(r)
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back["barrier_error"] != nil || back["error"] != nil {
		t.Errorf("JSON: barrier_error %v, error %v; want null", back["barrier_error"], back["error"])
	}
}

// Against direct forward passes of nn on the interpolated weights
// (nn.Interpolate, nn.Evaluate: no jets, no first-layer cache), for tanh,
// ReLU and BatchNorm MLPs, and the barriers recomputed from those values
// by hand.
func TestLMCAgainstDirectForward(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec *nn.Spec
	}{
		{"tanh", nn.MLPSpec([]int{6, 10, 10, 4}, "tanh", "cross_entropy")},
		{"relu", nn.MLPSpec([]int{6, 12, 4}, "relu", "cross_entropy")},
		{"batchnorm", nn.InsertBatchNorm(nn.MLPSpec([]int{6, 9, 7, 4}, "relu", "cross_entropy"))},
		{"relu-mse", nn.MLPSpec([]int{6, 8, 3}, "relu", "mse")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, a, b, x, tg := lmcNet(t, tc.spec, 64, 11)
			r := lineMeasures(t, m, a, b, x, tg, 12) // α = ½ off the grid
			var loss, errs []float64
			for _, al := range r.Alphas {
				l, acc := nn.Evaluate(m, nn.Interpolate(a, b, al), x, tg, 0)
				loss, errs = append(loss, l), append(errs, 1-acc)
			}
			lm, am := nn.Evaluate(m, nn.Interpolate(a, b, 0.5), x, tg, 0)
			var bar, ains float64
			for i, al := range r.Alphas {
				if math.Abs(float64(r.Loss[i])-loss[i]) > 1e-12*math.Max(1, loss[i]) {
					t.Errorf("L(%v) = %.17g, direct %.17g", al, r.Loss[i], loss[i])
				}
				if tg.Labels != nil && float64(r.Error[i]) != errs[i] {
					t.Errorf("E(%v) = %v, direct %v", al, r.Error[i], errs[i])
				}
				bar = math.Max(bar, loss[i]-((1-al)*loss[0]+al*loss[len(loss)-1]))
				ains = math.Max(ains, loss[i]-(loss[0]+loss[len(loss)-1])/2)
			}
			if math.Abs(float64(r.BarrierLoss)-bar) > 1e-12 || math.Abs(float64(r.BarrierLossAinsworth)-ains) > 1e-12 {
				t.Errorf("barriers %v, %v; direct %v, %v", r.BarrierLoss, r.BarrierLossAinsworth, bar, ains)
			}
			if mg := lm - (loss[0]+loss[len(loss)-1])/2; math.Abs(float64(r.MidpointGap)-mg) > 1e-12 {
				t.Errorf("midpoint gap %v, direct %v", r.MidpointGap, mg)
			}
			if tg.Labels != nil {
				if mg := (1 - am) - (errs[0]+errs[len(errs)-1])/2; math.Abs(float64(r.MidpointGapError)-mg) > 1e-15 {
					t.Errorf("midpoint error gap %v, direct %v", r.MidpointGapError, mg)
				}
			}
		})
	}
}

// Measures refuses a grid without both ends.
func TestLMCMeasuresRefusesGrid(t *testing.T) {
	if _, err := Measures(LineCurve{Alphas: []float64{0, 0.5}, Loss: []float64{1, 2}}, 2, 0); err == nil {
		t.Error("a grid ending at 0.5 was accepted")
	}
	if _, err := LMCGrid(1); err == nil {
		t.Error("a grid of 1 α was accepted")
	}
}

// ErrorBarrierBounds on hand-made accuracy bounds, worked by hand:
//   - ends decided (E(0) = E(1) = 0.1), E ∈ [0.2, 0.4] on [0.25, 0.5]:
//     B_E ∈ [0.2 − 0.1, 0.4 − 0.1] = [0.1, 0.3];
//   - E(0) ∈ [0.1, 0.2] undecided, E = 0 on [0.5, 1]: upper 0.2 − (1 −
//     0.5)·0.1 = 0.15 (the lowest chord at α = ½), lower max(0, 0.1 −
//     0.5·0.2) = 0;
//   - nil bounds, and bounds not covering α = 1: not ok.
func TestErrorBarrierBounds(t *testing.T) {
	for _, tc := range []struct {
		iv     [][4]float64
		lo, hi float64
		ok     bool
	}{
		{[][4]float64{{0, 0.25, 0.9, 0.9}, {0.25, 0.5, 0.6, 0.8}, {0.5, 1, 0.9, 0.9}}, 0.1, 0.3, true},
		{[][4]float64{{0, 0.5, 0.8, 0.9}, {0.5, 1, 1, 1}}, 0, 0.15, true},
		{[][4]float64{{0, 0.5, 0.8, 0.9}}, 0, 0, false},
	} {
		lo, hi, ok := ErrorBarrierBounds(&AccuracyBounds{Intervals: tc.iv})
		if ok != tc.ok || (ok && (math.Abs(lo-tc.lo) > 1e-11 || math.Abs(hi-tc.hi) > 1e-11 || lo > tc.lo || hi < tc.hi)) {
			t.Errorf("%v: [%v, %v] ok %v; want [%v, %v] ok %v", tc.iv, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
	if _, _, ok := ErrorBarrierBounds(nil); ok {
		t.Error("nil bounds: ok")
	}
}
