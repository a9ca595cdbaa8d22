package nn

import (
	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/interval"
)

// pool2d is the window geometry shared by maxpool2d, avgpool2d and
// adaptive_avgpool2d on flat batches [N, C·H·W] ([C, H, W] PyTorch order):
// output position q = i·OW + j of every channel reads the input rows
// [h0, h1) and columns [w0, w1) of the same channel (windows clipped to the
// image: padding contributes zeros to an average and −∞ to a maximum), and
// an average divides by Div[q].
type pool2d struct {
	C, H, W, OH, OW int
	H0, H1, W0, W1  []int     // [OH·OW]
	Div             []float64 // [OH·OW], the divisor of an average
}

// slidingPool is the geometry of a kernel/stride/padding window (floor
// mode): window (i, j) covers rows [i·SH − PH, i·SH − PH + KH) clipped, and
// an average divides by KH·KW (PyTorch's count_include_pad=True).
func slidingPool(in []int, kh, kw, sh, sw, ph, pw, oh, ow int) pool2d {
	g := pool2d{C: in[0], H: in[1], W: in[2], OH: oh, OW: ow}
	for i := 0; i < oh; i++ {
		for j := 0; j < ow; j++ {
			h0, w0 := i*sh-ph, j*sw-pw
			g.H0 = append(g.H0, max(h0, 0))
			g.H1 = append(g.H1, min(h0+kh, g.H))
			g.W0 = append(g.W0, max(w0, 0))
			g.W1 = append(g.W1, min(w0+kw, g.W))
			g.Div = append(g.Div, float64(kh*kw))
		}
	}
	return g
}

func (g *pool2d) inSize() int  { return g.C * g.H * g.W }
func (g *pool2d) outSize() int { return g.C * g.OH * g.OW }

// avgRow writes the window averages of one example x [C·H·W] into y
// [C·OH·OW] (sum in row-major window order, then one division).
func avgRow[T float32 | float64](g *pool2d, x, y []T) {
	oq := g.OH * g.OW
	for c := 0; c < g.C; c++ {
		xc := x[c*g.H*g.W : (c+1)*g.H*g.W]
		for q := 0; q < oq; q++ {
			var s T
			for h := g.H0[q]; h < g.H1[q]; h++ {
				for _, v := range xc[h*g.W+g.W0[q] : h*g.W+g.W1[q]] {
					s += v
				}
			}
			y[c*oq+q] = s / T(g.Div[q])
		}
	}
}

// avgForward applies avgRow to every row of x [N, C·H·W].
func (g *pool2d) avgForward(x *mat.Dense) *mat.Dense {
	n, _ := x.Dims()
	y := mat.NewDense(n, g.outSize(), nil)
	for i := 0; i < n; i++ {
		avgRow(g, x.RawRowView(i), y.RawRowView(i))
	}
	return y
}

// avgBackward spreads dy[c, q]/Div[q] over window q.
func (g *pool2d) avgBackward(dy *mat.Dense) *mat.Dense {
	n, _ := dy.Dims()
	dx := mat.NewDense(n, g.inSize(), nil)
	oq := g.OH * g.OW
	for i := 0; i < n; i++ {
		d, r := dx.RawRowView(i), dy.RawRowView(i)
		for c := 0; c < g.C; c++ {
			dc := d[c*g.H*g.W : (c+1)*g.H*g.W]
			for q := 0; q < oq; q++ {
				v := r[c*oq+q] / g.Div[q]
				for h := g.H0[q]; h < g.H1[q]; h++ {
					seg := dc[h*g.W+g.W0[q] : h*g.W+g.W1[q]]
					for k := range seg {
						seg[k] += v
					}
				}
			}
		}
	}
	return dx
}

// avgJet applies the average to each of h, ḣ, ḧ (THEORY.md §9: linear and
// α-independent); a Const jet stays Const.
func (g *pool2d) avgJet(in *Jet) *Jet {
	rows, _ := in.M.Dims()
	out := &Jet{N: in.N, M: in.WS.matrix(rows, g.outSize()), Const: in.Const, WS: in.WS}
	for i := 0; i < rows; i++ {
		avgRow(g, in.M.RawRowView(i), out.M.RawRowView(i))
	}
	return out
}

// avgJet32 is avgJet in float32.
func (g *pool2d) avgJet32(in *Jet32) *Jet32 {
	out := &Jet32{N: in.N, M: in.WS.general32(in.M.Rows, g.outSize()), Const: in.Const, WS: in.WS}
	for i := 0; i < in.M.Rows; i++ {
		avgRow(g, row32(in.M, i), row32(out.M, i))
	}
	return out
}

// avgI is the interval average of one matrix [n, C·H·W]: outward-rounded
// interval sums divided by the divisor.
func (g *pool2d) avgI(x interval.Matrix) interval.Matrix {
	oq := g.OH * g.OW
	out := interval.NewMatrix(x.Rows, g.outSize())
	for i := 0; i < x.Rows; i++ {
		for c := 0; c < g.C; c++ {
			base := i*x.Cols + c*g.H*g.W
			for q := 0; q < oq; q++ {
				s := interval.Point(0)
				for h := g.H0[q]; h < g.H1[q]; h++ {
					for w := g.W0[q]; w < g.W1[q]; w++ {
						k := base + h*g.W + w
						s = interval.Add(s, interval.I{Lo: x.Lo[k], Hi: x.Hi[k]})
					}
				}
				out.Set(i, c*oq+q, interval.Div(s, interval.Point(g.Div[q])))
			}
		}
	}
	return out
}

// avgIntervalJet applies avgI to V, D1 and D2 (a linear map commutes with
// α-derivatives); kinks and jumps pass through.
func (g *pool2d) avgIntervalJet(in *IJet) *IJet {
	out := &IJet{N: in.N, D: g.outSize(), Order: in.Order, Const: in.Const, Kink: in.Kink, Jump: in.Jump, V: g.avgI(in.V)}
	if !in.Const && in.Order >= 1 {
		out.D1 = g.avgI(in.D1)
	}
	if !in.Const && in.Order >= 2 {
		out.D2 = g.avgI(in.D2)
		if in.HasDK() {
			out.DK = g.avgI(in.DK)
		}
	}
	return out
}
