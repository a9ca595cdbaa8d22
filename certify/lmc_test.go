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
				// E = k/N correctly rounded (k the misclassified examples)
				loss, errs = append(loss, l), append(errs, math.Round((1-acc)*64)/64)
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
				if mg := math.Round((1-am)*64)/64 - (errs[0]+errs[len(errs)-1])/2; math.Abs(float64(r.MidpointGapError)-mg) > 1e-15 {
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

// TestLMCErrorExactCounts: the 0–1 error and its gaps are counts of
// misclassified examples over N, written as the nearest float64 (a
// first-user walkthrough found lmc.json's 0.0050000000000000044 and
// 0.09999999999999998 where 0.005 and 0.1 were meant): E = k/N, not
// 1 − accuracy; g_i = (m·k_i − (m−i)·k_0 − i·k_m)/(m·N), not
// E_i − (E_0 + α_i(E_m − E_0)) in float64. The α are LMCGrid's i/m,
// the same in the JSON and in the gap.
func TestLMCErrorExactCounts(t *testing.T) {
	al, err := LMCGrid(21)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range al {
		if a != float64(i)/20 {
			t.Fatalf("α_%d = %v, want %v", i, a, float64(i)/20)
		}
	}
	// the curve of docs/lmc-instability's cert-k100 (10 examples): k
	// misclassified at each α
	k := []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 3, 3, 0}
	c := LineCurve{Alphas: al, Loss: make([]float64, 21), Error: make([]float64, 21), Examples: 10}
	for i := range k {
		c.Error[i] = float64(k[i]) / 10
	}
	r, err := Measures(c, 0, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range k {
		want := float64(20*k[i]-(20-i)*k[0]-i*k[20]) / 200
		if float64(r.ConvexityGapError[i]) != want {
			t.Errorf("convexity_gap_error at α = %v: %v, want %v", al[i], r.ConvexityGapError[i], want)
		}
	}
	if r.ConvexityGapError[1] != 0.005 || r.ConvexityGapError[19] != 0.295 {
		t.Errorf("gaps at α = 0.05, 0.95: %v, %v; want 0.005, 0.295", r.ConvexityGapError[1], r.ConvexityGapError[19])
	}
	// max g = 59/200 at α = 0.95 (k = 3, chord 0.005); Ainsworth's and the
	// midpoint's (2·3 − 1 − 0)/20
	if r.BarrierError != 0.295 || r.BarrierErrorAlpha != 0.95 || r.BarrierErrorAinsworth != 0.25 || r.MidpointGapError != 0.25 {
		t.Errorf("barrier_error %v at %v, ainsworth %v, midpoint %v; want 0.295 at 0.95, 0.25, 0.25",
			r.BarrierError, r.BarrierErrorAlpha, r.BarrierErrorAinsworth, r.MidpointGapError)
	}

	// E from a path: labels the model's own predictions at α = 0 but one,
	// so E(0) = 1/10 exactly (1 − 0.9 is 0.09999999999999998).
	m, a, b, x, tg := lmcNet(t, nn.MLPSpec([]int{5, 8, 3}, "relu", "cross_entropy"), 10, 5)
	p, err := functionspace.New(m, a, b, x, tg, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := p.At(0).Output
	for i := range tg.Labels {
		row := out.RawRowView(i)
		best := 0
		for c := range row {
			if row[c] > row[best] {
				best = c
			}
		}
		tg.Labels[i] = best
	}
	tg.Labels[0] = (tg.Labels[0] + 1) % 3
	p, err = functionspace.New(m, a, b, x, tg, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	curve := EvaluateLine(p, al)
	if curve.Error[0] != 0.1 {
		t.Errorf("E(0) = %v, want 0.1 (1 of 10 misclassified)", curve.Error[0])
	}
	for i, e := range curve.Error {
		if kk := math.Round(e * 10); kk/10 != e {
			t.Errorf("E(%v) = %v is not k/10", al[i], e)
		}
	}
}
