package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// TestIntervalVJPEncloses: the backward interval rules (IntervalBackward)
// enclose the layer's vector–Jacobian product: for random conv2d,
// batchnorm2d (`interpolate`), max (with inputs far apart or close enough
// to swap arg-max on the interval), average and adaptive average pools
// and activations (ReLU, LeakyReLU, tanh, sigmoid, GELU) with parameters
// θ0 + αδ, an input path enclosed over a random α-interval, and a random
// enclosure G of the output gradient, IntervalVJP's result contains
// gᵀ·∂f/∂x at sampled α and g ∈ G, computed independently: by the layer's
// Backward (its training gradient, which for these layers is the
// evaluation-mode Jacobian), and for batchnorm2d, whose Backward is the
// training-mode one, by unit differences of its evaluation-mode Forward
// (exact for an affine map up to rounding). The tape is recorded with and
// without a midpoint jet.
func TestIntervalVJPEncloses(t *testing.T) {
	defer func(k int) { convColElems = k }(convColElems)
	rapid.Check(t, func(t *rapid.T) {
		convColElems = rapid.SampledFrom([]int{1, 40, 1 << 20}).Draw(t, "colElems") // conv2d: chunks of examples
		var c *imgCase
		affine := false // Forward is affine in x: the unit-difference oracle
		switch kind := rapid.SampledFrom([]string{"conv2d", "batchnorm2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "activation"}).Draw(t, "layer"); kind {
		case "conv2d":
			c = drawConv(t)
		case "batchnorm2d":
			in, n := drawImage(t)
			c = drawBN2dOn(t, in, n, false)
			drawInputs(t, c)
			affine = true
		case "activation":
			in, n := drawImage(t)
			ls := LayerSpec{Type: rapid.SampledFrom([]string{"relu", "leaky_relu", "tanh", "sigmoid", "gelu"}).Draw(t, "act")}
			if ls.Type == "leaky_relu" {
				ls.Slope = ptr(rapid.SampledFrom([]float64{0.01, 0.3}).Draw(t, "slope"))
			}
			l, _, err := BuildLayer(ls, in)
			if err != nil {
				t.Fatal(err)
			}
			c = &imgCase{l: l, n: n}
			drawInputs(t, c)
		case "maxpool2d":
			if rapid.Bool().Draw(t, "close") { // inputs that may swap arg-max on the interval
				in, n := drawImage(t)
				c = drawPoolOn(t, kind, in, n)
				drawInputs(t, c)
			} else {
				c = drawPool(t, kind)
			}
		default:
			c = drawPool(t, kind)
		}
		w, o := c.l.InSize(), c.l.OutSize()
		lo := c.alpha
		hi := lo + rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.05, 0.3}).Draw(t, "h")
		al := interval.I{Lo: lo, Hi: hi}
		path := func(al interval.I) *IJet {
			in := &IJet{N: c.n, D: w, Order: 2, V: interval.NewMatrix(c.n, w), D1: interval.NewMatrix(c.n, w), D2: interval.NewMatrix(c.n, w), DK: interval.NewMatrix(c.n, w), Kink: make([]bool, c.n), Jump: make([]bool, c.n)}
			for i := 0; i < c.n; i++ {
				for k := 0; k < w; k++ {
					q := i*w + k
					in.V.Set(i, k, interval.Add(interval.AddF(interval.Scale(c.b[q], al), c.a[q]), interval.Scale(c.c[q], interval.Sqr(al))))
					in.D1.Set(i, k, interval.AddF(interval.Scale(2*c.c[q], al), c.b[q]))
					in.D2.Set(i, k, interval.Point(2*c.c[q]))
				}
			}
			return in
		}
		in := path(al)
		var centre *IJet
		if rapid.Bool().Draw(t, "centre") {
			centre = path(interval.Point(al.Mid()))
		}
		var box *ParamBox
		if c.p0 != nil {
			box = NewParamBox(c.p0, c.dp, al)
		}
		bl := c.l.(IntervalBackward)
		tape, err := bl.IntervalTape(box, in, centre, nil)
		if err != nil {
			t.Fatal(err)
		}
		gm := rapid.SliceOfN(rapid.Float64Range(-2, 2), c.n*o, c.n*o).Draw(t, "g")
		gr := rapid.SampledFrom([]float64{0, 1e-3, 0.5}).Draw(t, "gRad")
		g := interval.NewMatrix(c.n, o)
		for k, v := range gm {
			g.Lo[k], g.Hi[k] = interval.Down(v-gr), interval.Up(v+gr)
		}
		gin, _, err := bl.IntervalVJP(box, tape, g)
		if err != nil {
			t.Fatal(err)
		}
		if gin.Rows != c.n || gin.Cols != w {
			t.Fatalf("%s: VJP is [%d, %d], want [%d, %d]", c.l.Type(), gin.Rows, gin.Cols, c.n, w)
		}
		for _, s := range []float64{0, 0.5, 1, rapid.Float64Range(0, 1).Draw(t, "s")} {
			alpha := lo + s*(hi-lo)
			u := rapid.Float64Range(-1, 1).Draw(t, "u")
			dy := mat.NewDense(c.n, o, nil)
			for k, v := range gm {
				dy.RawMatrix().Data[k] = v + u*gr
			}
			x := mat.NewDense(c.n, w, nil)
			for q := range c.a {
				x.RawMatrix().Data[q] = c.a[q] + alpha*c.b[q] + alpha*alpha*c.c[q]
			}
			p := c.at(alpha)
			var dx *mat.Dense
			if affine {
				dx = mat.NewDense(c.n, w, nil)
				y0 := c.l.Forward(p, x)
				for k := 0; k < w; k++ {
					xe := mat.DenseCopyOf(x)
					for i := 0; i < c.n; i++ {
						xe.Set(i, k, xe.At(i, k)+1)
					}
					y1 := c.l.Forward(p, xe)
					for i := 0; i < c.n; i++ {
						s := 0.0
						for q := 0; q < o; q++ {
							s += dy.At(i, q) * (y1.At(i, q) - y0.At(i, q))
						}
						dx.Set(i, k, s)
					}
				}
			} else {
				grads := make([]*Tensor, len(p))
				for k, t0 := range p {
					if t0 != nil {
						grads[k] = NewTensor(t0.Shape...)
					}
				}
				dx = c.l.Backward(p, x, c.l.Forward(p, x), dy, grads)
			}
			for i := 0; i < c.n; i++ {
				for k := 0; k < w; k++ {
					v, e := dx.At(i, k), gin.At(i, k)
					slack := 1e-9 * (1 + math.Abs(v))
					if !(e.Lo-slack <= v && v <= e.Hi+slack) {
						t.Fatalf("%s α=%v [%d,%d]: gᵀ∂f/∂x = %v not in [%v, %v]", c.l.Type(), alpha, i, k, v, e.Lo, e.Hi)
					}
				}
			}
		}
	})
}
