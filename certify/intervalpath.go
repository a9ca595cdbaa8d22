package certify

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
	"gonum.org/v1/gonum/mat"
)

// Leaf is one α-interval [A, B] of the branch and bound with the
// enclosures an objective decides it by (THEORY.md §7): the interval path
// fills every field but LA and LB (IntervalPath.evalLeaves); the driver
// (BranchAndBound) sets LA and LB when it creates the leaf. L is the
// dataset loss (the mean reduction; per-example values are summed over the
// examples and scaled).
type Leaf struct {
	A, B float64
	// DL encloses L′ on [A, B]: per example the first-order enclosure,
	// intersected with the mean-value forms where the example is smooth.
	DL interval.I
	// Integral bounds ∫_A^B L′ from above (≤ (B − A)·sup L′).
	Integral float64
	// LC and DLC enclose L(c) and L′(c) at the leaf's midpoint c = A/2 +
	// B/2; the whole line where not evaluated (a leaf the first-order
	// probe settled, IntervalPath.probeLeaves).
	LC     interval.I
	DLC    interval.I
	Smooth int // examples with the mean-value form (no kink on [A, B])
	// Jump is set when some example may jump on [A, B] (a softplus
	// threshold crossing, nn.IJet.Jump): L is then not the integral of L′
	// there, and the leaf's changes are bounded by LR, LA and LB instead.
	Jump bool
	LR   interval.I // L on all of [A, B]
	// LA, LB enclose L(A) and L(B): the parent's ends and midpoint for a
	// split leaf, L(0) and L(1) at the line's ends; an initial leaf's
	// interior end is evaluated by the driver where L may jump, else it is
	// the whole line (unknown) until an objective evaluates it.
	LA, LB interval.I
	// Rise bounds ∫_A^B (L′)⁺ from above, so the rise of L over any part of
	// [A, B] (where L does not jump), by the second-order forms of issue
	// 12: L′ is bounded above by a line in α (per example ℓ_i′(c) +
	// ℓ_i″·(α − c) where smooth, sup ℓ_i′ over the leaf where kinked),
	// centred at the midpoint c and, on the end leaves, at α = 0 and α = 1
	// (THEORY.md §7's endpoint-centred form: where L′(1) = 0 up to
	// rounding it bounds the rise by (sup L′(1))²/(2 inf L″), not (B −
	// A)·sup L′); the smallest of their positive parts' integrals. +Inf
	// when unknown.
	Rise float64
	// RiseLeft and RiseRight split Rise at the midpoint c = A/2 + B/2:
	// RiseLeft bounds ∫_A^c (L′)⁺, so the rise of L over any part of
	// [A, c], and RiseRight ∫_c^B (L′)⁺ over [c, B] (where L does not
	// jump), each rounded up. Each is the smallest of the centred line's
	// positive part integrated over its half alone (posInt(dc, ml, c − A),
	// resp. posInt(dc, mr, B − c): the two terms whose sum is Rise's
	// centred bound) and the endpoint-centred lines over the half (the
	// line at α = 0 over [0, c] or over all of [0, B]; the line at 1
	// over [c, 1] or over all of [A, 1]). Monotonicity.Bound uses them
	// with L(c) ∈ LC as two half-leaves (issue 13, halves), so a run
	// through a leaf end x pays only the halves next to x. RiseLeft,
	// RiseRight ≤ Rise; +Inf (or NaN, read as unknown) when unknown.
	RiseLeft, RiseRight float64

	// Ways is how many equal parts BranchAndBound splits the leaf into
	// when the objective's Split chooses it: a power of two, the parts'
	// ends those of repeated bisection (splitPoints); 0 or 2 bisect. The
	// objective sets it in Split (Monotonicity: splitWays).
	Ways int

	// kept holds the per-example bounds of the examples settled on this
	// leaf (sup ℓ_i′ ≤ 0, smooth: no kink, no jump), when the interval
	// path drops settled examples (IntervalPath.dropSettled); its
	// children's interval passes over
	// [A, B] skip those rows and reuse these bounds. parent is the kept
	// rows of the leaf this one was split from (set by BranchAndBound).
	kept, parent *keptRows
}

// keptRows holds, per chunk, the examples (chunk-local rows, increasing)
// settled on a leaf [a, b] with their enclosures over [a, b]: ℓ_i′ (the
// first-order enclosure intersected with the mean-value forms, sup ≤ 0),
// ℓ_i″, ℓ_i, and the kink flag (always false: a kinked example is not kept,
// since it would stay first-order in every descendant, and the search
// measured a certified_monotone path turned inconclusive that way). An
// enclosure over [a, b] encloses over any sub-interval (inclusion
// monotonicity), and an example smooth on [a, b] is smooth on its parts,
// so a child leaf may use them in place of its own pass for those
// examples (issue 12, item 2).
type keptRows struct {
	chunks   []*chunkKeep // per chunk; nil: none kept
	examples int          // total rows kept
	released bool         // the leaf was split and its children evaluated
}

// maxKeptRows caps the per-example bounds kept over all live leaves
// (about 60 bytes each): beyond it a leaf keeps none and its children
// evaluate every example, as without drop-out. The cap is applied in leaf
// order, so the leaves, bounds and verdict do not depend on the worker count.
const maxKeptRows = 1 << 21

// IntervalPath is the interval twin of functionspace.Path (THEORY.md §7):
// rigorous enclosures, in interval arithmetic with outward rounding, of the
// outputs γ, γ′, γ″, the per-example losses ℓ_i, ℓ_i′, ℓ_i″ and the dataset
// loss L, L′, L″ over an α-interval (or at a point α), for every α in it
// and every rounding the float64 evaluation could make. It holds the path's
// first-layer products (z = A + αB, exact up to their enclosed rounding),
// per chunk, and per-example ℓ′(1) for the endpoint-centred form. Its
// methods are safe for concurrent use.
type IntervalPath struct {
	p      *functionspace.Path
	chunks [][2]int
	start  int                // first layer after the cached affine layer
	a, b   []interval.Matrix  // per chunk
	kink0  [][]bool           // per chunk: kinks before the cached layer
	dl1    [][]interval.I     // per chunk: ℓ_i′(1), nil until known
	dl0    [][]interval.I     // per chunk: ℓ_i′(0), nil unless keepStart was called
	layers []nn.IntervalLayer // all layers
	scale  float64            // N·K (mse) or N
	mu     sync.Mutex
	evals  int
	// line caches δ's point Weights for every box of the path (box)
	line  nn.WeightsCache
	notes map[string]bool
	jumps bool // the model has a layer whose output may jump (softplus)
	// outputsOnly: evalLeaves leaves the loss enclosures of the leaves
	// unset (an objective that reads only Outputs, AccuracyObjective)
	outputsOnly bool
	// dropSettled: evalLeaves keeps the per-example bounds of the examples
	// settled on a leaf (sup ℓ_i′ ≤ 0) and the children of a split leaf
	// skip them in their interval pass over [a, b] (Monotonicity sets it;
	// never with a layer that may jump). keptTotal counts the rows kept
	// over the live leaves (maxKeptRows).
	dropSettled bool
	// keepKinked: with dropSettled, an example kinked on a leaf is kept
	// too when it is settled there with a sup ℓ_i′ close enough to its
	// slope at the midpoint (keepKinkedRow). Set for models with a conv2d
	// or residual layer (nn.Model.HasConvOrBlocks), where an example is rarely smooth
	// at the widths a certificate reaches (issue 13: 0 of 256 on a
	// resnet-8 leaf of 2⁻⁹), so without it nothing drops out. Monotonicity
	// clears it once decided: the refinement of Δ's bounds that may follow
	// wants every kinked example's own enclosure on the children (leafChunk
	// then evaluates the kinked kept rows again, smoothKept).
	keepKinked bool
	// midAllRows: the midpoint's pass of a child leaf runs on its kept rows
	// too (as before the leafcost round), instead of enclosing their ℓ_i(c)
	// and ℓ_i′(c) from the parent's bounds (leafChunk); a switch for
	// measuring both in one process (TestResNetDropSettled)
	midAllRows bool
	keptTotal  int
	// keptCap, when > 0, replaces maxKeptRows (CertifyOptions.keptCap:
	// tests lower it so that the cap binds on small nets); keptRefused
	// counts the leaves whose settled rows the cap refused.
	keptCap, keptRefused int
	rowsReused           int // (leaf, example) pairs whose interval pass over the leaf was skipped
	// patterns: kinked examples' ℓ_i′ on a leaf is also enclosed by the
	// hull over the first ReLU's activation patterns (kinkPatternDL;
	// patternsApply); patternRows counts the pattern rows evaluated.
	patterns    bool
	patternRows int
	// dead: per chunk, each example's loss enclosure with the first ReLU
	// at 0 (deadLosses), when a dead first ReLU makes the loss constant
	// (deadApplies); nil otherwise. Rows dead on a leaf skip its passes.
	dead     [][]interval.I
	deadSpan [][][2]float64 // per chunk: each example's dead span (deadSpans), with dead
	deadRowN int            // (leaf, example) pairs taken as dead
	// probe: BranchAndBound settles the initial leaves it can by the
	// first-order probe (probeLeaves) before evaluating the rest
	// (Monotonicity sets it where dead is set); probeSettled counts them.
	probe        bool
	probeSettled int
	// dl0Next: per chunk, ℓ_i′(0) from BranchAndBound's enclosure of L(0)
	// (ends), taken by keepStart instead of a pass of its own
	dl0Next [][]interval.I
	// recompute (bn_policy recompute, THEORY.md §2): the reference batch's
	// first-layer products and kinks, and the per-(α-interval, order)
	// enclosures of its statistics at every BatchNorm layer.
	recompute  bool
	refA, refB interval.Matrix
	refKink0   []bool
	refX       []float64 // the reference rows of the input, for start = 0
	statsMu    sync.Mutex
	stats      map[statsKey]*statsEntry
	// nestedBN: under recompute, the top-level blocks holding a BatchNorm
	// layer (at any depth), evaluated leaf by leaf (IntervalJetLeaves) so
	// that each nested BatchNorm takes its enclosed reference statistics
	nestedBN map[int]bool
	// backward: every layer after the cached one has a backward interval
	// rule (nn.IntervalBackward; a residual layer nn.IntervalBackwardBlock
	// with such sub-layers, none a block itself) and the policy is not
	// recompute: centredPass then also bounds the loss's jump term by the
	// gradient at the crossing units (jumpBackward)
	backward bool
	// carry: the plan of the carried second layer (carryPlan; nil: the
	// general passes), and carryRows the (leaf, example) rows whose
	// coefficients were computed
	carry     *carryPlan
	carryRows int
	// carryDerived counts the (leaf, example) rows whose coefficients were
	// derived from a parent leaf's (carryCoefFrom), carryUnits the units
	// they added
	carryDerived, carryUnits int
	// acc, when not nil, classifies the examples for the accuracy bounds
	// from every centredPass's output jets (accTap, acctap.go)
	acc *accTap
}

type statsKey struct {
	lo, hi float64
	order  int
}

type statsEntry struct {
	once sync.Once
	st   []*nn.IStats // per site (nn.Site.Index); nil except at BatchNorm layers
}

// NewIntervalPath prepares the interval twin of path p: it refuses a model
// with a layer that has no interval rule (nn.RuleInterval, the error naming
// the layer) and caches the first affine layer's products over the
// examples (and, under bn_policy recompute, over the reference batch).
func NewIntervalPath(p *functionspace.Path) (*IntervalPath, error) {
	e := &IntervalPath{p: p, chunks: subChunks(p.Chunks(), intervalChunk), notes: map[string]bool{}}
	if err := p.Model.Require(nn.RuleInterval); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	for _, l := range p.Model.Layers {
		e.layers = append(e.layers, l.(nn.IntervalLayer)) // checked by Require
	}
	e.jumps = p.Model.MayJump()
	e.scale = float64(p.N * p.Model.Spec.OutputDivisor(p.K)) // mse: the mean or the per-example sum over outputs (THEORY.md §11)
	// Find the first layer with parameters; everything before it is
	// constant in α. When it is a linear layer its products z = A + αB are
	// cached; otherwise (a batchnorm1d first, or no parameters at all)
	// every pass starts from the network input (start = 0).
	first := -1
	for i, l := range p.Model.Layers {
		if _, ok := l.(nn.AffineInAlpha); ok {
			first = i
			break
		}
		if len(l.Params()) > 0 {
			break
		}
	}
	e.start = first + 1
	_, d := p.X.Dims()
	if p.BNPolicy() == functionspace.BNRecompute {
		e.recompute, e.stats = true, map[statsKey]*statsEntry{}
		var missing []string
		_ = p.Model.WalkSites(func(s nn.Site, l nn.Layer) error {
			if _, ok := l.(nn.BatchStatistics); !ok || !strings.Contains(s.Key, ".") {
				return nil
			}
			if _, ok := p.Model.Layers[s.Top].(nn.IntervalBlock); !ok {
				missing = append(missing, s.Name+" ("+l.Type()+")")
				return nil
			}
			if e.nestedBN == nil {
				e.nestedBN = map[int]bool{}
			}
			e.nestedBN[s.Top] = true
			return nil
		})
		if missing != nil {
			return nil, fmt.Errorf("certificate: %w: BatchNorm inside a block without a per-sub-layer interval rule (nn.IntervalBlock): %s", ErrBNRecompute, strings.Join(missing, ", "))
		}
		r := p.BNReference()
		xs := make([]float64, 0, r*d)
		for i := 0; i < r; i++ {
			xs = append(xs, p.X.RawRowView(i)...)
		}
		e.refX = xs
		if first >= 0 {
			j := nn.NewConstIJet(r, d, xs, 0)
			for i := 0; i < first; i++ {
				j = e.layers[i].IntervalJet(nil, j)
			}
			e.refA, e.refB = p.Model.Layers[first].(nn.AffineInAlpha).ConstProducts(e.box(first, interval.Point(0)), j.V)
			e.refKink0 = j.Kink
		}
	}
	for _, ch := range e.chunks {
		n := ch[1] - ch[0]
		xs := make([]float64, 0, n*d)
		for r := ch[0]; r < ch[1]; r++ {
			xs = append(xs, p.X.RawRowView(r)...)
		}
		j := nn.NewConstIJet(n, d, xs, 0)
		if first < 0 {
			e.a = append(e.a, interval.Matrix{})
			e.b = append(e.b, interval.Matrix{})
			e.kink0 = append(e.kink0, nil)
			continue
		}
		for i := 0; i < first; i++ {
			j = e.layers[i].IntervalJet(nil, j)
		}
		box := e.box(first, interval.Point(0))
		a, b := p.Model.Layers[first].(nn.AffineInAlpha).ConstProducts(box, j.V)
		e.a = append(e.a, a)
		e.b = append(e.b, b)
		e.kink0 = append(e.kink0, j.Kink)
	}
	e.carry = newCarryPlan(e)
	e.backward = e.backwardApplies()
	e.keepKinked = p.Model.HasConvOrBlocks()
	e.patterns = e.patternsApply()
	if e.deadApplies() {
		for c := range e.chunks {
			e.dead = append(e.dead, e.deadLosses(c))
			e.deadSpan = append(e.deadSpan, e.deadSpans(c))
		}
	}
	return e, nil
}

// intervalChunk is the most examples an interval pass takes at once (0:
// the path's chunks, functionspace.Options.Chunk).
var intervalChunk = 0

// subChunks splits each chunk of cs into consecutive pieces of at most
// size examples (size ≤ 0: cs unchanged).
func subChunks(cs [][2]int, size int) [][2]int {
	if size <= 0 {
		return cs
	}
	var out [][2]int
	for _, c := range cs {
		for lo := c[0]; lo < c[1]; lo += size {
			out = append(out, [2]int{lo, min(lo+size, c[1])})
		}
	}
	return out
}

// box encloses layer i's parameters over alpha; every box of the path
// shares one cache of δ's point Weights (nn.ParamBox.Line).
func (e *IntervalPath) box(i int, alpha interval.I) *nn.ParamBox {
	b := nn.NewParamBox(e.p.Model.LayerParams(e.p.Theta0, i), e.p.Model.LayerParams(e.p.Delta, i), alpha)
	b.Line = &e.line
	return b
}

// pass encloses the per-example ℓ, ℓ′, ℓ″ of chunk c over α ∈ alpha, with
// the parameter boxes of every layer after the cached one.
func (e *IntervalPath) pass(c int, alpha interval.I, boxes []*nn.ParamBox, order int) (l, dl, d2l []interval.I, kink, jump []bool) {
	return e.passRows(c, alpha, boxes, order, nil)
}

// passRows is pass on the rows of chunk c listed in rows (chunk-local,
// increasing; nil: every row), results in that order. Every layer acts on
// each example alone (BatchNorm under recompute takes the reference
// batch's statistics, refStats), so a row's enclosures do not depend on
// which other rows are in the pass.
func (e *IntervalPath) passRows(c int, alpha interval.I, boxes []*nn.ParamBox, order int, rows []int32) (l, dl, d2l []interval.I, kink, jump []bool) {
	ch := e.chunks[c]
	j := e.jet(c, alpha, boxes, order, rows)
	t := e.p.Targets.Rows(ch[0], ch[1])
	if rows != nil {
		t = subTargets(t, rows)
	}
	l, dl, d2l = nn.LossEnclosure(e.p.Model.Spec.Loss, j, t)
	e.mu.Lock()
	e.evals++
	e.mu.Unlock()
	jump = j.Jump
	if jump == nil {
		jump = make([]bool, len(l))
	}
	return l, dl, d2l, j.Kink, jump
}

// subTargets returns the targets of the given rows of t.
func subTargets(t nn.Targets, rows []int32) nn.Targets {
	if t.Values != nil {
		_, k := t.Values.Dims()
		v := mat.NewDense(max(len(rows), 1), k, nil)
		for i, r := range rows {
			v.SetRow(i, t.Values.RawRowView(int(r)))
		}
		if len(rows) == 0 {
			return nn.Targets{Values: v.Slice(0, 0, 0, k).(*mat.Dense)}
		}
		return nn.Targets{Values: v}
	}
	lb := make([]int, len(rows))
	for i, r := range rows {
		lb[i] = t.Labels[r]
	}
	return nn.Targets{Labels: lb}
}

// subRows returns the given rows of m (a copy).
func subRows(m interval.Matrix, rows []int32) interval.Matrix {
	out := interval.NewMatrix(len(rows), m.Cols)
	for i, r := range rows {
		lo, hi := m.Row(int(r))
		copy(out.Lo[i*m.Cols:(i+1)*m.Cols], lo)
		copy(out.Hi[i*m.Cols:(i+1)*m.Cols], hi)
	}
	return out
}

// jet encloses the output path of chunk c over α ∈ alpha: γ, and with
// order ≥ 1 γ′, with order 2 γ″ (nn.IJet), with the parameter boxes of
// every layer after the cached one; on the listed rows of the chunk only
// (nil: all).
func (e *IntervalPath) jet(c int, alpha interval.I, boxes []*nn.ParamBox, order int, rows []int32) *nn.IJet {
	return e.jetHook(c, alpha, boxes, order, rows, nil, nil)
}

// jetHook is jet, with after (when not nil) applied to the output of every
// layer i (the cached layer's included) and sub (when not nil) to the
// output of every sub-layer k of branch b of a residual layer i
// (nn.IntervalBlock): each may return a tighter enclosure of
// the same jet (centredForm).
func (e *IntervalPath) jetHook(c int, alpha interval.I, boxes []*nn.ParamBox, order int, rows []int32, after func(i int, j *nn.IJet) *nn.IJet, sub func(i, b, k int, j *nn.IJet) *nn.IJet) *nn.IJet {
	return e.jetRec(c, alpha, boxes, order, rows, after, sub, nil)
}

// jetRec is jetHook with rec (when not nil) called with every layer i ≥
// start (b = k = −1) and, inside a residual layer i (nn.IntervalBlock),
// every sub-layer k of branch b, its parameter box and the input its
// interval rule is about to read (after the hooks' tightening): the
// certificate's backward jump term records its tapes from them
// (nn.IntervalBackward). Not under bn_policy recompute (the backward term
// is not used there: the jets carry no jump term).
func (e *IntervalPath) jetRec(c int, alpha interval.I, boxes []*nn.ParamBox, order int, rows []int32, after func(i int, j *nn.IJet) *nn.IJet, sub func(i, b, k int, j *nn.IJet) *nn.IJet, rec func(i, b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet)) *nn.IJet {
	return e.jetCarry(c, alpha, boxes, order, rows, after, sub, rec, nil, nil)
}

// jetCarry is jetRec; where the path has a carried second layer (carry)
// the dense layer after the first activation is enclosed from the fixed
// units' quadratic over a leaf ab ⊇ alpha (cf, computed over alpha when
// nil; its rows must include rows) and the crossing units' rank-one terms
// (carryJet) instead of its interval rule over the parameter box; the
// hooks see the same layers' outputs as in jetRec. With lean (carryLean;
// also when after and rec are both nil) the first affine layer and the
// first activation are enclosed only at the units the coefficients list as
// crossing (carryFirst, the only ones the carry reads; the same entries
// and Kink flags bit for bit), and after is then not called for those two
// layers (nor rec; lean with rec set is not used).
func (e *IntervalPath) jetCarry(c int, alpha interval.I, boxes []*nn.ParamBox, order int, rows []int32, after func(i int, j *nn.IJet) *nn.IJet, sub func(i, b, k int, j *nn.IJet) *nn.IJet, rec func(i, b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet), cf *carryCoef, lean *carryLean) *nn.IJet {
	if lean == nil && after == nil && rec == nil {
		lean = &carryLean{}
	}
	if after == nil {
		after = func(_ int, j *nn.IJet) *nn.IJet { return j }
	}
	var st []*nn.IStats // recompute: the reference statistics per site
	if e.recompute {
		st = e.refStats(alpha, boxes, order)
	}
	apply := func(i int, j *nn.IJet) *nn.IJet {
		var hook func(b, k int, j *nn.IJet) *nn.IJet
		if sub != nil {
			hook = func(b, k int, j *nn.IJet) *nn.IJet { return sub(i, b, k, j) }
		}
		if st != nil && e.nestedBN[i] {
			site := e.p.Model.FirstSite(i)
			return e.layers[i].(nn.IntervalBlock).IntervalJetLeaves(boxes[i], j, e.statsLeaf(st, &site, false), hook)
		}
		if b, ok := e.p.Model.Layers[i].(nn.BatchStatistics); ok && st != nil {
			return b.IntervalJetStats(boxes[i], st[e.p.Model.FirstSite(i)], j)
		}
		if rec != nil && st == nil {
			if r, ok := e.layers[i].(nn.IntervalBlock); ok {
				return r.IntervalJetLeaves(boxes[i], j, func(b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet) *nn.IJet {
					rec(i, b, k, l, box, in)
					return l.(nn.IntervalLayer).IntervalJet(box, in)
				}, hook)
			}
			rec(i, -1, -1, e.p.Model.Layers[i], boxes[i], j)
		}
		if r, ok := e.layers[i].(nn.IntervalBlock); ok && hook != nil {
			return r.IntervalJetHook(boxes[i], j, hook)
		}
		return e.layers[i].IntervalJet(boxes[i], j)
	}
	ch := e.chunks[c]
	var j *nn.IJet
	if e.start == 0 { // no cached linear layer: from the network input
		_, d := e.p.X.Dims()
		xs := make([]float64, 0, (ch[1]-ch[0])*d)
		n := ch[1] - ch[0]
		if rows == nil {
			for r := ch[0]; r < ch[1]; r++ {
				xs = append(xs, e.p.X.RawRowView(r)...)
			}
		} else {
			n = len(rows)
			for _, r := range rows {
				xs = append(xs, e.p.X.RawRowView(ch[0]+int(r))...)
			}
		}
		j = nn.NewConstIJet(n, d, xs, order)
		for i := range e.layers {
			j = after(i, apply(i, j))
		}
		if j.Const { // no parameters at all: a constant path
			j.Const = false
			j.Order = order
			j.D1 = interval.NewMatrix(j.N, j.D)
			j.D2 = interval.NewMatrix(j.N, j.D)
		}
	} else {
		k0 := e.kink0[c]
		if rows != nil && k0 != nil {
			sk := make([]bool, len(rows))
			for i, r := range rows {
				sk[i] = k0[r]
			}
			k0 = sk
		}
		from := e.start
		var act nn.UnitInterval
		if e.carry != nil {
			act, _ = e.layers[e.carry.act].(nn.UnitInterval)
		}
		if pl := e.carry; pl != nil && lean != nil && rec == nil && act != nil && !noLean {
			// the first activation at the crossing units only (carryFirst)
			if cf == nil {
				cf = e.carryCoef(c, alpha, rows)
			}
			h := e.carryFirst(act, c, cf, alpha, order, rows, k0, lean.start)
			j = after(pl.dense, e.carryJetH1(cf, alpha, order, rows, h))
			for i := pl.dense + 1; i < len(e.layers); i++ {
				j = after(i, apply(i, j))
			}
			return j
		}
		a, b := e.a[c], e.b[c]
		if rows != nil {
			a, b = subRows(a, rows), subRows(b, rows)
		}
		j = after(e.start-1, nn.AffineIJet(a, b, alpha, order, k0))
		if pl := e.carry; pl != nil {
			if rec != nil {
				rec(pl.act, -1, -1, e.p.Model.Layers[pl.act], boxes[pl.act], j)
			}
			h1 := after(pl.act, e.layers[pl.act].IntervalJet(boxes[pl.act], j))
			if rec != nil {
				rec(pl.dense, -1, -1, e.p.Model.Layers[pl.dense], boxes[pl.dense], h1)
			}
			if cf == nil {
				cf = e.carryCoef(c, alpha, rows)
			}
			j = after(pl.dense, e.carryJet(cf, alpha, order, rows, h1))
			from = pl.dense + 1
		}
		for i := from; i < len(e.layers); i++ {
			j = after(i, apply(i, j))
		}
	}
	return j
}

// refStats encloses, under bn_policy recompute, the reference batch's
// statistics at every BatchNorm layer over α ∈ alpha (THEORY.md §2, §7):
// the reference rows [0, BNReference) go through the layers with interval
// jets of the given order, each BatchNorm layer taking the statistics of
// its reference input (nn.IntervalBatchStats) and normalising the
// reference rows with them (nn.BatchNorm.IntervalJetStats), as
// functionspace's reference pass does in float64. boxes must be
// e.boxes(alpha); the result is computed once per (alpha, order) and shared
// by every chunk's pass.
func (e *IntervalPath) refStats(alpha interval.I, boxes []*nn.ParamBox, order int) []*nn.IStats {
	k := statsKey{alpha.Lo, alpha.Hi, order}
	e.statsMu.Lock()
	en := e.stats[k]
	if en == nil {
		en = &statsEntry{}
		e.stats[k] = en
	}
	e.statsMu.Unlock()
	en.once.Do(func() {
		last := -1
		_ = e.p.Model.WalkSites(func(s nn.Site, l nn.Layer) error {
			if _, ok := l.(nn.BatchStatistics); ok {
				last = s.Top
			}
			return nil
		})
		st := make([]*nn.IStats, e.p.Model.FirstSite(len(e.layers)))
		var j *nn.IJet
		if e.start == 0 {
			_, d := e.p.X.Dims()
			j = nn.NewConstIJet(len(e.refX)/max(d, 1), d, e.refX, order)
		} else {
			j = nn.AffineIJet(e.refA, e.refB, alpha, order, e.refKink0)
		}
		for i := e.start; i <= last; i++ {
			site := e.p.Model.FirstSite(i)
			if b, ok := e.p.Model.Layers[i].(nn.BatchStatistics); ok {
				st[site] = b.IntervalStats(j)
				j = b.IntervalJetStats(boxes[i], st[site], j)
				continue
			}
			if e.nestedBN[i] {
				j = e.layers[i].(nn.IntervalBlock).IntervalJetLeaves(boxes[i], j, e.statsLeaf(st, &site, true), nil)
				continue
			}
			j = e.layers[i].IntervalJet(boxes[i], j)
		}
		en.st = st
	})
	return en.st
}

// statsLeaf is the rule for the sub-layers of a block holding BatchNorm
// (IntervalJetLeaves) under the recompute policy: a nested block
// descends, a BatchNorm normalises with the enclosed reference statistics
// of its site, any other layer is its own interval rule. In the reference
// pass (enclose) each BatchNorm first encloses its reference input's
// statistics into st at its site; in the examples' pass it reads them
// (a site without statistics, st[s] nil, keeps its own rule). *site is
// the site of the next leaf; it advances leaf by leaf (a block's body
// before its shortcut, nn.Model.WalkSites' order).
func (e *IntervalPath) statsLeaf(st []*nn.IStats, site *int, enclose bool) func(b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet) *nn.IJet {
	var leaf func(b, k int, l nn.Layer, box *nn.ParamBox, in *nn.IJet) *nn.IJet
	leaf = func(_, _ int, l nn.Layer, box *nn.ParamBox, in *nn.IJet) *nn.IJet {
		if blk, ok := l.(nn.IntervalBlock); ok {
			return blk.IntervalJetLeaves(box, in, leaf, nil)
		}
		s := *site
		*site++
		if bn, ok := l.(nn.BatchStatistics); ok {
			if enclose {
				st[s] = bn.IntervalStats(in)
			}
			if st[s] != nil {
				return bn.IntervalJetStats(box, st[s], in)
			}
		}
		return l.(nn.IntervalLayer).IntervalJet(box, in)
	}
	return leaf
}

// leafBoxes is boxes without the carried dense layer's box (carryPlan:
// its passes do not read it; nil there), for the passes of evalLeaves and
// the accuracy bounds: building the box of a 1024×1024 layer was a
// quarter of the certificate's CPU at 50 examples. A rule that needs it
// builds it (boxAt).
func (e *IntervalPath) leafBoxes(alpha interval.I) []*nn.ParamBox {
	if e.carry == nil {
		return e.boxes(alpha)
	}
	bs := make([]*nn.ParamBox, len(e.layers))
	for i := e.start; i < len(e.layers); i++ {
		if i != e.carry.dense {
			bs[i] = e.box(i, alpha)
		}
	}
	return bs
}

// boxAt returns bs[i], or layer i's box over alpha when bs[i] is nil
// (leafBoxes).
func (e *IntervalPath) boxAt(bs []*nn.ParamBox, i int, alpha interval.I) *nn.ParamBox {
	if bs[i] != nil {
		return bs[i]
	}
	return e.box(i, alpha)
}

func (e *IntervalPath) boxes(alpha interval.I) []*nn.ParamBox {
	bs := make([]*nn.ParamBox, len(e.layers))
	for i := e.start; i < len(e.layers); i++ {
		bs[i] = e.box(i, alpha)
	}
	return bs
}

// chunkResult is one chunk's contribution to a leaf.
type chunkResult struct {
	dl, lc, dlc interval.I
	lr          interval.I // Σ_i ℓ_i over [a, b]
	jump        bool       // some example may jump on [a, b]
	integral    float64    // upper bound on Σ_i ∫ ℓ_i′ (unscaled)
	smooth      int
	// upper lines of Σ_i ℓ_i′ (unscaled; Leaf.Rise): at the midpoint c,
	// Σ ℓ_i′(c + t) ≤ dc + mr·t and Σ ℓ_i′(c − t) ≤ dc + ml·t for t ≥ 0;
	// at the ends, Σ ℓ_i′(1 − t) ≤ d1 + m1·t (b = 1) and Σ ℓ_i′(t) ≤
	// d0 + m0·t (a = 0, with ℓ′(0) known), else NaN.
	dc, mr, ml, d1, m1, d0, m0 float64
}

// leafChunk encloses Σ_i ℓ_i′ over [a, b] for chunk c: per example the
// first-order enclosure, intersected where the example is smooth on [a, b]
// with the mean-value forms ℓ′(c) + ℓ″([a,b])·([a,b] − c) centred at the
// midpoint and, when b = 1, at 1 (THEORY.md §7); and an upper bound on
// Σ_i ∫_a^b ℓ_i′: per example min((b − a)·sup ℓ_i′, (b−a)·ℓ_i′(c) +
// M_i(b−c)²/2 − m_i(c−a)²/2) with ℓ_i″ ∈ [m_i, M_i] (smooth examples only).
//
// With parent (the kept rows of the leaf [a, b] was split from, for chunk
// c), the interval pass over [a, b] runs only on the other rows; a kept
// row takes the parent's enclosures of ℓ_i′, ℓ_i″ and ℓ_i over the parent
// leaf, which hold over [a, b] (inclusion monotonicity), with the
// midpoint pass's ℓ_i′(c) in the same mean-value forms. With drop set,
// the rows settled here (sup ℓ_i′ ≤ 0, smooth: no kink, no jump) are returned as kept.
func (e *IntervalPath) leafChunk(c int, a, b, mid float64, bi, bc []*nn.ParamBox, parent *chunkKeep, drop bool) (chunkResult, *chunkKeep) {
	ab := interval.I{Lo: a, Hi: b}
	var lr, dl, d2l, lc, dlc, dk []interval.I
	var kink, jump []bool
	n := e.chunks[c][1] - e.chunks[c][0]
	var dead []bool
	nDead := 0
	if e.dead != nil { // rows dead on the whole leaf: ℓ_i constant, ℓ_i′ = ℓ_i″ = 0 exactly, no pass
		dead, nDead = e.deadRows(c, a, b)
		e.mu.Lock()
		e.deadRowN += nDead
		e.mu.Unlock()
	}
	if parent != nil && !e.keepKinked {
		parent = smoothKept(parent)
	}
	if (parent == nil || len(parent.rows) == 0) && nDead == 0 {
		lr, dl, d2l, kink, jump, lc, dlc, dk = e.centredPass(c, ab, mid, bi, bc, nil)
	} else {
		lr, dl, d2l = make([]interval.I, n), make([]interval.I, n), make([]interval.I, n)
		kink, jump = make([]bool, n), make([]bool, n)
		kept := 0
		if parent != nil {
			kept = len(parent.rows)
		}
		e.mu.Lock()
		e.rowsReused += kept
		e.mu.Unlock()
		rest := make([]int32, 0, n)
		q := 0
		for i := 0; i < n; i++ {
			if q < kept && int(parent.rows[q]) == i {
				lr[i], dl[i], d2l[i], kink[i] = parent.l[q], parent.dl[q], parent.d2l[q], parent.kink[q]
				q++
				continue
			}
			if dead != nil && dead[i] {
				lr[i] = e.dead[c][i] // dl[i], d2l[i]: the zero interval
				continue
			}
			rest = append(rest, int32(i))
		}
		if nDead == n { // the whole chunk is dead: L(c) constant, L′(c) = 0
			lc, dlc = e.dead[c], make([]interval.I, n)
		} else if len(rest) > 0 {
			var pl, pdl, pd2l, pdk, plc, pdlc []interval.I
			var pk, pj []bool
			// with kept rows, the midpoint's pass runs on the other rows only
			// (issue 13: it was about a third of a leaf's CPU on every row)
			sub := kept > 0 && !e.midAllRows && e.acc == nil && e.carry == nil
			pl, pdl, pd2l, pk, pj, plc, pdlc, pdk = e.centredPassSub(c, ab, mid, bi, bc, rest, sub)
			lc, dlc = plc, pdlc
			if sub {
				lc, dlc = make([]interval.I, n), make([]interval.I, n)
				for t, i := range rest {
					lc[i], dlc[i] = plc[t], pdlc[t]
				}
				for q, i := range parent.rows {
					lc[i], dlc[i] = keptAtMid(parent, q, mid)
				}
				if dead != nil {
					for i := range dead {
						if dead[i] { // ℓ_i constant on the leaf, ℓ_i′ = 0 exactly
							lc[i], dlc[i] = e.dead[c][i], interval.Point(0)
						}
					}
				}
			}
			if pdk != nil {
				// dead rows are not kinked (dk unused there); a kept row
				// may be (keepKinked), and has no jump term about this
				// leaf's midpoint: an empty dk keeps the slope form off it
				dk = make([]interval.I, n)
				for i := range dk {
					dk[i] = interval.I{Lo: math.NaN(), Hi: math.NaN()}
				}
			}
			for t, i := range rest {
				lr[i], dl[i], d2l[i], kink[i], jump[i] = pl[t], pdl[t], pd2l[t], pk[t], pj[t]
				if pdk != nil {
					dk[i] = pdk[t]
				}
			}
		} else if kept > 0 && !e.midAllRows {
			// every row kept or dead: no pass at all
			lc, dlc = make([]interval.I, n), make([]interval.I, n)
			for q, i := range parent.rows {
				lc[i], dlc[i] = keptAtMid(parent, q, mid)
			}
			for i := range dead {
				if dead[i] {
					lc[i], dlc[i] = e.dead[c][i], interval.Point(0)
				}
			}
		} else {
			lc, dlc, _, _, _ = e.pass(c, interval.Point(mid), bc, 1)
		}
	}
	// crit: the slope at the midpoint that keepKinkedRow compares a kept
	// row's sup ℓ_i′ with (its dlc: ℓ_i′ at the midpoint of the leaf it was
	// settled on, not the enclosure keptAtMid gives here, which would drop
	// it again); nil: dlc
	var crit []interval.I
	if parent != nil && !e.midAllRows {
		crit = make([]interval.I, n)
		copy(crit, dlc)
		for q, i := range parent.rows {
			crit[i] = parent.dlc[q]
		}
	}
	if e.patterns && b == 1 && e.dl1 != nil { // kinks only at α = 1: the pattern on [a, 1) (endPatternDL)
		var cand []int32
		for i := range dl {
			if kink[i] && !jump[i] && !(dl[i].Hi <= 0) {
				cand = append(cand, int32(i))
			}
		}
		if len(cand) > 0 {
			for t, d := range e.endPatternDL(c, a, bi, cand, e.dl1[c]) {
				i := cand[t]
				if x := interval.Intersect(dl[i], d); x.Lo <= x.Hi {
					dl[i] = x
				}
			}
		}
	}
	if e.patterns { // kinked examples not settled: the hull over the first ReLU's patterns
		var cand []int32
		for i := range dl {
			if kink[i] && !jump[i] && !(dl[i].Hi <= 0) {
				cand = append(cand, int32(i))
			}
		}
		if len(cand) > 0 {
			for t, d := range e.kinkPatternDL(c, a, b, bi, cand) {
				i := cand[t]
				if x := interval.Intersect(dl[i], d); x.Lo <= x.Hi {
					dl[i] = x
				}
			}
		}
	}
	var keep *chunkKeep
	if drop {
		keep = &chunkKeep{mid: mid}
	}
	w := interval.Sub(interval.Point(b), interval.Point(a))
	off := interval.Sub(ab, interval.Point(mid))
	right := interval.Sqr(interval.Sub(interval.Point(b), interval.Point(mid)))
	left := interval.Sqr(interval.Sub(interval.Point(mid), interval.Point(a)))
	var r chunkResult
	r.dl, r.lc, r.dlc, r.lr = interval.Point(0), interval.Point(0), interval.Point(0), interval.Point(0)
	var d1, d0 []interval.I
	if b == 1 {
		d1 = e.dl1[c]
	}
	if a == 0 && e.dl0 != nil {
		d0 = e.dl0[c]
	}
	r.d1, r.m1, r.d0, r.m0 = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if d1 != nil {
		r.d1, r.m1 = 0, 0
	}
	if d0 != nil {
		r.d0, r.m0 = 0, 0
	}
	intSum := 0.0
	for i := range dl {
		enc := dl[i]
		if kink[i] && !jump[i] && dk != nil && d2l[i].Valid() && dk[i].Valid() && dlc[i].Valid() {
			// the slope form across kinks (nn.LossEnclosureDK): ℓ_i′(α) ∈
			// ℓ_i′(c) + d2l_i·(α − c) + dk_i
			if x := interval.Intersect(enc, interval.Add(interval.Add(dlc[i], interval.Mul(d2l[i], off)), dk[i])); x.Lo <= x.Hi {
				enc = x
			}
		}
		up := interval.Mul(w, enc).Hi
		if !kink[i] && d2l[i].Valid() {
			mv := interval.Add(dlc[i], interval.Mul(d2l[i], off))
			enc = interval.Intersect(enc, mv)
			if d1 != nil {
				enc = interval.Intersect(enc, interval.Add(d1[i], interval.Mul(d2l[i], interval.Sub(ab, interval.Point(1)))))
			}
			t := interval.Add(interval.Mul(w, dlc[i]), interval.Add(
				interval.Scale(0.5, interval.Mul(interval.Point(d2l[i].Hi), right)),
				interval.Scale(-0.5, interval.Mul(interval.Point(d2l[i].Lo), left))))
			up = min(interval.Mul(w, enc).Hi, t.Hi)
			r.smooth++
		}
		if !(enc.Lo <= enc.Hi) { // empty intersection can only come from NaN; fall back
			enc = dl[i]
			up = interval.Mul(w, enc).Hi
		}
		if !(enc.Lo <= enc.Hi) || math.IsNaN(up) {
			// NaN in the first-order enclosure itself (e.g. inf − inf in
			// the loss over very wide activations, as recompute's enclosed
			// statistics can give): no information, never "≤ 0".
			enc = interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
			up = math.Inf(1)
		}
		if !kink[i] && d2l[i].Valid() && dlc[i].Valid() {
			// ℓ_i′(c ± t) ≤ ℓ_i′(c) + t·sup(±ℓ_i″); at 1: ℓ_i′(1 − t) ≤
			// ℓ_i′(1) − t·inf ℓ_i″; at 0: ℓ_i′(t) ≤ ℓ_i′(0) + t·sup ℓ_i″
			r.dc, r.mr, r.ml = upAdd(r.dc, dlc[i].Hi), upAdd(r.mr, d2l[i].Hi), upAdd(r.ml, -d2l[i].Lo)
			if d1 != nil {
				r.d1, r.m1 = upAdd(r.d1, d1[i].Hi), upAdd(r.m1, -d2l[i].Lo)
			}
			if d0 != nil {
				r.d0, r.m0 = upAdd(r.d0, d0[i].Hi), upAdd(r.m0, d2l[i].Hi)
			}
		} else {
			// kinked: the constant sup ℓ_i′ over the leaf
			r.dc, r.d1, r.d0 = upAdd(r.dc, enc.Hi), upAdd(r.d1, enc.Hi), upAdd(r.d0, enc.Hi)
		}
		cr := dlc[i]
		if crit != nil {
			cr = crit[i]
		}
		if keep != nil && enc.Hi <= 0 && enc.Lo <= enc.Hi && !jump[i] && lr[i].Valid() && ((!kink[i] && d2l[i].Valid()) || e.keepKinkedRow(kink[i], enc, cr)) {
			keep.rows = append(keep.rows, int32(i))
			keep.dl, keep.d2l, keep.l = append(keep.dl, enc), append(keep.d2l, d2l[i]), append(keep.l, lr[i])
			keep.kink = append(keep.kink, kink[i] || !d2l[i].Valid())
			keep.dlc = append(keep.dlc, cr)
			keep.lc, keep.dlcm = append(keep.lc, lc[i]), append(keep.dlcm, dlc[i])
		}
		intSum = interval.Up(intSum + up)
		r.lr = interval.Add(r.lr, lr[i])
		r.jump = r.jump || jump[i]
		r.dl = interval.Add(r.dl, enc)
		r.lc = interval.Add(r.lc, lc[i])
		r.dlc = interval.Add(r.dlc, dlc[i])
	}
	r.integral = intSum
	return r, keep
}

// keepKinkedFrac is how close to its slope at the midpoint a kinked
// settled example's sup ℓ_i′ over a leaf must be for it to drop out of
// the leaf's children (keepKinkedRow): sup ℓ_i′ ≤ keepKinkedFrac·ℓ_i′(c).
// A kept kinked example keeps its first-order enclosure in every
// descendant, so a child loses at most (1 − keepKinkedFrac)·|ℓ_i′(c)| of
// the negative slope its own pass could have proven for it.
var keepKinkedFrac = 0.5

// keepKinkedRow reports whether an example kinked on a leaf, with sup
// ℓ_i′ ≤ 0 there (enc, checked by the caller) and ℓ_i′ at the leaf's
// midpoint in dlc, is kept for the leaf's children (keepKinked). Its
// children use enc over the parent leaf as its first-order enclosure
// (inclusion monotonicity) and no mean-value or slope form (the kept kink
// flag; leafChunk gives kept rows no jump term).
func (e *IntervalPath) keepKinkedRow(kink bool, enc, dlc interval.I) bool {
	return e.keepKinked && kink && dlc.Valid() && enc.Hi <= keepKinkedFrac*dlc.Hi
}

// smoothKept returns the smooth rows of k (the kept rows a child reuses
// once keepKinked is off: the others are evaluated again), nil when none.
func smoothKept(k *chunkKeep) *chunkKeep {
	out := &chunkKeep{mid: k.mid}
	for q, r := range k.rows {
		if !k.kink[q] {
			out.rows, out.kink = append(out.rows, r), append(out.kink, false)
			out.dl, out.d2l, out.l, out.dlc = append(out.dl, k.dl[q]), append(out.d2l, k.d2l[q]), append(out.l, k.l[q]), append(out.dlc, k.dlc[q])
			if k.lc != nil {
				out.lc, out.dlcm = append(out.lc, k.lc[q]), append(out.dlcm, k.dlcm[q])
			}
		}
	}
	if len(out.rows) == 0 {
		return nil
	}
	return out
}

// chunkKeep is one chunk's part of keptRows.
type chunkKeep struct {
	rows       []int32
	dl, d2l, l []interval.I
	kink       []bool
	// dlc: ℓ_i′ at the midpoint of the leaf the row was settled on (the
	// children's keepKinkedRow criterion, and the diagnostics' measure of
	// how close sup ℓ_i′ is to it, TestResNetDropSettled)
	dlc []interval.I
	// lc, dlcm: ℓ_i and ℓ_i′ at mid, the midpoint of the leaf that kept
	// the rows (enclosures; keptAtMid)
	lc, dlcm []interval.I
	mid      float64
}

// keptAtMid encloses ℓ_i(c) and ℓ_i′(c) of kept row q of k at c, the
// midpoint of a leaf inside the one whose bounds k holds (leafChunk: the
// child's midpoint pass skips kept rows). ℓ_i is continuous and piecewise
// smooth on that leaf (a kept row may not jump), so ℓ_i(c) − ℓ_i(k.mid) =
// ∫ ℓ_i′ ∈ (c − k.mid)·k.dl[q] (k.dl[q] encloses ℓ_i′ wherever it exists on
// the leaf), intersected with k.l[q], ℓ_i over the leaf (inclusion
// monotonicity); ℓ_i′(c) ∈ k.dl[q], intersected for a smooth row with the
// mean-value form k.dlcm[q] + k.d2l[q]·(c − k.mid). Wider than the point
// pass's enclosures by about |c − k.mid|·width(k.dl[q]) (docs/soundness.md,
// "leafcost round").
func keptAtMid(k *chunkKeep, q int, c float64) (lc, dlc interval.I) {
	lc, dlc = k.l[q], k.dl[q]
	h := interval.Sub(interval.Point(c), interval.Point(k.mid))
	if k.lc != nil {
		if x := interval.Intersect(lc, interval.Add(k.lc[q], interval.Mul(h, k.dl[q]))); x.Lo <= x.Hi {
			lc = x
		}
	}
	if !k.kink[q] && k.d2l[q].Valid() && k.dlcm != nil {
		if x := interval.Intersect(dlc, interval.Add(k.dlcm[q], interval.Mul(h, k.d2l[q]))); x.Lo <= x.Hi {
			dlc = x
		}
	}
	return lc, dlc
}

// upAdd returns s + x rounded up; a sum with a zero operand is exact.
// NaN (a form that does not apply) propagates.
func upAdd(s, x float64) float64 {
	if s == 0 || x == 0 {
		return s + x
	}
	return interval.Up(s + x)
}

// posInt returns an upper bound on ∫_0^w max(0, d + m·t) dt for w ≥ 0
// (rounded up; +Inf for NaN): the integral of the positive part of an
// upper line d + m·t of L′. It is non-decreasing in d, m and w, so upper
// bounds of them may be passed.
func posInt(d, m, w float64) float64 {
	switch {
	case math.IsNaN(d) || math.IsNaN(m) || math.IsNaN(w) || math.IsInf(d, 1) || math.IsInf(m, -1):
		return math.Inf(1)
	case d <= 0 && m <= 0:
		return 0
	case m == 0:
		return interval.Up(w * d)
	case d >= 0 && m > 0:
		return interval.Up(interval.Up(w*d) + interval.Up(0.5*interval.Up(m*interval.Up(w*w))))
	case d > 0: // m < 0: positive on [0, d/|m|]
		return min(interval.Up(w*d), interval.Up(interval.Up(d*d)/interval.Down(-2*m)))
	default: // d < 0 < m: positive beyond −d/m, if that is below w
		e := interval.Up(d + interval.Up(m*w))
		if e <= 0 {
			return 0
		}
		return min(interval.Up(w*e), interval.Up(interval.Up(e*e)/interval.Down(2*m)))
	}
}

// keepStart encloses and keeps per-example ℓ′(0), for the endpoint-centred
// form at α = 0 (Leaf.Rise); one pass over the examples.
func (e *IntervalPath) keepStart() {
	if e.dl0Next != nil { // enclosed with L(0) (ends): the same pass
		e.dl0, e.dl0Next = e.dl0Next, nil
		return
	}
	bs := e.boxes(interval.Point(0))
	e.dl0 = nil
	for c := range e.chunks {
		_, dl := e.pointChunk(c, 0, bs, 1)
		e.dl0 = append(e.dl0, dl)
	}
}

func (e *IntervalPath) scaleI(x interval.I) interval.I {
	r := interval.I{Lo: interval.Down(x.Lo / e.scale), Hi: interval.Up(x.Hi / e.scale)}
	// 0/scale is exact: a bound of 0 stays 0 (L′ ≤ 0 stays settled)
	if x.Lo == 0 {
		r.Lo = 0
	}
	if x.Hi == 0 {
		r.Hi = 0
	}
	return r
}

// fanOut runs f(k, c) for every k in [0, n) and every chunk c in [0, nc) on
// max(workers, 1) goroutines, handing the tasks out k-major. With a non-nil
// ctx it stops handing them out once ctx ends and returns ctx.Err() (the
// tasks already started finish first); otherwise it returns nil. The callers
// (leaf passes, probes, point enclosures) write each task's result to its own
// slot, so the order the workers finish in never changes a sum.
func fanOut(ctx context.Context, workers, n, nc int, f func(k, c int)) error {
	type task struct{ k, c int }
	tasks := make(chan task)
	var wg sync.WaitGroup
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				f(t.k, t.c)
			}
		}()
	}
	var err error
loop:
	for k := 0; k < n; k++ {
		for c := 0; c < nc; c++ {
			if ctx != nil {
				if err = ctx.Err(); err != nil {
					break loop
				}
			}
			tasks <- task{k, c}
		}
	}
	close(tasks)
	wg.Wait()
	return err
}

// releaseParents releases the kept rows of the split parents of ls (their
// children replace them): keptTotal no longer counts them. Idempotent.
// BranchAndBound releases those of a whole round before evaluating it in
// sub-batches, so that the leaf-order cap on kept rows (maxKeptRows) makes
// the decisions of one batch of the whole round.
func (e *IntervalPath) releaseParents(ls []*Leaf) {
	for _, l := range ls {
		if l.parent != nil && !l.parent.released {
			e.keptTotal -= l.parent.examples
			l.parent.released = true
		}
	}
}

// evalLeaves evaluates leaves concurrently over (leaf, chunk) tasks.
func (e *IntervalPath) evalLeaves(ctx context.Context, ls []*Leaf, workers int) error {
	if e.outputsOnly {
		return ctx.Err()
	}
	nc := len(e.chunks)
	res := make([][]chunkResult, len(ls))
	keeps := make([][]*chunkKeep, len(ls))
	// The parameter boxes (θ0 + αδ enclosed per entry, over the leaf and at
	// its midpoint) are built by the first worker that takes one of the
	// leaf's chunks, shared by its other chunks (with the Weights each box
	// caches, nn.ParamBox.BoxWeights) and dropped after its last chunk:
	// on a 1024-wide MLP at 50 examples building them was ~45% of the
	// certificate's CPU (issue 12), and holding every leaf's boxes of a
	// batch at once was ~1 GiB for 32 leaves.
	type leafBoxes struct {
		once   sync.Once
		bi, bc []*nn.ParamBox
		left   atomic.Int32 // chunks not yet evaluated
	}
	lb := make([]*leafBoxes, len(ls))
	for k := range ls {
		res[k] = make([]chunkResult, nc)
		keeps[k] = make([]*chunkKeep, nc)
		lb[k] = &leafBoxes{}
		lb[k].left.Store(int32(nc))
	}
	err := fanOut(ctx, workers, len(ls), nc, func(tl, tc int) {
		l, b := ls[tl], lb[tl]
		b.once.Do(func() {
			b.bi = e.leafBoxes(interval.I{Lo: l.A, Hi: l.B})
			b.bc = e.leafBoxes(interval.Point(0.5*l.A + 0.5*l.B))
		})
		var parent *chunkKeep
		if l.parent != nil {
			parent = l.parent.chunks[tc]
		}
		res[tl][tc], keeps[tl][tc] = e.leafChunk(tc, l.A, l.B, 0.5*l.A+0.5*l.B, b.bi, b.bc, parent, e.dropSettled)
		if b.left.Add(-1) == 0 {
			b.bi, b.bc = nil, nil // the leaf's last chunk: its boxes may go
		}
	})
	if err != nil {
		return err
	}
	e.releaseParents(ls)
	for _, l := range ls {
		l.parent = nil
	}
	for k, l := range ls {
		if e.dropSettled { // in leaf order: the same leaves keep rows whatever the worker count
			kr := &keptRows{chunks: keeps[k]}
			for _, ck := range keeps[k] {
				if ck != nil {
					kr.examples += len(ck.rows)
				}
			}
			limit := maxKeptRows
			if e.keptCap > 0 {
				limit = e.keptCap
			}
			if kr.examples > 0 && e.keptTotal+kr.examples <= limit {
				l.kept = kr
				e.keptTotal += kr.examples
			} else if kr.examples > 0 {
				e.keptRefused++
			}
		}
		dl, lc, dlc, lr := interval.Point(0), interval.Point(0), interval.Point(0), interval.Point(0)
		integral := 0.0
		l.Smooth = 0
		l.Jump = false
		var dc, mr, ml, d1, m1, d0, m0 float64
		for _, r := range res[k] { // fixed chunk order
			dl, lc, dlc, lr = interval.Add(dl, r.dl), interval.Add(lc, r.lc), interval.Add(dlc, r.dlc), interval.Add(lr, r.lr)
			integral = interval.Up(integral + r.integral)
			l.Smooth += r.smooth
			l.Jump = l.Jump || r.jump
			dc, mr, ml = upAdd(dc, r.dc), upAdd(mr, r.mr), upAdd(ml, r.ml)
			d1, m1, d0, m0 = upAdd(d1, r.d1), upAdd(m1, r.m1), upAdd(d0, r.d0), upAdd(m0, r.m0)
		}
		c := 0.5*l.A + 0.5*l.B
		sc := func(x float64) float64 { return e.scaleI(interval.I{Lo: x, Hi: x}).Hi }
		// the upper lines' positive parts integrated over the leaf (w)
		// and over its halves [A, c] (hl) and [c, B] (hr): the centred
		// line's two sides, the line at 1 (b = 1: t = 1 − α), the line
		// at 0 (a = 0: t = α); NaN lines give +Inf
		w, hl, hr := interval.Up(l.B-l.A), interval.Up(c-l.A), interval.Up(l.B-c)
		cr, cl := posInt(sc(dc), sc(mr), hr), posInt(sc(dc), sc(ml), hl)
		e1, e0 := posInt(sc(d1), sc(m1), w), posInt(sc(d0), sc(m0), w)
		l.Rise = min(interval.Up(cr+cl), min(e1, e0))
		l.RiseLeft = min(cl, min(e1, posInt(sc(d0), sc(m0), hl)))
		l.RiseRight = min(cr, min(posInt(sc(d1), sc(m1), hr), e0))
		l.DL, l.LC, l.DLC, l.LR = e.scaleI(dl), e.scaleI(lc), e.scaleI(dlc), e.scaleI(lr)
		l.Integral = interval.Up(integral / e.scale)
	}
	return nil
}

// point encloses L(α) and stores per-example ℓ′(α) when keep is set.
func (e *IntervalPath) point(alpha float64, keep bool) interval.I {
	bs := e.boxes(interval.Point(alpha))
	sum := interval.Point(0)
	for c := range e.chunks {
		l, dl := e.pointChunk(c, alpha, bs, 1)
		for _, v := range l {
			sum = interval.Add(sum, v)
		}
		if keep {
			e.dl1 = append(e.dl1, dl)
		}
	}
	return e.scaleI(sum)
}

// points encloses L at each of alphas, the (point, chunk) passes spread
// over workers goroutines; the sums are taken in chunk order, so the
// result does not depend on the worker count.
func (e *IntervalPath) points(alphas []float64, workers int) []interval.I {
	nc := len(e.chunks)
	sums := make([][]interval.I, len(alphas))
	bs := make([][]*nn.ParamBox, len(alphas))
	for k, a := range alphas {
		sums[k] = make([]interval.I, nc)
		bs[k] = e.boxes(interval.Point(a))
	}
	fanOut(nil, workers, len(alphas), nc, func(k, c int) {
		l, _ := e.pointChunk(c, alphas[k], bs[k], 0)
		s := interval.Point(0)
		for _, v := range l {
			s = interval.Add(s, v)
		}
		sums[k][c] = s
	})
	out := make([]interval.I, len(alphas))
	for k := range alphas {
		s := interval.Point(0)
		for _, v := range sums[k] {
			s = interval.Add(s, v)
		}
		out[k] = e.scaleI(s)
	}
	return out
}

// Path returns the float path this is the interval twin of.
func (e *IntervalPath) Path() *functionspace.Path { return e.p }

// Evaluations returns the number of interval passes over all examples so
// far (one per leaf enclosure, one per point evaluation).
func (e *IntervalPath) Evaluations() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.evals
}

// MayJump reports whether the model has a layer whose output may jump
// along the line (a softplus input crossing PyTorch's threshold): then L
// is not the integral of L′ on every interval (LossEnclosure.Jump).
func (e *IntervalPath) MayJump() bool { return e.jumps }

// Outputs encloses the output path over α ∈ alpha (a point: interval.Point),
// one nn.IJet per chunk of examples (Path.Chunks, in order): V ⊇ γ_i(α),
// and with order ≥ 1 D1 ⊇ γ_i′(α), with order 2 D2 ⊇ γ_i″(α) for every α
// in alpha, [n, K] per chunk; Kink[i] is set where a ReLU-family input of
// example i may cross 0 on alpha (γ_i″ is then not enclosed and γ_i′ is
// the hull of the one-sided derivatives), Jump[i] where it may jump.
// order must be 0, 1 or 2.
func (e *IntervalPath) Outputs(alpha interval.I, order int) []*nn.IJet {
	bs := e.boxes(alpha)
	out := make([]*nn.IJet, len(e.chunks))
	for c := range e.chunks {
		out[c] = e.jet(c, alpha, bs, order, nil)
	}
	return out
}

// OutputsRows is Outputs on a subset of the examples: rows[c] lists the
// rows of chunk c (chunk-local, increasing) to enclose, and the chunk's
// jet holds those rows in that order; a chunk with no listed row gets a
// nil jet. rows nil: every example (Outputs). Every layer acts on each
// example alone, so a row's enclosure does not depend on the other rows.
func (e *IntervalPath) OutputsRows(alpha interval.I, order int, rows [][]int32) []*nn.IJet {
	if rows == nil {
		return e.Outputs(alpha, order)
	}
	return e.outputsRowsWith(alpha, e.boxes(alpha), order, rows)
}

// outputsRowsWith is OutputsRows with the parameter boxes bs =
// e.boxes(alpha) given, so that passes over the same α-interval share them
// (and the Weights each box caches); rows nil: every example.
func (e *IntervalPath) outputsRowsWith(alpha interval.I, bs []*nn.ParamBox, order int, rows [][]int32) []*nn.IJet {
	return e.outputsRowsCarry(alpha, bs, order, rows, nil)
}

// outputsRowsCarry is outputsRowsWith with, per chunk, the carried second
// layer's coefficients cfs[c] over a leaf holding alpha and the chunk's
// listed rows (carryCoefs; nil, or a nil entry: computed over alpha), so
// that the passes over one leaf and at its midpoint share them.
func (e *IntervalPath) outputsRowsCarry(alpha interval.I, bs []*nn.ParamBox, order int, rows [][]int32, cfs []*carryCoef) []*nn.IJet {
	out := make([]*nn.IJet, len(e.chunks))
	cf := func(c int) *carryCoef {
		if cfs == nil {
			return nil
		}
		return cfs[c]
	}
	if rows == nil {
		for c := range e.chunks {
			out[c] = e.jetCarry(c, alpha, bs, order, nil, nil, nil, nil, cf(c), nil)
		}
		return out
	}
	for c := range e.chunks {
		if len(rows[c]) > 0 {
			out[c] = e.jetCarry(c, alpha, bs, order, rows[c], nil, nil, nil, cf(c), nil)
		}
	}
	return out
}

// carryCoefs returns the carried second layer's coefficients over the leaf
// ab for the listed rows of every chunk (rows nil: all; a chunk without
// listed rows gets nil), or nil when the path has no carried layer.
func (e *IntervalPath) carryCoefs(ab interval.I, rows [][]int32) []*carryCoef {
	if e.carry == nil {
		return nil
	}
	out := make([]*carryCoef, len(e.chunks))
	for c := range e.chunks {
		if rows == nil {
			out[c] = e.carryCoef(c, ab, nil)
		} else if len(rows[c]) > 0 {
			out[c] = e.carryCoef(c, ab, rows[c])
		}
	}
	return out
}

// ExampleLosses encloses the per-example losses over α ∈ alpha (THEORY.md
// §4; ℓ_i unscaled, ‖γ_i − y_i‖² for mse, −log p_y for cross_entropy):
// ℓ_i, ℓ_i′, ℓ_i″ [N] with per-example kink and jump flags as in Outputs
// (ℓ_i″ is not enclosed where Kink[i]). order is 1 or 2 (ℓ_i″ is only
// enclosed with 2).
func (e *IntervalPath) ExampleLosses(alpha interval.I, order int) (l, dl, d2l []interval.I, kink, jump []bool) {
	bs := e.boxes(alpha)
	for c := range e.chunks {
		cl, cdl, cd2l, ck, cj := e.pass(c, alpha, bs, order)
		l, dl, d2l = append(l, cl...), append(dl, cdl...), append(d2l, cd2l...)
		kink, jump = append(kink, ck...), append(jump, cj...)
	}
	return l, dl, d2l, kink, jump
}

// LossEnclosure encloses the dataset loss over an α-interval: L ∈ L,
// L′ ∈ DL and L″ ∈ D2L for every α in it (the mean reduction of the
// per-example enclosures; D2L is the whole line when some example has a
// kink there, and only enclosed by order 2). Jump is set when some
// example may jump on the interval: L′ then encloses the one-sided
// derivatives but L is not its integral there.
type LossEnclosure struct {
	L, DL, D2L interval.I
	Jump       bool
}

// Loss encloses L, L′ and (order 2) L″ over α ∈ alpha (LossEnclosure).
// order is 1 or 2.
func (e *IntervalPath) Loss(alpha interval.I, order int) LossEnclosure {
	l, dl, d2l, kink, jump := e.ExampleLosses(alpha, order)
	r := LossEnclosure{L: interval.Point(0), DL: interval.Point(0), D2L: interval.Point(0)}
	whole := interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
	for i := range l {
		r.L = interval.Add(r.L, l[i])
		r.DL = interval.Add(r.DL, dl[i])
		if order < 2 || kink[i] || !d2l[i].Valid() {
			r.D2L = whole
		} else if r.D2L != whole {
			r.D2L = interval.Add(r.D2L, d2l[i])
		}
		r.Jump = r.Jump || jump[i]
	}
	r.L, r.DL = e.scaleI(r.L), e.scaleI(r.DL)
	if r.D2L != whole {
		r.D2L = e.scaleI(r.D2L)
	}
	return r
}
