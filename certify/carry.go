package certify

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// carryPlan is the structure that lets the interval path enclose the second
// affine layer's output of a two-hidden-layer MLP over a leaf without an
// interval matrix product over a parameter box (issue 12, cert-carry;
// docs/soundness.md, "The carried second layer"): the layer after the
// cached affine layer (site act) is a ReLU-family activation acting unit
// by unit with two slopes (nn.PiecewiseLinear), and the next (site dense)
// is z₂ = W(α)h + b(α) (nn.DenseWeights, nn.AffineInAlpha).
//
// On a leaf [l, r] the first layer's pre-activation is z₁ = a + αb exactly
// (a, b enclosed once, IntervalPath.a/b). A unit u whose enclosure of z₁
// over the leaf is strictly positive or strictly negative has one slope
// s_u there, so h_u = s_u(a_u + αb_u) is affine in α, and the fixed units'
// part of z₂ is exactly the quadratic
//
//	z₂ᶠ(α) = A + α(B + C) + α²E,  A = W0(s⊙a) + b0, B = W0(s⊙b),
//	C = ΔW(s⊙a) + Δb,  E = ΔW(s⊙b)
//
// (s zero on the other units), whose range over the leaf is enclosed in
// vertex form (quadRange) and whose derivatives are (B + C) + 2αE and 2E.
// The other units (those that may cross their kink on the leaf, or touch
// it) add Σ_u W(α)e_u·h_u(α) with h_u and its derivatives enclosed by the
// activation's own interval rule: a few rank-one terms per example
// (crossSums). The coefficients cost two point matrix products per leaf
// and chunk (carryMul), shared by the leaf's pass and its midpoint's.
type carryPlan struct {
	act, dense int     // layer sites: the activation and the dense layer after it
	on, off    float64 // the activation's slopes (nn.PiecewiseLinear)
	in, out    int     // the dense layer's input and output widths
	// d is the layer's description (functionspace.CarriedLayer: W0, ΔW,
	// their transposes, whose columns crossSums reads, the biases)
	d *functionspace.CarriedLayer
	// wd is [W0; ΔW] [2·out, in] row-major and wn its rows' Euclidean
	// norms, rounded up (carryMul)
	wd, wn []float64
	b0, db []float64 // the bias at θ0 and its δ (nil: none)
}

// newCarryPlan returns the plan of the carried second layer for e, or nil
// when the model is not of its shape (functionspace.DescribeCarriedLayer,
// with the dense layer right after the activation and affine in α on a
// constant input, nn.AffineInAlpha) or the path needs the general passes:
// bn_policy recompute, a layer that may jump, no cached affine layer, no
// examples.
func newCarryPlan(e *IntervalPath) *carryPlan {
	if noCarry || e.start == 0 || e.recompute || e.jumps || e.start+1 >= len(e.layers) {
		return nil
	}
	m := e.p.Model
	act, dense := e.start, e.start+1
	if _, ok := m.Layers[dense].(nn.AffineInAlpha); !ok {
		return nil
	}
	d := functionspace.DescribeCarriedLayer(m, e.p.Theta0, e.p.Delta, act, dense)
	if d == nil || len(e.a) == 0 || e.a[0].Cols != d.In {
		return nil // not the shape, or no examples: the general passes
	}
	out, in := d.Out, d.In
	pl := &carryPlan{act: act, dense: dense, in: in, out: out, on: d.On, off: d.Off, d: d, b0: d.B0, db: d.DB}
	pl.wd = make([]float64, 2*out*in)
	copy(pl.wd, d.W0)
	copy(pl.wd[out*in:], d.DW)
	pl.wn = make([]float64, 2*out)
	for o := range pl.wn {
		ss, zero := 0.0, true
		for _, v := range pl.wd[o*in : (o+1)*in] {
			ss += v * v
			zero = zero && v == 0
		}
		pl.wn[o] = normUp(ss, in, zero)
	}
	return pl
}

// noCarry forces the general passes (tests compare the two; the live
// scale test's CERTIFY_SCALE_NOCARRY).
var noCarry bool

// unitSlope reads element t of the first layer's coefficients A and B
// (z₁ = a + α·b, row-major) and encloses z₁ over the leaf ab with outward
// rounding. fixed says z₁ is strictly above or below 0 on the whole leaf,
// and s is then the activation's slope there (pl.on or pl.off); a unit that
// may cross or touch its kink, or whose enclosure is NaN, is not fixed.
// Shared by carryCoef and carryCoefFrom so that both classify the units
// the same way.
func (pl *carryPlan) unitSlope(A, B interval.Matrix, t int, ab interval.I) (av, bv interval.I, s float64, fixed bool) {
	av, bv = interval.I{Lo: A.Lo[t], Hi: A.Hi[t]}, interval.I{Lo: B.Lo[t], Hi: B.Hi[t]}
	v := interval.Mul(ab, bv)
	z := interval.I{Lo: interval.Down(av.Lo + v.Lo), Hi: interval.Up(av.Hi + v.Hi)}
	switch {
	case z.Lo > 0:
		return av, bv, pl.on, true
	case z.Hi < 0:
		return av, bv, pl.off, true
	default:
		return av, bv, 0, false
	}
}

// carryCoef holds, for one chunk and one leaf ab, the fixed units' quadratic
// z₂ᶠ(α) = A + α·BC + α²·E (carryPlan) per example, enclosed: A, BC, E
// [n, out] for the chunk's rows listed in rows (nil: every row), and per
// row the units that may cross or touch their kink on ab (cross).
type carryCoef struct {
	ab       interval.I
	rows     []int32 // chunk-local rows of the coefficients' rows; nil: all
	A, BC, E interval.Matrix
	cross    [][]int32
}

// carryCoef computes the coefficients of the fixed units' quadratic over
// the leaf ab for the listed rows of chunk c (nil: all): the slope of every
// unit whose z₁ = a + αb is enclosed strictly above or below 0 on ab, and
// the products of the four coefficient vectors with rigorous rounding
// (carryMul).
func (e *IntervalPath) carryCoef(c int, ab interval.I, rows []int32) *carryCoef {
	pl := e.carry
	A, B := e.a[c], e.b[c]
	if rows != nil {
		A, B = subRows(A, rows), subRows(B, rows)
	}
	n, k := A.Rows, A.Cols
	cf := &carryCoef{ab: ab, rows: rows, cross: make([][]int32, n)}
	// X = [s⊙a; s⊙b] [2n, k] goes straight to its midpoints and the norms
	// of carryMul's y (carryRow), with no interval matrix of its own
	// xm (every entry written by carryRow) and the product's midpoints come
	// from a pool (interval.Scratch): tens of MB per leaf and chunk
	xmp := interval.Scratch(2 * n * k)
	defer interval.PutScratch(xmp)
	xm := *xmp
	yn := make([]float64, 2*n)
	zero := make([]bool, 2*n)
	g := interval.Gamma(k + 2)
	xa, xb := make([]float64, 2*k), make([]float64, 2*k) // one row of each half: [lo | hi]
	for i := 0; i < n; i++ {
		clear(xa)
		clear(xb)
		for u := 0; u < k; u++ {
			av, bv, s, fixed := pl.unitSlope(A, B, i*k+u, ab)
			if !fixed { // may cross or touch its kink, or NaN: a rank-one term (crossSums)
				cf.cross[i] = append(cf.cross[i], int32(u))
				continue
			}
			switch s {
			case 0:
			case 1:
				xa[u], xa[k+u] = av.Lo, av.Hi
				xb[u], xb[k+u] = bv.Lo, bv.Hi
			default:
				sa, sb := interval.Scale(s, av), interval.Scale(s, bv)
				xa[u], xa[k+u] = sa.Lo, sa.Hi
				xb[u], xb[k+u] = sb.Lo, sb.Hi
			}
		}
		yn[i], zero[i] = carryRow(xa[:k], xa[k:], xm[i*k:(i+1)*k], g)
		yn[n+i], zero[n+i] = carryRow(xb[:k], xb[k:], xm[(n+i)*k:(n+i+1)*k], g)
	}
	// [2n, 2·out]: [W0(s⊙a) ΔW(s⊙a); W0(s⊙b) ΔW(s⊙b)]
	midp := interval.Scratch(2 * n * 2 * pl.out)
	defer interval.PutScratch(midp)
	p := carryProduct(xm, yn, zero, k, pl.wd, pl.wn, 2*pl.out, *midp)
	m := pl.out
	cf.A, cf.BC, cf.E = interval.NewMatrix(n, m), interval.NewMatrix(n, m), interval.NewMatrix(n, m)
	for i := 0; i < n; i++ {
		for o := 0; o < m; o++ {
			t := i*m + o
			cf.A.Lo[t], cf.A.Hi[t] = p.at(i, o)
			blo, bhi := p.at(n+i, o)
			clo, chi := p.at(i, m+o)
			bc := interval.Add(interval.I{Lo: blo, Hi: bhi}, interval.I{Lo: clo, Hi: chi})
			cf.BC.Lo[t], cf.BC.Hi[t] = bc.Lo, bc.Hi
			cf.E.Lo[t], cf.E.Hi[t] = p.at(n+i, m+o)
		}
	}
	if pl.b0 != nil {
		cf.A.AddRow(pl.b0, pl.b0)
		cf.BC.AddRow(pl.db, pl.db)
	}
	e.mu.Lock()
	e.carryRows += n
	e.mu.Unlock()
	return cf
}

// carryCoefFrom derives the coefficients over the leaf ab ⊆ par.ab for the
// listed rows of chunk c (chunk-local, increasing; nil: all; each must be
// a row par holds) from par's, without a matrix product (issue 12,
// cert-scale): a unit fixed on par.ab keeps its slope on every α of it,
// so on ab too, and the fixed set on ab is par's fixed set plus those of
// par's crossing units whose z₁ = a + αb is enclosed strictly above or
// below 0 on ab (the test of carryCoef). Their terms, s_u·a_u·W0e_u in A,
// s_u·(b_u·W0e_u + a_u·ΔWe_u) in BC and s_u·b_u·ΔWe_u in E (THEORY.md §2;
// carryPlan), are added to par's enclosures as sums of exact weight
// columns times intervals with a rigorous rounding bound (crossSums.col,
// addTo), about 12 flops per output and unit instead of the 4·out·in of
// the product; the other crossing units stay crossing. par's coefficients
// are only read.
func (e *IntervalPath) carryCoefFrom(par *carryCoef, c int, ab interval.I, rows []int32) *carryCoef {
	if !(par.ab.Lo <= ab.Lo && ab.Hi <= par.ab.Hi) {
		return e.carryCoef(c, ab, rows) // not inside par's leaf: the product
	}
	pl := e.carry
	A, B := e.a[c], e.b[c]
	k, m := A.Cols, pl.out
	n := A.Rows
	if rows != nil {
		n = len(rows)
	}
	ris := carryRowIndex(par.rows, rows, n)
	cf := &carryCoef{ab: ab, rows: rows, cross: make([][]int32, n)}
	cf.A, cf.BC, cf.E = interval.NewMatrix(n, m), interval.NewMatrix(n, m), interval.NewMatrix(n, m)
	sum := newCrossSums(m)
	added := 0
	for i := 0; i < n; i++ {
		ri := ris[i]
		copy(cf.A.Lo[i*m:(i+1)*m], par.A.Lo[ri*m:(ri+1)*m])
		copy(cf.A.Hi[i*m:(i+1)*m], par.A.Hi[ri*m:(ri+1)*m])
		copy(cf.BC.Lo[i*m:(i+1)*m], par.BC.Lo[ri*m:(ri+1)*m])
		copy(cf.BC.Hi[i*m:(i+1)*m], par.BC.Hi[ri*m:(ri+1)*m])
		copy(cf.E.Lo[i*m:(i+1)*m], par.E.Lo[ri*m:(ri+1)*m])
		copy(cf.E.Hi[i*m:(i+1)*m], par.E.Hi[ri*m:(ri+1)*m])
		r := i
		if rows != nil {
			r = int(rows[i])
		}
		fresh := false
		for _, u := range par.cross[ri] {
			av, bv, s, fixed := pl.unitSlope(A, B, r*k+int(u), ab)
			if !fixed { // still may cross or touch its kink, or NaN
				cf.cross[i] = append(cf.cross[i], u)
				continue
			}
			if s == 0 {
				continue // h_u = 0 on ab: no term
			}
			if !fresh {
				sum.reset()
				fresh = true
			}
			sa, sb := av, bv
			if s != 1 {
				sa, sb = interval.Scale(s, av), interval.Scale(s, bv)
			}
			w0, dw := pl.d.W0T[int(u)*m:(int(u)+1)*m], pl.d.DWT[int(u)*m:(int(u)+1)*m]
			for _, x := range [...]struct {
				which int
				w     []float64
				v     interval.I
			}{{sumV, w0, sa}, {sumD1, w0, sb}, {sumD1, dw, sa}, {sumD2, dw, sb}} {
				if x.v.Lo == 0 && x.v.Hi == 0 {
					continue // an exact zero adds nothing
				}
				xm := 0.5*x.v.Lo + 0.5*x.v.Hi
				xr := interval.Up(max(x.v.Hi-xm, xm-x.v.Lo))
				if math.IsNaN(xm) || math.IsInf(xm, 0) || math.IsNaN(xr) || math.IsInf(xr, 0) {
					xm, xr = 0, math.Inf(1)
				}
				sum.terms[x.which]++
				sum.col(x.which, x.w, xm, xr)
			}
			added++
		}
		if fresh {
			for _, x := range [...]struct {
				which int
				dst   interval.Matrix
			}{{sumV, cf.A}, {sumD1, cf.BC}, {sumD2, cf.E}} {
				lo, hi := x.dst.Row(i)
				sum.addTo(x.which, lo, hi)
			}
		}
	}
	e.mu.Lock()
	e.carryDerived += n
	e.carryUnits += added
	e.mu.Unlock()
	return cf
}

// carryCoefRows returns cf restricted to its listed rows rows (chunk-local,
// increasing, each held by cf): the same enclosures, copied.
func carryCoefRows(cf *carryCoef, rows []int32) *carryCoef {
	n, m := len(rows), cf.A.Cols
	ris := carryRowIndex(cf.rows, rows, n)
	out := &carryCoef{ab: cf.ab, rows: append([]int32(nil), rows...), cross: make([][]int32, n)}
	out.A, out.BC, out.E = interval.NewMatrix(n, m), interval.NewMatrix(n, m), interval.NewMatrix(n, m)
	for i, ri := range ris {
		for _, x := range [...][2]interval.Matrix{{out.A, cf.A}, {out.BC, cf.BC}, {out.E, cf.E}} {
			copy(x[0].Lo[i*m:(i+1)*m], x[1].Lo[ri*m:(ri+1)*m])
			copy(x[0].Hi[i*m:(i+1)*m], x[1].Hi[ri*m:(ri+1)*m])
		}
		out.cross[i] = cf.cross[ri]
	}
	return out
}

// carryMul returns an enclosure of {X·Wᵀ : X ∈ x} for an interval matrix x
// [n, k] and a point matrix w [m, k] (row-major) whose rows have
// Euclidean norms at most wn[o]: the midpoint Xm·Wᵀ by one gemm, and the
// radius Σ_u y_u|W_ou| with y = γ_{k+2}|Xm| + Xr, which bounds both the
// spread of x around its midpoint (Xr|W|) and the midpoint gemm's
// rounding (γ_k|Xm||W|, Higham §3.1, whatever the order or blocking of the
// sums), bounded in turn by Cauchy–Schwarz, ‖y_i‖₂·‖W_o‖₂, rounded up:
// no second gemm. The radius is of the order of the rounding of x and of
// the product (about 1e-13 relative here), so the looser norm bound costs
// nothing the certificate can see. A row of x exactly 0 gives exactly 0.
func carryMul(x interval.Matrix, w, wn []float64, m int) interval.Matrix {
	n, k := x.Rows, x.Cols
	xm := make([]float64, n*k)
	yn := make([]float64, n) // ‖y_i‖₂, rounded up
	zero := make([]bool, n)
	g := interval.Gamma(k + 2)
	for i := 0; i < n; i++ {
		yn[i], zero[i] = carryRow(x.Lo[i*k:(i+1)*k], x.Hi[i*k:(i+1)*k], xm[i*k:(i+1)*k], g)
	}
	p := carryProduct(xm, yn, zero, k, w, wn, m, make([]float64, n*m))
	out := interval.NewMatrix(n, m)
	for i := 0; i < n; i++ {
		for o := 0; o < m; o++ {
			out.Lo[i*m+o], out.Hi[i*m+o] = p.at(i, o)
		}
	}
	return out
}

// carryRow writes the midpoints of one row [lo, hi] of carryMul's x to xm
// and returns ‖y‖₂ rounded up, y = γ·|xm| + xr (g = γ_{k+2}), and whether
// the row is exactly 0 (then the row of the product is exactly 0).
func carryRow(lo, hi, xm []float64, g float64) (yn float64, zero bool) {
	ss := 0.0
	rz := true // every y entry 0 (normUp's flag)
	zero = true
	for t := range xm {
		c := 0.5*lo[t] + 0.5*hi[t]
		xm[t] = c
		r := interval.Up(max(hi[t]-c, c-lo[t]))
		if c != 0 {
			r = interval.Up(r + interval.Up(g*math.Abs(c)))
		}
		ss += r * r
		rz = rz && r == 0
		zero = zero && lo[t] == 0 && hi[t] == 0
	}
	return normUp(ss, len(xm), rz), zero
}

// carryProd is carryMul's product before its enclosure is written out:
// the midpoint gemm Xm·Wᵀ [n, m], the rows' norms yn (carryRow) and zero
// flags, W's rows' norms wn; at gives one entry's enclosure.
type carryProd struct {
	m           int
	mid, yn, wn []float64
	zero        []bool
	tiny        float64
}

// carryProduct is the gemm of carryMul on the midpoints xm [n, k] (n =
// len(yn)) and w [m, k], into mid [n, m] (overwritten; its contents need
// not be zero).
func carryProduct(xm, yn []float64, zero []bool, k int, w, wn []float64, m int, mid []float64) *carryProd {
	n := len(yn)
	mid = mid[:n*m]
	clear(mid) // gemm's β = 0 need not ignore a NaN in garbage
	if n > 0 && m > 0 && k > 0 {
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, blas64.General{Rows: n, Cols: k, Stride: k, Data: xm},
			blas64.General{Rows: m, Cols: k, Stride: k, Data: w}, 0, blas64.General{Rows: n, Cols: m, Stride: m, Data: mid})
	}
	return &carryProd{m: m, mid: mid, yn: yn, wn: wn, zero: zero, tiny: float64(2*k+2) * 0x1p-1020}
}

// at returns the enclosure of entry (i, o) of the product: the midpoint
// gemm's value ± ‖y_i‖‖W_o‖ (rounded up, plus the products' underflow),
// exactly 0 on a zero row.
func (p *carryProd) at(i, o int) (lo, hi float64) {
	if p.zero[i] {
		return 0, 0
	}
	c := p.mid[i*p.m+o]
	r := interval.Up(interval.Up(p.yn[i]*p.wn[o]) + p.tiny)
	return interval.Down(c - r), interval.Up(c + r)
}

// normUp returns an upper bound on the Euclidean norm of k numbers from
// ss, the float sum of their squares (each square and each sum rounded to
// nearest: the exact sum is at most (ss + k·2⁻¹⁰⁷⁴)·(1 + γ_{k+2}), the
// first term for squares that underflow, Higham §3.1), rounded up; zero
// says every number was exactly 0 (the norm is then 0). NaN or +Inf stay.
func normUp(ss float64, k int, zero bool) float64 {
	if zero {
		return 0
	}
	v := interval.Up(interval.Up(ss+float64(k)*0x1p-1074) * interval.Up(1+interval.Gamma(k+2)))
	return interval.Up(math.Sqrt(v))
}

// lowerQ returns a lower bound on min over x ∈ [0, s] of p·x + e·x² (s ≥ 0;
// −Inf when an input is not finite), outward rounded: the smaller of the
// ends' values, and where the parabola opens upward with its vertex
// possibly inside (0, s) its vertex value −p²/(4e) (a lower bound over all
// x).
func lowerQ(p, e, s float64) float64 {
	if math.IsNaN(p) || math.IsNaN(e) || math.IsInf(p, 0) || math.IsInf(e, 0) || !(s >= 0) || math.IsInf(s, 0) {
		return math.Inf(-1)
	}
	fs := interval.Add(interval.Mul(interval.Point(p), interval.Point(s)), interval.Mul(interval.Point(e), interval.Sqr(interval.Point(s)))).Lo
	lo := min(0, fs)
	if e > 0 && p < 0 {
		// f′(s) = p + 2es ≤ 0: f decreases on [0, s], its minimum is f(s);
		// otherwise the vertex value bounds it from below
		d := interval.Add(interval.Point(p), interval.Mul(interval.Point(2*e), interval.Point(s))).Hi
		if !(d <= 0) {
			v := interval.Div(interval.Sqr(interval.Point(p)), interval.Point(4*e))
			lo = min(lo, -v.Hi)
		}
	}
	if lo != lo {
		// an overflow inside (∞ − ∞): no information, the whole line
		// below; never NaN, so the builtin min of quadRange sees numbers
		return math.Inf(-1)
	}
	return lo
}

// quadRange encloses {p1·t + e·t² : p1 ∈ P1, e ∈ E, t ∈ [tl, tr]} for tl ≤ 0
// ≤ tr (the centred quadratic's variable part, exact in the coefficients:
// it is linear in p1 and e, so each end of the range takes one end of each
// coefficient on each side of t = 0).
func quadRange(p1, e interval.I, tl, tr float64) interval.I {
	lo := min(lowerQ(p1.Lo, e.Lo, tr), lowerQ(-p1.Hi, e.Lo, -tl))
	hi := -min(lowerQ(-p1.Hi, -e.Hi, tr), lowerQ(p1.Lo, -e.Hi, -tl))
	return interval.I{Lo: lo, Hi: hi}
}

// carryJet returns the jet of the dense layer's output z₂ over alpha ⊆
// cf.ab (a point: the midpoint of cf's leaf) up to order, for the rows of
// chunk c listed in rows (nil: all; they must be rows cf holds), from the
// fixed units' quadratic cf and, for the units cf lists as crossing, the
// activation's jet h1 over alpha (the same rows, in order): V ∋ z₂(α),
// D1 ∋ ż₂(α), D2 and DK (order 2, where h1 carries DK) the slope form of
// nn.IJet across the crossing units' kinks. Kink and Jump are h1's.
// It reads h1 only at the crossing units (gathered, carryH1) and is
// carryJetH1 on them.
func (e *IntervalPath) carryJet(cf *carryCoef, alpha interval.I, order int, rows []int32, h1 *nn.IJet) *nn.IJet {
	n := h1.N
	ris := carryRowIndex(cf.rows, rows, n)
	h := &carryH1{n: n, order: order, dk: order >= 2 && h1.HasDK(), off: make([]int, n+1), kink: h1.Kink, jump: h1.Jump}
	for i := 0; i < n; i++ {
		h.off[i+1] = h.off[i] + len(cf.cross[ris[i]])
	}
	h.alloc()
	k := h1.D
	for i := 0; i < n; i++ {
		for q, u := range cf.cross[ris[i]] {
			s, t := i*k+int(u), h.off[i]+q
			h.v[t] = interval.I{Lo: h1.V.Lo[s], Hi: h1.V.Hi[s]}
			if order >= 1 {
				h.d1[t] = interval.I{Lo: h1.D1.Lo[s], Hi: h1.D1.Hi[s]}
			}
			if order >= 2 {
				h.d2[t] = interval.I{Lo: h1.D2.Lo[s], Hi: h1.D2.Hi[s]}
				if h.dk {
					h.k[t] = interval.I{Lo: h1.DK.Lo[s], Hi: h1.DK.Hi[s]}
				}
			}
		}
	}
	return e.carryJetH1(cf, alpha, order, rows, h)
}

// carryH1 is the first activation's jet (nn.IJet) at the crossing units
// only (issue 12, cert-5000): row i's entries are off[i] … off[i+1]−1, in
// the order of the row's list of crossing units in the carried
// coefficients (carryCoef.cross); v, d1, d2 and k its V, D1, D2 and DK
// there (up to order; k with dk, the jet's nn.IJet.HasDK), kink and jump
// the jet's Kink and Jump per row (jump may be nil: none).
type carryH1 struct {
	n, order  int
	dk        bool
	off       []int
	v, d1, d2 []interval.I
	k         []interval.I
	kink      []bool
	jump      []bool
}

// alloc makes h's entry slices for off[n] entries.
func (h *carryH1) alloc() {
	m := h.off[h.n]
	h.v = make([]interval.I, m)
	if h.order >= 1 {
		h.d1 = make([]interval.I, m)
	}
	if h.order >= 2 {
		h.d2 = make([]interval.I, m)
		if h.dk {
			h.k = make([]interval.I, m)
		}
	}
}

// carryLean asks jetCarry to enclose the first activation only at the
// units the carried coefficients list as crossing (carryFirst), the only
// ones carryJet reads, instead of the affine layer's and the activation's
// interval rules over every unit; start applies the left-end form
// (startForm) to the affine layer's output on the crossing units, as
// centredJets's hook does on the first leaf [0, w] to every unit.
type carryLean struct{ start bool }

// noLean forces the full first activation in every pass (tests compare
// the two: the results are bit for bit the same).
var noLean bool

// carryFirst encloses, for the rows of chunk c listed in rows (nil: all;
// rows cf holds), the first affine layer's output z₁ = a + αb over alpha
// (the exact formula of nn.AffineIJet per entry) and the first
// activation's jet (act's nn.UnitInterval.UnitJet) up to order at the units
// cf lists as crossing, with the left-end form around z₁(0) = a (startForm
// with w = alpha.Hi) when start is set. A unit cf does not list is
// strictly on one side of its kink on cf.ab ⊇ alpha (carryPlan.unitSlope),
// so it does not set the example's Kink: Kink is k0 (the layers before
// the affine one; nil: none) or'ed with the crossing units' own, the same
// flags as the activation's rule over every unit; no example jumps
// (ReLU family). The entries are bit for bit those of the full pass at
// those units: the same operations on the same numbers.
func (e *IntervalPath) carryFirst(act nn.UnitInterval, c int, cf *carryCoef, alpha interval.I, order int, rows []int32, k0 []bool, start bool) *carryH1 {
	A, B := e.a[c], e.b[c]
	n := A.Rows
	if rows != nil {
		n = len(rows)
	}
	k := A.Cols
	ris := carryRowIndex(cf.rows, rows, n)
	h := &carryH1{n: n, order: order, dk: order >= 2, off: make([]int, n+1), kink: make([]bool, n), jump: make([]bool, n)}
	if k0 != nil {
		copy(h.kink, k0)
	}
	for i := 0; i < n; i++ {
		h.off[i+1] = h.off[i] + len(cf.cross[ris[i]])
	}
	h.alloc()
	w := alpha.Hi
	for i := 0; i < n; i++ {
		r := i
		if rows != nil {
			r = int(rows[i])
		}
		for q, u := range cf.cross[ris[i]] {
			s := r*k + int(u)
			a, b := interval.I{Lo: A.Lo[s], Hi: A.Hi[s]}, interval.I{Lo: B.Lo[s], Hi: B.Hi[s]}
			v := interval.Mul(alpha, b) // nn.AffineIJet
			z := interval.I{Lo: interval.Down(a.Lo + v.Lo), Hi: interval.Up(a.Hi + v.Hi)}
			if start && !math.IsNaN(b.Lo) && !math.IsNaN(b.Hi) && !math.IsNaN(a.Lo) && !math.IsNaN(a.Hi) { // startForm
				lo, hi := a.Lo, a.Hi
				if b.Lo < 0 {
					lo = downAdd(lo, interval.Down(b.Lo*w))
				}
				if b.Hi > 0 {
					hi = upAdd(hi, interval.Up(b.Hi*w))
				}
				lo, hi = max(lo, z.Lo), min(hi, z.Hi)
				if lo <= hi {
					z = interval.I{Lo: lo, Hi: hi}
				}
			}
			sv, d1, d2, dk, kink := act.UnitJet(z, b, interval.I{}, interval.I{}, order, order >= 2, k0 != nil && k0[i])
			t := h.off[i] + q
			h.v[t] = sv
			if order >= 1 {
				h.d1[t] = d1
			}
			if order >= 2 {
				h.d2[t] = d2
				h.k[t] = dk
			}
			if kink {
				h.kink[i] = true
			}
		}
	}
	return h
}

// carryJetH1 is carryJet with the first activation's jet given at the
// crossing units only (carryH1, in the order of cf's lists).
func (e *IntervalPath) carryJetH1(cf *carryCoef, alpha interval.I, order int, rows []int32, h1 *carryH1) *nn.IJet {
	pl := e.carry
	n, m := h1.n, pl.out
	out := &nn.IJet{N: n, D: m, Order: order, Kink: append([]bool(nil), h1.kink...), V: interval.NewMatrix(n, m)}
	if h1.jump != nil {
		out.Jump = append([]bool(nil), h1.jump...)
	}
	if order >= 1 {
		out.D1 = interval.NewMatrix(n, m)
	}
	dk := order >= 2 && h1.dk
	if order >= 2 {
		out.D2 = interval.NewMatrix(n, m)
		if dk {
			out.DK = interval.NewMatrix(n, m)
		}
	}
	cm := alpha.Lo
	tl, tr := 0.0, 0.0
	if alpha.Lo != alpha.Hi {
		cm = 0.5*alpha.Lo + 0.5*alpha.Hi
		tl, tr = interval.Down(alpha.Lo-cm), interval.Up(alpha.Hi-cm)
	}
	ris := carryRowIndex(cf.rows, rows, n)
	var cu []crossUnit // the row's crossing units' terms (crossRow), reused
	for i := 0; i < n; i++ {
		ri := ris[i]
		for o := 0; o < m; o++ {
			t, q := i*m+o, ri*m+o
			v, d := carryEntry(cf.A.Lo[q], cf.A.Hi[q], cf.BC.Lo[q], cf.BC.Hi[q], cf.E.Lo[q], cf.E.Hi[q], cm, tl, tr)
			out.V.Lo[t], out.V.Hi[t] = v.Lo, v.Hi
			if order >= 1 {
				out.D1.Lo[t], out.D1.Hi[t] = d.Lo, d.Hi
			}
			if order >= 2 { // 2E, exactly
				out.D2.Lo[t], out.D2.Hi[t] = 2*cf.E.Lo[q], 2*cf.E.Hi[q]
			}
		}
		units := cf.cross[ri]
		if len(units) == 0 {
			continue
		}
		var terms [nSums]int
		cu = cu[:0]
		for q, u := range units {
			s := h1.off[i] + q
			// the unit's terms in the order the sums take them (each sum's
			// terms in this order, so the sums are those of one add per term)
			x := crossUnit{w0: pl.d.W0T[int(u)*m : (int(u)+1)*m], dw: pl.d.DWT[int(u)*m : (int(u)+1)*m]}
			x.push(h1.v[s], sumV, false, &terms)
			if order >= 1 {
				x.push(h1.v[s], sumD1, true, &terms)
				x.push(h1.d1[s], sumD1, false, &terms)
			}
			if order >= 2 {
				x.push(interval.Scale(2, h1.d1[s]), sumD2, true, &terms)
				x.push(h1.d2[s], sumD2, false, &terms)
				if dk {
					x.push(h1.k[s], sumDK, false, &terms)
				}
			}
			if x.nt > 0 {
				cu = append(cu, x)
			}
		}
		var dst [nSums]interval.Matrix
		dst[sumV], dst[sumD1], dst[sumD2], dst[sumDK] = out.V, out.D1, out.D2, out.DK
		crossRow(cu, &terms, alpha, cm, i, dst)
	}
	return out
}

// crossUnit is one crossing unit's part of a row's rank-one terms
// (crossRow): its columns w0 and dw of W0 and ΔW (length out) and its
// prepared terms, in the order the sums take them.
type crossUnit struct {
	w0, dw []float64
	nt     int
	ts     [6]crossT
}

// crossT is one prepared term of crossRow: the sum it goes to, whether its
// column is ΔW's (else W(α)'s), and its interval's float midpoint xm,
// radius xr, |xm| and |xm| + xr.
type crossT struct {
	which           int
	delta           bool
	xm, xr, ax, axr float64
}

// push prepares the term x of sum which (delta: times ΔW's column, else
// W(α)'s), counting it in terms; an exact zero adds nothing and is
// dropped. A midpoint or radius that is not finite becomes 0 ± +Inf.
func (c *crossUnit) push(x interval.I, which int, delta bool, terms *[nSums]int) {
	if x.Lo == 0 && x.Hi == 0 {
		return
	}
	xm := 0.5*x.Lo + 0.5*x.Hi
	xr := interval.Up(max(x.Hi-xm, xm-x.Lo))
	if math.IsNaN(xm) || math.IsInf(xm, 0) || math.IsNaN(xr) || math.IsInf(xr, 0) {
		xm, xr = 0, math.Inf(1)
	}
	terms[which]++
	ax := math.Abs(xm)
	c.ts[c.nt] = crossT{which: which, delta: delta, xm: xm, xr: xr, ax: ax, axr: ax + xr}
	c.nt++
}

// crossRow adds to row i of dst[which] (for every sum with terms[which] >
// 0 terms) the crossing units' rank-one terms Σ_u w_ou·x_u, enclosed in
// midpoint–radius form (issue 12, cert-scale's crossSums, fused by
// cert-5000: one sweep over the outputs, each output's sums held in
// registers over the units, then enclosed and added; every sum receives
// the same float operations in the same order as the former per-unit
// sweeps, so the enclosures are bit for bit the same). For a term of
// W(α) = (W0 + cm·ΔW) + (α − cm)·ΔW, α ∈ alpha, the term is (W0 +
// cm·ΔW)·xm plus at most (|W0| + |cm||ΔW|)·xr + |α − cm|·|ΔW|·(|xm| + xr);
// mid collects the first in float, rad the bounds, abs the magnitudes (|W0|
// + |cm||ΔW|)|xm| whose multiple bounds the float rounding of mid. For ΔW
// (exact) the term is ΔW·xm in mid, |ΔW|·xr in rad and |ΔW||xm| in abs.
// With K terms in a sum, each a product of at most three roundings (wc = w
// + cm·d, wc·xm, the sum), the float mid differs from the exact Σ(W0 +
// cm·ΔW)·xm by at most γ_{K+4}·Σ(|W0| + |cm||ΔW|)|xm| (Higham §3.1, the
// abs sum, itself a float sum of K+2-rounded non-negative terms, scaled up
// by (1 + γ)); rad and abs are float sums of non-negative terms of at most
// four roundings each and are scaled up by (1 + γ_{2K+8}) before use; the
// underflow of every product is far below the tiny term added. A NaN
// bound or midpoint gives the whole line.
func crossRow(cu []crossUnit, terms *[nSums]int, alpha interval.I, cm float64, i int, dst [nSums]interval.Matrix) {
	t := max(math.Abs(alpha.Lo-cm), math.Abs(alpha.Hi-cm))
	t = interval.Up(t + t*0x1p-50) // |α − cm| for α ∈ alpha, rounded up
	acm := math.Abs(cm)
	var g, f, tiny [nSums]float64
	var lo, hi [nSums][]float64
	for k := range terms {
		if terms[k] == 0 {
			continue
		}
		g[k] = interval.Gamma(terms[k] + 4)
		f[k] = interval.Up(1 + 2*interval.Gamma(2*terms[k]+8))
		tiny[k] = float64(8*terms[k]+8) * 0x1p-1020
		lo[k], hi[k] = dst[k].Row(i)
	}
	m := len(lo[sumV])
	for k := range lo {
		m = max(m, len(lo[k]))
	}
	for o := 0; o < m; o++ {
		var mid, rad, abs [nSums]float64
		for q := range cu {
			x := &cu[q]
			w, d := x.w0[o], x.dw[o]
			wc := w + cm*d
			ad := math.Abs(d)
			aw := math.Abs(w) + acm*ad
			td := t * ad
			for j := 0; j < x.nt; j++ {
				y := &x.ts[j]
				k := y.which
				if y.delta {
					mid[k] += d * y.xm
					rad[k] += ad * y.xr
					abs[k] += ad * y.ax
				} else {
					mid[k] += wc * y.xm
					rad[k] += aw*y.xr + td*y.axr
					abs[k] += aw * y.ax
				}
			}
		}
		for k := range terms {
			if terms[k] == 0 {
				continue
			}
			r := interval.Up(interval.Up(interval.Up(rad[k]+interval.Up(g[k]*abs[k]))*f[k]) + tiny[k])
			if math.IsNaN(r) || math.IsNaN(mid[k]) {
				lo[k][o], hi[k][o] = math.Inf(-1), math.Inf(1)
				continue
			}
			lo[k][o] = interval.Down(lo[k][o] + interval.Down(mid[k]-r))
			hi[k][o] = interval.Up(hi[k][o] + interval.Up(mid[k]+r))
		}
	}
}

// carryEntry encloses the value and the α-derivative, over α = c + t with
// t ∈ [tl, tr] (tl ≤ 0 ≤ tr, c a float), of the quadratic
// a + α·bc + α²·e for every a ∈ [alo, ahi], bc ∈ [blo, bhi], e ∈ [elo,
// ehi], in float64 with an explicit bound on the rounding (the interval
// version, quadRange with interval.Mul and Add, is 5× slower and was a
// third of the certificate's CPU at 500 examples; TestCarryEntryEncloses
// checks the two against dense samples and each other). With the
// coefficients' midpoints am, bm, em and radii ar, br, er:
//
//   - every quadratic of the box is within ar + M·br + M²·er of the
//     midpoint one for |α| ≤ M = |c| + max(−tl, tr), its derivative within
//     br + 2M·er;
//   - the midpoint one is p0 + p1·t + em·t² with p0 = am + c·bm + c²·em,
//     p1 = bm + 2c·em, whose float values p̂0, p̂1 are within
//     γ₅(|am| + |c||bm| + c²|em|) and γ₂(|bm| + 2|c||em|) (Higham §3.1), and
//     p1·t differs from p̂1·t by at most that times T = max(−tl, tr);
//   - the range of p̂1·t + em·t² on [tl, tr] is spanned by 0, its ends and,
//     where its vertex −p̂1/(2em) may lie inside (tested with a margin, so
//     never wrongly excluded), its vertex value −p̂1²/(4em) (for em > 0 the
//     global minimum, for em < 0 the global maximum: including it is never
//     unsound); each is computed within γ₄(|p̂1|T + |em|T²), the vertex
//     value within γ₃·p̂1²/(4|em|);
//
// every γ_k (k ≤ 5) is bounded by 8u, the slack (a sum of non-negative
// terms, about twenty operations) is scaled by 1 + 2⁻⁴⁸ and rounded up, and
// the final sums are rounded outward. A coefficient that is not finite
// gives the whole line. Where the coefficients' radii are not of the size
// of rounding (above 2⁻³⁰ of the terms), the interval version
// (carryEntryInterval) is used instead: the radius bound above is loose
// for wide coefficients.
func carryEntry(alo, ahi, blo, bhi, elo, ehi, c, tl, tr float64) (v, d interval.I) {
	if blo == 0 && bhi == 0 && elo == 0 && ehi == 0 && alo <= ahi {
		// exactly constant in α (BC = E = 0: e.g. every unit dead on a
		// pattern of kinkPatternDL with nothing after it moving): the
		// value is A and the derivative exactly 0, so exact zeros stay
		// exact downstream (issue 12, cert-5000: the flat tail's start)
		return interval.I{Lo: alo, Hi: ahi}, interval.I{}
	}
	const eps = 8 * 0x1p-53
	const grow = 1 + 0x1p-48
	const tiny = 0x1p-1000
	am, bm, em := 0.5*alo+0.5*ahi, 0.5*blo+0.5*bhi, 0.5*elo+0.5*ehi
	ar, br, er := max(ahi-am, am-alo), max(bhi-bm, bm-blo), max(ehi-em, em-elo)
	T := max(-tl, tr)
	ac := math.Abs(c)
	M := ac + T
	cc := c * c
	p0 := am + c*bm + cc*em
	p1 := bm + (2*c)*em
	aem := math.Abs(em)
	if ar+M*br+M*M*er > 0x1p-30*(math.Abs(am)+M*math.Abs(bm)+M*M*aem) {
		// wide coefficients (not the rounding-sized radii of carryMul):
		// the interval version, exact in them
		return carryEntryInterval(alo, ahi, blo, bhi, elo, ehi, c, tl, tr)
	}
	ap1 := math.Abs(p1)
	e0 := eps * (math.Abs(am) + ac*math.Abs(bm) + cc*aem)
	e1 := eps * (math.Abs(bm) + 2*ac*aem)
	glo, ghi := 0.0, 0.0
	gs := 0.0 // rounding of the candidates
	if T != 0 {
		g1 := p1*tl + em*tl*tl
		g2 := p1*tr + em*tr*tr
		glo, ghi = min(glo, min(g1, g2)), max(ghi, max(g1, g2))
		gs = eps * (ap1*T + aem*T*T)
		if em != 0 {
			ts := -p1 / (2 * em)
			m := 4*eps*math.Abs(ts) + tiny
			if ts >= tl-m && ts <= tr+m {
				vx := -(p1 * p1) / (4 * em)
				gs += eps * math.Abs(vx)
				if em > 0 {
					glo = min(glo, vx)
				} else {
					ghi = max(ghi, vx)
				}
			}
		}
	}
	sv := interval.Up((ar+M*br+M*M*er+e0+e1*T+gs)*grow + tiny)
	v = interval.I{Lo: interval.Down(interval.Down(p0+glo) - sv), Hi: interval.Up(interval.Up(p0+ghi) + sv)}
	dlo, dhi := p1, p1
	if T != 0 {
		x1, x2 := (2*em)*tl, (2*em)*tr
		dlo, dhi = p1+min(x1, x2), p1+max(x1, x2)
	}
	sd := interval.Up((br+2*M*er+e1+eps*(ap1+2*aem*T))*grow + tiny)
	d = interval.I{Lo: interval.Down(dlo - sd), Hi: interval.Up(dhi + sd)}
	if !finite(v.Lo) || !finite(v.Hi) || !finite(d.Lo) || !finite(d.Hi) {
		whole := interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
		return whole, whole
	}
	return v, d
}

// carryEntryInterval is carryEntry in interval arithmetic: P0 = A + c·BC
// + c²·E and P1 = BC + 2c·E enclosed, the value P0 + quadRange(P1, E, tl,
// tr) and the derivative P1 + 2E·[tl, tr].
func carryEntryInterval(alo, ahi, blo, bhi, elo, ehi, c, tl, tr float64) (v, d interval.I) {
	a, bc, e := interval.I{Lo: alo, Hi: ahi}, interval.I{Lo: blo, Hi: bhi}, interval.I{Lo: elo, Hi: ehi}
	ci := interval.Point(c)
	p0 := interval.Add(interval.Add(a, interval.Mul(ci, bc)), interval.Mul(interval.Sqr(ci), e))
	p1 := interval.Add(bc, interval.Mul(interval.Point(2*c), e))
	v, d = p0, p1
	if tl != 0 || tr != 0 {
		v = interval.Add(p0, quadRange(p1, e, tl, tr))
		d = interval.Add(p1, interval.Mul(interval.Scale(2, e), interval.I{Lo: tl, Hi: tr}))
	}
	return v, d
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// carryRowIndex returns, for each of the n jet rows (the chunk-local rows
// listed in rows; nil: row i is chunk row i), its row in coefficients held
// for the chunk-local rows cfRows (nil: every row). Every jet row must be
// held (both lists increase); a row that is not is a programming error and
// panics.
func carryRowIndex(cfRows, rows []int32, n int) []int {
	out := make([]int, n)
	q := 0
	for i := range out {
		r := int32(i)
		if rows != nil {
			r = rows[i]
		}
		if cfRows == nil {
			out[i] = int(r)
			continue
		}
		for q < len(cfRows) && cfRows[q] < r {
			q++
		}
		if q == len(cfRows) || cfRows[q] != r {
			panic("certify: carried coefficients do not hold a row of the pass")
		}
		out[i] = q
	}
	return out
}

const (
	sumV = iota
	sumD1
	sumD2
	sumDK
	nSums
)

// crossSums accumulates, per output o, sums Σ_u w_ou·x_u over a few input
// units u with interval x_u, in midpoint–radius form: mid the float sum
// of w·xm, rad an upper bound on everything else (see addTerms). w is either
// W(α) = W0 + αΔW over α in an interval (a box column) or ΔW (exact).
type crossSums struct {
	mid, rad, abs [nSums][]float64 // abs: Σ|w||xm|, for the rounding of mid
	terms         [nSums]int
}

func newCrossSums(m int) *crossSums {
	s := &crossSums{}
	for k := range s.mid {
		s.mid[k], s.rad[k], s.abs[k] = make([]float64, m), make([]float64, m), make([]float64, m)
	}
	return s
}

func (s *crossSums) reset() {
	for k := range s.mid {
		clear(s.mid[k])
		clear(s.rad[k])
		clear(s.abs[k])
		s.terms[k] = 0
	}
}

// col adds the exact point column w times the interval xm ± xr to sum
// which, as add does for ΔW (the caller counts the term).
func (s *crossSums) col(which int, w []float64, xm, xr float64) {
	mid, rad, abs := s.mid[which], s.rad[which], s.abs[which]
	ax := math.Abs(xm)
	for o, d := range w {
		mid[o] += d * xm
		ad := math.Abs(d)
		rad[o] += ad * xr
		abs[o] += ad * ax
	}
}

// addTo adds sum which, enclosed, to the row [lo, hi]: with K terms each a
// product of at most three roundings (wc = w + cm·d, wc·xm, the sum), the
// float mid differs from the exact Σ(W0 + cm·ΔW)·xm by at most
// γ_{K+4}·Σ(|W0| + |cm||ΔW|)|xm| (Higham §3.1, the abs sum, itself a float
// sum of K+2-rounded non-negative terms, scaled up by (1 + γ)); rad and abs
// are float sums of non-negative terms of at most four roundings each and
// are scaled up by (1 + γ_{2K+8}) before use; the underflow of every
// product is far below the tiny term added.
func (s *crossSums) addTo(which int, lo, hi []float64) {
	k := s.terms[which]
	if k == 0 {
		return
	}
	g := interval.Gamma(k + 4)
	f := interval.Up(1 + 2*interval.Gamma(2*k+8))
	tiny := float64(8*k+8) * 0x1p-1020
	mid, rad, abs := s.mid[which], s.rad[which], s.abs[which]
	for o := range lo {
		r := interval.Up(interval.Up(interval.Up(rad[o]+interval.Up(g*abs[o]))*f) + tiny)
		if math.IsNaN(r) || math.IsNaN(mid[o]) {
			lo[o], hi[o] = math.Inf(-1), math.Inf(1)
			continue
		}
		lo[o] = interval.Down(lo[o] + interval.Down(mid[o]-r))
		hi[o] = interval.Up(hi[o] + interval.Up(mid[o]+r))
	}
}
