package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// TestAffineExactFitIsMonotone: a linear model y = W x (affine in θ) moved
// from θ0 = 0 to θT = W on targets Y = X Wᵀ fits exactly, so L(α) =
// (1 − α)² L(0) and L′(1) = 0; float64 leaves L′(1) at rounding noise of
// either sign, which must not be read as "L′(1) > 0, not monotone"
// (THEORY.md §6, models affine in θ). The overshoot model of §6
// (w from 1 to −0.5, target 0, L = (1 − 1.5α)²) stays not monotone.
func TestAffineExactFitIsMonotone(t *testing.T) {
	positive := 0
	for seed := uint64(0); seed < 16; seed++ {
		if affineExactFit(t, seed) {
			positive++
		}
	}
	if positive == 0 {
		t.Fatal("L′(1) never came out positive: the rounding branch was not exercised")
	}
	// A positive L′(1) far above rounding: the §6 overshoot.
	p1 := overshootPath(t)
	s1 := p1.At(1)
	if a := affineCondition(p1, s1); a.Monotone || math.Abs(s1.DLoss-1.5) > 1e-12 {
		t.Errorf("overshoot: L′(1) = %v (want 1.5), %+v", s1.DLoss, a)
	}
}

// TestTheoremsRefuseJumpingPaths: Theorems A and B are stated for C² output
// paths (THEORY.md §6); a softplus whose input crosses PyTorch's threshold
// makes γ jump, so neither the stacked nor the per-example theorems may
// claim anything — the certificate alone speaks (issue 18).
func TestTheoremsRefuseJumpingPaths(t *testing.T) {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 1, Out: 1}, {Type: "softplus", Beta: ptr(3.0), Threshold: ptr(1.0)}, {Type: "linear", In: 1, Out: 1}}}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	st := func(b0 float64) nn.State {
		return nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{0}}, "0.bias": {Shape: []int{1}, Data: []float64{b0}},
			"2.weight": {Shape: []int{1, 1}, Data: []float64{1}}, "2.bias": {Shape: []int{1}, Data: []float64{0}}}
	}
	// The softplus input falls from 1 to 0 and crosses its threshold 1/3
	// (βz = 1) at α = 2/3.
	p, err := functionspace.New(m, st(1), st(0), mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Analyze(context.Background(), p, Options{Alphas: 11, Certificate: true, NoPerLayer: true})
	if err != nil {
		t.Fatal(err)
	}
	th := r.Conditions.Theorems
	if th == nil || th.Applies || !strings.Contains(th.Reason, "softplus") || r.Conditions.TheoremBExamples != "" {
		t.Errorf("theorems on a jumping path: %+v, per example %q", th, r.Conditions.TheoremBExamples)
	}
}

func ptr(v float64) *float64 { return &v }

// affineExactFit checks one exact fit (seed) and reports whether float64
// rounding left L′(1) > 0, the case the rounding estimate must catch.
func affineExactFit(t *testing.T, seed uint64) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 5))
	spec := nn.MLPSpec([]int{3, 2}, "identity", "mse")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT := s0.Clone()
	for _, v := range s0 {
		for j := range v.Data {
			v.Data[j] = 0
		}
	}
	for k := range sT {
		for j := range sT[k].Data {
			sT[k].Data[j] = rng.NormFloat64() * 1e3 // large weights: rounding of γ(1) − y well above 1e-17
		}
	}
	n := 20
	x := mat.NewDense(n, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	y := mat.NewDense(n, 2, nil)
	w, b := sT["0.weight"], sT["0.bias"]
	for i := 0; i < n; i++ {
		for o := 0; o < 2; o++ {
			v := b.Data[o]
			for c := 0; c < 3; c++ {
				v += w.Data[o*3+c] * x.At(i, c)
			}
			y.Set(i, o, v)
		}
	}
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at1 := p.At(1)
	a := affineCondition(p, at1)
	if !a.Applies || !a.Monotone || strings.HasPrefix(a.Statement, "not monotone") {
		t.Errorf("exact fit (L′(1) = %g in float64): %+v", at1.DLoss, a)
	}
	return at1.DLoss > 0
}
