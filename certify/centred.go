package certify

import (
	"math"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// centredPass encloses, for chunk c, the per-example ℓ, ℓ′, ℓ″ over the
// leaf ab (as pass with order 2) and ℓ, ℓ′ at its midpoint mid (as pass at
// the point, order 1), with the leaf's jets tightened after every layer by
// the centred (mean-value) form (centredForm) around the midpoint's jets.
// bi and bc are the parameter boxes over ab and at mid. The leaf's pass
// runs on the chunk-local rows listed in rows (nil: all; results in that
// order), the midpoint's on every row of the chunk.
//
// dk (nil when the model's layers do not carry it, nn.IJet.DK) is the jump
// term of the loss's slope form across kinks: ℓ_i′(α) − ℓ_i′(c) ∈
// d2l_i·(α − c) + dk_i for every α in ab, kinked examples included
// (nn.LossEnclosureDK).
func (e *IntervalPath) centredPass(c int, ab interval.I, mid float64, bi, bc []*nn.ParamBox, rows []int32) (l, dl, d2l []interval.I, kink, jump []bool, lc, dlc, dk []interval.I) {
	ch := e.chunks[c]
	pt := interval.Point(mid)
	// the midpoint's jet after every layer and every sub-layer of a
	// residual layer (key {i, b, k}; a top-level layer is {i, -1, -1})
	type site struct{ i, b, k int }
	centre := map[site]*nn.IJet{}
	jc := e.jetHook(c, pt, bc, 1, nil, func(i int, j *nn.IJet) *nn.IJet {
		centre[site{i, -1, -1}] = j
		return j
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		centre[site{i, b, k}] = j
		return j
	})
	tighten := func(s site, j *nn.IJet) *nn.IJet {
		centredForm(j, centre[s], rows, ab, mid)
		delete(centre, s) // free each centre jet once used
		return j
	}
	j := e.jetHook(c, ab, bi, 2, rows, func(i int, j *nn.IJet) *nn.IJet {
		if i < e.start {
			return j // the cached affine layer: exact in α already, its D1 the shared cache
		}
		return tighten(site{i, -1, -1}, j)
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		return tighten(site{i, b, k}, j)
	})
	targets := e.p.Targets.Rows(ch[0], ch[1])
	lc, dlc, _ = nn.LossEnclosure(e.p.Model.Spec.Loss, jc, targets)
	if rows != nil {
		targets = subTargets(targets, rows)
	}
	l, dl, d2l, dk = nn.LossEnclosureDK(e.p.Model.Spec.Loss, j, targets)
	e.mu.Lock()
	e.evals += 2
	e.mu.Unlock()
	jump = j.Jump
	if jump == nil {
		jump = make([]bool, len(l))
	}
	return l, dl, d2l, j.Kink, jump, lc, dlc, dk
}

// centredForm tightens, in place, the jet j enclosing a layer's output over
// the α-interval ab with the centred forms around the same layer's jet jc at
// the point mid ∈ ab (THEORY.md §7's mean-value form, applied per layer):
// for every α ∈ ab and t = α − mid ∈ ab − mid,
//
//	h(α) ∈ h(mid) + ḣ(ab)·t,   ḣ(α) ∈ ḣ(mid) + ḧ(ab)·t,
//
// intersected with j's own enclosures; where the leaf's jet carries the
// jump term (nn.IJet.HasDK) the second is ḣ(α) ∈ ḣ(mid) + D2·t + DK, which
// holds on kinked examples too (issue 13: one unit that may cross a ReLU
// kink no longer disables the form for all of an example's units, and its
// jump enters only through DK). The first holds wherever h is
// Lipschitz on ab with ḣ in j.D1 almost everywhere (also across a ReLU
// kink, where D1 is the hull of the one-sided derivatives), so it is
// skipped only where the example may jump; the second needs h to be C² on
// ab and is skipped where the example is kinked. Without it the interval
// rules see the wrapping effect compound through every layer (a resnet-8's
// enclosures of h over an α-interval of width w were ~10⁴·w wide at the
// logits, issue 13); with it the width of each layer's input is about
// |ḣ|·w and the wrapping acts once per layer, not through the depth.
// Every operation rounds outward (package interval); an empty or NaN
// intersection leaves j's own enclosure. Row i of j is row rows[i] of jc
// (rows nil: row i).
func centredForm(j, jc *nn.IJet, rows []int32, ab interval.I, mid float64) {
	if j == nil || jc == nil || j.Const || j.Order < 1 || jc.Order < 1 || j.D1.Lo == nil || jc.D1.Lo == nil ||
		jc.D != j.D || (rows == nil && jc.N != j.N) || (rows != nil && len(rows) != j.N) {
		return
	}
	t := interval.I{Lo: interval.Down(ab.Lo - mid), Hi: interval.Up(ab.Hi - mid)}
	withDK := j.HasDK()
	tighten := func(m, mc, d, dk interval.Matrix, k, kc int) {
		x := interval.Mul(interval.I{Lo: d.Lo[k], Hi: d.Hi[k]}, t)
		if dk.Lo != nil {
			x = interval.Add(x, interval.I{Lo: dk.Lo[k], Hi: dk.Hi[k]})
		}
		lo, hi := interval.Down(mc.Lo[kc]+x.Lo), interval.Up(mc.Hi[kc]+x.Hi)
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return
		}
		lo, hi = math.Max(lo, m.Lo[k]), math.Min(hi, m.Hi[k])
		if lo <= hi {
			m.Lo[k], m.Hi[k] = lo, hi
		}
	}
	for i := 0; i < j.N; i++ {
		ic := i
		if rows != nil {
			ic = int(rows[i])
		}
		if j.Jumped(i) || jc.Jumped(ic) {
			continue
		}
		smooth := j.Order >= 2 && j.D2.Lo != nil && (j.Kink == nil || !j.Kink[i])
		var dk interval.Matrix
		if withDK {
			smooth, dk = true, j.DK
		}
		for q := 0; q < j.D; q++ {
			k, kc := i*j.D+q, ic*j.D+q
			tighten(j.V, jc.V, j.D1, interval.Matrix{}, k, kc)
			if smooth {
				tighten(j.D1, jc.D1, j.D2, dk, k, kc)
			}
		}
	}
}
