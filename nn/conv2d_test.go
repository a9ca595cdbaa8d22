package nn

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/num/hyperdual"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

type hd = hyperdual.Number

// imgCase is a random image layer with an input path x(α) = a + αb + α²c
// for n examples and parameters θ0 + αδ, and an independent hyperdual
// reference of the layer on the whole batch (ref: parameters and inputs as
// hyperdual numbers in ε1 = ε2 = dα, returns the outputs).
type imgCase struct {
	l       Layer
	n       int
	a, b, c []float64 // [n·In]
	p0, dp  []*Tensor // nil entries: absent
	alpha   float64
	ref     func(p [][]hd, x [][]hd) [][]hd
	// stats: the layer normalises with the batch's own statistics
	// (batchnorm2d under `recompute`): Jet is JetStats with BatchStats.
	stats bool
}

func (c *imgCase) at(alpha float64) []*Tensor {
	out := make([]*Tensor, len(c.p0))
	for k, t0 := range c.p0 {
		if t0 == nil {
			continue
		}
		out[k] = t0.Clone()
		for j := range out[k].Data {
			out[k].Data[j] += alpha * c.dp[k].Data[j]
		}
	}
	return out
}

func (c *imgCase) inJet(alpha float64) *Jet {
	w := c.l.InSize()
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

// jet is the layer's float64 jet at α (JetStats with the batch's own
// statistics when c.stats).
func (c *imgCase) jet(alpha float64) *Jet {
	in := c.inJet(alpha)
	if c.stats {
		b := c.l.(BatchStatistics)
		return b.JetStats(c.at(alpha), c.dp, b.BatchStats(in), in)
	}
	return c.l.Jet(c.at(alpha), c.dp, in)
}

func (c *imgCase) hyperdual() [][]hd {
	a := hd{Real: c.alpha, E1mag: 1, E2mag: 1}
	w := c.l.InSize()
	x := make([][]hd, c.n)
	for i := range x {
		x[i] = make([]hd, w)
		for k := range x[i] {
			q := i*w + k
			x[i][k] = hyperdual.Add(hyperdual.Add(hd{Real: c.a[q]}, hyperdual.Scale(c.b[q], a)), hyperdual.Scale(c.c[q], hyperdual.Mul(a, a)))
		}
	}
	return c.ref(c.paramsHD(c.alpha), x)
}

// paramsHD is θ0 + αδ in hyperdual numbers (ε1 = ε2 = dα).
func (c *imgCase) paramsHD(alpha float64) [][]hd {
	a := hd{Real: alpha, E1mag: 1, E2mag: 1}
	p := make([][]hd, len(c.p0))
	for k, t0 := range c.p0 {
		if t0 == nil {
			continue
		}
		p[k] = make([]hd, len(t0.Data))
		for j := range p[k] {
			p[k][j] = hyperdual.Add(hd{Real: t0.Data[j]}, hyperdual.Scale(c.dp[k].Data[j], a))
		}
	}
	return p
}

// layerJet is c's layer's float64 jet at α on the input jet in (JetStats
// with in's own statistics when c.stats).
func (c *imgCase) layerJet(alpha float64, in *Jet) *Jet {
	if c.stats {
		b := c.l.(BatchStatistics)
		return b.JetStats(c.at(alpha), c.dp, b.BatchStats(in), in)
	}
	return c.l.Jet(c.at(alpha), c.dp, in)
}

// TestSmallCNNJetMatchesHyperdual: on random small networks conv2d → tanh
// → avgpool2d or adaptive_avgpool2d → batchnorm2d (either policy) →
// conv2d, the composed layer jets agree with hyperdual numbers propagated
// through the layers' independent references (THEORY.md §2, §9). (Max-pool
// is left to its own test and the PyTorch fixture: rounding may break a
// tie differently in the two computations.)
func TestSmallCNNJetMatchesHyperdual(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in, n := drawImage(t)
		conv1 := drawConvOn(t, in, n)
		drawInputs(t, conv1)
		alpha := conv1.alpha
		act := &Activation{Kind: "tanh", Width: conv1.l.OutSize()}
		pool := drawPoolOn(t, rapid.SampledFrom([]string{"avgpool2d", "adaptive_avgpool2d"}).Draw(t, "pool"), conv1.l.(Shaper).OutShape(), n)
		s2 := pool.l.(Shaper).OutShape()
		bn := drawBN2dOn(t, s2, n, rapid.Bool().Draw(t, "recompute"))
		conv2 := drawConvOn(t, s2, n)
		j := conv1.layerJet(alpha, conv1.inJet(alpha))
		j = act.Jet(nil, nil, j)
		j = pool.layerJet(alpha, j)
		j = bn.layerJet(alpha, j)
		j = conv2.layerJet(alpha, j)
		x := conv1.ref(conv1.paramsHD(alpha), func() [][]hd {
			conv1.alpha = alpha
			a := hd{Real: alpha, E1mag: 1, E2mag: 1}
			w := conv1.l.InSize()
			x := make([][]hd, n)
			for i := range x {
				x[i] = make([]hd, w)
				for k := range x[i] {
					q := i*w + k
					x[i][k] = hyperdual.Add(hyperdual.Add(hd{Real: conv1.a[q]}, hyperdual.Scale(conv1.b[q], a)), hyperdual.Scale(conv1.c[q], hyperdual.Mul(a, a)))
				}
			}
			return x
		}())
		for i := range x {
			for k := range x[i] {
				x[i][k] = hdTanh(x[i][k])
			}
		}
		x = pool.ref(nil, x)
		x = bn.ref(bn.paramsHD(alpha), x)
		x = conv2.ref(conv2.paramsHD(alpha), x)
		for i := 0; i < n; i++ {
			for k, y := range x[i] {
				for part, w := range []float64{y.Real, y.E1mag, y.E1E2mag} {
					if got := j.M.At(part*n+i, k); !near(got, w, 1e-9) {
						t.Fatalf("part %d [%d,%d]: jet %v, hyperdual %v", part, i, k, got, w)
					}
				}
			}
		}
	})
}

// checkHyperdual: Jet (and JetRows when declared) agree with the
// hyperdual reference; Jet32 agrees with Jet to float32 accuracy.
func checkHyperdual(t *rapid.T, c *imgCase) {
	j := c.jet(c.alpha)
	want := c.hyperdual()
	var jr, j32 *Jet
	if r, ok := c.l.(RowJetter); ok && !c.stats {
		alphas := make([]float64, c.n)
		for i := range alphas {
			alphas[i] = c.alpha
		}
		jr = r.JetRows(c.at(0), c.dp, alphas, c.inJet(c.alpha))
	}
	if !c.stats {
		j32 = c.l.(Jet32Layer).Jet32(RoundTensors(c.at(c.alpha)), RoundTensors(c.dp), RoundJet(c.inJet(c.alpha))).Float64()
	}
	for i := 0; i < c.n; i++ {
		for k, y := range want[i] {
			for part, w := range []float64{y.Real, y.E1mag, y.E1E2mag} {
				got := j.M.At(part*c.n+i, k)
				if !near(got, w, 1e-9) {
					t.Fatalf("%s part %d [%d,%d]: jet %v, hyperdual %v", c.l.Type(), part, i, k, got, w)
				}
				if jr != nil {
					if g := jr.M.At(part*c.n+i, k); !near(g, w, 1e-9) {
						t.Fatalf("%s JetRows part %d [%d,%d]: %v, hyperdual %v", c.l.Type(), part, i, k, g, w)
					}
				}
				if j32 != nil {
					if g := j32.M.At(part*c.n+i, k); math.Abs(g-got) > 1e-4*scaleOf(j, part, c.n) {
						t.Fatalf("%s Jet32 part %d [%d,%d]: %v, Jet %v", c.l.Type(), part, i, k, g, got)
					}
				}
			}
		}
	}
}

// checkBackward: dL/dx and dL/dθ of L = Σ u ⊙ y (y the training-mode
// output for a TrainForwarder) agree with central differences.
func checkBackward(t *rapid.T, c *imgCase) {
	x := mat.NewDense(c.n, c.l.InSize(), append([]float64(nil), c.a...))
	u := mat.NewDense(c.n, c.l.OutSize(), nil)
	for q := range u.RawMatrix().Data {
		u.RawMatrix().Data[q] = c.b[q%len(c.b)] + 0.1*float64(q%7)
	}
	p := c.at(0)
	fwd := func() *mat.Dense {
		if tf, ok := c.l.(TrainForwarder); ok {
			pc := make([]*Tensor, len(p))
			for k, t0 := range p {
				if t0 != nil {
					pc[k] = t0.Clone()
				}
			}
			return tf.ForwardTrain(pc, x)
		}
		return c.l.Forward(p, x)
	}
	loss := func() float64 { return mat.Sum(mulElem(fwd(), u)) }
	grads := make([]*Tensor, len(p))
	for k, pp := range c.l.Params() {
		if p[k] != nil && !pp.Buffer {
			grads[k] = NewTensor(pp.Shape...)
		}
	}
	dx := c.l.Backward(p, x, fwd(), u, grads)
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
			t.Fatalf("%s dL/dx[%d]: backward %v, finite difference %v", c.l.Type(), q, got, want)
		}
	}
	for k, t0 := range p {
		if grads[k] == nil {
			continue
		}
		for q := range t0.Data {
			if got, want := grads[k].Data[q], fd(&t0.Data[q]); !near(got, want, 1e-5) {
				t.Fatalf("%s dL/dθ[%d][%d]: backward %v, finite difference %v", c.l.Type(), k, q, got, want)
			}
		}
	}
}

// checkInterval: over an α-interval, with the input enclosed by interval
// evaluation of its path (or constant, konst), the interval jet contains
// the point jet at sampled α.
func checkInterval(t *rapid.T, c *imgCase, konst bool) {
	w := c.l.InSize()
	lo := c.alpha
	hi := lo + rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.05}).Draw(t, "h")
	al := interval.I{Lo: lo, Hi: hi}
	var in *IJet
	if konst {
		in = NewConstIJet(c.n, w, append([]float64(nil), c.a...), 2)
	} else {
		in = &IJet{N: c.n, D: w, Order: 2, V: interval.NewMatrix(c.n, w), D1: interval.NewMatrix(c.n, w), D2: interval.NewMatrix(c.n, w), Kink: make([]bool, c.n), Jump: make([]bool, c.n)}
		for i := 0; i < c.n; i++ {
			for k := 0; k < w; k++ {
				q := i*w + k
				in.V.Set(i, k, interval.Add(interval.AddF(interval.Scale(c.b[q], al), c.a[q]), interval.Scale(c.c[q], interval.Sqr(al))))
				in.D1.Set(i, k, interval.AddF(interval.Scale(2*c.c[q], al), c.b[q]))
				in.D2.Set(i, k, interval.Point(2*c.c[q]))
			}
		}
	}
	var box *ParamBox
	if c.p0 != nil {
		box = NewParamBox(c.p0, c.dp, al)
	}
	var out *IJet
	if c.stats {
		b := c.l.(BatchStatistics)
		out = b.IntervalJetStats(box, b.IntervalStats(in), in)
	} else {
		out = c.l.(IntervalLayer).IntervalJet(box, in)
	}
	for _, s := range []float64{0, 0.5, 1} {
		alpha := lo + s*(hi-lo)
		pin := c.inJet(alpha)
		if konst {
			pin = NewConstJet(mat.NewDense(c.n, w, append([]float64(nil), c.a...)))
		}
		var j *Jet
		if c.stats {
			b := c.l.(BatchStatistics)
			j = b.JetStats(c.at(alpha), c.dp, b.BatchStats(pin), pin)
		} else {
			j = c.l.Jet(c.at(alpha), c.dp, pin)
		}
		for i := 0; i < c.n; i++ {
			for k := 0; k < c.l.OutSize(); k++ {
				for part, m := range []interval.Matrix{out.V, out.D1, out.D2} {
					if m.Lo == nil {
						continue // a Const output: no derivatives
					}
					v := 0.0
					if !j.Const || part == 0 {
						v = j.M.At(part*c.n+i, k)
					}
					e := m.At(i, k)
					slack := 1e-12 * (1 + math.Abs(v))
					if !(e.Lo-slack <= v && v <= e.Hi+slack) {
						t.Fatalf("%s α=%v part %d [%d,%d]: point %v not in [%v, %v]", c.l.Type(), alpha, part, i, k, v, e.Lo, e.Hi)
					}
				}
			}
		}
	}
}

// drawImage draws an input shape [C, H, W] and a batch size.
func drawImage(t *rapid.T) (shape []int, n int) {
	return []int{rapid.IntRange(1, 3).Draw(t, "C"), rapid.IntRange(1, 6).Draw(t, "H"), rapid.IntRange(1, 6).Draw(t, "W")}, rapid.IntRange(1, 3).Draw(t, "n")
}

// drawInputs fills the input path and α of c.
func drawInputs(t *rapid.T, c *imgCase) {
	f := rapid.Float64Range(-2, 2)
	k := c.n * c.l.InSize()
	c.a = rapid.SliceOfN(f, k, k).Draw(t, "a")
	c.b = rapid.SliceOfN(f, k, k).Draw(t, "b")
	c.c = rapid.SliceOfN(f, k, k).Draw(t, "c")
	c.alpha = rapid.Float64Range(0, 1).Draw(t, "alpha")
}

// drawParams draws θ0 and δ for every tensor of Params (absent when the
// layer omits it).
func drawParams(t *rapid.T, c *imgCase) {
	f := rapid.Float64Range(-1, 1)
	for _, p := range c.l.Params() {
		if paramAbsent(c.l, p.Name) {
			c.p0, c.dp = append(c.p0, nil), append(c.dp, nil)
			continue
		}
		k := numel(p.Shape)
		c.p0 = append(c.p0, &Tensor{Shape: p.Shape, Data: rapid.SliceOfN(f, k, k).Draw(t, p.Name+"0")})
		c.dp = append(c.dp, &Tensor{Shape: p.Shape, Data: rapid.SliceOfN(f, k, k).Draw(t, "d"+p.Name)})
	}
}

func drawConv(t *rapid.T) *imgCase {
	in, n := drawImage(t)
	c := drawConvOn(t, in, n)
	drawInputs(t, c)
	return c
}

// drawConvOn draws a conv2d on inputs of shape in, with its parameters
// and hyperdual reference (no inputs).
func drawConvOn(t *rapid.T, in []int, n int) *imgCase {
	pad := rapid.IntRange(0, 1).Draw(t, "padding")
	kh := rapid.IntRange(1, min(3, in[1]+2*pad)).Draw(t, "kh")
	kw := rapid.IntRange(1, min(3, in[2]+2*pad)).Draw(t, "kw")
	bias := rapid.Bool().Draw(t, "bias")
	ls := LayerSpec{Type: "conv2d", In: in[0], Out: rapid.IntRange(1, 3).Draw(t, "out"), Kernel: IntPair{kh, kw},
		Stride: IntPair{rapid.IntRange(1, 2).Draw(t, "stride")}, Padding: IntPair{pad}, Bias: &bias}
	l, _, err := BuildLayer(ls, in)
	if err != nil {
		t.Fatalf("build %+v on %v: %v", ls, in, err)
	}
	cv := l.(*Conv2d)
	c := &imgCase{l: l, n: n}
	drawParams(t, c)
	c.ref = func(p [][]hd, x [][]hd) [][]hd {
		out := make([][]hd, len(x))
		for e := range x {
			out[e] = make([]hd, cv.OutSize())
			for o := 0; o < cv.Out; o++ {
				for i := 0; i < cv.OH; i++ {
					for j := 0; j < cv.OW; j++ {
						var s hd
						if p[1] != nil {
							s = p[1][o]
						}
						for ch := 0; ch < cv.In; ch++ {
							for u := 0; u < cv.KH; u++ {
								for v := 0; v < cv.KW; v++ {
									ih, iw := i*cv.SH-cv.PH+u, j*cv.SW-cv.PW+v
									if ih < 0 || ih >= cv.H || iw < 0 || iw >= cv.W {
										continue
									}
									s = hyperdual.Add(s, hyperdual.Mul(p[0][((o*cv.In+ch)*cv.KH+u)*cv.KW+v], x[e][(ch*cv.H+ih)*cv.W+iw]))
								}
							}
						}
						out[e][(o*cv.OH+i)*cv.OW+j] = s
					}
				}
			}
		}
		return out
	}
	return c
}

// TestConv2dJetMatchesHyperdual: γ, γ′, γ″ of Jet and JetRows agree with
// a naive hyperdual convolution; Jet32 agrees with Jet.
func TestConv2dJetMatchesHyperdual(t *testing.T) {
	defer func(k int) { convColElems = k }(convColElems)
	rapid.Check(t, func(t *rapid.T) {
		convColElems = rapid.SampledFrom([]int{1, 40, 1 << 20}).Draw(t, "colElems") // one, some or all examples per GEMM
		checkHyperdual(t, drawConv(t))
	})
}

// TestConv2dBackwardFiniteDifferences: Backward against central differences.
func TestConv2dBackwardFiniteDifferences(t *testing.T) {
	defer func(k int) { convColElems = k }(convColElems)
	rapid.Check(t, func(t *rapid.T) {
		convColElems = rapid.SampledFrom([]int{1, 40, 1 << 20}).Draw(t, "colElems")
		checkBackward(t, drawConv(t))
	})
}

// TestConv2dIntervalJetEncloses: the interval rule (and, on a constant
// input, ConstProducts) contains the point jets over the α-interval.
func TestConv2dIntervalJetEncloses(t *testing.T) {
	defer func(k int) { convColElems = k }(convColElems)
	rapid.Check(t, func(t *rapid.T) {
		convColElems = rapid.SampledFrom([]int{1, 40, 1 << 20}).Draw(t, "colElems") // chunks of examples
		c := drawConv(t)
		checkInterval(t, c, rapid.Bool().Draw(t, "const"))
	})
}

// TestConv2dShapes: output shapes as PyTorch's formula, and bad input
// refused naming the field and the shapes.
func TestConv2dShapes(t *testing.T) {
	tr := true
	for _, c := range []struct {
		ls    LayerSpec
		in    []int
		out   []int
		error string
	}{
		{LayerSpec{Type: "conv2d", In: 1, Out: 4, Kernel: IntPair{3}}, []int{1, 28, 28}, []int{4, 26, 26}, ""},
		{LayerSpec{Type: "conv2d", In: 1, Out: 4, Kernel: IntPair{3}, Padding: IntPair{1}, Stride: IntPair{2}}, []int{1, 28, 28}, []int{4, 14, 14}, ""},
		{LayerSpec{Type: "conv2d", In: 2, Out: 3, Kernel: IntPair{2, 3}, Bias: &tr}, []int{2, 5, 7}, []int{3, 4, 5}, ""},
		{LayerSpec{Type: "conv2d", In: 3, Out: 4, Kernel: IntPair{3}}, []int{1, 28, 28}, nil, "conv2d: in=3 channels but the input is [1, 28, 28]"},
		{LayerSpec{Type: "conv2d", In: 1, Out: 4, Kernel: IntPair{5}}, []int{1, 3, 3}, nil, "kernel [5, 5] is larger than the padded input [3, 3]"},
		{LayerSpec{Type: "conv2d", In: 1, Out: 4, Kernel: IntPair{0, 3}}, []int{1, 3, 3}, nil, "conv2d: kernel: want positive sizes, found [0, 3]"},
		{LayerSpec{Type: "conv2d", In: 1, Out: 4}, []int{1, 3, 3}, nil, "conv2d: kernel: missing"},
		{LayerSpec{Type: "conv2d", In: 1, Out: 4, Kernel: IntPair{3}}, []int{9}, nil, "needs an image input [C, H, W], found input shape [9]"},
		{LayerSpec{Type: "maxpool2d", Kernel: IntPair{2}}, []int{3, 5, 5}, []int{3, 2, 2}, ""},
		{LayerSpec{Type: "maxpool2d", Kernel: IntPair{3}, Padding: IntPair{2}}, []int{3, 5, 5}, nil, "maxpool2d: padding [2, 2] exceeds half the kernel [3, 3]"},
		{LayerSpec{Type: "avgpool2d", Kernel: IntPair{3}, Stride: IntPair{1}, Padding: IntPair{1}}, []int{2, 4, 4}, []int{2, 4, 4}, ""},
		{LayerSpec{Type: "avgpool2d", Kernel: IntPair{6}}, []int{2, 4, 4}, nil, "avgpool2d: kernel [6, 6] is larger than the padded input [4, 4]"},
		{LayerSpec{Type: "adaptive_avgpool2d", Output: IntPair{1}}, []int{8, 7, 7}, []int{8, 1, 1}, ""},
		{LayerSpec{Type: "adaptive_avgpool2d", Output: IntPair{0}}, []int{8, 7, 7}, nil, "adaptive_avgpool2d: output: want positive sizes, found [0, 0]"},
		{LayerSpec{Type: "batchnorm2d", Features: 3}, []int{3, 4, 4}, []int{3, 4, 4}, ""},
		{LayerSpec{Type: "batchnorm2d", Features: 4}, []int{3, 4, 4}, nil, "batchnorm2d: features=4 but the input is [3, 4, 4] ([C, H, W]) with 3 channels"},
	} {
		l, out, err := BuildLayer(c.ls, c.in)
		if c.error != "" {
			if err == nil || !contains(err.Error(), c.error) {
				t.Errorf("%+v on %v: error %v, want one containing %q", c.ls, c.in, err, c.error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v on %v: %v", c.ls, c.in, err)
			continue
		}
		if fmt.Sprint(out) != fmt.Sprint(c.out) || l.OutSize() != numel(c.out) || l.InSize() != numel(c.in) {
			t.Errorf("%+v on %v: out %v (size %d), want %v", c.ls, c.in, out, l.OutSize(), c.out)
		}
	}
}

// TestConv2dInit: PyTorch's bounds 1/√fan_in with fan_in = in·kh·kw.
func TestConv2dInit(t *testing.T) {
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{2, 6, 6}, Loss: "mse",
		Layers: []LayerSpec{{Type: "conv2d", In: 2, Out: 8, Kernel: IntPair{3}}, {Type: "flatten"}, {Type: "linear", In: 128, Out: 1}}}
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Init(m, "pytorch", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(st, "init"); err != nil {
		t.Fatal(err)
	}
	bound := 1 / math.Sqrt(18)
	for _, k := range []string{"0.weight", "0.bias"} {
		mx := 0.0
		for _, v := range st[k].Data {
			mx = math.Max(mx, math.Abs(v))
		}
		if mx > bound || mx < 0.8*bound {
			t.Errorf("%s: max |value| %v, want in [0.8, 1]·%v (U(−1/√18, 1/√18))", k, mx, bound)
		}
	}
}

// intervalPath encloses a + αb + α²c for α ∈ [lo, hi], [n, len(a)/n].
func intervalPath(c *imgCase, lo, hi float64) interval.Matrix {
	al := interval.I{Lo: lo, Hi: hi}
	w := len(c.a) / c.n
	m := interval.NewMatrix(c.n, w)
	for q := range c.a {
		m.Set(q/w, q%w, interval.Add(interval.AddF(interval.Scale(c.b[q], al), c.a[q]), interval.Scale(c.c[q], interval.Sqr(al))))
	}
	return m
}

// BenchmarkConv2dJet: one float64 jet of a 16→16 3×3 convolution with
// padding 1 on 64 examples of [16, 28, 28] (a resnet stage-1 layer).
func BenchmarkConv2dJet(b *testing.B) {
	l, _, err := BuildLayer(LayerSpec{Type: "conv2d", In: 16, Out: 16, Kernel: IntPair{3}, Padding: IntPair{1}}, []int{16, 28, 28})
	if err != nil {
		b.Fatal(err)
	}
	n := 64
	p := []*Tensor{NewTensor(16, 16, 3, 3), NewTensor(16)}
	dp := []*Tensor{NewTensor(16, 16, 3, 3), NewTensor(16)}
	for i := range p[0].Data {
		p[0].Data[i], dp[0].Data[i] = math.Sin(float64(i)), math.Cos(float64(i))
	}
	in := NewJet(n, l.InSize(), new(Workspace))
	for i := range in.M.RawMatrix().Data {
		in.M.RawMatrix().Data[i] = math.Sin(0.1 * float64(i))
	}
	ws := in.WS
	b.ReportMetric(l.(FLOPCounter).JetFLOPs(n, false), "flop/op")
	b.ResetTimer()
	for range b.N {
		ws.Reset()
		ws.matrix(3*n, l.InSize()) // the input's own slot
		l.Jet(p, dp, in)
	}
}

// TestImageSpecJSON: kernel and friends read as an int or [h, w], written
// back in the form read; other forms refused naming the layer and the key.
func TestImageSpecJSON(t *testing.T) {
	dir := t.TempDir()
	write := func(layers string) string {
		p := filepath.Join(dir, "model.json")
		if err := os.WriteFile(p, []byte(`{"format": "sequential/v1", "input_shape": [1, 6, 6], "loss": "mse", "layers": [`+layers+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write(`{"type": "conv2d", "in": 1, "out": 2, "kernel": [3, 2], "padding": 1}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}`)
	s, err := ReadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Layers[0].(*Conv2d); c.KH != 3 || c.KW != 2 || c.PH != 1 || c.PW != 1 || c.OH != 6 || c.OW != 7 {
		t.Errorf("conv2d read as %+v", c)
	}
	if got := m.OutSize(); got != 2*3*3 {
		t.Errorf("output size %d, want 18 ([2, 3, 3])", got)
	}
	if err := s.Write(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `"kernel": [`) || !strings.Contains(string(b), `"padding": 1`) {
		t.Errorf("written back as %s", b)
	}
	for _, c := range []struct{ layers, want string }{
		{`{"type": "conv2d", "in": 1, "out": 2, "kernel": [3, 3, 3]}`, "layers[0].kernel: want an int or [h, w], found [3,3,3]"},
		{`{"type": "conv2d", "in": 1, "out": 2, "kernel": [3]}`, "layers[0].kernel: want an int or [h, w], found [3]"},
		{`{"type": "conv2d", "in": "1", "out": 2, "kernel": 3}`, "layers[0].in: want an integer, found a string"},
		{`{"type": "residual", "body": [{"type": "conv2d", "in": 1, "out": 1, "kernel": 3, "padding": true}]}`, "layers[0].body[0].padding: want an int or [h, w], found true"},
		{`{"type": "conv2d", "in": 1, "out": 2, "kernel": 3}, {"type": "avgpool2d", "kernel": 2, "stride": []}`, "layers[1].stride: want an int or [h, w], found []"},
		{`{"type": "conv2d", "in": 1, "out": 2, "kernel": 3, "kernel_size": 3}`, `layers[0]: unknown key "kernel_size"`},
	} {
		if _, err := ReadSpec(write(c.layers)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.layers, err, c.want)
		}
	}
}

// hdTanh is tanh(x) = (e^{2x} − 1)/(e^{2x} + 1) in hyperdual arithmetic:
// gonum's hyperdual.Tanh returns a zero ε1ε2 part at x = 0 (it should be
// the input's ε1ε2 part, tanh″(0) being 0 but tanh′(0) 1).
func hdTanh(x hd) hd {
	e := hyperdual.Exp(hyperdual.Scale(2, x))
	return hyperdual.Mul(hyperdual.Sub(e, hd{Real: 1}), hyperdual.Inv(hyperdual.Add(e, hd{Real: 1})))
}
