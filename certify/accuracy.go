package certify

import (
	"context"
	"encoding/gob"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// Certified accuracy along the line (THEORY.md §10): on an α-interval
// [a, b], example i with label y is surely right when every margin
// m_ik(α) = γ_iy(α) − γ_ik(α), k ≠ y, is enclosed above 0 for all α in
// [a, b] (its arg-max is then y at every α, whatever the tie rule), and
// surely wrong when some margin is enclosed below 0 (some other output
// then exceeds γ_iy everywhere on [a, b]); otherwise it is undecided.
// With N examples, s surely right and w surely wrong, the accuracy at
// every α ∈ [a, b] lies in [s/N, (N − w)/N].

// AccuracyOptions set CertifyAccuracy; zero values choose the defaults.
type AccuracyOptions struct {
	// MaxIntervals is the budget of leaf α-intervals (default 512).
	MaxIntervals int
	// MinWidth is the narrowest leaf that is still split (default 1e-6).
	// A leaf holding an α where an example's arg-max changes stays
	// undecided for that example however narrow it is.
	MinWidth float64
	// Tol stops the search once the band's mean width ∫₀¹ (hi − lo) dα
	// (the undecided examples' share, integrated over α) is at most Tol
	// (default 1e-3; a tiny value refines until the budget or MinWidth).
	Tol float64
	// InitialIntervals is the number of equal leaves the search starts from (default 32).
	InitialIntervals int
	// Workers is the number of concurrent passes (default runtime.GOMAXPROCS(0)).
	Workers int
	// Progress, if not nil, is told the stage ("accuracy"), the leaves so
	// far and the budget.
	Progress func(stage string, done, total int)
	// Checkpoint, if not nil, is where the search saves its state and
	// resumes from (BranchAndBound, checkpoint.go).
	Checkpoint *Checkpoint
}

// AccuracyBounds is the certified accuracy along the line on α-intervals
// (RUN_FORMAT.md accuracy_bounds; THEORY.md §10): Intervals holds
// [a, b, lo, hi], in order of α and covering [0, 1], with accuracy(α) ∈
// [lo, hi] for all α ∈ [a, b] (fractions in [0, 1]; adjacent leaves with
// equal bounds are merged). The other fields describe the search.
type AccuracyBounds struct {
	Intervals [][4]float64 `json:"intervals"`
	// Leaves is the number of leaves of the final partition (before
	// merging); UndecidedLeaves the leaves with at least one undecided
	// example.
	Leaves          int `json:"leaves"`
	UndecidedLeaves int `json:"undecided_leaves"`
	// Converged is set when no example is undecided on any leaf; Reason
	// says why the search stopped otherwise (the budget, the narrowest
	// width: leaves around an α where an example's arg-max changes stay
	// undecided).
	Converged bool   `json:"converged"`
	Reason    string `json:"reason,omitempty"`
	// Evaluations is the number of interval passes made (since acc-5000
	// no enclosure of L(0) and L(1), which the search never read); since issue 12's full-scale
	// round a leaf's passes run only on the examples still undecided (on
	// its parent, then by the outputs' enclosure alone), so a pass may
	// cover few rows and the count says little about the cost.
	Evaluations int `json:"evaluations"`
	Examples    int `json:"examples"`
	// Seconds is the search's wall time, with that of earlier processes
	// when it resumed from a checkpoint (Certificate.Seconds).
	Seconds float64 `json:"seconds"`
	// work counts what the search did (not reported; tests and the live
	// scale test read it)
	work accWork
}

// accWork counts the accuracy search's work: the leaves that started from
// the certificate's verdicts (accTap) and the (leaf, example) pairs
// decided there, the pairs inherited from a parent, and the rows of
// carried coefficients computed by the product and derived from a parent.
type accWork struct {
	tapLeaves, tapDecided, rowsReused int
	coefRows, coefDerived             int
	stageRows                         [2]int
}

// Range returns the smallest lo and the largest hi over the intervals: the
// accuracy lies in [lo, hi] at every α ∈ [0, 1]. NaN, NaN when empty.
func (a *AccuracyBounds) Range() (lo, hi float64) {
	if a == nil || len(a.Intervals) == 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, iv := range a.Intervals {
		lo, hi = min(lo, iv[2]), max(hi, iv[3])
	}
	return lo, hi
}

// At returns the bounds [lo, hi] on the accuracy at α: those of the
// interval holding α (intersected over both when α is a shared end), and
// false when none holds it.
func (a *AccuracyBounds) At(alpha float64) (lo, hi float64, ok bool) {
	if a == nil {
		return 0, 0, false
	}
	lo, hi = math.Inf(-1), math.Inf(1)
	for _, iv := range a.Intervals {
		if iv[0] <= alpha && alpha <= iv[1] {
			// α at a shared end lies in both: either interval's bounds hold,
			// so their intersection does too
			lo, hi, ok = max(lo, iv[2]), min(hi, iv[3]), true
		}
	}
	if !ok {
		return 0, 0, false
	}
	return lo, hi, true
}

// CertifyAccuracy bounds the 0–1 accuracy of path p on every α-interval of
// a partition of [0, 1] rigorously (THEORY.md §10). The labels are the
// path's class labels, or the arg-max of each float target row (as
// functionspace's Sample.Accuracy). It runs BranchAndBound with the
// AccuracyObjective on the path's IntervalPath: each leaf's margins are
// enclosed by the interval output path over the leaf, intersected (where
// the output path cannot jump) with the mean-value form
// m(c) + m′([a, b])·([a, b] − c) around the midpoint c; leaves with
// undecided examples are bisected, the most undecided length first, until
// none is undecided, the band's mean width ∫(hi − lo)dα is at most o.Tol,
// the budget is spent or they are at the narrowest width. It returns ctx.Err() when cancelled and an error when a layer has
// no interval rule.
func CertifyAccuracy(ctx context.Context, p *functionspace.Path, o AccuracyOptions) (*AccuracyBounds, error) {
	return certifyAccuracy(ctx, p, o, nil)
}

// certifyAccuracy is CertifyAccuracy, with the leaves the certificate's
// passes classified (tap, filled by a certificate on the same path; nil:
// none) starting from their verdicts (accTap).
func certifyAccuracy(ctx context.Context, p *functionspace.Path, o AccuracyOptions, tap *accTap) (*AccuracyBounds, error) {
	start := time.Now()
	ip := tap.path(p) // the certificate's, when it ran on p (accTap)
	if ip == nil {
		var err error
		if ip, err = NewIntervalPath(p); err != nil {
			return nil, err
		}
	}
	ip.outputsOnly = true // the objective encloses the outputs itself
	if o.MaxIntervals <= 0 {
		o.MaxIntervals = 512
	}
	if o.MinWidth <= 0 {
		o.MinWidth = 1e-6
	}
	if o.Tol <= 0 {
		o.Tol = 1e-3
	}
	co := CertifyOptions{MaxIntervals: o.MaxIntervals, MinWidth: o.MinWidth, InitialIntervals: o.InitialIntervals, Workers: o.Workers, Progress: o.Progress, Checkpoint: o.Checkpoint}
	co.defaults()
	if co.Workers >= 2 { // one pass per core already: one OpenBLAS thread each
		defer blasbackend.SerialProducts()()
	}
	obj := &AccuracyObjective{MinWidth: co.MinWidth, MaxIntervals: co.MaxIntervals, Workers: co.Workers, Tol: o.Tol, ctx: ctx, tap: tap}
	if err := BranchAndBound(ctx, ip, obj, co); err != nil {
		return nil, err
	}
	obj.Result.Seconds = time.Since(start).Seconds() + co.Checkpoint.PriorSeconds()
	obj.Result.work = accWork{tapLeaves: obj.tapLeaves, tapDecided: obj.tapDecided, rowsReused: obj.rowsReused, coefRows: ip.carryRows, coefDerived: ip.carryDerived, stageRows: obj.stageRows}
	return obj.Result, nil
}

// pathLabels returns the label of every example of p: Targets.Labels, or
// the arg-max of each float target row.
func pathLabels(p *functionspace.Path) []int {
	if p.Targets.Labels != nil {
		return p.Targets.Labels
	}
	ys := make([]int, p.N)
	for i := range ys {
		ys[i] = argmaxRow(p.Targets.Values.RawRowView(i))
	}
	return ys
}

func argmaxRow(x []float64) int {
	b := 0
	for j, v := range x {
		if v > x[b] {
			b = j
		}
	}
	return b
}

// accCount is one leaf's verdicts: examples surely right and surely wrong,
// and (per chunk, chunk-local rows, increasing) the undecided examples,
// the only ones its children classify again.
type accCount struct {
	right, wrong int
	undecided    [][]int32
	// cfs holds, per chunk, the carried second layer's coefficients over
	// the leaf for the undecided rows (carryCoefRows; nil: none kept,
	// maxAccCoefRows), from which the children derive theirs
	// (carryCoefFrom) instead of a matrix product
	cfs []*carryCoef
}

// maxAccCoefRows caps the undecided rows whose carried coefficients the
// accuracy search keeps over its live leaves (48·width bytes each: 400 MiB
// at width 1024); beyond it a leaf keeps none and its children compute
// theirs by the product. Applied in leaf order, so the leaves and bounds do
// not depend on the worker count.
const maxAccCoefRows = 1 << 13

// AccuracyObjective is the Objective of CertifyAccuracy (THEORY.md §10).
// It ignores the leaves' loss enclosures (CertifyAccuracy has the interval
// path skip them) and encloses the output margins itself
// (IntervalPath.Outputs), once per leaf. A leaf is settled when no
// example is undecided on it. Result is complete after BranchAndBound
// returns.
type AccuracyObjective struct {
	// MinWidth and MaxIntervals are as in AccuracyOptions; Workers is the
	// number of leaves whose margins are enclosed at once.
	MinWidth     float64
	MaxIntervals int
	Workers      int
	// Tol is the mean band width ∫(hi − lo)dα at which the search stops
	// (AccuracyOptions.Tol; 0: only the budget and MinWidth stop it).
	Tol float64
	// Result is the bounds being built.
	Result *AccuracyBounds

	ip     *IntervalPath
	labels []int
	counts map[*Leaf]accCount
	// parents maps a child's [A, B] to the verdicts of the leaf it was
	// split from (filled by Split, read and cleared by Bound): a child
	// inherits every example decided on its parent (an enclosure over the
	// parent holds on the child) and classifies only the undecided ones.
	parents map[[2]float64]*accCount
	// rowsReused counts the (leaf, example) pairs inherited from a parent
	// instead of classified again.
	rowsReused int
	// ctx, when set, is checked between leaves in Bound: a cancelled
	// search stops enclosing (BranchAndBound then returns ctx.Err()).
	ctx context.Context
	// noInherit switches the inheritance off (tests: every leaf classifies
	// every example, as before issue 12's full-scale round).
	noInherit bool
	// leafEnds is the final partition's A of every leaf and 1 (set by Finish).
	leafEnds []float64
	// coefRows counts the rows of carried coefficients kept over the live
	// leaves (accCount.cfs, maxAccCoefRows)
	coefRows int
	// split: the midpoint passes use the split rule (splitApplies; count);
	// noSplit switches it off (tests).
	split, noSplit bool
	// tap, when not nil, holds the verdicts the certificate's passes read
	// off its own leaves (accTap, acctap.go): a leaf it covers starts from
	// them and classifies only the examples they leave undecided.
	// tapLeaves counts those leaves and tapDecided the (leaf, example)
	// pairs the tap decided there.
	tap                   *accTap
	tapLeaves, tapDecided int
	// stageRows counts the (leaf, example) rows of the order-0 passes over
	// the leaves and of the order-1 ones (with their midpoints' passes),
	// under ip.mu
	stageRows [2]int
}

// Stage implements Objective: progress reports say "accuracy".
func (o *AccuracyObjective) Stage() string { return "accuracy" }

func (o *AccuracyObjective) begin(ip *IntervalPath) {
	o.ip = ip
	o.labels = pathLabels(ip.p)
	o.counts = map[*Leaf]accCount{}
	o.parents = map[[2]float64]*accCount{}
	o.Result = &AccuracyBounds{Examples: ip.p.N}
	o.split = !o.noSplit && splitApplies(ip)
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// Constant implements Objective: on a one-point line the outputs are
// constant, so one interval [0, 1] with the verdicts at α = 0.
func (o *AccuracyObjective) Constant(ip *IntervalPath, _, _ interval.I) error {
	o.begin(ip)
	c := o.count(0, 0, nil)
	n := float64(ip.p.N)
	o.Result.Intervals = [][4]float64{{0, 1, float64(c.right) / n, float64(ip.p.N-c.wrong) / n}}
	o.Result.Leaves = 1
	o.Result.Converged = c.right+c.wrong == ip.p.N
	if !o.Result.Converged {
		o.Result.UndecidedLeaves = 1
		o.Result.Reason = "the line is one point, and some example's margin encloses 0 there (a tie)"
	}
	o.Result.Evaluations = ip.Evaluations()
	return nil
}

// Begin implements Objective.
func (o *AccuracyObjective) Begin(ip *IntervalPath, _, _ interval.I) error {
	o.begin(ip)
	return nil
}

// count classifies the examples on [a, b] (a = b: at a point): every
// example when parent is nil, else only the examples undecided on parent
// (a leaf holding [a, b], or the certificate's verdicts on [a, b],
// accTap), the others keeping parent's verdicts. Without parent it first
// encloses the outputs over the leaf alone (order 0, a third of an
// order-1 pass's products): an example decided by them is decided by
// their intersection with the mean-value form as well, with the same
// verdict, so only the examples they leave undecided take the order-1
// pass over the leaf and the pass at its midpoint. With parent every
// listed example takes those two passes at once: the examples undecided
// on an enclosing leaf are nearly all undecided by the outputs alone on
// this one too (on the benchmark network at 500 examples the order-0
// pass decided 74 of its 6,219 such rows, acc-5000), and the verdicts are
// the same either way (TestAccuracyTwoStageSameVerdicts). On an MLP of Dense and
// activation layers the midpoint's outputs are enclosed by the split rule
// (nn.NewSplitBox: W0·h + m·(ΔW·h), no box of W(m) to build; at a point
// it is as tight as the box up to the input's rounding).
func (o *AccuracyObjective) count(a, b float64, parent *accCount) (c accCount) {
	ab := interval.I{Lo: a, Hi: b}
	var rows [][]int32
	if parent != nil {
		rows = parent.undecided
		c.right, c.wrong = parent.right, parent.wrong
	}
	c.undecided = make([][]int32, len(o.ip.chunks))
	if parent != nil && noRows(rows) { // every example decided already (accTap): no pass
		return c
	}
	bs := o.ip.leafBoxes(ab) // shared by the order-0 and order-1 passes over the leaf
	// with a carried second layer (carryPlan) its coefficients over the
	// leaf serve all three passes (the rows of the later ones are among these)
	var cfs []*carryCoef
	if parent != nil && parent.cfs != nil { // derived from the parent's: no product
		cfs = make([]*carryCoef, len(o.ip.chunks))
		for ch := range cfs {
			if len(rows[ch]) > 0 {
				cfs[ch] = o.ip.carryCoefFrom(parent.cfs[ch], ch, ab, rows[ch])
			}
		}
	} else {
		cfs = o.ip.carryCoefs(ab, rows)
	}
	defer func() { c.cfs = keepCoefs(cfs, c.undecided) }()
	if parent == nil || a == b {
		outs := o.ip.outputsRowsCarry(ab, bs, 0, rows, cfs)
		o.ip.mu.Lock()
		o.ip.evals++ // one pass over the leaf
		o.stageRows[0] += rowCount(outs)
		o.ip.mu.Unlock()
		und := o.classify(&c, outs, nil, rows, interval.Point(0))
		if a == b || und == 0 {
			return c
		}
		rows, c.undecided = c.undecided, make([][]int32, len(o.ip.chunks))
	}
	m := 0.5*a + 0.5*b
	outs := o.ip.outputsRowsCarry(ab, bs, 1, rows, cfs)
	var mids []*nn.IJet
	if o.split { // the midpoint's values by the split rule: no box of W(m)
		mids = o.ip.outputsRowsCarry(interval.Point(m), o.splitBoxes(interval.Point(m)), 0, rows, cfs)
	} else {
		mids = o.ip.outputsRowsCarry(interval.Point(m), o.ip.leafBoxes(interval.Point(m)), 0, rows, cfs)
	}
	o.ip.mu.Lock()
	o.ip.evals += 2 // one pass over the leaf and one at its midpoint
	o.stageRows[1] += rowCount(outs)
	o.ip.mu.Unlock()
	o.classify(&c, outs, mids, rows, interval.Sub(ab, interval.Point(m)))
	return c
}

// rowCount is the number of rows of outs (the jets of a pass over rows).
func rowCount(outs []*nn.IJet) int {
	n := 0
	for _, j := range outs {
		if j != nil {
			n += j.N
		}
	}
	return n
}

// noRows reports whether no chunk lists a row.
func noRows(rows [][]int32) bool {
	for _, r := range rows {
		if len(r) > 0 {
			return false
		}
	}
	return true
}

// keepCoefs returns cfs (per chunk) restricted to the undecided rows, nil
// when no chunk has any or the path has no carried layer.
func keepCoefs(cfs []*carryCoef, undecided [][]int32) []*carryCoef {
	if cfs == nil {
		return nil
	}
	var out []*carryCoef
	for ch, rs := range undecided {
		if len(rs) == 0 || cfs[ch] == nil {
			continue
		}
		if out == nil {
			out = make([]*carryCoef, len(cfs))
		}
		out[ch] = carryCoefRows(cfs[ch], rs)
	}
	return out
}

// coefRows is the number of rows cfs holds.
func coefRows(cfs []*carryCoef) int {
	n := 0
	for _, cf := range cfs {
		if cf != nil {
			n += cf.A.Rows
		}
	}
	return n
}

// splitApplies reports whether every layer after the cached one takes a
// Split box (nn.SplitValues: Dense, activations; nn.NewSplitBox) and the
// BatchNorm policy is not recompute.
func splitApplies(ip *IntervalPath) bool {
	if ip.recompute || ip.start == 0 {
		return false
	}
	for i := ip.start; i < len(ip.layers); i++ {
		if s, ok := ip.p.Model.Layers[i].(nn.SplitValues); !ok || !s.TakesSplitBox() {
			return false
		}
	}
	return true
}

// splitBoxes returns Split boxes over alpha for every layer after the
// cached one (nn.NewSplitBox): no Mid or Rad is built.
func (o *AccuracyObjective) splitBoxes(alpha interval.I) []*nn.ParamBox {
	e := o.ip
	bs := make([]*nn.ParamBox, len(e.layers))
	for i := e.start; i < len(e.layers); i++ {
		bs[i] = nn.NewSplitBox(e.p.Model.LayerParams(e.p.Theta0, i), e.p.Model.LayerParams(e.p.Delta, i), alpha, &e.line)
	}
	return bs
}

// classify adds the verdicts of the rows of outs (per chunk: the listed
// chunk-local rows, nil: all) to c: surely right when every margin
// γ_y − γ_k is enclosed above 0, surely wrong when one is enclosed below 0,
// else appended to c.undecided. With mids (the outputs at the leaf's
// midpoint c) and outs of order ≥ 1, each margin's enclosure is
// intersected with the mean-value form m(c) + m′·off where the example
// cannot jump (off = [a, b] − c). It returns the number undecided.
func (o *AccuracyObjective) classify(c *accCount, outs, mids []*nn.IJet, rows [][]int32, off interval.I) int {
	und := 0
	for ch, rg := range o.ip.chunks {
		j := outs[ch]
		if j == nil { // no row listed in this chunk
			continue
		}
		for r := 0; r < j.N; r++ {
			row := int32(r)
			if rows != nil {
				row = rows[ch][r]
			}
			var mid *nn.IJet
			if mids != nil {
				mid = mids[ch]
			}
			right, wrong := marginVerdict(j, r, mid, r, o.labels[rg[0]+int(row)], off)
			switch {
			case right:
				c.right++
			case wrong:
				c.wrong++
			default:
				c.undecided[ch] = append(c.undecided[ch], row)
				und++
			}
		}
	}
	return und
}

// marginVerdict classifies row r of the output jet j (label y) on the
// α-interval j encloses: right when every margin γ_y − γ_k, k ≠ y, is
// enclosed above 0, wrong when one is enclosed below 0 (else neither).
// With mid (the outputs at a point c of that interval; its row rm) and j of
// order ≥ 1, each margin's enclosure is intersected with the mean-value
// form m(c) + m′·off where the row cannot jump (off = [a, b] − c).
func marginVerdict(j *nn.IJet, r int, mid *nn.IJet, rm int, y int, off interval.I) (right, wrong bool) {
	right = true
	for k := 0; k < j.D; k++ {
		if k == y {
			continue
		}
		d := interval.Sub(j.V.At(r, y), j.V.At(r, k))
		if mid != nil && !j.Jumped(r) && j.Order >= 1 {
			mc := interval.Sub(mid.V.At(rm, y), mid.V.At(rm, k))
			dd := interval.Sub(j.D1.At(r, y), j.D1.At(r, k))
			mv := interval.Add(mc, interval.Mul(dd, off))
			if x := interval.Intersect(d, mv); x.Valid() {
				d = x
			}
		}
		if !(d.Lo > 0) {
			right = false
		}
		if d.Hi < 0 {
			wrong = true
		}
	}
	return right, wrong
}

// Bound implements Objective: it classifies the examples on every leaf not
// seen before (Workers leaves at once).
func (o *AccuracyObjective) Bound(leaves []*Leaf) {
	var fresh []*Leaf
	for _, l := range leaves {
		if _, ok := o.counts[l]; !ok {
			fresh = append(fresh, l)
		}
	}
	res := make([]accCount, len(fresh))
	par := make([]*accCount, len(fresh))
	from := make([]*accCount, len(fresh)) // what count starts from: par, with the tap's verdicts
	for k, l := range fresh {
		par[k] = o.parents[[2]float64{l.A, l.B}]
		if par[k] != nil {
			o.rowsReused += par[k].right + par[k].wrong
		}
		from[k] = par[k]
		if p, ok := o.tap.prior(l.A, l.B, par[k], o.ip.chunks); ok {
			from[k] = p
			o.tapDecided += p.right + p.wrong
			o.tapLeaves++
			if par[k] != nil {
				o.tapDecided -= par[k].right + par[k].wrong
			}
		}
	}
	clear(o.parents)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				res[k] = o.count(fresh[k].A, fresh[k].B, from[k])
			}
		}()
	}
	for k := range fresh {
		if o.ctx != nil && o.ctx.Err() != nil {
			break // cancelled: BranchAndBound returns before reading the counts
		}
		next <- k
	}
	close(next)
	wg.Wait()
	if o.ctx != nil && o.ctx.Err() != nil {
		return
	}
	seen := map[*accCount]bool{}
	for _, p := range par { // the split parents' coefficients are released
		if p != nil && !seen[p] {
			seen[p] = true
			o.coefRows -= coefRows(p.cfs)
			p.cfs = nil
		}
	}
	for k, l := range fresh { // in leaf order: the same leaves keep coefficients whatever the worker count
		if n := coefRows(res[k].cfs); n > 0 && o.coefRows+n <= maxAccCoefRows {
			o.coefRows += n
		} else {
			res[k].cfs = nil
		}
		o.counts[l] = res[k]
	}
}

func (o *AccuracyObjective) undecided(l *Leaf) int {
	c := o.counts[l]
	return o.ip.p.N - c.right - c.wrong
}

// Split implements Objective: none once the band's mean width
// ∫(hi − lo)dα is at most Tol; else the leaves with undecided examples
// wider than 2·MinWidth, the largest undecided length (undecided examples times
// width) first, at most budget of them.
func (o *AccuracyObjective) Split(leaves []*Leaf, budget int) ([]int, string) {
	var cs []int
	any := false
	mass := 0.0 // ∫(hi − lo)dα over [0, 1]
	for k, l := range leaves {
		if o.undecided(l) == 0 {
			continue
		}
		any = true
		mass += (l.B - l.A) * float64(o.undecided(l)) / float64(o.ip.p.N)
		m := 0.5*l.A + 0.5*l.B
		if l.B-l.A > 2*o.MinWidth && m > l.A && m < l.B {
			cs = append(cs, k)
		}
	}
	if !any {
		return nil, ""
	}
	if mass <= o.Tol {
		return nil, fmt.Sprintf("the band's mean width ∫(hi − lo)dα = %.3g is within the tolerance %g", mass, o.Tol)
	}
	if budget <= 0 {
		return nil, fmt.Sprintf("the budget of %d leaves (--accuracy-intervals) is spent", o.MaxIntervals)
	}
	if len(cs) == 0 {
		return nil, fmt.Sprintf("every leaf with an undecided example is at the narrowest width (min_width %g): an example's arg-max may change there", o.MinWidth)
	}
	score := func(k int) float64 { return float64(o.undecided(leaves[k])) * (leaves[k].B - leaves[k].A) }
	sort.SliceStable(cs, func(i, j int) bool { return score(cs[i]) > score(cs[j]) })
	if len(cs) > budget {
		cs = cs[:budget]
	}
	sort.Ints(cs)
	for _, k := range cs { // the children BranchAndBound makes of leaf k inherit its verdicts
		if o.noInherit {
			break
		}
		l := leaves[k]
		m := 0.5*l.A + 0.5*l.B
		c := o.counts[l]
		o.parents[[2]float64{l.A, m}] = &c
		o.parents[[2]float64{m, l.B}] = &c
		delete(o.counts, l)
	}
	return cs, ""
}

// ckptAccCount is an accCount in a checkpoint.
type ckptAccCount struct {
	Right, Wrong int
	Undecided    []ckptRows
	HasCfs       bool
	Cfs          []ckptCoef
}

type ckptRows struct {
	Present bool
	Rows    []int32
}

type ckptCoef struct {
	Present  bool
	AB       interval.I
	Rows     ckptRows
	A, BC, E interval.Matrix
	Cross    []ckptRows
}

func rowsOut(r []int32) ckptRows { return ckptRows{Present: r != nil, Rows: r} }

func rowsIn(r ckptRows) []int32 {
	if !r.Present {
		return nil
	}
	if r.Rows == nil {
		return []int32{}
	}
	return r.Rows
}

func accCountOut(c *accCount) ckptAccCount {
	out := ckptAccCount{Right: c.right, Wrong: c.wrong, HasCfs: c.cfs != nil}
	for _, u := range c.undecided {
		out.Undecided = append(out.Undecided, rowsOut(u))
	}
	for _, cf := range c.cfs {
		if cf == nil {
			out.Cfs = append(out.Cfs, ckptCoef{})
			continue
		}
		k := ckptCoef{Present: true, AB: cf.ab, Rows: rowsOut(cf.rows), A: cf.A, BC: cf.BC, E: cf.E}
		for _, x := range cf.cross {
			k.Cross = append(k.Cross, rowsOut(x))
		}
		out.Cfs = append(out.Cfs, k)
	}
	return out
}

func accCountIn(c ckptAccCount) *accCount {
	out := &accCount{right: c.Right, wrong: c.Wrong}
	if c.Undecided != nil {
		out.undecided = make([][]int32, len(c.Undecided))
		for ch, u := range c.Undecided {
			out.undecided[ch] = rowsIn(u)
		}
	}
	if c.HasCfs {
		out.cfs = make([]*carryCoef, len(c.Cfs))
		for ch, k := range c.Cfs {
			if !k.Present {
				continue
			}
			cf := &carryCoef{ab: k.AB, rows: rowsIn(k.Rows), A: k.A, BC: k.BC, E: k.E}
			if k.Cross != nil {
				cf.cross = make([][]int32, len(k.Cross))
				for i, x := range k.Cross {
					cf.cross[i] = rowsIn(x)
				}
			}
			out.cfs[ch] = cf
		}
	}
	return out
}

// ckptAcc is AccuracyObjective's state between rounds: the verdicts of
// every leaf classified (by leaf index), the split parents' verdicts its
// children inherit (Parents: distinct accCounts, shared by both children
// as in Split, which Bound's release of their coefficients counts once)
// and the counters.
type ckptAcc struct {
	Counts                                      []ckptLeafCount
	Parents                                     []ckptAccCount
	ParentOf                                    []ckptParentKey
	RowsReused, CoefRows, TapLeaves, TapDecided int
	StageRows                                   [2]int
}

type ckptLeafCount struct {
	Leaf  int
	Count ckptAccCount
}

type ckptParentKey struct {
	A, B   float64
	Parent int
}

// SaveState implements ObjectiveState: the verdicts, the parents' verdicts
// for the children to evaluate, and the counters (copied: Bound releases
// the parents' coefficients in place).
func (o *AccuracyObjective) SaveState(leaves []*Leaf) func(*gob.Encoder) error {
	type pk struct {
		key [2]float64
		c   *accCount
	}
	var counts []ckptLeafCount
	for k, l := range leaves {
		if c, ok := o.counts[l]; ok {
			counts = append(counts, ckptLeafCount{k, accCountOut(&c)})
		}
	}
	var keys [][2]float64
	for key := range o.parents {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || (keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1])
	})
	idx := map[*accCount]int{}
	var parents []ckptAccCount
	var of []ckptParentKey
	for _, key := range keys {
		c := o.parents[key]
		i, ok := idx[c]
		if !ok {
			i = len(parents)
			idx[c] = i
			parents = append(parents, accCountOut(c))
		}
		of = append(of, ckptParentKey{key[0], key[1], i})
	}
	st := ckptAcc{Counts: counts, Parents: parents, ParentOf: of, RowsReused: o.rowsReused, CoefRows: o.coefRows,
		TapLeaves: o.tapLeaves, TapDecided: o.tapDecided, StageRows: o.stageRows}
	return func(enc *gob.Encoder) error { return enc.Encode(&st) }
}

// RestoreState implements ObjectiveState.
func (o *AccuracyObjective) RestoreState(leaves []*Leaf, dec *gob.Decoder) error {
	var st ckptAcc
	if err := dec.Decode(&st); err != nil {
		return err
	}
	nc := len(o.ip.chunks)
	check := func(c ckptAccCount) error {
		if c.Undecided != nil && len(c.Undecided) != nc || c.HasCfs && len(c.Cfs) != nc {
			return fmt.Errorf("accuracy: saved verdicts of %d chunks, the path has %d", len(c.Undecided), nc)
		}
		return nil
	}
	o.counts = map[*Leaf]accCount{}
	for _, lc := range st.Counts {
		if lc.Leaf < 0 || lc.Leaf >= len(leaves) {
			return fmt.Errorf("accuracy: saved verdicts of leaf %d of %d", lc.Leaf, len(leaves))
		}
		if err := check(lc.Count); err != nil {
			return err
		}
		o.counts[leaves[lc.Leaf]] = *accCountIn(lc.Count)
	}
	ps := make([]*accCount, len(st.Parents))
	for i, c := range st.Parents {
		if err := check(c); err != nil {
			return err
		}
		ps[i] = accCountIn(c)
	}
	o.parents = map[[2]float64]*accCount{}
	for _, k := range st.ParentOf {
		if k.Parent < 0 || k.Parent >= len(ps) {
			return fmt.Errorf("accuracy: saved parent %d of %d", k.Parent, len(ps))
		}
		o.parents[[2]float64{k.A, k.B}] = ps[k.Parent]
	}
	o.rowsReused, o.coefRows, o.tapLeaves, o.tapDecided, o.stageRows = st.RowsReused, st.CoefRows, st.TapLeaves, st.TapDecided, st.StageRows
	return nil
}

// Finish implements Objective: the intervals [a, b, lo, hi] (adjacent
// leaves with equal bounds merged), the counts, and the self-check
// lo ≤ hi.
func (o *AccuracyObjective) Finish(leaves []*Leaf, stop string) error {
	r := o.Result
	n := float64(o.ip.p.N)
	r.Leaves = len(leaves)
	r.Intervals = nil
	o.leafEnds = o.leafEnds[:0]
	for _, l := range leaves {
		o.leafEnds = append(o.leafEnds, l.A)
		c := o.counts[l]
		if c.right+c.wrong > o.ip.p.N {
			return fmt.Errorf("accuracy: %w: %d examples surely right and %d surely wrong of %d on [%v, %v]", ErrContradiction, c.right, c.wrong, o.ip.p.N, l.A, l.B)
		}
		if o.undecided(l) > 0 {
			r.UndecidedLeaves++
		}
		lo, hi := float64(c.right)/n, float64(o.ip.p.N-c.wrong)/n
		if k := len(r.Intervals) - 1; k >= 0 && r.Intervals[k][2] == lo && r.Intervals[k][3] == hi {
			r.Intervals[k][1] = l.B
			continue
		}
		r.Intervals = append(r.Intervals, [4]float64{l.A, l.B, lo, hi})
	}
	o.leafEnds = append(o.leafEnds, 1)
	r.Converged = r.UndecidedLeaves == 0
	if !r.Converged {
		r.Reason = stop
	}
	r.Evaluations = o.ip.Evaluations()
	return nil
}

// CertifiedPlateau is the certified accuracy plateau at α = 0 (Wang, Wang,
// Zhou & Ge, ICLR 2023; THEORY.md §10): the largest α₀ such that the
// accuracy is proven within tol of its value at α = 0 on all of [0, α₀],
// i.e. |accuracy(α) − accuracy(0)| ≤ tol for every α ∈ [0, α₀]. It is read
// from the certified intervals: with [lo₀, hi₀] the bounds at α = 0, α₀ is
// the end of the last of the consecutive intervals from 0 on which
// hi ≤ lo₀ + tol and lo ≥ hi₀ − tol (with tol = 0: the accuracy is proven
// constant there). It is a lower bound on the true plateau's length (0
// when even the first interval fails) and never exceeds the one-sided grid
// plateau PlateauLength by more than the grid's spacing. NaN when a is nil
// or empty.
func CertifiedPlateau(a *AccuracyBounds, tol float64) float64 {
	if a == nil || len(a.Intervals) == 0 {
		return math.NaN()
	}
	lo0, hi0, _ := a.At(0)
	end := 0.0
	for _, iv := range a.Intervals {
		if iv[3] > lo0+tol || iv[2] < hi0-tol {
			break
		}
		end = iv[1]
	}
	return end
}

// attachAccuracy runs CertifyAccuracy on the report's path (budget
// o.AccuracyIntervals; the leaves the certificate classified through
// o.accTap start from its verdicts) and records its bounds and the certified plateau
// (tolerance o.PlateauTolerance) in r. A model without interval rules
// leaves both null, with the reason in r.Notes; the grid's accuracy
// outside the certified bounds is a contradiction (ErrContradiction).
func attachAccuracy(ctx context.Context, p *functionspace.Path, o Options, r *Report) error {
	if err := p.Model.Require(nn.RuleInterval); err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("accuracy_bounds, certified_plateau: null: %v", err))
		return nil
	}
	ao := o.accuracyOptions()
	ao.Progress = o.Progress
	_, ao.Checkpoint = o.searchCheckpoints()
	a, err := certifyAccuracy(ctx, p, ao, o.accTap)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("accuracy: %w", err)
	}
	r.noteResumed("accuracy_bounds", ao.Checkpoint, a.Seconds)
	for j, al := range r.Alphas {
		lo, hi, ok := a.At(al)
		if acc := r.Accuracy[j]; !ok || acc < lo || acc > hi {
			return fmt.Errorf("accuracy: %w: the accuracy %v at α = %v lies outside the certified [%v, %v]", ErrContradiction, acc, al, lo, hi)
		}
	}
	r.AccuracyBounds = a
	pl := CertifiedPlateau(a, o.PlateauTolerance)
	r.CertifiedPlateau = &pl
	return nil
}
