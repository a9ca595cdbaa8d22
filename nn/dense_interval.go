package nn

import (
	"github.com/certify-mli/certify/interval"
)

// IntervalJet is the affine rule of THEORY.md §2 in interval arithmetic over
// α ∈ p.Alpha, with W(α) ∈ Mid ± Rad and W′ = ΔW exact:
//
//	Z ∋ W h + b,  Ż ∋ ΔW h + W ḣ + Δb,  Z̈ ∋ 2 ΔW ḣ + W ḧ,
//
// each product enclosed by interval.MulNT (midpoint–radius, rounding bounded).
// For a Const input the first layer's exactness is used instead:
// z(α) = A + αB with A = W0 x + b0 and B = ΔW x + Δb enclosed once
// (ConstProducts) and Z = A + Alpha·B, Ż = B, Z̈ = 0 (AffineIJet).
func (d *Dense) IntervalJet(p *ParamBox, in *IJet) *IJet {
	if in.Const {
		a, b := d.ConstProducts(p, in.V)
		return AffineIJet(a, b, p.Alpha, in.Order, in.Kink)
	}
	if p.Split {
		return d.splitValues(p, in)
	}
	n := in.N
	w := p.BoxWeights(0, d.Out, d.In)
	out := &IJet{N: n, D: d.Out, Order: in.Order, Kink: in.Kink, Jump: in.Jump}
	// V and D1 enter two products each (with W(α)'s box and with ΔW):
	// converted to midpoint–radius form once (interval.MulLeft, bit for bit
	// MulNT; issue 12, cert-5000)
	v := interval.NewMulLeft(in.V)
	defer v.Release()
	out.V = v.MulNT(w, 1)
	if p.Mid[1] != nil {
		lo, hi := boxRow(p.Mid[1].Data, p.Rad[1].Data)
		out.V.AddRow(lo, hi)
	}
	if in.Order >= 1 {
		dw := p.DeltaWeights(0, d.Out, d.In)
		d1 := interval.NewMulLeft(in.D1)
		defer d1.Release()
		out.D1 = v.MulNT(dw, 1)
		out.D1.AddTo(d1.MulNT(w, 1))
		if p.Delta[1] != nil {
			out.D1.AddRow(p.Delta[1].Data, p.Delta[1].Data)
		}
		if in.Order >= 2 {
			out.D2 = d1.MulNT(dw, 2)
			out.D2.AddTo(interval.MulNT(in.D2, w, 1))
			if in.HasDK() { // ż(α) − ż(β) = W(α)(ẋ(α) − ẋ(β)) + …: the jumps map by W
				out.DK = interval.NewMatrix(n, d.Out)
				if in.anyKink() {
					out.DK = interval.MulNT(in.DK, w, 1)
				}
			}
		}
	}
	return out
}

func boxRow(mid, rad []float64) (lo, hi []float64) {
	lo, hi = make([]float64, len(mid)), make([]float64, len(mid))
	for j, m := range mid {
		lo[j], hi[j] = interval.Down(m-rad[j]), interval.Up(m+rad[j])
	}
	return lo, hi
}

// ConstProducts encloses A = W0 x + b0 and B = ΔW x + Δb [N, Out] for inputs
// x [N, In] that do not depend on α (the first affine layer). They are
// independent of the α-interval and may be computed once (THEORY.md §2).
func (d *Dense) ConstProducts(p *ParamBox, x interval.Matrix) (a, b interval.Matrix) {
	w0 := interval.NewWeights(d.Out, d.In, p.Theta0[0].Data, nil)
	dw := interval.NewWeights(d.Out, d.In, p.Delta[0].Data, nil)
	xl := interval.NewMulLeft(x)
	defer xl.Release()
	a = xl.MulNT(w0, 1)
	b = xl.MulNT(dw, 1)
	if p.Theta0[1] != nil {
		a.AddRow(p.Theta0[1].Data, p.Theta0[1].Data)
		b.AddRow(p.Delta[1].Data, p.Delta[1].Data)
	}
	return a, b
}

// AffineIJet returns the jet of z(α) = A + αB over α ∈ alpha: V = A + alpha·B
// (exact interval product per entry, rounded outward), D1 = B, D2 = 0, up to
// the given order. kink is carried over (nil: none); no example jumps
// (the input of the first affine layer does not depend on α).
func AffineIJet(a, b interval.Matrix, alpha interval.I, order int, kink []bool) *IJet {
	n, m := a.Rows, a.Cols
	if kink == nil {
		kink = make([]bool, n)
	}
	out := &IJet{N: n, D: m, Order: order, Kink: append([]bool(nil), kink...), Jump: make([]bool, n), V: interval.NewMatrix(n, m)}
	for t := range a.Lo {
		v := interval.Mul(alpha, interval.I{Lo: b.Lo[t], Hi: b.Hi[t]})
		out.V.Lo[t] = interval.Down(a.Lo[t] + v.Lo)
		out.V.Hi[t] = interval.Up(a.Hi[t] + v.Hi)
	}
	if order >= 1 {
		out.D1 = b
	}
	if order >= 2 {
		out.D2 = interval.NewMatrix(n, m)
		out.DK = interval.NewMatrix(n, m) // ż = B is constant: no jump
	}
	return out
}

// splitValues is IntervalJet's values (order 0) for a Split box: for
// every α ∈ p.Alpha, W(α)h + b(α) = (W0 h + b0) + α·(ΔW h + Δb), so
// Z ∋ P + Alpha·Q with P ∋ W0·h + b0 and Q ∋ ΔW·h + Δb enclosed by MulNT
// with the exact θ0 and δ (point Weights cached per line) and the
// α-product and the sum per entry in interval arithmetic, rounded
// outward. Sound for the same reason as the box rule (every real
// W(α)h(α) lies in it); looser where W0 and αΔW cancel (|W0| + |α||ΔW|
// in place of |W0 + cΔW| + r|ΔW| on the input's radius, which at a point
// α is only the input's rounding), but it needs no box of W(α) (issue 12,
// acc-share round: the accuracy bounds' midpoint passes). Only order 0: a
// jet of higher order is a programming error and panics.
func (d *Dense) splitValues(p *ParamBox, in *IJet) *IJet {
	if in.Order != 0 {
		panic("nn: Dense.IntervalJet: a Split box encloses values only (order 0)")
	}
	n := in.N
	v := interval.NewMulLeft(in.V)
	defer v.Release()
	pv := v.MulNT(p.Theta0Weights(0, d.Out, d.In), 1)
	qv := v.MulNT(p.DeltaWeights(0, d.Out, d.In), 1)
	if p.Theta0[1] != nil {
		pv.AddRow(p.Theta0[1].Data, p.Theta0[1].Data)
		qv.AddRow(p.Delta[1].Data, p.Delta[1].Data)
	}
	out := &IJet{N: n, D: d.Out, Order: 0, Kink: in.Kink, Jump: in.Jump, V: pv}
	for t := range pv.Lo {
		q := interval.Mul(p.Alpha, interval.I{Lo: qv.Lo[t], Hi: qv.Hi[t]})
		x := interval.Add(interval.I{Lo: pv.Lo[t], Hi: pv.Hi[t]}, q)
		pv.Lo[t], pv.Hi[t] = x.Lo, x.Hi
	}
	return out
}
