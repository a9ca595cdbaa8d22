package certify

import (
	"fmt"
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
// (nn.LossEnclosureDK). Where the model's layers have backward interval
// rules (IntervalPath.backward) dk is also intersected with the backward
// bound of the same term (jumpBackward): the gradient at every unit that
// may cross a kink times its jump relative to mid, summed.
func (e *IntervalPath) centredPass(c int, ab interval.I, mid float64, bi, bc []*nn.ParamBox, rows []int32) (l, dl, d2l []interval.I, kink, jump []bool, lc, dlc, dk []interval.I) {
	return e.centredPassSub(c, ab, mid, bi, bc, rows, false)
}

// centredPassSub is centredPass; with subMid (rows not nil, no accuracy
// tap, no carried layer) the midpoint's pass too runs on the listed rows
// only, and lc, dlc are in rows' order (leafChunk: the other rows are kept
// rows, whose ℓ_i(c), ℓ_i′(c) it encloses from the parent's bounds).
func (e *IntervalPath) centredPassSub(c int, ab interval.I, mid float64, bi, bc []*nn.ParamBox, rows []int32, subMid bool) (l, dl, d2l []interval.I, kink, jump []bool, lc, dlc, dk []interval.I) {
	subMid = subMid && rows != nil && e.acc == nil && e.carry == nil
	ch := e.chunks[c]
	j, jc, tapes := e.centredJetsSub(c, ab, mid, bi, bc, rows, subMid)
	if !subMid {
		e.acc.record(c, ab, mid, rows, j, jc) // the accuracy bounds' verdicts on this leaf (acctap.go; nil: none)
	}
	targets := e.p.Targets.Rows(ch[0], ch[1])
	if rows != nil && subMid {
		targets = subTargets(targets, rows)
	}
	lc, dlc, _ = nn.LossEnclosure(e.p.Model.Spec.Loss, jc, targets)
	if rows != nil && !subMid {
		targets = subTargets(targets, rows)
	}
	var grad interval.Matrix
	l, dl, d2l, dk, grad = nn.LossEnclosureGrad(e.p.Model.Spec.Loss, j, targets)
	if dk != nil && tapes != nil {
		if back, err := e.jumpBackward(grad, bi, tapes); err == nil {
			for i := range dk {
				if x := interval.Intersect(dk[i], back[i]); x.Valid() {
					dk[i] = x
				}
			}
		}
	}
	e.mu.Lock()
	e.evals += 2
	e.mu.Unlock()
	jump = j.Jump
	if jump == nil {
		jump = make([]bool, len(l))
	}
	return l, dl, d2l, j.Kink, jump, lc, dlc, dk
}

// centredJets is centredPass's pair of passes: the output jet j over the
// leaf ab on the given rows (order 2, tightened by centredForm after every
// layer and sub-layer) and jc at mid on every row of the chunk (order 1);
// with IntervalPath.backward, the tapes of every layer and sub-layer after
// the cached one, recorded from the leaf's pass with the midpoint's input
// jets (nn.IntervalBackward.IntervalTape), for jumpBackward; nil when
// some layer's tape could not be recorded (its error) or a layer carries no
// jump term.
func (e *IntervalPath) centredJets(c int, ab interval.I, mid float64, bi, bc []*nn.ParamBox, rows []int32) (j, jc *nn.IJet, tapes map[jetSite]*nn.IntervalTape) {
	return e.centredJetsSub(c, ab, mid, bi, bc, rows, false)
}

// centredJetsSub is centredJets; with subMid the midpoint's pass runs on
// the listed rows only (row i of jc is then row i of j: the centred forms
// and tapes take no row map), for centredPassSub.
func (e *IntervalPath) centredJetsSub(c int, ab interval.I, mid float64, bi, bc []*nn.ParamBox, rows []int32, subMid bool) (j, jc *nn.IJet, tapes map[jetSite]*nn.IntervalTape) {
	pt := interval.Point(mid)
	// midRows: the rows of the midpoint's pass (nil: all); crows: the map
	// from j's rows to jc's (nil: the same rows)
	var midRows []int32
	crows := rows
	if subMid {
		midRows, crows = rows, nil
	}
	// the midpoint's jet after every layer and every sub-layer of a
	// residual layer (key {i, b, k}; a top-level layer is {i, -1, -1})
	centre := map[jetSite]*nn.IJet{}
	// with a carried second layer, the fixed units' quadratic over the
	// leaf serves both passes (every row: the midpoint's pass takes them all),
	// and both enclose the first layer and activation only at its crossing
	// units (carryLean: the hooks below are then not called for those two
	// layers, which they do not tighten; the leaf's left-end form on the
	// first layer is applied by carryFirst)
	var cf *carryCoef
	if e.carry != nil {
		cf = e.carryCoef(c, ab, nil)
	}
	jc = e.jetCarry(c, pt, bc, 1, midRows, func(i int, j *nn.IJet) *nn.IJet {
		centre[jetSite{i, -1, -1}] = j
		return j
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		centre[jetSite{i, b, k}] = j
		return j
	}, nil, cf, &carryLean{})
	var rec func(i, b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet)
	ok := e.backward
	if ok {
		tapes = map[jetSite]*nn.IntervalTape{}
		rec = func(i, b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet) {
			if !ok {
				return
			}
			if !in.HasDK() {
				ok = false // no jump term to bound (a layer without DK before)
				return
			}
			in0 := centre[jetSite{i - 1, -1, -1}] // the input at mid of layer i and of a block's first sub-layers
			if k > 0 {
				in0 = centre[jetSite{i, b, k - 1}]
			}
			t, err := l.(nn.IntervalBackward).IntervalTape(box, in, in0, crows)
			if err != nil {
				ok = false
				return
			}
			tapes[jetSite{i, b, k}] = t
		}
	}
	// the first leaf [0, w]: the left-end form around the exact values at
	// α = 0 after every layer and sub-layer too (startForm, exactend.go)
	var start map[jetSite]interval.Matrix
	if ab.Lo == 0 && ab.Hi > 0 && !e.recompute {
		start = e.startValues(c, rows)
	}
	atStart := func(s jetSite, j *nn.IJet) {
		if start != nil {
			startForm(j, start[s], ab.Hi)
			delete(start, s)
		}
	}
	j = e.jetCarry(c, ab, bi, 2, rows, func(i int, j *nn.IJet) *nn.IJet {
		if i < e.start {
			atStart(jetSite{i, -1, -1}, j)
			return j // the cached affine layer: exact in α already, its D1 the shared cache
		}
		if e.carry != nil && (i == e.carry.act || i == e.carry.dense) {
			// the carried layers: the first activation's output is read only
			// at the crossing units, and the dense layer's is already the
			// exact quadratic's range (carryJet); the form would cost a pass
			// over every unit for nothing
			return j
		}
		centredForm(j, centre[jetSite{i, -1, -1}], crows, ab, mid)
		atStart(jetSite{i, -1, -1}, j)
		// free the centre jets layer i has read (its input's and its
		// sub-layers'; the tapes took what they need)
		for s := range centre {
			if s.i == i-1 || (s.i == i && s.b >= 0) {
				delete(centre, s)
			}
		}
		return j
	}, func(i, b, k int, j *nn.IJet) *nn.IJet {
		centredForm(j, centre[jetSite{i, b, k}], crows, ab, mid)
		atStart(jetSite{i, b, k}, j)
		return j
	}, rec, cf, &carryLean{start: start != nil})
	if !ok {
		tapes = nil
	}
	return j, jc, tapes
}

// jetSite names a layer's output in a pass: top-level layer i (b = k =
// −1) or sub-layer k of branch b (0 the body, 1 the shortcut) of the
// residual layer i.
type jetSite struct{ i, b, k int }

// backwardApplies reports whether every layer after the cached one has a
// backward interval rule (nn.IntervalBackward, or a residual layer with
// nn.IntervalBackwardBlock whose sub-layers all have one and are not
// blocks), the BatchNorm policy is not recompute (whose layers carry no
// jump term) and the path has no carried second layer (carryPlan: its
// forward jump term is already the crossing units' rank-one terms, and
// the backward pass would need the interval product with W(α) over the
// leaf that the carry avoids; on the benchmark network at 50 examples
// dropping it cost one leaf of 33): the condition for jumpBackward.
func (e *IntervalPath) backwardApplies() bool {
	if e.recompute || e.carry != nil {
		return false
	}
	for i := e.start; i < len(e.layers); i++ {
		l := e.p.Model.Layers[i]
		if blk, ok := l.(nn.Block); ok {
			if _, ok := l.(nn.IntervalBackwardBlock); !ok {
				return false
			}
			for _, br := range blk.Branches() {
				for _, s := range br.Layers {
					if _, ok := s.(nn.Block); ok {
						return false
					}
					if _, ok := s.(nn.IntervalBackward); !ok {
						return false
					}
				}
			}
			continue
		}
		if _, ok := l.(nn.IntervalBackward); !ok {
			return false
		}
	}
	return true
}

// jumpBackward bounds the loss's jump term of the slope form across kinks
// per example (nn.IntervalBackward, the comment at the top of
// nn/interval_backward.go): from grad ⊇ ∂ℓ_i/∂γ over the leaf, the
// gradient is carried back through every layer's enclosed Jacobian
// (boxes: the leaf's parameter boxes; tapes: each layer's and sub-layer's
// record from the leaf's pass), and each layer that creates jumps adds
// g·J. The result dk_i encloses e(α)ᵀK_L(α, c), the same quantity as
// nn.LossEnclosureDK's jump term (so the two may be intersected). The
// pass stops below the lowest layer that creates a jump.
func (e *IntervalPath) jumpBackward(grad interval.Matrix, boxes []*nn.ParamBox, tapes map[jetSite]*nn.IntervalTape) ([]interval.I, error) {
	low := len(e.layers)
	for s, t := range tapes {
		if t != nil && t.Jumps() && s.i < low {
			low = s.i
		}
	}
	dk := make([]interval.I, grad.Rows)
	add := func(d []interval.I) {
		for i := range d {
			dk[i] = interval.Add(dk[i], d[i])
		}
	}
	g := grad
	for i := len(e.layers) - 1; i >= low; i-- {
		l := e.p.Model.Layers[i]
		if blk, ok := l.(nn.IntervalBackwardBlock); ok {
			var err error
			g, err = blk.IntervalVJPBlock(boxes[i], g, func(b, k int, sl nn.Layer, box *nn.ParamBox, g interval.Matrix) (interval.Matrix, error) {
				gin, d, err := sl.(nn.IntervalBackward).IntervalVJP(box, tapes[jetSite{i, b, k}], g)
				add(d)
				return gin, err
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		bl, ok := l.(nn.IntervalBackward)
		if !ok {
			return nil, fmt.Errorf("certificate: layer %d (%s) has no backward interval rule", i, l.Type())
		}
		gin, d, err := bl.IntervalVJP(boxes[i], tapes[jetSite{i, -1, -1}], g)
		if err != nil {
			return nil, err
		}
		add(d)
		g = gin
	}
	return dk, nil
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
	// t straddles 0 (tl < 0 < th) on every leaf wider than a float64
	// step: then d·t = [min(d.Hi·tl, d.Lo·th), max(d.Hi·th, d.Lo·tl)]
	// (mulStraddle), the two products of interval.Mul's four that can be
	// extreme, bit for bit Mul's result
	straddle := t.Lo < 0 && t.Hi > 0
	tighten := func(m, mc, d, dk interval.Matrix, k, kc int) {
		var x interval.I
		if straddle {
			x = mulStraddle(interval.I{Lo: d.Lo[k], Hi: d.Hi[k]}, t)
		} else {
			x = interval.Mul(interval.I{Lo: d.Lo[k], Hi: d.Hi[k]}, t)
		}
		if dk.Lo != nil {
			x = interval.Add(x, interval.I{Lo: dk.Lo[k], Hi: dk.Hi[k]})
		}
		lo, hi := interval.Down(mc.Lo[kc]+x.Lo), interval.Up(mc.Hi[kc]+x.Hi)
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return
		}
		lo, hi = max(lo, m.Lo[k]), min(hi, m.Hi[k])
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

// mulStraddle returns interval.Mul(d, t) for t.Lo < 0 < t.Hi, bit for bit
// (centredForm's d·(α − c)). For reals a ≤ b and tl < 0 < th the extremes
// of {a, b}·{tl, th} are min(b·tl, a·th) and max(b·th, a·tl): a·tl ≥ b·tl
// and a·th ≤ b·th. Rounding to nearest is monotone, so the float64
// products keep those orders and the min and max of the two equal those
// of Mul's four; where Mul would take its slow path (a NaN or a bound
// exactly 0: a zero factor or an underflow), and for an empty or NaN d,
// Mul itself is called.
func mulStraddle(d, t interval.I) interval.I {
	lo, hi := min(d.Hi*t.Lo, d.Lo*t.Hi), max(d.Hi*t.Hi, d.Lo*t.Lo)
	if lo == 0 || hi == 0 || lo != lo || hi != hi || !(d.Lo <= d.Hi) {
		return interval.Mul(d, t)
	}
	return interval.I{Lo: interval.Down(lo), Hi: interval.Up(hi)}
}
