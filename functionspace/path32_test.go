package functionspace

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

const u32 = 0x1p-24 // float32 unit roundoff

// fatalHelper is what pathPair needs of *testing.T and *rapid.T.
type fatalHelper interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// pathPair builds the same path in float64 and float32.
func pathPair(t fatalHelper, m *nn.Model, s0, sT nn.State, x *mat.Dense, tg nn.Targets, opt Options) (p64, p32 *Path) {
	t.Helper()
	p64, err := New(m, s0, sT, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Precision = Float32
	p32, err = New(m, s0, sT, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if p64.Precision() != Float64 || p32.Precision() != Float32 {
		t.Fatalf("Precision() = %q, %q", p64.Precision(), p32.Precision())
	}
	return p64, p32
}

// jetTolerance is the float32 error allowed on every entry of γ, γ′ and γ″
// (THEORY.md §2): u·(Σ fan-in + layers + 4) times the largest magnitude
// (at least 1) among the float64 jet's entries, doubled for the
// acceleration's products and with a factor 4 of margin. Recursive
// summation of d products has relative error ≤ d·u (Higham's γ_d), and
// every elementwise layer adds a few u; the rounded θα, δ and inputs add
// one u each.
func jetTolerance(m *nn.Model, scale float64) float64 {
	d := 4.0
	for _, l := range m.Layers {
		d++
		if dl, ok := l.(*nn.Dense); ok {
			d += float64(dl.In)
		}
	}
	return 8 * u32 * d * math.Max(1, scale)
}

// compareJets checks every chunk's output jet of p32 against p64's at α
// with jetTolerance, the magnitude taken over all chunks (they share the
// layers' intermediate magnitudes) and multiplied by the BatchNorm layers'
// conditioning (bnCondition), and returns the largest error over the
// tolerance.
func compareJets(t *rapid.T, p64, p32 *Path, alpha float64) float64 {
	ps64, ps32 := p64.ParamsAt(alpha), p32.ParamsAt(alpha)
	kappa, scale := 1.0, 0.0
	var j64s, j32s []*nn.Jet
	for c := range p64.Chunks() {
		k := 1.0
		j64 := p64.JetChunk(ps64, c, func(l int, in *nn.Jet) { k *= bnCondition(p64, ps64, l, in) })
		kappa = math.Max(kappa, k)
		for _, v := range j64.M.RawMatrix().Data {
			scale = math.Max(scale, math.Abs(v))
		}
		j64s, j32s = append(j64s, j64), append(j32s, p32.JetChunk(ps32, c, nil))
	}
	tol := kappa * jetTolerance(p64.Model, scale)
	worst := 0.0
	for c, j64 := range j64s {
		j32 := j32s[c]
		r, k := j64.M.Dims()
		if r2, k2 := j32.M.Dims(); r2 != r || k2 != k {
			t.Fatalf("chunk %d: float32 jet [%d, %d], float64 [%d, %d]", c, r2, k2, r, k)
		}
		for i := 0; i < r; i++ {
			for q := 0; q < k; q++ {
				e := math.Abs(j32.M.At(i, q) - j64.M.At(i, q))
				if !(e <= tol) {
					part := []string{"γ", "γ′", "γ″"}[i/j64.N]
					t.Fatalf("α=%v chunk %d: %s[%d, %d] float32 %v, float64 %v: error %.3g > %.3g",
						alpha, c, part, i%j64.N, q, j32.M.At(i, q), j64.M.At(i, q), e, tol)
				}
				worst = math.Max(worst, e/tol)
			}
		}
	}
	return worst
}

// bnCondition is the factor by which a BatchNorm layer l amplifies an
// absolute rounding error of its input jet in (1 for other layers). The
// normalisation subtracts μ and divides by √(σ² + Eps): an error u·|h|
// becomes u·|h|/√(σ²+Eps) against outputs of order |h − μ|/√(σ²+Eps), a
// factor max|h| / max(max|h − μ|, √(σ²+Eps)); and the derivatives of
// r = (σ² + Eps)^(−1/2) multiply it into ẏ and ÿ (ġ u, g̈ u: THEORY.md §2,
// nn.BatchNorm.JetStats), a factor 1 + |ṙ/r| + |r̈/r|. It returns the
// largest product over features, at least 1.
func bnCondition(p *Path, ps *Params, l int, in *nn.Jet) float64 {
	b, ok := p.Model.Layers[l].(*nn.BatchNorm)
	if !ok {
		return 1
	}
	st := nn.RunningStatsJet(ps.at[l], ps.dp[l])
	if ps.stats != nil && ps.stats[l] != nil {
		st = ps.stats[l]
	}
	k := 1.0
	r, c := in.M.Dims()
	for j := 0; j < c; j++ {
		var hmax, umax float64
		for i := 0; i < r; i++ {
			mu := []float64{st.Mean[j], st.MeanVel[j], st.MeanAcc[j]}[min(i/in.N, 2)]
			hmax = math.Max(hmax, math.Abs(in.M.At(i, j)))
			umax = math.Max(umax, math.Abs(in.M.At(i, j)-mu))
		}
		ve := st.Var[j] + b.Eps
		rd := 0.5 * math.Abs(st.VarVel[j]) / ve
		rdd := 0.75*st.VarVel[j]*st.VarVel[j]/(ve*ve) + 0.5*math.Abs(st.VarAcc[j])/ve
		k = math.Max(k, hmax/math.Max(umax, math.Sqrt(ve))*(1+rd+rdd))
	}
	return k
}

// TestFloat32MatchesFloat64 compares the float32 output jet γ, γ′, γ″ with
// the float64 one (the oracle) on random MLPs with every activation kind
// and BatchNorm under both policies, with and without the first layer's
// cache, at α in [−0.1, 1.1].
func TestFloat32MatchesFloat64(t *testing.T) {
	var worst float64
	acts := []string{"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "softplus", "identity", "flatten"}
	rapid.Check(t, func(t *rapid.T) {
		act := rapid.SampledFrom(acts).Draw(t, "act")
		kind := act
		if act == "gelu_tanh" {
			kind = "gelu"
		}
		bn := rapid.SampledFrom([]BNPolicy{"", BNInterpolate, BNRecompute}).Draw(t, "batchnorm")
		// At least 2 inputs and 3 examples: with one input, or a reference
		// batch of 2, a hidden unit's batch variance σ²(α) vanishes where a
		// weight crosses 0, and there BatchNorm amplifies rounding by
		// 1/√Eps ≈ 300 in every derivative (see bnNet).
		in := rapid.IntRange(2, 8).Draw(t, "in")
		hid := rapid.IntRange(2, 12).Draw(t, "hidden")
		k := rapid.IntRange(2, 4).Draw(t, "k")
		spec := nn.MLPSpec([]int{in, hid, hid, k}, kind, "mse")
		if bn != "" {
			spec = nn.InsertBatchNorm(spec)
		}
		for i := range spec.Layers {
			if act == "gelu_tanh" && spec.Layers[i].Type == "gelu" {
				spec.Layers[i].Approximate = "tanh"
			}
			if act == "softplus" && spec.Layers[i].Type == "softplus" {
				beta, th := 2.0, 1.5 // the threshold branch is taken too
				spec.Layers[i].Beta, spec.Layers[i].Threshold = &beta, &th
			}
		}
		m, err := nn.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		sT, _ := nn.Init(m, "pytorch", 2, seed+1)
		rng := rand.New(rand.NewPCG(seed, 32))
		testnets.RandomizeBatchNorm(m, rng, 0.2, s0, sT)
		n := rapid.IntRange(3, 9).Draw(t, "n")
		x, tg := testnets.RandomData(rng, n, in, k, "mse", 1)
		opt := Options{Chunk: rapid.IntRange(1, 4).Draw(t, "chunk"), BNPolicy: bn, BNReference: n}
		if bn == "" {
			opt.BNPolicy = ""
		}
		if rapid.Bool().Draw(t, "no cache") {
			opt.FirstLayerCacheBytes = -1
		}
		p64, p32 := pathPair(t, m, s0, sT, x, tg, opt)
		// Beyond [−0.1, 1.1] an interpolated running_var (drawn from
		// [0.2, 1.2) at both ends) may turn negative.
		alpha := rapid.Float64Range(-0.1, 1.1).Draw(t, "α")
		worst = math.Max(worst, compareJets(t, p64, p32, alpha))
	})
	t.Logf("largest error / tolerance: %.3g", worst)
}

// TestFloat32Reduction checks that everything after the output jet is the
// float64 code: the float32 path's Sample equals the float64 reduction of
// its own (widened) output jet bit for bit, and differs from the float64
// path's (the passes really ran in float32).
func TestFloat32Reduction(t *testing.T) {
	m, _ := nn.Build(nn.MLPSpec([]int{5, 16, 16, 3}, "tanh", "cross_entropy"))
	s0, _ := nn.Init(m, "pytorch", 1, 3)
	sT, _ := nn.Init(m, "pytorch", 2, 4)
	x, tg := testnets.RandomData(rand.New(rand.NewPCG(3, 3)), 11, 5, 3, "cross_entropy", 1)
	p64, p32 := pathPair(t, m, s0, sT, x, tg, Options{Chunk: 4})
	s32, s64 := p32.At(0.3), p64.At(0.3)
	ps := p32.ParamsAt(0.3)
	want := &Sample{Speed: make([]float64, p32.N), TurningRate: make([]float64, p32.N),
		ExampleLoss: make([]float64, p32.N), ExampleDLoss: make([]float64, p32.N),
		Output: mat.NewDense(p32.N, 3, nil), Velocity: mat.NewDense(p32.N, 3, nil), Acceleration: mat.NewDense(p32.N, 3, nil)}
	var l float64
	for c, ch := range p32.Chunks() {
		j := p32.JetChunk(ps, c, nil)
		for _, v := range j.M.RawMatrix().Data {
			if float64(float32(v)) != v {
				t.Fatalf("chunk %d: output jet entry %v is not a float32", c, v)
			}
		}
		l += p32.reduce(j, ch[0], want).l
	}
	if got := l / float64(p32.N); got != s32.Loss {
		t.Errorf("float32 path: loss %v, float64 reduction of its jets %v", s32.Loss, got)
	}
	if !mat.Equal(s32.Acceleration, want.Acceleration) {
		t.Errorf("float32 path: γ″ differs from its chunks' jets")
	}
	if s32.Loss == s64.Loss || mat.Equal(s32.Velocity, s64.Velocity) {
		t.Errorf("float32 and float64 paths agree exactly (loss %v): the float32 passes did not run", s32.Loss)
	}
	if e := math.Abs(s32.Loss-s64.Loss) / s64.Loss; e > 1e-5 {
		t.Errorf("loss float32 %v, float64 %v: relative %.2g > 1e-5", s32.Loss, s64.Loss, e)
	}
}

// TestFloat32MNIST trains the demo's kind of network (784-32-10 ReLU, one
// epoch of SGD on 2000 images of the committed MNIST subset) and compares
// the float32 path with the float64 one on 1000 examples: the loss and L′
// to 1e-5 relative, the accuracy to one example, and the trapezoid and
// kink-aware Gauss lengths (the visit callback in float32) to 1e-4 relative.
func TestFloat32MNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	m, theta0, thetaT, x, targets := trainedMNIST(t)
	d := x.RawMatrix().Cols
	const n = 1000
	p64, p32 := pathPair(t, m, theta0, thetaT, x.Slice(0, n, 0, d).(*mat.Dense), targets.Rows(0, n), Options{Chunk: 400})
	var s64s, s32s []*Sample
	var worstL float64
	for _, a := range []float64{0, 0.25, 0.5, 0.75, 1} {
		s64, s32 := p64.At(a), p32.At(a)
		s64s, s32s = append(s64s, s64), append(s32s, s32)
		eL := math.Abs(s32.Loss-s64.Loss) / s64.Loss
		eD := math.Abs(s32.DLoss-s64.DLoss) / math.Abs(s64.DLoss)
		worstL = math.Max(worstL, eL)
		if eL > 1e-5 || eD > 1e-5 {
			t.Errorf("α=%v: loss %v / %v (rel %.2g), L′ %v / %v (rel %.2g): want ≤ 1e-5", a, s32.Loss, s64.Loss, eL, s32.DLoss, s64.DLoss, eD)
		}
		if d := math.Abs(s32.Accuracy - s64.Accuracy); d > 1.0/n+1e-12 {
			t.Errorf("α=%v: accuracy %v (float32), %v (float64)", a, s32.Accuracy, s64.Accuracy)
		}
	}
	if worstL == 0 {
		t.Errorf("float32 and float64 losses are identical: the float32 passes did not run")
	}
	t.Logf("largest relative loss difference %.2g", worstL)
	m64, st64 := GaussLengthTrapezoid(s64s)
	m32, st32 := GaussLengthTrapezoid(s32s)
	if e := math.Abs(m32-m64) / m64; e > 1e-4 {
		t.Errorf("trapezoid Gauss length mean %v (float32), %v: rel %.2g", m32, m64, e)
	}
	if e := math.Abs(st32-st64) / st64; e > 1e-4 {
		t.Errorf("trapezoid Gauss length stacked %v (float32), %v: rel %.2g", st32, st64, e)
	}
	// The kink-aware Gauss length on 50 examples: its grid passes run in
	// float32 and hand float32 pre-activations to the kink search; the
	// one-sided jets at the kinks are float64 per-row passes.
	const g = 50
	q64, q32 := pathPair(t, m, theta0, thetaT, x.Slice(0, g, 0, d).(*mat.Dense), targets.Rows(0, g), Options{Chunk: 20})
	o := GaussOptions{Intervals: 32, MaxIntervals: 32}
	r64, err := q64.GaussLength(context.Background(), 0, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	r32, err := q32.GaussLength(context.Background(), 0, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	if e := math.Abs(r32.Mean-r64.Mean) / r64.Mean; e > 1e-4 || r32.Kinks != r64.Kinks {
		t.Errorf("Gauss length mean %v with %d kinks (float32), %v with %d kinks: rel %.2g", r32.Mean, r32.Kinks, r64.Mean, r64.Kinks, e)
	}
}

// noRule32 is a layer without a float32 rule (an identity activation that
// does not expose nn.Activation's Jet32).
type noRule32 struct{ a *nn.Activation }

func (l noRule32) Type() string                                    { return "custom" }
func (l noRule32) InSize() int                                     { return l.a.InSize() }
func (l noRule32) OutSize() int                                    { return l.a.OutSize() }
func (l noRule32) Params() []nn.Param                              { return nil }
func (l noRule32) Forward(p []*nn.Tensor, x *mat.Dense) *mat.Dense { return l.a.Forward(p, x) }
func (l noRule32) Backward(p []*nn.Tensor, x, y, dy *mat.Dense, g []*nn.Tensor) *mat.Dense {
	return l.a.Backward(p, x, y, dy, g)
}
func (l noRule32) Jet(p, dp []*nn.Tensor, in *nn.Jet) *nn.Jet { return l.a.Jet(p, dp, in) }
func (l noRule32) Kinked() bool                               { return l.a.Kinked() }
func (l noRule32) Slopes() (on, off float64)                  { return l.a.Slopes() }

// noKinks is an activation that declares nothing about its kinks.
type noKinks struct{ noRule32 }

func (noKinks) Kinked() {}

// TestUndeclaredKinksRefused: a layer that does not declare its kinks
// (nn.KinkSites) is refused at construction, by index, type and rule,
// rather than skipped by the kink search (kinks at the wrong α).
func TestUndeclaredKinksRefused(t *testing.T) {
	m, _ := nn.Build(nn.MLPSpec([]int{3, 4, 2}, "relu", "cross_entropy"))
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x, tg := testnets.RandomData(rand.New(rand.NewPCG(1, 1)), 5, 3, 2, "cross_entropy", 1)
	custom := &nn.Model{Spec: m.Spec, Layers: []nn.Layer{m.Layers[0], noKinks{noRule32{m.Layers[1].(*nn.Activation)}}, m.Layers[2]}}
	_, err := New(custom, s0, sT, x, tg, Options{})
	if err == nil || !strings.Contains(err.Error(), "layers[1] (custom)") || !strings.Contains(err.Error(), "kink declaration") {
		t.Errorf("a layer without a kink declaration: error %v, want one naming layers[1] (custom) and the kink declaration", err)
	}
}

// TestPrecisionOption: "" and "float64" choose float64, "float32" float32,
// anything else is an error naming the field; a layer without a float32
// rule is refused by name; the float32 first-layer cache takes 4-byte
// entries (kept under a limit that refuses the 8-byte one).
func TestPrecisionOption(t *testing.T) {
	m, _ := nn.Build(nn.MLPSpec([]int{3, 4, 2}, "relu", "cross_entropy"))
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x, tg := testnets.RandomData(rand.New(rand.NewPCG(1, 1)), 5, 3, 2, "cross_entropy", 1)
	for _, c := range []struct{ in, want Precision }{{"", Float64}, {"float64", Float64}, {"float32", Float32}} {
		p, err := New(m, s0, sT, x, tg, Options{Precision: c.in})
		if err != nil || p.Precision() != c.want {
			t.Errorf("Precision %q: %v, %v; want %q", c.in, p, err, c.want)
		}
	}
	for _, bad := range []Precision{"float16", "Float32", "fp32", "32"} {
		if _, err := New(m, s0, sT, x, tg, Options{Precision: bad}); err == nil || !strings.Contains(err.Error(), "Precision") || !strings.Contains(err.Error(), string(bad)) {
			t.Errorf("Precision %q: error %v, want one naming the field and the value", bad, err)
		}
	}
	custom := &nn.Model{Spec: m.Spec, Layers: []nn.Layer{m.Layers[0], noRule32{m.Layers[1].(*nn.Activation)}, m.Layers[2]}}
	if _, err := New(custom, s0, sT, x, tg, Options{}); err != nil {
		t.Fatalf("float64 with a custom layer: %v", err)
	}
	if _, err := New(custom, s0, sT, x, tg, Options{Precision: Float32}); err == nil || !strings.Contains(err.Error(), "layers[1] (custom)") {
		t.Errorf("float32 with a layer without a float32 rule: error %v, want one naming layers[1] (custom)", err)
	}
	// 5 examples × 4 units × 2 products: 320 bytes in float64, 160 in float32.
	for _, c := range []struct {
		limit          int
		want64, want32 bool
	}{{160, false, true}, {319, false, true}, {320, true, true}, {159, false, false}} {
		p64, _ := New(m, s0, sT, x, tg, Options{FirstLayerCacheBytes: c.limit})
		p32, _ := New(m, s0, sT, x, tg, Options{FirstLayerCacheBytes: c.limit, Precision: Float32})
		if (p64.first != nil) != c.want64 || (p32.f32.first != nil) != c.want32 || p32.first != nil {
			t.Errorf("cache limit %d bytes: float64 cached %v, float32 cached %v (float64 cache in float32 mode: %v)",
				c.limit, p64.first != nil, p32.f32.first != nil, p32.first != nil)
		}
	}
}
