package certify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// Objective is what a branch and bound over α ∈ [0, 1] decides (THEORY.md
// §7, §10): monotonicity (Δ ≤ tolerance, Monotonicity) is one, the barrier
// (BarrierObjective) another. BranchAndBound owns the leaves, their
// evaluation by the interval path, bisection, the budget and cancellation;
// the objective owns everything that depends on the quantity: the bound
// each leaf contributes and whether it is settled, the rigorous witness
// from evaluated points, which leaves to split, when to stop, and the
// result. Its methods are called from one goroutine, in the order
// Stage, then Constant alone or Begin, (Bound, Split)…, Finish; with a
// checkpoint, SaveState before each Bound and, on a resumed search,
// RestoreState once after Begin (checkpoint.go).
type Objective interface {
	// Stage names the search in progress reports (e.g. "certificate").
	Stage() string
	// Constant is called instead of the search when the line is one point
	// (δ = 0 exactly in every tensor, BatchNorm buffers included: L is
	// constant), with the enclosures of L(0) and L(1). It assembles the
	// result.
	Constant(ip *IntervalPath, l0, l1 interval.I) error
	// Begin is called once before the first leaves are evaluated, with the
	// enclosures of L(0) and L(1) (per-example ℓ′(1) is then known to the
	// interval path, for the endpoint-centred form).
	Begin(ip *IntervalPath, l0, l1 interval.I) error
	// Bound assesses the evaluated leaves, in order of α and covering
	// [0, 1]: per leaf its contribution to the objective's bounds and
	// whether it is settled, the rigorous bounds over [0, 1], a witness
	// from evaluated points, and whether the objective is decided.
	Bound(leaves []*Leaf)
	// Split returns the indices (increasing) of the leaves to bisect, at
	// most budget of them (budget ≤ 0: the budget of leaves is spent). No
	// index ends the search; stop then says why when the objective is
	// undecided (the budget, the narrowest width), and is empty otherwise.
	Split(leaves []*Leaf, budget int) (split []int, stop string)
	// Finish assembles the result from the final leaves and the reason the
	// search stopped (Split's stop), and checks it for contradictions.
	Finish(leaves []*Leaf, stop string) error
	// ObjectiveState saves and restores what the objective keeps between
	// rounds, for the checkpoints of a resumable search (checkpoint.go).
	ObjectiveState
}

// BranchAndBound runs the branch and bound of THEORY.md §7 for objective
// obj on the interval path ip: it encloses L(0) and L(1) (with per-example
// ℓ′(1); not when ip encloses the outputs only, IntervalPath.outputsOnly:
// Begin then gets the whole line for both), starts from o.InitialIntervals equal leaves of [0, 1] (with L at
// their ends when a layer may jump), evaluates them (o.Workers concurrent
// passes; where the objective set ip's first-order probe, the leaves it
// settles are not evaluated further, IntervalPath.probeLeaves), and then repeats obj.Bound and obj.Split, bisecting the chosen
// leaves at their midpoints (a child inherits L at its ends from the
// parent's ends and midpoint) and evaluating the new ones, until Split
// chooses none; then obj.Finish. When the line is one point (δ = 0) it
// calls obj.Constant instead. Of o it reads MaxIntervals (the budget
// passed to Split), InitialIntervals, Workers, Progress and Checkpoint;
// the objective reads the rest. With o.Checkpoint it saves the state at
// the start of a round (before Bound) to o.Checkpoint.File at most every
// o.Checkpoint.Every, when cancelled and when the search ends (with the
// round's fresh leaves evaluated so far, in sub-batches of subBatch
// leaves, when saved within a round; the initial leaves are such a round,
// whose start has no leaves), and a
// search started on a file saved under the same key resumes from it
// (checkpoint.go): the leaves, bounds and result are bit for bit those of
// an uninterrupted search. It returns ctx.Err() when cancelled (after the
// save), a *CheckpointError for a checkpoint that cannot be trusted, and
// the objective's errors.
func BranchAndBound(ctx context.Context, ip *IntervalPath, obj Objective, o CertifyOptions) error {
	o.defaults()
	stage := obj.Stage()
	progress := func(d, t int) {
		if o.Progress != nil {
			o.Progress(stage, d, t)
		}
	}
	ck := o.Checkpoint
	// a saved state, read first (its header says how far it got), restored
	// once the objective has begun
	var h *checkpointHeader
	var payload []byte
	if ck != nil {
		ck.began, ck.prior = time.Now(), 0
		if !ip.p.OnePoint() {
			var err error
			if h, payload, err = ck.load(stage); err != nil {
				return err
			}
		}
	}
	// the first leaves take a while: say the phase has started, and where
	// a resumed search starts (a progress bar measures its rate from this
	// first count, not from 0)
	progress(h.resumedCount(), o.MaxIntervals)
	if ip.p.OnePoint() {
		// δ = 0 exactly: θ0 + αδ = θ0 for every α (in float64 too), and
		// under recompute the reference statistics are then constant as
		// well: L is constant without any leaf.
		// θ(1) = θ0 + 1·0 = θ0 exactly: one pass encloses L(0) = L(1)
		l0 := ip.point(0, false)
		if err := obj.Constant(ip, l0, l0); err != nil {
			return err
		}
		progress(0, 0)
		return nil
	}
	l0, l1 := wholeLine, wholeLine // unknown: an objective reading only the outputs (AccuracyObjective) never reads L(0), L(1)
	if !ip.outputsOnly {
		l0, l1 = ip.ends(o.Workers)
	}
	if err := obj.Begin(ip, l0, l1); err != nil {
		return err
	}
	var resumed []*Leaf
	var pending *ckptPartial // progress within the resumed round
	if h != nil {
		ck.prior = h.Seconds
		var err error
		if resumed, pending, err = restoreRound(ip, obj, payload); err != nil {
			return &CheckpointError{ck.File, fmt.Errorf("payload: %w", err)}
		}
		if len(resumed) == 0 {
			ck.notify("%s: resuming from %s: %d initial leaves evaluated, saved %s", stage, ck.File, h.Evaluated, h.Saved)
		} else {
			ck.notify("%s: resuming from %s: %d leaves and %d of the round's new leaves evaluated, saved %s", stage, ck.File, len(resumed), h.Evaluated, h.Saved)
		}
	}
	lastSave := time.Now()
	var leaves []*Leaf
	if len(resumed) > 0 {
		leaves = resumed
	} else {
		// the initial leaves, in sub-batches saved as progress within a
		// round whose start has no leaves (a resumed file may hold some)
		var snap *roundState
		if ck != nil {
			snap = captureRound(ip, obj, nil)
		}
		var fresh []*Leaf
		var err error
		if leaves, fresh, err = initialLeaves(ctx, ip, o, l0, l1); err != nil {
			return err
		}
		// progress: the initial leaves evaluated so far (those the probe
		// settled count at once)
		settled := len(leaves) - len(fresh)
		report := func(done int) { progress(settled+done, o.MaxIntervals) }
		if err := evalSubBatches(ctx, ip, o, fresh, pending, "the initial leaves", snap, stage, &lastSave, report); err != nil {
			return err
		}
		pending = nil
	}
	var stop string
	for {
		var snap *roundState
		if ck != nil {
			snap = captureRound(ip, obj, leaves)
			// (not on a resumed round with progress: the file holds more)
			if pending == nil && time.Since(lastSave) >= ck.every() {
				if err := ck.save(stage, snap); err != nil {
					return err
				}
				lastSave = time.Now()
			}
		}
		obj.Bound(leaves)
		// reported once bounded: an objective reading only the outputs
		// (AccuracyObjective) encloses them in Bound, its search's work, so
		// a count at the budget before the last Bound read as finished
		// while it ran (minutes on a resnet)
		progress(len(leaves), o.MaxIntervals)
		if err := ctx.Err(); err != nil {
			// an objective may stop bounding when cancelled
			// (AccuracyObjective): the round's start is saved (its Bound
			// and Split are redone on resuming)
			if snap != nil {
				if serr := ck.save(stage, snap); serr != nil {
					return errors.Join(err, serr)
				}
			}
			return err
		}
		split, why := obj.Split(leaves, o.MaxIntervals-len(leaves))
		if len(split) == 0 && pending != nil {
			return &CheckpointError{ck.File, errors.New("the resumed round's split chose no leaf, but the file holds evaluated new leaves of it")}
		}
		if len(split) == 0 {
			stop = why
			if snap != nil { // the final state: a later phase's interruption does not cost this search again
				if err := ck.save(stage, snap); err != nil {
					return err
				}
			}
			break
		}
		var fresh, next []*Leaf
		sp := map[int]bool{}
		for _, k := range split {
			sp[k] = true
		}
		for k, l := range leaves {
			if !sp[k] {
				next = append(next, l)
				continue
			}
			kids := splitLeaf(l)
			l.kept = nil
			next = append(next, kids...)
			fresh = append(fresh, kids...)
		}
		// the split parents' kept rows are released first, so that the
		// leaves, kept rows and counters after each sub-batch are those of
		// one batch of the whole round (evalSubBatches)
		ip.releaseParents(fresh)
		// progress: a split leaf counts as its two children once both are
		// evaluated, so the count moves from this round's leaves to the
		// next round's as the sub-batches are evaluated (a round of a
		// long certificate takes hours)
		report := func(done int) { progress(len(next)-(len(fresh)-done)/2, o.MaxIntervals) }
		if err := evalSubBatches(ctx, ip, o, fresh, pending, "the round", snap, stage, &lastSave, report); err != nil {
			return err
		}
		pending = nil
		leaves = next
	}
	if err := obj.Finish(leaves, stop); err != nil {
		return err
	}
	progress(len(leaves), len(leaves))
	return nil
}

// subBatch is the number of a round's fresh leaves evaluated between two
// chances to save the progress within the round (BranchAndBound): four per
// worker. It is fixed (no timing decides it), and the results do not depend
// on it: a leaf's evaluation reads no other leaf of its batch, the counters
// are sums, and the kept-row cap decides in leaf order after the round's
// parents are released (releaseParents). Four per worker keeps the workers
// busy to the end of a sub-batch but for at most one (leaf, chunk) pass
// each, out of about four leaves' passes each; and a hard kill loses at
// most workers·4 leaves (≈ 25 CPU s each on issue 13's resnet-8: under two
// minutes of the two workers' time, against the hours of a round).
func subBatch(workers int) int {
	return 4 * max(workers, 1)
}

// evalSubBatches evaluates a round's fresh leaves (BranchAndBound) in
// consecutive sub-batches of a fixed size (subBatch; all at once on an
// interval path that reads only the outputs). snap, when not nil, is the
// round's start: after each sub-batch but the last the progress is
// captured, and saved with snap when the checkpoint's Every has passed (a
// hard kill loses at most one sub-batch and the save interval); when
// cancelled, snap is saved with the sub-batches evaluated in full (not when
// it would hold nothing: the initial leaves' round, none evaluated). The
// round's Bound and Split are then redone on resuming. pending, when not
// nil, is the progress within this round read from the checkpoint: its
// first leaves are restored, not evaluated (restoreFresh; a mismatch is a
// *CheckpointError naming round, "the round" or "the initial leaves").
// After each sub-batch report is told how many of fresh are evaluated (the
// caller turns it into the search's progress in leaves).
func evalSubBatches(ctx context.Context, ip *IntervalPath, o CertifyOptions, fresh []*Leaf, pending *ckptPartial, round string, snap *roundState, stage string, lastSave *time.Time, report func(done int)) error {
	ck := o.Checkpoint
	done := 0
	if pending != nil {
		n, err := restoreFresh(ip, fresh, pending)
		if err != nil {
			return &CheckpointError{ck.File, fmt.Errorf("progress within %s: %w", round, err)}
		}
		done = n
	}
	var part *pathState
	if done > 0 {
		p := capturePath(ip, fresh[:done])
		part = &p
	}
	save := func() error {
		s := *snap
		s.part = part
		return ck.save(stage, &s)
	}
	size := o.subBatch
	if size <= 0 {
		size = subBatch(o.Workers)
	}
	if ip.outputsOnly { // no pass: nothing to save within the round
		size = len(fresh)
	}
	for done < len(fresh) {
		end := min(done+size, len(fresh))
		if err := ip.evalLeaves(ctx, fresh[done:end], o.Workers); err != nil {
			if snap != nil && ctx.Err() != nil && (part != nil || len(snap.leaves) > 0) {
				if serr := save(); serr != nil {
					return errors.Join(err, serr)
				}
			}
			return err
		}
		done = end
		if snap != nil && done < len(fresh) { // after the last, the next round's start is saved instead
			p := capturePath(ip, fresh[:done])
			part = &p
			if time.Since(*lastSave) >= ck.every() {
				if err := save(); err != nil {
					return err
				}
				*lastSave = time.Now()
			}
		}
		if !ip.outputsOnly { // (the outputs are enclosed in Bound, reported after it)
			report(done)
		}
		if o.afterSubBatch != nil {
			o.afterSubBatch(done, len(fresh))
		}
	}
	return nil
}

// initialLeaves makes the o.InitialIntervals equal leaves of [0, 1]
// (BranchAndBound), and returns them with those left to evaluate: all but
// the ones the first-order probe settles, where the objective set it
// (probeLeaves). BranchAndBound evaluates those as the first round's
// fresh leaves, a round whose start has no leaves.
func initialLeaves(ctx context.Context, ip *IntervalPath, o CertifyOptions, l0, l1 interval.I) (leaves, rest []*Leaf, err error) {
	// L at the leaves' ends, for leaves where L may jump: the initial
	// ends here, later ends are the split leaves' midpoints (LC).
	// Elsewhere an initial end is not evaluated here: its enclosure is the
	// whole line (unknown) until an objective evaluates it (Monotonicity
	// does where its maximal run needs it, fillEnds).
	ends := make([]interval.I, o.InitialIntervals+1)
	ends[0], ends[o.InitialIntervals] = l0, l1
	for k := 1; k < o.InitialIntervals; k++ {
		if ip.jumps {
			ends[k] = ip.point(float64(k)/float64(o.InitialIntervals), false)
		} else {
			ends[k] = wholeLine
		}
	}
	for k := 0; k < o.InitialIntervals; k++ {
		a := float64(k) / float64(o.InitialIntervals)
		b := float64(k+1) / float64(o.InitialIntervals)
		leaves = append(leaves, &Leaf{A: a, B: b, LA: ends[k], LB: ends[k+1]})
	}
	rest = leaves
	if ip.probe { // the objective takes leaves settled by first-order enclosures alone (probeLeaves)
		if rest, err = ip.probeLeaves(ctx, leaves, o.Workers); err != nil {
			return nil, nil, err
		}
	}
	return leaves, rest, nil
}

// ends encloses L(0) and L(1) as point(0, false) and point(1, true) do
// (the same passes and sums, so the same enclosures), with the (end,
// chunk) passes spread over workers goroutines: per-example ℓ′(1) is kept
// for the endpoint-centred form, and ℓ′(0) for keepStart, which then needs
// no pass of its own (issue 12: these were three serial passes before any
// leaf).
func (e *IntervalPath) ends(workers int) (l0, l1 interval.I) {
	nc := len(e.chunks)
	ls, dls := [2][][]interval.I{make([][]interval.I, nc), make([][]interval.I, nc)}, [2][][]interval.I{make([][]interval.I, nc), make([][]interval.I, nc)}
	bs := [2][]*nn.ParamBox{e.boxes(interval.Point(0)), e.boxes(interval.Point(1))}
	fanOut(nil, workers, 2, nc, func(end, c int) {
		ls[end][c], dls[end][c] = e.pointChunk(c, float64(end), bs[end], 1)
	})
	var sums [2]interval.I
	for end := range sums { // in chunk and row order, as point
		s := interval.Point(0)
		for _, l := range ls[end] {
			for _, v := range l {
				s = interval.Add(s, v)
			}
		}
		sums[end] = e.scaleI(s)
	}
	e.dl1, e.dl0Next = dls[1], dls[0]
	return sums[0], sums[1]
}

// wholeLine is the enclosure of an unknown value (a leaf end not evaluated).
var wholeLine = interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
