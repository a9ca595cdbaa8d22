package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/num/hyperdual"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// lnCase is a random LayerNorm with an input path x(α) = a + αb + α²c and
// parameters θ0 + αδ.
type lnCase struct {
	l         *LayerNorm
	n         int
	a, b, c   []float64 // [n, W]
	p0, dp    []*Tensor
	alpha     float64
	affineOff bool
}

func drawLN(t *rapid.T) lnCase {
	s := rapid.IntRange(1, 5).Draw(t, "S")
	groups := rapid.IntRange(1, 3).Draw(t, "groups")
	affine := rapid.Bool().Draw(t, "affine")
	l := &LayerNorm{Width: s * groups, Shape: []int{s}, Eps: rapid.SampledFrom([]float64{1e-5, 0.1}).Draw(t, "eps"), Affine: affine}
	n := rapid.IntRange(1, 3).Draw(t, "n")
	f := rapid.Float64Range(-2, 2)
	vec := func(k int, name string) []float64 { return rapid.SliceOfN(f, k, k).Draw(t, name) }
	c := lnCase{l: l, n: n, a: vec(n*l.Width, "a"), b: vec(n*l.Width, "b"), c: vec(n*l.Width, "c"), alpha: rapid.Float64Range(0, 1).Draw(t, "alpha")}
	if affine {
		c.p0 = []*Tensor{{Shape: []int{s}, Data: vec(s, "g0")}, {Shape: []int{s}, Data: vec(s, "b0")}}
		c.dp = []*Tensor{{Shape: []int{s}, Data: vec(s, "dg")}, {Shape: []int{s}, Data: vec(s, "db")}}
	}
	return c
}

// at returns the parameters at α.
func (c lnCase) at(alpha float64) []*Tensor {
	if c.p0 == nil {
		return nil
	}
	out := make([]*Tensor, 2)
	for k := range out {
		out[k] = c.p0[k].Clone()
		for j := range out[k].Data {
			out[k].Data[j] += alpha * c.dp[k].Data[j]
		}
	}
	return out
}

// inJet is the input jet at α: x, ẋ = b + 2αc, ẍ = 2c.
func (c lnCase) inJet(alpha float64) *Jet {
	w := c.l.Width
	m := mat.NewDense(3*c.n, w, nil)
	for i := 0; i < c.n; i++ {
		for k := 0; k < w; k++ {
			q := i*w + k
			m.Set(i, k, c.a[q]+alpha*c.b[q]+alpha*alpha*c.c[q])
			m.Set(c.n+i, k, c.b[q]+2*alpha*c.c[q])
			m.Set(2*c.n+i, k, 2*c.c[q])
		}
	}
	return &Jet{N: c.n, M: m}
}

// hyperdualLN evaluates the layer on example i at α with hyperdual numbers
// (ε1 = ε2 = dα): an oracle independent of lnJet's derivative formulas.
func (c lnCase) hyperdualLN(i int) (val, vel, acc []float64) {
	l, w := c.l, c.l.Width
	s := numel(l.Shape)
	a := hyperdual.Number{Real: c.alpha, E1mag: 1, E2mag: 1}
	x := make([]hyperdual.Number, w)
	for k := range x {
		q := i*w + k
		x[k] = hyperdual.Add(hyperdual.Add(hyperdual.Number{Real: c.a[q]}, hyperdual.Scale(c.b[q], a)), hyperdual.Scale(c.c[q], hyperdual.Mul(a, a)))
	}
	for q := 0; q < w; q += s {
		var mu hyperdual.Number
		for k := 0; k < s; k++ {
			mu = hyperdual.Add(mu, x[q+k])
		}
		mu = hyperdual.Scale(1/float64(s), mu)
		var v hyperdual.Number
		for k := 0; k < s; k++ {
			d := hyperdual.Sub(x[q+k], mu)
			v = hyperdual.Add(v, hyperdual.Mul(d, d))
		}
		v = hyperdual.Scale(1/float64(s), v)
		r := hyperdual.Inv(hyperdual.Sqrt(hyperdual.Add(v, hyperdual.Number{Real: l.Eps})))
		for k := 0; k < s; k++ {
			y := hyperdual.Mul(hyperdual.Sub(x[q+k], mu), r)
			if l.Affine {
				g := hyperdual.Add(hyperdual.Number{Real: c.p0[0].Data[k]}, hyperdual.Scale(c.dp[0].Data[k], a))
				b := hyperdual.Add(hyperdual.Number{Real: c.p0[1].Data[k]}, hyperdual.Scale(c.dp[1].Data[k], a))
				y = hyperdual.Add(hyperdual.Mul(g, y), b)
			}
			val, vel, acc = append(val, y.Real), append(vel, y.E1mag), append(acc, y.E1E2mag)
		}
	}
	return val, vel, acc
}

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*(1+math.Abs(want))
}

// TestLayerNormJetMatchesHyperdual: Jet's value, velocity and acceleration
// agree with hyperdual arithmetic on random layers, inputs and α; Jet32
// agrees with them to float32 accuracy where the layer is well conditioned.
func TestLayerNormJetMatchesHyperdual(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawLN(t)
		j := c.l.Jet(c.at(c.alpha), c.dp, c.inJet(c.alpha))
		alphas := make([]float64, c.n)
		for i := range alphas {
			alphas[i] = c.alpha
		}
		p0 := c.p0
		if p0 == nil {
			p0 = c.at(0)
		}
		jr := c.l.JetRows(p0, c.dp, alphas, c.inJet(c.alpha))
		j32 := c.l.Jet32(RoundTensors(c.at(c.alpha)), RoundTensors(c.dp), RoundJet(c.inJet(c.alpha))).Float64()
		for i := 0; i < c.n; i++ {
			val, vel, acc := c.hyperdualLN(i)
			for k := range val {
				for part, want := range []float64{val[k], vel[k], acc[k]} {
					got := j.M.At(part*c.n+i, k)
					if !near(got, want, 1e-9) {
						t.Fatalf("part %d [%d,%d]: jet %v, hyperdual %v", part, i, k, got, want)
					}
					if got := jr.M.At(part*c.n+i, k); !near(got, want, 1e-9) {
						t.Fatalf("JetRows part %d [%d,%d]: %v, hyperdual %v", part, i, k, got, want)
					}
					// float32 where the layer is well conditioned (eps 0.1: r ≤ √10):
					// at eps 1e-5 a near-constant group makes r³, r⁵ amplify float32
					// rounding of the input without bound
					if g32 := j32.M.At(part*c.n+i, k); c.l.Eps == 0.1 && !near(g32, want, 1e-3) && math.Abs(g32-want) > 1e-3*scaleOf(j, part, c.n) {
						t.Fatalf("float32 part %d [%d,%d]: %v, float64 %v", part, i, k, g32, want)
					}
				}
			}
		}
	})
}

// scaleOf is the largest magnitude in part of j.
func scaleOf(j *Jet, part, n int) float64 {
	_, w := j.M.Dims()
	m := 1.0
	for i := 0; i < n; i++ {
		for k := 0; k < w; k++ {
			m = math.Max(m, math.Abs(j.M.At(part*n+i, k)))
		}
	}
	return m
}

// TestLayerNormBackwardFiniteDifferences: dL/dx and dL/dθ of L = Σ u ⊙ y
// agree with central differences.
func TestLayerNormBackwardFiniteDifferences(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawLN(t)
		w := c.l.Width
		x := mat.NewDense(c.n, w, append([]float64(nil), c.a...))
		u := mat.NewDense(c.n, w, append([]float64(nil), c.b...))
		p := c.at(0)
		loss := func() float64 { return mat.Sum(mulElem(c.l.Forward(p, x), u)) }
		var grads []*Tensor
		for _, t0 := range p {
			grads = append(grads, NewTensor(t0.Shape...))
		}
		y := c.l.Forward(p, x)
		dx := c.l.Backward(p, x, y, u, grads)
		const h = 1e-6
		fd := func(v *float64) float64 {
			old := *v
			*v = old + h
			lp := loss()
			*v = old - h
			lm := loss()
			*v = old
			return (lp - lm) / (2 * h)
		}
		raw := x.RawMatrix().Data
		for q := range raw {
			if got, want := dx.RawMatrix().Data[q], fd(&raw[q]); !near(got, want, 1e-5) {
				t.Fatalf("dL/dx[%d]: backward %v, finite difference %v", q, got, want)
			}
		}
		for k, t0 := range p {
			for q := range t0.Data {
				if got, want := grads[k].Data[q], fd(&t0.Data[q]); !near(got, want, 1e-5) {
					t.Fatalf("dL/dθ[%d][%d]: backward %v, finite difference %v", k, q, got, want)
				}
			}
		}
	})
}

func mulElem(a, b *mat.Dense) *mat.Dense {
	var c mat.Dense
	c.MulElem(a, b)
	return &c
}

// TestLayerNormIntervalJetEncloses: over an α-interval, with the input
// enclosed by interval evaluation of its path, the interval jet contains
// the point jet at sampled α (value, velocity, acceleration).
func TestLayerNormIntervalJetEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawLN(t)
		w := c.l.Width
		lo := c.alpha
		hi := lo + rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.05}).Draw(t, "h")
		al := interval.I{Lo: lo, Hi: hi}
		in := &IJet{N: c.n, D: w, Order: 2, V: interval.NewMatrix(c.n, w), D1: interval.NewMatrix(c.n, w), D2: interval.NewMatrix(c.n, w), Kink: make([]bool, c.n), Jump: make([]bool, c.n)}
		for i := 0; i < c.n; i++ {
			for k := 0; k < w; k++ {
				q := i*w + k
				in.V.Set(i, k, interval.Add(interval.AddF(interval.Scale(c.b[q], al), c.a[q]), interval.Scale(c.c[q], interval.Sqr(al))))
				in.D1.Set(i, k, interval.AddF(interval.Scale(2*c.c[q], al), c.b[q]))
				in.D2.Set(i, k, interval.Point(2*c.c[q]))
			}
		}
		var box *ParamBox
		if c.p0 != nil {
			box = NewParamBox(c.p0, c.dp, al)
		}
		out := c.l.IntervalJet(box, in)
		for _, s := range []float64{0, 0.5, 1} {
			alpha := lo + s*(hi-lo)
			j := c.l.Jet(c.at(alpha), c.dp, c.inJet(alpha))
			for i := 0; i < c.n; i++ {
				for k := 0; k < w; k++ {
					for part, m := range []interval.Matrix{out.V, out.D1, out.D2} {
						v := j.M.At(part*c.n+i, k)
						// the point jet carries its own rounding error: allow a few ulps of its scale
						e := m.At(i, k)
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

// TestLayerNormSpec: model.json fields, defaults and refusals.
func TestLayerNormSpec(t *testing.T) {
	f := false
	for _, c := range []struct {
		ls      LayerSpec
		wantErr bool
		affine  bool
		shape   []int
	}{
		{LayerSpec{Type: "layernorm"}, false, true, []int{6}},
		{LayerSpec{Type: "layernorm", Shape: []int{3}, Affine: &f}, false, false, []int{3}},
		{LayerSpec{Type: "layernorm", Shape: []int{4}}, true, false, nil},
		{LayerSpec{Type: "layernorm", Shape: []int{0}}, true, false, nil},
	} {
		l, err := newLayer(c.ls, 6)
		if (err != nil) != c.wantErr {
			t.Errorf("%+v: error %v, want error %v", c.ls, err, c.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		ln := l.(*LayerNorm)
		if ln.Affine != c.affine || numel(ln.Shape) != numel(c.shape) || ln.Eps != 1e-5 {
			t.Errorf("%+v: got %+v", c.ls, ln)
		}
	}
}

// TestLayerNormInit: Init gives an affine layernorm PyTorch's reset values
// (weight 1, bias 0, shape Shape) whatever the scheme and scale.
func TestLayerNormInit(t *testing.T) {
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{3}, Loss: "mse", Layers: []LayerSpec{
		{Type: "linear", In: 3, Out: 4}, {Type: "layernorm"}, {Type: "linear", In: 4, Out: 2}}}
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Init(m, "kaiming_normal", 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, b := st["1.weight"], st["1.bias"]
	if w == nil || b == nil || len(w.Data) != 4 || len(b.Data) != 4 {
		t.Fatalf("layernorm tensors: weight %v, bias %v", w, b)
	}
	for j := range w.Data {
		if w.Data[j] != 1 || b.Data[j] != 0 {
			t.Fatalf("layernorm reset: weight %v, bias %v; want 1 and 0", w.Data, b.Data)
		}
	}
}

// TestLayerNormIntervalJetOrderZero: a values-only interval jet (order 0,
// not constant: the certified accuracy's passes) has no velocity rows; the
// rule must not read them, and its values must enclose the forward pass.
func TestLayerNormIntervalJetOrderZero(t *testing.T) {
	l := &LayerNorm{Width: 4, Shape: []int{4}, Eps: 1e-5}
	x := []float64{0.3, -1.2, 2.0, 0.7, 1.0, 1.0, -0.5, 0.25}
	in := &IJet{N: 2, D: 4, Order: 0, V: interval.PointMatrix(2, 4, x), Kink: make([]bool, 2), Jump: make([]bool, 2)}
	out := l.IntervalJet(nil, in)
	want := l.Forward(nil, mat.NewDense(2, 4, x))
	for i := 0; i < 2; i++ {
		for k := 0; k < 4; k++ {
			if v := out.V.At(i, k); !(v.Lo <= want.At(i, k) && want.At(i, k) <= v.Hi) {
				t.Fatalf("[%d,%d]: %v does not enclose %v", i, k, v, want.At(i, k))
			}
		}
	}
}
