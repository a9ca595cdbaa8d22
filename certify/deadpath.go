package certify

import (
	"context"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// deadApplies reports whether a dead first ReLU makes the loss constant
// (issue 12, dead networks and flat tails): the first ReLU follows the
// cached affine layer (patternsApply), and δ = 0 exactly in every tensor
// the path moves other than the cached layer's (BatchNorm buffers
// included), so where every unit of that ReLU is at 0 the output is the
// rest of the network applied to 0 with fixed parameters, whatever α.
func (e *IntervalPath) deadApplies() bool {
	if !e.patternsApply() {
		return false
	}
	own := strconv.Itoa(e.start-1) + "."
	for k, t := range e.p.Delta {
		if strings.HasPrefix(k, own) {
			continue
		}
		for _, v := range t.Data {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

// deadLosses encloses, for chunk c, each example's loss with the first
// ReLU's output exactly 0 (the constant value of ℓ_i wherever the example
// is dead; deadApplies), and its derivative, exactly 0.
func (e *IntervalPath) deadLosses(c int) []interval.I {
	ch := e.chunks[c]
	n, m := ch[1]-ch[0], e.a[c].Cols
	j := &nn.IJet{N: n, D: m, Order: 1, V: interval.NewMatrix(n, m), D1: interval.NewMatrix(n, m), Kink: make([]bool, n), Jump: make([]bool, n)}
	bs := e.boxes(interval.Point(0))
	for i := e.start + 1; i < len(e.layers); i++ {
		j = e.layers[i].IntervalJet(bs[i], j)
	}
	l, _, _ := nn.LossEnclosure(e.p.Model.Spec.Loss, j, e.p.Targets.Rows(ch[0], ch[1]))
	return l
}

// deadSpans returns, for chunk c, each example's dead span [lo, hi] ⊆
// [0, 1]: an interval of α on which every pre-activation of the first
// ReLU, z = A + αB, is ≤ 0 (empty, lo > hi, where there is none; always
// empty for an example kinked before the cached layer). For α ≥ 0 every
// z in the enclosure is at most A.Hi + α·B.Hi, so unit j is dead on
// {α : A.Hi + α·B.Hi ≤ 0}: all of [0, 1] when A.Hi ≤ 0 and B.Hi ≤ 0,
// α ≥ −A.Hi/B.Hi when B.Hi < 0 (the root rounded up), α ≤ −A.Hi/B.Hi
// when B.Hi > 0 and A.Hi ≤ 0 (rounded down), nowhere otherwise (NaN
// included). Each set is an interval of α, so their intersection over
// the units is one too: the example's span, rounded inward (every α in
// it is dead; issue 12, flat tails). deadRows then costs one comparison
// per example instead of an interval product per unit.
func (e *IntervalPath) deadSpans(c int) [][2]float64 {
	A, B := e.a[c], e.b[c]
	n, m := A.Rows, A.Cols
	out := make([][2]float64, n)
	for i := 0; i < n; i++ {
		lo, hi := 0.0, 1.0
		if e.kink0[c] != nil && e.kink0[c][i] {
			lo, hi = 1, 0
		}
		for k := i * m; k < (i+1)*m && lo <= hi; k++ {
			ah, bh := A.Hi[k], B.Hi[k]
			switch {
			case ah <= 0 && bh <= 0: // dead on all of [0, 1]
			case bh < 0: // ah > 0: dying at −ah/bh
				lo = max(lo, interval.Up(-ah/bh))
			case bh > 0 && ah <= 0: // reviving after −ah/bh
				hi = min(hi, interval.Down(-ah/bh))
			default: // alive at 0 and not dying, or NaN
				lo, hi = 1, 0
			}
		}
		if !(lo <= hi) {
			lo, hi = 1, 0
		}
		out[i] = [2]float64{lo, hi}
	}
	return out
}

// deadRows marks the rows of chunk c dead on all of [a, b] (0 ≤ a ≤ b ≤
// 1): [a, b] lies in the row's dead span (deadSpans), so every
// pre-activation of the first ReLU is ≤ 0 over it; it returns how many.
func (e *IntervalPath) deadRows(c int, a, b float64) ([]bool, int) {
	sp := e.deadSpan[c]
	dead := make([]bool, len(sp))
	count := 0
	for i, s := range sp {
		if s[0] <= a && b <= s[1] {
			dead[i] = true
			count++
		}
	}
	return dead, count
}

// pointChunk encloses ℓ_i(α) and (order 1) ℓ_i′(α) of chunk c at the point
// alpha with the parameter boxes bs (as pass at a point): rows dead at
// alpha (deadRows) take their constant loss and ℓ_i′ = 0 exactly without
// a pass (issue 12: at a flat tail's end every row is dead).
func (e *IntervalPath) pointChunk(c int, alpha float64, bs []*nn.ParamBox, order int) (l, dl []interval.I) {
	if e.dead == nil {
		l, dl, _, _, _ = e.pass(c, interval.Point(alpha), bs, order)
		return l, dl
	}
	dead, nd := e.deadRows(c, alpha, alpha)
	if nd == 0 {
		l, dl, _, _, _ = e.pass(c, interval.Point(alpha), bs, order)
		return l, dl
	}
	n := len(dead)
	l, dl = make([]interval.I, n), make([]interval.I, n)
	rest := make([]int32, 0, n-nd)
	for i := range dead {
		if dead[i] {
			l[i] = e.dead[c][i] // dl[i]: exactly 0
			continue
		}
		rest = append(rest, int32(i))
	}
	if len(rest) > 0 {
		pl, pdl, _, _, _ := e.passRows(c, interval.Point(alpha), bs, order, rest)
		for t, i := range rest {
			l[i] = pl[t]
			if order >= 1 {
				dl[i] = pdl[t]
			}
		}
	}
	return l, dl
}

// deadLine reports whether every example is dead on all of [0, 1] with
// nothing after the first ReLU moving (deadApplies): L is then constant.
func (e *IntervalPath) deadLine() bool {
	if e.dead == nil {
		return false
	}
	for c := range e.chunks {
		if _, k := e.deadRows(c, 0, 1); k != e.chunks[c][1]-e.chunks[c][0] {
			return false
		}
	}
	return true
}

// probeLeaves is the first-order probe of the initial leaves (issue 12,
// flat tails), used by the monotonicity objective where a dead first ReLU
// makes the loss constant (IntervalPath.probe): each leaf [a, b] is first
// enclosed by a plain first-order interval pass (ℓ_i′ over [a, b] for
// every example not dead on it, as pass with order 1; a dead row's ℓ_i′ is
// exactly 0 and its ℓ_i its constant loss), and where the sum's upper
// bound is positive, by the first ReLU's pattern hull (kinkPatternDL) on
// the kinked rows. A leaf whose L′ is then enclosed at or below 0 is
// settled: its DL, LR and Integral come from these enclosures, Rise is 0
// (∫(L′)⁺ = 0 where L′ ≤ 0), its midpoint L and L′ are not evaluated (LC,
// DLC the whole line), no example is kept for children. Every other leaf
// is returned, in order, for the full evaluation (evalLeaves); its probe
// is wasted work.
//
// Why: on such a line every example crosses its kinks on the falling part
// (on the MNIST MLP's flat tail nearly every (leaf, example) pair is
// kinked there), so the full evaluation's midpoint pass and second-order
// centred forms cost three times the first-order pass and add nothing the
// verdict needs: the first-order sums are far below 0. Sound: each ℓ_i′
// enclosure holds for every α of the leaf (one-sided derivatives at a
// kink included), so L′ ≤ sup ΣDL ≤ 0 wherever L is differentiable, and
// L is continuous (no layer may jump where the pattern hull applies), so
// L does not rise on the leaf.
func (e *IntervalPath) probeLeaves(ctx context.Context, ls []*Leaf, workers int) ([]*Leaf, error) {
	type chunkProbe struct {
		l, dl []interval.I
		kink  []bool
		jump  bool
		dead  int
	}
	nc := len(e.chunks)
	res := make([][]chunkProbe, len(ls))
	bi := make([][]*nn.ParamBox, len(ls))
	// Where dead is set, δ = 0 in every layer after the cached one, so each
	// box is θ0 with its rounding radius whatever the α-interval
	// (nn.NewParamBox: Mid = θ0 + c·0, Rad from |δ|·r = 0 and |Mid|): one
	// set serves every leaf, with the same numbers (and the memory of one
	// leaf's boxes, not of all of them at once).
	var shared []*nn.ParamBox
	if e.dead != nil {
		shared = e.boxes(interval.I{Lo: 0, Hi: 1})
	}
	for k, l := range ls {
		res[k] = make([]chunkProbe, nc)
		if bi[k] = shared; shared == nil {
			bi[k] = e.boxes(interval.I{Lo: l.A, Hi: l.B})
		}
	}
	type task struct{ l, c int }
	run := func(nl int, f func(t task)) error { // (leaf, chunk) tasks for leaves [0, nl) over the workers
		return fanOut(ctx, workers, nl, nc, func(l, c int) { f(task{l, c}) })
	}
	err := run(len(ls), func(t task) {
		l := ls[t.l]
		n := e.chunks[t.c][1] - e.chunks[t.c][0]
		dead, nd := make([]bool, n), 0
		if e.dead != nil {
			dead, nd = e.deadRows(t.c, l.A, l.B)
		}
		cp := chunkProbe{l: make([]interval.I, n), dl: make([]interval.I, n), kink: make([]bool, n), dead: nd}
		rest := make([]int32, 0, n-nd)
		for i := range dead {
			if dead[i] {
				cp.l[i] = e.dead[t.c][i] // dl: exactly 0
				continue
			}
			rest = append(rest, int32(i))
		}
		if len(rest) > 0 {
			if nd == 0 {
				rest = nil // every row: the pass takes the cached products as they are (no copy)
			}
			pl, pdl, _, pk, pj := e.passRows(t.c, interval.I{Lo: l.A, Hi: l.B}, bi[t.l], 1, rest)
			if rest == nil {
				rest = make([]int32, n)
				for i := range rest {
					rest[i] = int32(i)
				}
			}
			for q, i := range rest {
				cp.l[i], cp.dl[i], cp.kink[i] = pl[q], pdl[q], pk[q]
				cp.jump = cp.jump || pj[q]
			}
		}
		e.mu.Lock()
		e.deadRowN += nd
		e.mu.Unlock()
		res[t.l][t.c] = cp
	})
	if err != nil {
		return nil, err
	}
	sum := func(k int) (interval.I, bool) {
		s, jump := interval.Point(0), false
		for _, cp := range res[k] {
			for _, d := range cp.dl {
				s = interval.Add(s, d)
			}
			jump = jump || cp.jump
		}
		return s, jump
	}
	settled := func(k int) bool {
		s, jump := sum(k)
		return !jump && s.Hi <= 0 && s.Lo <= s.Hi
	}
	if e.patterns {
		var again []int
		for k := range ls {
			if !settled(k) {
				again = append(again, k)
			}
		}
		if len(again) > 0 {
			err := run(len(again), func(t task) {
				k := again[t.l]
				l, cp := ls[k], res[k][t.c]
				if cp.jump {
					return
				}
				var cand []int32
				for i, d := range cp.dl {
					if cp.kink[i] && !(d.Hi <= 0) {
						cand = append(cand, int32(i))
					}
				}
				if len(cand) == 0 {
					return
				}
				for q, d := range e.kinkPatternDL(t.c, l.A, l.B, bi[k], cand) {
					i := cand[q]
					if x := interval.Intersect(cp.dl[i], d); x.Lo <= x.Hi {
						cp.dl[i] = x
					}
				}
			})
			if err != nil {
				return nil, err
			}
		}
	}
	var rest []*Leaf
	for k, l := range ls {
		if !settled(k) {
			rest = append(rest, l)
			continue
		}
		dl, _ := sum(k)
		w := interval.Sub(interval.Point(l.B), interval.Point(l.A))
		lr, integral, smooth := interval.Point(0), 0.0, 0
		for _, cp := range res[k] {
			for i, v := range cp.l {
				lr = interval.Add(lr, v)
				integral = upAdd(integral, interval.Mul(w, cp.dl[i]).Hi)
			}
			smooth += cp.dead
		}
		l.DL, l.LR = e.scaleI(dl), e.scaleI(lr)
		l.Integral = e.scaleI(interval.Point(integral)).Hi
		l.Rise, l.RiseLeft, l.RiseRight, l.Jump, l.Smooth = 0, 0, 0, false, smooth
		l.LC, l.DLC = wholeLine, wholeLine
		e.probeSettled++
	}
	return rest, nil
}
