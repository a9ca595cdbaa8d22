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
	Verdict   string  `json:"verdict"`
	Tolerance float64 `json:"tolerance"`
	// DeltaLower ≤ Δ ≤ DeltaUpper for the continuous Δ over [0,1] (THEORY.md §5).
	DeltaLower float64 `json:"delta_lower"`
	DeltaUpper float64 `json:"delta_upper"`
	// Witness is the evaluated pair with the largest rigorous rise (nil if none rises).
	Witness *CertWitness `json:"witness,omitempty"`
	// Unsettled lists the leaves [a, b] on which L′ ≤ 0 was not proved
	// (sup of the enclosure > 0), in order; UnsettledCount is their number.
	Unsettled      [][2]float64 `json:"unsettled"`
	UnsettledCount int          `json:"unsettled_count"`
	// SettledFraction is the total length of the leaves with sup L′ ≤ 0.
	SettledFraction float64 `json:"settled_fraction"`
	// SmoothFraction is the fraction of (leaf, example) pairs on which the
	// mean-value form applied (no kink).
	SmoothFraction float64 `json:"smooth_fraction"`
	Leaves         int     `json:"leaves"`
	// Evaluations counts interval passes over all examples (one per leaf
	// enclosure, one per point evaluation).
	Evaluations int     `json:"evaluations"`
	Seconds     float64 `json:"seconds"`
	Examples    int     `json:"examples"`
	// Notes records conditions the verdict depends on (e.g. softplus threshold crossings).
	Notes []string `json:"notes,omitempty"`
	// Intervals are the final leaves with their L′ enclosures, and Points the
	// evaluated L enclosures, in order of α (for figures; not written).
	Intervals []CertLeaf  `json:"-"`
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
type CertLeaf struct{ A, B, Inf, Sup float64 }

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
	// recompute (bn_policy recompute, THEORY.md §2): the reference batch's
	// first-layer products and kinks, and the per-(α-interval, order)
	// enclosures of its statistics at every BatchNorm layer.
	recompute  bool
	refA, refB interval.Matrix
	refKink0   []bool
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
	for i, l := range p.Model.Layers {
		il, ok := l.(nn.IntervalLayer)
		if !ok {
			return nil, fmt.Errorf("layers[%d]: %s: no interval rule for the certificate", i, l.Type())
		}
		e.layers = append(e.layers, il)
	}
	e.scale = float64(p.N * p.Model.Spec.OutputDivisor(p.K))
	// Find the first affine layer; everything before it is constant in α.
	first := -1
	for i, l := range p.Model.Layers {
		if _, ok := l.(*nn.Dense); ok {
			first = i
			break
		}
	}
	e.start = first + 1
	_, d := p.X.Dims()
	if p.BNPolicy() == functionspace.BNRecompute {
		for i, l := range p.Model.Layers {
			if _, ok := l.(*nn.BatchNorm); ok && (first < 0 || i < e.start) {
				return nil, fmt.Errorf("layers[%d]: batchnorm1d before the first linear layer: %w", i, ErrBNRecompute)
			}
		}
		e.recompute, e.stats = true, map[statsKey]*statsEntry{}
		r := p.BNReference()
		xs := make([]float64, 0, r*d)
		for i := 0; i < r; i++ {
			xs = append(xs, p.X.RawRowView(i)...)
		}
		j := nn.NewConstIJet(r, d, xs, 0)
		for i := 0; i < first; i++ {
			j = e.layers[i].IntervalJet(nil, j)
		}
		e.refA, e.refB = p.Model.Layers[first].(*nn.Dense).ConstProducts(e.box(first, interval.Point(0)), j.V)
		e.refKink0 = j.Kink
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
		a, b := p.Model.Layers[first].(*nn.Dense).ConstProducts(box, j.V)
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
func (e *evaluator) pass(c int, alpha interval.I, boxes []*nn.ParamBox, order int) (l, dl, d2l []interval.I, kink []bool) {
	ch := e.chunks[c]
	var j *nn.IJet
	if e.start == 0 { // no affine layer: constant path
		_, d := e.p.X.Dims()
		xs := make([]float64, 0, (ch[1]-ch[0])*d)
		for r := ch[0]; r < ch[1]; r++ {
			xs = append(xs, e.p.X.RawRowView(r)...)
		}
		j = nn.NewConstIJet(ch[1]-ch[0], d, xs, order)
		for _, ly := range e.layers {
			j = ly.IntervalJet(nil, j)
		}
		j.Const = false
		j.Order = order
		j.D1 = interval.NewMatrix(j.N, j.D)
		j.D2 = interval.NewMatrix(j.N, j.D)
	} else {
		j = nn.AffineIJet(e.a[c], e.b[c], alpha, order, e.kink0[c])
		var st []*nn.IStats
		if e.recompute {
			st = e.refStats(alpha, boxes, order)
		}
		for i := e.start; i < len(e.layers); i++ {
			if st != nil && st[i] != nil {
				j = e.p.Model.Layers[i].(*nn.BatchNorm).IntervalJetStats(boxes[i], st[i], j)
				continue
			}
			j = e.layers[i].IntervalJet(boxes[i], j)
		}
	}
	l, dl, d2l = nn.LossEnclosure(e.p.Model.Spec.Loss, j, e.p.Targets.Rows(ch[0], ch[1]))
	e.mu.Lock()
	e.evals++
	e.mu.Unlock()
	return l, dl, d2l, j.Kink
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
			if _, ok := l.(*nn.BatchNorm); ok {
				last = i
			}
		}
		st := make([]*nn.IStats, len(e.layers))
		j := nn.AffineIJet(e.refA, e.refB, alpha, order, e.refKink0)
		for i := e.start; i <= last; i++ {
			if b, ok := e.p.Model.Layers[i].(*nn.BatchNorm); ok {
				st[i] = nn.IntervalBatchStats(j)
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
	integral    float64 // upper bound on Σ_i ∫ ℓ_i′ (unscaled)
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
	_, dl, d2l, kink := e.pass(c, ab, bi, 2)
	lc, dlc, _, _ := e.pass(c, interval.Point(mid), bc, 1)
	w := interval.Sub(interval.Point(b), interval.Point(a))
	off := interval.Sub(ab, interval.Point(mid))
	right := interval.Sqr(interval.Sub(interval.Point(b), interval.Point(mid)))
	left := interval.Sqr(interval.Sub(interval.Point(mid), interval.Point(a)))
	var r chunkResult
	r.dl, r.lc, r.dlc = interval.Point(0), interval.Point(0), interval.Point(0)
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
		r.dl = interval.Add(r.dl, enc)
		r.lc = interval.Add(r.lc, lc[i])
		r.dlc = interval.Add(r.dlc, dlc[i])
	}
	r.integral = intSum
	return r
}

func (e *evaluator) scaleI(x interval.I) interval.I {
	return interval.I{Lo: interval.Down(x.Lo / e.scale), Hi: interval.Up(x.Hi / e.scale)}
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
		dl, lc, dlc := interval.Point(0), interval.Point(0), interval.Point(0)
		integral := 0.0
		l.smooth = 0
		for _, r := range res[k] { // fixed chunk order
			dl, lc, dlc = interval.Add(dl, r.dl), interval.Add(lc, r.lc), interval.Add(dlc, r.dlc)
			integral = interval.Up(integral + r.integral)
			l.smooth += r.smooth
		}
		l.dl, l.lc, l.dlc = e.scaleI(dl), e.scaleI(lc), e.scaleI(dlc)
		l.integral = interval.Up(integral / e.scale)
	}
	return nil
}

// point encloses L(α) and stores per-example ℓ′(α) when keep is set.
func (e *evaluator) point(alpha float64, keep bool) interval.I {
	bs := e.boxes(interval.Point(alpha))
	sum := interval.Point(0)
	for c := range e.chunks {
		l, dl, _, _ := e.pass(c, interval.Point(alpha), bs, 1)
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

// ErrBNRecompute is wrapped by the error Certify returns for a path whose
// BatchNorm layers use the `recompute` policy (THEORY.md §2) with a
// BatchNorm layer before the first linear layer: its statistics are not
// enclosed there.
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
// example as kinked there). It returns ctx.Err() when cancelled, an error
// when a layer has no interval rule, and an error wrapping ErrBNRecompute
// when a recompute BatchNorm layer comes before the first linear layer.
func Certify(ctx context.Context, p *functionspace.Path, o CertifyOptions) (*Certificate, error) {
	start := time.Now()
	o.defaults()
	e, err := newEvaluator(p)
	if err != nil {
		return nil, err
	}
	progress := func(stage string, d, t int) {
		if o.Progress != nil {
			o.Progress(stage, d, t)
		}
	}
	cert := &Certificate{Tolerance: o.Tolerance, Examples: p.N}
	l0 := e.point(0, false)
	l1 := e.point(1, true)
	var leaves []*leaf
	for k := 0; k < o.InitialIntervals; k++ {
		a := float64(k) / float64(o.InitialIntervals)
		b := float64(k+1) / float64(o.InitialIntervals)
		leaves = append(leaves, &leaf{a: a, b: b})
	}
	if err := e.evalLeaves(ctx, leaves, o.Workers); err != nil {
		return nil, err
	}
	decided := ""
	for {
		progress("certificate", len(leaves), o.MaxIntervals)
		end := make([]float64, len(leaves))
		in := make([]float64, len(leaves))
		for k, l := range leaves {
			w := l.b - l.a
			if l.dl.Hi >= 0 {
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
		}
		upper, first, last := upperRise(end, in)
		lower, wit := lowerRise(leaves, l0, l1)
		cert.DeltaUpper, cert.DeltaLower, cert.Witness = upper, math.Max(lower, 0), wit
		if decided == "" {
			switch {
			case upper <= o.Tolerance:
				decided = CertifiedMonotone
			case lower > o.Tolerance:
				decided = NonMonotone
			}
		}
		if decided != "" && (o.DeltaGap <= 0 || upper-cert.DeltaLower <= o.DeltaGap) {
			break
		}
		if len(leaves) >= o.MaxIntervals {
			break
		}
		split := chooseSplits(leaves, end, in, first, last, o.MinWidth, o.MaxIntervals-len(leaves), 2*o.Workers)
		if len(split) == 0 {
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
			x, y := &leaf{a: l.a, b: m}, &leaf{a: m, b: l.b}
			next = append(next, x, y)
			fresh = append(fresh, x, y)
		}
		if err := e.evalLeaves(ctx, fresh, o.Workers); err != nil {
			return nil, err
		}
		leaves = next
	}
	if decided == "" {
		decided = Inconclusive
	}
	cert.Verdict = decided
	pairs := 0
	for _, l := range leaves {
		cert.Intervals = append(cert.Intervals, CertLeaf{A: l.a, B: l.b, Inf: l.dl.Lo, Sup: l.dl.Hi})
		if l.dl.Hi <= 0 {
			cert.SettledFraction += l.b - l.a
		} else {
			cert.UnsettledCount++
			cert.Unsettled = append(cert.Unsettled, [2]float64{l.a, l.b})
		}
		pairs += l.smooth
	}
	cert.SmoothFraction = float64(pairs) / float64(len(leaves)*max(p.N, 1))
	cert.Points = append(cert.Points, CertPoint{0, l0.Lo, l0.Hi})
	for _, l := range leaves {
		cert.Points = append(cert.Points, CertPoint{0.5*l.a + 0.5*l.b, l.lc.Lo, l.lc.Hi})
	}
	cert.Points = append(cert.Points, CertPoint{1, l1.Lo, l1.Hi})
	cert.Leaves = len(leaves)
	cert.Evaluations = e.evals
	for _, l := range p.Model.Layers {
		if l.Type() == "softplus" {
			cert.Notes = append(cert.Notes, "softplus is enclosed with PyTorch's threshold branch; its jump of at most log1p(exp(−threshold))/β at the threshold is not part of ∫L′")
			break
		}
	}
	cert.Seconds = time.Since(start).Seconds()
	progress("certificate", len(leaves), len(leaves))
	return cert, nil
}

// lowerRise returns the largest rigorous rise lo(L(β)) − hi(L(α)) over the
// evaluated points α < β (0, the leaves' midpoints, 1), rounded down.
func lowerRise(leaves []*leaf, l0, l1 interval.I) (float64, *CertWitness) {
	type pt struct {
		a float64
		v interval.I
	}
	pts := []pt{{0, l0}}
	for _, l := range leaves {
		pts = append(pts, pt{0.5*l.a + 0.5*l.b, l.lc})
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
// minBatch when available, never more than budget, never narrower than minWidth.
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
		if l.b-l.a <= 2*minWidth || 0.5*l.a+0.5*l.b <= l.a || 0.5*l.a+0.5*l.b >= l.b {
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

// attachCertificate runs Certify with the analysis options and records its
// verdict, delta_bounds, witness and details in the report. Where no
// certificate is available (ErrBNRecompute: a recompute-policy BatchNorm
// before the first linear layer), the grid verdict stands and
// conditions.certificate says why.
func attachCertificate(ctx context.Context, p *functionspace.Path, o Options, r *Report) error {
	c, err := Certify(ctx, p, CertifyOptions{Tolerance: o.Tolerance, MaxIntervals: o.MaxIntervals, MinWidth: o.MinWidth, Progress: o.Progress})
	if errors.Is(err, ErrBNRecompute) { // the grid verdict stands, with the reason
		r.Conditions["certificate"] = err.Error() + " (the interval rules enclose the interpolate policy only); the verdict is the grid's"
		return nil
	}
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	r.Certificate = c
	r.Verdict = c.Verdict
	r.DeltaBounds = &[2]float64{c.DeltaLower, c.DeltaUpper}
	switch {
	case c.Verdict == NonMonotone && c.Witness != nil:
		w := c.Witness
		mid := 0.5*(w.LossBeta[0]+w.LossBeta[1]) - 0.5*(w.LossAlpha[0]+w.LossAlpha[1])
		r.Witness = &Witness{Alpha: w.Alpha, Beta: w.Beta, Rise: mid, RoundingError: math.Max(mid-w.Rise, 0)}
	case c.Verdict != NonMonotone:
		r.Witness = nil
	}
	return nil
}

// MarshalJSON caps the list of unsettled intervals at 100 entries in the
// report (UnsettledCount gives the full number).
func (c *Certificate) MarshalJSON() ([]byte, error) {
	type plain Certificate
	q := *c
	if len(q.Unsettled) > 100 {
		q.Unsettled = q.Unsettled[:100]
	}
	if q.Unsettled == nil {
		q.Unsettled = [][2]float64{}
	}
	return json.Marshal((*plain)(&q))
}
