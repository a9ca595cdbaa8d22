package functionspace

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/geometry"
	"github.com/certify-mli/certify/nn"
)

// Options tune the evaluation; zero values choose defaults.
type Options struct {
	// Chunk is the number of examples processed together (default 1000).
	// Memory grows with Chunk × widest layer × 3 (value, velocity,
	// acceleration) float64s.
	Chunk int
	// Workers is the number of chunks processed concurrently (default
	// runtime.GOMAXPROCS(0)).
	Workers int
	// FirstLayerCacheBytes bounds the memory of the first layer's cached
	// products W0 x + b0 and ΔW x + Δb, 2·8·N·width bytes (default
	// DefaultFirstLayerCacheBytes; negative: never cache); above it they are
	// recomputed at every α.
	FirstLayerCacheBytes int
	// BNPolicy is how BatchNorm layers are evaluated along the line
	// (THEORY.md §2): "interpolate" (the default, also chosen by "") treats
	// running_mean and running_var as parameters affine in α; "recompute"
	// normalises with the statistics μ(α), σ²(α) of a fixed reference batch
	// at every α, differentiated exactly (nn.BatchStatsJet). Without a
	// BatchNorm layer the policy has no effect (Path.BNPolicy reports "none").
	BNPolicy BNPolicy
	// BNReference is the size of the `recompute` policy's reference batch:
	// the first BNReference examples of X (default 256; all of X if it has
	// fewer; at least 2). Its variance is the biased one, as training-mode
	// normalisation uses (PyTorch divides by N there; the unbiased variance
	// only feeds running_var).
	BNReference int
	// Precision is the floating-point format of the layer passes:
	// "float64" (the default, also chosen by "") or "float32" (Float32,
	// path32.go: jets, products and the first-layer cache in float32; the
	// loss, its derivatives, turning rates and sums over examples stay
	// float64). Anything else is an error from New.
	Precision Precision
}

// BatchNorm policies (THEORY.md §2, RUN_FORMAT.md bn_policy).
const (
	BNInterpolate BNPolicy = "interpolate"
	BNRecompute   BNPolicy = "recompute"
	BNNone        BNPolicy = "none"
)

// DefaultFirstLayerCacheBytes is the default bound of the first layer's
// cache (Options.FirstLayerCacheBytes): 1 GiB, enough for all 60,000 MNIST
// training images at 1024 first-layer units (2·8·60000·1024 B = 983 MB), the
// issue-7 benchmark network, whose analysis at 60,000 examples must stay
// under 2 GiB; without the cache it would redo 193 GFLOP at every α.
const DefaultFirstLayerCacheBytes = 1 << 30

// DefaultBNReference is the default size of the `recompute` policy's
// reference batch (Options.BNReference).
const DefaultBNReference = 256

// Path is the output path of a model on a fixed set of examples along
// θα = θ0 + αδ (THEORY.md §1), the line Line from θ0 = Line.Start to
// θT = Line.End. Its methods are safe for concurrent use.
type Path struct {
	Model *nn.Model
	// Line is the line the path follows (NewLine; New's θ0 → θT).
	Line    Line
	Theta0  nn.State // θ0 = Line.Start
	Delta   nn.State // δ = θT − θ0 = Line.Delta()
	X       *mat.Dense
	Targets nn.Targets
	N, K    int

	opt   Options
	first []*nn.Jet // per chunk: value rows W0 x + b0, velocity rows ΔW x + Δb, M [2n, width]; nil when not cached

	workspaces chan *nn.Workspace // Options.Workers workspaces, reused by sample's chunk passes

	hasBN    bool
	sites    int          // leaf layers at any depth (nn.Site indices 0 … sites−1)
	nestedBN map[int]bool // `recompute`: the top-level blocks holding a BatchNorm layer; nil otherwise
	ref      *mat.Dense   // `recompute`: the reference batch's inputs [R, InputSize]; nil otherwise
	refFirst *nn.Jet      // `recompute`: the reference batch's first-layer products, as first; nil when not cached
	refWS    sync.Pool    // `recompute`: *nn.Workspace for the reference passes (one per α, kinks' α included)

	f32 *path32 // Options.Precision float32 (path32.go); nil in float64

	// noJumps makes sideJets evaluate both sides of every kink (the
	// general path) even where it could carry the right side from the left
	// (jumpable); tests compare the two.
	noJumps bool
	// noPoly makes the grid Gauss length take the per-row passes of
	// sideJets even where its piecewise-polynomial path applies (polyPlan);
	// tests compare the two.
	noPoly bool
	// noCubic makes polyJets evaluate the layers after the second kinked
	// layer by a per-row pass (rowPassFrom) instead of carrying the cubic
	// output (cubicJets); tests compare the two.
	noCubic bool
	// pieceStarted, if not nil, is called by turn (the Gauss length's
	// kink search between grid points) as it starts piece c of its
	// examples; tests count the pieces started after a cancellation.
	pieceStarted func(c int)
	// kinkBatchStarted, if not nil, is called by turnPiece before each
	// batch of kink row passes (kinkBatches); tests cancel from it.
	kinkBatchStarted func()
	// noFastCubic makes polyJets carry the second kinked layer's whole
	// input across every kink (cubicJets) even where cubicFast applies;
	// tests compare the two.
	noFastCubic bool
	// noKinkSplit makes kinkJets evaluate all the crossings of the
	// examples it is given in one Newton pass and one sideJets pass (as
	// before kinkJets split them); tests compare the two.
	noKinkSplit bool
	// noFork makes sideJets evaluate both rows of a kink by one full pass
	// each instead of sharing the layers before the kink's top-level layer
	// (forkedPairs); tests compare the two.
	noFork bool
	// noLean makes the Gauss length's grid points keep the first kinked
	// layer's z, ż and every branch as ints even where they are lean
	// (gridPoint, leanPoints); tests compare the two.
	noLean bool
	// chunkStarted, if not nil, is called by sampleContext as it starts
	// chunk c of a pass (in the caller's goroutine); tests count the
	// chunks evaluated after a cancellation.
	chunkStarted func(c int)
	// noCarry makes AtGrid evaluate every α by a full pass even where it
	// could carry the second layer's input (carryPlan); tests compare the
	// two.
	noCarry bool
	// carryRefresh is the carry's bound of updates between refreshes
	// (QuadCarry.MaxUpdates; 0: CarryRefreshUpdates); tests lower it.
	carryRefresh int

	carryMu   sync.Mutex
	carryWork CarryWork // the last carried AtGrid's (LastCarryWork)
}

// BNPolicy returns the BatchNorm policy the path is evaluated with:
// BNNone without a BatchNorm layer, else BNInterpolate or BNRecompute
// (Options.BNPolicy; THEORY.md §2, the report's bn_policy).
func (p *Path) BNPolicy() BNPolicy {
	if !p.hasBN {
		return BNNone
	}
	return p.opt.BNPolicy
}

// FirstLayerCached reports whether the first layer's products W0 x + b0 and
// ΔW x + Δb are cached (Options.FirstLayerCacheBytes; in float32 when the
// path's precision is float32): then a pass at α
// starts from them instead of redoing the first layer's product.
func (p *Path) FirstLayerCached() bool {
	return p.first != nil || (p.f32 != nil && p.f32.first != nil)
}

// BNReference returns the number of reference examples of the `recompute`
// policy (the first ones of X), 0 under any other policy.
func (p *Path) BNReference() int {
	if p.ref == nil {
		return 0
	}
	r, _ := p.ref.Dims()
	return r
}

// New prepares the output path of model m along the line θ0 = theta0 →
// θT = thetaT on inputs x [N, InputSize] with targets t: it is
// NewLine(m, Line{Start: theta0, End: thetaT}, x, t, opt).
func New(m *nn.Model, theta0, thetaT nn.State, x *mat.Dense, t nn.Targets, opt Options) (*Path, error) {
	return NewLine(m, Line{Start: theta0, End: thetaT}, x, t, opt)
}

// NewLine prepares the output path of model m along line (θ(α) =
// line.Start + α(line.End − line.Start), THEORY.md §1, §10) on inputs
// x [N, InputSize] with targets t. It checks both ends (Line.Check), the
// inputs, the targets and the options, and returns an error naming the
// problem.
func NewLine(m *nn.Model, line Line, x *mat.Dense, t nn.Targets, opt Options) (*Path, error) {
	if err := line.Check(m); err != nil {
		return nil, err
	}
	n, d := x.Dims()
	if d != m.Spec.InputSize() {
		return nil, fmt.Errorf("x: expected [N, %d], found [%d, %d]", m.Spec.InputSize(), n, d)
	}
	if t.Len() != n {
		return nil, fmt.Errorf("y: %d targets for %d examples", t.Len(), n)
	}
	if err := nn.CheckTargets(t, m.OutSize(), m.Spec.Loss, "data"); err != nil {
		return nil, err
	}
	if opt.Chunk <= 0 {
		opt.Chunk = 1000
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.FirstLayerCacheBytes == 0 {
		opt.FirstLayerCacheBytes = DefaultFirstLayerCacheBytes
	}
	switch opt.BNPolicy {
	case "":
		opt.BNPolicy = BNInterpolate
	case BNInterpolate, BNRecompute:
	default:
		return nil, fmt.Errorf("functionspace: BatchNorm policy %q: want %q or %q", opt.BNPolicy, BNInterpolate, BNRecompute)
	}
	if opt.BNReference < 0 {
		return nil, fmt.Errorf("functionspace: BNReference: want a positive number of examples, found %d", opt.BNReference)
	}
	if opt.BNReference == 0 {
		opt.BNReference = DefaultBNReference
	}
	switch opt.Precision {
	case "":
		opt.Precision = Float64
	case Float64, Float32:
	default:
		return nil, fmt.Errorf("functionspace: Precision %q: want %q or %q", opt.Precision, Float64, Float32)
	}
	p := &Path{Model: m, Line: line, Theta0: line.Start, Delta: line.Delta(), X: x, Targets: t, N: n, K: m.OutSize(), opt: opt}
	if err := p.build(); err != nil {
		return nil, err
	}
	return p, nil
}

// Float64 returns the path itself when its precision is float64, else a
// float64 twin: the same model, θ0, δ, examples and options (BatchNorm
// policy and reference batch included) but float64 layer passes and no
// first-layer cache (it is meant for a few α: the analysis settles float32
// close calls with it, and the cache would double the memory).
func (p *Path) Float64() (*Path, error) {
	if p.f32 == nil {
		return p, nil
	}
	opt := p.opt
	opt.Precision, opt.FirstLayerCacheBytes = Float64, -1
	q := &Path{Model: p.Model, Line: p.Line, Theta0: p.Theta0, Delta: p.Delta, X: p.X, Targets: p.Targets, N: p.N, K: p.K, opt: opt}
	if err := q.build(); err != nil {
		return nil, err
	}
	return q, nil
}

// build prepares a path whose exported fields and options are set: the
// workers' workspaces, the `recompute` reference batch, and the first-layer
// cache (float64) or the float32 layer rules and cache.
func (p *Path) build() error {
	m, opt, n, theta0 := p.Model, p.opt, p.N, p.Theta0
	p.workspaces = make(chan *nn.Workspace, opt.Workers)
	for range opt.Workers {
		p.workspaces <- new(nn.Workspace)
	}
	// Every layer must declare its kinks and have a per-row rule (the kink
	// passes); refused here, naming the layer, rather than skipped later.
	if err := m.Require(nn.RuleKinks, nn.RulePerRow); err != nil {
		return fmt.Errorf("functionspace: %w", err)
	}
	var nested []string // BatchNorm inside residual blocks
	p.sites = m.FirstSite(len(m.Layers))
	_ = m.WalkSites(func(s nn.Site, l nn.Layer) error {
		if _, ok := l.(nn.BatchStatistics); ok {
			p.hasBN = true
			if strings.Contains(s.Key, ".") {
				nested = append(nested, s.Name+" ("+l.Type()+")")
				if p.nestedBN == nil {
					p.nestedBN = map[int]bool{}
				}
				p.nestedBN[s.Top] = true
			}
		}
		return nil
	})
	if len(nested) > 0 && opt.BNPolicy == BNRecompute && opt.Precision == Float32 {
		// the float32 pass applies a block as a whole (nn.Residual.Jet32)
		// and cannot hand a nested BatchNorm its reference statistics
		return fmt.Errorf("functionspace: Precision %q with BatchNorm policy %q is not supported for BatchNorm inside residual blocks (%s); use %q", Float32, BNRecompute, strings.Join(nested, ", "), Float64)
	}
	if opt.BNPolicy != BNRecompute {
		p.nestedBN = nil
	}
	if p.hasBN && opt.BNPolicy == BNRecompute {
		r := min(opt.BNReference, n)
		if r < 2 {
			return fmt.Errorf("functionspace: BatchNorm policy recompute: the reference batch needs at least 2 examples, found %d", r)
		}
		p.ref = p.rows(0, r)
		if d0, ok := m.Layers[0].(nn.AffineInAlpha); ok {
			p.refFirst = compactFirst(d0.Jet(m.LayerParams(theta0, 0), m.LayerParams(p.Delta, 0), nn.NewConstJet(p.ref)))
		}
	}
	if opt.Precision == Float32 {
		return p.init32()
	}
	if d0, ok := m.Layers[0].(nn.AffineInAlpha); ok && 2*8*n*d0.OutSize() <= opt.FirstLayerCacheBytes {
		p0, dp0 := m.LayerParams(theta0, 0), m.LayerParams(p.Delta, 0)
		ws := new(nn.Workspace)
		for _, c := range p.Chunks() {
			ws.Reset()
			x := nn.NewConstJet(p.rows(c[0], c[1]))
			x.WS = ws
			p.first = append(p.first, compactFirst(d0.Jet(p0, dp0, x)))
		}
	}
	return nil
}

// compactFirst keeps the value and velocity rows of the first layer's jet j
// (its acceleration is 0: the input does not depend on α) in a new [2n, w]
// matrix: the cache's form, whose Value and Velocity are those of j.
func compactFirst(j *nn.Jet) *nn.Jet {
	_, w := j.M.Dims()
	m := mat.NewDense(2*j.N, w, nil)
	m.Copy(j.M.Slice(0, 2*j.N, 0, w))
	return &nn.Jet{N: j.N, M: m}
}

func (p *Path) rows(lo, hi int) *mat.Dense {
	_, d := p.X.Dims()
	return p.X.Slice(lo, hi, 0, d).(*mat.Dense)
}

// Chunks returns the example ranges [lo, hi) processed together.
func (p *Path) Chunks() [][2]int {
	var c [][2]int
	for lo := 0; lo < p.N; lo += p.opt.Chunk {
		c = append(c, [2]int{lo, min(lo+p.opt.Chunk, p.N)})
	}
	return c
}

// params returns every layer's parameters at α and their α-derivatives δ.
func (p *Path) params(alpha float64) (pa, dp [][]*nn.Tensor) {
	sa := make(nn.State, len(p.Theta0))
	for k, t0 := range p.Theta0 {
		d := p.Delta[k]
		t := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
		sa[k] = t
		for j := range t.Data {
			t.Data[j] = t0.Data[j] + alpha*d.Data[j]
		}
	}
	for i := range p.Model.Layers {
		pa = append(pa, p.Model.LayerParams(sa, i))
		dp = append(dp, p.Model.LayerParams(p.Delta, i))
	}
	return pa, dp
}

// paramsFrom is ParamsAt for a pass that starts at layer start (the grid
// carry's): the tensors at α of the layers before it are not interpolated
// (nil). It is only for paths without a reference batch or float32 passes.
func (p *Path) paramsFrom(alpha float64, start int) *Params {
	ps := &Params{Alpha: alpha}
	for i := range p.Model.Layers {
		dp := p.Model.LayerParams(p.Delta, i)
		ps.dp = append(ps.dp, dp)
		if i < start {
			ps.at = append(ps.at, nil)
			continue
		}
		var at []*nn.Tensor
		for k, t0 := range p.Model.LayerParams(p.Theta0, i) {
			if t0 == nil {
				at = append(at, nil)
				continue
			}
			d := dp[k]
			t := &nn.Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
			for q := range t.Data {
				t.Data[q] = t0.Data[q] + alpha*d.Data[q]
			}
			at = append(at, t)
		}
		ps.at = append(ps.at, at)
	}
	return ps
}

// Params is every layer's parameters at one α, ready for JetChunk, and
// under the `recompute` policy every BatchNorm layer's statistics jet.
type Params struct {
	Alpha  float64
	at, dp [][]*nn.Tensor
	stats  []*nn.StatsJet   // per site (nn.Site.Index, the layer index without blocks); nil but for BatchNorm layers under `recompute`
	at32   [][]*nn.Tensor32 // float32 precision: at rounded once; nil otherwise
}

// ParamsAt interpolates the parameters at α once, for any number of chunks.
// Under the `recompute` policy it also pushes the reference batch's jet
// through the layers and keeps, at every BatchNorm layer at any depth (a
// BatchNorm in a residual body or shortcut included, indexed by its
// nn.Site), the statistics jet (μ, μ̇, μ̈, σ², σ̇², σ̈²) of the reference
// batch's input there (biased variance, nn.BatchStatsJet), with which the
// reference batch itself is normalised before the next layer (THEORY.md §2,
// §9).
func (p *Path) ParamsAt(alpha float64) *Params {
	at, dp := p.params(alpha)
	ps := &Params{Alpha: alpha, at: at, dp: dp}
	if p.f32 != nil {
		ps.at32 = roundParams(at)
	}
	if p.ref != nil {
		ps.stats = p.refStats(ps)
	}
	return ps
}

// refStats is the `recompute` policy's reference pass at ps.Alpha.
// Its jets come from a pooled workspace: the statistics it keeps are fresh
// slices (nn.BatchStatsJet), so nothing of the pass outlives it.
func (p *Path) refStats(ps *Params) []*nn.StatsJet {
	stats := make([]*nn.StatsJet, p.sites)
	ws, _ := p.refWS.Get().(*nn.Workspace)
	if ws == nil {
		ws = new(nn.Workspace)
	}
	defer p.refWS.Put(ws)
	ws.Reset()
	j, start := p.firstJet(p.refFirst, ps.Alpha, p.ref, ws)
	leaf := func(s int, l nn.Layer, pa, dpa []*nn.Tensor, in *nn.Jet) *nn.Jet {
		if b, ok := l.(nn.BatchStatistics); ok {
			stats[s] = b.BatchStats(in)
			return b.JetStats(pa, dpa, stats[s], in)
		}
		return l.Jet(pa, dpa, in)
	}
	site := p.Model.FirstSite(start)
	_ = p.Model.Walk(start, func(i int, l nn.Layer) error {
		j, site = descendReleasing(l, site, ps.at[i], ps.dp[i], j, leaf)
		return nil
	})
	return stats
}

// descendReleasing is nn.DescendJet with every block joined by its own
// rule (nn.Block.Combine) and the jets a branch consumes released into the
// input's workspace as soon as the next sub-layer has read them (as
// nn.Residual.Jet does), never the block's input, which both branches read.
// The input in itself is released once l's output exists, unless l is a
// leaf whose output aliases it.
func descendReleasing(l nn.Layer, site int, pa, dpa []*nn.Tensor, in *nn.Jet,
	leaf func(site int, l nn.Layer, pa, dpa []*nn.Tensor, in *nn.Jet) *nn.Jet) (*nn.Jet, int) {
	out, next := descendKeep(l, site, pa, dpa, in, leaf)
	in.WS.Release(in, out)
	return out, next
}

// descendKeep is descendReleasing without releasing in.
func descendKeep(l nn.Layer, site int, pa, dpa []*nn.Tensor, in *nn.Jet,
	leaf func(site int, l nn.Layer, pa, dpa []*nn.Tensor, in *nn.Jet) *nn.Jet) (*nn.Jet, int) {
	b, ok := l.(nn.Block)
	if !ok {
		return leaf(site, l, pa, dpa, in), site + 1
	}
	var outs []*nn.Jet
	for bi, br := range b.Branches() {
		j := in
		for k, sl := range br.Layers {
			var next *nn.Jet
			next, site = descendKeep(sl, site, b.SubParams(pa, bi, k), b.SubParams(dpa, bi, k), j, leaf)
			if j != in { // the branch's intermediate jets die as they are consumed
				in.WS.Release(j, next, in)
			}
			j = next
		}
		outs = append(outs, j)
	}
	out := b.Combine(pa, dpa, outs[0], outs[1])
	for _, o := range outs {
		if o != in {
			in.WS.Release(o, out, in)
		}
	}
	return out, site
}

// firstJet returns the first layer's output jet at α from its cached
// products f (value rows W0 x + b0, velocity rows ΔW x + Δb: z = A + αB),
// and the next layer's index 1; or, when f is nil, the constant jet of the
// inputs x and 0.
// The jet's matrices come from ws (nil: freshly allocated).
func (p *Path) firstJet(f *nn.Jet, alpha float64, x *mat.Dense, ws *nn.Workspace) (*nn.Jet, int) {
	if f == nil {
		j := nn.NewConstJet(x)
		j.WS = ws
		return j, 0
	}
	n := f.N
	_, w := f.M.Dims()
	j := nn.NewJet(n, w, ws)
	a, b := f.Value().RawMatrix(), f.Velocity().RawMatrix()
	jr := j.M.RawMatrix()
	for i := 0; i < n; i++ {
		ar, br := a.Data[i*a.Stride:i*a.Stride+w], b.Data[i*b.Stride:i*b.Stride+w]
		val := jr.Data[i*jr.Stride : i*jr.Stride+w]
		vel := jr.Data[(n+i)*jr.Stride : (n+i)*jr.Stride+w]
		acc := jr.Data[(2*n+i)*jr.Stride : (2*n+i)*jr.Stride+w]
		for k, bk := range br {
			val[k] = alpha*bk + ar[k]
		}
		copy(vel, br)
		clear(acc)
	}
	return j, 1
}

// layerJet applies top-level layer i (a leaf, at site s) to j at ps: its
// own Jet, or for a BatchNorm layer under `recompute`, JetStats with the
// reference batch's statistics.
func (p *Path) layerJet(ps *Params, i, s int, j *nn.Jet) *nn.Jet {
	return p.leafJet(ps, s, p.Model.Layers[i], ps.at[i], ps.dp[i], j)
}

// leafJet applies the leaf layer l at site s, with its tensors pa at α and
// dpa = δ, to j: JetStats with the reference statistics of site s under
// `recompute` when l is a BatchNorm layer, else l's own Jet.
func (p *Path) leafJet(ps *Params, s int, l nn.Layer, pa, dpa []*nn.Tensor, j *nn.Jet) *nn.Jet {
	if ps.stats != nil && ps.stats[s] != nil {
		return l.(nn.BatchStatistics).JetStats(pa, dpa, ps.stats[s], j)
	}
	return l.Jet(pa, dpa, j)
}

// JetChunk runs the second-order forward pass for chunk c (an index into
// Chunks) and returns the output jet: γ, γ′ and γ″ for those examples, each
// [n, K] (THEORY.md §2). visit optionally receives each layer's input
// jet (the pre-activations, for kink detection) with the layer's site index
// (nn.Site.Index: the index in Model.Layers for a model without residual
// blocks; the pass descends into blocks when visit is set). BatchNorm layers follow
// the path's policy (Options.BNPolicy; ps holds the `recompute` statistics).
func (p *Path) JetChunk(ps *Params, c int, visit func(layer int, in *nn.Jet)) *nn.Jet {
	return p.jetChunk(ps, c, visit, nil)
}

// jetChunk is JetChunk with the jets' matrices taken from ws (nil: freshly
// allocated); the result and the jets visit sees are valid until ws.Reset.
func (p *Path) jetChunk(ps *Params, c int, visit func(layer int, in *nn.Jet), ws *nn.Workspace) *nn.Jet {
	if p.f32 != nil { // float32 passes (path32.go)
		if visit != nil && p.Model.HasBlocks() {
			// the float32 pass does not descend into blocks: the
			// pre-activations visit needs come from a float64 pass
			p.jetChunk64(ps, c, visit, nil)
			visit = nil
		}
		return p.jetChunk32(ps, c, visit, ws)
	}
	return p.jetChunk64(ps, c, visit, ws)
}

// jetChunk64 is jetChunk in float64.
func (p *Path) jetChunk64(ps *Params, c int, visit func(layer int, in *nn.Jet), ws *nn.Workspace) *nn.Jet {
	lo := c * p.opt.Chunk
	hi := min(lo+p.opt.Chunk, p.N)
	var f *nn.Jet
	if p.first != nil {
		f = p.first[c]
	}
	j, start := p.firstJet(f, ps.Alpha, p.rows(lo, hi), ws)
	site := p.Model.FirstSite(start)
	_ = p.Model.Walk(start, func(i int, l nn.Layer) error {
		if _, ok := l.(nn.Block); ok && visit != nil {
			// descend, so that visit sees the inputs of the layers inside
			// the block (a ReLU in a residual body); the block joins its
			// branches with its own rule (nn.Block.Combine); a BatchNorm
			// inside takes the `recompute` statistics of its site
			j, site = nn.DescendJet(l, site, ps.at[i], ps.dp[i], j,
				func(s int, sl nn.Layer, pa, dpa []*nn.Tensor, in *nn.Jet) *nn.Jet {
					visit(s, in)
					return p.leafJet(ps, s, sl, pa, dpa, in)
				},
				func(b nn.Block, pa, dpa []*nn.Tensor, body, shortcut *nn.Jet) *nn.Jet {
					return b.Combine(pa, dpa, body, shortcut)
				})
			return nil
		}
		if ps.stats != nil && p.nestedBN[i] {
			// a block holding BatchNorm under `recompute`: descend so that
			// each nested BatchNorm normalises with its reference statistics
			j, site = descendReleasing(l, site, ps.at[i], ps.dp[i], j,
				func(s int, sl nn.Layer, pa, dpa []*nn.Tensor, in *nn.Jet) *nn.Jet {
					return p.leafJet(ps, s, sl, pa, dpa, in)
				})
			return nil
		}
		if visit != nil {
			visit(site, j)
		}
		next := p.layerJet(ps, i, site, j)
		if visit == nil { // the jets visit saw stay valid until ws.Reset
			ws.Release(j, next)
		}
		j = next
		site = p.Model.FirstSite(i + 1)
		return nil
	})
	return unconst(j)
}

// unconst returns j itself, or when j is Const (a model with no dense layer:
// nothing depends on α) the full jet [3n, K] with zero velocity and
// acceleration.
func unconst(j *nn.Jet) *nn.Jet {
	if !j.Const {
		return j
	}
	n, k := j.M.Dims()
	m := mat.NewDense(3*n, k, nil)
	m.Slice(0, n, 0, k).(*mat.Dense).Copy(j.M)
	return &nn.Jet{N: n, M: m}
}

// Sample is everything the path gives at one α (THEORY.md §3–§4).
type Sample struct {
	Alpha float64
	// Loss, DLoss and D2Loss are L(α), L′(α) and L″(α) with PyTorch's mean reduction.
	Loss, DLoss, D2Loss float64
	// Accuracy is the fraction of examples whose arg-max output matches the label
	// (or the arg-max of the float target).
	Accuracy float64
	// Per example, [N]: speed ‖v_i‖, turning rate ‖T_i′‖ (0 where the speed
	// is 0) and the per-example loss ℓ_i and ℓ_i′ (unscaled: ‖γ_i − y_i‖² for mse).
	Speed, TurningRate        []float64
	ExampleLoss, ExampleDLoss []float64
	// ZeroSpeed lists the examples whose velocity vanishes at α (their tangent
	// is undefined there).
	ZeroSpeed []int
	// Stacked path Γ: ‖V‖² = Σ‖v_i‖², ⟨V,A⟩, ‖A‖², and its turning rate.
	StackedVV, StackedVA, StackedAA float64
	StackedTurningRate              float64
	// Output, Velocity and Acceleration hold every example's γ, γ′ and γ″,
	// each [N, K] row-major.
	Output, Velocity, Acceleration *mat.Dense
	// LayerDLoss is L′ split by state_dict layer index (THEORY.md §8: L′
	// with δ restricted to that layer's tensors; they sum to DLoss up to
	// rounding), computed by Path.AtGridPerLayer where the grid carry
	// applies; nil otherwise (not computed).
	LayerDLoss map[int]float64
}

// ErrZeroSpeed is wrapped by errors about paths whose velocity vanishes.
var ErrZeroSpeed = errors.New("zero velocity: the unit tangent is undefined")

// At evaluates the path at α for all examples, chunk by chunk, with up to
// Options.Workers chunks at once.
func (p *Path) At(alpha float64) *Sample { return p.sample(alpha, nil) }

// AtContext is At, stopped by ctx: once ctx is cancelled no further chunk
// of examples starts (those running finish), and it returns ctx.Err() and
// no sample. A cancellation thus takes effect within one chunk's time
// (Options.Chunk examples), not the whole evaluation's.
func (p *Path) AtContext(ctx context.Context, alpha float64) (*Sample, error) {
	return p.sampleContext(ctx, alpha, nil)
}

// sample is At, with visit (if not nil) called as JetChunk's visit for every
// chunk c, concurrently for different chunks.
func (p *Path) sample(alpha float64, visit func(c, layer int, in *nn.Jet)) *Sample {
	s, _ := p.sampleContext(context.Background(), alpha, visit) // never cancelled: no error
	return s
}

// sampleContext is sample, stopped by ctx as AtContext is.
func (p *Path) sampleContext(ctx context.Context, alpha float64, visit func(c, layer int, in *nn.Jet)) (*Sample, error) {
	ps := p.ParamsAt(alpha)
	return p.sampleChunks(ctx, ps, func(c int, ws *nn.Workspace) *nn.Jet {
		var v func(int, *nn.Jet)
		if visit != nil {
			v = func(layer int, in *nn.Jet) { visit(c, layer, in) }
		}
		return p.jetChunk(ps, c, v, ws)
	})
}

// sampleChunks is sampleContext with chunk c's output jet at ps.Alpha
// from jet (its matrices from ws, which is reset before).
func (p *Path) sampleChunks(ctx context.Context, ps *Params, jet func(c int, ws *nn.Workspace) *nn.Jet) (*Sample, error) {
	alpha := ps.Alpha
	s := &Sample{Alpha: alpha,
		Speed: make([]float64, p.N), TurningRate: make([]float64, p.N),
		ExampleLoss: make([]float64, p.N), ExampleDLoss: make([]float64, p.N)}
	s.Output = mat.NewDense(p.N, p.K, nil)
	s.Velocity = mat.NewDense(p.N, p.K, nil)
	s.Acceleration = mat.NewDense(p.N, p.K, nil)
	chunks := p.Chunks()
	parts := make([]partial, len(chunks))
	var wg sync.WaitGroup
	for c := range chunks {
		ws := <-p.workspaces // at most Workers chunks at once, each with its own workspace
		if ctx.Err() != nil {
			p.workspaces <- ws
			break
		}
		if p.chunkStarted != nil {
			p.chunkStarted(c)
		}
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			defer func() { p.workspaces <- ws }()
			ws.Reset()
			j := jet(c, ws)
			parts[c] = p.reduce(j, chunks[c][0], s)
		}(c)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var tot partial
	for _, q := range parts { // fixed order: the result does not depend on scheduling
		tot.l += q.l
		tot.dl += q.dl
		tot.d2l += q.d2l
		tot.correct += q.correct
		tot.vv += q.vv
		tot.va += q.va
		tot.aa += q.aa
	}
	scale := 1 / float64(p.N*p.Model.Spec.OutputDivisor(p.K))
	s.Loss, s.DLoss, s.D2Loss = tot.l*scale, tot.dl*scale, tot.d2l*scale
	s.Accuracy = float64(tot.correct) / float64(p.N)
	s.StackedVV, s.StackedVA, s.StackedAA = tot.vv, tot.va, tot.aa
	// Γ's turning rate from its flat velocity and acceleration [N·K].
	s.StackedTurningRate, _ = geometry.TurningRate(s.Velocity.RawMatrix().Data, s.Acceleration.RawMatrix().Data)
	for i, v := range s.Speed {
		if v == 0 {
			s.ZeroSpeed = append(s.ZeroSpeed, i)
		}
	}
	return s, nil
}

type partial struct {
	l, dl, d2l float64
	correct    int
	vv, va, aa float64
}

// reduce computes the per-example quantities of one chunk's output jet.
func (p *Path) reduce(j *nn.Jet, lo int, s *Sample) partial {
	var q partial
	k := p.K
	val, vel, acc := j.Value(), j.Velocity(), j.Acceleration()
	y := make([]float64, k)
	prob := make([]float64, k)
	ce := p.Model.Spec.Loss == "cross_entropy"
	for r := 0; r < j.N; r++ {
		i := lo + r
		g, v, a := val.RawRowView(r), vel.RawRowView(r), acc.RawRowView(r)
		copy(s.Output.RawRowView(i), g)
		copy(s.Velocity.RawRowView(i), v)
		copy(s.Acceleration.RawRowView(i), a)
		var l, dl, d2l float64
		if ce {
			lab := p.Targets.Labels[i]
			lse := nn.LogSumExp(g)
			l = lse - g[lab]
			var pv float64
			for c := range g {
				prob[c] = math.Exp(g[c] - lse)
				pv += prob[c] * v[c]
			}
			for c := range g {
				e := prob[c]
				if c == lab {
					e--
				}
				dl += e * v[c]
				d2l += prob[c]*v[c]*v[c] + e*a[c]
			}
			d2l -= pv * pv
		} else {
			yt := p.Targets.Target(i, k, y)
			var vv, ar float64
			for c := range g {
				e := g[c] - yt[c]
				l += e * e
				dl += 2 * v[c] * e
				vv += v[c] * v[c]
				ar += a[c] * e
			}
			d2l = 2 * (vv + ar)
		}
		s.ExampleLoss[i], s.ExampleDLoss[i] = l, dl
		q.l += l
		q.dl += dl
		q.d2l += d2l
		if argmax(g) == p.label(i, y) {
			q.correct++
		}
		var vv, va, aa float64
		for c := range v {
			vv += v[c] * v[c]
			va += v[c] * a[c]
			aa += a[c] * a[c]
		}
		q.vv += vv
		q.va += va
		q.aa += aa
		s.Speed[i] = math.Sqrt(vv)
		s.TurningRate[i], _ = geometry.TurningRate(v, a) // 0 with ErrZeroSpeed where v = 0
	}
	return q
}

func (p *Path) label(i int, buf []float64) int {
	if p.Targets.Values != nil {
		return argmax(p.Targets.Values.RawRowView(i))
	}
	return p.Targets.Labels[i]
}

func argmax(x []float64) int {
	b := 0
	for j, v := range x {
		if v > x[b] {
			b = j
		}
	}
	return b
}
