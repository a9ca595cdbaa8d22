package nn

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/interval"
)

// MaxPool2d is PyTorch's nn.MaxPool2d(kernel, stride, padding) with
// dilation 1 and ceil_mode=False (RUN_FORMAT.md "maxpool2d", THEORY.md §9)
// on flat batches [N, C·H·W]: every output of [C, OH, OW] is the largest
// input of its window (padding is −∞, never selected).
//
// Its jet propagates the triple of the selected input; among inputs of
// equal value the one whose (value, velocity, acceleration) is
// lexicographically largest, which is the right-derivative for α increasing.
// Where the arg-max changes along α the output path has a corner: the
// layer declares those kinks as a Switching layer (nn/switching.go: one
// switch unit per window, its branch the selected input, its switching
// functions the gaps x_b − x_r to the window's other inputs), so the kink
// search, the one-sided jets and the Gauss length's corners see them; the
// interval rule marks every example in which two candidates of a window may
// swap (IJet.Kink).
type MaxPool2d struct {
	pool2d
	KH, KW, SH, SW, PH, PW int
}

func init() {
	registerLayer("maxpool2d", []string{"kernel!", "stride", "padding"}, func(ls LayerSpec, width int) (Layer, error) {
		in := ls.InShape()
		if err := ls.checkPairs("maxpool2d"); err != nil {
			return nil, err
		}
		if len(in) != 3 {
			return nil, fmt.Errorf("maxpool2d: needs an image input [C, H, W], found input shape %s", ShapeString(in))
		}
		if len(ls.Kernel) == 0 {
			return nil, fmt.Errorf("maxpool2d: kernel: missing")
		}
		l := &MaxPool2d{}
		l.KH, l.KW = ls.Kernel.HW(0)
		l.SH, l.SW = l.KH, l.KW
		if len(ls.Stride) > 0 {
			l.SH, l.SW = ls.Stride.HW(0)
		}
		l.PH, l.PW = ls.Padding.HW(0)
		oh, ow, err := windowOut("maxpool2d", in, l.KH, l.KW, l.SH, l.SW, l.PH, l.PW, true)
		if err != nil {
			return nil, err
		}
		l.pool2d = slidingPool(in, l.KH, l.KW, l.SH, l.SW, l.PH, l.PW, oh, ow)
		return l, nil
	})
}

// Type returns "maxpool2d".
func (l *MaxPool2d) Type() string { return "maxpool2d" }

// InSize returns C·H·W.
func (l *MaxPool2d) InSize() int { return l.inSize() }

// OutSize returns C·OH·OW.
func (l *MaxPool2d) OutSize() int { return l.outSize() }

// OutShape implements Shaper: [C, OH, OW].
func (l *MaxPool2d) OutShape() []int { return []int{l.C, l.OH, l.OW} }

// Params returns nil.
func (l *MaxPool2d) Params() []Param { return nil }

// Kinked implements KinkSites: the output path has a corner wherever a
// window's arg-max changes along α (THEORY.md §9); the switches are
// declared by the Switching methods (nn/switching.go).
func (l *MaxPool2d) Kinked() bool { return true }

// windowArgmax returns, for each channel-window of one example, the flat input
// index of the selected input: the largest value, ties broken by the
// larger velocity then acceleration (xd, xdd nil: by the first, as
// PyTorch's forward and backward; xdd alone nil: zero accelerations).
func windowArgmax[T float32 | float64](g *pool2d, x, xd, xdd []T, idx []int) {
	oq := g.OH * g.OW
	for c := 0; c < g.C; c++ {
		base := c * g.H * g.W
		for q := 0; q < oq; q++ {
			best := -1
			for h := g.H0[q]; h < g.H1[q]; h++ {
				for w := g.W0[q]; w < g.W1[q]; w++ {
					k := base + h*g.W + w
					if best < 0 || x[k] > x[best] {
						best = k
						continue
					}
					if x[k] == x[best] && xd != nil && (xd[k] > xd[best] || (xd[k] == xd[best] && xdd != nil && xdd[k] > xdd[best])) {
						best = k
					}
				}
			}
			idx[c*oq+q] = best
		}
	}
}

// Forward returns the window maxima, x [N, C·H·W], result [N, C·OH·OW].
func (l *MaxPool2d) Forward(_ []*Tensor, x *mat.Dense) *mat.Dense {
	n, _ := x.Dims()
	y := mat.NewDense(n, l.outSize(), nil)
	idx := make([]int, l.outSize())
	for i := 0; i < n; i++ {
		xr, yr := x.RawRowView(i), y.RawRowView(i)
		windowArgmax[float64](&l.pool2d, xr, nil, nil, idx)
		for q, k := range idx {
			yr[q] = xr[k]
		}
	}
	return y
}

// Backward routes dy to the first maximal input of each window (PyTorch's
// max_pool2d_backward).
func (l *MaxPool2d) Backward(_ []*Tensor, x, _, dy *mat.Dense, _ []*Tensor) *mat.Dense {
	n, _ := x.Dims()
	dx := mat.NewDense(n, l.inSize(), nil)
	idx := make([]int, l.outSize())
	for i := 0; i < n; i++ {
		windowArgmax[float64](&l.pool2d, x.RawRowView(i), nil, nil, idx)
		d, r := dx.RawRowView(i), dy.RawRowView(i)
		for q, k := range idx {
			d[k] += r[q]
		}
	}
	return dx
}

// maxJet selects, per window, the input triple of the lexicographic
// arg-max (THEORY.md §9) for rows h (n), ḣ, ḧ of in into out (3n rows; a
// constant input: n rows, out's derivative rows 0).
func maxJet[T float32 | float64](g *pool2d, in, out [][]T, n int, konst bool) {
	idx := make([]int, g.outSize())
	for i := 0; i < n; i++ {
		x := in[i]
		var xd, xdd []T
		if !konst {
			xd, xdd = in[n+i], in[2*n+i]
		}
		windowArgmax(g, x, xd, xdd, idx)
		y, yd, ydd := out[i], out[n+i], out[2*n+i]
		for q, k := range idx {
			y[q] = x[k]
			if konst {
				yd[q], ydd[q] = 0, 0
			} else {
				yd[q], ydd[q] = xd[k], xdd[k]
			}
		}
	}
}

// Jet implements Layer: the triple of the selected input (see maxJet). A
// Const input gives a Const output.
func (l *MaxPool2d) Jet(_, _ []*Tensor, in *Jet) *Jet {
	n := in.N
	if in.Const {
		return &Jet{N: n, M: l.Forward(nil, in.M), Const: true, WS: in.WS}
	}
	out := newJet(in, n, l.outSize())
	maxJet(&l.pool2d, rowsOf(in.M, 0, 3*n), rowsOf(out.M, 0, 3*n), n, false)
	return out
}

// Jet32 implements Jet32Layer: Jet in float32.
func (l *MaxPool2d) Jet32(_, _ []*Tensor32, in *Jet32) *Jet32 {
	n := in.N
	if in.Const {
		out := &Jet32{N: n, M: in.WS.general32(n, l.outSize()), Const: true, WS: in.WS}
		idx := make([]int, l.outSize())
		for i := 0; i < n; i++ {
			x, y := row32(in.M, i), row32(out.M, i)
			windowArgmax[float32](&l.pool2d, x, nil, nil, idx)
			for q, k := range idx {
				y[q] = x[k]
			}
		}
		return out
	}
	out := newJet32(in, n, l.outSize())
	maxJet(&l.pool2d, rowsOf32(in.M, 0, 3*n), rowsOf32(out.M, 0, 3*n), n, false)
	return out
}

// IntervalJet implements IntervalLayer (THEORY.md §9): the value is the
// window's interval maximum [max Lo, max Hi]; the candidates are the inputs
// whose Hi reaches max Lo (any other is below the maximum for every α), and
// the derivatives are the hulls of the candidates' enclosures (the selected
// input is a candidate). An example with a window of two or more candidates
// may switch arg-max on the α-interval: its Kink is set (its D2 then
// encloses one-sided accelerations only).
func (l *MaxPool2d) IntervalJet(_ *ParamBox, in *IJet) *IJet {
	n, g := in.N, &l.pool2d
	out := &IJet{N: n, D: l.outSize(), Order: in.Order, Const: in.Const, Jump: in.Jump, V: interval.NewMatrix(n, l.outSize())}
	out.Kink = make([]bool, n)
	if in.Kink != nil {
		copy(out.Kink, in.Kink)
	}
	deriv := !in.Const && in.Order >= 1
	if deriv {
		out.D1 = interval.NewMatrix(n, l.outSize())
		if in.Order >= 2 {
			out.D2 = interval.NewMatrix(n, l.outSize())
		}
	}
	// the jump term (IJet.DK): with k(α) the selected input,
	// ḣ(α) − ḣ(β) = [ḣ_k(α)(α) − ḣ_k(α)(β)] + [ḣ_k(α)(β) − ḣ_k(β)(β)], in
	// hull(D2)·(α − β) + hull(DK) + (hull(D1) − hull(D1)) over the candidates
	// (the last term only with two or more)
	dk := in.HasDK()
	if dk {
		out.DK = interval.NewMatrix(n, l.outSize())
	}
	oq := g.OH * g.OW
	for i := 0; i < n; i++ {
		for c := 0; c < g.C; c++ {
			base := i*in.V.Cols + c*g.H*g.W
			for q := 0; q < oq; q++ {
				lo, hi := in.V.Lo[base+g.H0[q]*g.W+g.W0[q]], in.V.Hi[base+g.H0[q]*g.W+g.W0[q]]
				for h := g.H0[q]; h < g.H1[q]; h++ {
					for w := g.W0[q]; w < g.W1[q]; w++ {
						k := base + h*g.W + w
						lo, hi = max(lo, in.V.Lo[k]), max(hi, in.V.Hi[k])
					}
				}
				o := i*out.V.Cols + c*oq + q
				out.V.Lo[o], out.V.Hi[o] = lo, hi
				cands := 0
				var d1, d2, kk interval.I
				for h := g.H0[q]; h < g.H1[q]; h++ {
					for w := g.W0[q]; w < g.W1[q]; w++ {
						k := base + h*g.W + w
						if in.V.Hi[k] < lo {
							continue
						}
						cands++
						if !deriv {
							continue
						}
						e1 := interval.I{Lo: in.D1.Lo[k], Hi: in.D1.Hi[k]}
						var e2 interval.I
						if out.D2.Lo != nil {
							e2 = interval.I{Lo: in.D2.Lo[k], Hi: in.D2.Hi[k]}
						}
						var ek interval.I
						if dk {
							ek = interval.I{Lo: in.DK.Lo[k], Hi: in.DK.Hi[k]}
						}
						if cands == 1 {
							d1, d2, kk = e1, e2, ek
						} else {
							d1, d2, kk = interval.Hull(d1, e1), interval.Hull(d2, e2), interval.Hull(kk, ek)
						}
					}
				}
				if cands > 1 && !in.Const {
					out.Kink[i] = true
				}
				if deriv {
					out.D1.Lo[o], out.D1.Hi[o] = d1.Lo, d1.Hi
					if out.D2.Lo != nil {
						out.D2.Lo[o], out.D2.Hi[o] = d2.Lo, d2.Hi
					}
					if dk {
						if cands > 1 {
							kk = interval.Add(kk, interval.Sub(d1, d1))
						}
						out.DK.Lo[o], out.DK.Hi[o] = kk.Lo, kk.Hi
					}
				}
			}
		}
	}
	return out
}

var (
	_ KinkSites     = (*MaxPool2d)(nil)
	_ Jet32Layer    = (*MaxPool2d)(nil)
	_ IntervalLayer = (*MaxPool2d)(nil)
	_ Shaper        = (*MaxPool2d)(nil)
)
