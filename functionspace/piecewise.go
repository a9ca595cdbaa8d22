package functionspace

import (
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
// kinked layer on (for the benchmark network its ReLU and the 1024×10
// output layer) are evaluated per kink (rowPassFrom), with the kink's own
// switches forced to either side as in sideJets.
type polyPlan struct {
	aff, mid, last int          // sites: the first kinked layer, the affine layer between, the second kinked layer
	swAff          nn.UnitInput // the first kinked layer's switching rule
	swLast         nn.Switching // the second's
	jumps          nn.UnitJumps // the layer at mid
	p0, dp         []*nn.Tensor // its tensors at θ0 and δ
	width          int          // the second kinked layer's input width
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
	return &polyPlan{aff: kl[0], mid: mid, last: kl[1], swAff: ua, swLast: sws[kl[1]],
		jumps: p.Model.Layers[mid].(nn.UnitJumps), p0: p.Model.LayerParams(p.Theta0, mid), dp: p.Model.LayerParams(p.Delta, mid),
		width: p.Model.Layers[kl[1]].InSize()}
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
		za, zda := pa.z[pl.aff].RawRowView(pd.i), pa.zd[pl.aff].RawRowView(pd.i)
		for _, c := range pd.cs {
			if c.layer != pl.aff {
				continue
			}
			if jrow[n] == nil {
				jrow[n] = map[int]int{}
			}
			jrow[n][c.unit] = len(units)
			u := c.unit
			z := za[u] + (c.alpha-a)*zda[u]
			x, y, q := pl.swAff.UnitSwitch(u, c.from, c.to, z, zda[u], 0)
			units = append(units, u)
			jal = append(jal, c.alpha)
			dz, dv, da = append(dz, x), append(dv, y), append(da, q)
		}
	}
	var jm *mat.Dense
	m := len(units)
	if m > 0 {
		jm = pl.jumps.JumpUnitRows(pl.p0, pl.dp, jal, units, dz, dv, da).M
	}
	jumpAt := func(r int) (z, zd, zdd []float64) {
		return jm.RawRowView(r), jm.RawRowView(m + r), jm.RawRowView(2*m + r)
	}
	// One Newton step on every second-layer crossing, from its unit's
	// pre-activation: the grid jet advanced to the guess plus the jumps of
	// the first-layer switches at or before it.
	x, xd := make([]float64, w), make([]float64, w)
	var gs []nn.Gap
	for n := range pend {
		pd := &pend[n]
		Z, Zd, Zdd := pa.z[pl.last].RawRowView(pd.i), pa.zd[pl.last].RawRowView(pd.i), pa.zdd[pl.last].RawRowView(pd.i)
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
				jz, jzd, jzdd := jumpAt(jrow[n][c.unit])
				s := g - c.alpha
				zv += jz[v] + s*jzd[v] + s*s/2*jzdd[v]
				zdv += jzd[v] + s*jzdd[v]
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
		cur := [3][]float64{pa.z[pl.last].RawRowView(pd.i), pa.zd[pl.last].RawRowView(pd.i), pa.zdd[pl.last].RawRowView(pd.i)}
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
