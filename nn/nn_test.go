package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/num/hyperdual"
	"pgregory.net/rapid"
)

// allActivations lists every activation layer spec the build supports.
func allActivations() []LayerSpec {
	slope := 0.2
	beta, thr := 2.0, 5.0
	return []LayerSpec{
		{Type: "relu"}, {Type: "leaky_relu", Slope: &slope}, {Type: "tanh"}, {Type: "sigmoid"},
		{Type: "gelu"}, {Type: "gelu", Approximate: "tanh"}, {Type: "softplus"},
		{Type: "softplus", Beta: &beta, Threshold: &thr}, {Type: "identity"},
	}
}

func randomModel(t *rapid.T, act LayerSpec, loss string) (*Model, State, State) {
	widths := []int{rapid.IntRange(1, 5).Draw(t, "in")}
	depth := rapid.IntRange(1, 3).Draw(t, "depth")
	for i := 0; i < depth; i++ {
		widths = append(widths, rapid.IntRange(1, 5).Draw(t, "w"))
	}
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{widths[0]}, Loss: loss}
	for i := 0; i+1 < len(widths); i++ {
		if i > 0 {
			s.Layers = append(s.Layers, act)
		}
		s.Layers = append(s.Layers, LayerSpec{Type: "linear", In: widths[i], Out: widths[i+1]})
	}
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := Init(m, "pytorch", 1.5, seed)
	sT, _ := Init(m, "pytorch", 1.5, seed+1)
	return m, s0, sT
}

// TestBackwardMatchesFiniteDifferences checks every gradient of the training
// loss against gonum's central differences.
func TestBackwardMatchesFiniteDifferences(t *testing.T) {
	for _, act := range allActivations() {
		for _, loss := range []string{"mse", "cross_entropy"} {
			t.Run(act.Type+act.Approximate+"/"+loss, func(t *testing.T) {
				rapid.Check(t, func(t *rapid.T) {
					m, s, _ := randomModel(t, act, loss)
					n := 3
					rng := rand.New(rand.NewPCG(1, 2))
					x := mat.NewDense(n, m.Spec.InputSize(), nil)
					for i := range x.RawMatrix().Data {
						x.RawMatrix().Data[i] = rng.NormFloat64()
					}
					k := m.OutSize()
					tg := Targets{Labels: []int{0, k - 1, k / 2}}
					acts := m.ForwardTrace(s, x)
					_, dy := Loss(loss, acts[len(acts)-1], tg, true)
					g := m.Backward(s, acts, dy)
					for _, key := range m.Trainable() {
						p := s[key]
						orig := append([]float64(nil), p.Data...)
						num := fd.Gradient(nil, func(w []float64) float64 {
							copy(p.Data, w)
							l, _ := Loss(loss, m.Forward(s, x), tg, false)
							return l
						}, orig, &fd.Settings{Formula: fd.Central})
						copy(p.Data, orig)
						for j := range num {
							if math.Abs(num[j]-g[key].Data[j]) > 1e-6*(1+math.Abs(num[j])) {
								// ReLU kinks inside the difference stencil are rare; skip them.
								if act.Type == "relu" || act.Type == "leaky_relu" {
									continue
								}
								t.Fatalf("%s[%d]: backward %v, finite differences %v", key, j, g[key].Data[j], num[j])
							}
						}
					}
				})
			})
		}
	}
}

// hyperdualForward evaluates the model at α = 0.5+ε with hyperdual numbers
// seeded E1 = E2 = δ (THEORY.md §2): the E1 part is γ′, the E1E2 part is γ″.
func hyperdualForward(m *Model, s0, sT State, alpha float64, x []float64) (val, vel, acc []float64) {
	h := make([]hyperdual.Number, len(x))
	for i, v := range x {
		h[i] = hyperdual.Number{Real: v}
	}
	a := hyperdual.Number{Real: alpha, E1mag: 1, E2mag: 1}
	for i, l := range m.Layers {
		switch l := l.(type) {
		case *Dense:
			w0, wT := s0[ParamKey(i, "weight")], sT[ParamKey(i, "weight")]
			out := make([]hyperdual.Number, l.Out)
			for o := 0; o < l.Out; o++ {
				var z hyperdual.Number
				if l.HasBias {
					b0, bT := s0[ParamKey(i, "bias")].Data[o], sT[ParamKey(i, "bias")].Data[o]
					z = hyperdual.Add(hyperdual.Number{Real: b0}, hyperdual.Scale(bT-b0, a))
				}
				for j := 0; j < l.In; j++ {
					w := hyperdual.Add(hyperdual.Number{Real: w0.Data[o*l.In+j]}, hyperdual.Scale(wT.Data[o*l.In+j]-w0.Data[o*l.In+j], a))
					z = hyperdual.Add(z, hyperdual.Mul(w, h[j]))
				}
				out[o] = z
			}
			h = out
		case *Activation:
			for j, z := range h {
				v, d1, d2 := l.Eval(z.Real, false)
				// chain rule on hyperdual numbers: f(z) = v + d1·(z−z0) + d2/2·(z−z0)²
				h[j] = hyperdual.Number{Real: v, E1mag: d1 * z.E1mag, E2mag: d1 * z.E2mag, E1E2mag: d2*z.E1mag*z.E2mag + d1*z.E1E2mag}
			}
		}
	}
	for _, z := range h {
		val = append(val, z.Real)
		vel = append(vel, z.E1mag)
		acc = append(acc, z.E1E2mag)
	}
	return val, vel, acc
}

// TestJetMatchesHyperdual checks the second-order forward rule of every
// layer against gonum's hyperdual numbers at random α.
func TestJetMatchesHyperdual(t *testing.T) {
	for _, act := range allActivations() {
		t.Run(act.Type+act.Approximate, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				m, s0, sT := randomModel(t, act, "mse")
				alpha := rapid.Float64Range(-0.5, 1.5).Draw(t, "alpha")
				n := 2
				rng := rand.New(rand.NewPCG(3, 4))
				x := mat.NewDense(n, m.Spec.InputSize(), nil)
				for i := range x.RawMatrix().Data {
					x.RawMatrix().Data[i] = rng.NormFloat64()
				}
				sa, d := Interpolate(s0, sT, alpha), Difference(s0, sT)
				j := NewConstJet(x)
				for i, l := range m.Layers {
					j = l.Jet(m.LayerParams(sa, i), m.LayerParams(d, i), j)
				}
				for r := 0; r < n; r++ {
					val, vel, acc := hyperdualForward(m, s0, sT, alpha, x.RawRowView(r))
					for c := range val {
						check := func(name string, got, want float64) {
							if math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
								t.Fatalf("%s[%d,%d] at α=%v: jet %v, hyperdual %v", name, r, c, alpha, got, want)
							}
						}
						check("γ", j.Value().At(r, c), val[c])
						if j.Const {
							check("γ′", 0, vel[c])
							continue
						}
						check("γ′", j.Velocity().At(r, c), vel[c])
						check("γ″", j.Acceleration().At(r, c), acc[c])
					}
				}
			})
		})
	}
}

// TestActivationDerivatives checks σ′ and σ″ of every smooth activation
// against central differences of σ and σ′.
func TestActivationDerivatives(t *testing.T) {
	for _, ls := range allActivations() {
		l, err := newLayer(ls, 1)
		if err != nil {
			t.Fatal(err)
		}
		a := l.(*Activation)
		for _, z := range []float64{-3.1, -0.7, 0.3, 1.9, 4.2} {
			f := func(z float64) float64 { v, _, _ := a.Eval(z, false); return v }
			f1 := func(z float64) float64 { _, d, _ := a.Eval(z, false); return d }
			_, d1, d2 := a.Eval(z, false)
			if got := fd.Derivative(f, z, &fd.Settings{Formula: fd.Central}); math.Abs(got-d1) > 1e-7 {
				t.Errorf("%s%s σ′(%v) = %v, finite differences %v", ls.Type, ls.Approximate, z, d1, got)
			}
			if got := fd.Derivative(f1, z, &fd.Settings{Formula: fd.Central}); math.Abs(got-d2) > 1e-7 {
				t.Errorf("%s%s σ″(%v) = %v, finite differences %v", ls.Type, ls.Approximate, z, d2, got)
			}
		}
	}
}

func TestLossClosedForms(t *testing.T) {
	out := mat.NewDense(2, 3, []float64{1, 2, 3, 0, 0, 0})
	// cross-entropy: row 1 label 2: log(e+e²+e³) − 3; row 2 label 0: log 3.
	want := (math.Log(math.E+math.Exp(2)+math.Exp(3)) - 3 + math.Log(3)) / 2
	if got, _ := Loss("cross_entropy", out, Targets{Labels: []int{2, 0}}, false); math.Abs(got-want) > 1e-15 {
		t.Errorf("cross_entropy = %v, want %v", got, want)
	}
	// mse against one-hot labels: ((1)²+(2)²+(2)² + 1) / 6
	if got, _ := Loss("mse", out, Targets{Labels: []int{2, 0}}, false); math.Abs(got-10.0/6) > 1e-15 {
		t.Errorf("mse = %v, want %v", got, 10.0/6)
	}
	big := mat.NewDense(1, 2, []float64{1000, 0})
	if got, _ := Loss("cross_entropy", big, Targets{Labels: []int{1}}, false); got != 1000 {
		t.Errorf("cross_entropy with logit 1000 = %v, want 1000 (log-sum-exp)", got)
	}
}

func TestSpecErrors(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Format: "x"}, "format"},
		{Spec{Format: FormatSequentialV1, InputShape: []int{2}, Loss: "hinge", Layers: []LayerSpec{{Type: "relu"}}}, "loss"},
		{Spec{Format: FormatSequentialV1, InputShape: []int{2}, Loss: "mse", Layers: []LayerSpec{{Type: "conv3d"}}}, `layers[0]: type: unsupported layer type "conv3d"`},
		{Spec{Format: FormatSequentialV1, InputShape: []int{2}, Loss: "mse", Layers: []LayerSpec{{Type: "linear", In: 3, Out: 1}}}, "layers[0]: linear: in=3 but the previous layer gives 2"},
	} {
		err := c.spec.Validate()
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want error containing %q", c.spec, err, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestCheckState(t *testing.T) {
	m, _ := Build(MLPSpec([]int{3, 4, 2}, "relu", "mse"))
	s, _ := Init(m, "pytorch", 1, 1)
	if err := m.Check(s, "init.safetensors"); err != nil {
		t.Fatal(err)
	}
	bad := s.Clone()
	bad["2.weight"] = NewTensor(4, 2)
	if err := m.Check(bad, "init.safetensors"); err == nil || err.Error() != "init.safetensors: 2.weight: expected shape [2, 4], found [4, 2] (model.json's layers[2], linear)" {
		t.Errorf("shape mismatch: %v", err)
	}
	bad = s.Clone()
	bad["0.bias"].Data[1] = math.NaN()
	if err := m.Check(bad, "final.safetensors"); err == nil || !contains(err.Error(), "final.safetensors: 0.bias: non-finite value NaN") {
		t.Errorf("NaN: %v", err)
	}
}

// TestInitStatistics checks each scheme's spread against its formula: the
// sample standard deviation of a 256×512 weight is within 2% of the target.
func TestInitStatistics(t *testing.T) {
	m, _ := Build(MLPSpec([]int{512, 256}, "relu", "mse"))
	in, out := 512.0, 256.0
	for scheme, sd := range map[string]float64{
		"pytorch":         1 / math.Sqrt(in) / math.Sqrt(3),
		"kaiming_normal":  math.Sqrt(2 / in),
		"kaiming_uniform": math.Sqrt(2 / in),
		"xavier_normal":   math.Sqrt(2 / (in + out)),
		"xavier_uniform":  math.Sqrt(2 / (in + out)),
		"lecun_normal":    math.Sqrt(1 / in),
		"lecun_uniform":   math.Sqrt(1 / in),
	} {
		s, err := Init(m, scheme, 3, 7)
		if err != nil {
			t.Fatal(err)
		}
		w := s["0.weight"].Data
		var ss float64
		for _, v := range w {
			ss += v * v
		}
		got := math.Sqrt(ss / float64(len(w)))
		if math.Abs(got/(3*sd)-1) > 0.02 {
			t.Errorf("%s: weight sd %v, want %v", scheme, got, 3*sd)
		}
	}
	if _, err := Init(m, "orthogonal", 1, 1); err == nil {
		t.Error("unknown scheme accepted")
	}
}
