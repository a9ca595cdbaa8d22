package functionspace

import (
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// polyPlan is the structure that lets the grid Gauss length evaluate the
// one-sided jets at the kinks of an interval without a full per-row pass
// (polyJets): a chain of layers whose kinked layers are exactly two
// ReLU-family layers (nn.UnitInput), the first (site aff) on an input
// affine in α (Path.affineLayer), the second (site last) fed from the
// first's output by one layer affine in α (nn.AffineInAlpha, declaring
// nn.UnitJumps: Dense) with only identity layers besides: the
// 784-1024-1024-10 ReLU MLP and every two-hidden-layer ReLU-family MLP.
//
// Between two kinks of the first layer its output h is affine in α (each
// unit is s·z with z = A + αB), so the second kinked layer's input
// z₂ = W(α)h + b(α) is a quadratic polynomial in α: its jet (z₂, ż₂, z̈₂)
// at one α gives it exactly at every α up to the next first-layer kink, by
// Taylor's formula. At a first-layer kink of unit u, h changes by
// (s⁺ − s⁻)(z_u + (β − k)ż_u) (nn.UnitInput.UnitSwitch), and z₂ by the
// quadratic W(β)e_u·Δh_u(β): its jet at k is one column of W0 and ΔW
// (nn.UnitJumps.JumpUnitRows), O(width) instead of a matrix product. A
// second-layer kink changes no z₂ (only which side its unit takes). So
// z₂'s jet on either side of every kink follows from the grid point's jet
// by Taylor steps and rank-one jumps, and only the layers from the second
// kinked layer on are evaluated per kink (rowPassFrom), with the kink's own
// switches forced to either side as in sideJets — or, when one Dense layer
// follows it (the benchmark network's 1024×10 output layer), not even
// those: γ is then cubic between kinks and carried too (cubicJets).
type polyPlan struct {
	aff, mid, last int          // sites: the first kinked layer, the affine layer between, the second kinked layer
	swAff          nn.UnitInput // the first kinked layer's switching rule
	swLast         nn.Switching // the second's
	jumps          nn.UnitJumps // the layer at mid
	p0, dp         []*nn.Tensor // its tensors at θ0 and δ
	width          int          // the second kinked layer's input width
	// w0T and dwT are the mid layer's W0ᵀ and ΔWᵀ [In, Out] when it is
	// a Dense layer (nn.DenseWeights; columnJumps), else nil.
	w0T, dwT []float64
	// out is the site of the output layer when the layers after the
	// second kinked layer are one Dense layer (nn.DenseWeights) and
	// identity layers, and
	// that kinked layer is PiecewiseLinear (slopes on, off): then γ is
	// cubic in α between kinks and cubicJets carries it too; else −1
	// (rowPassFrom evaluates the layers after it).
	out      int
	on, off  float64
	outLayer nn.DenseWeights
	outP0    []*nn.Tensor // the output layer's tensors at θ0 and δ
	outDP    []*nn.Tensor
	// colMaxA, colMaxB and wcat are cubicFast's tables (fastTables),
	// filled when out ≥ 0 and w0T is set.
	colMaxA, colMaxB []float64
	wcat             *mat.Dense
	fast             sync.Pool // *fastWS
	hdd              sync.Pool // *mat.Dense: fastPoint's ḧ₂ rows
	// stdRule is set when both kinked layers take nn's unit-wise
	// switching rule (PiecewiseLinear layers without a Switching of their
	// own, nn.SwitchingOf): enterBits then gives their branches.
	stdRule bool
}

// polyPlan returns the plan of polyJets, or nil when the model is not of
// its shape (see polyPlan) or when the grid must take the general path:
// float32 passes (the grid points' jets would be rounded to float32),
// BatchNorm under `recompute`, a kinked layer that may tie, a residual
// block, or the general path forced by a test (noJumps, noPoly).
func (p *Path) polyPlan() *polyPlan {
	if p.noJumps || p.noPoly || p.f32 != nil || p.ref != nil || !p.chain() || p.mayTie() {
		return nil
	}
	kl, aff := p.kinkedLayers(), p.affineLayer()
	if len(kl) != 2 || aff < 0 || kl[0] != aff {
		return nil
	}
	sws := p.switchings()
	ua, ok1 := sws[kl[0]].(nn.UnitInput)
	ul, ok2 := sws[kl[1]].(nn.UnitInput)
	if !ok1 || !ok2 || !ua.UnitInput() || !ul.UnitInput() {
		return nil
	}
	// the first layer's output linear in its input on each branch (two
	// slopes), so that it is affine in α between its kinks
	if _, isPL := p.Model.Layers[kl[0]].(nn.PiecewiseLinear); !isPL {
		return nil
	}
	if _, own := p.Model.Layers[kl[0]].(nn.Switching); own {
		return nil
	}
	mid := -1
	for t := aff + 1; t < kl[1]; t++ {
		layer := p.Model.Layers[t]
		if isIdentity(layer) {
			continue
		}
		_, affine := layer.(nn.AffineInAlpha)
		if _, ok := layer.(nn.UnitJumps); !ok || !affine || mid >= 0 {
			return nil
		}
		mid = t
	}
	if mid < 0 {
		return nil
	}
	pl := &polyPlan{aff: kl[0], mid: mid, last: kl[1], swAff: ua, swLast: sws[kl[1]],
		jumps: p.Model.Layers[mid].(nn.UnitJumps), p0: p.Model.LayerParams(p.Theta0, mid), dp: p.Model.LayerParams(p.Delta, mid),
		width: p.Model.Layers[kl[1]].InSize(), out: -1}
	if d, ok := p.Model.Layers[mid].(nn.DenseWeights); ok && d.DenseWeights() {
		// its weight columns, contiguous (columnJumps)
		pl.w0T, pl.dwT = transpose(pl.p0[0].Data, d.OutSize(), d.InSize()), transpose(pl.dp[0].Data, d.OutSize(), d.InSize())
	}
	lastLayer := p.Model.Layers[kl[1]]
	pw, isPL := lastLayer.(nn.PiecewiseLinear)
	_, own := lastLayer.(nn.Switching)
	pl.stdRule = isPL && !own // the first kinked layer's checked above
	if !isPL || own || p.noCubic {
		return pl
	}
	out := -1
	for t := kl[1] + 1; t < len(p.Model.Layers); t++ {
		layer := p.Model.Layers[t]
		if isIdentity(layer) {
			continue
		}
		d, ok := layer.(nn.DenseWeights)
		if !ok || !d.DenseWeights() || out >= 0 {
			return pl
		}
		out = t
		pl.outLayer = d
	}
	if out < 0 {
		return pl
	}
	pl.out = out
	pl.on, pl.off = pw.Slopes()
	pl.outP0, pl.outDP = p.Model.LayerParams(p.Theta0, out), p.Model.LayerParams(p.Delta, out)
	if pl.w0T != nil {
		pl.fastTables()
	}
	return pl
}

// pendingKinks is one example's crossings inside one grid interval whose
// one-sided jets are evaluated (GaussLength): i the example, cs its
// crossings, ks the α of its kinks (groupCrossings) and r0 the row of the
// left jet of its first kink in the jets returned (left, right, left,
// right, … for each kink).
type pendingKinks struct {
	i  int
	cs []crossing
	ks []float64
	r0 int
}

// taylor2 writes into dst the jet at α + t of the quadratic polynomial
// whose jet at α is (z, zd, zdd): z + t·zd + t²/2·zdd, zd + t·zdd, zdd.
func taylor2(dst [3][]float64, z, zd, zdd []float64, t float64) {
	h := t * t / 2
	for u := range z {
		dst[0][u] = z[u] + t*zd[u] + h*zdd[u]
		dst[1][u] = zd[u] + t*zdd[u]
		dst[2][u] = zdd[u]
	}
}

// polyJets evaluates the one-sided output jets at the kinks of the
// examples pend inside the grid interval [pa.alpha, pb.alpha] on a model
// of plan pl (see polyPlan), as sideJets does with per-row passes, and
// refines every crossing of the second kinked layer first by one Newton
// step on its exact pre-activation (as switchInputs does, here from the
// polynomial). It fills pend[n].ks and pend[n].r0 and returns the jet
// [3R, K] whose rows r0 + 2g and r0 + 2g + 1 are the left and right jets
// at kink g, and the number of rows of the pass after the second kinked
// layer.
//
// The jet of the second kinked layer's input at pa (the grid pass's, with
// the first layer's units on the branch the path enters for increasing α)
// is carried kink by kink: advanced by Taylor steps (taylor2), changed by
// the jump of every first-layer switch (JumpUnitRows at the switch, its
// unit's z = z(a) + (k − a)ż(a) and ż from the grid point: the first
// layer's input is affine). At a kink the left jet is the carried one
// with the kink's second-layer switches forced to their branch before, the
// right jet the carried one plus the kink's first-layer jumps with its
// second-layer switches forced to their branch after; every other unit of
// the second layer takes the branch its rule gives at the kink, as in a
// per-row pass.
func (p *Path) polyJets(pl *polyPlan, pa *gridPoint, b float64, pend []pendingKinks) (*nn.Jet, int) {
	a := pa.alpha
	w := pl.width
	// The jumps of every first-layer switch, one batched call.
	var units []int
	var jal, dz, dv, da []float64
	jrow := make([]map[int]int, len(pend)) // per example: unit → row of its jump
	for n, pd := range pend {
		var za, zda []float64
		if pa.lean {
			za, zda = pa.firstRow(pd.i) // z₁(a) = a·ż₁ + za below, as Path.firstJet rounds it
		} else {
			za, zda = pa.z[pl.aff].RawRowView(pd.i), pa.zd[pl.aff].RawRowView(pd.i)
		}
		for _, c := range pd.cs {
			if c.layer != pl.aff {
				continue
			}
			if jrow[n] == nil {
				jrow[n] = map[int]int{}
			}
			jrow[n][c.unit] = len(units)
			u := c.unit
			zu := za[u]
			if pa.lean {
				zu = a*zda[u] + za[u]
			}
			z := zu + (c.alpha-a)*zda[u]
			x, y, q := pl.swAff.UnitSwitch(u, c.from, c.to, z, zda[u], 0)
			units = append(units, u)
			jal = append(jal, c.alpha)
			dz, dv, da = append(dz, x), append(dv, y), append(da, q)
		}
	}
	// cubicFast needs the jumps at a few units only: no jump rows.
	fast := pl.out >= 0 && pl.w0T != nil && !p.noFastCubic
	var jm *mat.Dense
	m := len(units)
	if m > 0 && !fast {
		jm = pl.columnJumps(jal, units, dz, dv, da)
	}
	jumpAt := func(r int) (z, zd, zdd []float64) {
		return jm.RawRowView(r), jm.RawRowView(m + r), jm.RawRowView(2*m + r)
	}
	jumpElem := func(r, v int) (z, zd, zdd float64) {
		if jm != nil {
			return jm.At(r, v), jm.At(m+r, v), jm.At(2*m+r, v)
		}
		return pl.jumpElem(jal[r], units[r], v, dz[r], dv[r], da[r])
	}
	// One Newton step on every second-layer crossing, from its unit's
	// pre-activation: the grid jet advanced to the guess plus the jumps of
	// the first-layer switches at or before it.
	x, xd := make([]float64, w), make([]float64, w)
	var gs []nn.Gap
	for n := range pend {
		pd := &pend[n]
		Z, Zd, Zdd := pa.jetRow(pl.last, pd.i)
		for q, cr := range pd.cs {
			if cr.layer != pl.last {
				continue
			}
			v, g := cr.unit, cr.alpha
			t := g - a
			zv, zdv := Z[v]+t*Zd[v]+t*t/2*Zdd[v], Zd[v]+t*Zdd[v]
			for _, c := range pd.cs {
				if c.layer != pl.aff || c.alpha > g {
					continue
				}
				jz, jzd, jzdd := jumpElem(jrow[n][c.unit], v)
				s := g - c.alpha
				zv += jz + s*jzd + s*s/2*jzdd
				zdv += jzd + s*jzdd
			}
			x[v], xd[v] = zv, zdv
			gs = pl.swLast.Gaps(gs[:0], v, cr.from, x, xd, nil)
			if gg, ok := gapTo(gs, cr.to); ok && gg.SD != 0 {
				if r := cr.alpha - gg.S/gg.SD; r >= a && r <= b {
					pd.cs[q].alpha = r
				}
			}
			x[v], xd[v] = 0, 0
		}
	}
	// The jets of the second kinked layer's input on either side of every
	// kink, carried from pa.
	var R int
	gss := make([][][]crossing, len(pend))
	for n := range pend {
		gss[n] = groupCrossings(pend[n].cs)
		R += 2 * len(gss[n])
	}
	if fast {
		return p.cubicFast(pl, pa, b, pend, gss, jrow, switchJumps{units, jal, dz, dv, da}, R)
	}
	if pl.out >= 0 {
		return p.cubicJets(pl, pa, pend, gss, jrow, jumpAt, R)
	}
	in := &nn.Jet{N: R, M: mat.NewDense(3*R, w, nil)}
	row := func(r int) [3][]float64 {
		return [3][]float64{in.M.RawRowView(r), in.M.RawRowView(R + r), in.M.RawRowView(2*R + r)}
	}
	alphas := make([]float64, R)
	forced := map[int][]nn.Force{}
	r := 0
	for n := range pend {
		pd := &pend[n]
		pd.r0 = r
		pd.ks = pd.ks[:0]
		z, zd, zdd := pa.jetRow(pl.last, pd.i)
		cur := [3][]float64{z, zd, zdd}
		at := a
		for _, grp := range gss[n] {
			k := grp[0].alpha
			pd.ks = append(pd.ks, k)
			left, right := row(r), row(r+1)
			taylor2(left, cur[0], cur[1], cur[2], k-at)
			copy(right[0], left[0])
			copy(right[1], left[1])
			copy(right[2], left[2])
			for _, c := range grp {
				if c.layer == pl.aff {
					jz, jzd, jzdd := jumpAt(jrow[n][c.unit])
					s := k - c.alpha
					for u := range right[0] {
						right[0][u] += jz[u] + s*jzd[u] + s*s/2*jzdd[u]
						right[1][u] += jzd[u] + s*jzdd[u]
						right[2][u] += jzdd[u]
					}
					continue
				}
				forced[pl.last] = append(forced[pl.last], nn.Force{Row: r, Unit: c.unit, Branch: c.from}, nn.Force{Row: r + 1, Unit: c.unit, Branch: c.to})
			}
			alphas[r], alphas[r+1] = k, k
			cur, at = right, k
			r += 2
		}
	}
	return p.rowPassFrom(pl.last, in, alphas, forced, nil, nil, -1), R
}

// cubicJets is the end of polyJets when the layers after the second
// kinked layer are one Dense layer (polyPlan.out): with the second
// layer's pattern fixed, h₂ = D·z₂ is quadratic in α and γ = W(α)h₂ + b(α)
// cubic between kinks, so γ′ and γ″ on either side of every kink follow
// from the grid point's by Taylor steps with γ‴ = 3ΔW·ḧ₂, plus jumps: a
// kink of second-layer switches only changes h₂ in those units, by
// (s_to − s_from)·z₂_v, and γ by one column of W(α) and ΔW (O(K) each); a
// kink with first-layer switches changes h₂ by the difference of the two
// sides' D·z₂, carried by one row of the output layer's jump rule
// (nn.Dense.JumpRows), batched over the chunk.
//
// The pattern D starts as the branches the grid pass took at pa and
// changes at every located second-layer switch; at every kink it is
// checked against the branches a per-row pass would take there
// (nn.Switching.Branches of the carried z₂, the kink's own units forced).
// Where they differ (a second-layer crossing located on the other side of
// this kink, or two crossings of one unit inside one grid interval, not
// located), that side's jets are evaluated from the carried z₂ with the
// branches at the kink (one row of the output layer, with its bias), as
// rowPassFrom would, and the carrying restarts from there. The value rows
// of the returned jet are not computed (0): GaussLength uses velocities
// and accelerations only. It returns the jet and the number of rows of
// the output layer evaluated.
func (p *Path) cubicJets(pl *polyPlan, pa *gridPoint, pend []pendingKinks, gss [][][]crossing, jrow []map[int]int, jumpAt func(int) (z, zd, zdd []float64), R int) (*nn.Jet, int) {
	a, w, K := pa.alpha, pl.width, p.K
	slope := func(b int) float64 {
		if b == 1 {
			return pl.on
		}
		return pl.off
	}
	// Rows of the output layer to evaluate: anchors (the whole h₂ jet of
	// one side, with the bias terms) and deltas (the change of h₂'s jet at
	// a kink, without them), each with γ‴ from its acceleration.
	type job struct {
		alpha float64
		h     [3][]float64
	}
	var anchors, deltas []job
	var starts [][]float64 // ḧ₂ at pa, per example (for γ‴ there)
	newJob := func() [3][]float64 {
		return [3][]float64{make([]float64, w), make([]float64, w), make([]float64, w)}
	}
	hJet := func(z [3][]float64, br []int) [3][]float64 {
		h := newJob()
		for u, b := range br {
			s := slope(b)
			h[0][u], h[1][u], h[2][u] = s*z[0][u], s*z[1][u], s*z[2][u]
		}
		return h
	}
	// Where the jets of each side of every kink (output-row order) come
	// from: anchor job ≥ 0; else carried, plus delta job ≥ 0 or the
	// one-hot jumps oh.
	type oneHot struct {
		v          int
		dz, dv, da float64
	}
	type side struct {
		anchor, delta int
		oh            []oneHot
	}
	sides := make([]side, R)
	start := make([]int, len(pend)) // row of starts, per example
	br, brR, D := make([]int, w), make([]int, w), make([]int, w)
	own := map[int]int{} // second-layer unit → its branch after, at the current kink
	cur, zl, zr := newJob(), newJob(), newJob()
	r := 0
	for n := range pend {
		pd := &pend[n]
		pd.r0 = r
		pd.ks = pd.ks[:0]
		i := pd.i
		z, zd, zdd := pa.jetRow(pl.last, i)
		copy(cur[0], z)
		copy(cur[1], zd)
		copy(cur[2], zdd)
		pl.swLast.Branches(cur[0], cur[1], cur[2], D)
		start[n] = len(starts)
		acc := make([]float64, w)
		for u, b := range D {
			acc[u] = slope(b) * cur[2][u]
		}
		starts = append(starts, acc)
		at := a
		for _, grp := range gss[n] {
			k := grp[0].alpha
			pd.ks = append(pd.ks, k)
			taylor2(zl, cur[0], cur[1], cur[2], k-at)
			clear(own)
			hasAff, moved := false, false
			for _, c := range grp {
				if c.layer == pl.aff {
					hasAff = true
					continue
				}
				own[c.unit] = c.to
				// the left side: forced to its branch before, which the
				// carried pattern may not have (after a restart at a kink
				// where the rule had it switched already)
				moved = moved || D[c.unit] != c.from
				D[c.unit] = c.from
			}
			left := side{anchor: -1, delta: -1}
			pl.swLast.Branches(zl[0], zl[1], zl[2], br)
			if moved || !samePattern(br, D, own) {
				for u, b := range br {
					if _, ok := own[u]; !ok {
						D[u] = b
					}
				}
				left.anchor = len(anchors)
				anchors = append(anchors, job{k, hJet(zl, D)})
			}
			// Right side: z₂ plus the first-layer jumps, the own units on
			// their branch after.
			copy(zr[0], zl[0])
			copy(zr[1], zl[1])
			copy(zr[2], zl[2])
			for _, c := range grp {
				if c.layer != pl.aff {
					continue
				}
				jz, jzd, jzdd := jumpAt(jrow[n][c.unit])
				s := k - c.alpha
				for u := range zr[0] {
					zr[0][u] += jz[u] + s*jzd[u] + s*s/2*jzdd[u]
					zr[1][u] += jzd[u] + s*jzdd[u]
					zr[2][u] += jzdd[u]
				}
			}
			right := side{anchor: -1, delta: -1}
			if hasAff {
				pl.swLast.Branches(zr[0], zr[1], zr[2], brR)
			} else {
				copy(brR, br)
			}
			for u, b := range own {
				brR[u] = b
			}
			consistent := true
			for u, b := range brR {
				if b != D[u] {
					if _, ok := own[u]; !ok {
						consistent = false
						break
					}
				}
			}
			switch {
			case !consistent:
				right.anchor = len(anchors)
				anchors = append(anchors, job{k, hJet(zr, brR)})
			case hasAff:
				d := newJob()
				for u, b := range brR {
					sr, sl := slope(b), slope(D[u])
					for q := 0; q < 3; q++ {
						d[q][u] = sr*zr[q][u] - sl*zl[q][u]
					}
				}
				right.delta = len(deltas)
				deltas = append(deltas, job{k, d})
			default:
				for v, to := range own {
					ds := slope(to) - slope(D[v])
					right.oh = append(right.oh, oneHot{v: v, dz: ds * zl[0][v], dv: ds * zl[1][v], da: ds * zl[2][v]})
				}
			}
			copy(D, brR)
			cur, zr = zr, cur
			at = k
			sides[r], sides[r+1] = left, right
			r += 2
		}
	}
	// The output layer's rows, batched: γ′ and γ″ (nn.Dense.JetRows; the
	// jumps by JumpRows, without the bias) and γ‴ = 3ΔW·ḧ₂.
	eval := func(js []job, bias bool) (*nn.Jet, *mat.Dense) {
		if len(js) == 0 {
			return nil, nil
		}
		m := len(js)
		in := &nn.Jet{N: m, M: mat.NewDense(3*m, w, nil)}
		als := make([]float64, m)
		for q, j := range js {
			als[q] = j.alpha
			for part := 0; part < 3; part++ {
				copy(in.M.RawRowView(part*m+q), j.h[part])
			}
		}
		var out *nn.Jet
		if bias {
			out = pl.outLayer.JetRows(pl.outP0, pl.outDP, als, in)
		} else {
			out = pl.outLayer.JumpRows(pl.outP0, pl.outDP, als, in)
		}
		g3 := mat.NewDense(m, K, nil)
		g3.Mul(in.Acceleration(), pl.outDP[0].Matrix().T())
		g3.Scale(3, g3)
		return out, g3
	}
	var sg3 *mat.Dense
	if len(starts) > 0 {
		sg3 = mat.NewDense(len(starts), K, nil)
		acc := mat.NewDense(len(starts), w, nil)
		for q, h := range starts {
			copy(acc.RawRowView(q), h)
		}
		sg3.Mul(acc, pl.outDP[0].Matrix().T())
		sg3.Scale(3, sg3)
	}
	aj, ag3 := eval(anchors, true)
	dj, dg3 := eval(deltas, false)
	w0, dw := pl.outP0[0].Data, pl.outDP[0].Data // [K, w], row-major
	res := &nn.Jet{N: R, M: mat.NewDense(3*R, K, nil)}
	v1, v2, g3 := make([]float64, K), make([]float64, K), make([]float64, K)
	for n := range pend {
		pd := &pend[n]
		copy(v1, pa.s.Velocity.RawRowView(pd.i))
		copy(v2, pa.s.Acceleration.RawRowView(pd.i))
		copy(g3, sg3.RawRowView(start[n]))
		at := a
		for g, k := range pd.ks {
			for s := 0; s < 2; s++ {
				r := pd.r0 + 2*g + s
				sd := sides[r]
				if t := k - at; t != 0 {
					for c := range v1 {
						v1[c] += t*v2[c] + t*t/2*g3[c]
						v2[c] += t * g3[c]
					}
				}
				at = k
				switch {
				case sd.anchor >= 0:
					copy(v1, aj.Velocity().RawRowView(sd.anchor))
					copy(v2, aj.Acceleration().RawRowView(sd.anchor))
					copy(g3, ag3.RawRowView(sd.anchor))
				case sd.delta >= 0:
					dv, da, d3 := dj.Velocity().RawRowView(sd.delta), dj.Acceleration().RawRowView(sd.delta), dg3.RawRowView(sd.delta)
					for c := range v1 {
						v1[c] += dv[c]
						v2[c] += da[c]
						g3[c] += d3[c]
					}
				default:
					for _, o := range sd.oh {
						addOneHotJump(v1, v2, g3, w0, dw, w, o.v, k, o.dz, o.dv, o.da)
					}
				}
				copy(res.M.RawRowView(R+r), v1)
				copy(res.M.RawRowView(2*R+r), v2)
			}
		}
	}
	return res, len(anchors) + len(deltas)
}

// samePattern reports whether the branches br at a kink equal the carried
// pattern d on every unit but the kink's own (forced) ones.
func samePattern(br, d []int, own map[int]int) bool {
	for u, b := range br {
		if b != d[u] {
			if _, ok := own[u]; !ok {
				return false
			}
		}
	}
	return true
}

// transpose returns the transpose [c, r] of the row-major matrix m [r, c].
func transpose(m []float64, r, c int) []float64 {
	t := make([]float64, len(m))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			t[j*r+i] = m[i*c+j]
		}
	}
	return t
}

// columnJumps is nn.UnitJumps.JumpUnitRows of the mid layer [3m, Out]:
// row r the change of its output jet at α = alphas[r] when input element
// units[r] changes by (dz, dv, da)[r]; for a Dense layer from its
// transposed weights (a column of W0 and ΔW read contiguously), else by
// the layer's own rule.
func (pl *polyPlan) columnJumps(alphas []float64, units []int, dz, dv, da []float64) *mat.Dense {
	if pl.w0T == nil {
		return pl.jumps.JumpUnitRows(pl.p0, pl.dp, alphas, units, dz, dv, da).M
	}
	n, out := len(units), pl.width
	m := mat.NewDense(3*n, out, nil)
	for r, u := range units {
		al := alphas[r]
		a, b := pl.w0T[u*out:(u+1)*out], pl.dwT[u*out:(u+1)*out]
		z, zd, zdd := m.RawRowView(r), m.RawRowView(n+r), m.RawRowView(2*n+r)
		for o := range z {
			// as nn.Dense.JumpUnitRows, term by term
			z[o] = dz[r]*a[o] + al*(dz[r]*b[o])
			zd[o] = dz[r]*b[o] + dv[r]*a[o] + al*(dv[r]*b[o])
			zdd[o] = 2*(dv[r]*b[o]) + da[r]*a[o] + al*(da[r]*b[o])
		}
	}
	return m
}

// addOneHotJump adds to the output layer's velocity v1, acceleration v2 and
// third derivative g3 (each [Out]) at α = k the change that one hidden unit
// v's output jet (dz, dv, da) makes through W(α) = W0 + α·ΔW (w0, dw:
// [Out, w] row-major): v1 += dz·ΔW[:,v] + dv·W(k)[:,v], v2 += 2·dv·ΔW[:,v]
// + da·W(k)[:,v], g3 += 3·da·ΔW[:,v] (THEORY.md §2's product rule). Shared
// by cubicJets' and cubicFast's one-hot jumps, so both carry the same
// arithmetic bit for bit.
func addOneHotJump(v1, v2, g3, w0, dw []float64, w, v int, k, dz, dv, da float64) {
	for c := range v1 {
		w0c, dwc := w0[c*w+v], dw[c*w+v]
		wk := w0c + k*dwc
		v1[c] += dz*dwc + dv*wk
		v2[c] += 2*dv*dwc + da*wk
		g3[c] += 3 * da * dwc
	}
}
