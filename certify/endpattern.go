package certify

import (
	"math"
	"math/big"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// endPatternDL encloses ℓ_i′ on the last leaf [a, 1) for the listed
// chunk-local rows of chunk c whose only kinks on the leaf are units of the
// first ReLU that cannot cross 0 before α = 1 (issue 12, an exact fit with
// a ReLU input exactly 0 at θT). Such a unit's pre-activation z = A + αB is
// affine in α with a velocity B of definite sign, and either z(1) = A + B
// = 0 exactly (exactZeroAtOne) or its root −A/B is proven ≥ 1; either way z(α) = B(α − r)
// keeps the sign of −B on [a, 1), so the unit is alive there iff B < 0.
// With that pattern P forced on the whole leaf (alive: h = z, ḣ = B, ḧ = 0;
// dead: exactly 0) the row's loss f_P is smooth on [a, 1] (the row is
// skipped if any other unit or later layer may kink or jump) and equals ℓ_i
// on [a, 1), so ℓ_i′(1⁻) = f_P′(1) ∈ d1[i] (the enclosure of the one-sided
// slopes at α = 1, exact where tightenEnds decided it) and, for α ∈ [a, 1),
//
//	ℓ_i′(α) = f_P′(1) − ∫_α^1 f_P″ ∈ d1[i] + (α − 1)·inf..sup f_P″([a, 1]),
//
// the endpoint-centred form of THEORY.md §7 on the pattern's smooth loss.
// The point α = 1 itself has measure 0 (L is continuous there), so this
// bounds the leaf's rise as the kinked rows' constant sup ℓ_i′ does. The
// ReLU's interval rule alone hulls the two sides of the kink at α = 1 and
// so cannot use the exact ℓ_i′(1⁻). Rows without such a pattern get the
// whole line.
func (e *IntervalPath) endPatternDL(c int, a float64, bi []*nn.ParamBox, rows []int32, d1 []interval.I) []interval.I {
	whole := interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
	out := make([]interval.I, len(rows))
	for t := range out {
		out[t] = whole
	}
	A, B, k0 := e.a[c], e.b[c], e.kink0[c]
	m := A.Cols
	ab := interval.I{Lo: a, Hi: 1}
	var keep []int    // indices into rows
	var alive [][]int // per kept row: +1 alive, −1 dead, 0 not forced (per unit)
	for t, i32 := range rows {
		i := int(i32)
		if k0 != nil && k0[i] {
			continue
		}
		s, ok := patternUnits(A, B, i, ab)
		if !ok {
			continue
		}
		f := make([]int, m)
		for _, j := range s {
			k := i*m + j
			al, ah, bl, bh := A.Lo[k], A.Hi[k], B.Lo[k], B.Hi[k]
			root := interval.Div(interval.Neg(interval.I{Lo: al, Hi: ah}), interval.I{Lo: bl, Hi: bh})
			if !(root.Lo >= 1) && !e.exactZeroAtOne(c, i, j) {
				ok = false
				break
			}
			if bh < 0 {
				f[j] = 1
			} else {
				f[j] = -1
			}
		}
		if ok {
			keep, alive = append(keep, t), append(alive, f)
		}
	}
	if len(keep) == 0 {
		return out
	}
	idx := make([]int32, len(keep))
	for p, t := range keep {
		idx[p] = rows[t]
	}
	z := nn.AffineIJet(subRows(A, idx), subRows(B, idx), ab, 2, nil)
	// the ReLU sees the forced units at a point of their side, so its Kink
	// flag reports only the other units
	in := &nn.IJet{N: z.N, D: z.D, Order: 2, V: interval.NewMatrix(z.N, z.D), D1: cloneM(z.D1), D2: cloneM(z.D2), DK: cloneM(z.DK), Kink: append([]bool(nil), z.Kink...), Jump: append([]bool(nil), z.Jump...)}
	copy(in.V.Lo, z.V.Lo)
	copy(in.V.Hi, z.V.Hi)
	for p, f := range alive {
		for u, s := range f {
			if s != 0 {
				q := p*m + u
				in.V.Lo[q], in.V.Hi[q] = float64(s), float64(s)
			}
		}
	}
	j := e.layers[e.start].IntervalJet(bi[e.start], in)
	for p, f := range alive {
		for u, s := range f {
			q := p*m + u
			switch s {
			case 1: // alive: h = z
				j.V.Lo[q], j.V.Hi[q] = z.V.Lo[q], z.V.Hi[q]
				j.D1.Lo[q], j.D1.Hi[q] = z.D1.Lo[q], z.D1.Hi[q]
				j.D2.Lo[q], j.D2.Hi[q] = 0, 0
			case -1: // dead: exactly 0
				j.V.Lo[q], j.V.Hi[q], j.D1.Lo[q], j.D1.Hi[q], j.D2.Lo[q], j.D2.Hi[q] = 0, 0, 0, 0, 0, 0
			}
			if s != 0 && j.DK.Lo != nil {
				j.DK.Lo[q], j.DK.Hi[q] = 0, 0
			}
		}
	}
	for i := e.start + 1; i < len(e.layers); i++ {
		j = e.layers[i].IntervalJet(e.boxAt(bi, i, ab), j)
	}
	ch := e.chunks[c]
	_, _, d2l := nn.LossEnclosure(e.p.Model.Spec.Loss, j, subTargets(e.p.Targets.Rows(ch[0], ch[1]), idx))
	// α − 1 over [a, 1]: the upper end is exactly 0 (interval.Sub would
	// round it up to the smallest subnormal, which alone keeps sup ℓ_i′ > 0)
	off := interval.I{Lo: interval.Down(a - 1), Hi: 0}
	for p, t := range keep {
		if j.Kink[p] || (j.Jump != nil && j.Jump[p]) || !d2l[p].Valid() {
			continue
		}
		d := interval.Add(d1[rows[t]], interval.Mul(d2l[p], off))
		if d.Lo <= d.Hi {
			out[t] = d
		}
	}
	return out
}

// cloneM returns a copy of m (nil slices stay nil).
func cloneM(m interval.Matrix) interval.Matrix {
	if m.Lo == nil {
		return m
	}
	return interval.Matrix{Rows: m.Rows, Cols: m.Cols, Lo: append([]float64(nil), m.Lo...), Hi: append([]float64(nil), m.Hi...)}
}

// exactZeroAtOne reports whether the first ReLU's input z_ij(1) of
// chunk-local row i, unit j, is exactly 0 in real arithmetic: the cached
// affine layer is the model's first layer (its input the row of X) and has
// an exact rule (nn.ExactRule: linear) of at most exactEndWork products,
// which evaluates z(1) from θ0 + δ in dyadic rational arithmetic (math/big,
// every operation checked exact, as exactEndSlopes). False (not known)
// otherwise.
func (e *IntervalPath) exactZeroAtOne(c, i, j int) bool {
	r, ok := e.p.Model.Layers[0].(nn.ExactRule)
	if e.start != 1 || !ok {
		return false
	}
	if w, ok := r.ExactWork(); !ok || w > exactEndWork {
		return false
	}
	dy := &nn.Dyadic{Prec: exactPrec, Side: -1}
	f := r.ExactAt(dy, e.p.Model.LayerParams(e.p.Theta0, 0), e.p.Model.LayerParams(e.p.Delta, 0))
	row := e.p.X.RawRowView(e.chunks[c][0] + i)
	h, hd := make([]*big.Float, len(row)), make([]*big.Float, len(row))
	for k, v := range row {
		h[k], hd[k] = dy.Of(v), dy.Of(0)
	}
	h, _ = f(h, hd)
	return !dy.Inexact && j < len(h) && h[j].Sign() == 0
}
