package functionspace

import (
	"context"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/geometry"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/nn"
)

// GaussOptions tune Path.GaussLength; zero values choose defaults.
type GaussOptions struct {
	// Intervals is the first grid's number of intervals (default 256); it is
	// doubled until the mean error estimate is below Tol or MaxIntervals is
	// reached (default 4096). MaxIntervals bounds the first grid too: an
	// Intervals above it is lowered to MaxIntervals (rounded down to even,
	// at least 2).
	Intervals, MaxIntervals int
	// Tol is the absolute tolerance on the mean per-example Gauss length, in
	// radians (default 1e-4); RelTol, if positive, a relative one: refinement
	// stops when the mean error estimate is below either.
	Tol, RelTol float64
	// Progress, if not nil, is called after each α with the number done and
	// the number planned for the current grid.
	Progress func(done, total int)
	// Record lists α (increasing, in [lo, hi]) at which the cumulative
	// Gauss and arc lengths from lo are recorded (GaussResult.Cumulative*),
	// at the first grid point at or after each; choose Intervals so that
	// they fall on grid points (e.g. a multiple of the report grid's).
	Record []float64
}

// ZeroSpeed records an α at which an example's velocity vanished, so its
// unit tangent is undefined there (THEORY.md §3); Example is −1 for the
// stacked path Γ.
type ZeroSpeed struct {
	Example int
	Alpha   float64
}

// GaussResult is the Gauss length of every example's output path and of the
// stacked path on [Lo, Hi], in radians, with error estimates, and the loss
// along the fine grid it was computed on.
type GaussResult struct {
	Lo, Hi float64
	// PerExample[i] is G(γ_i), corners included; PerExampleError[i] its error
	// estimate |G_M − G_{M/2}| (see GaussLength).
	PerExample, PerExampleError []float64
	// Mean is Ḡ = (1/N) Σ G(γ_i) and MeanError the mean of the error estimates.
	Mean, MeanError float64
	// Stacked is G(Γ) by the sum of angles between Γ's tangents on the grid,
	// and StackedError |G_M − G_{M/2}|. StackedConverged reports whether
	// that estimate can be trusted: only when no example has a kink on
	// [Lo, Hi] (Γ smooth, the sum converging at O(h²)) and StackedError ≤
	// Tol. Every example's kinks turn Γ, and a ReLU network's Γ has far more
	// kinks (Kinks, typically dozens per example) than the grid has
	// intervals: the sum then grows with M (like √M on the demo run) instead
	// of converging, and StackedError is not an error bound (THEORY.md §3:
	// G(Γ) grows like √N for ReLU networks; the per-example values are the
	// useful ones).
	Stacked, StackedError float64
	StackedConverged      bool
	// Intervals is the number of grid intervals of the final grid.
	Intervals int
	// KinkCount[i] is the number of kinks of example i located on the final
	// grid (switches of kinked layers: crossings of ReLU-family
	// pre-activations, max-pool arg-max changes; THEORY.md §2, §9) and Kinks
	// their total. ExtraRows is the number of single-example rows evaluated
	// by per-row-α passes on the final grid and its subgrid (the one-sided
	// jets and Newton steps at kinks); where the jets are carried (polyJets)
	// it counts the rows of the layers after the second kinked layer only
	// (with cubicJets: of the output layer, one per first-layer kink and
	// per restart, one per example and interval for γ‴ not counted).
	KinkCount []int
	Kinks     int
	ExtraRows int
	// ZeroSpeed lists where a tangent was undefined; such grid points are
	// skipped (the angle is taken between the neighbouring defined tangents).
	ZeroSpeed []ZeroSpeed
	// ArcLength[i] is S(γ_i) = ∫‖v_i‖ dα and StackedArcLength is S(Γ), by the
	// trapezoid rule on the final grid (THEORY.md §3).
	ArcLength        []float64
	StackedArcLength float64
	// ChordDeviation[i] is ∫_Lo^Hi ‖d − ⟨d,u⟩u‖² dα with d = γ_i(α) − γ_i(Lo)
	// and u the unit chord direction of γ_i(Hi) − γ_i(Lo) (THEORY.md §3), by
	// the trapezoid rule on the final grid; ChordDeviationMean is their mean.
	// ZeroChord lists the examples with γ_i(Hi) = γ_i(Lo), whose u is
	// undefined: their value is ∫‖d‖² dα (nothing projected away).
	ChordDeviation     []float64
	ChordDeviationMean float64
	ZeroChord          []int
	// CumulativeAlphas [R] are the grid points at which GaussOptions.Record
	// was honoured; CumulativeGauss[k][i] = G_i[Lo, CumulativeAlphas[k]] and
	// CumulativeArc[k][i] = S_i[Lo, CumulativeAlphas[k]] per example, and
	// CumulativeStackedGauss[k], CumulativeStackedArc[k] those of Γ. With the
	// totals they give the remaining lengths G[α, Hi] and S(α) of Theorem B
	// (THEORY.md §6).
	CumulativeAlphas                             []float64
	CumulativeGauss, CumulativeArc               [][]float64
	CumulativeStackedGauss, CumulativeStackedArc []float64
	// Alphas [Intervals+1] is the final grid; Loss, DLoss and Accuracy are L,
	// L′ and the accuracy on it.
	Alphas, Loss, DLoss, Accuracy []float64
}

// GaussLength computes the Gauss length (total turning, THEORY.md §3) of
// every example's output path and of the stacked path Γ over [lo, hi], from
// the batched second-order passes at the M+1 points of a uniform grid.
//
// Per example and interval [a, b] of the grid: without a kink inside, the
// turning is the 4-point Gauss–Legendre rule of the turning rate of the cubic
// Hermite interpolant of the velocity from γ′ and γ″ at a and b (error
// O(h⁵) per interval on smooth paths), or the angle between the tangents at
// a and b (a geodesic chord on the sphere, a lower bound of the turning)
// when that is larger. The kinks inside (a, b] are located from the
// inputs of every kinked layer at both ends (nn.Switching: a switch unit's
// branch changes, a ReLU-family unit's side or a max-pool window's
// arg-max), as the zero of the switching function s between the two
// branches (z for the ReLU family, x_from − x_to for a max-pool window): for
// the first kinked layer, whose input is affine in α, s is affine and the
// kink is at a − s(a)/ṡ(a) (several switches of one window follow in
// closed form); for deeper layers at the root of the cubic Hermite
// interpolant of (s, ṡ), improved by one Newton step on the exact s (for
// a ReLU-family unit fed by a linear layer, a prefix pass up to that layer
// and the unit's one pre-activation, switchInputs). With
// one kink k inside and γ quadratic between kinks, the one-sided velocities
// are extrapolated from the nearer end with the exact acceleration,
// v(k⁻) = v(a) + (k−a)γ″(a) and v(k⁺) = v(b) − (b−k)γ″(b) (exact when γ is
// quadratic between kinks, as for one hidden ReLU layer or a max-pool after
// the first layer, the only cases where they are used), and the turning is T(a) → T(k⁻) → T(k⁺) → T(b):
// the corner angle ∠(T(k⁻), T(k⁺)) plus the turning of the two pieces. In
// every other case (several kinks in one interval, or a deeper network) the
// one-sided jets at each kink are evaluated exactly, with every switch unit
// on the branch it has at α ∓ 1e-8·h and the crossing units forced to
// either side (sideJets; the right side carried from the left by the
// switch's jump where the layers allow, carryJumps), by batched per-row-α
// passes per chunk (rowJet); on a two-hidden-layer ReLU-family MLP they
// are carried from the grid point instead (polyJets, cubicJets: the same
// jets up to rounding, without a per-row pass through the wide layers),
// and each kink-free piece between them is integrated as above. On one
// hidden layer the result is exact up to rounding at every M; otherwise the
// kink locations make it converge at least like O(h²). A pair of crossings of one deeper-layer unit inside one interval goes unseen until
// the grid separates them, and a deeper max-pool window passing through a
// third input inside one interval is treated as one switch until then. The error estimate of each value is
// |G_M − G_{M/2}|, the difference from the same computation on the
// even-point subgrid. It is not divided by 3 as Richardson's rule for O(h²)
// would: the kinks' contributions depend on where each kink falls in its
// interval and do not converge smoothly. M doubles until the mean estimate is below Tol.
//
// Γ is not treated kink by kink (see GaussResult.StackedConverged).
// Memory: beyond the samples, the inputs z and ż of every kinked layer at
// three grid points, 6·N·width float64s per layer (and z̈ of the second
// kinked layer where polyJets applies, 3·N·width more), and its switch
// units' branches there, 3·N·Switches ints (and, on polyPlan's shape, as
// bits, 3·N·⌈Switches/64⌉ words). Where that shape's grid is carried
// (lean grid points, gridPoint) only the second kinked layer's z, ż, z̈
// (written there by the carry), the bits and γ‴ (3·N·K) are kept.
//
// On a one-point line (OnePoint, θT = θ0) it makes one pass: every
// length is 0 and every speed 0 (onePointGauss), on the first grid.
//
// It returns ctx.Err() if ctx is cancelled: each grid point's pass starts
// no further chunk of examples once ctx is cancelled (AtContext), and the
// kink search between two grid points (turn) no further piece of
// examples, so a cancellation waits for the chunks or pieces running.
func (p *Path) GaussLength(ctx context.Context, lo, hi float64, o GaussOptions) (*GaussResult, error) {
	if o.Intervals <= 0 {
		o.Intervals = 256
	}
	if o.MaxIntervals <= 0 {
		o.MaxIntervals = 4096
	}
	if o.Tol <= 0 {
		o.Tol = 1e-4
	}
	m := o.Intervals + o.Intervals%2
	if m > o.MaxIntervals {
		m = max(o.MaxIntervals-o.MaxIntervals%2, 2)
	}
	if p.OnePoint() { // θT = θ0: γ is one point, every length 0 (one pass for L)
		r, err := p.onePointGauss(ctx, lo, hi, m, o.Progress, o.Record)
		if err != nil {
			return nil, err
		}
		r.StackedConverged = true // no kink, StackedError 0
		return r, nil
	}
	for {
		r, err := p.gaussGrid(ctx, lo, hi, m, o.Progress, o.Record)
		if err != nil {
			return nil, err
		}
		r.StackedConverged = r.Kinks == 0 && r.StackedError <= o.Tol
		if r.MeanError <= o.Tol || r.MeanError <= o.RelTol*r.Mean || 2*m > o.MaxIntervals {
			return r, nil
		}
		m *= 2
	}
}

// chain sums, per example, the angles between consecutive non-zero vectors
// pushed: a polygon of tangents on the sphere.
type chain struct {
	last *mat.Dense // last non-zero vector per example [N, K]
	have []bool
	sum  []float64
	// Stacked path Γ.
	lastS []float64
	haveS bool
	sumS  float64
}

func newChain(n, k int) *chain {
	return &chain{last: mat.NewDense(n, k, nil), have: make([]bool, n), sum: make([]float64, n), lastS: make([]float64, n*k)}
}

func isZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// push adds the angle between example i's last vector and v (a zero v, whose
// tangent is undefined, is skipped).
func (c *chain) push(i int, v []float64) {
	if isZero(v) {
		return
	}
	if c.have[i] {
		if a, err := geometry.CornerAngle(c.last.RawRowView(i), v); err == nil {
			c.sum[i] += a
		}
	}
	copy(c.last.RawRowView(i), v)
	c.have[i] = true
}

// add adds turn to example i's sum and makes v its last vector.
func (c *chain) add(i int, turn float64, v []float64) {
	c.sum[i] += turn
	copy(c.last.RawRowView(i), v)
	c.have[i] = true
}

func sameVec(a, b []float64) bool {
	for j := range a {
		if a[j] != b[j] {
			return false
		}
	}
	return true
}

// gl4 are the 4-point Gauss–Legendre nodes on [0, 1] and their weights.
var gl4 = [4][2]float64{
	{0.5 - 0.8611363115940526/2, 0.3478548451374538 / 2},
	{0.5 - 0.3399810435848563/2, 0.6521451548625461 / 2},
	{0.5 + 0.3399810435848563/2, 0.6521451548625461 / 2},
	{0.5 + 0.8611363115940526/2, 0.3478548451374538 / 2},
}

// hermiteTurning is the turning ∫‖T′‖ over a kink-free interval of length h
// with velocities va, vb and accelerations aa, ab at its ends: the 4-point
// Gauss–Legendre rule applied to the turning rate of the cubic Hermite
// interpolant of the velocity (error O(h⁴) per interval where the path is
// smooth). It is never less than the chord angle ∠(va, vb), a lower bound
// of the turning, which it falls back to if the interpolant gives less or a
// non-finite value (an interval too coarse for the path).
func hermiteTurning(va, aa, vb, ab []float64, h float64) float64 {
	chord, _ := geometry.CornerAngle(va, vb)
	k := len(va)
	var buf [64]float64
	var v, a []float64
	if 2*k <= len(buf) {
		v, a = buf[:k], buf[k:2*k]
	} else {
		v, a = make([]float64, k), make([]float64, k)
	}
	var sum float64
	for _, q := range gl4 {
		s := q[0]
		s2, s3 := s*s, s*s*s
		h00, h10, h01, h11 := 2*s3-3*s2+1, (s3-2*s2+s)*h, -2*s3+3*s2, (s3-s2)*h
		d00, d10, d01, d11 := (6*s2-6*s)/h, 3*s2-4*s+1, (-6*s2+6*s)/h, 3*s2-2*s
		for j := range v {
			v[j] = h00*va[j] + h10*aa[j] + h01*vb[j] + h11*ab[j]
			a[j] = d00*va[j] + d10*aa[j] + d01*vb[j] + d11*ab[j]
		}
		t, err := geometry.TurningRate(v, a)
		if err != nil {
			return chord
		}
		sum += q[1] * h * t
	}
	if !(sum >= chord) || math.IsInf(sum, 0) {
		return chord
	}
	return sum
}

func (c *chain) pushStacked(v []float64) {
	if isZero(v) {
		return
	}
	if c.haveS {
		if a, err := geometry.CornerAngle(c.lastS, v); err == nil {
			c.sumS += a
		}
	}
	copy(c.lastS, v)
	c.haveS = true
}

// gridPoint is everything kept of one grid point: the sample, the inputs
// z, ż of every kinked layer, [N, width] each, and the branch of each of
// its switch units there (nn.Switching.Branches from z, ż and a zero
// acceleration), [N·Switches].
//
// On the carried two-hidden-layer path (lean: polyPlan's shape with a
// grid carry) the first kinked layer's z, ż and both layers' branch ints
// are not kept: z₁ = α·B + A and ż₁ = B are read from the first-layer
// cache (first, firstRow) for the few crossing units that need them, the
// first layer's branches come from the carry's own pattern
// (QuadCarry.branch, the same rule on the same rounded z₁), and both
// layers' branches are kept as bits only.
type gridPoint struct {
	alpha      float64
	s          *Sample
	z, zd, zdd map[int]*mat.Dense
	br         map[int][]int
	// bits holds the branches as bits [N·⌈Switches/64⌉] where every
	// kinked layer has two branches per unit (polyPlan); nil otherwise.
	bits map[int][]uint64
	// lean marks the carried path: z, zd and br hold no entry for the
	// first kinked layer (site leanAff), br none for the second; first is
	// the path's first-layer cache (per chunk of chunk examples).
	lean    bool
	leanAff int
	first   []*nn.Jet
	chunk   int
	// On a lean point where cubicFast applies (fastPoint), g3 [N, K] is
	// γ‴ at the point, 3ΔW·ḧ₂ with ḧ₂ = D z̈₂ (the output layer's ΔW, D
	// the second kinked layer's slopes by its rule with z̈₂), and z2 the
	// second kinked layer's input jet per chunk [3n, width], written there
	// by the carry (no copy; z, zd, zdd hold no entry for that layer).
	g3     *mat.Dense
	z2     []*nn.Jet
	z2Site int
}

// jetRow returns example i's input jet of kinked layer l at the point (z̈
// nil where it is not kept).
func (g *gridPoint) jetRow(l, i int) (z, zd, zdd []float64) {
	if g.z2 != nil && l == g.z2Site {
		c := i / g.chunk
		j, r := g.z2[c], i-c*g.chunk
		return j.M.RawRowView(r), j.M.RawRowView(j.N + r), j.M.RawRowView(2*j.N + r)
	}
	z, zd = g.z[l].RawRowView(i), g.zd[l].RawRowView(i)
	if m := g.zdd[l]; m != nil {
		zdd = m.RawRowView(i)
	}
	return z, zd, zdd
}

// firstRow returns the first-layer cache's rows of example i on the lean
// path: z₁ = α·b + a and ż₁ = b, with the rounding of Path.firstJet.
func (g *gridPoint) firstRow(i int) (a, b []float64) {
	c := i / g.chunk
	f := g.first[c]
	r := i - c*g.chunk
	return f.Value().RawRowView(r), f.Velocity().RawRowView(r)
}

// point evaluates the grid point α, keeping the inputs of the kinked
// layers kl and, with a plan pl (not nil), the acceleration of its second
// kinked layer's input too (polyJets carries that jet).
//
// With a grid carry gc (not nil: the model is of carryPlan's shape) the
// second layer's input comes from it (gridCarry.sample) instead of a full
// pass, the same values up to rounding.
func (p *Path) point(alpha float64, kl []int, pl *polyPlan, gc *gridCarry) *gridPoint {
	g, _ := p.pointContext(context.Background(), alpha, kl, pl, gc, nil) // never cancelled: no error
	return g
}

// leanPoints reports whether the grid points of a Gauss length with plan
// pl and grid carry gc are lean (gridPoint): polyPlan's shape, carried,
// both kinked layers following nn's unit-wise rule (enterBits).
func (p *Path) leanPoints(pl *polyPlan, gc *gridCarry) bool {
	return pl != nil && gc != nil && !p.noLean && pl.stdRule && gc.plan.aff == pl.aff
}

// pointContext is point, stopped by ctx between chunks of examples as
// AtContext is: it returns ctx.Err() and no point once ctx is cancelled.
// With spare (not nil: a point of the same kl and pl no longer used) it
// reuses spare's matrices and branch slices instead of allocating.
func (p *Path) pointContext(ctx context.Context, alpha float64, kl []int, pl *polyPlan, gc *gridCarry, spare *gridPoint) (*gridPoint, error) {
	g := &gridPoint{alpha: alpha, z: map[int]*mat.Dense{}, zd: map[int]*mat.Dense{}, zdd: map[int]*mat.Dense{}}
	if p.leanPoints(pl, gc) {
		g.lean, g.leanAff, g.first, g.chunk = true, pl.aff, p.first, p.opt.Chunk
		if pl.out >= 0 && pl.wcat != nil && !p.noFastCubic {
			// fastPoint: cubicFast's per-point work, done here
			g.z2Site = pl.last
			if spare != nil && spare.g3 != nil {
				g.g3, g.z2 = spare.g3, spare.z2
			} else {
				g.g3 = mat.NewDense(p.N, p.K, nil)
				for _, rng := range p.Chunks() {
					g.z2 = append(g.z2, nn.NewJet(rng[1]-rng[0], pl.width, nil))
				}
			}
		}
	}
	sites := p.siteLayers()
	for _, l := range kl {
		if g.lean && l == g.leanAff || g.z2 != nil && l == g.z2Site {
			continue
		}
		if spare != nil {
			g.z[l], g.zd[l], g.zdd[l] = spare.z[l], spare.zd[l], spare.zdd[l]
			if g.zdd[l] == nil {
				delete(g.zdd, l)
			}
			continue
		}
		w := sites[l].InSize()
		g.z[l], g.zd[l] = mat.NewDense(p.N, w, nil), mat.NewDense(p.N, w, nil)
		if pl != nil && l == pl.last {
			g.zdd[l] = mat.NewDense(p.N, w, nil)
		}
	}
	// The branches of every kinked layer's switch units (with two branches
	// per unit, polyPlan's unit-wise layers, as bits too: turn compares
	// them 64 units at a time), computed by the visit from the rows just
	// copied (in cache) and after the pass for the chunks it did not see.
	sws := p.switchings()
	chunks := p.Chunks()
	g.br = map[int][]int{}
	nws := map[int]int{}
	done := map[int][]bool{}
	for _, l := range kl {
		ns := sws[l].Switches()
		done[l] = make([]bool, len(chunks))
		if !g.lean {
			if spare != nil {
				g.br[l] = spare.br[l]
			} else {
				g.br[l] = make([]int, p.N*ns)
			}
		}
		if pl == nil {
			continue
		}
		nw := (ns + 63) / 64
		nws[l] = nw
		if g.bits == nil {
			g.bits = map[int][]uint64{}
		}
		if spare != nil && spare.bits != nil {
			g.bits[l] = spare.bits[l]
		} else {
			g.bits[l] = make([]uint64, p.N*nw)
		}
	}
	branches := func(l, i int) {
		if g.lean {
			nw := nws[l]
			enterBits(g.bits[l][i*nw:(i+1)*nw], g.z[l].RawRowView(i), g.zd[l].RawRowView(i))
			return
		}
		ns := sws[l].Switches()
		bri := g.br[l][i*ns : (i+1)*ns]
		sws[l].Branches(g.z[l].RawRowView(i), g.zd[l].RawRowView(i), nil, bri)
		if bs := g.bits[l]; bs != nil {
			nw := nws[l]
			packBits(bs[i*nw:(i+1)*nw], bri)
		}
	}
	visit := func(c, layer int, in *nn.Jet) {
		if g.z2 != nil && layer == g.z2Site {
			// the carry wrote the jet into g.z2[c] (identity layers
			// between may hand on another: copied); its branches and γ‴
			if in != g.z2[c] {
				g.z2[c].M.Copy(in.M)
			}
			p.fastPoint(pl, g, chunks[c][0], g.z2[c])
			done[layer][c] = true
			return
		}
		dz, ok := g.z[layer]
		if !ok {
			return
		}
		lo := chunks[c][0]
		dzz := g.zdd[layer]
		if in.Const {
			// as a fresh point's: zero rows (a reused one's are not)
			for r := lo; r < chunks[c][1]; r++ {
				clear(dz.RawRowView(r))
				clear(g.zd[layer].RawRowView(r))
				if dzz != nil {
					clear(dzz.RawRowView(r))
				}
			}
			return
		}
		for r := 0; r < in.N; r++ {
			copy(dz.RawRowView(lo+r), in.Value().RawRowView(r))
			copy(g.zd[layer].RawRowView(lo+r), in.Velocity().RawRowView(r))
			if dzz != nil {
				copy(dzz.RawRowView(lo+r), in.Acceleration().RawRowView(r))
			}
			branches(layer, lo+r)
		}
		done[layer][c] = in.N == chunks[c][1]-lo
	}
	var carried func(c int, qc *QuadCarry) *nn.Jet
	if g.lean {
		// the first kinked layer's branches: the carry's pattern at α
		carried = func(c int, qc *QuadCarry) *nn.Jet {
			l, lo := g.leanAff, chunks[c][0]
			nw := nws[l]
			for r := 0; r < qc.N; r++ {
				packBits8(g.bits[l][(lo+r)*nw:(lo+r+1)*nw], qc.branch[r*qc.In:(r+1)*qc.In])
			}
			done[l][c] = qc.N == chunks[c][1]-lo
			if g.z2 != nil {
				return g.z2[c]
			}
			return nil
		}
	}
	var err error
	if gc != nil {
		g.s, err = gc.sample(ctx, alpha, visit, carried)
	} else {
		g.s, err = p.sampleContext(ctx, alpha, visit)
	}
	if err != nil {
		return nil, err
	}
	for _, l := range kl {
		for c, rng := range chunks {
			if done[l][c] {
				continue
			}
			if g.lean && l == g.leanAff {
				// (every chunk's carry calls carried; kept for safety)
				nw := nws[l]
				x := make([]float64, sites[l].InSize())
				for i := rng[0]; i < rng[1]; i++ {
					a, b := g.firstRow(i)
					for u, bu := range b {
						x[u] = alpha*bu + a[u]
					}
					enterBits(g.bits[l][i*nw:(i+1)*nw], x, b)
				}
				continue
			}
			for i := rng[0]; i < rng[1]; i++ {
				branches(l, i)
			}
		}
	}
	return g, nil
}

// enterBits sets bit u of w (64 per word) to the branch nn's unit-wise
// rule (nn.SwitchingOf of a PiecewiseLinear layer: Branches, enters) gives
// a unit of input z = x[u], ż = xd[u] and z̈ = 0: 1 (active) when
// z > 0, or z = 0 and ż ≥ 0, else 0 (NaN: 0). The same rule as Branches
// followed by packBits, without a branch per unit (TestEnterBitsMatchesBranches).
func enterBits(w []uint64, x, xd []float64) {
	clear(w)
	xd = xd[:len(x)]
	for u, z := range x {
		var b uint64
		if z > 0 {
			b = 1
		}
		var e uint64
		if z == 0 {
			e = 1
		}
		var d uint64
		if xd[u] >= 0 {
			d = 1
		}
		w[u>>6] |= (b | e&d) << (u & 63)
	}
}

// enterBitsAcc is enterBits, and also writes into acc the acceleration of
// the layer's output, acc[u] = s·xdd[u] with s = on or off by the rule
// with z̈ = xdd[u] (nn's enters: as Activation.Jet and cubicFast's start
// row take it), in the same pass.
func enterBitsAcc(w []uint64, acc, x, xd, xdd []float64, on, off float64) {
	clear(w)
	xd, xdd, acc = xd[:len(x)], xdd[:len(x)], acc[:len(x)]
	slopes := [2]float64{off, on}
	for u, z := range x {
		var gt, eq, dgt, deq, age uint64
		if z > 0 {
			gt = 1
		}
		if z == 0 {
			eq = 1
		}
		d := xd[u]
		if d > 0 {
			dgt = 1
		}
		if d == 0 {
			deq = 1
		}
		a := xdd[u]
		if a >= 0 {
			age = 1
		}
		w[u>>6] |= (gt | eq&(dgt|deq)) << (u & 63)
		acc[u] = slopes[gt|eq&(dgt|deq&age)] * a
	}
}

// packBits8 sets bit u of w (64 per word) to br[u] ∈ {0, 1}.
func packBits8(w []uint64, br []int8) {
	clear(w)
	for u, b := range br {
		w[u>>6] |= uint64(b&1) << (u & 63)
	}
}

// packBits sets bit u of w (64 per word) to br[u] ∈ {0, 1}.
func packBits(w []uint64, br []int) {
	clear(w)
	for u, b := range br {
		w[u>>6] |= uint64(b&1) << (u & 63)
	}
}

// quadraticBetweenKinks reports whether γ is quadratic in α between kinks:
// the only kinked layer is the affine one and a single affine layer
// follows it (one hidden layer), so γ″ is constant on every ReLU region and
// the one-sided jets at a kink are exact Taylor extrapolations from the grid.
func (p *Path) quadraticBetweenKinks(kl []int, aff int) bool {
	if len(kl) != 1 || kl[0] != aff {
		return false
	}
	affine := 0
	for _, layer := range p.Model.Layers[aff+1:] {
		switch {
		case isIdentity(layer):
		case isAffine(layer):
			affine++
		default: // a nonlinearity, or BatchNorm (its α-dependent normalisation makes γ non-quadratic)
			return false
		}
	}
	return affine == 1
}

// isAffine reports whether layer is affine in α on an α-independent input
// (nn.AffineInAlpha).
func isAffine(layer nn.Layer) bool {
	_, ok := layer.(nn.AffineInAlpha)
	return ok
}

// seg adds to example i's sum the turning over a kink-free piece of length
// h from velocity vl (acceleration al) to vr (ar): hermiteTurning when the
// chain's last vector is vl, else the chord angles through vl and vr.
func (c *chain) seg(i int, vl, al, vr, ar []float64, h float64) {
	if h > 0 && c.have[i] && !isZero(vl) && !isZero(vr) && sameVec(c.last.RawRowView(i), vl) {
		c.add(i, hermiteTurning(vl, al, vr, ar, h), vr)
		return
	}
	c.push(i, vl)
	c.push(i, vr)
}

// turn adds to ch every example's turning over (pa.alpha, pb.alpha] (see
// GaussLength). It adds the number of kinks per example to count (if not
// nil) and returns the number of extra rows evaluated.
//
// The examples are split into pieces of pieceSize(N, workers) examples,
// independent of the chunks of the passes, taken in turn by the workers so
// that both cores stay busy to the end; no piece starts once ctx is
// cancelled, and turn then returns ctx.Err().
func (p *Path) turn(ctx context.Context, pa, pb *gridPoint, ch *chain, kl []int, aff int, pl *polyPlan, count []int) (extra int, err error) {
	a, b := pa.alpha, pb.alpha
	h := b - a
	quad := p.quadraticBetweenKinks(kl, aff)
	sws := p.switchings()
	workers := max(p.opt.Workers, 1)
	size := pieceSize(p.N, workers)
	pieces := (p.N + size - 1) / size
	extras := make([]int, pieces)
	var next atomic.Int64
	var wg sync.WaitGroup
	for wk := 0; wk < min(workers, pieces); wk++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c := int(next.Add(1)) - 1
				if c >= pieces {
					return
				}
				if p.pieceStarted != nil {
					p.pieceStarted(c)
				}
				p.turnPiece(ctx, pa, pb, ch, kl, aff, pl, count, quad, sws, a, b, h, extras, c, c*size, min((c+1)*size, p.N))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ch.pushStacked(pb.s.Velocity.RawMatrix().Data)
	for _, e := range extras {
		extra += e
	}
	return extra, nil
}

// pieceSize is the number of examples of one piece of turn's work: about
// eight pieces per worker, at least 64 examples each.
func pieceSize(n, workers int) int {
	return max(64, (n+8*workers-1)/(8*workers))
}

// turnPiece adds to ch the turning over (a, b] of examples lo … hi−1 (turn),
// their extra rows to extras[c].
func (p *Path) turnPiece(ctx context.Context, pa, pb *gridPoint, ch *chain, kl []int, aff int, pl *polyPlan, count []int, quad bool, sws []nn.Switching, a, b, h float64, extras []int, c, lo, hi int) {
	k := p.K
	va, aa := pa.s.Velocity, pa.s.Acceleration
	vb, ab := pb.s.Velocity, pb.s.Acceleration
	ext := func(v, acc []float64, t float64) []float64 {
		out := make([]float64, k)
		for j := range out {
			out[j] = v[j] + t*acc[j]
		}
		return out
	}
	// Examples whose one-sided jets are evaluated: rows r0, r0+1, …
	// hold left, right, left, right, … at each distinct kink.
	var pend []pendingKinks
	var cs []crossing
	var ga, gb []nn.Gap
	// on lean points, the first kinked layer's z at a and b, filled at
	// the crossing units only (firstRow)
	var la, lb []float64
	lean := pa.lean && pb.lean
	if lean {
		w := sws[pa.leanAff].Switches()
		la, lb = make([]float64, w), make([]float64, w)
	}
	for i := lo; i < hi; i++ {
		cs = cs[:0]
		for _, l := range kl {
			sw := sws[l]
			ns := sw.Switches()
			var za, zda, zb, zdb []float64
			var bra, brb []int
			fill := lean && l == pa.leanAff
			var fa []float64
			if fill {
				fa, zda = pa.firstRow(i)
				za, zb, zdb = la, lb, zda
			} else {
				za, zda, _ = pa.jetRow(l, i)
				zb, zdb, _ = pb.jetRow(l, i)
			}
			if !lean {
				bra, brb = pa.br[l][i*ns:(i+1)*ns], pb.br[l][i*ns:(i+1)*ns]
			}
			cross := func(u, ba, bb int) {
				if fill {
					// as Path.firstJet rounds them
					za[u], zb[u] = a*zda[u]+fa[u], b*zda[u]+fa[u]
				}
				if l == aff {
					// affine switching functions: several switches of
					// one unit (a max-pool window through a third
					// input) follow in closed form
					n0 := len(cs)
					cs, ga = affineUnit(cs, ga, sw, l, u, ba, za, zda, nil, a, b)
					if len(cs)-n0 >= 2 {
						return
					}
					cs = cs[:n0]
				}
				ga = sw.Gaps(ga[:0], u, ba, za, zda, nil)
				gb = sw.Gaps(gb[:0], u, ba, zb, zdb, nil)
				g0, _ := gapTo(ga, bb)
				g1, _ := gapTo(gb, bb)
				var r float64
				if l == aff && g0.SD != 0 {
					r = a - g0.S/g0.SD
				} else {
					r = a + h*hermite{a: a, h: h, za: g0.S, zb: g1.S, da: g0.SD, db: g1.SD}.root()
				}
				cs = append(cs, crossing{math.Min(math.Max(r, a), b), l, u, ba, bb})
			}
			if pa.bits != nil && pb.bits != nil {
				// the units whose bit differs, in increasing order
				nw := (ns + 63) / 64
				wa, wb := pa.bits[l][i*nw:(i+1)*nw], pb.bits[l][i*nw:(i+1)*nw]
				for q, x := range wa {
					for x ^= wb[q]; x != 0; x &= x - 1 {
						t := bits.TrailingZeros64(x)
						u := q<<6 + t
						if lean {
							ba := int(wa[q]>>t) & 1
							cross(u, ba, 1-ba)
							continue
						}
						cross(u, bra[u], brb[u])
					}
				}
				continue
			}
			for u, ba := range bra {
				if bb := brb[u]; ba != bb {
					cross(u, ba, bb)
				}
			}
		}
		if count != nil {
			count[i] += len(cs)
		}
		vai, aai, vbi, abi := va.RawRowView(i), aa.RawRowView(i), vb.RawRowView(i), ab.RawRowView(i)
		switch {
		case len(cs) == 0:
			ch.seg(i, vai, aai, vbi, abi, h)
		case len(cs) == 1 && quad:
			kk := cs[0].alpha
			l, r := ext(vai, aai, kk-a), ext(vbi, abi, kk-b)
			ch.seg(i, vai, aai, l, aai, kk-a)
			ch.push(i, r)
			ch.seg(i, r, abi, vbi, abi, b-kk)
		default:
			pend = append(pend, pendingKinks{i: i, cs: append([]crossing(nil), cs...)})
		}
	}
	extras[c] = 0
	// The examples' one-sided jets in batches of at most kinkBatchRows
	// crossings: a row pass holds [rows, widest layer] jets for every
	// kinked layer, and near a BatchNorm net's α = 0 a resnet's examples
	// cross hundreds of units each in one grid interval (issue 13: 108,743
	// crossings of 256 examples asked for a 32 GB matrix). Each example's
	// rows are its own, so batching changes no example's result.
	for _, batch := range kinkBatches(pend, p.kinkBatchRows(kl)) {
		// cancelled: stop between batches (turn returns ctx.Err() and
		// drops the interval); on a BatchNorm resnet one interval's kinks
		// take minutes, and Ctrl-C must not wait for them (issue 13)
		if ctx.Err() != nil {
			return
		}
		if p.kinkBatchStarted != nil {
			p.kinkBatchStarted()
		}
		var jet *nn.Jet
		var ex int
		if pl != nil {
			// the piecewise-polynomial path: no per-row pass before the
			// second kinked layer
			jet, ex = p.polyJets(pl, pa, b, batch)
		} else {
			jet, ex = p.kinkJets(pa, pb, kl, aff, batch)
		}
		extras[c] += ex
		vm, am := jet.Velocity(), jet.Acceleration()
		for _, pd := range batch {
			i := pd.i
			vl, al := va.RawRowView(i), aa.RawRowView(i)
			x := a
			for q, kk := range pd.ks {
				r := pd.r0 + 2*q
				ch.seg(i, vl, al, vm.RawRowView(r), am.RawRowView(r), kk-x)
				vl, al, x = vm.RawRowView(r+1), am.RawRowView(r+1), kk
				ch.push(i, vl)
			}
			ch.seg(i, vl, al, vb.RawRowView(i), ab.RawRowView(i), b-x)
		}
	}
}

// kinkBatchRows is the number of crossings whose one-sided jets one batch
// of kink row passes evaluates: Options.Chunk rows (the memory knob: a
// chunk pass holds [Chunk, widest layer] jets) shared among the kinked
// layers whose inputs a kink pass keeps, two rows (left and right) per
// crossing; at least 1.
func (p *Path) kinkBatchRows(kl []int) int {
	return max(1, p.opt.Chunk/(2*max(1, len(kl)+1)))
}

// kinkBatches splits pend into consecutive batches of at most rows
// crossings each (an example with more crossings than rows is a batch of
// its own): an example's kinks are never split across batches.
func kinkBatches(pend []pendingKinks, rows int) [][]pendingKinks {
	if len(pend) == 0 {
		return nil
	}
	var out [][]pendingKinks
	start, n := 0, 0
	for k, pd := range pend {
		if n > 0 && n+len(pd.cs) > rows {
			out = append(out, pend[start:k])
			start, n = k, 0
		}
		n += len(pd.cs)
	}
	return append(out, pend[start:])
}

func (p *Path) gaussGrid(ctx context.Context, lo, hi float64, m int, progress func(int, int), record []float64) (*GaussResult, error) {
	r := &GaussResult{Lo: lo, Hi: hi, Intervals: m,
		PerExample: make([]float64, p.N), PerExampleError: make([]float64, p.N), ArcLength: make([]float64, p.N),
		KinkCount: make([]int, p.N), ChordDeviation: make([]float64, p.N)}
	h := (hi - lo) / float64(m)
	kl, aff, pl := p.kinkedLayers(), p.affineLayer(), p.polyPlan()
	fine, coarse := newChain(p.N, p.K), newChain(p.N, p.K)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The grid points' passes carry the second layer's input where the
	// model allows (gridCarry; its products one thread each, as AtGrid's).
	gc := p.newGridCarry()
	if gc != nil {
		defer blasbackend.SerialProducts()()
		defer gc.record()
	}
	// γ(hi) first: the chord deviation needs the chord while it sweeps.
	end, err := p.pointContext(ctx, hi, kl, pl, gc, nil)
	if err != nil {
		return nil, err
	}
	var start *mat.Dense
	var prev1, prev2, spare *gridPoint
	for j := 0; j <= m; j++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		alpha := lo + (hi-lo)*float64(j)/float64(m)
		pt := end
		if j < m {
			if pt, err = p.pointContext(ctx, alpha, kl, pl, gc, spare); err != nil {
				return nil, err
			}
		}
		alpha = pt.alpha
		s := pt.s
		r.Alphas = append(r.Alphas, alpha)
		r.Loss = append(r.Loss, s.Loss)
		r.DLoss = append(r.DLoss, s.DLoss)
		r.Accuracy = append(r.Accuracy, s.Accuracy)
		wt := h
		if j == 0 || j == m {
			wt = h / 2
		}
		for i, sp := range s.Speed {
			r.ArcLength[i] += wt * sp
			if sp == 0 {
				r.ZeroSpeed = append(r.ZeroSpeed, ZeroSpeed{Example: i, Alpha: alpha})
			}
		}
		r.StackedArcLength += wt * math.Sqrt(s.StackedVV)
		if s.StackedVV == 0 {
			r.ZeroSpeed = append(r.ZeroSpeed, ZeroSpeed{Example: -1, Alpha: alpha})
		}
		if j == 0 {
			start = s.Output
			for i := 0; i < p.N; i++ {
				v := s.Velocity.RawRowView(i)
				fine.push(i, v)
				coarse.push(i, v)
			}
			fine.pushStacked(s.Velocity.RawMatrix().Data)
			coarse.pushStacked(s.Velocity.RawMatrix().Data)
		} else {
			x, err := p.turn(ctx, prev1, pt, fine, kl, aff, pl, r.KinkCount)
			if err != nil {
				return nil, err
			}
			r.ExtraRows += x
			if j%2 == 0 {
				if x, err = p.turn(ctx, prev2, pt, coarse, kl, aff, pl, nil); err != nil {
					return nil, err
				}
				r.ExtraRows += x
			}
		}
		p.chordStep(r, start, end.s.Output, s.Output, wt)
		for len(record) > 0 && record[0] <= alpha+1e-12*(hi-lo) {
			record = record[1:]
			// The trapezoid sum up to this point as an endpoint: weight h/2
			// here (0 at j = 0: nothing yet), instead of the h added above.
			half := 0.0
			if j < m {
				half = h / 2
			}
			g, a := make([]float64, p.N), make([]float64, p.N)
			for i := range g {
				g[i] = fine.sum[i]
				a[i] = r.ArcLength[i] - half*s.Speed[i]
			}
			r.CumulativeAlphas = append(r.CumulativeAlphas, alpha)
			r.CumulativeGauss = append(r.CumulativeGauss, g)
			r.CumulativeArc = append(r.CumulativeArc, a)
			r.CumulativeStackedGauss = append(r.CumulativeStackedGauss, fine.sumS)
			r.CumulativeStackedArc = append(r.CumulativeStackedArc, r.StackedArcLength-half*math.Sqrt(s.StackedVV))
		}
		// the point two back is used no more: its storage serves the next
		spare = nil
		if prev2 != nil && prev2 != end {
			spare = prev2
		}
		prev2, prev1 = prev1, pt
		if progress != nil {
			progress(j+1, m+1)
		}
	}
	for i := range r.PerExample {
		r.PerExample[i] = fine.sum[i]
		r.PerExampleError[i] = math.Abs(fine.sum[i] - coarse.sum[i])
		r.Mean += fine.sum[i]
		r.MeanError += r.PerExampleError[i]
		r.Kinks += r.KinkCount[i]
		r.ChordDeviationMean += r.ChordDeviation[i]
	}
	r.Mean /= float64(p.N)
	r.MeanError /= float64(p.N)
	r.ChordDeviationMean /= float64(p.N)
	r.Stacked = fine.sumS
	r.StackedError = math.Abs(fine.sumS - coarse.sumS)
	for i := 0; i < p.N; i++ {
		if isZero(sub(end.s.Output.RawRowView(i), start.RawRowView(i))) {
			r.ZeroChord = append(r.ZeroChord, i)
		}
	}
	return r, nil
}

func sub(a, b []float64) []float64 {
	d := make([]float64, len(a))
	for j := range d {
		d[j] = a[j] - b[j]
	}
	return d
}

// chordStep adds wt·‖d − ⟨d,u⟩u‖² to every example's chord deviation, with
// d = γ(α) − γ(lo) from out and u the unit chord of γ(hi) − γ(lo).
func (p *Path) chordStep(r *GaussResult, start, end, out *mat.Dense, wt float64) {
	for i := 0; i < p.N; i++ {
		g0 := start.RawRowView(i)
		c := sub(end.RawRowView(i), g0)
		d := sub(out.RawRowView(i), g0)
		if cn := geometry.Speed(c); cn > 0 {
			var dot float64
			for j := range c {
				c[j] /= cn
				dot += d[j] * c[j]
			}
			for j := range d {
				d[j] -= dot * c[j]
			}
		}
		var dd float64
		for _, x := range d {
			dd += x * x
		}
		r.ChordDeviation[i] += wt * dd
	}
}

// GaussLengthTrapezoid is the paper-compatible Gauss length (Lucas et al.
// 2021): the trapezoid rule over the samples' turning rates ‖T′‖, with no
// corners counted, as the mean over examples and for the stacked path
// (geometry.GaussLengthTrapezoid). The samples must be sorted by α.
func GaussLengthTrapezoid(samples []*Sample) (mean, stacked float64) {
	alphas := make([]float64, len(samples))
	means := make([]float64, len(samples))
	stacks := make([]float64, len(samples))
	for j, s := range samples {
		alphas[j] = s.Alpha
		for _, t := range s.TurningRate {
			means[j] += t
		}
		means[j] /= float64(len(s.TurningRate))
		stacks[j] = s.StackedTurningRate
	}
	// The mean of the per-example trapezoid sums is the trapezoid sum of the means.
	return geometry.GaussLengthTrapezoid(alphas, means), geometry.GaussLengthTrapezoid(alphas, stacks)
}

// kinkJets is the general path of turn for the examples pend with kinks
// inside [pa.alpha, pb.alpha]: one Newton step on every crossing of a
// deeper kinked layer (switchInputs), then the one-sided jets at every
// kink by per-row passes (sideJets). It fills pend[n].ks and pend[n].r0 as
// polyJets does and returns the jets and the number of rows evaluated.
//
// Both steps run in passes of at most kinkBatchRows kinks (sideJets) and
// twice that many crossings (the Newton step), even inside one example:
// near a BatchNorm resnet's α = 0 one example crosses thousands of
// distinct units in one grid interval (issue 13: 2268 crossings of
// example 0 on [0, 1/294], 2212 of them distinct), and one pass over all
// of them holds [rows, width] jets of every kinked layer (gigabytes). Each
// row's arithmetic is its own, so the split changes no row.
func (p *Path) kinkJets(pa, pb *gridPoint, kl []int, aff int, pend []pendingKinks) (*nn.Jet, int) {
	a, b := pa.alpha, pb.alpha
	h := b - a
	sws := p.switchings()
	batch := p.kinkBatchRows(kl)
	if p.noKinkSplit {
		batch = math.MaxInt / 4
	}
	var ga []nn.Gap
	var extra int
	// One Newton step s/ṡ on the exact switching function for every
	// crossing of a deeper layer: the Hermite root is only O(h²)
	// accurate when another kink lies in the interval.
	var rows []int
	var alphas []float64
	var crs []crossing
	var at []*crossing // where each row's refined α goes
	for n := range pend {
		pd := &pend[n]
		for q, cr := range pd.cs {
			if cr.layer != aff {
				rows = append(rows, pd.i)
				alphas = append(alphas, cr.alpha)
				crs = append(crs, cr)
				at = append(at, &pd.cs[q])
			}
		}
	}
	for s := 0; s < len(rows); s += 2 * batch {
		e := min(s+2*batch, len(rows))
		in := p.switchInputs(rows[s:e], alphas[s:e], crs[s:e])
		for r, cr := range crs[s:e] {
			x, xd := in(r)
			ga = sws[cr.layer].Gaps(ga[:0], cr.unit, cr.from, x, xd, nil)
			if g, ok := gapTo(ga, cr.to); ok && g.SD != 0 {
				if x := cr.alpha - g.S/g.SD; x >= a && x <= b {
					at[s+r].alpha = x
				}
			}
		}
	}
	extra = len(rows)
	// The kinks of every example, in pieces of at most batch kinks; the
	// pieces of one pass in order, so that an example's rows stay
	// consecutive across pieces and passes.
	type piece struct {
		n  int // pend index
		gs [][]crossing
	}
	var pieces []piece
	for n := range pend {
		pd := &pend[n]
		gs := groupCrossings(pd.cs)
		for _, grp := range gs {
			pd.ks = append(pd.ks, grp[0].alpha)
		}
		for s := 0; s < len(gs); s += batch {
			pieces = append(pieces, piece{n, gs[s:min(s+batch, len(gs))]})
		}
	}
	var jets []*nn.Jet
	rows0 := 0
	for s := 0; s < len(pieces); {
		var exs []int
		var gss [][][]crossing
		var los, his []float64
		e, k := s, 0
		for ; e < len(pieces) && (e == s || k+len(pieces[e].gs) <= batch); e++ {
			k += len(pieces[e].gs)
			exs, gss = append(exs, pend[pieces[e].n].i), append(gss, pieces[e].gs)
			los, his = append(los, a), append(his, b)
		}
		jet, r0, evaluated := p.sideJets(exs, gss, los, his, 1e-8*h)
		for q := s; q < e; q++ {
			if q == 0 || pieces[q-1].n != pieces[q].n {
				pend[pieces[q].n].r0 = rows0 + r0[q-s]
			}
		}
		rows0 += jet.N
		jets = append(jets, jet)
		extra += evaluated
		s = e
	}
	return catJets(jets), extra
}

// catJets stacks the rows of jets (each [3n, K]) into one jet [3Σn, K],
// part by part.
func catJets(jets []*nn.Jet) *nn.Jet {
	if len(jets) == 1 {
		return jets[0]
	}
	n, k := 0, 0
	for _, j := range jets {
		n += j.N
		_, k = j.M.Dims()
	}
	out := &nn.Jet{N: n, M: mat.NewDense(3*n, k, nil)}
	r := 0
	for _, j := range jets {
		for part := 0; part < 3; part++ {
			for q := 0; q < j.N; q++ {
				copy(out.M.RawRowView(part*n+r+q), j.M.RawRowView(part*j.N+q))
			}
		}
		r += j.N
	}
	return out
}
