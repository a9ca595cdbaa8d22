package certify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// CertifyOptions set the rigorous certificate of THEORY.md §7; zero values
// choose the defaults.
type CertifyOptions struct {
	// Tolerance is the largest rise Δ still called monotone (≥ 0).
	Tolerance float64
	// MaxIntervals is the budget of leaf α-intervals (default 4096).
	MaxIntervals int
	// MinWidth is the narrowest leaf that is still split (default 1e-9).
	MinWidth float64
	// InitialIntervals is the number of equal leaves the search starts from (default 32).
	InitialIntervals int
	// DeltaGap, when positive, keeps refining after the verdict is decided
	// until DeltaUpper − DeltaLower ≤ DeltaGap (or the budget runs out).
	DeltaGap float64
	// Workers is the number of concurrent passes (default runtime.GOMAXPROCS(0)).
	Workers int
	// Progress, if not nil, is told the stage, the leaves so far and the budget.
	Progress func(stage string, done, total int)
}

func (o *CertifyOptions) defaults() {
	if o.MaxIntervals <= 0 {
		o.MaxIntervals = 4096
	}
	if o.MinWidth <= 0 {
		o.MinWidth = 1e-9
	}
	if o.InitialIntervals <= 0 {
		o.InitialIntervals = 32
	}
	if o.InitialIntervals > o.MaxIntervals {
		o.InitialIntervals = o.MaxIntervals
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// Certificate is the outcome of Certify (THEORY.md §7, RUN_FORMAT.md verdicts).
type Certificate struct {
	// Verdict is certified_monotone (DeltaUpper ≤ Tolerance), non_monotone
	// (a Witness whose rigorous rise exceeds Tolerance) or inconclusive.
	Verdict   Verdict `json:"verdict"`
	Tolerance float64 `json:"tolerance"`
	// DeltaLower ≤ Δ ≤ DeltaUpper for the continuous Δ over [0,1] (THEORY.md §5).
	DeltaLower float64 `json:"delta_lower"`
	DeltaUpper float64 `json:"delta_upper"`
	// Witness is the evaluated pair with the largest rigorous rise (nil if none rises).
	// A report states it once: as the report's witness when it is the
	// verdict's (Report.MarshalJSON), else here.
	Witness *CertWitness `json:"witness,omitempty"`
	// Unsettled lists the leaves [a, b] whose rise was not bounded by 0:
	// L′ ≤ 0 was not proved (sup of the enclosure > 0), or, on a leaf where
	// L may jump, the enclosed rise is positive. In order; UnsettledCount is
	// their number. A certified_monotone verdict may still have unsettled
	// leaves: their total rise is then bounded by the tolerance.
	Unsettled      [][2]float64 `json:"unsettled"`
	UnsettledCount int          `json:"unsettled_count"`
	// SettledFraction is the total length of the settled leaves (not in Unsettled).
	SettledFraction float64 `json:"settled_fraction"`
	// SmoothFraction is the fraction of (leaf, example) pairs on which the
	// mean-value form applied (no kink).
	SmoothFraction float64 `json:"smooth_fraction"`
	Leaves         int     `json:"leaves"`
	// JumpLeaves is the number of final leaves on which the loss may jump
	// (a softplus input may cross PyTorch's threshold there).
	JumpLeaves int `json:"jump_leaves"`
	// Evaluations counts interval passes over all examples (one per leaf
	// enclosure, one per point evaluation).
	Evaluations int     `json:"evaluations"`
	Seconds     float64 `json:"seconds"`
	Examples    int     `json:"examples"`
	// Notes records conditions the verdict depends on (e.g. softplus threshold crossings).
	Notes []string `json:"notes,omitempty"`
	// Reason says why the search stopped when the verdict is inconclusive
	// (the budget spent, the unsettled leaves, the possible jumps); empty
	// otherwise.
	Reason string `json:"reason,omitempty"`
	// Intervals are the final leaves with their L′ enclosures, in order of
	// α (written, for certificate.png), and Points the evaluated L
	// enclosures (in memory only).
	Intervals []CertLeaf  `json:"intervals,omitempty"`
	Points    []CertPoint `json:"-"`
}

// CertWitness is a rise of the loss: α < β with L(β) − L(α) ≥ Rise rigorously,
// L(α) ∈ LossAlpha and L(β) ∈ LossBeta.
type CertWitness struct {
	Alpha     float64    `json:"alpha"`
	Beta      float64    `json:"beta"`
	Rise      float64    `json:"rise"`
	LossAlpha [2]float64 `json:"loss_alpha"`
	LossBeta  [2]float64 `json:"loss_beta"`
}

// CertLeaf is a leaf [A, B] with L′([A, B]) ⊆ [Inf, Sup].
type CertLeaf struct {
	A   float64 `json:"a"`
	B   float64 `json:"b"`
	Inf float64 `json:"inf"`
	Sup float64 `json:"sup"`
}

// CertPoint is an evaluated α with L(α) ∈ [Lo, Hi].
type CertPoint struct{ Alpha, Lo, Hi float64 }

type leaf struct {
	a, b float64
	dl   interval.I // L′ on [a, b]
	// integral bounds ∫_a^b L′ from above (≤ (b − a)·sup L′)
	integral float64
	lc       interval.I // L(c) at the leaf's midpoint c
	dlc      interval.I // L′(c)
	smooth   int        // examples with the mean-value form
	// jump is set when some example may jump on [a, b] (a softplus
	// threshold crossing, nn.IJet.Jump): L is then not the integral of L′
	// there, and the leaf's rise is bounded by lr, la and lb instead.
	jump   bool
	lr     interval.I // L on all of [a, b]
	la, lb interval.I // L(a), L(b)
}

// evaluator holds the path's first-layer products (z = A + αB, exact up to
// their enclosed rounding), per chunk, and per-example ℓ′(1) for the
// endpoint-centred form.
type evaluator struct {
	p      *functionspace.Path
	chunks [][2]int
	start  int                // first layer after the cached affine layer
	a, b   []interval.Matrix  // per chunk
	kink0  [][]bool           // per chunk: kinks before the cached layer
	dl1    [][]interval.I     // per chunk: ℓ_i′(1), nil until known
	layers []nn.IntervalLayer // all layers
	scale  float64            // N·K (mse) or N
	mu     sync.Mutex
	evals  int
	notes  map[string]bool
	jumps  bool // the model has a layer whose output may jump (softplus)
	// recompute (bn_policy recompute, THEORY.md §2): the reference batch's
	// first-layer products and kinks, and the per-(α-interval, order)
	// enclosures of its statistics at every BatchNorm layer.
	recompute  bool
	refA, refB interval.Matrix
	refKink0   []bool
	refX       []float64 // the reference rows of the input, for start = 0
	statsMu    sync.Mutex
	stats      map[statsKey]*statsEntry
}

type statsKey struct {
	lo, hi float64
	order  int
}

type statsEntry struct {
	once sync.Once
	st   []*nn.IStats // per layer; nil except at BatchNorm layers
}

func newEvaluator(p *functionspace.Path) (*evaluator, error) {
	e := &evaluator{p: p, chunks: p.Chunks(), notes: map[string]bool{}}
	if err := p.Model.Require(nn.RuleInterval); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	for _, l := range p.Model.Layers {
		e.layers = append(e.layers, l.(nn.IntervalLayer)) // checked by Require
	}
	e.jumps = p.Model.MayJump()
	e.scale = float64(p.N * p.Model.Spec.OutputDivisor(p.K)) // mse: the mean or the per-example sum over outputs (THEORY.md §11)
	// Find the first layer with parameters; everything before it is
	// constant in α. When it is a linear layer its products z = A + αB are
	// cached; otherwise (a batchnorm1d first, or no parameters at all)
	// every pass starts from the network input (start = 0).
	first := -1
	for i, l := range p.Model.Layers {
		if _, ok := l.(nn.AffineInAlpha); ok {
			first = i
			break
		}
		if len(l.Params()) > 0 {
			break
		}
	}
	e.start = first + 1
	_, d := p.X.Dims()
	if p.BNPolicy() == functionspace.BNRecompute {
		e.recompute, e.stats = true, map[statsKey]*statsEntry{}
		r := p.BNReference()
		xs := make([]float64, 0, r*d)
		for i := 0; i < r; i++ {
			xs = append(xs, p.X.RawRowView(i)...)
		}
		e.refX = xs
		if first >= 0 {
			j := nn.NewConstIJet(r, d, xs, 0)
			for i := 0; i < first; i++ {
				j = e.layers[i].IntervalJet(nil, j)
			}
			e.refA, e.refB = p.Model.Layers[first].(nn.AffineInAlpha).ConstProducts(e.box(first, interval.Point(0)), j.V)
			e.refKink0 = j.Kink
		}
	}
	for _, ch := range e.chunks {
		n := ch[1] - ch[0]
		xs := make([]float64, 0, n*d)
		for r := ch[0]; r < ch[1]; r++ {
			xs = append(xs, p.X.RawRowView(r)...)
		}
		j := nn.NewConstIJet(n, d, xs, 0)
		if first < 0 {
			e.a = append(e.a, interval.Matrix{})
			e.b = append(e.b, interval.Matrix{})
			e.kink0 = append(e.kink0, nil)
			continue
		}
		for i := 0; i < first; i++ {
			j = e.layers[i].IntervalJet(nil, j)
		}
		box := e.box(first, interval.Point(0))
		a, b := p.Model.Layers[first].(nn.AffineInAlpha).ConstProducts(box, j.V)
		e.a = append(e.a, a)
		e.b = append(e.b, b)
		e.kink0 = append(e.kink0, j.Kink)
	}
	return e, nil
}

func (e *evaluator) box(i int, alpha interval.I) *nn.ParamBox {
	return nn.NewParamBox(e.p.Model.LayerParams(e.p.Theta0, i), e.p.Model.LayerParams(e.p.Delta, i), alpha)
}

// pass encloses the per-example ℓ, ℓ′, ℓ″ of chunk c over α ∈ alpha, with
// the parameter boxes of every layer after the cached one.
func (e *evaluator) pass(c int, alpha interval.I, boxes []*nn.ParamBox, order int) (l, dl, d2l []interval.I, kink, jump []bool) {
	ch := e.chunks[c]
	var j *nn.IJet
	if e.start == 0 { // no cached linear layer: from the network input
		_, d := e.p.X.Dims()
		xs := make([]float64, 0, (ch[1]-ch[0])*d)
		for r := ch[0]; r < ch[1]; r++ {
			xs = append(xs, e.p.X.RawRowView(r)...)
		}
		j = nn.NewConstIJet(ch[1]-ch[0], d, xs, order)
		var st []*nn.IStats
		if e.recompute {
			st = e.refStats(alpha, boxes, order)
		}
		for i, ly := range e.layers {
			if st != nil && st[i] != nil {
				j = e.p.Model.Layers[i].(nn.BatchStatistics).IntervalJetStats(boxes[i], st[i], j)
				continue
			}
			j = ly.IntervalJet(boxes[i], j)
		}
		if j.Const { // no parameters at all: a constant path
			j.Const = false
			j.Order = order
			j.D1 = interval.NewMatrix(j.N, j.D)
			j.D2 = interval.NewMatrix(j.N, j.D)
		}
	} else {
		j = nn.AffineIJet(e.a[c], e.b[c], alpha, order, e.kink0[c])
		var st []*nn.IStats
		if e.recompute {
			st = e.refStats(alpha, boxes, order)
		}
		for i := e.start; i < len(e.layers); i++ {
			if st != nil && st[i] != nil {
				j = e.p.Model.Layers[i].(nn.BatchStatistics).IntervalJetStats(boxes[i], st[i], j)
				continue
			}
			j = e.layers[i].IntervalJet(boxes[i], j)
		}
	}
	l, dl, d2l = nn.LossEnclosure(e.p.Model.Spec.Loss, j, e.p.Targets.Rows(ch[0], ch[1]))
	e.mu.Lock()
	e.evals++
	e.mu.Unlock()
	jump = j.Jump
	if jump == nil {
		jump = make([]bool, len(l))
	}
	return l, dl, d2l, j.Kink, jump
}

// refStats encloses, under bn_policy recompute, the reference batch's
// statistics at every BatchNorm layer over α ∈ alpha (THEORY.md §2, §7):
// the reference rows [0, BNReference) go through the layers with interval
// jets of the given order, each BatchNorm layer taking the statistics of
// its reference input (nn.IntervalBatchStats) and normalising the
// reference rows with them (nn.BatchNorm.IntervalJetStats), as
// functionspace's reference pass does in float64. boxes must be
// e.boxes(alpha); the result is computed once per (alpha, order) and shared
// by every chunk's pass.
func (e *evaluator) refStats(alpha interval.I, boxes []*nn.ParamBox, order int) []*nn.IStats {
	k := statsKey{alpha.Lo, alpha.Hi, order}
	e.statsMu.Lock()
	en := e.stats[k]
	if en == nil {
		en = &statsEntry{}
		e.stats[k] = en
	}
	e.statsMu.Unlock()
	en.once.Do(func() {
		last := -1
		for i, l := range e.p.Model.Layers {
			if _, ok := l.(nn.BatchStatistics); ok {
				last = i
			}
		}
		st := make([]*nn.IStats, len(e.layers))
		var j *nn.IJet
		if e.start == 0 {
			_, d := e.p.X.Dims()
			j = nn.NewConstIJet(len(e.refX)/max(d, 1), d, e.refX, order)
		} else {
			j = nn.AffineIJet(e.refA, e.refB, alpha, order, e.refKink0)
		}
		for i := e.start; i <= last; i++ {
			if b, ok := e.p.Model.Layers[i].(nn.BatchStatistics); ok {
				st[i] = b.IntervalStats(j)
				j = b.IntervalJetStats(boxes[i], st[i], j)
				continue
			}
			j = e.layers[i].IntervalJet(boxes[i], j)
		}
		en.st = st
	})
	return en.st
}

func (e *evaluator) boxes(alpha interval.I) []*nn.ParamBox {
	bs := make([]*nn.ParamBox, len(e.layers))
	for i := e.start; i < len(e.layers); i++ {
		bs[i] = e.box(i, alpha)
	}
	return bs
}

// chunkResult is one chunk's contribution to a leaf.
type chunkResult struct {
	dl, lc, dlc interval.I
	lr          interval.I // Σ_i ℓ_i over [a, b]
	jump        bool       // some example may jump on [a, b]
	integral    float64    // upper bound on Σ_i ∫ ℓ_i′ (unscaled)
	smooth      int
}

// leafChunk encloses Σ_i ℓ_i′ over [a, b] for chunk c: per example the
// first-order enclosure, intersected where the example is smooth on [a, b]
// with the mean-value forms ℓ′(c) + ℓ″([a,b])·([a,b] − c) centred at the
// midpoint and, when b = 1, at 1 (THEORY.md §7); and an upper bound on
// Σ_i ∫_a^b ℓ_i′: per example min((b − a)·sup ℓ_i′, (b−a)·ℓ_i′(c) +
// M_i(b−c)²/2 − m_i(c−a)²/2) with ℓ_i″ ∈ [m_i, M_i] (smooth examples only).
func (e *evaluator) leafChunk(c int, a, b, mid float64, bi, bc []*nn.ParamBox) chunkResult {
	ab := interval.I{Lo: a, Hi: b}
	lr, dl, d2l, kink, jump := e.pass(c, ab, bi, 2)
	lc, dlc, _, _, _ := e.pass(c, interval.Point(mid), bc, 1)
	w := interval.Sub(interval.Point(b), interval.Point(a))
	off := interval.Sub(ab, interval.Point(mid))
	right := interval.Sqr(interval.Sub(interval.Point(b), interval.Point(mid)))
	left := interval.Sqr(interval.Sub(interval.Point(mid), interval.Point(a)))
	var r chunkResult
	r.dl, r.lc, r.dlc, r.lr = interval.Point(0), interval.Point(0), interval.Point(0), interval.Point(0)
	var d1 []interval.I
	if b == 1 {
		d1 = e.dl1[c]
	}
	intSum := 0.0
	for i := range dl {
		enc := dl[i]
		up := interval.Mul(w, enc).Hi
		if !kink[i] && d2l[i].Valid() {
			mv := interval.Add(dlc[i], interval.Mul(d2l[i], off))
			enc = interval.Intersect(enc, mv)
			if d1 != nil {
				enc = interval.Intersect(enc, interval.Add(d1[i], interval.Mul(d2l[i], interval.Sub(ab, interval.Point(1)))))
			}
			t := interval.Add(interval.Mul(w, dlc[i]), interval.Add(
				interval.Scale(0.5, interval.Mul(interval.Point(d2l[i].Hi), right)),
				interval.Scale(-0.5, interval.Mul(interval.Point(d2l[i].Lo), left))))
			up = math.Min(interval.Mul(w, enc).Hi, t.Hi)
			r.smooth++
		}
		if !(enc.Lo <= enc.Hi) { // empty intersection can only come from NaN; fall back
			enc = dl[i]
			up = interval.Mul(w, enc).Hi
		}
		if !(enc.Lo <= enc.Hi) || math.IsNaN(up) {
			// NaN in the first-order enclosure itself (e.g. inf − inf in
			// the loss over very wide activations, as recompute's enclosed
			// statistics can give): no information, never "≤ 0".
			enc = interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
			up = math.Inf(1)
		}
		intSum = interval.Up(intSum + up)
		r.lr = interval.Add(r.lr, lr[i])
		r.jump = r.jump || jump[i]
		r.dl = interval.Add(r.dl, enc)
		r.lc = interval.Add(r.lc, lc[i])
		r.dlc = interval.Add(r.dlc, dlc[i])
	}
	r.integral = intSum
	return r
}

func (e *evaluator) scaleI(x interval.I) interval.I {
	r := interval.I{Lo: interval.Down(x.Lo / e.scale), Hi: interval.Up(x.Hi / e.scale)}
	// 0/scale is exact: a bound of 0 stays 0 (L′ ≤ 0 stays settled)
	if x.Lo == 0 {
		r.Lo = 0
	}
	if x.Hi == 0 {
		r.Hi = 0
	}
	return r
}

// evalLeaves evaluates leaves concurrently over (leaf, chunk) tasks.
func (e *evaluator) evalLeaves(ctx context.Context, ls []*leaf, workers int) error {
	type task struct{ l, c int }
	nc := len(e.chunks)
	res := make([][]chunkResult, len(ls))
	bi := make([][]*nn.ParamBox, len(ls))
	bc := make([][]*nn.ParamBox, len(ls))
	for k, l := range ls {
		res[k] = make([]chunkResult, nc)
		bi[k] = e.boxes(interval.I{Lo: l.a, Hi: l.b})
		bc[k] = e.boxes(interval.Point(0.5*l.a + 0.5*l.b))
	}
	tasks := make(chan task)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range tasks {
				l := ls[t.l]
				res[t.l][t.c] = e.leafChunk(t.c, l.a, l.b, 0.5*l.a+0.5*l.b, bi[t.l], bc[t.l])
			}
		}()
	}
	var err error
loop:
	for k := range ls {
		for c := 0; c < nc; c++ {
			if err = ctx.Err(); err != nil {
				break loop
			}
			tasks <- task{k, c}
		}
	}
	close(tasks)
	wg.Wait()
	if err != nil {
		return err
	}
	for k, l := range ls {
		dl, lc, dlc, lr := interval.Point(0), interval.Point(0), interval.Point(0), interval.Point(0)
		integral := 0.0
		l.smooth = 0
		l.jump = false
		for _, r := range res[k] { // fixed chunk order
			dl, lc, dlc, lr = interval.Add(dl, r.dl), interval.Add(lc, r.lc), interval.Add(dlc, r.dlc), interval.Add(lr, r.lr)
			integral = interval.Up(integral + r.integral)
			l.smooth += r.smooth
			l.jump = l.jump || r.jump
		}
		l.dl, l.lc, l.dlc, l.lr = e.scaleI(dl), e.scaleI(lc), e.scaleI(dlc), e.scaleI(lr)
		l.integral = interval.Up(integral / e.scale)
	}
	return nil
}

// point encloses L(α) and stores per-example ℓ′(α) when keep is set.
func (e *evaluator) point(alpha float64, keep bool) interval.I {
	bs := e.boxes(interval.Point(alpha))
	sum := interval.Point(0)
	for c := range e.chunks {
		l, dl, _, _, _ := e.pass(c, interval.Point(alpha), bs, 1)
		for _, v := range l {
			sum = interval.Add(sum, v)
		}
		if keep {
			e.dl1 = append(e.dl1, dl)
		}
	}
	return e.scaleI(sum)
}

// upperRise returns a rigorous upper bound on Δ from the leaves in order:
// the largest end⁺_f + Σ_{f<k<l} int_k + end⁺_l over runs f ≤ l (f = l:
// end⁺_f), where end_k = (b_k − a_k)·sup L′ bounds the rise over any part
// of leaf k and int_k ≤ end_k bounds ∫ over the whole leaf. With
// int = end it is MaxRunSum of THEORY.md §7. The float64 sums are made
// rigorous by adding 2·n·u·Σ(|end_k| + |int_k|) (the error of n recursive
// sums, Higham §4.2), and the run attaining it (indices) is returned for
// refinement.
func upperRise(end, in []float64) (up float64, first, last int) {
	best, open, openStart := 0.0, math.Inf(-1), 0
	first, last = 0, -1
	var abs float64
	allNonPos := true
	for k := range end {
		e := math.Max(end[k], 0)
		if end[k] > 0 {
			allNonPos = false
		}
		abs += math.Abs(end[k]) + math.Abs(in[k])
		// best run ending at k: k alone, or an open run through k−1 then k
		if e > best {
			best, first, last = e, k, k
		}
		if open+e > best {
			best, first, last = open+e, openStart, k
		}
		// open runs through k: start at k (end⁺_k) or extend through k as interior
		if open+in[k] >= e {
			open += in[k]
		} else {
			open, openStart = e, k
		}
	}
	if allNonPos {
		return 0, 0, -1 // L′ ≤ 0 on every leaf: L is non-increasing, Δ = 0
	}
	n := float64(len(end) + 2)
	return interval.Up(interval.Up(best) + interval.Up(2*n*0x1p-53*abs*1.01)), first, last
}

// ErrBNRecompute was wrapped by the error Certify returned for a
// `recompute`-policy BatchNorm layer before the first linear layer. Such
// paths are now certified (every pass then starts from the network input,
// issue 18); the value stays for callers that test for it.
var ErrBNRecompute = errors.New("certificate not available for bn_policy recompute")

// Certify runs the branch and bound of THEORY.md §7 on the path's loss over
// α ∈ [0,1]: it encloses L′ on leaf intervals in interval arithmetic with
// outward rounding (package interval; nn's IntervalJet rules; the first
// affine layer as z = A + αB), bounds Δ from above by upperRise and from
// below by the largest rigorous rise between evaluated points, and refines
// the leaves that carry the largest overestimate in the maximal run until
// DeltaUpper ≤ Tolerance (certified_monotone), DeltaLower > Tolerance
// (non_monotone) or the budget is spent (inconclusive).
//
// The certified line is θ0 + αδ with δ the float64 difference the path
// stores (exact whenever θT and θ0 entries are within a factor 2, by
// Sterbenz's lemma; otherwise its end differs from θT by at most half an ulp
// per entry). The elementary functions' accuracy is the assumption stated in
// package interval. Under bn_policy recompute the reference batch's
// statistics are enclosed over every α-interval (nn.IntervalBatchStats,
// nn.BatchNorm.IntervalJetStats; a kink of a reference example marks every
// example as kinked there). Where an example may jump (a softplus input
// crossing PyTorch's threshold, nn.IJet.Jump) a leaf's rise is bounded by
// the enclosures of L over the leaf and at its ends instead of ∫L′, the
// leaf is split down to adjacent float64 α, and its ends are witness
// candidates. It returns ctx.Err() when cancelled, an error when a layer
// has no interval rule, and an error wrapping ErrContradiction when the
// result contradicts itself (Certificate.check).
func Certify(ctx context.Context, p *functionspace.Path, o CertifyOptions) (*Certificate, error) {
	c, _, err := certify(ctx, p, o)
	return c, err
}

// certify is Certify, also returning its evaluator (for witness checks).
func certify(ctx context.Context, p *functionspace.Path, o CertifyOptions) (*Certificate, *evaluator, error) {
	start := time.Now()
	o.defaults()
	e, err := newEvaluator(p)
	if err != nil {
		return nil, nil, err
	}
	progress := func(stage string, d, t int) {
		if o.Progress != nil {
			o.Progress(stage, d, t)
		}
	}
	progress("certificate", 0, o.MaxIntervals) // the first leaves take a while: say the phase has started
	cert := &Certificate{Tolerance: o.Tolerance, Examples: p.N}
	if constantLine(p) {
		// δ = 0 exactly: θ0 + αδ = θ0 for every α (in float64 too), and
		// under recompute the reference statistics are then constant as
		// well: L is constant and Δ = 0 without any leaf.
		l0, l1 := e.point(0, false), e.point(1, false)
		cert.Verdict, cert.SettledFraction, cert.SmoothFraction = CertifiedMonotone, 1, 1
		cert.Points = []CertPoint{{0, l0.Lo, l0.Hi}, {1, l1.Lo, l1.Hi}}
		cert.Evaluations = e.evals
		cert.Notes = append(cert.Notes, "θT = θ0 on every interpolated tensor (δ = 0 exactly, BatchNorm buffers included): L is constant along the line, so Δ = 0 without any leaf")
		if err := cert.check(); err != nil {
			return nil, nil, err
		}
		cert.Seconds = time.Since(start).Seconds()
		progress("certificate", 0, 0)
		return cert, e, nil
	}
	l0 := e.point(0, false)
	l1 := e.point(1, true)
	var leaves []*leaf
	// L at the leaves' ends, for leaves where L may jump: the initial
	// ends here, later ends are the split leaves' midpoints (lc).
	ends := make([]interval.I, o.InitialIntervals+1)
	ends[0], ends[o.InitialIntervals] = l0, l1
	if e.jumps {
		for k := 1; k < o.InitialIntervals; k++ {
			ends[k] = e.point(float64(k)/float64(o.InitialIntervals), false)
		}
	}
	for k := 0; k < o.InitialIntervals; k++ {
		a := float64(k) / float64(o.InitialIntervals)
		b := float64(k+1) / float64(o.InitialIntervals)
		leaves = append(leaves, &leaf{a: a, b: b, la: ends[k], lb: ends[k+1]})
	}
	if err := e.evalLeaves(ctx, leaves, o.Workers); err != nil {
		return nil, nil, err
	}
	var decided Verdict
	var stop string
	var end []float64
	for {
		progress("certificate", len(leaves), o.MaxIntervals)
		end = make([]float64, len(leaves))
		in := make([]float64, len(leaves))
		for k, l := range leaves {
			w := l.b - l.a
			if l.dl.Hi == 0 { // exact: L′ ≤ 0 on the leaf
				end[k] = 0
			} else if l.dl.Hi > 0 {
				end[k] = interval.Up(interval.Up(w) * l.dl.Hi)
			} else {
				end[k] = interval.Up(interval.Down(w) * l.dl.Hi)
			}
			if math.IsNaN(end[k]) { // no information: never read as L′ ≤ 0
				end[k] = math.Inf(1)
			}
			in[k] = end[k]
			if l.integral < end[k] {
				in[k] = l.integral
			}
			if l.jump {
				// L may jump on the leaf: a rise over any part of it is at
				// most sup L − inf L over the leaf, and over all of it
				// L(b) − L(a) ≤ sup L(b) − inf L(a).
				end[k] = interval.Up(l.lr.Hi - l.lr.Lo)
				in[k] = math.Min(end[k], interval.Up(l.lb.Hi-l.la.Lo))
				if math.IsNaN(end[k]) || !l.lr.Valid() {
					end[k] = math.Inf(1)
				}
				if math.IsNaN(in[k]) || !l.la.Valid() || !l.lb.Valid() {
					in[k] = end[k]
				}
				if m := 0.5*l.a + 0.5*l.b; (m <= l.a || m >= l.b) && l.la.Valid() && l.lb.Valid() {
					// a and b are adjacent float64: the only evaluable α
					// of the leaf are its ends (α is a float64, README
					// "Choices"), so every rise over a part of it is 0
					// or L(b) − L(a) ≤ sup L(b) − inf L(a). A downward
					// jump is settled here.
					if r := interval.Up(l.lb.Hi - l.la.Lo); !math.IsNaN(r) {
						end[k], in[k] = r, r
					}
				}
			}
		}
		upper, first, last := upperRise(end, in)
		lower, wit := lowerRise(leaves, l0, l1, e.jumps)
		cert.DeltaUpper, cert.DeltaLower, cert.Witness = upper, math.Max(lower, 0), wit
		if decided == "" {
			switch {
			case upper <= o.Tolerance:
				decided = CertifiedMonotone
			case lower > o.Tolerance:
				decided = NonMonotone
			}
		}
		var split []int
		if decided != "" && (o.DeltaGap <= 0 || upper-cert.DeltaLower <= o.DeltaGap) {
			// decided; but a leaf where L may jump by more than the
			// witness rises is still split down to adjacent float64 α
			// (within the budget), so that the jump itself becomes the
			// witness and delta_lower is not a loose bound on it
			if decided == NonMonotone && len(leaves) < o.MaxIntervals {
				split = jumpSplits(leaves, end, cert.DeltaLower, o.MaxIntervals-len(leaves))
			}
			if len(split) == 0 {
				break
			}
		}
		if len(leaves) >= o.MaxIntervals {
			stop = fmt.Sprintf("the budget of %d leaves (max_intervals) is spent", o.MaxIntervals)
			break
		}
		if split == nil {
			split = chooseSplits(leaves, end, in, first, last, o.MinWidth, o.MaxIntervals-len(leaves), 2*o.Workers)
		}
		if len(split) == 0 && decided == "" {
			// nothing left to split in the maximal run: any other leaf
			// whose rise is not bounded by 0 (the budget is spent only
			// when none of those can be split either)
			split = chooseSplits(leaves, end, in, 1, 0, o.MinWidth, o.MaxIntervals-len(leaves), 2*o.Workers)
		}
		if len(split) == 0 {
			stop = fmt.Sprintf("every leaf is at the narrowest width (min_width %g; leaves where L may jump: adjacent float64 α)", o.MinWidth)
			break
		}
		var fresh []*leaf
		var next []*leaf
		sp := map[int]bool{}
		for _, k := range split {
			sp[k] = true
		}
		for k, l := range leaves {
			if !sp[k] {
				next = append(next, l)
				continue
			}
			m := 0.5*l.a + 0.5*l.b
			x, y := &leaf{a: l.a, b: m, la: l.la, lb: l.lc}, &leaf{a: m, b: l.b, la: l.lc, lb: l.lb}
			next = append(next, x, y)
			fresh = append(fresh, x, y)
		}
		if err := e.evalLeaves(ctx, fresh, o.Workers); err != nil {
			return nil, nil, err
		}
		leaves = next
	}
	if decided == "" {
		decided = Inconclusive
	}
	cert.Verdict = decided
	pairs := 0
	jumpLo, jumpHi, jumpN := math.Inf(1), math.Inf(-1), 0
	for k, l := range leaves {
		if l.jump {
			cert.JumpLeaves++
		}
		cert.Intervals = append(cert.Intervals, CertLeaf{A: l.a, B: l.b, Inf: l.dl.Lo, Sup: l.dl.Hi})
		if end[k] <= 0 { // the rise over any part of the leaf is ≤ 0
			cert.SettledFraction += l.b - l.a
		} else {
			cert.UnsettledCount++
			cert.Unsettled = append(cert.Unsettled, [2]float64{l.a, l.b})
			if l.jump {
				jumpLo, jumpHi, jumpN = math.Min(jumpLo, l.a), math.Max(jumpHi, l.b), jumpN+1
			}
		}
		pairs += l.smooth
	}
	if decided == Inconclusive {
		cert.Reason = fmt.Sprintf("%s; Δ ≤ %.4g is above the tolerance %g and no witness rises above it; %d unsettled leaves", stop, cert.DeltaUpper, o.Tolerance, cert.UnsettledCount)
		if jumpN > 0 {
			cert.Reason += fmt.Sprintf("; L may jump (a softplus input crosses its threshold) on %d of them, within α ∈ [%.17g, %.17g]", jumpN, jumpLo, jumpHi)
		}
		cert.Notes = append(cert.Notes, "inconclusive: "+cert.Reason)
	}
	cert.SmoothFraction = float64(pairs) / float64(len(leaves)*max(p.N, 1))
	cert.Points = append(cert.Points, CertPoint{0, l0.Lo, l0.Hi})
	for _, l := range leaves {
		cert.Points = append(cert.Points, CertPoint{0.5*l.a + 0.5*l.b, l.lc.Lo, l.lc.Hi})
	}
	cert.Points = append(cert.Points, CertPoint{1, l1.Lo, l1.Hi})
	cert.Leaves = len(leaves)
	cert.Evaluations = e.evals
	if e.jumps {
		cert.Notes = append(cert.Notes, "softplus follows PyTorch (the identity where βz > threshold): L may jump where a softplus input crosses the threshold, by up to log1p(exp(−threshold))/β per unit; on the leaves where it may (jump_leaves), the bounds use the enclosures of L over the leaf and at its ends instead of ∫L′, so delta_bounds include the jumps")
	}
	if err := cert.check(); err != nil {
		return nil, nil, err
	}
	cert.Seconds = time.Since(start).Seconds()
	progress("certificate", len(leaves), len(leaves))
	return cert, e, nil
}

// lowerRise returns the largest rigorous rise lo(L(β)) − hi(L(α)) over the
// evaluated points α < β (0, the leaves' midpoints, 1, and with ends set
// the ends of the leaves where L may jump, so that a jump is its own
// witness), rounded down.
func lowerRise(leaves []*leaf, l0, l1 interval.I, ends bool) (float64, *CertWitness) {
	type pt struct {
		a float64
		v interval.I
	}
	pts := []pt{{0, l0}}
	for _, l := range leaves {
		if ends && l.jump && l.a > 0 {
			pts = append(pts, pt{l.a, l.la})
		}
		pts = append(pts, pt{0.5*l.a + 0.5*l.b, l.lc})
		if ends && l.jump && l.b < 1 {
			pts = append(pts, pt{l.b, l.lb})
		}
	}
	pts = append(pts, pt{1, l1})
	best := math.Inf(-1)
	var w *CertWitness
	mi := 0
	for j := 1; j < len(pts); j++ {
		if pts[j-1].v.Hi < pts[mi].v.Hi {
			mi = j - 1
		}
		r := interval.Down(pts[j].v.Lo - pts[mi].v.Hi)
		if r > best {
			best = r
			w = &CertWitness{Alpha: pts[mi].a, Beta: pts[j].a, Rise: r,
				LossAlpha: [2]float64{pts[mi].v.Lo, pts[mi].v.Hi}, LossBeta: [2]float64{pts[j].v.Lo, pts[j].v.Hi}}
		}
	}
	if best <= 0 {
		return 0, nil
	}
	return best, w
}

// chooseSplits picks leaves of the run [first, last] (all leaves when the
// run is empty) to bisect: by decreasing slack, the part of the bound that
// refinement can remove (the run's end leaves' end⁺, interior leaves'
// in − (b−a)·inf L′(c)), until half the run's slack is covered, at least
// minBatch when available, never more than budget, never narrower than
// minWidth except leaves where L may jump.
func chooseSplits(leaves []*leaf, end, in []float64, first, last int, minWidth float64, budget, minBatch int) []int {
	if first > last {
		first, last = 0, len(leaves)-1
	}
	type cand struct {
		k     int
		slack float64
	}
	var cs []cand
	total := 0.0
	for k := first; k <= last; k++ {
		l := leaves[k]
		// a leaf where L may jump is split down to adjacent float64 α
		// (the jump is then between two evaluated points: a witness or
		// a tight bound), any other not below minWidth
		if (!l.jump && l.b-l.a <= 2*minWidth) || 0.5*l.a+0.5*l.b <= l.a || 0.5*l.a+0.5*l.b >= l.b {
			continue
		}
		var s float64
		if k == first || k == last {
			s = math.Max(end[k], 0)
		} else {
			s = in[k] - (l.b-l.a)*l.dlc.Lo
		}
		s += (l.b - l.a) * (l.dl.Hi - l.dl.Lo) * 1e-3 // tie-break: wider enclosures first
		cs = append(cs, cand{k, s})
		total += s
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].slack > cs[j].slack })
	var out []int
	acc := 0.0
	for _, c := range cs {
		if len(out) >= budget {
			break
		}
		if acc >= total/2 && len(out) >= minBatch {
			break
		}
		out = append(out, c.k)
		acc += c.slack
	}
	sort.Ints(out)
	return out
}

// constantLine reports whether δ = θT − θ0 is exactly 0 in every tensor
// the path moves (BatchNorm buffers included): the line is then one point.
func constantLine(p *functionspace.Path) bool {
	for _, t := range p.Delta {
		for _, v := range t.Data {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

// jumpSplits returns the leaves where L may jump whose enclosed rise end
// exceeds lower and whose ends are not adjacent float64 (at most budget,
// in order).
func jumpSplits(leaves []*leaf, end []float64, lower float64, budget int) []int {
	var out []int
	for k, l := range leaves {
		if m := 0.5*l.a + 0.5*l.b; l.jump && end[k] > lower && m > l.a && m < l.b && len(out) < budget {
			out = append(out, k)
		}
	}
	return out
}

// attachCertificate runs Certify with the analysis options and records its
// verdict, delta_bounds, witness and details in the report. Where no
// certificate is available (ErrBNRecompute: a recompute-policy BatchNorm
// before the first linear layer), the grid verdict stands and
// conditions.certificate says why.
func attachCertificate(ctx context.Context, p *functionspace.Path, o Options, r *Report) error {
	c, e, err := certify(ctx, p, CertifyOptions{Tolerance: o.Tolerance, MaxIntervals: o.MaxIntervals, MinWidth: o.MinWidth, Progress: o.Progress})
	if errors.Is(err, ErrBNRecompute) { // the grid verdict stands, with the reason
		r.Conditions.Certificate = err.Error() + " (the interval rules enclose the interpolate policy only); the verdict is the grid's"
		return nil
	}
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	// The enclosures of L(0) and L(1) must hold the float64 grid values up
	// to the grid's rounding (generously: 1e-6·(1 + |L|) more).
	if len(c.Points) > 0 && len(r.Loss) > 0 {
		for _, q := range []struct {
			at  CertPoint
			val float64
		}{{c.Points[0], r.Loss[0]}, {c.Points[len(c.Points)-1], r.Loss[len(r.Loss)-1]}} {
			s := 1e-6*(1+math.Abs(q.val)) + RoundingErrorIn(p.Precision(), q.val, p.N)
			if q.val < q.at.Lo-s || q.val > q.at.Hi+s {
				return fmt.Errorf("certificate: %w: the enclosure [%v, %v] of L(%v) misses the evaluated L = %v", ErrContradiction, q.at.Lo, q.at.Hi, q.at.Alpha, q.val)
			}
		}
	}
	// A grid witness is proven here, with the certificate's evaluator
	// (Analyze leaves it to the certificate), unless the certificate has
	// its own; a proven one is kept whatever the certificate's budget
	// allowed.
	var grid *Witness
	var gridRise float64
	if r.Witness != nil && r.Verdict == NonMonotone && c.Verdict != NonMonotone {
		ck := proveWitnessWith(e, r.Witness, o.Tolerance)
		r.Conditions.WitnessCheck = append(r.Conditions.WitnessCheck, ck)
		if ck.Proven {
			grid, gridRise = r.Witness, r.Witness.Rise-r.Witness.RoundingError
		}
	}
	r.Certificate = c
	r.Verdict = c.Verdict
	lower := c.DeltaLower
	if grid != nil {
		lower = math.Max(lower, gridRise)
	}
	switch {
	case !(c.DeltaUpper < math.Inf(1)):
		r.DeltaBounds = nil
		r.Conditions.DeltaBounds = "null: the certificate's upper bound on Δ is unbounded (an enclosure overflowed); the lower bound is certificate.delta_lower"
	default:
		r.DeltaBounds = &[2]float64{lower, c.DeltaUpper}
	}
	if lower > c.DeltaUpper {
		return fmt.Errorf("certificate: %w: a witness rises by at least %v but the certificate bounds Δ by %v", ErrContradiction, lower, c.DeltaUpper)
	}
	raiseDeltaContinuous(p, r, c, grid, lower)
	switch {
	case c.Verdict == NonMonotone && c.Witness != nil:
		w := c.Witness
		mid := 0.5*(w.LossBeta[0]+w.LossBeta[1]) - 0.5*(w.LossAlpha[0]+w.LossAlpha[1])
		r.Witness = &Witness{Alpha: w.Alpha, Beta: w.Beta, Rise: mid, RoundingError: math.Max(mid-w.Rise, 0)}
	case c.Verdict == CertifiedMonotone && grid != nil:
		return fmt.Errorf("certificate: %w: certified_monotone but L rises by at least %v from α = %v to %v", ErrContradiction, gridRise, grid.Alpha, grid.Beta)
	case grid != nil: // inconclusive: the grid's witness decides
		r.Verdict, r.Witness = NonMonotone, grid
	default:
		r.Witness = nil
	}
	return nil
}

// raiseDeltaContinuous keeps the report's delta_continuous (Δ over all of
// [0,1], RUN_FORMAT.md) from falling below the certificate's proven lower
// bound: when the witness behind lower (the certificate's, or the proven
// grid witness) rises by more than the continuous-Δ search found, the
// search missed a rise between its points (a narrow bump or a softplus
// jump), and delta_continuous and delta_continuous_pair become that pair's
// float64 rise, with conditions.delta_continuous saying so.
func raiseDeltaContinuous(p *functionspace.Path, r *Report, c *Certificate, grid *Witness, lower float64) {
	if math.IsNaN(r.DeltaContinuous) || !(lower > 0) {
		return // not computed (loss only), or nothing proven to rise
	}
	var a, b float64
	switch {
	case c.Witness != nil && c.DeltaLower >= lower:
		a, b = c.Witness.Alpha, c.Witness.Beta
	case grid != nil:
		a, b = grid.Alpha, grid.Beta
	default:
		return
	}
	rise := p.At(b).Loss - p.At(a).Loss
	if !(rise > r.DeltaContinuous) {
		return
	}
	r.DeltaContinuous, r.DeltaContinuousPair = rise, &[2]float64{a, b}
	r.Conditions.DeltaContinuous = fmt.Sprintf("the float64 rise L(%v) − L(%v) of the certificate's witness: the continuous-Δ search (L′ on the Gauss length's grid, Brent refinement) missed this rise between its points; delta_bounds[0] = %v is its rigorous lower bound", b, a, lower)
}

// MarshalJSON caps the list of unsettled intervals at 100 entries in the
// report (UnsettledCount gives the full number).
//
// A bound that is not finite (an enclosure overflowed, so Δ is not bounded
// above) is written as null with a note: the JSON stays valid.
func (c *Certificate) MarshalJSON() ([]byte, error) {
	type plain Certificate
	q := *c
	if len(q.Unsettled) > 100 {
		q.Unsettled = q.Unsettled[:100]
	}
	if q.Unsettled == nil {
		q.Unsettled = [][2]float64{}
	}
	finite := func(v float64) *float64 {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return &v
	}
	aux := struct {
		*plain
		DeltaLower *float64 `json:"delta_lower"`
		DeltaUpper *float64 `json:"delta_upper"`
	}{(*plain)(&q), finite(c.DeltaLower), finite(c.DeltaUpper)}
	if aux.DeltaUpper == nil || aux.DeltaLower == nil {
		q.Notes = append(append([]string(nil), q.Notes...), "a delta bound is null: it is not finite (an enclosure overflowed)")
	}
	return json.Marshal(aux)
}

// MarshalJSON writes an enclosure of L with an infinite bound (overflow)
// as null: the JSON stays valid.
func (w CertWitness) MarshalJSON() ([]byte, error) {
	enc := func(v [2]float64) *[2]float64 {
		if math.IsInf(v[0], 0) || math.IsInf(v[1], 0) || math.IsNaN(v[0]) || math.IsNaN(v[1]) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Alpha     float64     `json:"alpha"`
		Beta      float64     `json:"beta"`
		Rise      float64     `json:"rise"`
		LossAlpha *[2]float64 `json:"loss_alpha"`
		LossBeta  *[2]float64 `json:"loss_beta"`
	}{w.Alpha, w.Beta, w.Rise, enc(w.LossAlpha), enc(w.LossBeta)})
}

// ErrContradiction is wrapped by the error Certify and Analyze return when
// the certificate contradicts itself or the point evaluations (delta_lower
// above delta_upper, a certified verdict with its own witness, an enclosure
// of L that misses the float64 value by more than its rounding): a bug,
// never a verdict.
var ErrContradiction = errors.New("internal contradiction in the certificate")

// check returns an error wrapping ErrContradiction when the certificate's
// own numbers disagree: DeltaLower > DeltaUpper, a certified verdict with a
// witness above the tolerance, a non-monotone verdict without one, or an
// enclosure of L at an evaluated point with lower bound above upper bound.
func (c *Certificate) check() error {
	switch {
	case c.DeltaLower > c.DeltaUpper:
		return fmt.Errorf("%w: delta_lower %v > delta_upper %v", ErrContradiction, c.DeltaLower, c.DeltaUpper)
	case c.Verdict == CertifiedMonotone && c.Witness != nil && c.Witness.Rise > c.Tolerance:
		return fmt.Errorf("%w: certified_monotone with its own witness: L rises by at least %v from α = %v to %v", ErrContradiction, c.Witness.Rise, c.Witness.Alpha, c.Witness.Beta)
	case c.Verdict == NonMonotone && (c.Witness == nil || !(c.Witness.Rise > c.Tolerance)):
		return fmt.Errorf("%w: non_monotone without a witness above the tolerance", ErrContradiction)
	}
	for _, q := range c.Points {
		if q.Lo > q.Hi {
			return fmt.Errorf("%w: the enclosure of L(%v) is [%v, %v]", ErrContradiction, q.Alpha, q.Lo, q.Hi)
		}
	}
	return nil
}
