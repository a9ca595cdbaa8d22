package functionspace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/certify-mli/certify/geometry"
	"github.com/certify-mli/certify/nn"
)

// Kink is a point α where one example's output path has a corner: a
// pre-activation z of a ReLU-family unit crosses 0, so σ′ jumps and γ′ with
// it (THEORY.md §2–§3, piecewise-smooth paths).
type Kink struct {
	// Alpha is where z = 0.
	Alpha float64
	// Layer is the site index (nn.Site.Index in Model.WalkSites order: the
	// index in Model.Layers for a model without residual blocks; inside a
	// block, its place among all leaf layers, body before shortcut) of the
	// activation whose input crosses 0, Unit the unit. Crossings at exactly the same α are merged
	// into one Kink (its one-sided jets take every one of them into account);
	// Layer and Unit then name the first.
	Layer, Unit int
	// Left and Right are the one-sided velocities γ′(α⁻) and γ′(α⁺), LeftAcc
	// and RightAcc the one-sided accelerations γ″(α⁻), γ″(α⁺), each [K]:
	// the jets of the ReLU regions on either side, evaluated at α with the
	// crossing unit forced to the side before and after the crossing.
	Left, Right, LeftAcc, RightAcc []float64
}

// KinkSweep is the number of intervals of the single-example sweep with
// which Path.Kinks brackets the crossings of pre-activations that are not
// affine in α (every ReLU-family layer after the first).
const KinkSweep = 512

// kinkedLayers returns the site indices (nn.Site.Index, Model.WalkSites)
// of the ReLU-family activation layers, those inside residual blocks
// included. For a model without blocks a site index is the index in
// Model.Layers.
func (p *Path) kinkedLayers() []int {
	var ls []int
	_ = p.Model.WalkSites(func(s nn.Site, layer nn.Layer) error {
		if k, ok := layer.(nn.KinkSites); ok && k.Kinked() { // declared by every layer: Path.build checks nn.RuleKinks
			ls = append(ls, s.Index)
		}
		return nil
	})
	return ls
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

// affineLayer returns the index of the kinked activation whose input is
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

// refineCrossing locates α in (a, b] where unit u of layer l of example i
// leaves the side before (the side at a, before = enters(z(a))) by
// safeguarded Newton iteration on the exact pre-activation, starting at
// guess, keeping a bracket [lo, hi] with side(lo) = before ≠ side(hi).
func (p *Path) refineCrossing(ctx context.Context, i, l, u int, a, b, guess float64, before bool) (float64, error) {
	lo, hi := a, b
	x := guess
	for it := 0; it < 100; it++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if !(x > lo && x < hi) {
			x = lo + (hi-lo)/2
		}
		z, zd, zdd := p.preJet(i, l, u, x)
		if enters(z, zd, zdd) == before {
			lo = x
		} else {
			hi = x
		}
		if z == 0 {
			return x, nil
		}
		next := x - z/zd
		if zd != 0 && math.Abs(next-x) <= 2*ulp(x) {
			return math.Min(math.Max(next, lo), hi), nil
		}
		if hi-lo <= 2*ulp(hi) {
			return hi, nil
		}
		x = next
		if zd == 0 || math.IsNaN(x) {
			x = lo + (hi-lo)/2
		}
	}
	return lo + (hi-lo)/2, nil
}

func ulp(x float64) float64 {
	x = math.Abs(x)
	return math.Nextafter(x, math.Inf(1)) - x
}

type crossing struct {
	alpha       float64
	layer, unit int
	rightActive bool
}

// Kinks locates every kink of example i's output path in (lo, hi] (a kink
// exactly at lo is not a corner of the path on [lo, hi]) and returns them
// sorted by α, with their one-sided velocities and accelerations.
//
// For the first ReLU-family layer, whose input is affine in α (z = A + αB,
// THEORY.md §2), the crossings are α = −A/B in closed form. For deeper
// layers, a sweep of KinkSweep intervals (one batched per-row-α pass of
// KinkSweep+1 rows of the one example) brackets the sign changes of z, the
// closed-form kinks of the first layer are added to the sweep's points, the
// cubic Hermite interpolant of (z, ż) at both ends gives a starting guess
// (and reveals a pair of crossings inside one interval when its extremum has
// the other sign), and safeguarded Newton iterations on the exact z, one
// single-example pass each, refine it to a few ulps. A pair of crossings of
// one deeper unit inside one sweep interval that the interpolant does not
// reveal is missed (ExampleGaussLength then finds it as an unreported corner).
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
		pre0 := map[int]*nn.Jet{}
		p.rowJet([]int{i}, []float64{lo}, nil, pre0)
		z, zd := pre0[aff].Value(), pre0[aff].Velocity()
		_, width := z.Dims()
		for u := 0; u < width; u++ {
			if v := zd.At(0, u); v != 0 {
				if r := lo - z.At(0, u)/v; r > lo && r < hi {
					alphas = append(alphas, r)
				}
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
	for _, l := range kl {
		z, zd, zdd := pre[l].Value(), pre[l].Velocity(), pre[l].Acceleration()
		_, width := z.Dims()
		if l == aff {
			for u := 0; u < width; u++ {
				z0, v := z.At(0, u), zd.At(0, u)
				if v == 0 {
					continue
				}
				if r := lo - z0/v; r > lo && r <= hi {
					cs = append(cs, crossing{r, l, u, v > 0})
				}
			}
			continue
		}
		for u := 0; u < width; u++ {
			for j := 0; j < n; j++ {
				a, b := alphas[j], alphas[j+1]
				sa := enters(z.At(j, u), zd.At(j, u), zdd.At(j, u))
				sb := enters(z.At(j+1, u), zd.At(j+1, u), zdd.At(j+1, u))
				c := hermite{a: a, h: b - a, za: z.At(j, u), zb: z.At(j+1, u), da: zd.At(j, u), db: zd.At(j+1, u)}
				if sa != sb {
					r, err := p.refineCrossing(ctx, i, l, u, a, b, a+c.h*c.root(), sa)
					if err != nil {
						return nil, err
					}
					cs = append(cs, crossing{r, l, u, sb})
					continue
				}
				for _, s := range c.extrema() {
					if v := c.at(s); v == 0 || (v > 0) == sa {
						continue
					}
					m := a + c.h*s
					zm, zdm, zddm := p.preJet(i, l, u, m)
					if enters(zm, zdm, zddm) == sa {
						continue
					}
					r1, err := p.refineCrossing(ctx, i, l, u, a, m, a+c.h*s/2, sa)
					if err != nil {
						return nil, err
					}
					r2, err := p.refineCrossing(ctx, i, l, u, m, b, (m+b)/2, !sa)
					if err != nil {
						return nil, err
					}
					cs = append(cs, crossing{r1, l, u, !sa}, crossing{r2, l, u, sa})
					break
				}
			}
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].alpha < cs[b].alpha })
	// Merge crossings at one α and evaluate both one-sided jets of every
	// kink in one per-row pass: rows 2g (left) and 2g+1 (right).
	var groups [][]crossing
	for _, c := range cs {
		if g := len(groups); g > 0 && groups[g-1][0].alpha == c.alpha {
			groups[g-1] = append(groups[g-1], c)
		} else {
			groups = append(groups, []crossing{c})
		}
	}
	rows = make([]int, 2*len(groups))
	alphas = make([]float64, 2*len(groups))
	var forced []side
	for g, grp := range groups {
		rows[2*g], rows[2*g+1] = i, i
		alphas[2*g], alphas[2*g+1] = grp[0].alpha, grp[0].alpha
		for _, c := range grp {
			forced = append(forced, side{2 * g, c.layer, c.unit, !c.rightActive}, side{2*g + 1, c.layer, c.unit, c.rightActive})
		}
	}
	j := p.rowJet(rows, alphas, forced, nil)
	vel, acc := j.Velocity(), j.Acceleration()
	ks := make([]Kink, len(groups))
	for g, grp := range groups {
		ks[g] = Kink{Alpha: grp[0].alpha, Layer: grp[0].layer, Unit: grp[0].unit,
			Left: append([]float64(nil), vel.RawRowView(2*g)...), Right: append([]float64(nil), vel.RawRowView(2*g+1)...),
			LeftAcc: append([]float64(nil), acc.RawRowView(2*g)...), RightAcc: append([]float64(nil), acc.RawRowView(2*g+1)...)}
	}
	return ks, nil
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
