package functionspace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/geometry"
	"github.com/certify-mli/certify/nn"
)

// Kink is a point α where one example's output path has a corner: a switch
// unit of a kinked layer (nn.Switching) changes branch, so the layer's
// derivative jumps and γ′ with it (THEORY.md §2–§3, §9). For the ReLU
// family the unit is an input element and the switch a crossing of 0 by its
// pre-activation z; for max-pool the unit is an output window and the
// switch a change of its arg-max.
type Kink struct {
	// Alpha is where the switching function vanishes (z = 0; for max-pool
	// x_From = x_To).
	Alpha float64
	// Layer is the site index (nn.Site.Index in Model.WalkSites order: the
	// index in Model.Layers for a model without residual blocks; inside a
	// block, its place among all leaf layers, body before shortcut) of the
	// kinked layer, Unit the switch unit (an activation's input element; a
	// max-pool window c·OH·OW + q), From and To its branch before and after
	// the kink (nn.Switching: 0 inactive and 1 active for the ReLU family;
	// the selected input's flat index in [C·H·W] for max-pool). Switches at
	// exactly the same α are merged into one Kink (its one-sided jets take
	// every one of them into account); Layer, Unit, From and To then name
	// the first and Merged lists the others.
	Layer, Unit int
	From, To    int
	Merged      []Switch
	// Left and Right are the one-sided velocities γ′(α⁻) and γ′(α⁺), LeftAcc
	// and RightAcc the one-sided accelerations γ″(α⁻), γ″(α⁺), each [K]:
	// the jets of the branches on either side, evaluated at α with every
	// switching unit forced to its branch before and after the switch.
	Left, Right, LeftAcc, RightAcc []float64
}

// Switch is one switch unit's change of branch merged into a Kink (see
// Kink's fields of the same names).
type Switch struct {
	Layer, Unit, From, To int
}

// KinkSweep is the number of intervals of the single-example sweep with
// which Path.Kinks brackets the switches of kinked layers whose input is
// not affine in α (every kinked layer after the first).
const KinkSweep = 512

// kinkedLayers returns the site indices (nn.Site.Index, Model.WalkSites)
// of the kinked layers (nn.KinkSites, with their nn.Switching rule: the
// ReLU family, max-pool), those inside residual blocks included. For a
// model without blocks a site index is the index in Model.Layers.
func (p *Path) kinkedLayers() []int {
	var ls []int
	_ = p.Model.WalkSites(func(s nn.Site, layer nn.Layer) error {
		if _, ok := switchingAt(layer); ok { // declared by every layer: Path.build checks nn.RuleKinks
			ls = append(ls, s.Index)
		}
		return nil
	})
	return ls
}

// switchings returns the switching rule of every kinked site (nil for the
// others), indexed by site.
func (p *Path) switchings() []nn.Switching {
	var out []nn.Switching
	_ = p.Model.WalkSites(func(_ nn.Site, layer nn.Layer) error {
		sw, _ := switchingAt(layer)
		out = append(out, sw)
		return nil
	})
	return out
}

// siteLayers returns the leaf layers indexed by site (Model.WalkSites).
func (p *Path) siteLayers() []nn.Layer {
	var ls []nn.Layer
	_ = p.Model.WalkSites(func(_ nn.Site, layer nn.Layer) error {
		ls = append(ls, layer)
		return nil
	})
	return ls
}

// affineLayer returns the index of the kinked layer whose input is
// exactly affine in α, z = A + αB (THEORY.md §2, first layer: one affine
// layer on the network input, then only identity layers), or −1.
func (p *Path) affineLayer() int {
	affine := 0
	for l, layer := range p.Model.Layers {
		if _, ok := layer.(nn.Block); ok {
			return -1 // a residual block: its output is a sum of branches, not an affine prefix
		}
		if _, ok := layer.(nn.AffineInAlpha); ok {
			affine++
			if affine > 1 {
				return -1
			}
			continue
		}
		if isIdentity(layer) || (affine == 0 && len(layer.Params()) == 0) {
			// identity layers, and parameter-free layers on the (constant)
			// network input, keep z affine in α
			continue
		}
		if k, ok := layer.(nn.KinkSites); ok && k.Kinked() {
			return l
		}
		// any other layer (a smooth activation, or BatchNorm, whose
		// γ(α)(h − μ(α))/√(σ²(α)+ε) + β(α) is not affine in α under either
		// policy, THEORY.md §2) ends the affine prefix
		return -1
	}
	return -1
}

// isIdentity reports whether layer declares itself the identity map
// (nn.Identity).
func isIdentity(layer nn.Layer) bool {
	id, ok := layer.(nn.Identity)
	return ok && id.IsIdentity()
}

// hermite is the cubic Hermite interpolant on [a, a+h] of a function with
// values za, zb and derivatives da, db at the ends, in s = (α − a)/h.
type hermite struct{ a, h, za, zb, da, db float64 }

func (c hermite) at(s float64) float64 {
	s2, s3 := s*s, s*s*s
	return (2*s3-3*s2+1)*c.za + (s3-2*s2+s)*c.h*c.da + (-2*s3+3*s2)*c.zb + (s3-s2)*c.h*c.db
}

// root returns a root in [0, 1] of the interpolant, which changes sign there,
// by bisection (the midpoint if the end values do not bracket one).
func (c hermite) root() float64 {
	lo, hi := 0.0, 1.0
	flo := c.at(0)
	if flo*c.at(1) > 0 {
		return 0.5
	}
	for it := 0; it < 60; it++ {
		mid := (lo + hi) / 2
		fm := c.at(mid)
		if (fm > 0) == (flo > 0) && fm != 0 {
			lo, flo = mid, fm
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// extrema returns the s in (0, 1) where the interpolant's derivative vanishes.
func (c hermite) extrema() []float64 {
	// d/ds of the cubic: 3A s² + 2B s + C.
	A := 2*c.za + c.h*c.da - 2*c.zb + c.h*c.db
	B := -3*c.za - 2*c.h*c.da + 3*c.zb - c.h*c.db
	C := c.h * c.da
	var out []float64
	add := func(s float64) {
		if s > 0 && s < 1 {
			out = append(out, s)
		}
	}
	if A == 0 {
		if B != 0 {
			add(-C / (2 * B))
		}
		return out
	}
	disc := 4*B*B - 12*A*C
	if disc < 0 {
		return nil
	}
	q := -0.5 * (2*B + math.Copysign(math.Sqrt(disc), B))
	if q != 0 {
		add(q / (3 * A))
		add(C / q)
	}
	return out
}

// preJet evaluates example i at α and returns (z, ż, z̈) of unit u of
// kinked layer l.
func (p *Path) preJet(i, l, u int, alpha float64) (z, zd, zdd float64) {
	pre := map[int]*nn.Jet{}
	p.rowJet([]int{i}, []float64{alpha}, nil, pre)
	m := pre[l].M
	return m.At(0, u), m.At(1, u), m.At(2, u)
}

// rowJetAt evaluates example i at α in a per-row pass and returns the input
// jet row (x, ẋ, ẍ) of kinked site l.
func (p *Path) rowJetAt(i, l int, alpha float64) (x, xd, xdd []float64) {
	pre := map[int]*nn.Jet{}
	p.rowJet([]int{i}, []float64{alpha}, nil, pre)
	j := pre[l]
	return j.Value().RawRowView(0), j.Velocity().RawRowView(0), j.Acceleration().RawRowView(0)
}

// nearestGap returns the smallest switching function of gs (ties: the one
// falling fastest, then with the smaller second derivative): the gap that
// decides when the branch is left.
func nearestGap(gs []nn.Gap) nn.Gap {
	g := gs[0]
	for _, h := range gs[1:] {
		if h.S < g.S || (h.S == g.S && (h.SD < g.SD || (h.SD == g.SD && h.SDD < g.SDD))) {
			g = h
		}
	}
	return g
}

// gapTo returns the switching function of gs against rival r.
func gapTo(gs []nn.Gap, r int) (nn.Gap, bool) {
	for _, g := range gs {
		if g.Rival == r {
			return g, true
		}
	}
	return nn.Gap{}, false
}

// switchAt evaluates unit u of kinked site l (rule sw) of example i at α:
// its branch there and the nearest switching function of branch before.
func (p *Path) switchAt(sw nn.Switching, i, l, u int, alpha float64, before int) (int, nn.Gap) {
	x, xd, xdd := p.rowJetAt(i, l, alpha)
	br := make([]int, sw.Switches())
	sw.Branches(x, xd, xdd, br)
	return br[u], nearestGap(sw.Gaps(nil, u, before, x, xd, xdd))
}

// maxWalk bounds the number of switches of one unit located in one sweep
// interval (walkBatch, affineSwitches).
const maxWalk = 64

// walk is one job of walkBatch: locate the switches of unit u of kinked
// site l (rule sw) in (a, b] that take it from branch from (at a) to
// branch to (at b), starting at guess.
type walk struct {
	sw          nn.Switching
	l, u        int
	a, b, guess float64
	from, to    int
}

// walkBatch locates the switches of every job of example i. Per job, a
// safeguarded Newton iteration on the exact nearest switching function of
// the current branch (nn.Switching.Gaps; for the ReLU family ±z) keeps a
// bracket [lo, hi] with branch(lo) = from ≠ branch(hi) and finds the first
// switch away from it to a few ulps; while the branch it leads to is not
// yet to (a max-pool window passing through a third input), the walk goes
// on from there. The iterations of all unfinished jobs are batched: each
// is one row of a single per-row pass, so one iteration costs one pass for
// all the kinks of the example, not one pass each. The crossings are
// returned job by job, each job's in order.
func (p *Path) walkBatch(ctx context.Context, i int, jobs []walk) ([]crossing, error) {
	type state struct {
		w            walk
		lo, hi, x    float64
		after, it, k int
		done         bool
		found        []crossing
	}
	st := make([]*state, len(jobs))
	for j, w := range jobs {
		st[j] = &state{w: w, lo: w.a, hi: w.b, x: w.guess, after: w.to}
	}
	brs := map[int][]int{}
	var gs []nn.Gap
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var act []*state
		var rows []int
		var alphas []float64
		for _, s := range st {
			if s.done {
				continue
			}
			if !(s.x > s.lo && s.x < s.hi) {
				s.x = s.lo + (s.hi-s.lo)/2
			}
			act = append(act, s)
			rows = append(rows, i)
			alphas = append(alphas, s.x)
		}
		if len(act) == 0 {
			break
		}
		pre := map[int]*nn.Jet{}
		p.rowJet(rows, alphas, nil, pre)
		for r, s := range act {
			w := &s.w
			in := pre[w.l]
			x, xd, xdd := in.Value().RawRowView(r), in.Velocity().RawRowView(r), in.Acceleration().RawRowView(r)
			br := brs[w.l]
			if br == nil {
				br = make([]int, w.sw.Switches())
				brs[w.l] = br
			}
			w.sw.Branches(x, xd, xdd, br)
			gs = w.sw.Gaps(gs[:0], w.u, w.from, x, xd, xdd)
			bx, g := br[w.u], nearestGap(gs)
			if bx == w.from {
				s.lo = s.x
			} else {
				s.hi, s.after = s.x, bx
			}
			var root float64
			fin := true
			next := s.x - g.S/g.SD
			switch {
			case g.S == 0 && (g.SD != 0 || g.SDD != 0):
				// (a gap identically 0 to third order is a tie of identical
				// inputs, such as two max-pool inputs zeroed by a ReLU, not a
				// switch: the bracket is bisected instead)
				root = s.x
			case g.SD != 0 && math.Abs(next-s.x) <= 2*ulp(s.x):
				root = math.Min(math.Max(next, s.lo), s.hi)
			case s.hi-s.lo <= 2*ulp(s.hi):
				root = s.hi
			default:
				fin = false
				s.x = next
				if g.SD == 0 || math.IsNaN(s.x) {
					s.x = s.lo + (s.hi-s.lo)/2
				}
				if s.it++; s.it >= 100 {
					root, fin = s.lo+(s.hi-s.lo)/2, true
				}
			}
			if !fin {
				continue
			}
			s.found = append(s.found, crossing{root, w.l, w.u, w.from, s.after})
			hiAlpha := s.hi
			if s.k++; s.after == w.to || !(hiAlpha < w.b) || s.k >= maxWalk {
				s.done = true
				continue
			}
			w.from, w.a = s.after, hiAlpha
			s.lo, s.hi, s.x, s.after, s.it = hiAlpha, w.b, hiAlpha+(w.b-hiAlpha)/2, w.to, 0
		}
	}
	var cs []crossing
	for _, s := range st {
		cs = append(cs, s.found...)
	}
	return cs, nil
}

// affineSwitches returns every switch in (lo, hi] of the kinked site l
// (rule sw) whose input is affine in α, x(α) = x(lo) + (α − lo)ẋ, from the
// input jet row (x, xd, xdd) at lo: its switching functions are affine too,
// so each unit's switches follow in closed form. From its branch b at lo a
// unit leaves b at the first α where a gap S + (α − lo)SD with SD < 0
// reaches 0, α = lo − S/SD (ties: to the rival falling fastest), and goes on
// from the rival's branch. For the ReLU family that is the one crossing
// α = lo − z/ż.
func affineSwitches(sw nn.Switching, l int, x, xd, xdd []float64, lo, hi float64) []crossing {
	br := make([]int, sw.Switches())
	sw.Branches(x, xd, xdd, br)
	var cs []crossing
	var gs []nn.Gap
	for u, b := range br {
		cs, gs = affineUnit(cs, gs, sw, l, u, b, x, xd, xdd, lo, hi)
	}
	return cs
}

// affineUnit appends to cs the switches in (lo, hi] of unit u, on branch b
// at lo, of affineSwitches; gs is scratch space, returned for reuse.
func affineUnit(cs []crossing, gs []nn.Gap, sw nn.Switching, l, u, b int, x, xd, xdd []float64, lo, hi float64) ([]crossing, []nn.Gap) {
	at := lo
	for k := 0; k < maxWalk; k++ {
		gs = sw.Gaps(gs[:0], u, b, x, xd, xdd)
		best, next, bestSD := math.Inf(1), -1, 0.0
		for _, g := range gs {
			if !(g.SD < 0) {
				continue
			}
			r := lo - g.S/g.SD
			if k == 0 && !(r > lo) {
				continue
			}
			if k > 0 {
				// a switch at (a rounding of) the last one: three inputs meeting
				if !(r > at-1e-12*(1+math.Abs(at))) {
					continue
				}
				r = math.Max(r, at)
			}
			if r < best || (r == best && g.SD < bestSD) {
				best, next, bestSD = r, g.Rival, g.SD
			}
		}
		if next < 0 || !(best <= hi) {
			break
		}
		cs = append(cs, crossing{best, l, u, b, next})
		b, at = next, best
	}
	return cs, gs
}

func ulp(x float64) float64 {
	x = math.Abs(x)
	return math.Nextafter(x, math.Inf(1)) - x
}

// crossing is one switch of one unit: at alpha, unit unit of kinked site
// layer goes from branch from to branch to.
type crossing struct {
	alpha       float64
	layer, unit int
	from, to    int
}

// Kinks locates every kink of example i's output path in (lo, hi] (a kink
// exactly at lo is not a corner of the path on [lo, hi]) and returns them
// sorted by α, with their one-sided velocities and accelerations. It sees
// every kinked layer through its switching rule (nn.Switching): a kink is
// a change of a switch unit's branch, located as a zero of the switching
// function between the branches.
//
// For the first kinked layer, whose input is affine in α (THEORY.md §2),
// the switching functions are affine and the switches follow in closed
// form (affineSwitches; for the ReLU family α = −A/B of z = A + αB). For
// deeper layers, a sweep of KinkSweep intervals (one batched per-row-α pass
// of KinkSweep+1 rows of the one example) brackets the changes of branch,
// the closed-form kinks of the first layer are added to the sweep's points,
// the cubic Hermite interpolant of the switching function (value and
// derivative) at both ends gives a starting guess (and reveals a pair of
// switches inside one interval when its extremum has the other sign), and
// safeguarded Newton iterations on the exact switching function refine it
// to a few ulps, every iteration one per-row pass for all the deeper
// switches of the example (walkBatch) (for a max-pool window
// that passes through several inputs inside one interval, switch after
// switch). A pair of switches of one deeper unit inside one sweep interval
// that the interpolant does not reveal is missed (ExampleGaussLength then
// finds it as an unreported corner).
//
// Errors: an example index out of range, lo ≥ hi or non-finite bounds;
// ctx.Err() if ctx is cancelled.
func (p *Path) Kinks(ctx context.Context, i int, lo, hi float64) ([]Kink, error) {
	if i < 0 || i >= p.N {
		return nil, fmt.Errorf("functionspace: example %d out of range [0, %d)", i, p.N)
	}
	if !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return nil, fmt.Errorf("functionspace: kinks on [%v, %v]: want finite lo < hi", lo, hi)
	}
	kl := p.kinkedLayers()
	if len(kl) == 0 {
		return nil, nil
	}
	sws := p.switchings()
	aff := p.affineLayer()
	n := 1
	if len(kl) > 1 || kl[0] != aff {
		n = KinkSweep
	}
	alphas := make([]float64, n+1)
	for j := range alphas {
		alphas[j] = lo + (hi-lo)*float64(j)/float64(n)
	}
	alphas[n] = hi
	if n > 1 && aff >= 0 {
		// The affine layer's kinks (closed form) become sweep points too: a
		// deeper pre-activation is smooth between them, but its velocity
		// jumps at them, and it may cross zero twice right after one — two
		// crossings inside one sweep interval that no interpolant reveals.
		x, xd, xdd := p.rowJetAt(i, aff, lo)
		for _, c := range affineSwitches(sws[aff], aff, x, xd, xdd, lo, hi) {
			if c.alpha > lo && c.alpha < hi {
				alphas = append(alphas, c.alpha)
			}
		}
		sort.Float64s(alphas)
		n = len(alphas) - 1
	}
	rows := make([]int, n+1)
	for j := range rows {
		rows[j] = i
	}
	pre := map[int]*nn.Jet{}
	p.rowJet(rows, alphas, nil, pre)
	var cs []crossing
	var jobs []walk // deeper switches, refined together (walkBatch)
	for _, l := range kl {
		in, sw := pre[l], sws[l]
		if in == nil { // a kinked layer on the constant network input: no kinks
			continue
		}
		z, zd, zdd := in.Value(), in.Velocity(), in.Acceleration()
		if l == aff {
			cs = append(cs, affineSwitches(sw, l, z.RawRowView(0), zd.RawRowView(0), zdd.RawRowView(0), lo, hi)...)
			continue
		}
		ns := sw.Switches()
		br := make([]int, (n+1)*ns)
		for j := 0; j <= n; j++ {
			sw.Branches(z.RawRowView(j), zd.RawRowView(j), zdd.RawRowView(j), br[j*ns:(j+1)*ns])
		}
		var ga, gb []nn.Gap
		for u := 0; u < ns; u++ {
		sweep:
			for j := 0; j < n; j++ {
				a, b := alphas[j], alphas[j+1]
				ba, bb := br[j*ns+u], br[(j+1)*ns+u]
				ga = sw.Gaps(ga[:0], u, ba, z.RawRowView(j), zd.RawRowView(j), zdd.RawRowView(j))
				gb = sw.Gaps(gb[:0], u, ba, z.RawRowView(j+1), zd.RawRowView(j+1), zdd.RawRowView(j+1))
				if ba != bb {
					guess := a + (b-a)/2
					if g0, ok := gapTo(ga, bb); ok {
						g1, _ := gapTo(gb, bb)
						c := hermite{a: a, h: b - a, za: g0.S, zb: g1.S, da: g0.SD, db: g1.SD}
						guess = a + c.h*c.root()
					}
					jobs = append(jobs, walk{sw, l, u, a, b, guess, ba, bb})
					continue
				}
				for q := range ga {
					c := hermite{a: a, h: b - a, za: ga[q].S, zb: gb[q].S, da: ga[q].SD, db: gb[q].SD}
					for _, s := range c.extrema() {
						if v := c.at(s); !(v < 0) {
							continue
						}
						m := a + c.h*s
						bm, _ := p.switchAt(sw, i, l, u, m, ba)
						if bm == ba {
							continue
						}
						jobs = append(jobs, walk{sw, l, u, a, m, a + c.h*s/2, ba, bm}, walk{sw, l, u, m, b, (m + b) / 2, bm, ba})
						continue sweep
					}
				}
			}
		}
	}
	found, err := p.walkBatch(ctx, i, jobs)
	if err != nil {
		return nil, err
	}
	cs = append(cs, found...)
	if len(cs) == 0 {
		return nil, nil
	}
	groups := groupCrossings(cs)
	j, _, _ := p.sideJets([]int{i}, [][][]crossing{groups}, []float64{lo}, []float64{hi}, 0)
	vel, acc := j.Velocity(), j.Acceleration()
	ks := make([]Kink, len(groups))
	for g, grp := range groups {
		c := grp[0]
		ks[g] = Kink{Alpha: c.alpha, Layer: c.layer, Unit: c.unit, From: c.from, To: c.to,
			Left: append([]float64(nil), vel.RawRowView(2*g)...), Right: append([]float64(nil), vel.RawRowView(2*g+1)...),
			LeftAcc: append([]float64(nil), acc.RawRowView(2*g)...), RightAcc: append([]float64(nil), acc.RawRowView(2*g+1)...)}
		for _, o := range grp[1:] {
			ks[g].Merged = append(ks[g].Merged, Switch{o.layer, o.unit, o.from, o.to})
		}
	}
	return ks, nil
}

// sameKink reports whether a switch at b ≥ a is the kink at a: they are
// within 1e-12·(1 + |a|), closer than two independent refinements of one
// α can be told apart (a ReLU unit going inactive and the max-pool window
// it leads switching to another input at the same α).
func sameKink(a, b float64) bool { return b-a <= 1e-12*(1+math.Abs(a)) }

// groupCrossings sorts cs by α (stably) and groups the switches of one
// kink (sameKink with the group's first).
func groupCrossings(cs []crossing) [][]crossing {
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].alpha < cs[b].alpha })
	var groups [][]crossing
	for _, c := range cs {
		if g := len(groups); g > 0 && sameKink(groups[g-1][0].alpha, c.alpha) {
			groups[g-1] = append(groups[g-1], c)
		} else {
			groups = append(groups, []crossing{c})
		}
	}
	return groups
}

// mayTie reports whether some kinked layer declares that its switching
// functions may vanish identically on an interval of α (nn.Ties: two
// max-pool inputs zeroed by a ReLU).
func (p *Path) mayTie() bool {
	for _, sw := range p.switchings() {
		if t, ok := sw.(nn.Ties); ok && t.MayTie() {
			return true
		}
	}
	return false
}

// sideJets evaluates the one-sided jets at the kinks of several examples.
// Example exs[k] has the kinks gss[k] (groupCrossings, sorted) on
// (los[k], his[k]]. The left jet at a kink is the jet at its α with the
// kink's own switches forced to From, the right jet with them forced to To
// (one per-row pass); every other switch unit takes the branch the layer's
// rule gives at α. When a kinked layer may tie (Path.mayTie), a unit of it
// can switch at the same α as a consequence of the kink (a max-pool window
// whose maximum a ReLU unit zeroes), and the rule at α would decide it by a
// value rounded to ±1e-17: then every switch unit of every kinked layer is
// forced to its branch just before and just after the kink, read in one
// more pass at the midpoints of the regions between the kinks (eta = 0:
// exact kinks, Path.Kinks) or at α ∓ eta (eta > 0: kinks located to
// about eta, the Gauss-length grid, where a midpoint may lie beyond a kink
// not located). Without ties, on a chain of layers (Path.jumpable), a kink
// of one switch gets only its left-sided row in the pass: the right-sided
// jet is the left one plus the switch's jump carried to the output
// (carryJumps: for a ReLU unit a rank-one update through the downstream
// layers, one weight column at the first affine layer, no second pass).
// In the returned jet [3R, K], rows r0[k] + 2g and
// r0[k] + 2g + 1 are the left and right jets at kink g of example k;
// evaluated is the number of rows of the passes.
func (p *Path) sideJets(exs []int, gss [][][]crossing, los, his []float64, eta float64) (j *nn.Jet, r0 []int, evaluated int) {
	var mbr map[int][][]int // the neighbouring branches, when a layer may tie
	var m0 []int            // row of the branches before kink g: m0[k] + 2g with eta, m0[k] + g without; after: the next
	if p.mayTie() {
		kl, sws := p.kinkedLayers(), p.switchings()
		var mrows []int
		var malphas []float64
		m0 = make([]int, len(exs))
		for k, e := range exs {
			m0[k] = len(mrows)
			prev := los[k]
			for _, grp := range gss[k] {
				if eta > 0 {
					mrows = append(mrows, e, e)
					malphas = append(malphas, grp[0].alpha-eta, grp[0].alpha+eta)
					continue
				}
				mrows = append(mrows, e)
				malphas = append(malphas, prev+(grp[0].alpha-prev)/2)
				prev = grp[0].alpha
			}
			if eta == 0 {
				mrows = append(mrows, e)
				malphas = append(malphas, prev+(his[k]-prev)/2)
			}
		}
		pre := map[int]*nn.Jet{}
		p.rowJet(mrows, malphas, nil, pre)
		evaluated += len(mrows)
		mbr = map[int][][]int{}
		for _, l := range kl {
			in := pre[l]
			if in == nil {
				continue
			}
			ns := sws[l].Switches()
			brs := make([][]int, len(mrows))
			for r := range mrows {
				brs[r] = make([]int, ns)
				sws[l].Branches(in.Value().RawRowView(r), in.Velocity().RawRowView(r), in.Acceleration().RawRowView(r), brs[r])
			}
			mbr[l] = brs
		}
	}
	// Without ties, a kink of one switch needs only its left-sided row:
	// the right-sided jet is carried from it (carryJumps). outs[o] says
	// where output row o comes from: pass row .pass, plus jump .jump (≥ 0).
	jump := mbr == nil && p.jumpable()
	type outRow struct{ pass, jump int }
	var outs []outRow
	var jsel []int
	var jcs []crossing
	var rows []int
	var alphas []float64
	r0 = make([]int, len(exs))
	forced := map[int][]nn.Force{}
	for k, e := range exs {
		r0[k] = len(outs)
		for g, grp := range gss[k] {
			r := len(rows)
			if jump && len(grp) == 1 {
				c := grp[0]
				rows = append(rows, e)
				alphas = append(alphas, c.alpha)
				forced[c.layer] = append(forced[c.layer], nn.Force{Row: r, Unit: c.unit, Branch: c.from})
				outs = append(outs, outRow{r, -1}, outRow{r, len(jsel)})
				jsel = append(jsel, r)
				jcs = append(jcs, c)
				continue
			}
			rows = append(rows, e, e)
			alphas = append(alphas, grp[0].alpha, grp[0].alpha)
			outs = append(outs, outRow{r, -1}, outRow{r + 1, -1})
			own := map[[2]int]bool{}
			for _, c := range grp {
				own[[2]int{c.layer, c.unit}] = true
				forced[c.layer] = append(forced[c.layer], nn.Force{Row: r, Unit: c.unit, Branch: c.from}, nn.Force{Row: r + 1, Unit: c.unit, Branch: c.to})
			}
			before := 0
			if mbr != nil {
				before = m0[k] + g
				if eta > 0 {
					before = m0[k] + 2*g
				}
			}
			for l, brs := range mbr {
				for u, b := range brs[before] {
					if !own[[2]int{l, u}] {
						forced[l] = append(forced[l], nn.Force{Row: r, Unit: u, Branch: b}, nn.Force{Row: r + 1, Unit: u, Branch: brs[before+1][u]})
					}
				}
			}
		}
	}
	evaluated += len(rows)
	if len(jsel) == 0 && mbr == nil && !p.noFork {
		// every kink is a pair of rows (left, right) that differ only
		// from the top-level layer holding its shallowest switch on
		fork := make([]int, 0, len(rows)/2)
		for k := range exs {
			for _, grp := range gss[k] {
				s := grp[0].layer
				for _, c := range grp[1:] {
					s = min(s, c.layer)
				}
				fork = append(fork, p.stopAfter(s)-1)
			}
		}
		return p.forkedPairs(rows, alphas, forced, fork), r0, evaluated
	}
	if len(jsel) == 0 {
		return p.rowJet(rows, alphas, forced, nil), r0, evaluated
	}
	trace := map[int]*nn.Jet{}
	pj := p.rowPass(rows, alphas, forced, nil, trace, -1)
	dj := p.carryJumps(jsel, alphas, jcs, trace, pj)
	n, m, R := len(rows), len(jsel), len(outs)
	j = &nn.Jet{N: R, M: mat.NewDense(3*R, p.K, nil)}
	for o, src := range outs {
		for part := 0; part < 3; part++ {
			dst := j.M.RawRowView(part*R + o)
			copy(dst, pj.M.RawRowView(part*n+src.pass))
			if src.jump >= 0 {
				for c, v := range dj.M.RawRowView(part*m + src.jump) {
					dst[c] += v
				}
			}
		}
	}
	return j, r0, evaluated
}

type ctxAbort struct{ err error }

// ExampleGaussLength is the Gauss length of example i's output path on
// [lo, hi] by adaptive G7/K15 quadrature of the turning rate between its
// kinks, plus the kinks' corner angles (geometry.GaussLength, THEORY.md §3),
// with the kinks located by Path.Kinks and the path evaluated one example at
// a time (a per-row pass of one row per α). It is the exact per-example
// oracle for GaussLength, at a cost of hundreds of single-example passes.
// tol is the absolute tolerance in radians.
//
// Errors: those of Kinks and of geometry.GaussLength (a *geometry.ZeroSpeedError
// where the velocity vanishes inside (lo, hi) or at a kink, a
// *geometry.TangentJumpError for a corner Kinks missed, geometry.ErrNotConverged
// with the best Result), and ctx.Err() if ctx is cancelled.
func (p *Path) ExampleGaussLength(ctx context.Context, i int, lo, hi, tol float64) (res geometry.Result, err error) {
	ks, err := p.Kinks(ctx, i, lo, hi)
	if err != nil {
		return geometry.Result{}, err
	}
	gk := make([]geometry.Kink, len(ks))
	at := map[float64]int{}
	for g, k := range ks {
		gk[g] = geometry.Kink{Alpha: k.Alpha, Left: k.Left, Right: k.Right}
		at[k.Alpha] = g
	}
	curve := func(alpha float64, v, a []float64) {
		if err := ctx.Err(); err != nil {
			panic(ctxAbort{err})
		}
		if g, ok := at[alpha]; ok { // the right-sided jet at a kink
			copy(v, ks[g].Right)
			copy(a, ks[g].RightAcc)
			return
		}
		j := p.rowJet([]int{i}, []float64{alpha}, nil, nil)
		copy(v, j.M.RawRowView(1))
		copy(a, j.M.RawRowView(2))
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(ctxAbort)
			if !ok {
				panic(r)
			}
			res, err = geometry.Result{}, c.err
		}
	}()
	res, err = geometry.GaussLength(curve, p.K, lo, hi, gk, tol)
	var tj *geometry.TangentJumpError
	if errors.As(err, &tj) {
		err = fmt.Errorf("functionspace: example %d: a kink was not located: %w", i, err)
	}
	return res, err
}

// forkedPairs is rowJet(rows, alphas, forced, nil) for rows that come in
// pairs 2q, 2q+1 of one example at one α whose forced units lie at sites
// in top-level layer fork[q] or later (fork[q] < 2: anywhere): each
// pair's layers before fork[q] are evaluated once, in a prefix pass of
// one row per pair, and copied to both rows, which go on from there
// (rowPassFrom). Each row's arithmetic is the one a full pass does.
func (p *Path) forkedPairs(rows []int, alphas []float64, forced map[int][]nn.Force, fork []int) *nn.Jet {
	n := len(rows)
	byFork := map[int][]int{}
	var forks []int
	for q, t := range fork {
		if t < 2 {
			t = 0
		}
		if byFork[t] == nil {
			forks = append(forks, t)
		}
		byFork[t] = append(byFork[t], q)
	}
	// the forces of every row, by layer
	type lf struct {
		l int
		f nn.Force
	}
	forcesOf := make([][]lf, n)
	for l, fs := range forced {
		for _, f := range fs {
			forcesOf[f.Row] = append(forcesOf[f.Row], lf{l, f})
		}
	}
	out := &nn.Jet{N: n, M: mat.NewDense(3*n, p.K, nil)}
	for _, t := range forks {
		qs := byFork[t]
		m := 2 * len(qs)
		er, al := make([]int, m), make([]float64, m)
		fm := map[int][]nn.Force{}
		for k, q := range qs {
			for s := 0; s < 2; s++ {
				r := 2*q + s
				er[2*k+s], al[2*k+s] = rows[r], alphas[r]
				for _, x := range forcesOf[r] {
					f := x.f
					f.Row = 2*k + s
					fm[x.l] = append(fm[x.l], f)
				}
			}
		}
		var j *nn.Jet
		if t == 0 {
			j = p.rowPassDistinct(er, al, fm, nil, nil, -1)
		} else {
			pr, pa := make([]int, len(qs)), make([]float64, len(qs))
			idx := make([]int, m)
			for k := range qs {
				pr[k], pa[k] = er[2*k], al[2*k]
				idx[2*k], idx[2*k+1] = k, k
			}
			in := spreadRows(p.rowPassDistinct(pr, pa, nil, nil, nil, t), idx)
			j = p.rowPassFrom(t, in, al, fm, nil, nil, -1)
		}
		for k, q := range qs {
			for s := 0; s < 2; s++ {
				for part := 0; part < 3; part++ {
					copy(out.M.RawRowView(part*n+2*q+s), j.M.RawRowView(part*m+2*k+s))
				}
			}
		}
	}
	return out
}
