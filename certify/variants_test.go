package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// bnStates returns a 3-4-2 tanh MLP with batchnorm1d (layers 0 linear,
// 1 batchnorm1d, 2 tanh, 3 linear) and two states differing in every
// tensor, buffers included.
func bnStates(t *testing.T, seed uint64) (*nn.Model, nn.State, nn.State) {
	t.Helper()
	m, err := nn.Build(nn.InsertBatchNorm(nn.MLPSpec([]int{3, 4, 2}, "tanh", "cross_entropy")))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	fill := func(s nn.State) {
		for _, k := range s.Names() { // fixed draw order
			v := s[k]
			for j := range v.Data {
				switch {
				case strings.HasSuffix(k, "running_var"):
					v.Data[j] = 0.5 + rng.Float64()
				case strings.HasSuffix(k, "num_batches_tracked"): // an integer (I64 on disk)
					v.Data[j] = float64(rng.IntN(100))
				default:
					v.Data[j] = rng.NormFloat64()
				}
			}
		}
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT := s0.Clone()
	fill(s0)
	fill(sT)
	return m, s0, sT
}

func intp(i int) *int { return &i }

// TestVariantEndpoints checks, for every variant, that along the line the
// moving tensors go from the start's value to θT's and every other tensor
// stays at θT's (Hold final) or the start's (Hold init) at every α.
func TestVariantEndpoints(t *testing.T) {
	m, s0, sT := bnStates(t, 7)
	type want int
	const (
		moves want = iota
		atFinal
		atInit
	)
	cases := []struct {
		v    Variant
		rule func(key string) want
	}{
		{Variant{}, func(string) want { return moves }},
		{Variant{Interpolate: "all", From: "init"}, func(string) want { return moves }},
		{Variant{Interpolate: "weights"}, func(k string) want {
			if strings.HasSuffix(k, ".weight") {
				return moves
			}
			return atFinal
		}},
		{Variant{Interpolate: "biases"}, func(k string) want {
			if strings.HasSuffix(k, ".bias") {
				return moves
			}
			return atFinal
		}},
		{Variant{Interpolate: "biases", Hold: "init"}, func(k string) want {
			if strings.HasSuffix(k, ".bias") {
				return moves
			}
			return atInit
		}},
		{Variant{Layer: intp(1)}, func(k string) want { // the BatchNorm layer, its buffers included
			if strings.HasPrefix(k, "1.") {
				return moves
			}
			return atFinal
		}},
		{Variant{Layer: intp(0), Hold: "init"}, func(k string) want {
			if strings.HasPrefix(k, "0.") {
				return moves
			}
			return atInit
		}},
		{Variant{Layer: intp(3), Interpolate: "biases"}, func(k string) want { // the last-layer biases alone
			if k == "3.bias" {
				return moves
			}
			return atFinal
		}},
	}
	for _, c := range cases {
		start, end, err := VariantEndpoints(m, s0, sT, c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.v, err)
		}
		if err := m.Check(start, "start"); err != nil {
			t.Fatal(err)
		}
		if err := m.Check(end, "end"); err != nil {
			t.Fatal(err)
		}
		nMove := 0
		for _, a := range []float64{0, 0.3, 0.75, 1} {
			at := nn.Interpolate(start, end, a)
			for k, v := range at {
				for j, x := range v.Data {
					var w float64
					switch c.rule(k) {
					case moves:
						w = s0[k].Data[j] + a*(sT[k].Data[j]-s0[k].Data[j])
						if a == 0 {
							nMove++
						}
					case atFinal:
						w = sT[k].Data[j]
					case atInit:
						w = s0[k].Data[j]
					}
					if math.Abs(x-w) > 1e-14*(1+math.Abs(w)) {
						t.Fatalf("%s: %s[%d] at α=%v is %v, want %v", c.v, k, j, a, x, w)
					}
				}
			}
		}
		if nMove == 0 {
			t.Errorf("%s: nothing moves", c.v)
		}
	}
}

func TestVariantErrors(t *testing.T) {
	m, s0, sT := bnStates(t, 3)
	noBias := false
	mNB, _ := nn.Build(&nn.Spec{Format: "sequential/v1", InputShape: []int{2}, Layers: []nn.LayerSpec{{Type: "linear", In: 2, Out: 2, Bias: &noBias}}, Loss: "mse"})
	w0 := nn.State{"0.weight": {Shape: []int{2, 2}, Data: []float64{1, 2, 3, 4}}}
	for _, c := range []struct {
		m      *nn.Model
		s0, sT nn.State
		v      Variant
		msg    string
	}{
		{m, s0, sT, Variant{Interpolate: "gains"}, "--interpolate"},
		{m, s0, sT, Variant{Hold: "middle", Layer: intp(0)}, "--hold"},
		{m, s0, sT, Variant{Hold: "init"}, "every tensor moves"},
		{m, s0, sT, Variant{Layer: intp(2)}, "not a layer with parameters"},
		{m, s0, sT, Variant{Layer: intp(9)}, "not a layer with parameters"},
		{mNB, w0, w0, Variant{Interpolate: "biases"}, "moves no tensor"},
	} {
		_, _, err := VariantEndpoints(c.m, c.s0, c.sT, c.v)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: error %v, want one containing %q", c.v, err, c.msg)
		}
	}
}

// TestEndpointsFrom: --from reads a checkpoint (as given, or relative to the
// run directory) as the start; a checkpoint of the wrong model is refused.
func TestEndpointsFrom(t *testing.T) {
	m, s0, sT := bnStates(t, 5)
	_, sMid, _ := bnStates(t, 11)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755)
	ck := filepath.Join(dir, "checkpoints", "step-3.safetensors")
	if err := nn.WriteState(ck, sMid, "F64"); err != nil {
		t.Fatal(err)
	}
	run := &rundir.Run{Dir: dir, Model: m, Theta0: s0, ThetaT: sT}
	for _, from := range []string{ck, "checkpoints/step-3.safetensors"} {
		start, end, err := Endpoints(run, Variant{From: from})
		if err != nil {
			t.Fatal(err)
		}
		for k := range sT {
			for j := range sT[k].Data {
				if start[k].Data[j] != sMid[k].Data[j] || end[k].Data[j] != sT[k].Data[j] {
					t.Fatalf("--from %s: %s is not θ_t → θT", from, k)
				}
			}
		}
	}
	// From combines with the other selections: hold init holds at θ_t.
	start, end, err := Endpoints(run, Variant{From: ck, Layer: intp(3), Hold: "init"})
	if err != nil {
		t.Fatal(err)
	}
	if start["0.weight"].Data[0] != sMid["0.weight"].Data[0] || end["0.weight"].Data[0] != sMid["0.weight"].Data[0] || end["3.bias"].Data[0] != sT["3.bias"].Data[0] {
		t.Error("--from with --layer --hold init did not hold the rest at θ_t")
	}
	wrong := filepath.Join(dir, "wrong.safetensors")
	nn.WriteState(wrong, nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{1}}}, "F32")
	if _, _, err := Endpoints(run, Variant{From: wrong}); err == nil || !strings.Contains(err.Error(), "wrong.safetensors") {
		t.Errorf("wrong checkpoint: %v", err)
	}
	if _, _, err := Endpoints(run, Variant{From: "nope.safetensors"}); err == nil {
		t.Error("a missing --from file was accepted")
	}
}

// perLayerPath is a 3-5-4-3 tanh MLP (layers 0, 2, 4 hold parameters) on 7
// examples with random θ0, θT.
func perLayerPath(t *testing.T, loss string) *functionspace.Path {
	t.Helper()
	m, _ := nn.Build(nn.MLPSpec([]int{3, 5, 4, 3}, "tanh", loss))
	s0, _ := nn.Init(m, "pytorch", 1, 21)
	sT, _ := nn.Init(m, "pytorch", 3, 22)
	rng := rand.New(rand.NewPCG(4, 4))
	x := mat.NewDense(7, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	tg := nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2, 1}}
	if loss == "mse" {
		v := mat.NewDense(7, 3, nil)
		for i := range v.RawMatrix().Data {
			v.RawMatrix().Data[i] = rng.NormFloat64()
		}
		tg = nn.Targets{Values: v}
	}
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: 3})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPerLayerDLoss: each layer's contribution equals the central finite
// difference d/dε L(θα + ε δ_l) at ε = 0 (an independent oracle: nn.Evaluate
// forward passes only), and the contributions sum to the path's L′.
func TestPerLayerDLoss(t *testing.T) {
	for _, loss := range []string{"cross_entropy", "mse"} {
		p := perLayerPath(t, loss)
		alphas := []float64{0, 0.37, 1}
		pl, err := PerLayerDLoss(context.Background(), p, alphas, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(pl) != 3 || pl[0].Layer != 0 || pl[1].Layer != 2 || pl[2].Layer != 4 {
			t.Fatalf("%s: layers %+v", loss, pl)
		}
		for j, a := range alphas {
			full := p.At(a).DLoss
			var sum float64
			for _, l := range pl {
				sum += l.DLoss[j]
				const eps = 1e-5
				lossAt := func(e float64) float64 {
					s := nn.State{}
					for k, t0 := range p.Theta0 {
						v := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
						inL := strings.HasPrefix(k, strconv.Itoa(l.Layer)+".")
						for q := range v.Data {
							v.Data[q] = t0.Data[q] + a*p.Delta[k].Data[q]
							if inL {
								v.Data[q] += e * p.Delta[k].Data[q]
							}
						}
						s[k] = v
					}
					lv, _ := nn.Evaluate(p.Model, s, p.X, p.Targets, 0)
					return lv
				}
				fd := (lossAt(eps) - lossAt(-eps)) / (2 * eps)
				if math.Abs(fd-l.DLoss[j]) > 1e-7*(1+math.Abs(fd)) {
					t.Errorf("%s α=%v layer %d: contribution %v, finite difference %v", loss, a, l.Layer, l.DLoss[j], fd)
				}
			}
			if math.Abs(sum-full) > 1e-12*(1+math.Abs(full)) {
				t.Errorf("%s α=%v: Σ contributions %v ≠ L′ %v", loss, a, sum, full)
			}
		}
	}
}

// TestAnalyzeVariantMeasurements: the report carries the per-layer split
// (summing to dloss), and plateau and barrier computed from its own grid.
func TestAnalyzeVariantMeasurements(t *testing.T) {
	p := perLayerPath(t, "cross_entropy")
	r, err := Analyze(context.Background(), p, Options{Alphas: 9, GaussIntervals: 8, GaussMaxIntervals: 16, GaussTol: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PerLayerDLoss) != 3 || r.PerLayerDLossSumError > 1e-12 {
		t.Errorf("per-layer: %d layers, sum error %v", len(r.PerLayerDLoss), r.PerLayerDLossSumError)
	}
	if r.PlateauLength != PlateauLength(r.Alphas, r.Accuracy, DefaultPlateauTolerance) || r.Options.PlateauTolerance != DefaultPlateauTolerance {
		t.Errorf("plateau %v (tolerance %v)", r.PlateauLength, r.Options.PlateauTolerance)
	}
	if r.BarrierHeight != BarrierHeight(r.Alphas, r.Loss) {
		t.Errorf("barrier %v", r.BarrierHeight)
	}
	r2, err := Analyze(context.Background(), p, Options{Alphas: 9, LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if r2.PerLayerDLoss != nil {
		t.Error("loss_only computed the per-layer split")
	}
}

func TestPlateauLength(t *testing.T) {
	a := []float64{0, 0.25, 0.5, 0.75, 1}
	for _, c := range []struct {
		acc  []float64
		tol  float64
		want float64
	}{
		{[]float64{0.1, 0.1, 0.105, 0.2, 0.9}, 0.01, 0.5}, // flat, then rises
		{[]float64{0.1, 0.5, 0.1, 0.1, 0.1}, 0.01, 0},     // rises at once: no plateau
		{[]float64{0.5, 0.5, 0.5, 0.5, 0.5}, 0.01, 1},     // never rises
		{[]float64{0.5, 0.75, 0.5, 1, 1}, 0.25, 0.5},      // a rise of exactly tol is flat
		{[]float64{0.5, 0.2, 0.4, 0.6, 0.5}, 0.01, 0.5},   // falling counts as flat; a later dip does not extend it
		{[]float64{0.3, 0.3, 0.3, 0.3, 0.30999}, 0.01, 1}, // just below tol
	} {
		if got := PlateauLength(a, c.acc, c.tol); got != c.want {
			t.Errorf("accuracy %v tol %v: plateau %v, want %v", c.acc, c.tol, got, c.want)
		}
	}
	if PlateauLength(nil, nil, 0.01) != 0 {
		t.Error("empty grid")
	}
	if got := PlateauLength([]float64{0.2, 0.4, 0.6}, []float64{0, 0, 1}, 0.01); math.Abs(got-0.2) > 1e-15 {
		t.Errorf("grid not starting at 0: %v", got)
	}
}

func TestBarrierHeight(t *testing.T) {
	grid := func(n int) []float64 { return Grid(n) }
	eval := func(a []float64, f func(float64) float64) []float64 {
		l := make([]float64, len(a))
		for j, x := range a {
			l[j] = f(x)
		}
		return l
	}
	// THEORY.md §6's overshoot: L = (1 − 1.5α)² is non-monotone (Δ = 0.25)
	// but convex, so it never rises above its chord: barrier 0.
	a := grid(51)
	if b := BarrierHeight(a, eval(a, func(x float64) float64 { return (1 - 1.5*x) * (1 - 1.5*x) })); b != 0 {
		t.Errorf("convex L: barrier %v, want 0", b)
	}
	// A sine bump on a straight fall: the barrier is the bump's height c at α = 1/2.
	a = grid(11)
	if b := BarrierHeight(a, eval(a, func(x float64) float64 { return 2 - x + 0.3*math.Sin(math.Pi*x) })); math.Abs(b-0.3) > 1e-15 {
		t.Errorf("sine bump: barrier %v, want 0.3", b)
	}
	// THEORY.md §6's circular arc, R = 1, φ = 1.5π: ℓ = 4 sin²(φ(1−α)/2), chord
	// 2(1−α); with u = 1−α the excess 2(1 − cos(1.5πu)) − 2u peaks where
	// sin(1.5πu) = 2/(3π), on the branch with cos < 0.
	s := 2 / (3 * math.Pi)
	u := (math.Pi - math.Asin(s)) / (1.5 * math.Pi)
	want := 2*(1+math.Sqrt(1-s*s)) - 2*u
	a = grid(10001)
	b := BarrierHeight(a, eval(a, func(x float64) float64 {
		v := math.Sin(1.5 * math.Pi * (1 - x) / 2)
		return 4 * v * v
	}))
	if math.Abs(b-want) > 1e-6 || b > want+1e-12 {
		t.Errorf("arc: barrier %v, want %v", b, want)
	}
	if !math.IsNaN(BarrierHeight([]float64{0}, []float64{1})) {
		t.Error("one point: want NaN")
	}
}

// TestPerLayerDLossBatchNorm: under both BatchNorm policies the per-layer
// contributions (the BatchNorm layer's running statistics included under
// interpolate) sum to the path's own L′.
func TestPerLayerDLossBatchNorm(t *testing.T) {
	m, s0, sT := bnStates(t, 13)
	rng := rand.New(rand.NewPCG(8, 8))
	x := mat.NewDense(6, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	for _, pol := range []functionspace.BNPolicy{functionspace.BNInterpolate, functionspace.BNRecompute} {
		p, err := functionspace.New(m, s0, sT, x, nn.Targets{Labels: []int{0, 1, 0, 1, 1, 0}}, functionspace.Options{BNPolicy: pol, BNReference: 4})
		if err != nil {
			t.Fatal(err)
		}
		alphas := []float64{0, 0.6, 1}
		pl, err := PerLayerDLoss(context.Background(), p, alphas, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(pl) != 3 || pl[1].Layer != 1 {
			t.Fatalf("%s: layers %+v", pol, pl)
		}
		for j, a := range alphas {
			full := p.At(a).DLoss
			var sum float64
			for _, l := range pl {
				sum += l.DLoss[j]
			}
			if math.Abs(sum-full) > 1e-12*(1+math.Abs(full)) {
				t.Errorf("%s α=%v: Σ contributions %v ≠ L′ %v", pol, a, sum, full)
			}
		}
	}
}
