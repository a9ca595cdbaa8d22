package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// spjPath is the user's adversarial softplus case: z goes from 1 to −1
// through softplus(β = 2, threshold 0.5), crossing PyTorch's threshold at
// α = 0.375, out = v·s + b with b from 2 to 0.5, mse against 0. With
// v = 1e-3 the loss jumps up at the crossing; with v = −1e-3 it jumps down.
func spjPath(t *testing.T, v float64) *functionspace.Path {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 1, Out: 1}, {Type: "softplus", Beta: f64(2), Threshold: f64(0.5)}, {Type: "linear", In: 1, Out: 1}}}
	s0 := map[string][]float64{"0.weight": {0}, "0.bias": {1}, "2.weight": {v}, "2.bias": {2}}
	sT := map[string][]float64{"0.weight": {0}, "0.bias": {-1}, "2.weight": {v}, "2.bias": {0.5}}
	return scalarPath(t, spec, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{})
}

// bumpPath is the user's narrow tanh bump: out = ε·tanh(K(α − c)) + b(α)
// with K = 1e8, so L rises by about 4ε·|out| within 1e-8 of c = 0.013,
// between any two points of the Gauss length's grid.
func bumpPath(t *testing.T) *functionspace.Path { return bumpPathAt(t, 1e-3, 1e8, 0.013) }

// bumpPathAt is bumpPath with the height ε, steepness K and place c drawn.
func bumpPathAt(t *testing.T, eps, k, c float64) *functionspace.Path {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 1, Out: 1}, {Type: "tanh"}, {Type: "linear", In: 1, Out: 1}}}
	s0 := map[string][]float64{"0.weight": {0}, "0.bias": {-k * c}, "2.weight": {eps}, "2.bias": {2}}
	sT := map[string][]float64{"0.weight": {0}, "0.bias": {k * (1 - c)}, "2.weight": {-eps}, "2.bias": {0.5}}
	return scalarPath(t, spec, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{})
}

// TestDeltaContinuousNotBelowProvenLower: delta_continuous is Δ over all of
// [0,1] (RUN_FORMAT.md), so it is never below delta_bounds[0], the
// certificate's rigorous lower bound, even where the continuous-Δ search
// steps over the rise (a narrow bump, a softplus jump); its pair is
// re-evaluated in float64 and must give its value.
func TestDeltaContinuousNotBelowProvenLower(t *testing.T) {
	for name, p := range map[string]*functionspace.Path{"bump": bumpPath(t), "softplus jump": spjPath(t, 1e-3)} {
		r, err := Analyze(context.Background(), p, Options{Alphas: 50, Certificate: true, NoPerLayer: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.DeltaBounds == nil || !(r.DeltaBounds[0] > 0) {
			t.Fatalf("%s: no proven rise (delta_bounds %v): the case does not test anything", name, r.DeltaBounds)
		}
		lo := r.DeltaBounds[0]
		if !(r.DeltaContinuous >= lo-RoundingError(lo, p.N)) {
			t.Errorf("%s: delta_continuous %v below delta_bounds[0] %v", name, r.DeltaContinuous, lo)
		}
		a, b := r.DeltaContinuousPair[0], r.DeltaContinuousPair[1]
		if rise := p.At(b).Loss - p.At(a).Loss; !(a < b) || rise != r.DeltaContinuous {
			t.Errorf("%s: delta_continuous %v but L(%v) − L(%v) = %v", name, r.DeltaContinuous, b, a, rise)
		}
		if r.Conditions.DeltaContinuous == "" {
			t.Errorf("%s: conditions.delta_continuous does not say where the value came from", name)
		}
	}
}

// TestConstantLineFastPath: with θT = θ0 (BatchNorm buffers included, both
// policies) L is constant — checked independently by evaluating the path —
// and the certificate decides certified_monotone with Δ ∈ [0, 0] without a
// leaf; a single non-zero entry of δ must take the ordinary search.
func TestConstantLineFastPath(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		policy := rapid.SampledFrom([]functionspace.BNPolicy{functionspace.BNInterpolate, functionspace.BNRecompute}).Draw(t, "policy")
		m, err := nn.Build(nn.InsertBatchNorm(nn.MLPSpec([]int{2, 3, 2}, "relu", "mse")))
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		other, _ := nn.Init(m, "pytorch", 1, seed+1)
		rng := rand.New(rand.NewPCG(seed, 7))
		testnets.RandomizeBatchNorm(m, rng, 0.1, s0, other)
		x, tg := testnets.RandomData(rng, 5, 2, 2, "mse", 2)
		p, err := functionspace.New(m, s0, s0.Clone(), x, tg, functionspace.Options{BNPolicy: policy})
		if err != nil {
			t.Fatal(err)
		}
		l0 := p.At(0).Loss
		for _, a := range []float64{0.1, 0.5, 0.77, 1} {
			if l := p.At(a).Loss; l != l0 {
				t.Fatalf("the path is not constant: L(%v) = %v, L(0) = %v", a, l, l0)
			}
		}
		c, err := Certify(context.Background(), p, CertifyOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if c.Verdict != CertifiedMonotone || c.DeltaLower != 0 || c.DeltaUpper != 0 || c.Leaves != 0 || len(c.Notes) == 0 {
			t.Fatalf("θT = θ0: %s, Δ ∈ [%v, %v], %d leaves, notes %v", c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, c.Notes)
		}
		// one moving entry: the fast path must not apply
		sT := s0.Clone()
		sT["0.bias"].Data[0] += 1e-3
		q, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{BNPolicy: policy})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := Certify(context.Background(), q, CertifyOptions{Workers: 1, MaxIntervals: 64}); err != nil || c.Leaves == 0 {
			t.Fatalf("δ ≠ 0 decided without leaves (%v)", err)
		}
	})
}

// TestInconclusiveSaysWhy: the downward softplus jump (the float64 branch
// taken within rounding of the threshold cannot be decided by the interval
// pass, so the rise there is not bounded by 0): inconclusive only once the
// budget is spent, with the leaves that block the verdict listed and
// counted, the settled and unsettled lengths adding up to 1, and the reason
// stated.
func TestInconclusiveSaysWhy(t *testing.T) {
	const budget = 512
	c, err := Certify(context.Background(), spjPath(t, -1e-3), CertifyOptions{Workers: 2, MaxIntervals: budget})
	if err != nil {
		t.Fatal(err)
	}
	if c.Verdict != Inconclusive {
		t.Skipf("verdict %s: not the inconclusive case", c.Verdict)
	}
	if c.Leaves < budget || c.UnsettledCount == 0 || len(c.Unsettled) != c.UnsettledCount {
		t.Errorf("inconclusive with %d of %d leaves, %d unsettled (%d listed)", c.Leaves, budget, c.UnsettledCount, len(c.Unsettled))
	}
	width := c.SettledFraction
	for _, u := range c.Unsettled {
		width += u[1] - u[0]
	}
	if math.Abs(width-1) > 1e-12 {
		t.Errorf("settled fraction + unsettled widths = %v, want 1", width)
	}
	if !strings.Contains(c.Reason, "budget") || !strings.Contains(c.Reason, "jump") {
		t.Errorf("reason %q does not name the budget and the jumps", c.Reason)
	}
}

// TestJumpWitnessTight: once an upward softplus jump decides non_monotone,
// the leaves around it are still split down to adjacent float64 α, so
// delta_lower is the jump itself (the float64 rise across the crossing at
// α = 0.375 ± 1e-12, whose smooth part is below 1e-14), not a loose bound
// from a wide leaf.
func TestJumpWitnessTight(t *testing.T) {
	p := spjPath(t, 1e-3)
	rise := p.At(0.375+1e-12).Loss - p.At(0.375-1e-12).Loss
	c, err := Certify(context.Background(), p, CertifyOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c.Verdict != NonMonotone || c.Witness == nil || c.DeltaLower < 0.99*rise || c.DeltaLower > c.DeltaUpper {
		t.Fatalf("%s, Δ ∈ [%v, %v], float64 rise across the jump %v", c.Verdict, c.DeltaLower, c.DeltaUpper, rise)
	}
	if w := c.Witness; w.Alpha > 0.375 || w.Beta < 0.375 || w.Beta-w.Alpha > 1e-12 {
		t.Errorf("witness [%v, %v] does not pin the crossing at 0.375", w.Alpha, w.Beta)
	}
}

// TestDeltaContinuousInvariant: on random small networks (certificate_prop's
// paths) and narrow bumps of random height, steepness and place delta_continuous ≥ delta_bounds[0] up to rounding whenever both
// exist (delta_continuous is Δ over all of [0,1]; delta_bounds[0] is a
// proven lower bound on it).
func TestDeltaContinuousInvariant(t *testing.T) {
	outer := t
	rapid.Check(t, func(t *rapid.T) {
		var p *functionspace.Path
		if rapid.Bool().Draw(t, "bump") { // a narrow bump somewhere between grid points
			p = bumpPathAt(outer, rapid.Float64Range(1e-4, 1e-2).Draw(t, "eps"), rapid.Float64Range(1e6, 1e9).Draw(t, "K"), rapid.Float64Range(0.01, 0.99).Draw(t, "c"))
		} else {
			p = randomCertPath(t)
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: 11, Certificate: true, NoPerLayer: true, MaxIntervals: 256})
		if err != nil {
			t.Fatal(err)
		}
		if r.DeltaBounds == nil || math.IsNaN(r.DeltaContinuous) {
			return
		}
		lo := r.DeltaBounds[0]
		if !(r.DeltaContinuous >= lo-RoundingError(lo, p.N)) {
			t.Fatalf("delta_continuous %v below delta_bounds[0] %v (pair %v)", r.DeltaContinuous, lo, r.DeltaContinuousPair)
		}
	})
}
