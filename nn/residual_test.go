package nn

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/num/hyperdual"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// randomResidual draws linear → residual{body: linear, act, linear;
// shortcut: none or a linear, bias or not; scale or not} → act → linear,
// with θ0 and θT from Init at scale 1.5 (the scale is then drawn away from 0
// so that the body matters).
func randomResidual(t *rapid.T, act LayerSpec, bn bool) (*Model, State, State) {
	in := rapid.IntRange(1, 4).Draw(t, "in")
	w := rapid.IntRange(1, 4).Draw(t, "w")
	h := rapid.IntRange(1, 4).Draw(t, "h")
	k := rapid.IntRange(1, 3).Draw(t, "k")
	body := []LayerSpec{{Type: "linear", In: w, Out: h}, act, {Type: "linear", In: h, Out: w}}
	if bn {
		body = append(body, LayerSpec{Type: "batchnorm1d"})
	}
	var short []LayerSpec
	if rapid.Bool().Draw(t, "linear shortcut") {
		bias := rapid.Bool().Draw(t, "shortcut bias")
		short = []LayerSpec{{Type: "linear", In: w, Out: w, Bias: &bias}}
	}
	scale := rapid.Bool().Draw(t, "scale")
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{in}, Loss: "mse", Layers: []LayerSpec{
		{Type: "linear", In: in, Out: w},
		{Type: "residual", Body: body, Shortcut: short, Scale: &scale},
		act,
		{Type: "linear", In: w, Out: k},
	}}
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := Init(m, "pytorch", 1.5, seed)
	sT, _ := Init(m, "pytorch", 1.5, seed+1)
	if scale {
		s0["1.scale"].Data[0] = rapid.Float64Range(-1.5, 1.5).Draw(t, "c0")
		sT["1.scale"].Data[0] = rapid.Float64Range(-1.5, 1.5).Draw(t, "cT")
	}
	return m, s0, sT
}

// hdLayers evaluates layers (state_dict keys key(j)) on h with hyperdual
// numbers: an oracle written independently of the jet rules, with the
// residual's out = shortcut(h) + c·body(h) in hyperdual arithmetic.
func hdLayers(layers []Layer, key func(j int) string, s0, sT State, a hyperdual.Number, h []hyperdual.Number) []hyperdual.Number {
	lerp := func(k string, q int) hyperdual.Number {
		v0, vT := s0[k].Data[q], sT[k].Data[q]
		return hyperdual.Add(hyperdual.Number{Real: v0}, hyperdual.Scale(vT-v0, a))
	}
	for j, l := range layers {
		switch l := l.(type) {
		case *Dense:
			out := make([]hyperdual.Number, l.Out)
			for o := range out {
				var z hyperdual.Number
				if l.HasBias {
					z = lerp(key(j)+".bias", o)
				}
				for q := 0; q < l.In; q++ {
					z = hyperdual.Add(z, hyperdual.Mul(lerp(key(j)+".weight", o*l.In+q), h[q]))
				}
				out[o] = z
			}
			h = out
		case *Activation:
			out := make([]hyperdual.Number, len(h))
			for q, z := range h {
				v, d1, d2 := l.Eval(z.Real, false)
				out[q] = hyperdual.Number{Real: v, E1mag: d1 * z.E1mag, E2mag: d1 * z.E2mag, E1E2mag: d2*z.E1mag*z.E2mag + d1*z.E1E2mag}
			}
			h = out
		case *Residual:
			k := key(j)
			b := hdLayers(l.Body, func(q int) string { return k + ".body." + strconv.Itoa(q) }, s0, sT, a, h)
			s := hdLayers(l.Shortcut, func(q int) string { return k + ".shortcut." + strconv.Itoa(q) }, s0, sT, a, h)
			c := hyperdual.Number{Real: 1}
			if l.Scale {
				c = lerp(k+".scale", 0)
			}
			out := make([]hyperdual.Number, len(b))
			for q := range out {
				out[q] = hyperdual.Add(s[q], hyperdual.Mul(c, b[q]))
			}
			h = out
		default:
			panic("hdLayers: no hyperdual rule for " + l.Type())
		}
	}
	return h
}

func randomInputs(n, d int, seed uint64) *mat.Dense {
	rng := rand.New(rand.NewPCG(seed, 4))
	x := mat.NewDense(n, d, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	return x
}

// TestResidualJetMatchesHyperdual checks the residual block's Jet, JetRows
// and Jet32 (inside a model, through Model.Walk) against hyperdual numbers,
// and its value against Forward, for every activation in the body.
func TestResidualJetMatchesHyperdual(t *testing.T) {
	for _, act := range allActivations() {
		t.Run(act.Type+act.Approximate, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				m, s0, sT := randomResidual(t, act, false)
				alpha := rapid.Float64Range(-0.5, 1.5).Draw(t, "alpha")
				n := 3
				x := randomInputs(n, m.Spec.InputSize(), 3)
				sa, d := Interpolate(s0, sT, alpha), Difference(s0, sT)
				j, rows := NewConstJet(x), NewConstJet(x)
				j32 := NewConstJet32(Round32(x))
				alphas := []float64{alpha, alpha, alpha}
				_ = m.Walk(0, func(i int, l Layer) error {
					j = l.Jet(m.LayerParams(sa, i), m.LayerParams(d, i), j)
					if r, ok := l.(RowJetter); ok {
						rows = r.JetRows(m.LayerParams(s0, i), m.LayerParams(d, i), alphas, rows)
					} else {
						rows = l.Jet(nil, nil, rows)
					}
					j32 = l.(Jet32Layer).Jet32(RoundTensors(m.LayerParams(sa, i)), RoundTensors(m.LayerParams(d, i)), j32)
					return nil
				})
				fw := m.Forward(sa, x)
				j64 := j32.Float64()
				a := hyperdual.Number{Real: alpha, E1mag: 1, E2mag: 1}
				for r := 0; r < n; r++ {
					h := make([]hyperdual.Number, x.RawMatrix().Cols)
					for q, v := range x.RawRowView(r) {
						h[q] = hyperdual.Number{Real: v}
					}
					out := hdLayers(m.Layers, func(q int) string { return strconv.Itoa(q) }, s0, sT, a, h)
					for c, z := range out {
						check := func(name string, got, want, tol float64) {
							if math.Abs(got-want) > tol*(1+math.Abs(want)) {
								t.Fatalf("%s[%d,%d] at α=%v: %v, hyperdual %v", name, r, c, alpha, got, want)
							}
						}
						check("forward", fw.At(r, c), z.Real, 1e-12)
						for _, jj := range []*Jet{j, rows} {
							check("γ", jj.Value().At(r, c), z.Real, 1e-12)
							check("γ′", jj.Velocity().At(r, c), z.E1mag, 1e-12)
							check("γ″", jj.Acceleration().At(r, c), z.E1E2mag, 1e-12)
						}
						if act.Type == "relu" || act.Type == "leaky_relu" || strings.HasPrefix(act.Type, "softplus") {
							continue // float32 may take the other side of a kink or threshold
						}
						check("γ (float32)", j64.Value().At(r, c), z.Real, 1e-3)
						check("γ′ (float32)", j64.Velocity().At(r, c), z.E1mag, 1e-3)
					}
				}
			})
		})
	}
}

// TestResidualBackwardFiniteDifferences checks the training-mode gradient
// of every parameter (the scale, the nested body and shortcut tensors, and a
// body BatchNorm's) against central differences of the training-mode loss.
func TestResidualBackwardFiniteDifferences(t *testing.T) {
	for _, bn := range []bool{false, true} {
		t.Run("bn="+strconv.FormatBool(bn), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				m, s, _ := randomResidual(t, LayerSpec{Type: "tanh"}, bn)
				n := 4
				x := randomInputs(n, m.Spec.InputSize(), 1)
				tg := Targets{Values: mat.NewDense(n, m.OutSize(), nil)}
				loss := func(st State) float64 {
					acts := m.ForwardTrain(st.Clone(), x) // training mode, on a copy of the buffers
					l, _ := Loss("mse", acts[len(acts)-1], tg, false)
					return l
				}
				sc := s.Clone()
				acts := m.ForwardTrain(sc, x)
				_, dy := Loss("mse", acts[len(acts)-1], tg, true)
				g := m.Backward(s, acts, dy)
				for _, key := range m.Trainable() {
					p := s[key]
					orig := append([]float64(nil), p.Data...)
					// Central differences at several steps: training-mode
					// BatchNorm on 4 examples can be sharply curved (a small
					// step keeps the truncation error down) while a small step
					// can lose digits to cancellation (seed 15684911081529188339:
					// 2e-6 off at 1e-7, 1e-9 at 1e-4 and 1e-8). The gradient
					// must agree with one of them; a wrong one agrees with none.
					var nums [][]float64
					for _, step := range []float64{1e-4, 1e-5, 1e-6, 1e-7, 1e-8} {
						nums = append(nums, fd.Gradient(nil, func(w []float64) float64 {
							copy(p.Data, w)
							return loss(s)
						}, orig, &fd.Settings{Formula: fd.Central, Step: step}))
					}
					num := nums[3]
					copy(p.Data, orig)
					for q := range num {
						ok := false
						for _, nm := range nums {
							ok = ok || math.Abs(nm[q]-g[key].Data[q]) <= 1e-6*(1+math.Abs(nm[q]))
						}
						if !ok {
							t.Fatalf("%s[%d]: backward %v, finite differences %v", key, q, g[key].Data[q], num[q])
						}
					}
				}
			})
		})
	}
}

// TestResidualIntervalJetEncloses: the block's interval jet over an
// α-interval contains the point jets at its ends and midpoint.
func TestResidualIntervalJetEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m, s0, sT := randomResidual(t, LayerSpec{Type: rapid.SampledFrom([]string{"tanh", "relu"}).Draw(t, "act")}, false)
		d := Difference(s0, sT)
		lo := rapid.Float64Range(0, 1).Draw(t, "lo")
		hi := lo + rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.05}).Draw(t, "h")
		n := 2
		x := randomInputs(n, m.Spec.InputSize(), 5)
		ij := NewConstIJet(n, m.Spec.InputSize(), x.RawMatrix().Data, 2)
		for i, l := range m.Layers {
			ij = l.(IntervalLayer).IntervalJet(NewParamBox(m.LayerParams(s0, i), m.LayerParams(d, i), interval.I{Lo: lo, Hi: hi}), ij)
		}
		for _, f := range []float64{0, 0.5, 1} {
			alpha := lo + f*(hi-lo)
			sa := Interpolate(s0, sT, alpha)
			j := NewConstJet(x)
			for i, l := range m.Layers {
				j = l.Jet(m.LayerParams(sa, i), m.LayerParams(d, i), j)
			}
			for i := 0; i < n; i++ {
				for k := 0; k < m.OutSize(); k++ {
					for part, im := range []interval.Matrix{ij.V, ij.D1, ij.D2} {
						if part == 2 && ij.Kink[i] {
							continue // D2 means nothing across a kink
						}
						v := j.M.At(part*n+i, k)
						e := im.At(i, k)
						slack := 1e-12 * (1 + math.Abs(v))
						if !(e.Lo-slack <= v && v <= e.Hi+slack) {
							t.Fatalf("α=%v part %d [%d,%d]: point %v not in [%v, %v]", alpha, part, i, k, v, e.Lo, e.Hi)
						}
					}
				}
			}
		}
	})
}

// TestResidualSpec: nested keys, the scale's place and initial value, the
// sites of the walk, and refusals naming the nested field.
func TestResidualSpec(t *testing.T) {
	yes, no := true, false
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{3}, Loss: "mse", Layers: []LayerSpec{
		{Type: "linear", In: 3, Out: 4},
		{Type: "residual", Scale: &yes,
			Body:     []LayerSpec{{Type: "linear", In: 4, Out: 4}, {Type: "batchnorm1d"}, {Type: "relu"}},
			Shortcut: []LayerSpec{{Type: "linear", In: 4, Out: 4, Bias: &no}}},
		{Type: "linear", In: 4, Out: 2},
	}}
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range m.Expected() {
		keys = append(keys, e.Key)
	}
	want := "0.weight 0.bias 1.scale 1.body.0.weight 1.body.0.bias 1.body.1.weight 1.body.1.bias 1.body.1.running_mean 1.body.1.running_var 1.body.1.num_batches_tracked 1.shortcut.0.weight 2.weight 2.bias"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("keys\n got %s\nwant %s", got, want)
	}
	st, err := Init(m, "pytorch", 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(st, "init"); err != nil {
		t.Fatal(err)
	}
	if st["1.scale"].Data[0] != 0 || st["1.body.1.weight"].Data[0] != 1 || st["1.body.1.running_var"].Data[0] != 1 {
		t.Fatalf("init: scale %v, bn weight %v, running_var %v; want 0, 1, 1", st["1.scale"].Data, st["1.body.1.weight"].Data, st["1.body.1.running_var"].Data)
	}
	bound := 0.5 // 1/√4
	for _, v := range st["1.body.0.weight"].Data {
		if v == 0 || math.Abs(v) > bound {
			t.Fatalf("1.body.0.weight %v: want U(−½, ½) nonzero", v)
		}
	}
	if got := ZeroInitResidual(m, st); len(got) != 1 || got[0] != "1.body.1.weight" || st["1.body.1.weight"].Data[2] != 0 {
		t.Fatalf("ZeroInitResidual set %v", got)
	}
	var sites []string
	_ = m.WalkSites(func(si Site, l Layer) error {
		sites = append(sites, strconv.Itoa(si.Index)+":"+si.Name+"="+l.Type())
		return nil
	})
	wantSites := "0:layers[0]=linear 1:layers[1].body[0]=linear 2:layers[1].body[1]=batchnorm1d 3:layers[1].body[2]=relu 4:layers[1].shortcut[0]=linear 5:layers[2]=linear"
	if got := strings.Join(sites, " "); got != wantSites {
		t.Fatalf("sites\n got %s\nwant %s", got, wantSites)
	}
	for _, c := range []struct {
		spec LayerSpec
		want string
	}{
		{LayerSpec{Type: "residual"}, "body: want at least one layer"},
		{LayerSpec{Type: "residual", Body: []LayerSpec{{Type: "linear", In: 4, Out: 5}}}, "the body gives 5 features but the shortcut gives 4"},
		{LayerSpec{Type: "residual", Body: []LayerSpec{{Type: "relu"}}, Shortcut: []LayerSpec{{Type: "linear", In: 3, Out: 4}}}, "shortcut[0]: linear: in=3 but the previous layer gives 4"},
		{LayerSpec{Type: "residual", Body: []LayerSpec{{Type: "conv9d"}}}, "body[0]: type: unsupported layer type \"conv9d\""},
	} {
		bad := &Spec{Format: FormatSequentialV1, InputShape: []int{4}, Loss: "mse", Layers: []LayerSpec{c.spec}}
		_, err := Build(bad)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.spec, err, c.want)
		}
	}
}

// TestResidualFLOPs: the block counts its sub-layers' products: body
// linear 4→5 and 5→4 and a shortcut linear 4→4 on a varying input, and on a
// constant input the first linear of each branch at its constant rate.
func TestResidualFLOPs(t *testing.T) {
	r, err := newResidual(LayerSpec{Body: []LayerSpec{{Type: "linear", In: 4, Out: 5}, {Type: "relu"}, {Type: "linear", In: 5, Out: 4}},
		Shortcut: []LayerSpec{{Type: "linear", In: 4, Out: 4}}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	n := 3.0
	varying := func(in, out float64) float64 { return 2*3*n*in*out + 2*2*n*in*out }
	konst := func(in, out float64) float64 { return 2 * 2 * n * in * out }
	if got, want := r.JetFLOPs(3, false), varying(4, 5)+varying(5, 4)+varying(4, 4); got != want {
		t.Errorf("varying input: %v, want %v", got, want)
	}
	if got, want := r.JetFLOPs(3, true), konst(4, 5)+varying(5, 4)+konst(4, 4); got != want {
		t.Errorf("constant input: %v, want %v", got, want)
	}
}
