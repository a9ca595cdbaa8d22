package functionspace

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// rowJet is the second-order forward pass of THEORY.md §2 for examples
// rows[r] each at its own α = alphas[r] (a batched pass whose rows need not
// share α). An affine layer with W(α) = W0 + αΔW computes P0 = H W0ᵀ and
// P1 = H ΔWᵀ for the stacked input H = [h; ḣ; ḧ] (six products instead of
// the five of nn.Dense.Jet, the price of per-row α) and
//
//	z = P0h + α P1h + b0 + αΔb,  ż = P1h + P0ḣ + α P1ḣ + Δb,  z̈ = 2 P1ḣ + P0ḧ + α P1ḧ.
//
// The first layer's cached products are used when present. The switch
// units of kinked layers (nn.Switching) take the branch the path enters for
// increasing α (as the layers' Jet), except where forced[l] (the kinked
// layer at site l) sets their branch in a row (nn.Force): how one-sided
// jets at a kink are evaluated (THEORY.md §2: "use one-sided
// derivatives"). If
// pre is not nil, pre[l] receives the input jet (the pre-activations) of
// every kinked layer at site l.
// It returns the output jet [3n, K].
func (p *Path) rowJet(rows []int, alphas []float64, forced map[int][]nn.Force, pre map[int]*nn.Jet) *nn.Jet {
	return p.rowPass(rows, alphas, forced, pre, nil, -1)
}

// rowPass is rowJet; if trace is not nil, trace[s] also receives the input
// jet of every leaf layer at site s that the pass evaluates (the first
// layer's is absent when its products are cached), as carryJumps needs.
// With stop ≥ 1 it stops before top-level layer stop and returns that
// layer's input jet (a prefix pass; stop must be past the cached first
// layer).
//
// Rows that repeat an (example, α) pair are evaluated once and copied
// (where no side is forced): a BatchNorm resnet's blank background puts
// hundreds of units of one example on the same switching function, whose
// kinks and Newton iterates then share their α (issue 13: one example's
// first Gauss-length interval asked for 2306 rows, most of them repeats).
// Every row's arithmetic is its own, so the copies are the rows a full
// pass would compute.
func (p *Path) rowPass(rows []int, alphas []float64, forced map[int][]nn.Force, pre, trace map[int]*nn.Jet, stop int) *nn.Jet {
	if forced == nil {
		if ur, ua, idx := distinctRows(rows, alphas); len(ur) < len(rows) {
			var upre, utrace map[int]*nn.Jet
			if pre != nil {
				upre = map[int]*nn.Jet{}
			}
			if trace != nil {
				utrace = map[int]*nn.Jet{}
			}
			j := p.rowPassDistinct(ur, ua, nil, upre, utrace, stop)
			for l, x := range upre {
				pre[l] = spreadRows(x, idx)
			}
			for l, x := range utrace {
				trace[l] = spreadRows(x, idx)
			}
			return spreadRows(j, idx)
		}
	}
	return p.rowPassDistinct(rows, alphas, forced, pre, trace, stop)
}

// distinctRows returns the distinct (rows[r], alphas[r]) pairs in order of
// first appearance, and for every r the index of its pair among them.
func distinctRows(rows []int, alphas []float64) (ur []int, ua []float64, idx []int) {
	type key struct {
		row int
		a   uint64
	}
	seen := make(map[key]int, len(rows))
	idx = make([]int, len(rows))
	for r, i := range rows {
		k := key{i, math.Float64bits(alphas[r])}
		u, ok := seen[k]
		if !ok {
			u = len(ur)
			seen[k] = u
			ur, ua = append(ur, i), append(ua, alphas[r])
		}
		idx[r] = u
	}
	return ur, ua, idx
}

// spreadRows returns the jet whose row r is row idx[r] of j, in each of
// its parts (one part for a constant jet, three otherwise).
func spreadRows(j *nn.Jet, idx []int) *nn.Jet {
	n := len(idx)
	_, w := j.M.Dims()
	parts := 3
	if j.Const {
		parts = 1
	}
	m := mat.NewDense(parts*n, w, nil)
	for k := 0; k < parts; k++ {
		for r, u := range idx {
			copy(m.RawRowView(k*n+r), j.M.RawRowView(k*j.N+u))
		}
	}
	return &nn.Jet{N: n, M: m, Const: j.Const}
}

// rowPassDistinct is rowPass without the merging of repeated rows.
func (p *Path) rowPassDistinct(rows []int, alphas []float64, forced map[int][]nn.Force, pre, trace map[int]*nn.Jet, stop int) *nn.Jet {
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
	return p.rowPassFrom(start, j, alphas, forced, pre, trace, stop)
}

// rowPassFrom is rowPass from top-level layer start on, with j the input
// jet of that layer [3n, InSize] (row r at α = alphas[r]; a constant jet
// [n, InSize] for the network input): how the grid Gauss length's
// piecewise-polynomial path (polyJets) evaluates only the layers after its
// last wide product.
func (p *Path) rowPassFrom(start int, j *nn.Jet, alphas []float64, forced map[int][]nn.Force, pre, trace map[int]*nn.Jet, stop int) *nn.Jet {
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
	leaf := func(l int, layer nn.Layer, p0, dp []*nn.Tensor, j *nn.Jet) *nn.Jet {
		if trace != nil {
			trace[l] = j
		}
		if sw, ok := switchingAt(layer); ok && !j.Const {
			if pre != nil {
				pre[l] = j
			}
			return sw.JetForced(j, forced[l])
		}
		if b, ok := layer.(nn.BatchStatistics); ok && p.ref != nil {
			return p.bnRowsRecompute(b, l, p0, dp, alphas, j, refs) // at any depth: refs hold every site's statistics
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
		if i == stop {
			return errStop
		}
		j, site = nn.DescendJet(layer, site, p.Model.LayerParams(p.Theta0, i), p.Model.LayerParams(p.Delta, i), j, leaf, join)
		return nil
	})
	return unconst(j)
}

// errStop ends a prefix pass (rowPass with stop).
var errStop = errors.New("functionspace: prefix pass stopped")

// bnRowsRecompute is the `recompute` policy's BatchNorm rule in a per-row
// pass: the rows are grouped by their α, and every group is normalised with
// the reference batch's statistics jet at that α (refs, one reference pass
// per distinct α; the reference batch's first-layer products are cached, so
// a reference pass costs the deeper layers only) and the layer's parameters
// at that α (p0 + α·dp, the layer's tensors p0 at θ0 and dp = δ); l is
// the layer's site (nn.Site.Index), which indexes the statistics.
//
// The reference pass takes every reference example's ReLU-family units on
// the side the path enters for increasing α, whatever sides forced sets for
// the rows: at a kink of example i that is also a reference example, the
// left-sided jet of row i is evaluated with the right-sided statistics (an
// error of order 1/R in the left jet, R = BNReference).
func (p *Path) bnRowsRecompute(b nn.BatchStatistics, l int, p0, dp []*nn.Tensor, alphas []float64, in *nn.Jet, refs map[float64]*Params) *nn.Jet {
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
		at := make([]*nn.Tensor, len(p0))
		for k, t0 := range p0 {
			if t0 == nil {
				continue
			}
			t := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
			for e := range t.Data {
				t.Data[e] = t0.Data[e] + a*dp[k].Data[e]
			}
			at[k] = t
		}
		y := b.JetStats(at, dp, refs[a].stats[l], sub)
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

// switchingAt returns the switching rule of layer if it is kinked
// (nn.KinkSites, nn.SwitchingOf; Path.build checks nn.RuleKinks).
func switchingAt(layer nn.Layer) (nn.Switching, bool) {
	if k, ok := layer.(nn.KinkSites); !ok || !k.Kinked() {
		return nil, false
	}
	return nn.SwitchingOf(layer)
}
