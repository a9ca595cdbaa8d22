package geometry

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Curve describes a path γ: R → Rⁿ by its derivatives: a call c(α, v, a)
// writes the velocity γ′(α) into v and the acceleration γ″(α) into a, both
// [n]. At a kink of a piecewise-smooth path it writes the right derivatives
// (α increasing), THEORY.md §2. The integrators never call it with v and a
// aliased, call it serially (never concurrently), and reuse the two slices
// between calls; it must overwrite every element of both.
type Curve func(alpha float64, v, a []float64)

// Kink is a point α where a piecewise-smooth path has a corner: its velocity
// jumps from Left = γ′(α⁻) to Right = γ′(α⁺), both [n] (THEORY.md §3,
// piecewise-smooth paths). The Gauss length counts the corner's angle
// CornerAngle(Left, Right) and the quadrature is split at α.
type Kink struct {
	Alpha       float64
	Left, Right []float64
}

// Result is the outcome of an adaptive integration.
type Result struct {
	// Value is the integral: for GaussLength, Integral + Corners (radians);
	// for ArcLength and Integrate, Integral.
	Value float64
	// Integral is the quadrature over the smooth pieces between kinks.
	Integral float64
	// ErrorEstimate estimates |Integral − exact|; see Adaptive for what it
	// means. The corner angles add only rounding error (a few ulps each).
	ErrorEstimate float64
	// Corners is the sum of the kinks' corner angles (GaussLength only).
	Corners float64
	// Evaluations counts the calls of the Curve or integrand.
	Evaluations int
	// Intervals is the number of subintervals in the final partition.
	Intervals int
}

// DefaultMaxEvaluations is the evaluation budget used when
// Adaptive.MaxEvaluations is 0.
const DefaultMaxEvaluations = 1 << 16

// Adaptive is a globally adaptive Gauss–Kronrod quadrature (G7/K15, the rule
// of QUADPACK's QAG): start with one panel per piece between the breakpoints
// (lo, the kinks, hi), then repeatedly bisect the panel with the largest error
// estimate until the sum of the estimates is at most Tol or MaxEvaluations
// integrand evaluations would be exceeded.
//
// ErrorEstimate is QUADPACK's per-panel estimate (see kronrodEstimate in the
// source) summed over the panels. It is a heuristic, not a bound, but it is
// deliberately pessimistic for smooth integrands and in practice exceeds the
// true error. For GaussLength each panel's estimate is also raised to at least
// the amount by which the K15 value falls short of a rigorous lower bound on
// the panel's turning: the sum of the angles between the unit tangents at
// consecutive evaluation points (geodesic distance ≤ path length on the
// sphere, THEORY.md §3), including the tangents at the panel's ends. That is
// how a corner or cusp the caller did not report is found: the panel around it
// keeps a large error, is bisected down to the resolution of float64, and is
// then reported as a *TangentJumpError (speed bounded away from zero) or a
// *ZeroSpeedError (speed vanishing there). A jump smaller than Tol may go
// unreported (it is then within the error budget only if it is also below the
// remaining slack: such tiny corners should be passed as kinks). Likewise a
// point of (near-)zero curvature, where the turning rate ‖a⊥‖/‖v‖ dips to (near)
// zero in a narrow V that the nodes can step over: a panel across which a⊥
// turns by more than a right angle between consecutive points gets an error
// of at least its width times the spread of the rate on it, and is bisected
// until the nodes resolve the dip (or, at a true zero, the error shrinks like
// the width squared).
type Adaptive struct {
	// Tol is the absolute tolerance on Result.Integral: radians for
	// GaussLength, units of γ for ArcLength. It must be ≥ 0.
	Tol float64
	// MaxEvaluations bounds the number of integrand evaluations (Curve
	// calls); 0 means DefaultMaxEvaluations.
	MaxEvaluations int
}

// GaussLength returns G = ∫_lo^hi ‖T′(α)‖ dα + Σ_k ∠(T(α_k⁻), T(α_k⁺)), the
// Gauss length (total turning) of the path c: Rⁿ-valued on [lo, hi], with
// corners at the given kinks (THEORY.md §3). It uses Adaptive{Tol: tol}; see
// Adaptive.GaussLength.
func GaussLength(c Curve, n int, lo, hi float64, kinks []Kink, tol float64) (Result, error) {
	return Adaptive{Tol: tol}.GaussLength(c, n, lo, hi, kinks)
}

// ArcLength returns S = ∫_lo^hi ‖γ′(α)‖ dα (THEORY.md §3) using
// Adaptive{Tol: tol}; see Adaptive.ArcLength.
func ArcLength(c Curve, n int, lo, hi float64, kinks []Kink, tol float64) (Result, error) {
	return Adaptive{Tol: tol}.ArcLength(c, n, lo, hi, kinks)
}

// Integrate returns ∫ f over [breaks[0], breaks[len-1]], split at the
// increasing breakpoints, using Adaptive{Tol: tol}; see Adaptive.Integrate.
func Integrate(f func(alpha float64) (float64, error), breaks []float64, tol float64) (Result, error) {
	return Adaptive{Tol: tol}.Integrate(f, breaks)
}

// GaussLength returns the Gauss length of the path c on [lo, hi]:
// Result.Integral = ∫ ‖T′‖ dα over the smooth pieces (integrand TurningRate),
// Result.Corners = Σ CornerAngle(k.Left, k.Right) over the kinks, Result.Value
// their sum (THEORY.md §3). n is the dimension of the path.
//
// kinks may be in any order; kinks exactly at lo or hi are not corners of the
// path on [lo, hi] and their angles are not counted (a kink at hi supplies
// T(hi⁻) for the corner check, in place of c(hi), which is a right
// derivative). The quadrature is split at the kinks, so c is evaluated at a
// kink only as the left end of a panel, where the right derivative is wanted.
//
// Errors: *ZeroSpeedError if γ′ = 0 at an evaluation point inside (lo, hi),
// at a kink's Left or Right, or at a cusp found between evaluation points (a
// zero speed at lo itself is allowed); *TangentJumpError for an unreported
// corner; ErrNonFinite (wrapped, with α) for NaN or Inf from c; ErrBadKink
// (wrapped) for a kink outside [lo, hi] or two kinks at one α;
// ErrNotConverged with the best Result when the tolerance is not met.
// It panics if n < 1, lo > hi, a bound is not finite, Tol < 0, or a kink's
// slices are not [n].
func (q Adaptive) GaussLength(c Curve, n int, lo, hi float64, kinks []Kink) (Result, error) {
	q.check(lo, hi)
	if n < 1 {
		panic("geometry: dimension n < 1")
	}
	ks, err := interiorKinks(kinks, n, lo, hi)
	if err != nil {
		return Result{}, err
	}
	var corners float64
	g := &gaussEval{c: c, v: make([]float64, n), a: make([]float64, n), t0: make([]float64, n), t1: make([]float64, n), n: make([]float64, n)}
	g.breaks = append(g.breaks, lo)
	for _, k := range ks {
		ang, err := CornerAngle(k.Left, k.Right)
		if err != nil {
			if errors.Is(err, ErrZeroSpeed) {
				return Result{}, &ZeroSpeedError{Alpha: k.Alpha}
			}
			return Result{}, nonFiniteAt(k.Alpha)
		}
		corners += ang
		l, r := make([]float64, n), make([]float64, n)
		UnitTangent(l, k.Left)
		UnitTangent(r, k.Right)
		g.left = append(g.left, l)
		g.right = append(g.right, r)
		g.breaks = append(g.breaks, k.Alpha)
	}
	g.breaks = append(g.breaks, hi)
	for _, k := range kinks {
		if k.Alpha == hi && lo < hi {
			g.hiLeft = make([]float64, n)
			if err := UnitTangent(g.hiLeft, k.Left); err != nil {
				if errors.Is(err, ErrZeroSpeed) {
					return Result{}, &ZeroSpeedError{Alpha: hi}
				}
				return Result{}, nonFiniteAt(hi)
			}
		}
	}
	if lo == hi {
		return Result{}, nil
	}
	res, err := q.run(g.panel, g.breaks, 17, &g.evals, func() float64 { return g.maxSpeed })
	res.Corners = corners
	res.Value = res.Integral + corners
	return res, err
}

// ArcLength returns S = ∫_lo^hi ‖γ′(α)‖ dα, the arc length of the path c on
// [lo, hi] (THEORY.md §3), splitting the quadrature at the kinks' α (their
// velocities are not used and may be nil). Zero speed is allowed. Errors:
// ErrNonFinite (wrapped, with α), ErrBadKink (wrapped), ErrNotConverged with
// the best Result. Panics as GaussLength.
func (q Adaptive) ArcLength(c Curve, n int, lo, hi float64, kinks []Kink) (Result, error) {
	q.check(lo, hi)
	if n < 1 {
		panic("geometry: dimension n < 1")
	}
	ks, err := interiorKinks(kinks, -1, lo, hi)
	if err != nil {
		return Result{}, err
	}
	breaks := []float64{lo}
	for _, k := range ks {
		breaks = append(breaks, k.Alpha)
	}
	breaks = append(breaks, hi)
	if lo == hi {
		return Result{}, nil
	}
	v, a := make([]float64, n), make([]float64, n)
	var evals int
	f := func(alpha float64) (float64, error) {
		c(alpha, v, a)
		evals++
		s := norm(v)
		if !finite(s) {
			return 0, nonFiniteAt(alpha)
		}
		return s, nil
	}
	res, err := q.run(plainPanel(f), breaks, 15, &evals, nil)
	res.Value = res.Integral
	return res, err
}

// Integrate returns ∫ f(α) dα over [breaks[0], breaks[len(breaks)-1]],
// with the quadrature split at every breakpoint (put the kinks of a
// piecewise-smooth integrand there). An error returned by f stops the
// integration and is returned as is; a NaN or Inf value gives ErrNonFinite.
// It panics if len(breaks) < 2, breaks is not strictly increasing, or Tol < 0.
func (q Adaptive) Integrate(f func(alpha float64) (float64, error), breaks []float64) (Result, error) {
	if len(breaks) < 2 {
		panic("geometry: fewer than two breakpoints")
	}
	q.check(breaks[0], breaks[len(breaks)-1])
	for i := 1; i < len(breaks); i++ {
		if !(breaks[i-1] < breaks[i]) {
			panic("geometry: breakpoints not strictly increasing")
		}
	}
	var evals int
	g := func(alpha float64) (float64, error) {
		evals++
		y, err := f(alpha)
		if err != nil {
			return 0, err
		}
		if !finite(y) {
			return 0, nonFiniteAt(alpha)
		}
		return y, nil
	}
	res, err := q.run(plainPanel(g), breaks, 15, &evals, nil)
	res.Value = res.Integral
	return res, err
}

func (q Adaptive) check(lo, hi float64) {
	if !finite(lo) || !finite(hi) || lo > hi {
		panic("geometry: need finite lo ≤ hi")
	}
	if !(q.Tol >= 0) {
		panic("geometry: tolerance must be ≥ 0")
	}
}

// interiorKinks returns the kinks strictly inside (lo, hi), sorted. n ≥ 0
// requires Left and Right to be [n].
func interiorKinks(kinks []Kink, n int, lo, hi float64) ([]Kink, error) {
	var ks []Kink
	for _, k := range kinks {
		if n >= 0 {
			checkLen(n, k.Left, k.Right)
		}
		if !(lo <= k.Alpha && k.Alpha <= hi) {
			return nil, fmt.Errorf("geometry: kink at α = %v outside [%v, %v]: %w", k.Alpha, lo, hi, ErrBadKink)
		}
		if k.Alpha == lo || k.Alpha == hi {
			continue
		}
		ks = append(ks, k)
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].Alpha < ks[j].Alpha })
	for i := 1; i < len(ks); i++ {
		if ks[i].Alpha == ks[i-1].Alpha {
			return nil, fmt.Errorf("geometry: two kinks at α = %v: %w", ks[i].Alpha, ErrBadKink)
		}
	}
	return ks, nil
}

// panel is one subinterval [a, b] of piece seg (between breaks[seg] and
// breaks[seg+1]) with its K15 value and error estimate.
type panel struct {
	a, b       float64
	seg        int
	value, err float64
	// chain is the sum of angles between consecutive unit tangents (Gauss
	// length only); jump = max(0, chain − value).
	chain, jump float64
	// minSpeed is the smallest speed met in the panel, at minSpeedAt.
	minSpeed, minSpeedAt float64
}

type panelEval func(seg int, a, b float64) (panel, error)

type panelHeap []*panel

func (h panelHeap) Len() int           { return len(h) }
func (h panelHeap) Less(i, j int) bool { return h[i].err > h[j].err }
func (h panelHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *panelHeap) Push(x any)        { *h = append(*h, x.(*panel)) }
func (h *panelHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// run is the globally adaptive driver. perPanel is the number of evaluations
// one panel costs; evals points at the running count; speedScale (may be nil)
// returns the largest speed seen, for telling a cusp from a corner.
func (q Adaptive) run(ev panelEval, breaks []float64, perPanel int, evals *int, speedScale func() float64) (Result, error) {
	budget := q.MaxEvaluations
	if budget <= 0 {
		budget = DefaultMaxEvaluations
	}
	var h panelHeap
	var final []*panel
	result := func() Result {
		var r Result
		for _, ps := range [2][]*panel{h, final} {
			for _, p := range ps {
				r.Integral += p.value
				r.ErrorEstimate += p.err
			}
			r.Intervals += len(ps)
		}
		r.Value = r.Integral
		r.Evaluations = *evals
		return r
	}
	for s := 0; s+1 < len(breaks); s++ {
		p, err := ev(s, breaks[s], breaks[s+1])
		if err != nil {
			return Result{Evaluations: *evals}, err
		}
		h = append(h, &p)
	}
	heap.Init(&h)
	for {
		var total float64
		for _, ps := range [2][]*panel{h, final} {
			for _, p := range ps {
				total += p.err
			}
		}
		if total <= q.Tol {
			return result(), nil
		}
		if len(h) == 0 {
			return result(), ErrNotConverged
		}
		p := heap.Pop(&h).(*panel)
		m := p.a + (p.b-p.a)/2
		if !(p.a < m && m < p.b) {
			// Too short to split: a tangent jump that dominates the
			// panel's error is a corner or a cusp at this point.
			if p.jump > q.Tol && p.jump >= p.err/2 && speedScale != nil {
				if p.minSpeed <= 1e-6*speedScale() {
					return result(), &ZeroSpeedError{Alpha: p.minSpeedAt}
				}
				return result(), &TangentJumpError{Alpha: m, Angle: p.chain}
			}
			final = append(final, p)
			continue
		}
		if *evals+2*perPanel > budget {
			heap.Push(&h, p)
			return result(), ErrNotConverged
		}
		l, err := ev(p.seg, p.a, m)
		if err != nil {
			heap.Push(&h, p)
			return result(), err
		}
		r, err := ev(p.seg, m, p.b)
		if err != nil {
			heap.Push(&h, p)
			return result(), err
		}
		heap.Push(&h, &l)
		heap.Push(&h, &r)
	}
}

// plainPanel evaluates f at the 15 Kronrod nodes of a panel.
func plainPanel(f func(float64) (float64, error)) panelEval {
	return func(seg int, a, b float64) (panel, error) {
		var y [15]float64
		c, h := a+(b-a)/2, (b-a)/2
		for i, t := range k15Nodes {
			fi, err := f(c + h*t)
			if err != nil {
				return panel{}, err
			}
			y[i] = fi
		}
		p := panel{a: a, b: b, seg: seg}
		p.value, p.err = kronrodEstimate(&y, h)
		return p, nil
	}
}

// gaussEval evaluates panels of the Gauss length integrand.
type gaussEval struct {
	c      Curve
	breaks []float64   // lo, interior kinks, hi
	left   [][]float64 // unit tangents T(α_k⁻) of the interior kinks
	right  [][]float64 // unit tangents T(α_k⁺)
	hiLeft []float64   // T(hi⁻) from a Kink at hi, or nil
	v, a   []float64
	t0, t1 []float64
	evals  int
	// The panel being evaluated: the last point's principal direction
	// a⊥ (unnormalised; haveN when a⊥ ≠ 0) and whether a⊥ turned by more
	// than a right angle between consecutive points (flip).
	n           []float64
	haveN, flip bool
	// maxSpeed is the largest speed seen.
	maxSpeed float64
}

// at evaluates the curve at alpha, writes the unit tangent into t and returns
// the speed and turning rate.
func (g *gaussEval) at(alpha float64, t []float64) (speed, rate float64, err error) {
	g.c(alpha, g.v, g.a)
	g.evals++
	f, err := newFrame(g.v, g.a)
	if err != nil {
		if errors.Is(err, ErrZeroSpeed) {
			return 0, 0, &ZeroSpeedError{Alpha: alpha}
		}
		return 0, 0, nonFiniteAt(alpha)
	}
	rate = f.normalNorm(g.v, g.a) / f.s
	if !finite(rate) {
		return 0, 0, nonFiniteAt(alpha)
	}
	// a⊥ turning by more than a right angle between consecutive points
	// means it passed near zero in between: a dip of ‖a⊥‖ (a point of
	// near-zero curvature) that the nodes do not resolve.
	var dot float64
	haveN := rate > 0
	for i, ai := range g.a {
		w := ai - f.c*(g.v[i]/f.s)
		dot += w * g.n[i]
		g.n[i] = w
	}
	if haveN && g.haveN && dot < 0 {
		g.flip = true
	}
	g.haveN = haveN
	for i, vi := range g.v {
		t[i] = vi / f.s
	}
	g.maxSpeed = math.Max(g.maxSpeed, f.s)
	return f.s, rate, nil
}

func (g *gaussEval) panel(seg int, a, b float64) (panel, error) {
	p := panel{a: a, b: b, seg: seg, minSpeed: math.Inf(1), minSpeedAt: a}
	g.haveN, g.flip = false, false // the a⊥ chain runs over this panel's points, a and b included
	note := func(s, x float64) {
		if s < p.minSpeed {
			p.minSpeed, p.minSpeedAt = s, x
		}
	}
	prev, cur := g.t0, g.t1
	havePrev := false
	switch {
	case a != g.breaks[seg]:
		s, _, err := g.at(a, prev)
		if err != nil {
			return panel{}, err
		}
		note(s, a)
		havePrev = true
	case seg > 0:
		copy(prev, g.right[seg-1])
		havePrev = true
	default:
		// a = lo: a zero speed here is allowed; T(lo⁺) is then left
		// out of the chain.
		s, _, err := g.at(a, prev)
		if err == nil {
			note(s, a)
			havePrev = true
		} else if !errors.Is(err, ErrZeroSpeed) {
			return panel{}, err
		}
	}
	var y [15]float64
	c, h := a+(b-a)/2, (b-a)/2
	var chain float64
	for i, t := range k15Nodes {
		x := c + h*t
		s, r, err := g.at(x, cur)
		if err != nil {
			return panel{}, err
		}
		note(s, x)
		y[i] = r
		if havePrev {
			chain += unitAngle(prev, cur)
		}
		prev, cur = cur, prev
		havePrev = true
	}
	switch {
	case b != g.breaks[seg+1]:
		s, _, err := g.at(b, cur)
		if err != nil {
			return panel{}, err
		}
		note(s, b)
		chain += unitAngle(prev, cur)
	case seg+1 < len(g.breaks)-1:
		chain += unitAngle(prev, g.left[seg])
	case g.hiLeft != nil:
		chain += unitAngle(prev, g.hiLeft)
	default:
		// b = hi: T(hi) from the Curve (a right derivative, equal to
		// T(hi⁻) unless a Kink at hi says otherwise); a zero speed here
		// is allowed and leaves T(hi) out of the chain.
		s, _, err := g.at(b, cur)
		if err == nil {
			note(s, b)
			chain += unitAngle(prev, cur)
		} else if !errors.Is(err, ErrZeroSpeed) {
			return panel{}, err
		}
	}
	p.value, p.err = kronrodEstimate(&y, h)
	if g.flip {
		// An unresolved dip of the turning rate ‖a⊥‖/‖v‖: Gauss–Kronrod
		// nodes can step over it with both rules agreeing, so the panel's
		// error is taken to be at least its width times the spread of the
		// rate on it, which shrinks like h² at a true zero of a⊥ (a V in
		// the rate) and forces bisection until the nodes resolve a near one.
		lo, hi := y[0], y[0]
		for _, r := range y {
			lo, hi = math.Min(lo, r), math.Max(hi, r)
		}
		p.err = math.Max(p.err, (b-a)*(hi-lo))
	}
	p.chain = chain
	if d := chain - p.value; d > 0 {
		p.jump = d
		p.err = math.Max(p.err, d)
	}
	return p, nil
}
