package certify

import (
	"math"
	"sort"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// maxPatternUnits is the largest number of first-activation units of one
// example that may cross their kink on a leaf for kinkPatternDL to
// enumerate the activation patterns (2^maxPatternUnits passes of that
// example at most).
const maxPatternUnits = 3

// patternsApply reports whether kinkPatternDL applies to this path: the
// layer after the cached affine layer is a ReLU (whose pre-activations are
// exactly z = A + αB, affine in α), no BatchNorm recomputes its statistics
// (they would couple the examples) and no layer may jump.
func (e *IntervalPath) patternsApply() bool {
	if e.start == 0 || e.start >= len(e.layers) || e.recompute || e.jumps {
		return false
	}
	pl, ok := e.p.Model.Layers[e.start].(nn.PiecewiseLinear)
	if !ok {
		return false
	}
	on, off := pl.Slopes()
	return on == 1 && off == 0 // relu: the pattern's dead units contribute exactly 0

}

// patternUnits returns the units S of the first ReLU that row i of the
// pre-activation z = A + αB (chunk-local, [rows, m]) may cross on ab, for
// kinkPatternDL, and ok = false when the row gets no pattern hull: no unit
// crosses, more than maxPatternUnits do, one that does has a velocity
// that may vanish, or a unit's enclosure of z over ab is NaN (a failed
// enclosure is the whole line, not a unit without a kink).
func patternUnits(A, B interval.Matrix, i int, ab interval.I) (s []int, ok bool) {
	m := A.Cols
	for j := 0; j < m; j++ {
		k := i*m + j
		v := interval.Mul(ab, interval.I{Lo: B.Lo[k], Hi: B.Hi[k]})
		z := interval.I{Lo: interval.Down(A.Lo[k] + v.Lo), Hi: interval.Up(A.Hi[k] + v.Hi)}
		if z.Lo != z.Lo || z.Hi != z.Hi {
			return nil, false
		}
		if !(z.Lo < 0 && z.Hi > 0) { // as the ReLU's interval rule: no kink of this unit
			continue
		}
		s = append(s, j)
		if len(s) > maxPatternUnits || !(B.Lo[k] > 0 || B.Hi[k] < 0) {
			return nil, false
		}
	}
	return s, len(s) > 0
}

// kinkPatternDL encloses ℓ_i′ over the leaf [a, b] for the listed
// chunk-local rows of chunk c by the hull over the activation patterns of
// the first ReLU (issue 12, flat tails): a row whose only kinks on [a, b]
// are at most maxPatternUnits units j of the first ReLU, each with a
// velocity of definite sign (B_ij = ż_ij ≠ 0 on the whole leaf; z_ij =
// A_ij + αB_ij is affine, so it crosses 0 once, at r_j = −A_ij/B_ij), has
// on every α ∈ [a, b] one pattern Q ⊆ S of those units alive, and the one
// at α holds on {α : α ≤ r_j for j alive and dying or dead and reviving,
// α ≥ r_j otherwise}, enclosed with the enclosure of r_j. Per pattern the
// row's jet is evaluated over that sub-interval with the units of S forced
// (alive: the identity, h = z, ḣ = ż; dead: exactly 0), and ℓ_i′ there is
// its first-order enclosure; ℓ_i′ over [a, b] is in the hull over the
// patterns (at a crossing itself both one-sided derivatives are covered).
// Where a row is dead on a part of the leaf (every unit of the first ReLU
// at 0) and nothing after it moves, that pattern's ℓ_i′ is exactly 0 (exact
// zeros stay exact through the interval products), so the hull's sup is
// exactly 0 when the live part's is negative: the leaf holding the start of
// a flat tail is settled at tolerance 0, where the ReLU hull [ż, 0] alone
// leaves a positive sup. Layers after the first ReLU take the leaf's
// parameter boxes bi (they enclose the parameters over every sub-interval).
// The result is per row; a row without a pattern hull (kinked before the
// cached layer, more units, a velocity that may vanish) gets the whole line.
func (e *IntervalPath) kinkPatternDL(c int, a, b float64, bi []*nn.ParamBox, rows []int32) []interval.I {
	out := make([]interval.I, len(rows))
	whole := interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
	for t := range out {
		out[t] = whole
	}
	A, B, k0 := e.a[c], e.b[c], e.kink0[c]
	m := A.Cols
	ab := interval.I{Lo: a, Hi: b}
	type patT struct {
		t     int // index into rows
		alive int // bit s: unit S[s] forced alive
		s     []int
		r     interval.I
	}
	var batch []patT
	batch2 := func(b []patT) []patRow {
		out := make([]patRow, len(b))
		for p, br := range b {
			out[p] = patRow{row: rows[br.t], alive: br.alive, s: br.s, r: br.r}
		}
		return out
	}
	for t, i32 := range rows {
		i := int(i32)
		if k0 != nil && k0[i] {
			continue
		}
		s, ok := patternUnits(A, B, i, ab)
		if !ok {
			continue
		}
		roots := make([]interval.I, len(s))
		for q, j := range s {
			k := i*m + j
			roots[q] = interval.Div(interval.Neg(interval.I{Lo: A.Lo[k], Hi: A.Hi[k]}), interval.I{Lo: B.Lo[k], Hi: B.Hi[k]})
		}
		for q := 0; q < 1<<len(s); q++ {
			lo, hi := a, b
			for u, j := range s {
				alive, dying := q>>u&1 == 1, B.Hi[i*m+j] < 0
				if alive == dying { // alive and dying, or dead and reviving: α ≤ r_j
					hi = min(hi, roots[u].Hi)
				} else {
					lo = max(lo, roots[u].Lo)
				}
			}
			if lo <= hi {
				batch = append(batch, patT{t: t, alive: q, s: s, r: interval.I{Lo: lo, Hi: hi}})
			}
		}
	}
	if len(batch) == 0 {
		return out
	}
	n := len(batch)
	idx := make([]int32, n)
	var j *nn.IJet
	if act, ok := e.layers[e.start].(nn.UnitInterval); ok && e.carry != nil && !noPatternCarry {
		for p, br := range batch {
			idx[p] = rows[br.t]
		}
		j = e.patternCarry(act, c, ab, bi, batch2(batch), idx)
	} else {
		j = e.patternBox(c, ab, bi, batch2(batch), idx)
	}
	ch := e.chunks[c]
	_, dl, _ := nn.LossEnclosure(e.p.Model.Spec.Loss, j, subTargets(e.p.Targets.Rows(ch[0], ch[1]), idx))
	e.mu.Lock()
	e.patternRows += n
	e.mu.Unlock()
	seen := make([]bool, len(rows))
	for p, br := range batch {
		d := dl[p]
		if !(d.Lo <= d.Hi) { // NaN: no information
			d = whole
		}
		if !seen[br.t] {
			out[br.t], seen[br.t] = d, true
			continue
		}
		out[br.t] = interval.Hull(out[br.t], d)
	}
	return out
}

// patRow is one (row, pattern) pass of kinkPatternDL: the chunk-local row,
// the units S of the first ReLU it may cross on the leaf, the bit set of
// those forced alive (bit s: S[s]), and the sub-interval r of the leaf
// where that pattern holds.
type patRow struct {
	row   int32
	alive int
	s     []int
	r     interval.I
}

// patternBox is kinkPatternDL's jet of every (row, pattern) of batch
// (rows idx, chunk-local, in batch order) through the layers' interval
// rules over the leaf's parameter boxes bi (the general path).
func (e *IntervalPath) patternBox(c int, ab interval.I, bi []*nn.ParamBox, batch []patRow, idx []int32) *nn.IJet {
	A, B := e.a[c], e.b[c]
	m := A.Cols
	n := len(batch)
	j := &nn.IJet{N: n, D: m, Order: 1, V: interval.NewMatrix(n, m), D1: interval.NewMatrix(n, m), Kink: make([]bool, n), Jump: make([]bool, n)}
	for p, br := range batch {
		i := int(br.row)
		idx[p] = br.row
		for u := 0; u < m; u++ {
			k, q := i*m+u, p*m+u
			v := interval.Mul(br.r, interval.I{Lo: B.Lo[k], Hi: B.Hi[k]})
			j.V.Lo[q], j.V.Hi[q] = interval.Down(A.Lo[k]+v.Lo), interval.Up(A.Hi[k]+v.Hi)
			j.D1.Lo[q], j.D1.Hi[q] = B.Lo[k], B.Hi[k]
		}
	}
	z := j
	j = e.layers[e.start].IntervalJet(bi[e.start], j)
	for p, br := range batch {
		for u, unit := range br.s {
			q := p*m + unit
			if br.alive>>u&1 == 1 { // alive: h = z, ḣ = ż
				j.V.Lo[q], j.V.Hi[q] = z.V.Lo[q], z.V.Hi[q]
				j.D1.Lo[q], j.D1.Hi[q] = z.D1.Lo[q], z.D1.Hi[q]
			} else { // dead: exactly 0
				j.V.Lo[q], j.V.Hi[q], j.D1.Lo[q], j.D1.Hi[q] = 0, 0, 0, 0
			}
		}
	}
	for i := e.start + 1; i < len(e.layers); i++ {
		j = e.layers[i].IntervalJet(e.boxAt(bi, i, ab), j)
	}
	return j
}

// noPatternCarry forces kinkPatternDL's general path (patternBox) on
// carried paths (tests compare the two).
var noPatternCarry bool

// patternCarry is patternBox on a path with a carried second layer
// (issue 12, cert-5000): the dense layer after the first ReLU is enclosed
// by the carried coefficients over the leaf ab (carryCoef on the batch's
// rows) instead of an interval product over its parameter box. For a
// (row, pattern) on its sub-interval r ⊆ ab, the units fixed on ab keep
// their slope on r (the coefficients' quadratic), the pattern's units S
// are the identity (alive: h = z = a + αb, ḣ = b, enclosed over r as
// nn.AffineIJet does) or exactly 0 (dead) on r, and the other units the
// coefficients list as crossing (they touch their kink on ab without
// crossing it, or were not classified) take the ReLU's interval rule over
// r (nn.UnitInterval.UnitJet): that is the first activation's jet over r at
// the crossing units, which carryJetH1 requires, so its result encloses
// z₂ and ż₂ on r. The layers after it take the leaf's boxes, as in
// patternBox. Order 1, no Kink (only ℓ′'s first-order enclosure is read).
func (e *IntervalPath) patternCarry(act nn.UnitInterval, c int, ab interval.I, bi []*nn.ParamBox, batch []patRow, idx []int32) *nn.IJet {
	A, B := e.a[c], e.b[c]
	k := A.Cols
	// the batch's distinct rows, increasing, for the coefficients
	var rs []int32
	seen := map[int32]bool{}
	for _, r := range idx {
		if !seen[r] {
			seen[r] = true
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(a, b int) bool { return rs[a] < rs[b] })
	cf := e.carryCoef(c, ab, rs)
	ris := carryRowIndex(cf.rows, rs, len(rs))
	pos := map[int32]int{}
	for q, r := range rs {
		pos[r] = ris[q]
	}
	n, m := len(batch), e.carry.out
	j := &nn.IJet{N: n, D: m, Order: 1, V: interval.NewMatrix(n, m), D1: interval.NewMatrix(n, m), Kink: make([]bool, n), Jump: make([]bool, n)}
	for p, br := range batch {
		i := int(br.row)
		cross := cf.cross[pos[br.row]]
		h := &carryH1{n: 1, order: 1, off: []int{0, len(cross)}, kink: make([]bool, 1), jump: make([]bool, 1)}
		h.alloc()
		for q, u := range cross {
			t := i*k + int(u)
			b := interval.I{Lo: B.Lo[t], Hi: B.Hi[t]}
			v := interval.Mul(br.r, b)
			z := interval.I{Lo: interval.Down(A.Lo[t] + v.Lo), Hi: interval.Up(A.Hi[t] + v.Hi)}
			forced := -1
			for s, unit := range br.s {
				if unit == int(u) {
					forced = br.alive >> s & 1
				}
			}
			switch forced {
			case 1: // alive: the identity
				h.v[q], h.d1[q] = z, b
			case 0: // dead: exactly 0
			default:
				h.v[q], h.d1[q], _, _, _ = act.UnitJet(z, b, interval.I{}, interval.I{}, 1, false, false)
			}
		}
		o := e.carryJetH1(cf, br.r, 1, []int32{br.row}, h)
		copy(j.V.Lo[p*m:(p+1)*m], o.V.Lo)
		copy(j.V.Hi[p*m:(p+1)*m], o.V.Hi)
		copy(j.D1.Lo[p*m:(p+1)*m], o.D1.Lo)
		copy(j.D1.Hi[p*m:(p+1)*m], o.D1.Hi)
	}
	for i := e.carry.dense + 1; i < len(e.layers); i++ {
		j = e.layers[i].IntervalJet(e.boxAt(bi, i, ab), j)
	}
	return j
}
