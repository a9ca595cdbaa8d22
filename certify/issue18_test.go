package certify

import (
	"context"
	"encoding/json"
	"errors"
	"math"

	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// The regression cases of issue 18 ("the certificate never lies").

func f64(v float64) *float64 { return &v }

// scalarPath builds a path of the model spec with every parameter given by
// name (θ0 and θT), inputs x [N, in] and targets.
func scalarPath(t *testing.T, spec *nn.Spec, s0, sT map[string][]float64, x *mat.Dense, tg nn.Targets, opt functionspace.Options) *functionspace.Path {
	t.Helper()
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := nn.Init(m, "pytorch", 1, 1)
	b := a.Clone()
	for k, v := range s0 {
		copy(a[k].Data, v)
	}
	for k, v := range sT {
		copy(b[k].Data, v)
	}
	p, err := functionspace.New(m, a, b, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// softplusJumpPath: z(α) = z0 + α·dz through softplus(β, threshold), then
// out = z·1 and mse against y = 1000: L = (s − 1000)² falls with z, except
// where PyTorch's softplus switches to the identity and s drops by
// log1p(exp(−threshold))/β — there L jumps up.
func softplusJumpPath(t *testing.T, beta, threshold, z0, dz float64) *functionspace.Path {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 1, Out: 1}, {Type: "softplus", Beta: f64(beta), Threshold: f64(threshold)}, {Type: "linear", In: 1, Out: 1}}}
	s0 := map[string][]float64{"0.weight": {0}, "0.bias": {z0}, "2.weight": {1}, "2.bias": {0}}
	sT := map[string][]float64{"0.weight": {0}, "0.bias": {z0 + dz}, "2.weight": {1}, "2.bias": {0}}
	return scalarPath(t, spec, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{1000})}, functionspace.Options{})
}

// TestSoftplusThresholdJump: PyTorch's defaults (β = 1, threshold 20), the
// threshold crossed at α ≈ 0.3 (the case: certified with Δ ∈ [0, 0]
// before), also β = 5 and threshold 0; the jump (≈ 2·980·2.06e-9 for the
// first) is refuted by the two ends of the leaf around it. The true rise across the
// jump, measured in float64 at α = 0.3 ∓ 1e-12 (where the smooth part is
// 1e-12·|L′| ≈ 7e-10), must be inside delta_bounds and the verdict must not
// be certified_monotone.
func TestSoftplusThresholdJump(t *testing.T) {
	for _, c := range []struct{ beta, threshold, z0, dz float64 }{
		{1, 20, 19.9, 1.0 / 3},
		{5, 20, 4 - 0.3/15, 1.0 / 15},
		{1, 0, -0.3, 1},
	} {
		p := softplusJumpPath(t, c.beta, c.threshold, c.z0, c.dz)
		cross := (c.threshold/c.beta - c.z0) / c.dz
		rise := p.At(cross+1e-12).Loss - p.At(cross-1e-12).Loss
		if !(rise > 0) {
			t.Fatalf("%+v: the test network has no upward jump (%v)", c, rise)
		}
		cert, err := Certify(context.Background(), p, CertifyOptions{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if cert.Verdict == CertifiedMonotone || cert.DeltaUpper < rise*(1-1e-6) || cert.DeltaLower > cert.DeltaUpper {
			t.Errorf("%+v: %s with Δ ∈ [%v, %v], true rise across the jump %v", c, cert.Verdict, cert.DeltaLower, cert.DeltaUpper, rise)
		}
		// the jump leaf is split down to adjacent α: the jump is a witness
		if w := cert.Witness; cert.Verdict != NonMonotone || w == nil || w.Alpha > cross || w.Beta < cross {
			t.Errorf("%+v: %s, witness %+v (crossing at %v)", c, cert.Verdict, w, cross)
		}
		if cert.JumpLeaves == 0 {
			t.Errorf("%+v: no leaf marked as jumping", c)
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: 50, Certificate: true, LossOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict == CertifiedMonotone {
			t.Errorf("%+v: report verdict %s", c, r.Verdict)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Error(err)
		}
	}
	// threshold 0: the jump is log 2 ≈ 0.69 in s, 1.4e3 in L: refuted.
	p := softplusJumpPath(t, 1, 0, -0.3, 1)
	cert, err := Certify(context.Background(), p, CertifyOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Verdict != NonMonotone || cert.Witness == nil || cert.Witness.Alpha >= 0.3 || cert.Witness.Beta <= 0.3 {
		t.Errorf("threshold 0: %s, witness %+v", cert.Verdict, cert.Witness)
	}
}

// cancellationPath: a linear model (a fixed identity layer, then the
// cancelling one, after the first layer's exact affine products) whose output is exactly 1.5 for every α
// (input 3, weight 1e9 + 0.375α, bias −(3e9 − 1.5) − 1.125α; ends exact in
// float64), so L = 1.5² is constant; float64 rounds w(α) and b(α) by up to
// 6e-8 each, so the grid sees "rises" of about 1e-7, far above the grid's
// rounding estimate 1e-12·(1 + |L|).
func cancellationPath(t *testing.T, policy functionspace.BNPolicy) *functionspace.Path {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1}, {Type: "linear", In: 1, Out: 1}}}
	s0 := map[string][]float64{"0.weight": {1}, "0.bias": {0}, "1.weight": {1e9}, "1.bias": {-(3e9 - 1.5)}}
	sT := map[string][]float64{"0.weight": {1}, "0.bias": {0}, "1.weight": {1e9 + 0.375}, "1.bias": {-(3e9 - 1.5) - 1.125}}
	return scalarPath(t, spec, s0, sT, mat.NewDense(1, 1, []float64{3}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{BNPolicy: policy})
}

// TestCancellationNotNonMonotone: the constant loss of cancellationPath is
// never called non_monotone, with or without the certificate, and the
// grid's unproven rise is recorded in conditions.witness_check.
func TestCancellationNotNonMonotone(t *testing.T) {
	p := cancellationPath(t, "")
	loss := make([]float64, 101)
	for j := range loss {
		loss[j] = p.At(float64(j) / 100).Loss
	}
	if d := Delta(loss); !(d > 1e-9) {
		t.Fatalf("the test network shows no float64 rise (grid Δ %v)", d)
	}
	for _, cert := range []bool{false, true} {
		r, err := Analyze(context.Background(), p, Options{Alphas: 101, Certificate: cert})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict == NonMonotone {
			t.Errorf("certificate %v: non_monotone for a constant loss (witness %+v)", cert, r.Witness)
		}
		if !cert {
			if r.Verdict != MonotoneOnGrid {
				t.Errorf("grid verdict %s", r.Verdict)
			}
			cs := r.Conditions.WitnessCheck
			if len(cs) == 0 || cs[0].Proven {
				t.Errorf("witness_check %+v", cs)
			}
		}
	}
}

// TestCrossEntropyHugeLogits: logits up to 2e6 (per-example losses far
// above 745): the loss rises from ≈ 0 to 2e6 along the line, or falls the
// other way. Both are decided with finite bounds and a valid report.
func TestCrossEntropyHugeLogits(t *testing.T) {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{2}, Loss: "cross_entropy", Layers: []nn.LayerSpec{{Type: "linear", In: 2, Out: 2}}}
	good := map[string][]float64{"0.weight": {1e6, 0, 0, 0}, "0.bias": {0, 0}}
	bad := map[string][]float64{"0.weight": {0, 0, 2e6, 0}, "0.bias": {0, 0}}
	x := mat.NewDense(1, 2, []float64{1, 0})
	tg := nn.Targets{Labels: []int{0}}
	for _, c := range []struct {
		from, to map[string][]float64
		want     Verdict
	}{{good, bad, NonMonotone}, {bad, good, CertifiedMonotone}} {
		p := scalarPath(t, spec, c.from, c.to, x, tg, functionspace.Options{})
		r, err := Analyze(context.Background(), p, Options{Alphas: 50, Certificate: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != c.want || r.DeltaBounds == nil {
			t.Errorf("verdict %s (want %s), bounds %v", r.Verdict, c.want, r.DeltaBounds)
		}
		if c.want == NonMonotone && r.DeltaBounds != nil && r.DeltaBounds[0] < 1e6 {
			t.Errorf("lower bound %v for a rise of about 1.33e6", r.DeltaBounds[0])
		}
		if _, err := json.Marshal(r); err != nil {
			t.Error(err)
		}
	}
}

// TestWitnessKept: a narrow bump L = (tanh(k(α − a)) − tanh(k(α − b)))²
// on [a, b] = [0.505, 0.525], k = 1000, which the 101-point grid samples
// (α = 0.51, 0.52) but a certificate of 16 leaves (midpoints (2j+1)/32,
// ends j/16 where it evaluates them) does not (tolerance 1e-6: the tails
// rise by less than 1e-8; before issue 13's halves round the bump was on
// [0.495, 0.515], around the end 0.5, which the certificate now evaluates
// and so finds the bump itself): the certificate alone is inconclusive, and the report is
// non_monotone with the grid's proven witness (RUN_FORMAT: inconclusive only
// without a witness).
func TestWitnessKept(t *testing.T) {
	const k, a, b = 1000.0, 0.505, 0.525
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 1, Out: 2}, {Type: "tanh"}, {Type: "linear", In: 2, Out: 1}}}
	s0 := map[string][]float64{"0.weight": {0, 0}, "0.bias": {-k * a, -k * b}, "2.weight": {1, -1}, "2.bias": {0}}
	sT := map[string][]float64{"0.weight": {0, 0}, "0.bias": {k - k*a, k - k*b}, "2.weight": {1, -1}, "2.bias": {0}}
	p := scalarPath(t, spec, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{})
	cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 1e-6, MaxIntervals: 16, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Verdict != Inconclusive {
		t.Fatalf("the 16-leaf certificate alone is %s, not inconclusive", cert.Verdict)
	}
	r, err := Analyze(context.Background(), p, Options{Alphas: 101, Tolerance: 1e-6, LossOnly: true, Certificate: true, MaxIntervals: 16})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != NonMonotone || r.Witness == nil || r.Witness.Alpha >= a || r.Witness.Beta < a || r.Witness.Beta > b || r.DeltaBounds == nil || r.DeltaBounds[0] < 3.9 {
		t.Errorf("report %s, witness %+v, bounds %v", r.Verdict, r.Witness, r.DeltaBounds)
	}
}

// TestBatchNormFirstAndNoLinear: models whose first parametrised layer is
// a batchnorm1d, or with no linear layer at all (only a batchnorm1d and
// an activation, or only an activation), under both BatchNorm policies:
// no panic, and the certificate's bounds contain the dense grid's Δ.
func TestBatchNormFirstAndNoLinear(t *testing.T) {
	specs := map[string][]nn.LayerSpec{
		"batchnorm first": {{Type: "batchnorm1d", Features: 3}, {Type: "linear", In: 3, Out: 4}, {Type: "tanh"}, {Type: "linear", In: 4, Out: 3}},
		"no linear":       {{Type: "batchnorm1d", Features: 3}, {Type: "sigmoid"}},
		"no parameters":   {{Type: "flatten"}, {Type: "tanh"}},
	}
	for name, layers := range specs {
		for _, policy := range []functionspace.BNPolicy{functionspace.BNInterpolate, functionspace.BNRecompute} {
			for seed := uint64(1); seed <= 4; seed++ {
				m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{3}, Loss: "mse", Layers: layers})
				if err != nil {
					t.Fatal(err)
				}
				s0, _ := nn.Init(m, "pytorch", 1, seed)
				sT, _ := nn.Init(m, "pytorch", 1, seed+1)
				rng := rand.New(rand.NewPCG(seed, 5))
				testnets.RandomizeBatchNorm(m, rng, 0.1, s0, sT)
				x, tg := testnets.RandomData(rng, 5, 3, 3, "mse", 2)
				p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{BNPolicy: policy})
				if err != nil {
					t.Fatal(err)
				}
				r, err := Analyze(context.Background(), p, Options{Alphas: 20, Certificate: true, LossOnly: true})
				if err != nil {
					t.Fatalf("%s, %s: %v", name, policy, err)
				}
				loss := make([]float64, 401)
				for j := range loss {
					loss[j] = p.At(float64(j) / 400).Loss
				}
				d := Delta(loss)
				if r.DeltaBounds == nil || r.DeltaBounds[1] < d-2*RoundingError(loss[0], p.N) || r.DeltaBounds[0] > r.DeltaBounds[1] {
					t.Errorf("%s, %s, seed %d: bounds %v, dense grid Δ %v", name, policy, seed, r.DeltaBounds, d)
				}
				if r.Verdict == CertifiedMonotone && d > 1e-9 {
					t.Errorf("%s, %s, seed %d: certified with grid Δ %v", name, policy, seed, d)
				}
			}
		}
	}
}

// TestCertificateSelfCheck: contradictions are errors wrapping
// ErrContradiction, never verdicts.
func TestCertificateSelfCheck(t *testing.T) {
	w := &CertWitness{Alpha: 0.2, Beta: 0.3, Rise: 1e-3}
	for name, c := range map[string]Certificate{
		"bounds cross":         {Verdict: Inconclusive, DeltaLower: 4.488, DeltaUpper: 0},
		"certified with rise":  {Verdict: CertifiedMonotone, Witness: w},
		"refuted, no witness":  {Verdict: NonMonotone, DeltaLower: 1, DeltaUpper: 2},
		"empty point encloser": {Verdict: Inconclusive, DeltaUpper: 1, Points: []CertPoint{{Alpha: 0.5, Lo: 2, Hi: 1}}},
	} {
		if err := c.check(); !errors.Is(err, ErrContradiction) {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := Certificate{Verdict: NonMonotone, DeltaLower: 1e-3, DeltaUpper: 2, Witness: w}
	if err := ok.check(); err != nil {
		t.Error(err)
	}
}

// TestCertificateJSONUnbounded: an unbounded upper bound is written as null
// with a note; the report stays valid JSON.
func TestCertificateJSONUnbounded(t *testing.T) {
	c := &Certificate{Verdict: Inconclusive, DeltaUpper: math.Inf(1)}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["delta_upper"]; !ok || v != nil {
		t.Errorf("delta_upper = %v in %s", v, b)
	}
	if m["delta_lower"] != 0.0 || m["notes"] == nil {
		t.Errorf("%s", b)
	}
}
