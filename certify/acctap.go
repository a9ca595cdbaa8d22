package certify

import (
	"sync"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// One interval pass, two objectives (issue 12, acc-5000). The certificate's
// leaf pass (centredPass) encloses the output path over each of its leaves
// [a, b] at order 2, every layer after the carried ones tightened by the
// centred form, and at the leaf's midpoint c at order 1: exactly what the
// accuracy bounds' classification of an example on [a, b] reads (THEORY.md
// §10: the margins γ_y − γ_k over the leaf, intersected with the
// mean-value form m(c) + m′([a, b])·([a, b] − c)). An accTap, handed to the
// certificate's interval path, classifies every example of every leaf the
// certificate evaluates from those jets as the pass makes them, and keeps
// only the verdicts (one byte per (leaf, example)); the accuracy search
// then starts each of its leaves that the certificate also evaluated (the
// 32 equal initial leaves, and any split both searches make) from those
// verdicts, and runs its own passes only on the examples they leave
// undecided. At 5000 examples this replaces the accuracy's pass over
// every example on its initial leaves (≈ 160,000 of its 224,000 rows of
// carried coefficients) by a few comparisons per row in the certificate's.
//
// Soundness (docs/soundness.md, "acc-5000"): the certificate's jets are
// enclosures over the whole leaf (V ∋ γ(α), D1 ∋ γ′(α) for every α in
// [a, b]) and at its midpoint (V ∋ γ(c)), so a verdict read from them holds
// at every α of the leaf, as one read from the accuracy's own passes does;
// the accuracy's classification of the other examples is unchanged, so
// every example it would decide on such a leaf is still decided (rows are
// enclosed independently of each other), and the certificate's tighter
// jets may decide a few more.

// Tap verdicts, per (leaf, example): not classified (the certificate's pass
// did not cover the row), surely right, surely wrong, undecided.
const (
	tapNone int8 = iota
	tapRight
	tapWrong
	tapUndecided
)

// accTap collects, from the certificate's leaf passes, the accuracy
// verdict of every example on every leaf they cover (record), for the
// accuracy search that follows on the same path (AccuracyObjective.tap).
// Its methods are safe for concurrent use.
type accTap struct {
	labels []int
	chunks [][2]int // the interval path's chunks the verdicts are indexed by
	mu     sync.Mutex
	leaves map[[2]float64]*tapLeaf
	// rows counts the (leaf, example) verdicts recorded
	rows int
	// ip is the certificate's interval path (attach), handed on to the
	// accuracy search (path) so that it does not enclose the first layer's
	// products over every example again
	ip *IntervalPath
}

// tapLeaf holds one leaf's verdicts: per chunk, per chunk-local row
// (tapNone where the chunk was not recorded: a nil slice).
type tapLeaf struct {
	v [][]int8
}

// newAccTap returns an empty tap for path p, or nil when the accuracy
// bounds will not run on it (a layer without an interval rule: Analyze
// then records them as null).
func newAccTap(p *functionspace.Path) *accTap {
	if p.Model.Require(nn.RuleInterval) != nil {
		return nil
	}
	return &accTap{labels: pathLabels(p), leaves: map[[2]float64]*tapLeaf{}}
}

// attach makes the interval path e of the certificate feed the tap (a nil
// tap does nothing). The tap's verdicts are indexed by e's chunks.
func (t *accTap) attach(e *IntervalPath) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.chunks, t.ip = e.chunks, e
	t.mu.Unlock()
	e.acc = t
}

// path hands the certificate's interval path over to the accuracy search
// on p, once, after the certificate has finished with it: its first
// layer's products (IntervalPath.a, b; 160 MiB at 5000 examples of a
// 1024-wide layer), chunks, carried-layer plan and caches are the same
// for the accuracy's passes, and enclosing them again cost 7% of the
// accuracy's CPU at 500 examples. The certificate's search state is reset
// (no tap, no probe or drop-out, counters at 0). nil when the tap holds
// no path of p.
func (t *accTap) path(p *functionspace.Path) *IntervalPath {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	e := t.ip
	t.ip = nil
	t.mu.Unlock()
	if e == nil || e.p != p {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.acc = nil
	e.probe, e.dropSettled = false, false
	e.evals, e.carryRows, e.carryDerived, e.carryUnits = 0, 0, 0, 0
	e.keptTotal, e.rowsReused, e.deadRowN, e.probeSettled, e.patternRows = 0, 0, 0, 0, 0
	e.keptRefused = 0
	return e
}

// record classifies, from the certificate's pass of chunk c over the leaf
// ab (j: the output jet over ab on the chunk-local rows listed in rows, nil:
// all; jc: the output jet at the leaf's midpoint mid on every row of the
// chunk), every listed example (marginVerdict) and keeps the verdicts.
func (t *accTap) record(c int, ab interval.I, mid float64, rows []int32, j, jc *nn.IJet) {
	if t == nil || j == nil || c >= len(t.chunks) {
		return
	}
	ch := t.chunks[c]
	n := ch[1] - ch[0]
	if (rows == nil && j.N != n) || (rows != nil && len(rows) != j.N) || jc == nil || jc.N != n || jc.D != j.D {
		return // not the shape of a leaf pass: nothing recorded
	}
	v := make([]int8, n)
	off := interval.Sub(ab, interval.Point(mid))
	for r := 0; r < j.N; r++ {
		row := r
		if rows != nil {
			row = int(rows[r])
		}
		right, wrong := marginVerdict(j, r, jc, row, t.labels[ch[0]+row], off)
		switch {
		case right:
			v[row] = tapRight
		case wrong:
			v[row] = tapWrong
		default:
			v[row] = tapUndecided
		}
	}
	key := [2]float64{ab.Lo, ab.Hi}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.leaves[key]
	if l == nil {
		l = &tapLeaf{v: make([][]int8, len(t.chunks))}
		t.leaves[key] = l
	}
	l.v[c] = v
	t.rows += j.N
}

// prior returns the verdicts the accuracy search starts the leaf [a, b]
// from: those inherited from its parent (par, nil for an initial leaf),
// with every example par leaves undecided (every example, without par)
// that the tap decided on [a, b] counted right or wrong, and the rest
// undecided (par's coefficients kept for them). It returns par unchanged
// and false when the tap holds no verdict for [a, b] or was filled on other
// chunks than chunks.
func (t *accTap) prior(a, b float64, par *accCount, chunks [][2]int) (*accCount, bool) {
	if t == nil {
		return par, false
	}
	t.mu.Lock()
	l := t.leaves[[2]float64{a, b}]
	same := len(t.chunks) == len(chunks)
	for c := 0; same && c < len(chunks); c++ {
		same = t.chunks[c] == chunks[c]
	}
	t.mu.Unlock()
	if l == nil || !same {
		return par, false
	}
	out := &accCount{undecided: make([][]int32, len(chunks))}
	if par != nil {
		out.right, out.wrong, out.cfs = par.right, par.wrong, par.cfs
	}
	for c, ch := range chunks {
		v := l.v[c]
		und := func(row int32) {
			switch {
			case v == nil || v[row] == tapNone || v[row] == tapUndecided:
				out.undecided[c] = append(out.undecided[c], row)
			case v[row] == tapRight:
				out.right++
			default: // tapWrong
				out.wrong++
			}
		}
		if par != nil {
			for _, row := range par.undecided[c] {
				und(row)
			}
			continue
		}
		for row := int32(0); row < int32(ch[1]-ch[0]); row++ {
			und(row)
		}
	}
	return out, true
}
