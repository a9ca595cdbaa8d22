package functionspace

import (
	"context"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/nn"
)

// carryPlan is the structure the grid carry (Path.AtGrid) needs: a chain
// of layers whose first layer is affine in α and cached (Path.first), then
// identity layers, a ReLU-family layer (site aff, nn.PiecewiseLinear with
// the unit-wise rule nn.UnitInput), identity layers and one layer of dense
// weights (site mid, nn.DenseWeights) before the next kinked layer: every
// MLP with at least two hidden ReLU-family layers (784-1024-1024-10 ReLU,
// the benchmark network). The input of mid+1 is then QuadCarry's
// quadratic in α between first-layer kinks; the layers from mid+1 on are
// evaluated as in any pass.
type carryPlan struct {
	aff, mid int
	on, off  float64
	branches func(x, xd, xdd []float64, br []int)
	// std is set when branches is nn's unit-wise rule (the layer at aff
	// has no Switching of its own): QuadCarry.std
	std bool
	// the mid layer's weights transposed ([In, Out]), its bias and the
	// bias's δ (nil without bias), and its output width
	w0T, dwT, b0, db []float64
	out              int
	// split is set when the per-layer split of L′ can be read off the
	// carry (splitPlan): the second kinked layer (site last, slopes on2,
	// off2, branch rule branches2) followed by identity layers and one
	// layer of dense weights (site outL, tensors outP0 and outDP), and no
	// other layer with parameters than the first, mid and outL.
	split        bool
	last, outL   int
	on2, off2    float64
	branches2    func(x, xd, xdd []float64, br []int)
	outP0, outDP []*nn.Tensor
}

// carryPlan returns the plan of the grid carry, or nil when the path
// takes its plain passes: not of the shape above, float32 passes,
// BatchNorm under `recompute`, no first-layer cache, the carry's
// coefficients (up to 4·8·N·Out bytes) above Options.FirstLayerCacheBytes, or
// the plain passes forced by a test (noCarry).
func (p *Path) carryPlan() *carryPlan {
	if p.noCarry || p.f32 != nil || p.ref != nil || p.first == nil || !p.chain() {
		return nil
	}
	kl, aff := p.kinkedLayers(), p.affineLayer()
	if len(kl) < 2 || aff < 0 || kl[0] != aff {
		return nil
	}
	layer := p.Model.Layers[aff]
	if _, isPL := layer.(nn.PiecewiseLinear); !isPL {
		return nil
	}
	sw, ok := p.switchings()[aff].(nn.UnitInput)
	if !ok || !sw.UnitInput() {
		return nil
	}
	mid := -1
	for t := aff + 1; t < kl[1]; t++ {
		l := p.Model.Layers[t]
		if isIdentity(l) {
			continue
		}
		d, ok := l.(nn.DenseWeights)
		if !ok || !d.DenseWeights() || mid >= 0 {
			return nil
		}
		mid = t
	}
	if mid < 0 {
		return nil
	}
	out := p.Model.Layers[mid].OutSize()
	if 4*8*p.N*out > p.opt.FirstLayerCacheBytes { // P0, P1, P2 and (AtGridPerLayer) PB
		return nil
	}
	// the weights, slopes and biases: the one description both carries read
	cd := DescribeCarriedLayer(p.Model, p.Theta0, p.Delta, aff, mid)
	if cd == nil {
		return nil
	}
	_, own := layer.(nn.Switching)
	pl := &carryPlan{aff: aff, mid: mid, branches: sw.Branches, out: out, std: !own,
		w0T: cd.W0T, dwT: cd.DWT, b0: cd.B0, db: cd.DB, on: cd.On, off: cd.Off}
	p.splitPlan(pl, kl[1])
	return pl
}

// splitPlan sets pl.split and its fields when the layers from the second
// kinked layer last on are that layer (nn.PiecewiseLinear, unit-wise),
// identity layers and one layer of dense weights (nn.DenseWeights), and
// no layer has parameters but the first, pl.mid and that one: then
// L′ = Σ_l L′_l (THEORY.md §8) is read off the carry (gridCarry.split).
func (p *Path) splitPlan(pl *carryPlan, last int) {
	layer := p.Model.Layers[last]
	pw, isPL := layer.(nn.PiecewiseLinear)
	if _, own := layer.(nn.Switching); !isPL || own {
		return
	}
	sw, ok := p.switchings()[last].(nn.UnitInput)
	if !ok || !sw.UnitInput() {
		return
	}
	out := -1
	for t := last + 1; t < len(p.Model.Layers); t++ {
		l := p.Model.Layers[t]
		if isIdentity(l) {
			continue
		}
		d, ok := l.(nn.DenseWeights)
		if !ok || !d.DenseWeights() || out >= 0 {
			return
		}
		out = t
	}
	if out < 0 {
		return
	}
	for t, l := range p.Model.Layers {
		if t != 0 && t != pl.mid && t != out && len(l.Params()) > 0 {
			return
		}
	}
	pl.split, pl.last, pl.outL, pl.branches2 = true, last, out, sw.Branches
	pl.on2, pl.off2 = pw.Slopes()
	pl.outP0, pl.outDP = p.Model.LayerParams(p.Theta0, out), p.Model.LayerParams(p.Delta, out)
}

// GridCarried reports whether AtGrid carries the input of the layer after
// the first hidden one across the grid (carryPlan) instead of evaluating
// every α by a full pass.
func (p *Path) GridCarried() bool { return p.carryPlan() != nil }

// AtGrid evaluates the path at every α of alphas in turn, as At does, and
// calls fn with each sample (j its index) before evaluating the next; it
// stops at the first error of fn, or with ctx.Err() once ctx is cancelled
// (AtContext). On an MLP with two or more hidden ReLU-family layers and
// a first-layer cache (GridCarried) the second layer's input is carried
// across the grid (QuadCarry: its quadratic coefficients, rank-one
// updates where a first-layer unit switches, recomputed by matrix
// products every CarryRefreshUpdates updates of an example), so an α costs
// no product through the second layer's weights; its values equal At's up
// to rounding (about 1e-15 relative on the benchmark network), and its
// matrix products run one thread each (blasbackend.SerialProducts: the
// chunks already run one per core). On a one-point line (OnePoint, θT =
// θ0) it makes one pass and hands fn a shallow copy of it at every α (fn
// may clear fields of its copy but must not write the shared matrices).
// Otherwise it is At at every α.
func (p *Path) AtGrid(ctx context.Context, alphas []float64, fn func(j int, s *Sample) error) error {
	return p.atGrid(ctx, alphas, false, fn)
}

// AtGridPerLayer is AtGrid, and where the carry applies and the layers
// after the carried one are the second ReLU-family layer and one layer of
// dense weights (the 784-1024-1024-10 MLP's shape), each sample's
// LayerDLoss too: L′ split by layer (THEORY.md §8) from quantities the
// carry holds, with no further pass (gridCarry.split). Elsewhere
// LayerDLoss stays nil.
func (p *Path) AtGridPerLayer(ctx context.Context, alphas []float64, fn func(j int, s *Sample) error) error {
	return p.atGrid(ctx, alphas, true, fn)
}

func (p *Path) atGrid(ctx context.Context, alphas []float64, perLayer bool, fn func(j int, s *Sample) error) error {
	if p.OnePoint() { // θT = θ0: one pass serves every α
		return p.onePointGrid(ctx, alphas, fn)
	}
	gc := p.newGridCarry()
	if gc != nil {
		gc.perLayer = perLayer && gc.plan.split
		defer blasbackend.SerialProducts()()
		defer gc.record()
	}
	for j, a := range alphas {
		var s *Sample
		var err error
		if gc == nil {
			s, err = p.AtContext(ctx, a)
		} else {
			s, err = gc.sample(ctx, a, nil, nil)
		}
		if err != nil {
			return err
		}
		if err := fn(j, s); err != nil {
			return err
		}
	}
	return nil
}

// gridCarry is the carry of every chunk of a path along one grid (AtGrid,
// the Gauss length's grid points).
type gridCarry struct {
	p       *Path
	plan    *carryPlan
	carries []*QuadCarry // per chunk, made at its first α
	// perLayer makes sample split L′ by layer (split; plan.split is set)
	perLayer bool
	parts    [][3]float64 // per chunk: the split's unscaled sums (first, mid, output layer)
}

// newGridCarry returns the carry of p's chunks, or nil when p is not of
// the carry's shape (carryPlan).
func (p *Path) newGridCarry() *gridCarry {
	pl := p.carryPlan()
	if pl == nil {
		return nil
	}
	return &gridCarry{p: p, plan: pl, carries: make([]*QuadCarry, len(p.Chunks()))}
}

// sample is sampleContext at α through the carry: visit, if not nil, sees
// the input of the first kinked layer (the cached first layer's jet) and
// of every layer after the carried one, as JetChunk's visit. With
// carried (not nil) the first kinked layer's input is not built for
// visit: carried sees chunk c's carry once it is at α instead (its
// branches there, QuadCarry.branch), and may return the jet [3n, Out] the
// carry writes z₂'s jet into (kept by the caller: no copy), else nil.
func (g *gridCarry) sample(ctx context.Context, alpha float64, visit func(c, layer int, in *nn.Jet), carried func(c int, qc *QuadCarry) *nn.Jet) (*Sample, error) {
	p := g.p
	ps := p.paramsFrom(alpha, g.plan.mid+1)
	if g.perLayer && g.parts == nil {
		g.parts = make([][3]float64, len(g.carries))
	}
	s, err := p.sampleChunks(ctx, ps, func(c int, ws *nn.Workspace) *nn.Jet {
		var v func(int, *nn.Jet)
		if visit != nil {
			v = func(layer int, in *nn.Jet) { visit(c, layer, in) }
		}
		var cv func(*QuadCarry) *nn.Jet
		if carried != nil {
			cv = func(qc *QuadCarry) *nn.Jet { return carried(c, qc) }
		}
		return g.chunk(c, ps, ws, v, cv)
	})
	if err != nil || !g.perLayer {
		return s, err
	}
	var tot [3]float64
	for _, q := range g.parts { // fixed order, as sampleChunks sums
		for k := range tot {
			tot[k] += q[k]
		}
	}
	scale := 1 / float64(p.N*p.Model.Spec.OutputDivisor(p.K))
	pl := g.plan
	s.LayerDLoss = map[int]float64{0: tot[0] * scale, pl.mid: tot[1] * scale, pl.outL: tot[2] * scale}
	return s, nil
}

// record keeps the carry's work for LastCarryWork.
func (g *gridCarry) record() {
	var w CarryWork
	for _, qc := range g.carries {
		if qc != nil {
			w.Refreshes += qc.Refreshes
			w.Updates += qc.Updates
			w.FLOPs += qc.FLOPs()
		}
	}
	w.Layer = g.plan.mid
	g.p.carryMu.Lock()
	g.p.carryWork = w
	g.p.carryMu.Unlock()
}

// chunk is jetChunk64 of chunk c at ps.Alpha with the input of the layer
// after the plan's mid layer from the chunk's carry (made at the first
// call); visit as JetChunk's, carried as sample's.
func (g *gridCarry) chunk(c int, ps *Params, ws *nn.Workspace, visit func(layer int, in *nn.Jet), carried func(qc *QuadCarry) *nn.Jet) *nn.Jet {
	p, pl := g.p, g.plan
	qc := g.carries[c]
	if qc == nil {
		f := p.first[c]
		qc = newQuadCarryT(f.Value(), f.Velocity(), pl.w0T, pl.dwT, pl.b0, pl.db, pl.out, pl.on, pl.off, pl.branches)
		qc.MaxUpdates = p.carryRefresh
		qc.std = pl.std
		if g.perLayer {
			qc.TrackB()
		}
		g.carries[c] = qc
	}
	alpha := ps.Alpha
	if visit != nil && carried == nil {
		// the first kinked layer's input: the first layer's jet (identity
		// layers between), as the plain pass computes it
		j1, _ := p.firstJet(p.first[c], alpha, nil, ws)
		visit(pl.aff, j1)
	}
	qc.MoveTo(alpha)
	var j *nn.Jet
	if carried != nil {
		j = carried(qc)
	}
	if j == nil {
		j = nn.NewJet(qc.N, pl.out, ws)
	} else {
		j.WS = ws // the next layers' jets from the chunk's workspace
	}
	qc.Jet(alpha, j.Value(), j.Velocity(), j.Acceleration())
	z2, h2 := j, (*nn.Jet)(nil)
	keep := visit != nil || g.perLayer
	start := pl.mid + 1
	site := p.Model.FirstSite(start)
	_ = p.Model.Walk(start, func(i int, l nn.Layer) error {
		if visit != nil {
			visit(site, j)
		}
		if g.perLayer && i == pl.outL {
			h2 = j
		}
		next := p.layerJet(ps, i, site, j)
		if !keep { // the jets visit or split read stay valid until ws.Reset
			ws.Release(j, next)
		}
		j = next
		site = p.Model.FirstSite(i + 1)
		return nil
	})
	if g.perLayer {
		g.parts[c] = g.split(c, ps, qc, z2, h2, j)
	}
	return unconst(j)
}

// split returns chunk c's unscaled sums Σ_i ⟨e_i, γ′_i,l⟩ of L′'s split
// by layer (THEORY.md §8) at ps.Alpha, for l the first layer, the carried
// layer mid and the output layer, with e_i = ∂ℓ_i/∂γ_i (softmax − one-hot
// for cross-entropy, 2(γ − y) for mse, as Path.reduce). With the output
// layer's W(α), ΔW, Δb, the second kinked layer's slopes s₂ at α (its
// branch rule on z₂'s jet, as its jet takes them) and g₂ = s₂ ⊙ W(α)ᵀe:
//
//	output layer: ⟨ΔWᵀe, h₂⟩ + ⟨e, Δb⟩
//	mid layer:    ⟨g₂, ΔW₂h₁ + Δb₂⟩ = ⟨g₂, P1 − PB + αP2 + Δb₂⟩
//	first layer:  ⟨g₂, W₂(α)ḣ₁⟩     = ⟨g₂, PB + αP2⟩
//
// (h₁ = s⊙(a + αb), ḣ₁ = s⊙b: the first layer's δ is what moves z₁): two
// products [n, K]·[K, width] per chunk instead of a backward pass, and the
// three sum to the path's L′ up to rounding. z2 is the carried layer's
// output jet, h2 the output layer's input and out its output.
func (g *gridCarry) split(c int, ps *Params, qc *QuadCarry, z2, h2, out *nn.Jet) [3]float64 {
	p, pl := g.p, g.plan
	n, k, w := out.N, p.K, pl.out
	lo := c * p.opt.Chunk
	e := mat.NewDense(n, k, nil)
	y := make([]float64, k)
	ce := p.Model.Spec.Loss == "cross_entropy"
	val := out.Value()
	for r := 0; r < n; r++ {
		gm, er := val.RawRowView(r), e.RawRowView(r)
		if ce {
			lab := p.Targets.Labels[lo+r]
			lse := nn.LogSumExp(gm)
			for q := range gm {
				er[q] = math.Exp(gm[q] - lse)
			}
			er[lab]--
			continue
		}
		yt := p.Targets.Target(lo+r, k, y)
		for q := range gm {
			er[q] = 2 * (gm[q] - yt[q])
		}
	}
	wa, dw := ps.at[pl.outL][0], pl.outDP[0] // [K, w]
	gw, dd := mat.NewDense(n, w, nil), mat.NewDense(n, w, nil)
	gw.Mul(e, wa.Matrix())
	dd.Mul(e, dw.Matrix())
	var db []float64
	if len(pl.outDP) > 1 && pl.outDP[1] != nil {
		db = pl.outDP[1].Data
	}
	alpha := ps.Alpha
	br := make([]int, w)
	var sum [3]float64
	zv, zd, za, hv := z2.Value(), z2.Velocity(), z2.Acceleration(), h2.Value()
	for r := 0; r < n; r++ {
		var first, mid, outC float64
		dr, hr := dd.RawRowView(r), hv.RawRowView(r)
		for u, d := range dr {
			outC += d * hr[u]
		}
		if db != nil {
			er := e.RawRowView(r)
			for q, v := range db {
				outC += er[q] * v
			}
		}
		pl.branches2(zv.RawRowView(r), zd.RawRowView(r), za.RawRowView(r), br)
		gr := gw.RawRowView(r)
		p1, p2, pb := qc.P1.RawRowView(r), qc.P2.RawRowView(r), qc.PB.RawRowView(r)
		for u, b := range br {
			s := pl.off2
			if b == 1 {
				s = pl.on2
			}
			g2 := s * gr[u]
			if g2 == 0 {
				continue
			}
			first += g2 * (pb[u] + alpha*p2[u])
			m := p1[u] - pb[u] + alpha*p2[u]
			if pl.db != nil {
				m += pl.db[u]
			}
			mid += g2 * m
		}
		sum[0] += first
		sum[1] += mid
		sum[2] += outC
	}
	return sum
}

// CarryWork is what the last AtGrid's carry did (Path.LastCarryWork): the
// layer whose products it replaced (its index in Model.Layers), the
// refreshes of a block's coefficients by matrix products, the rank-one
// updates, and their floating-point operations (QuadCarry.FLOPs).
type CarryWork struct {
	Layer              int
	Refreshes, Updates int
	FLOPs              float64
}

// LastCarryWork returns the work of the last AtGrid that carried
// (GridCarried), and false when none did.
func (p *Path) LastCarryWork() (CarryWork, bool) {
	p.carryMu.Lock()
	defer p.carryMu.Unlock()
	return p.carryWork, p.carryWork.Refreshes > 0
}
