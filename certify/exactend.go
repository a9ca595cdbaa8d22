package certify

import (
	"math"
	"math/big"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// exactPrec is the mantissa precision (bits) of the exact endpoint
// evaluation. Every input (θ0, δ, x, the targets, α ∈ {0, 1}) is a
// float64, so every value of a piecewise-linear network's forward pass is a
// dyadic rational; each operation is checked to be exact (big.Exact), so
// the precision only decides how often the check gives up, never a value.
const exactPrec = 1 << 12

// exactEndWork caps Σ over linear layers of N·In·Out for the exact
// endpoint evaluation (big.Float products are ~100× a float64's): tiny
// networks only, where the float64 endpoint can sit exactly on a fit.
const exactEndWork = 1 << 16

// exactEndSlopes returns, per example, ℓ_i′ at an end of the line (side
// −1: the left derivative at α = 1; side +1: the right derivative at α =
// 0) computed exactly: θ(α) = θ0 + αδ with θ0, δ, the inputs and targets
// the float64 values the interval path certifies, evaluated in dyadic
// rational arithmetic (math/big, every operation checked exact), with
// ℓ_i = Σ_k (y_k − t_k)² unscaled (IntervalPath's per-example loss for
// mse). ok[i] is false where example i is not decided: a ReLU input
// exactly 0 at the end with zero velocity (the one-sided derivative then
// depends on higher orders), unless every residual of the example is
// exactly 0 (ℓ_i′ = 2Σ r_k r_k′ = 0 from either side). It returns nil for
// models it does not handle: only layers with an exact rule (nn.ExactRule:
// linear, relu, leaky_relu, identity, flatten) with the mse loss, at most
// exactEndWork products, and paths without BatchNorm buffers or float32
// precision.
//
// Why (issue 12, THEORY.md §7's endpoint-centred form): after an exact fit
// the interval enclosure of ℓ_i′(1) is [−ε, ε] with ε a few ulps, so the
// last leaf keeps a rise of order ε²/(2L″) and tolerance 0 is never
// reached. The exact value decides it: ℓ_i′(1) = 0 exactly (the residual is
// exactly 0 in real arithmetic) or its true sign.
func exactEndSlopes(p *functionspace.Path, side int) (d []*big.Float, ok []bool) {
	if p.Model.Spec.Loss != "mse" || p.Precision() != functionspace.Float64 || p.BNPolicy() != functionspace.BNNone {
		return nil, nil
	}
	dy := &nn.Dyadic{Prec: exactPrec, Side: side}
	maps, work, err := p.Model.ExactEnd(dy, p.Theta0, p.Delta)
	if err != nil || work == 0 || p.N*work > exactEndWork || dy.Inexact {
		return nil, nil // a layer without an exact rule, no products, too much work, or inexact parameters
	}
	d, ok = make([]*big.Float, p.N), make([]bool, p.N)
	tbuf := make([]float64, p.K)
	for n := 0; n < p.N; n++ {
		dy.Inexact, dy.Undecided = false, false
		row := p.X.RawRowView(n)
		h, hd := make([]*big.Float, len(row)), make([]*big.Float, len(row))
		for j, v := range row {
			h[j], hd[j] = dy.Of(v), dy.Of(0)
		}
		for _, f := range maps {
			h, hd = f(h, hd)
		}
		y := p.Targets.Target(n, p.K, tbuf)
		sum, t := dy.New(), dy.New()
		allZero := true
		for k := 0; k < p.K; k++ {
			r := dy.Check(dy.New().Sub(h[k], dy.Of(y[k])))
			if r.Sign() != 0 {
				allZero = false
			}
			dy.Check(sum.Add(sum, dy.Check(t.Mul(r, hd[k]))))
		}
		dy.Check(sum.Mul(sum, dy.Of(2)))
		switch {
		case !dy.Inexact && allZero:
			d[n], ok[n] = dy.New(), true // ℓ_i′ = 0 from either side
		case !dy.Inexact && !dy.Undecided:
			d[n], ok[n] = sum, true
		}
	}
	return d, ok
}

// outward returns the tightest float64 interval holding the dyadic value v.
func outward(v *big.Float) interval.I {
	lo, _ := new(big.Float).SetMode(big.ToNegativeInf).Set(v).Float64()
	hi, _ := new(big.Float).SetMode(big.ToPositiveInf).Set(v).Float64()
	return interval.I{Lo: lo, Hi: hi}
}

// tightenEnds replaces the interval path's enclosures of per-example ℓ_i′(1)
// (and ℓ_i′(0), when kept) by the exact one-sided values of
// exactEndSlopes, rounded outward, where they are decided. The exact value
// lies in the old enclosure, so this only tightens it (the intersection is
// taken; an empty one is a contradiction and leaves the old enclosure). It
// returns the number of examples tightened at α = 1.
func (e *IntervalPath) tightenEnds() int {
	n := 0
	for _, end := range []struct {
		side int
		encs [][]interval.I
	}{{-1, e.dl1}, {+1, e.dl0}} {
		if end.encs == nil {
			continue
		}
		d, ok := exactEndSlopes(e.p, end.side)
		if d == nil {
			continue
		}
		for c, ch := range e.chunks {
			for i := range end.encs[c] {
				x := ch[0] + i
				if !ok[x] {
					continue
				}
				v := interval.Intersect(end.encs[c][i], outward(d[x]))
				if !(v.Lo <= v.Hi) || math.IsNaN(v.Lo) {
					continue
				}
				end.encs[c][i] = v
				if end.side < 0 {
					n++
				}
			}
		}
	}
	return n
}

// startBoxes returns every layer's parameters at α = 0 exactly (layers
// after the cached one; nil before it): Mid = θ0 and Rad = 0, with Alpha
// the point 0. θ(0) = θ0 + 0·δ = θ0 holds in real arithmetic with no
// rounding, so the zero radius encloses it; nn.NewParamBox would widen
// every entry by 4u|θ0| + 2⁻¹⁰⁶⁰ (its bound on the rounding of θ0 + c·δ,
// which at c = 0 is exact), and that widening is what turns an exact 0
// into an interval straddling 0 (issue 13: the BatchNorm bias β(0) = 0 and
// running mean μ(0) = 0 of a freshly initialised network).
func (e *IntervalPath) startBoxes() []*nn.ParamBox {
	bs := make([]*nn.ParamBox, len(e.layers))
	for i := e.start; i < len(e.layers); i++ {
		t0, d := e.p.Model.LayerParams(e.p.Theta0, i), e.p.Model.LayerParams(e.p.Delta, i)
		b := &nn.ParamBox{Alpha: interval.Point(0), Theta0: t0, Delta: d, Mid: t0, Rad: make([]*nn.Tensor, len(t0)), Line: &e.line}
		for j, t := range t0 {
			if t != nil {
				b.Rad[j] = nn.NewTensor(t.Shape...)
			}
		}
		bs[i] = b
	}
	return bs
}

// startValues is the left-end form's pass (startForm): the enclosures of
// every layer's and every residual sub-layer's output value h(0) at α = 0
// exactly (order 0, startBoxes), on the listed rows of chunk c (nil: all),
// keyed as centredJets' midpoint jets. The cached affine layer's output is
// its constant part A = W0·x + b0 exactly (A + 0·B, not rounded). Only the
// values are kept: at a ReLU input that is exactly 0 at α = 0 the point
// rules' derivative is a one-sided one that need not be α's right
// derivative, so no derivative of this pass is used.
func (e *IntervalPath) startValues(c int, rows []int32) map[jetSite]interval.Matrix {
	out := map[jetSite]interval.Matrix{}
	e.jetHook(c, interval.Point(0), e.startBoxes(), 0, rows, func(i int, j *nn.IJet) *nn.IJet {
		if i == e.start-1 && e.start > 0 {
			a := e.a[c]
			if rows != nil {
				a = subRows(a, rows)
			} else {
				a = interval.Matrix{Rows: a.Rows, Cols: a.Cols, Lo: append([]float64(nil), a.Lo...), Hi: append([]float64(nil), a.Hi...)}
			}
			j.V = a
		}
		out[jetSite{i, -1, -1}] = j.V
		return j
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		out[jetSite{i, b, k}] = j.V
		return j
	})
	return out
}

// startForm tightens, in place, the jet j enclosing a layer's output over
// the leaf [0, w] with the left-end form around the exact value at α = 0
// (v0, from startValues, rows in j's order): for every α ∈ [0, w],
//
//	h(α) ∈ h(0) + ḣ([0, w])·α ⊆ h(0) + [min(0, w·inf D1), max(0, w·sup D1)],
//
// intersected with j.V. It holds wherever h is Lipschitz on [0, w] with ḣ
// in j.D1 almost everywhere (across ReLU kinks too, D1 being the hull of
// the one-sided derivatives), so it is skipped only where the example may
// jump. Why (issue 13): a unit that is exactly 0 at α = 0 (the blank
// background of an image through a freshly initialised BatchNorm) and
// whose velocity has one sign on the leaf gets an enclosure with an
// endpoint exactly 0 (the bound on that side adds nothing to h(0)), so the
// ReLU that reads it is the identity or 0 on the whole leaf, not a unit
// that may cross its kink; the centred form around the midpoint leaves
// such a unit straddling 0 by rounding and wrapping. Every operation
// rounds outward except adding an exact 0; an empty or NaN bound leaves
// j's own enclosure.
func startForm(j *nn.IJet, v0 interval.Matrix, w float64) {
	if j == nil || j.Const || j.Order < 1 || j.D1.Lo == nil || v0.Lo == nil || len(v0.Lo) != len(j.V.Lo) || !(w >= 0) {
		return
	}
	for i := 0; i < j.N; i++ {
		if j.Jumped(i) {
			continue
		}
		for t := i * j.D; t < (i+1)*j.D; t++ {
			dlo, dhi := j.D1.Lo[t], j.D1.Hi[t]
			lo, hi := v0.Lo[t], v0.Hi[t]
			if math.IsNaN(dlo) || math.IsNaN(dhi) || math.IsNaN(lo) || math.IsNaN(hi) {
				continue
			}
			if dlo < 0 {
				lo = downAdd(lo, interval.Down(dlo*w))
			}
			if dhi > 0 {
				hi = upAdd(hi, interval.Up(dhi*w))
			}
			lo, hi = max(lo, j.V.Lo[t]), min(hi, j.V.Hi[t])
			if lo <= hi {
				j.V.Lo[t], j.V.Hi[t] = lo, hi
			}
		}
	}
}

// downAdd returns s + x rounded down; a sum with a zero operand is exact.
func downAdd(s, x float64) float64 {
	if s == 0 || x == 0 {
		return s + x
	}
	return interval.Down(s + x)
}
