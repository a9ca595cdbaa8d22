package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/interval"
)

// LayerNorm is PyTorch's nn.LayerNorm(shape, eps, elementwise_affine) on
// flat batches [N, W] (RUN_FORMAT.md "layernorm", THEORY.md §9): every
// example's features are cut into W/S consecutive groups of S = prod(shape)
// (the trailing dimensions normalised), and each group x is mapped to
//
//	y = γ ⊙ (x − μ)/√(v + Eps) + β,  μ = mean(x),  v = mean((x − μ)²)
//
// (biased variance), with weight γ and bias β of shape Shape when Affine.
// It has no running statistics: training and evaluation agree, and the
// statistics are the example's own, so its jet is per example.
type LayerNorm struct {
	Width  int
	Shape  []int
	Eps    float64
	Affine bool
}

func init() {
	registerLayer("layernorm", []string{"shape!", "eps", "affine"}, func(ls LayerSpec, width int) (Layer, error) {
		l := &LayerNorm{Width: width, Shape: ls.Shape, Eps: 1e-5, Affine: ls.Affine == nil || *ls.Affine}
		if ls.Eps != nil {
			l.Eps = *ls.Eps
		}
		if len(l.Shape) == 0 {
			l.Shape = []int{width}
		}
		s := numel(l.Shape)
		for _, d := range l.Shape {
			if d <= 0 {
				return nil, fmt.Errorf("layernorm: shape: want positive sizes, found %v", l.Shape)
			}
		}
		if width%s != 0 {
			return nil, fmt.Errorf("layernorm: shape %v (%d features) does not divide the previous layer's %d features", l.Shape, s, width)
		}
		if !(l.Eps > 0) {
			return nil, fmt.Errorf("layernorm: eps must be positive, found %v", l.Eps)
		}
		return l, nil
	})
}

// Type implements Layer.
func (l *LayerNorm) Type() string { return "layernorm" }

// InSize implements Layer.
func (l *LayerNorm) InSize() int { return l.Width }

// OutSize implements Layer.
func (l *LayerNorm) OutSize() int { return l.Width }

// Params implements Layer: weight and bias of shape Shape when Affine.
func (l *LayerNorm) Params() []Param {
	if !l.Affine {
		return nil
	}
	return []Param{{Name: "weight", Shape: append([]int(nil), l.Shape...)}, {Name: "bias", Shape: append([]int(nil), l.Shape...)}}
}

// ResetParams implements ParamResetter: PyTorch's weight 1, bias 0.
func (l *LayerNorm) ResetParams() []*Tensor {
	if !l.Affine {
		return nil
	}
	w, b := NewTensor(l.Shape...), NewTensor(l.Shape...)
	for j := range w.Data {
		w.Data[j] = 1
	}
	return []*Tensor{w, b}
}

// Kinked implements KinkSites: LayerNorm is smooth (Eps > 0).
func (l *LayerNorm) Kinked() bool { return false }

func (l *LayerNorm) group() int { return numel(l.Shape) }

// affine returns γ, β (nil when not Affine).
func (l *LayerNorm) affine(p []*Tensor) (g, b []float64) {
	if !l.Affine || p == nil {
		return nil, nil
	}
	return p[0].Data, p[1].Data
}

// Forward implements Layer.
func (l *LayerNorm) Forward(p []*Tensor, x *mat.Dense) *mat.Dense {
	n, _ := x.Dims()
	y := mat.NewDense(n, l.Width, nil)
	g, b := l.affine(p)
	s := l.group()
	for i := 0; i < n; i++ {
		xr, yr := x.RawRowView(i), y.RawRowView(i)
		for q := 0; q < l.Width; q += s {
			xs, ys := xr[q:q+s], yr[q:q+s]
			mu, r := meanRstd(xs, l.Eps)
			for k, v := range xs {
				h := (v - mu) * r
				if g != nil {
					h = g[k]*h + b[k]
				}
				ys[k] = h
			}
		}
	}
	return y
}

// meanRstd returns the mean of x and 1/√(v + eps), v the biased variance.
func meanRstd(x []float64, eps float64) (mu, r float64) {
	for _, v := range x {
		mu += v
	}
	mu /= float64(len(x))
	var v float64
	for _, xv := range x {
		v += (xv - mu) * (xv - mu)
	}
	v /= float64(len(x))
	return mu, 1 / math.Sqrt(v+eps)
}

// Backward implements Layer: with x̂ = (x − μ)r and g = dy ⊙ γ,
// dx = r (g − mean(g) − x̂ mean(g ⊙ x̂)); dγ = Σ dy ⊙ x̂, dβ = Σ dy.
func (l *LayerNorm) Backward(p []*Tensor, x, _, dy *mat.Dense, grads []*Tensor) *mat.Dense {
	n, _ := x.Dims()
	dx := mat.NewDense(n, l.Width, nil)
	g, _ := l.affine(p)
	s := l.group()
	xh, gh := make([]float64, s), make([]float64, s)
	for i := 0; i < n; i++ {
		xr, dyr, dxr := x.RawRowView(i), dy.RawRowView(i), dx.RawRowView(i)
		for q := 0; q < l.Width; q += s {
			mu, r := meanRstd(xr[q:q+s], l.Eps)
			var mg, mgx float64
			for k := 0; k < s; k++ {
				xh[k] = (xr[q+k] - mu) * r
				gh[k] = dyr[q+k]
				if g != nil {
					grads[0].Data[k] += dyr[q+k] * xh[k]
					grads[1].Data[k] += dyr[q+k]
					gh[k] *= g[k]
				}
				mg += gh[k]
				mgx += gh[k] * xh[k]
			}
			mg /= float64(s)
			mgx /= float64(s)
			for k := 0; k < s; k++ {
				dxr[q+k] = r * (gh[k] - mg - xh[k]*mgx)
			}
		}
	}
	return dx
}

// lnJet is the second-order jet of one group (THEORY.md §2, §9), generic
// in the precision: with c = x − μ, v = mean(c²), r = (v + eps)^(−1/2),
//
//	ċ = ẋ − mean(ẋ), c̈ = ẍ − mean(ẍ),
//	v̇ = 2 mean(c ċ), v̈ = 2 mean(ċ² + c c̈),
//	ṙ = −½ r³ v̇, r̈ = ¾ r⁵ v̇² − ½ r³ v̈,
//	x̂ = c r, x̂̇ = ċ r + c ṙ, x̂̈ = c̈ r + 2 ċ ṙ + c r̈,
//	y = γ x̂ + β, ẏ = γ̇ x̂ + γ x̂̇ + β̇, ÿ = 2 γ̇ x̂̇ + γ x̂̈
//
// (γ̈ = β̈ = 0 on the line). g, dg, b, db are nil without affine parameters;
// xd, xdd nil for an input that does not depend on α (then only y, yd are
// written when yd is not nil).
func lnJet[T float32 | float64](x, xd, xdd, g, dg, b, db, y, yd, ydd []T, eps float64) {
	s := T(len(x))
	var mu, md, mdd T
	for k := range x {
		mu += x[k]
		if xd != nil {
			md += xd[k]
			mdd += xdd[k]
		}
	}
	mu, md, mdd = mu/s, md/s, mdd/s
	var v, vd, vdd T
	for k := range x {
		c := x[k] - mu
		v += c * c
		if xd != nil {
			cd, cdd := xd[k]-md, xdd[k]-mdd
			vd += c * cd
			vdd += cd*cd + c*cdd
		}
	}
	v, vd, vdd = v/s, 2*vd/s, 2*vdd/s
	r := T(1 / math.Sqrt(float64(v)+eps))
	r3 := r * r * r
	rd := -r3 * vd / 2
	rdd := 3*r3*r*r*vd*vd/4 - r3*vdd/2
	for k := range x {
		c := x[k] - mu
		h := c * r
		var hd, hdd T
		if xd != nil {
			cd, cdd := xd[k]-md, xdd[k]-mdd
			hd = cd*r + c*rd
			hdd = cdd*r + 2*cd*rd + c*rdd
		}
		if g == nil {
			y[k] = h
			if yd != nil {
				yd[k], ydd[k] = hd, hdd
			}
			continue
		}
		y[k] = g[k]*h + b[k]
		if yd != nil {
			yd[k] = dg[k]*h + g[k]*hd + db[k]
			ydd[k] = 2*dg[k]*hd + g[k]*hdd
		}
	}
}

// Jet implements Layer (THEORY.md §2, §9; see lnJet and layerNormJet).
func (l *LayerNorm) Jet(p, dp []*Tensor, in *Jet) *Jet {
	g, b := l.affine(p)
	dg, db := l.affine(dp)
	if in.Const && g == nil {
		return &Jet{N: in.N, M: l.Forward(nil, in.M), Const: true, WS: in.WS}
	}
	return jet64(layerNormJet(l, g, dg, b, db, view64(in)))
}

// layerNormJet is Jet and Jet32 (except a Const input without affine
// parameters, whose output is Const), written once over the element type:
// lnJet on every group of every example. g, dg, b, db are nil without
// affine parameters.
func layerNormJet[T elem](l *LayerNorm, g, dg, b, db []T, in jetOf[T]) jetOf[T] {
	n, s := in.N, l.group()
	out := newJetOf(in, n, l.Width)
	for i := 0; i < n; i++ {
		x := in.M.row(i)
		var xd, xdd []T
		if !in.Const {
			xd, xdd = in.M.row(n+i), in.M.row(2*n+i)
		}
		y, yd, ydd := out.M.row(i), out.M.row(n+i), out.M.row(2*n+i)
		for q := 0; q < l.Width; q += s {
			var gd, gdd []T
			if xd != nil {
				gd, gdd = xd[q:q+s], xdd[q:q+s]
			}
			lnJet(x[q:q+s], gd, gdd, g, dg, b, db, y[q:q+s], yd[q:q+s], ydd[q:q+s], l.Eps)
		}
	}
	return out
}

// JetRows implements RowJetter: row r of the output is Jet's rule at
// α = alphas[r], parameters p0 + α·dp.
func (l *LayerNorm) JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	n, s := in.N, l.group()
	out := &Jet{N: n, M: mat.NewDense(3*n, l.Width, nil)}
	var g, b []float64
	dg, db := l.affine(dp)
	if dg != nil {
		g, b = make([]float64, s), make([]float64, s)
	}
	for i := 0; i < n; i++ {
		if g != nil {
			for k := 0; k < s; k++ {
				g[k] = p0[0].Data[k] + alphas[i]*dg[k]
				b[k] = p0[1].Data[k] + alphas[i]*db[k]
			}
		}
		x := in.M.RawRowView(i)
		var xd, xdd []float64
		if !in.Const {
			xd, xdd = in.M.RawRowView(n+i), in.M.RawRowView(2*n+i)
		}
		y, yd, ydd := out.M.RawRowView(i), out.M.RawRowView(n+i), out.M.RawRowView(2*n+i)
		for q := 0; q < l.Width; q += s {
			var gd, gdd []float64
			if xd != nil {
				gd, gdd = xd[q:q+s], xdd[q:q+s]
			}
			lnJet(x[q:q+s], gd, gdd, g, dg, b, db, y[q:q+s], yd[q:q+s], ydd[q:q+s], l.Eps)
		}
	}
	return out
}

// Jet32 implements Jet32Layer: the rule of Jet in float32 arithmetic
// (1/√ in float64, rounded once).
func (l *LayerNorm) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	n, s := in.N, l.group()
	var g, b, dg, db []float32
	if l.Affine && p != nil {
		g, b, dg, db = p[0].Data, p[1].Data, dp[0].Data, dp[1].Data
	}
	if in.Const && g == nil {
		out := &Jet32{N: n, M: newGeneral32(n, l.Width), Const: true, WS: in.WS}
		for i := 0; i < n; i++ {
			x, y := row32(in.M, i), row32(out.M, i)
			for q := 0; q < l.Width; q += s {
				lnJet[float32](x[q:q+s], nil, nil, nil, nil, nil, nil, y[q:q+s], nil, nil, l.Eps)
			}
		}
		return out
	}
	return jet32(layerNormJet(l, g, dg, b, db, view32(in)))
}

// IntervalJet implements IntervalLayer: lnJet's formulas evaluated in
// outward-rounded interval arithmetic on the input enclosure, with
// γ, β ∈ Mid ± Rad over the α-interval and γ̇, β̇ = δ exactly. Every
// quantity is a natural interval extension of the point formula, so the
// result encloses the jet of every α and every input in the enclosure
// (coarse: the dependency between c and μ is not exploited). The variance
// enclosure is clipped at 0 (v ≥ 0 for every point input).
func (l *LayerNorm) IntervalJet(p *ParamBox, in *IJet) *IJet {
	n, s := in.N, l.group()
	out := &IJet{N: n, D: l.Width, Order: in.Order, Kink: in.Kink, Jump: in.Jump, V: interval.NewMatrix(n, l.Width)}
	konst := in.Const && (!l.Affine || p == nil)
	out.Const = konst
	if !konst {
		if out.Order >= 1 {
			out.D1 = interval.NewMatrix(n, l.Width)
		}
		if out.Order >= 2 {
			out.D2 = interval.NewMatrix(n, l.Width)
		}
	}
	var gam, bet []interval.I
	var dgam, dbet []float64
	if l.Affine && p != nil {
		gam, bet = make([]interval.I, s), make([]interval.I, s)
		for k := 0; k < s; k++ {
			gam[k] = boxAt(p, 0, k)
			bet[k] = boxAt(p, 1, k)
		}
		dgam, dbet = p.Delta[0].Data, p.Delta[1].Data
	}
	mean := func(xs []interval.I) interval.I {
		acc := interval.Point(0)
		for _, v := range xs {
			acc = interval.Add(acc, v)
		}
		return interval.Mul(acc, interval.Div(interval.Point(1), interval.Point(float64(s))))
	}
	x, xd, xdd := make([]interval.I, s), make([]interval.I, s), make([]interval.I, s)
	c, cd, cdd := make([]interval.I, s), make([]interval.I, s), make([]interval.I, s)
	tmp := make([]interval.I, s)
	deriv := !in.Const && in.Order >= 1 // an order-0 jet (values only: the certified accuracy) has no D1
	for i := 0; i < n; i++ {
		for q := 0; q < l.Width; q += s {
			for k := 0; k < s; k++ {
				x[k] = in.V.At(i, q+k)
				if deriv {
					xd[k] = in.D1.At(i, q+k)
					if in.Order >= 2 {
						xdd[k] = in.D2.At(i, q+k)
					} else {
						xdd[k] = interval.Point(0)
					}
				} else {
					xd[k], xdd[k] = interval.Point(0), interval.Point(0)
				}
			}
			mu, md, mdd := mean(x), mean(xd), mean(xdd)
			for k := 0; k < s; k++ {
				c[k], cd[k], cdd[k] = interval.Sub(x[k], mu), interval.Sub(xd[k], md), interval.Sub(xdd[k], mdd)
			}
			for k := range tmp {
				tmp[k] = interval.Sqr(c[k])
			}
			v := interval.Clamp(mean(tmp), 0, math.Inf(1))
			for k := range tmp {
				tmp[k] = interval.Mul(c[k], cd[k])
			}
			vd := interval.Scale(2, mean(tmp))
			for k := range tmp {
				tmp[k] = interval.Add(interval.Sqr(cd[k]), interval.Mul(c[k], cdd[k]))
			}
			vdd := interval.Scale(2, mean(tmp))
			r := rsqrt(interval.AddF(v, l.Eps))
			r3 := interval.Cube(r)
			rd := interval.Scale(-0.5, interval.Mul(r3, vd))
			rdd := interval.Sub(interval.Scale(0.75, interval.Mul(interval.Mul(r3, interval.Sqr(r)), interval.Sqr(vd))), interval.Scale(0.5, interval.Mul(r3, vdd)))
			for k := 0; k < s; k++ {
				h := interval.Mul(c[k], r)
				hd := interval.Add(interval.Mul(cd[k], r), interval.Mul(c[k], rd))
				hdd := interval.Add(interval.Add(interval.Mul(cdd[k], r), interval.Scale(2, interval.Mul(cd[k], rd))), interval.Mul(c[k], rdd))
				y, yd, ydd := h, hd, hdd
				if gam != nil {
					y = interval.Add(interval.Mul(gam[k], h), bet[k])
					yd = interval.AddF(interval.Add(interval.Scale(dgam[k], h), interval.Mul(gam[k], hd)), dbet[k])
					ydd = interval.Add(interval.Scale(2*dgam[k], hd), interval.Mul(gam[k], hdd))
				}
				out.V.Set(i, q+k, y)
				if !konst && out.Order >= 1 {
					out.D1.Set(i, q+k, yd)
				}
				if !konst && out.Order >= 2 {
					out.D2.Set(i, q+k, ydd)
				}
			}
		}
	}
	return out
}

var (
	_ IntervalLayer = (*LayerNorm)(nil)
	_ Jet32Layer    = (*LayerNorm)(nil)
	_ KinkSites     = (*LayerNorm)(nil)
	_ RowJetter     = (*LayerNorm)(nil)
	_ ParamResetter = (*LayerNorm)(nil)
)
