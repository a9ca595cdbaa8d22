package certify

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// CertifyOptions set the rigorous certificate of THEORY.md §7; zero values
// choose the defaults. BranchAndBound reads MaxIntervals, InitialIntervals,
// Workers and Progress; the Monotonicity objective reads Tolerance,
// DeltaGap, MinWidth, MaxIntervals and Workers.
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
	// DeltaTol, when positive, keeps refining after the verdict is decided
	// until the relative width of the Δ bounds (RelativeWidth) is at most
	// DeltaTol (or the budget runs out); the certificate then records it
	// and the width reached (issue 12's --delta-tol). 0: stop at the
	// verdict (and DeltaGap). Analyze's default is DefaultDeltaTol.
	DeltaTol float64
	// Workers is the number of concurrent passes (default runtime.GOMAXPROCS(0)).
	Workers int
	// Progress, if not nil, is told the stage, the leaves so far and the budget.
	Progress func(stage string, done, total int)
	// Notify, if not nil, is told in one line when the verdict is decided
	// while the search goes on to refine Δ's bounds (DeltaTol, DeltaGap):
	// the leaves and leaf evaluations it took, and what the rest is for.
	// A long run's user learns there that the verdict is in.
	Notify func(msg string)
	// Checkpoint, if not nil, is where BranchAndBound saves its state and
	// resumes from (checkpoint.go); its File and Key are used.
	Checkpoint *Checkpoint
	// acc, when not nil, is fed the accuracy verdicts read off the leaf
	// passes' output jets (accTap, acctap.go; Analyze's accuracy bounds)
	acc *accTap
	// subBatch, when > 0, replaces subBatch(Workers) (tests: rounds of
	// several sub-batches on small nets)
	subBatch int
	// keptCap, when > 0, replaces the cap on kept rows, maxKeptRows
	// (tests: a cap that binds on small nets)
	keptCap int
	// afterSubBatch, when not nil, is called after each sub-batch of a
	// round's fresh leaves, with the number evaluated and the round's
	// total (tests: a cancellation or a hard kill within a round)
	afterSubBatch func(done, total int)
}

// keyed is what of o (with the defaults) changes a search's leaves, bounds
// or result, for a checkpoint's key (Checkpoint.stageFile); Workers does
// not (the leaves do not depend on it), Progress, Notify and Checkpoint
// neither.
func (o CertifyOptions) keyed(tap bool) any {
	o.defaults()
	return struct {
		Tolerance, MinWidth, DeltaGap, DeltaTol float64
		MaxIntervals, InitialIntervals          int
		Tap                                     bool
	}{o.Tolerance, o.MinWidth, o.DeltaGap, o.DeltaTol, o.MaxIntervals, o.InitialIntervals, tap}
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
	Evaluations int `json:"evaluations"`
	// Seconds is the search's wall time; a search resumed from a
	// checkpoint adds the time spent in the processes before
	// (Checkpoint.PriorSeconds), as its leaves and evaluations do.
	Seconds  float64 `json:"seconds"`
	Examples int     `json:"examples"`
	// DeltaTol is the relative width of the Δ bounds requested
	// (CertifyOptions.DeltaTol; absent when none was), and RelWidth the
	// width reached, RelativeWidth(DeltaLower, DeltaUpper, Tolerance),
	// written as delta_rel_width (null when DeltaUpper is not finite)
	// whenever DeltaTol is.
	DeltaTol float64 `json:"delta_tol,omitempty"`
	RelWidth float64 `json:"-"`
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

// DefaultDeltaTol is the relative width of the Δ bounds the analysis
// refines to by default (--delta-tol, issue 12).
const DefaultDeltaTol = 1e-3

// RelativeWidth returns the relative width of the Δ bounds [lower, upper]
// at tolerance tol: (upper − lower) / max(|lower|, |upper|, tol), rounded
// up, and 0 when upper = lower (Δ known exactly, [0, 0] included). The
// tolerance in the denominator makes a certified_monotone Δ ≤ upper ≤ tol
// count as resolved once the bounds are narrow against the tolerance (a Δ
// that is 0 in truth has no relative precision). +Inf when upper is not
// finite.
func RelativeWidth(lower, upper, tol float64) float64 {
	if !(upper < math.Inf(1)) || math.IsNaN(lower) {
		return math.Inf(1)
	}
	if upper <= lower {
		return 0
	}
	d := max(max(math.Abs(lower), math.Abs(upper)), tol)
	return interval.Up(interval.Up(upper-lower) / d)
}

// upperRise returns a rigorous upper bound on Δ from the leaves in order:
// the largest end⁺_f + Σ_{f<k<l} int_k + end⁺_l over runs f ≤ l (f = l:
// end⁺_f), where end_k bounds the rise over any part of leaf k and
// int_k ≤ end_k bounds the rise over the whole leaf. With int = end it is
// MaxRunSum of THEORY.md §7, by Kadane's recursion. Every sum is rounded
// up (a sum with a zero term is exact), so each run's computed sum bounds
// its exact sum from above, and by induction the best open run through k
// bounds every exact run sum ending at k: the result is rigorous without a
// global allowance (before issue 12 it added 2·n·u·Σ_k(|end_k| + |int_k|)
// over all leaves, which kept Δ ≤ 1e-12 even where the maximal run is one
// tiny leaf). The run attaining it (indices) is returned for refinement.
func upperRise(end, in []float64) (up float64, first, last int) {
	return upperRiseEnds(end, in, nil, nil)
}

// upperRiseEnds is upperRise with enclosures [lo_j, hi_j] of L at the
// leaves' ends (x_0 = 0 < x_1 < … < x_n = 1, leaf k = [x_k, x_{k+1}];
// lo_j = −Inf or hi_j = +Inf where L(x_j) is not known; nil: none known).
// The recursion carries, at each end x_j, a bound open_j on the largest
// rise L(x_j) − L(α) from any α < x_j, the smallest of:
//
//   - Kadane's: max(end⁺_{j−1}, open_{j−1} + int_{j−1});
//   - at a known end, hi_j + m, with m bounding −L(α) for every α before
//     the previous known end p (m = open_p − lo_p, or the previous m),
//     and the in-sum from the starts in [x_p, x_j) (the run since p).
//
// So between two known ends a run's interior telescopes to
// hi(L(x_l)) − lo(L(x_f)), one enclosure width in all, where a sum of
// per-leaf bounds adds every leaf's slack (issue 12: with hundreds of
// interior leaves their enclosures' widths, or a kinked example's
// (b − a)·sup ℓ_i′ per leaf, made delta_upper's floor). A rise from α in
// leaf f to β in leaf l is at most open_{x_l} + end⁺_l, and each open_j is
// a minimum of rigorous bounds, rounded up: the result is rigorous and
// never above upperRise's. The run returned starts at the leaf whose α
// attains the bound as far as the recursion tracks it.
func upperRiseEnds(end, in, lo, hi []float64) (up float64, first, last int) {
	best := 0.0
	first, last = 0, -1
	allNonPos := true
	neg := math.Inf(-1)
	// open: bound on L(x_k) − L(α) over α < x_k, the start leaf attaining it
	open, openStart := neg, 0
	// m: bound on −L(α) over α before the last known end p; run: bound
	// on L(x_k) − L(α) over α in [x_p, x_k) (Kadane's since p)
	m, mStart := neg, 0
	run, runStart := neg, 0
	for k := range end {
		e := max(end[k], 0)
		if end[k] > 0 {
			allNonPos = false
		}
		// best run ending in leaf k: k alone, or an open run to x_k then k
		if e > best {
			best, first, last = e, k, k
		}
		if r := upAdd(open, e); r > best {
			best, first, last = r, openStart, k
		}
		// to x_{k+1}: a start in leaf k (end⁺_k) or the open run through k
		if x := upAdd(open, in[k]); x >= e {
			open = x
		} else {
			open, openStart = e, k
		}
		if x := upAdd(run, in[k]); x >= e {
			run = x
		} else {
			run, runStart = e, k
		}
		if lo == nil || k+1 >= len(lo) || math.IsInf(lo[k+1], -1) || math.IsInf(hi[k+1], 1) || math.IsNaN(lo[k+1]) || math.IsNaN(hi[k+1]) || lo[k+1] > hi[k+1] {
			continue
		}
		// x_{k+1} is known: telescope the starts before p through it
		tel, telStart := run, runStart
		if m > neg {
			if t := interval.Up(hi[k+1] + m); t > tel {
				tel, telStart = t, mStart
			}
		}
		if tel < open {
			open, openStart = tel, telStart
		}
		// −L(α) for α before x_{k+1}: the previous m, or the run since p
		// less lo_{k+1}; or open less lo_{k+1}, whichever is smaller
		nm, nmStart := m, mStart
		if run > neg {
			if t := interval.Up(run - lo[k+1]); t > nm {
				nm, nmStart = t, runStart
			}
		}
		if t := interval.Up(open - lo[k+1]); open > neg && t < nm {
			nm, nmStart = t, openStart
		}
		m, mStart = nm, nmStart
		run, runStart = neg, k+1
	}
	if allNonPos {
		return 0, 0, -1 // L′ ≤ 0 on every leaf: L is non-increasing, Δ = 0
	}
	return best, first, last
}

// ErrBNRecompute is wrapped by the error Certify returns for a
// `recompute`-policy BatchNorm inside a block that cannot hand its
// sub-layers their statistics (a block that is not an nn.IntervalBlock;
// the built-in residual is one, so BatchNorm in a residual body or shortcut
// is certified, issue 13). A BatchNorm before the first linear layer is
// certified too (issue 18).
var ErrBNRecompute = errors.New("certificate not available for bn_policy recompute")

// Certify runs the branch and bound of THEORY.md §7 on the path's loss over
// α ∈ [0,1] (BranchAndBound with the Monotonicity objective on the path's
// IntervalPath): it encloses L′ on leaf intervals in interval arithmetic with
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

// certify is Certify, also returning its interval path (for witness checks).
func certify(ctx context.Context, p *functionspace.Path, o CertifyOptions) (*Certificate, *IntervalPath, error) {
	start := time.Now()
	o.defaults()
	e, err := NewIntervalPath(p)
	if err != nil {
		return nil, nil, err
	}
	o.acc.attach(e)
	e.keptCap = o.keptCap
	m := NewMonotonicity(o)
	if !p.OnePoint() && e.deadLine() {
		// every example's first ReLU is dead on all of [0, 1] and nothing
		// after it moves: L is constant although δ ≠ 0 (issue 12)
		l0, l1 := e.point(0, false), e.point(1, false)
		if err := m.Constant(e, l0, l1); err != nil {
			return nil, nil, err
		}
		m.Cert.Notes[len(m.Cert.Notes)-1] = "every unit of the first ReLU is dead (pre-activation ≤ 0, enclosed) on all of [0, 1] for every example, and nothing after it moves (δ = 0 there): L is constant along the line, so Δ = 0 without any leaf"
		m.Cert.Seconds = time.Since(start).Seconds()
		return m.Cert, e, nil
	}
	if err := BranchAndBound(ctx, e, m, o); err != nil {
		return nil, nil, err
	}
	m.Cert.Seconds = time.Since(start).Seconds() + o.Checkpoint.PriorSeconds()
	return m.Cert, e, nil
}

// Monotonicity is the Objective of the certificate (THEORY.md §7): it
// bounds Δ, the largest rise of L over α ∈ [0, 1], and decides
// certified_monotone (Δ ≤ Tolerance), non_monotone (a rigorous witness
// rises above Tolerance) or inconclusive. A leaf is settled when L′ ≤ 0
// on it (or, where L may jump, when its enclosed rise is ≤ 0). Its
// result is Cert, complete after BranchAndBound returns.
type Monotonicity struct {
	o CertifyOptions
	// Cert is the certificate being built; Seconds is left to the caller.
	Cert *Certificate

	ip      *IntervalPath
	l0, l1  interval.I
	decided Verdict
	// decidedLeaves and decidedEvals are the leaves and leaf evaluations
	// when Bound decided the verdict (0 before).
	decidedLeaves, decidedEvals int
	// renotify: the verdict was restored decided from a checkpoint; the
	// next Bound tells Notify again (the line was printed by an earlier
	// process, and the refinement after it may take hours)
	renotify bool
	// end[k] bounds the rise over any part of leaf k, in[k] ≤ end[k] the
	// rise over all of it (upperRise); first, last is the run attaining
	// DeltaUpper, as leaf indices (also where the half-leaves' bound,
	// upperRiseHalves, attains it).
	end, in     []float64
	first, last int
	// wholeLeaves switches the half-leaves off (tests and measurements
	// only: DeltaUpper is then the whole leaves' bound, as before issue
	// 13's halves round). upperWhole and upperHalves are the two bounds
	// of the last Bound (upperHalves +Inf when switched off).
	wholeLeaves             bool
	upperWhole, upperHalves float64
	// exactEnds is the number of examples whose ℓ_i′(1) was computed
	// exactly (IntervalPath.tightenEnds, exactend.go).
	exactEnds int
}

// NewMonotonicity returns the monotonicity objective with options o
// (Tolerance, DeltaGap, MinWidth, Workers, MaxIntervals).
func NewMonotonicity(o CertifyOptions) *Monotonicity {
	o.defaults()
	return &Monotonicity{o: o, Cert: &Certificate{Tolerance: o.Tolerance}}
}

// Stage implements Objective: progress reports say "certificate".
func (m *Monotonicity) Stage() string { return "certificate" }

// Constant implements Objective: L is constant along a one-point line, so
// Δ = 0 and the verdict is certified_monotone without any leaf.
func (m *Monotonicity) Constant(ip *IntervalPath, l0, l1 interval.I) error {
	cert := m.Cert
	cert.Examples = ip.p.N
	cert.Verdict, cert.SettledFraction, cert.SmoothFraction = CertifiedMonotone, 1, 1
	cert.Points = []CertPoint{{0, l0.Lo, l0.Hi}, {1, l1.Lo, l1.Hi}}
	cert.Evaluations = ip.evals
	if m.o.DeltaTol > 0 {
		cert.DeltaTol, cert.RelWidth = m.o.DeltaTol, 0 // Δ ∈ [0, 0]
	}
	cert.Notes = append(cert.Notes, "θT = θ0 on every interpolated tensor (δ = 0 exactly, BatchNorm buffers included): L is constant along the line, so Δ = 0 without any leaf")
	return cert.check()
}

// Begin implements Objective: it keeps L(0) and L(1), the first and last
// witness candidates.
func (m *Monotonicity) Begin(ip *IntervalPath, l0, l1 interval.I) error {
	m.ip, m.l0, m.l1 = ip, l0, l1
	m.Cert.Examples = ip.p.N
	ip.keepStart() // per-example ℓ′(0), for the endpoint-centred form at α = 0
	// Examples settled on a leaf (sup ℓ_i′ ≤ 0) keep their bounds and drop
	// out of its children's interval passes (issue 12): Δ's bounds are sums
	// of per-example bounds, each still an enclosure over the child. Not
	// where L may jump (the jump leaves read L's enclosures over the leaf).
	ip.dropSettled = !ip.jumps
	// Where a dead first ReLU makes the loss constant (only the cached
	// first layer moves), the initial leaves first take the first-order
	// probe (probeLeaves): a leaf it settles needs no full evaluation
	// (issue 12, flat tails). Its midpoint is then not evaluated, which
	// this objective allows (Split, Finish, lowerRise).
	ip.probe = ip.dead != nil && !ip.jumps && !ip.outputsOnly
	if m.exactEnds = ip.tightenEnds(); m.exactEnds > 0 {
		m.Cert.Notes = append(m.Cert.Notes, fmt.Sprintf("ℓ_i′(1) of %d examples computed exactly (dyadic rational arithmetic, math/big) for the endpoint-centred form at α = 1", m.exactEnds))
	}
	return nil
}

// Bound implements Objective: per leaf the bound end on the rise over any
// part of it ((b − a)·sup L′, or sup L − inf L over the leaf where L may
// jump) and in on the rise over all of it (the leaf's integral bound, or
// sup L(b) − inf L(a)); DeltaUpper from the maximal run (upperRise), the
// smaller of the whole leaves' bound and the half-leaves' (riseBound:
// each leaf split at its evaluated midpoint, Leaf.RiseLeft/RiseRight),
// DeltaLower and the witness from the evaluated points (lowerRise), and
// the verdict once DeltaUpper ≤ Tolerance or DeltaLower > Tolerance.
func (m *Monotonicity) Bound(leaves []*Leaf) {
	end, in := leafBounds(leaves)
	upper, first, last := m.riseBound(leaves, end, in)
	for m.fillEnds(leaves, end, in, first, last) {
		upper, first, last = m.riseBound(leaves, end, in)
	}
	lower, wit := lowerRise(leaves, m.l0, m.l1)
	m.Cert.DeltaUpper, m.Cert.DeltaLower, m.Cert.Witness = upper, max(lower, 0), wit
	if m.decided == "" {
		switch {
		case upper <= m.o.Tolerance:
			m.decided = CertifiedMonotone
		case lower > m.o.Tolerance:
			m.decided = NonMonotone
		}
		if m.decided != "" {
			m.decidedLeaves, m.decidedEvals = len(leaves), m.ip.evals
			m.notifyDecided()
		}
	} else if m.renotify { // resumed after the decision: say it again, with today's bounds
		m.notifyDecided()
	}
	m.renotify = false
	m.end, m.in, m.first, m.last = end, in, first, last
}

// notifyDecided tells o.Notify that the verdict is decided, when the
// search then goes on refining Δ's bounds (DeltaTol or DeltaGap not met).
func (m *Monotonicity) notifyDecided() {
	o, cert := m.o, m.Cert
	if o.Notify == nil {
		return
	}
	var goal []string
	if rw := RelativeWidth(cert.DeltaLower, cert.DeltaUpper, o.Tolerance); o.DeltaTol > 0 && rw > o.DeltaTol {
		goal = append(goal, fmt.Sprintf("to relative width ≤ %g, --delta-tol; now %.3g", o.DeltaTol, rw))
	}
	if g := cert.DeltaUpper - cert.DeltaLower; o.DeltaGap > 0 && g > o.DeltaGap {
		goal = append(goal, fmt.Sprintf("to width ≤ %g; now %.3g", o.DeltaGap, g))
	}
	if len(goal) == 0 {
		return
	}
	o.Notify(fmt.Sprintf("certificate: %s decided after %d leaves (%d leaf evaluations), Δ ∈ [%.4g, %.4g] at tolerance %g; the search goes on refining Δ's bounds (%s) within the budget of %d leaves", m.decided, m.decidedLeaves, m.decidedEvals, cert.DeltaLower, cert.DeltaUpper, o.Tolerance, strings.Join(goal, "; "), o.MaxIntervals))
}

// leafBounds returns Bound's per-leaf bounds: end[k] on the rise over any
// part of leaf k, in[k] ≤ end[k] on the rise over all of it (their
// positive parts only are bounds of a rise; a negative value bounds the
// change over the whole leaf).
func leafBounds(leaves []*Leaf) (end, in []float64) {
	end = make([]float64, len(leaves))
	in = make([]float64, len(leaves))
	for k, l := range leaves {
		w := l.B - l.A
		if l.DL.Hi == 0 { // exact: L′ ≤ 0 on the leaf
			end[k] = 0
		} else if l.DL.Hi > 0 {
			end[k] = interval.Up(interval.Up(w) * l.DL.Hi)
		} else {
			end[k] = interval.Up(interval.Down(w) * l.DL.Hi)
		}
		if math.IsNaN(end[k]) { // no information: never read as L′ ≤ 0
			end[k] = math.Inf(1)
		}
		if l.Rise < end[k] { // the second-order forms (Leaf.Rise ≥ 0, never NaN here)
			end[k] = l.Rise
		}
		in[k] = end[k]
		if l.Integral < end[k] {
			in[k] = l.Integral
		}
		// L(B) − L(A) ≤ sup L(B) − inf L(A) from the enclosures at the
		// leaf's ends (+Inf where one is unknown): only rounding wide,
		// where the integral bound of a kinked example is (b − a)·sup ℓ_i′
		// and carries its derivative's jump (issue 12)
		if d := interval.Up(l.LB.Hi - l.LA.Lo); d < in[k] {
			in[k] = d
		}
		if l.Jump {
			// L may jump on the leaf: a rise over any part of it is at
			// most sup L − inf L over the leaf, and over all of it
			// L(b) − L(a) ≤ sup L(b) − inf L(a).
			end[k] = interval.Up(l.LR.Hi - l.LR.Lo)
			in[k] = min(end[k], interval.Up(l.LB.Hi-l.LA.Lo))
			if math.IsNaN(end[k]) || !l.LR.Valid() {
				end[k] = math.Inf(1)
			}
			if math.IsNaN(in[k]) || !l.LA.Valid() || !l.LB.Valid() {
				in[k] = end[k]
			}
			if mid := 0.5*l.A + 0.5*l.B; (mid <= l.A || mid >= l.B) && l.LA.Valid() && l.LB.Valid() {
				// a and b are adjacent float64: the only evaluable α
				// of the leaf are its ends (α is a float64, README
				// "Choices"), so every rise over a part of it is 0
				// or L(b) − L(a) ≤ sup L(b) − inf L(a). A downward
				// jump is settled here.
				if r := interval.Up(l.LB.Hi - l.LA.Lo); !math.IsNaN(r) {
					end[k], in[k] = r, r
				}
			}
		}
	}
	return end, in
}

// riseBound returns DeltaUpper for the leaves with the per-leaf bounds end
// and in (Bound) and the run attaining it as leaf indices: the smaller of
// upperRiseEnds over the whole leaves and over the half-leaves
// (upperRiseHalves), each rigorous, so never above the former. It keeps
// both in m.upperWhole, m.upperHalves.
func (m *Monotonicity) riseBound(leaves []*Leaf, end, in []float64) (up float64, first, last int) {
	lo, hi := leafEnds(leaves)
	up, first, last = upperRiseEnds(end, in, lo, hi)
	m.upperWhole, m.upperHalves = up, math.Inf(1)
	if m.wholeLeaves {
		return up, first, last
	}
	h, hf, hl := upperRiseHalves(leaves, end, in)
	m.upperHalves = h
	if h < up { // NaN never wins
		return h, hf, hl
	}
	return up, first, last
}

// halfSegments returns the half-leaf sequence of the leaves (issue 13,
// halves): a leaf on which L does not jump, whose midpoint c = A/2 + B/2
// lies strictly inside it and whose L(c) is enclosed (LC evaluated) is
// two segments [A, c] and [c, B] with L(c) ∈ LC known between them; any
// other leaf is one segment with its own end[k], in[k]. Per segment, end
// bounds the rise over any part of it and in ≤ end the rise over all of
// it, as upperRiseEnds wants; lo, hi enclose L at the segments' ends
// (x_0 = 0 first; ∓Inf unknown), and leafOf maps a segment to its leaf.
//
// A half [A, c] (width h = c − A, enclosed from above by Up and below by
// Down) takes as end the smallest of h·sup L′ (rounded as Bound rounds
// (B − A)·sup L′; exactly 0 when sup L′ = 0; +Inf when NaN), RiseLeft
// (∫_A^c (L′)⁺ ≥ the rise over any part of [A, c]) and end[k]⁺ (a bound
// on the rise over any part of the leaf is one on any part of the half;
// its positive part only, since a negative end[k] is (B − A)·sup L′, a
// bound on the whole leaf's change and not on the half's); and as in the
// smaller of that and sup L(c) − inf L(A), rounded up (+Inf or NaN where
// L(A) is unknown, then not taken). [c, B] likewise with RiseRight and
// sup L(B) − inf L(c). Every comparison is written so that NaN is never
// taken as a bound.
func halfSegments(leaves []*Leaf, end, in []float64) (se, si, lo, hi []float64, leafOf []int) {
	if len(leaves) == 0 {
		return nil, nil, []float64{0}, []float64{0}, nil
	}
	lo, hi = []float64{leaves[0].LA.Lo}, []float64{leaves[0].LA.Hi}
	half := func(k int, h, hDown, rise float64, from, to interval.I) {
		l := leaves[k]
		var e float64
		switch {
		case l.DL.Hi == 0: // exact: L′ ≤ 0 on the leaf
			e = 0
		case l.DL.Hi > 0:
			e = interval.Up(h * l.DL.Hi)
		default:
			e = interval.Up(hDown * l.DL.Hi)
		}
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		if rise < e {
			e = rise
		}
		if ek := max(end[k], 0); ek < e {
			e = ek
		}
		i := e
		if d := interval.Up(to.Hi - from.Lo); d < i {
			i = d
		}
		se, si, leafOf = append(se, e), append(si, i), append(leafOf, k)
		lo, hi = append(lo, to.Lo), append(hi, to.Hi)
	}
	for k, l := range leaves {
		c := 0.5*l.A + 0.5*l.B
		if l.Jump || !(c > l.A && c < l.B) || !knownEnd(l.LC) {
			se, si, leafOf = append(se, end[k]), append(si, in[k]), append(leafOf, k)
			lo, hi = append(lo, l.LB.Lo), append(hi, l.LB.Hi)
			continue
		}
		half(k, interval.Up(c-l.A), interval.Down(c-l.A), l.RiseLeft, l.LA, l.LC)
		half(k, interval.Up(l.B-c), interval.Down(l.B-c), l.RiseRight, l.LC, l.LB)
	}
	return se, si, lo, hi, leafOf
}

// upperRiseHalves is upperRiseEnds over the half-leaves of halfSegments
// (issue 13, halves): a rise from α in leaf f to β in leaf l > f costs
// the half-leaf bounds next to the run's ends (RiseRight_f where α is
// right of f's midpoint, RiseLeft_l where β is left of l's), about half
// the whole leaves' Rise_f + Rise_l. The result is rigorous by
// upperRiseEnds' argument on the finer partition (each segment's end and
// in are valid bounds, each known value an enclosure). The run is returned
// as the leaves holding its first and last segments (first ≤ last;
// 0, −1 when the bound is 0 from L′ ≤ 0 everywhere), which is what
// chooseSplits, fillEnds and jumpSplits read.
func upperRiseHalves(leaves []*Leaf, end, in []float64) (up float64, first, last int) {
	se, si, lo, hi, leafOf := halfSegments(leaves, end, in)
	up, f, l := upperRiseEnds(se, si, lo, hi)
	if l < f || len(leafOf) == 0 {
		return up, 0, -1
	}
	return up, leafOf[f], leafOf[l]
}

// leafEnds returns the enclosures of L at the leaves' ends, x_0 = 0, the
// leaves' B in order (upperRiseEnds): lo, hi (unknown: ∓Inf).
func leafEnds(leaves []*Leaf) (lo, hi []float64) {
	lo, hi = make([]float64, len(leaves)+1), make([]float64, len(leaves)+1)
	if len(leaves) == 0 {
		return lo, hi
	}
	lo[0], hi[0] = leaves[0].LA.Lo, leaves[0].LA.Hi
	for k, l := range leaves {
		lo[k+1], hi[k+1] = l.LB.Lo, l.LB.Hi
	}
	return lo, hi
}

// fillEnds evaluates L at the ends of the maximal run [first, last] that
// bound its interior, x_{first+1} and x_last, where they are not known yet
// (an initial leaf's interior end, wholeLine), and tightens the adjacent
// leaves' in with them; it reports whether it evaluated any (the run must
// then be recomputed). With both known the run's interior telescopes
// (upperRiseEnds) to sup L(x_last) − inf L(x_{first+1}), so delta_upper's
// overestimate is only in the run's two end leaves (issue 12). Only the
// initial leaves' interior ends and the inner ends of multi-way splits
// (splitWays) are ever evaluated here (a bisected leaf's children inherit
// known ends).
func (m *Monotonicity) fillEnds(leaves []*Leaf, end, in []float64, first, last int) bool {
	if first >= last || first < 0 || last >= len(leaves) {
		return false
	}
	var at []float64
	var who []int // the leaf whose B is the end
	for _, k := range []int{first, last - 1} {
		if l := leaves[k]; !knownEnd(l.LB) && (len(who) == 0 || who[0] != k) {
			at, who = append(at, l.B), append(who, k)
		}
	}
	if len(at) == 0 {
		return false
	}
	vs := m.ip.points(at, m.o.Workers)
	for t, k := range who {
		leaves[k].LB, leaves[k+1].LA = vs[t], vs[t]
		for _, j := range []int{k, k + 1} {
			if l := leaves[j]; !l.Jump {
				if d := interval.Up(l.LB.Hi - l.LA.Lo); d < in[j] {
					in[j] = d
				}
			}
		}
	}
	return true
}

// Split implements Objective: once decided (and DeltaGap met), only the
// leaves where L may jump by more than the witness rises, down to adjacent
// float64 α (so that the jump itself becomes the witness); otherwise the
// leaves carrying the largest overestimate in the maximal run
// (chooseSplits), then any other leaf whose rise is not bounded by 0.
func (m *Monotonicity) Split(leaves []*Leaf, budget int) ([]int, string) {
	o, cert := m.o, m.Cert
	if m.decided != "" { // the refinement after the verdict: every kinked example evaluated on the children
		m.ip.keepKinked = false
	}
	var split []int
	if m.decided != "" && (o.DeltaGap <= 0 || cert.DeltaUpper-cert.DeltaLower <= o.DeltaGap) &&
		(o.DeltaTol <= 0 || RelativeWidth(cert.DeltaLower, cert.DeltaUpper, o.Tolerance) <= o.DeltaTol) {
		// decided; but a leaf where L may jump by more than the
		// witness rises is still split down to adjacent float64 α
		// (within the budget), so that the jump itself becomes the
		// witness and delta_lower is not a loose bound on it
		if m.decided == NonMonotone && budget > 0 {
			split = jumpSplits(leaves, m.end, cert.DeltaLower, budget)
		}
		if len(split) == 0 {
			return nil, ""
		}
	}
	if budget <= 0 {
		return nil, fmt.Sprintf("the budget of %d leaves (max_intervals) is spent", o.MaxIntervals)
	}
	if split == nil {
		split = chooseSplits(leaves, m.end, m.in, m.first, m.last, o.MinWidth, budget, splitBatch)
	}
	if len(split) == 0 && m.decided == "" {
		// nothing left to split in the maximal run: any other leaf
		// whose rise is not bounded by 0 (the budget is spent only
		// when none of those can be split either)
		split = chooseSplits(leaves, m.end, m.in, 1, 0, o.MinWidth, budget, splitBatch)
	}
	if len(split) == 0 {
		return nil, fmt.Sprintf("every leaf is at the narrowest width (min_width %g; leaves where L may jump: adjacent float64 α)", o.MinWidth)
	}
	if m.decided == "" && m.ip.keepKinked { // conv/residual nets: skip levels of hopeless leaves (splitWays)
		splitWays(leaves, split, m.end, o.Tolerance, o.MinWidth, budget)
	}
	return split, ""
}

// SaveState implements ObjectiveState: between rounds Monotonicity keeps
// only the verdict once decided (Bound recomputes the rest from the
// leaves; Begin's notes and L(0), L(1) are recomputed on resuming).
func (m *Monotonicity) SaveState([]*Leaf) func(*gob.Encoder) error {
	d, at := string(m.decided), [2]int{m.decidedLeaves, m.decidedEvals}
	return func(enc *gob.Encoder) error {
		if err := enc.Encode(d); err != nil {
			return err
		}
		return enc.Encode(at)
	}
}

// RestoreState implements ObjectiveState.
func (m *Monotonicity) RestoreState(_ []*Leaf, dec *gob.Decoder) error {
	var d string
	if err := dec.Decode(&d); err != nil {
		return err
	}
	var at [2]int
	if err := dec.Decode(&at); err != nil {
		return err
	}
	m.decidedLeaves, m.decidedEvals = at[0], at[1]
	switch v := Verdict(d); v {
	case "", CertifiedMonotone, NonMonotone:
		m.decided, m.renotify = v, v != ""
	default:
		return fmt.Errorf("monotonicity: saved verdict %q is not one Bound decides", d)
	}
	return nil
}

// Finish implements Objective: the verdict (inconclusive when undecided,
// with the reason), the final leaves with their L′ enclosures, the
// unsettled leaves, the evaluated points, the notes, and the self-check
// (Certificate.check).
func (m *Monotonicity) Finish(leaves []*Leaf, stop string) error {
	cert, o, p, e := m.Cert, m.o, m.ip.p, m.ip
	decided := m.decided
	if decided == "" {
		decided = Inconclusive
	}
	cert.Verdict = decided
	pairs := 0
	jumpLo, jumpHi, jumpN := math.Inf(1), math.Inf(-1), 0
	for k, l := range leaves {
		if l.Jump {
			cert.JumpLeaves++
		}
		cert.Intervals = append(cert.Intervals, CertLeaf{A: l.A, B: l.B, Inf: l.DL.Lo, Sup: l.DL.Hi})
		if m.end[k] <= 0 { // the rise over any part of the leaf is ≤ 0
			cert.SettledFraction += l.B - l.A
		} else {
			cert.UnsettledCount++
			cert.Unsettled = append(cert.Unsettled, [2]float64{l.A, l.B})
			if l.Jump {
				jumpLo, jumpHi, jumpN = min(jumpLo, l.A), max(jumpHi, l.B), jumpN+1
			}
		}
		pairs += l.Smooth
	}
	if decided == Inconclusive {
		cert.Reason = fmt.Sprintf("%s; Δ ≤ %.4g is above the tolerance %g and no witness rises above it; %d unsettled leaves", stop, cert.DeltaUpper, o.Tolerance, cert.UnsettledCount)
		if jumpN > 0 {
			cert.Reason += fmt.Sprintf("; L may jump (a softplus input crosses its threshold) on %d of them, within α ∈ [%.17g, %.17g]", jumpN, jumpLo, jumpHi)
		}
		cert.Notes = append(cert.Notes, "inconclusive: "+cert.Reason)
	}
	cert.SmoothFraction = float64(pairs) / float64(len(leaves)*max(p.N, 1))
	cert.Points = append(cert.Points, CertPoint{0, m.l0.Lo, m.l0.Hi})
	for _, l := range leaves {
		if l.A > 0 && knownEnd(l.LA) {
			cert.Points = append(cert.Points, CertPoint{l.A, l.LA.Lo, l.LA.Hi})
		}
		if l.LC != wholeLine { // not evaluated on a leaf the probe settled
			cert.Points = append(cert.Points, CertPoint{0.5*l.A + 0.5*l.B, l.LC.Lo, l.LC.Hi})
		}
	}
	cert.Points = append(cert.Points, CertPoint{1, m.l1.Lo, m.l1.Hi})
	cert.Leaves = len(leaves)
	cert.Evaluations = e.evals
	if o.DeltaTol > 0 {
		cert.DeltaTol = o.DeltaTol
		cert.RelWidth = RelativeWidth(cert.DeltaLower, cert.DeltaUpper, o.Tolerance)
	}
	if e.jumps {
		cert.Notes = append(cert.Notes, "softplus follows PyTorch (the identity where βz > threshold): L may jump where a softplus input crosses the threshold, by up to log1p(exp(−threshold))/β per unit; on the leaves where it may (jump_leaves), the bounds use the enclosures of L over the leaf and at its ends instead of ∫L′, so delta_bounds include the jumps")
	}
	return cert.check()
}

// lowerRise returns the largest rigorous rise lo(L(β)) − hi(L(α)) over the
// evaluated points α < β (0, the leaves' midpoints, their known ends —
// the midpoints of the leaves they were split from, so no evaluated point
// is forgotten, and where L may jump the jump is its own witness — and
// 1), rounded down.
func lowerRise(leaves []*Leaf, l0, l1 interval.I) (float64, *CertWitness) {
	type pt struct {
		a float64
		v interval.I
	}
	pts := []pt{{0, l0}}
	for _, l := range leaves {
		if l.A > 0 && knownEnd(l.LA) {
			pts = append(pts, pt{l.A, l.LA})
		}
		pts = append(pts, pt{0.5*l.A + 0.5*l.B, l.LC})
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

// knownEnd reports whether a leaf end's enclosure was evaluated (not the
// whole line nor the zero value of a leaf built without it).
func knownEnd(v interval.I) bool {
	return v.Valid() && !math.IsInf(v.Lo, -1) && !math.IsInf(v.Hi, 1)
}

// splitBatch is the fewest leaves split per round of the monotonicity
// search. It is a constant, not a multiple of the worker count, so the
// certificate (its leaves, bounds and verdict) is the same on every machine
// whatever GOMAXPROCS is: a sweep point analysed on a 1-CPU SLURM task and
// on a 2-core pool gives the same report. 4 is what 2 workers gave before.
const splitBatch = 4

// chooseSplits picks leaves of the run [first, last] (all leaves when the
// run is empty) to bisect: by decreasing slack, the part of the bounds
// that refinement can remove — the run's end leaves' end⁺ less the rise
// their evaluated points prove (provenRise: also the lower bound's gap
// there), interior leaves' in less max((b−a)·inf L′(c), inf L(b) − sup
// L(a)), and no interior leaf when L is known at both ends of the run's
// interior (it telescopes, upperRiseEnds) — until half the run's slack is
// covered, at least minBatch when available unless the rest is
// negligible (< 1/64 of the total), never more than budget, never
// narrower than minWidth except leaves where L may jump. A leaf whose
// slack is NaN (its enclosures are unknown) counts as +Inf: such leaves
// are split first, all of them up to budget, and no other leaf in the
// same batch (the rest is negligible next to an infinite total).
func chooseSplits(leaves []*Leaf, end, in []float64, first, last int, minWidth float64, budget, minBatch int) []int {
	// with L known at x_{first+1} and x_last the run's interior
	// telescopes (upperRiseEnds): its leaves' slack is not in the bound
	telescoped := first < last && knownEnd(leaves[first].LB) && knownEnd(leaves[last].LA)
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
		if telescoped && k != first && k != last {
			continue
		}
		// a leaf where L may jump is split down to adjacent float64 α
		// (the jump is then between two evaluated points: a witness or
		// a tight bound), any other not below minWidth
		if (!l.Jump && l.B-l.A <= 2*minWidth) || 0.5*l.A+0.5*l.B <= l.A || 0.5*l.A+0.5*l.B >= l.B {
			continue
		}
		var s float64
		if k == first || k == last {
			// an end leaf: its bound less the rise its evaluated
			// points prove inside it (issue 12: where the maximum is
			// at an evaluated point, e.g. α = 1, the end leaf's bound
			// is already tight and splitting it removes nothing)
			s = max(end[k], 0) - provenRise(l)
		} else {
			// what ∫L′ over the leaf may come down to: (b − a)·L′(c), or
			// (b − a)·inf L′ where the midpoint was not evaluated (a leaf
			// the first-order probe settled: its DLC is the whole line)
			dlc := l.DLC.Lo
			if l.DLC == wholeLine {
				dlc = l.DL.Lo
			}
			s = in[k] - max((l.B-l.A)*dlc, l.LB.Lo-l.LA.Hi)
		}
		switch {
		case math.IsNaN(s):
			// unknown enclosures (NaN bounds): nothing is known of the
			// leaf, so refinement is all it can get; it counts as the
			// largest slack (+Inf) and is split first, in leaf order
			// among such leaves (a NaN would make the sort and the
			// half-of-the-slack rule below depend on the comparison
			// order; issue 12, cert-5000)
			s = math.Inf(1)
		case s < 0: // rounding
			s = 0
		}
		if tb := (l.B - l.A) * (l.DL.Hi - l.DL.Lo) * 1e-3; tb >= 0 { // tie-break: wider enclosures first (NaN: none)
			s += tb
		}
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
		// past half the slack: at least minBatch leaves, but none whose
		// slack is a negligible part of the run's (issue 12: once the
		// run's interior telescopes, its slack is in its end leaves, and
		// splitting other leaves spends the budget for nothing)
		if acc >= total/2 && (len(out) >= minBatch || c.slack < total/64) {
			break
		}
		out = append(out, c.k)
		acc += c.slack
	}
	sort.Ints(out)
	return out
}

// provenRise returns the largest rise lo L(β) − hi L(α), α < β, between the
// evaluated points of a leaf (its known ends and its midpoint), at least 0.
func provenRise(l *Leaf) float64 {
	pts := []interval.I{l.LA, l.LC, l.LB}
	r := 0.0
	for i := range pts {
		for j := i + 1; j < len(pts); j++ {
			if knownEnd(pts[i]) && knownEnd(pts[j]) {
				r = max(r, pts[j].Lo-pts[i].Hi)
			}
		}
	}
	return r
}

// jumpSplits returns the leaves where L may jump whose enclosed rise end
// exceeds lower and whose ends are not adjacent float64 (at most budget,
// in order).
func jumpSplits(leaves []*Leaf, end []float64, lower float64, budget int) []int {
	var out []int
	for k, l := range leaves {
		if m := 0.5*l.A + 0.5*l.B; l.Jump && end[k] > lower && m > l.A && m < l.B && len(out) < budget {
			out = append(out, k)
		}
	}
	return out
}

// attachCertificate runs Certify with the analysis options and records its
// verdict, delta_bounds, witness and details in the report. Where no
// certificate is available (ErrBNRecompute: a recompute-policy BatchNorm
// in a block without nn.IntervalBlock), the grid verdict stands and
// conditions.certificate says why.
func attachCertificate(ctx context.Context, p *functionspace.Path, o Options, r *Report) error {
	co := o.certifyOptions()
	co.Progress, co.Notify, co.acc = o.Progress, o.Notify, o.accTap
	co.Checkpoint, _ = o.searchCheckpoints()
	c, e, err := certify(ctx, p, co)
	if errors.Is(err, ErrBNRecompute) { // the grid verdict stands, with the reason
		r.Conditions.Certificate = err.Error() + "; the verdict is the grid's"
		return nil
	}
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	r.noteResumed("certificate", co.Checkpoint, c.Seconds)
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
	// A grid witness is proven here, with the certificate's interval path
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
		lower = max(lower, gridRise)
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
		r.Witness = &Witness{Alpha: w.Alpha, Beta: w.Beta, Rise: mid, RoundingError: max(mid-w.Rise, 0)}
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
		// written (a number or null) whenever delta_tol is
		RelWidth any `json:"delta_rel_width,omitempty"`
	}{(*plain)(&q), finite(c.DeltaLower), finite(c.DeltaUpper), nil}
	if c.DeltaTol > 0 {
		aux.RelWidth = finite(c.RelWidth)
	}
	if aux.DeltaUpper == nil || aux.DeltaLower == nil {
		q.Notes = append(append([]string(nil), q.Notes...), "a delta bound is null: it is not finite (an enclosure overflowed)")
	}
	return json.Marshal(aux)
}

// UnmarshalJSON reads what MarshalJSON writes, so a certificate read back
// from certificate.json is the one written: delta_rel_width (null when it
// was not finite: NaN) into RelWidth.
func (c *Certificate) UnmarshalJSON(b []byte) error {
	type plain Certificate
	aux := struct {
		*plain
		RelWidth *float64 `json:"delta_rel_width"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	switch {
	case aux.RelWidth != nil:
		c.RelWidth = *aux.RelWidth
	case c.DeltaTol > 0:
		c.RelWidth = math.NaN()
	}
	return nil
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
