package functionspace

import (
	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// side forces the side of one ReLU-family unit in a per-row pass: row r of
// the pass takes unit Unit of activation layer Layer as active (slope 1) or
// inactive (the negative slope), whatever the sign of its pre-activation.
// It is how one-sided jets at a kink are evaluated (THEORY.md §2: "use
// one-sided derivatives").
type side struct {
	row, layer, unit int
	active           bool
}

// rowJet is the second-order forward pass of THEORY.md §2 for examples
// rows[r] each at its own α = alphas[r] (a batched pass whose rows need not
// share α). An affine layer with W(α) = W0 + αΔW computes P0 = H W0ᵀ and
// P1 = H ΔWᵀ for the stacked input H = [h; ḣ; ḧ] (six products instead of
// the five of nn.Dense.Jet, the price of per-row α) and
//
//	z = P0h + α P1h + b0 + αΔb,  ż = P1h + P0ḣ + α P1ḣ + Δb,  z̈ = 2 P1ḣ + P0ḧ + α P1ḧ.
//
// The first layer's cached products are used when present. ReLU-family units
// take the side the path enters for increasing α (as nn.Activation.Jet),
// except where forced lists another. If pre is not nil, pre[l] receives the
// input jet (the pre-activations) of every kinked activation layer l.
// It returns the output jet [3n, K].
func (p *Path) rowJet(rows []int, alphas []float64, forced []side, pre map[int]*nn.Jet) *nn.Jet {
	n := len(rows)
	var j *nn.Jet
	start := 0
	if p.first != nil {
		_, w := p.first[0].M.Dims()
		j = &nn.Jet{N: n, M: mat.NewDense(3*n, w, nil)}
		val, vel := j.Value(), j.Velocity()
		for r, i := range rows {
			f := p.first[i/p.opt.Chunk]
			q := i % p.opt.Chunk
			a, b := f.Value().RawRowView(q), f.Velocity().RawRowView(q)
			dst := val.RawRowView(r)
			for u := range dst {
				dst[u] = a[u] + alphas[r]*b[u]
			}
			copy(vel.RawRowView(r), b)
		}
		start = 1
	} else {
		_, d := p.X.Dims()
		x := mat.NewDense(n, d, nil)
		for r, i := range rows {
			copy(x.RawRowView(r), p.X.RawRowView(i))
		}
		j = nn.NewConstJet(x)
	}
	var refs map[float64]*Params // `recompute`: the reference statistics at each distinct α
	if p.ref != nil {
		refs = map[float64]*Params{}
		for _, a := range alphas {
			if refs[a] == nil {
				refs[a] = p.ParamsAt(a)
			}
		}
	}
	// Every layer provides these rules: Path.build checks them up front
	// (nn.RuleKinks, nn.RulePerRow). The pass descends into residual blocks
	// (nn.DescendJet): a ReLU inside a block is a site like any other, its
	// pre-activation goes to pre[site] and its side may be forced; the
	// block joins its branches with its own per-row rule (CombineRows).
	top := 0
	leaf := func(l int, layer nn.Layer, p0, dp []*nn.Tensor, j *nn.Jet) *nn.Jet {
		if k, ok := layer.(nn.PiecewiseLinear); ok && k.Kinked() && !j.Const {
			if pre != nil {
				pre[l] = j
			}
			return kinkedRows(k, l, j, forced)
		}
		if b, ok := layer.(nn.BatchStatistics); ok && p.ref != nil {
			return p.bnRowsRecompute(b, top, alphas, j, refs) // top level only: Path.build refuses recompute inside blocks
		}
		if r, ok := layer.(nn.RowJetter); ok {
			return r.JetRows(p0, dp, alphas, j)
		}
		return layer.Jet(nil, nil, j) // no parameters (nn.RulePerRow): its jet does not depend on α
	}
	join := func(b nn.Block, p0, dp []*nn.Tensor, body, shortcut *nn.Jet) *nn.Jet {
		return b.CombineRows(p0, dp, alphas, body, shortcut)
	}
	site := p.Model.FirstSite(start)
	_ = p.Model.Walk(start, func(i int, layer nn.Layer) error {
		top = i
		j, site = nn.DescendJet(layer, site, p.Model.LayerParams(p.Theta0, i), p.Model.LayerParams(p.Delta, i), j, leaf, join)
		return nil
	})
	return unconst(j)
}

// bnRowsRecompute is the `recompute` policy's BatchNorm rule in a per-row
// pass: the rows are grouped by their α, and every group is normalised with
// the reference batch's statistics jet at that α (refs, one reference pass
// per distinct α; the reference batch's first-layer products are cached, so
// a reference pass costs the deeper layers only) and the layer's parameters
// at that α.
//
// The reference pass takes every reference example's ReLU-family units on
// the side the path enters for increasing α, whatever sides forced sets for
// the rows: at a kink of example i that is also a reference example, the
// left-sided jet of row i is evaluated with the right-sided statistics (an
// error of order 1/R in the left jet, R = BNReference).
func (p *Path) bnRowsRecompute(b nn.BatchStatistics, l int, alphas []float64, in *nn.Jet, refs map[float64]*Params) *nn.Jet {
	n, c := in.N, b.OutSize()
	groups := map[float64][]int{}
	var order []float64
	for r, a := range alphas {
		if groups[a] == nil {
			order = append(order, a)
		}
		groups[a] = append(groups[a], r)
	}
	out := &nn.Jet{N: n, M: mat.NewDense(3*n, c, nil)}
	for _, a := range order {
		rs := groups[a]
		m := len(rs)
		sub := &nn.Jet{N: m, M: mat.NewDense(3*m, c, nil), Const: in.Const}
		if in.Const {
			sub.M = mat.NewDense(m, c, nil)
		}
		parts, _ := in.M.Dims()
		parts /= n
		for k := 0; k < parts; k++ {
			for q, r := range rs {
				copy(sub.M.RawRowView(k*m+q), in.M.RawRowView(k*n+r))
			}
		}
		ps := refs[a]
		y := b.JetStats(ps.at[l], ps.dp[l], ps.stats[l], sub)
		if y.Const { // nothing depends on α: zero derivatives
			full := mat.NewDense(3*m, c, nil)
			full.Slice(0, m, 0, c).(*mat.Dense).Copy(y.M)
			y = &nn.Jet{N: m, M: full}
		}
		for k := 0; k < 3; k++ {
			for q, r := range rs {
				copy(out.M.RawRowView(k*n+r), y.M.RawRowView(k*m+q))
			}
		}
	}
	return out
}

// enters reports the side of the kink the path is on just after α for a
// pre-activation with jet (z, ż, z̈): the rule of nn.Activation.Jet.
func enters(z, zd, zdd float64) bool {
	return z > 0 || (z == 0 && (zd > 0 || (zd == 0 && zdd >= 0)))
}

// kinkedRows applies a ReLU-family activation to a jet, forcing the sides
// listed in forced for layer l.
func kinkedRows(a nn.PiecewiseLinear, l int, in *nn.Jet, forced []side) *nn.Jet {
	n, c := in.N, a.OutSize()
	on, off := a.Slopes()
	out := &nn.Jet{N: n, M: mat.NewDense(3*n, c, nil)}
	for r := 0; r < n; r++ {
		z, zd, zdd := in.M.RawRowView(r), in.M.RawRowView(n+r), in.M.RawRowView(2*n+r)
		s, sd, sdd := out.M.RawRowView(r), out.M.RawRowView(n+r), out.M.RawRowView(2*n+r)
		for u := range z {
			k := off
			if enters(z[u], zd[u], zdd[u]) {
				k = on
			}
			s[u], sd[u], sdd[u] = k*z[u], k*zd[u], k*zdd[u]
		}
	}
	for _, f := range forced {
		if f.layer != l {
			continue
		}
		r, u := f.row, f.unit
		k := off
		if f.active {
			k = on
		}
		out.M.Set(r, u, k*in.M.At(r, u))
		out.M.Set(n+r, u, k*in.M.At(n+r, u))
		out.M.Set(2*n+r, u, k*in.M.At(2*n+r, u))
	}
	return out
}
