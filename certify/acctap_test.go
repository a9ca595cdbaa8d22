package certify

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// tapCertify runs the certificate on p with tap attached (a small budget),
// and reports false when the path has no certificate (ErrBNRecompute).
func tapCertify(t *rapid.T, p *functionspace.Path, tap *accTap) bool {
	_, _, err := certify(context.Background(), p, CertifyOptions{MaxIntervals: 64, MinWidth: 1e-5, Workers: 1, acc: tap})
	if errors.Is(err, ErrBNRecompute) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestAccuracyTapVerdictsDense (acc-5000): the accuracy verdicts the
// certificate's leaf passes record (accTap) hold against the float64
// outputs. On random small networks (accuracyPath), every example the tap
// records as surely right on a leaf [a, b] has its label's output above
// every other output, and every example it records as surely wrong has
// some other output above its label's, at both ends, 30 equally spaced
// interior α and 10 random α of the leaf (functionspace's dense
// evaluation, a tie allowed only within 1e-9 of the outputs' size for
// rounding) — zero violations. Some verdicts are recorded (the test is not
// vacuous).
func TestAccuracyTapVerdictsDense(t *testing.T) {
	decided, cases := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		tap := newAccTap(p)
		if tap == nil {
			t.Fatal("no tap for a model with interval rules")
		}
		if !tapCertify(t, p, tap) {
			return
		}
		cases++
		labels := pathLabels(p)
		rng := rand.New(rand.NewPCG(uint64(p.N), 5))
		for key, l := range tap.leaves {
			a, b := key[0], key[1]
			alphas := []float64{a, b}
			for q := 1; q <= 30; q++ {
				alphas = append(alphas, a+(b-a)*float64(q)/31)
			}
			for q := 0; q < 10; q++ {
				alphas = append(alphas, a+(b-a)*rng.Float64())
			}
			for _, al := range alphas {
				out := p.At(al).Output
				for c, v := range l.v {
					for row, vr := range v {
						if vr != tapRight && vr != tapWrong {
							continue
						}
						decided++
						i := tap.chunks[c][0] + row
						o := out.RawRowView(i)
						y := labels[i]
						best := math.Inf(-1) // the largest other output
						for k, x := range o {
							if k != y {
								best = max(best, x)
							}
						}
						tol := 1e-9 * (1 + math.Abs(o[y]) + math.Abs(best))
						if vr == tapRight && !(o[y]-best > -tol) {
							t.Fatalf("[%v, %v]: example %d recorded surely right, but at α = %v its label's output %v is below another %v", a, b, i, al, o[y], best)
						}
						if vr == tapWrong && !(best-o[y] > -tol) {
							t.Fatalf("[%v, %v]: example %d recorded surely wrong, but at α = %v its label's output %v is above every other (%v)", a, b, i, al, o[y], best)
						}
					}
				}
			}
		}
	})
	t.Logf("%d cases with a certificate, %d (α, leaf, example) verdicts checked", cases, decided)
	if decided == 0 {
		t.Errorf("the tap recorded no decided example in %d cases", cases)
	}
}

// TestAccuracyTapNoLooser (acc-5000): the accuracy search started from the
// certificate's verdicts (accTap) gives sound bounds (the float64 accuracy
// at 1,001 α lies in them) and, wherever it ends on the same leaves as the
// search without them, bounds at least as tight at every α: a leaf the
// tap covers classifies every example the tap leaves undecided exactly as
// before, so it decides at least the same examples. certifyAccuracy, which
// takes the certificate's interval path over, gives the same bounds and
// passes as the search on a fresh path. The tap decides some (leaf,
// example) pairs across the cases.
func TestAccuracyTapNoLooser(t *testing.T) {
	tapped, same, cases := 0, 0, 0
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		tap := newAccTap(p)
		if !tapCertify(t, p, tap) {
			return
		}
		cases++
		run := func(tap *accTap) (*AccuracyBounds, *AccuracyObjective) {
			obj := &AccuracyObjective{Workers: 1, Tol: 1e-4, tap: tap}
			runAccuracySearch(t, p, obj)
			return obj.Result, obj
		}
		on, oOn := run(tap)
		off, oOff := run(nil)
		// certifyAccuracy takes the certificate's own interval path over
		// (accTap.path): the same bounds as on a fresh one
		via, err := certifyAccuracy(context.Background(), p, AccuracyOptions{MaxIntervals: 128, MinWidth: 1e-5, Tol: 1e-4, Workers: 1}, tap)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(via.Intervals, on.Intervals) || via.Evaluations != on.Evaluations {
			t.Fatalf("on the certificate's interval path: %v (%d passes); on a fresh one: %v (%d passes)", via.Intervals, via.Evaluations, on.Intervals, on.Evaluations)
		}
		if tap.ip != nil {
			t.Fatal("the certificate's interval path was not handed over")
		}
		if oOff.tapLeaves != 0 {
			t.Fatalf("%d leaves from a nil tap", oOff.tapLeaves)
		}
		tapped += oOn.tapDecided
		sameLeaves := slices.Equal(oOn.leafEnds, oOff.leafEnds)
		if sameLeaves {
			same++
		}
		checkAccuracyOnOff(t, p, on, off, sameLeaves, "with the tap")
	})
	t.Logf("%d cases with a certificate: %d (leaf, example) pairs decided by the tap, %d searches ended on the same leaves", cases, tapped, same)
	if tapped == 0 || same == 0 {
		t.Errorf("vacuous: %d pairs decided by the tap, %d searches on the same leaves, in %d cases", tapped, same, cases)
	}
}

// TestAccuracyTapRowsIndependent (acc-5000): a verdict the tap records for
// an example does not depend on which other examples the certificate's
// pass covers. On random small networks and random leaves [a, b], the
// verdicts recorded from a centredPass over a random subset of a chunk's
// rows (as a child leaf's pass without its settled examples runs) equal,
// row by row, those recorded from the pass over every row, and the rows
// left out are recorded as not classified.
func TestAccuracyTapRowsIndependent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.recompute && e.nestedBN != nil {
			return
		}
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		b := math.Min(1, a+rapid.SampledFrom([]float64{1e-3, 1e-2, 0.1, 0.5}).Draw(t, "w"))
		ab, mid := interval.I{Lo: a, Hi: b}, 0.5*a+0.5*b
		c := rapid.IntRange(0, len(e.chunks)-1).Draw(t, "chunk")
		n := e.chunks[c][1] - e.chunks[c][0]
		var rows []int32
		for r := 0; r < n; r++ {
			if rapid.Bool().Draw(t, "keep") {
				rows = append(rows, int32(r))
			}
		}
		if len(rows) == 0 {
			return
		}
		record := func(rows []int32) []int8 {
			tap := newAccTap(p)
			tap.attach(e)
			bi, bc := e.leafBoxes(ab), e.leafBoxes(interval.Point(mid))
			e.centredPass(c, ab, mid, bi, bc, rows)
			e.acc = nil
			return tap.leaves[[2]float64{a, b}].v[c]
		}
		all, sub := record(nil), record(rows)
		q := 0
		for r := 0; r < n; r++ {
			if q < len(rows) && int(rows[q]) == r {
				q++
				if sub[r] != all[r] {
					t.Fatalf("[%v, %v], chunk %d, row %d: verdict %d from the pass over rows %v, %d from the pass over every row", a, b, c, r, sub[r], rows, all[r])
				}
				continue
			}
			if sub[r] != tapNone {
				t.Fatalf("row %d not in the pass's rows %v, yet recorded %d", r, rows, sub[r])
			}
		}
	})
}
