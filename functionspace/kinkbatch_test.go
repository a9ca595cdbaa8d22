package functionspace

import (
	"context"
	"fmt"
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
)

// TestKinkBatches: the batches cover pend in order, never split an
// example's crossings, and hold at most rows crossings unless one example
// alone has more.
func TestKinkBatches(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts := rapid.SliceOfN(rapid.IntRange(1, 9), 0, 20).Draw(t, "crossings")
		rows := rapid.IntRange(1, 12).Draw(t, "rows")
		pend := make([]pendingKinks, len(counts))
		for k, c := range counts {
			pend[k] = pendingKinks{i: k, cs: make([]crossing, c)}
		}
		next := 0
		for _, b := range kinkBatches(pend, rows) {
			if len(b) == 0 {
				t.Fatalf("empty batch")
			}
			n := 0
			for _, pd := range b {
				if pd.i != next {
					t.Fatalf("example %d where %d was next", pd.i, next)
				}
				next++
				n += len(pd.cs)
			}
			if n > rows && len(b) > 1 {
				t.Fatalf("batch of %d examples holds %d > %d crossings", len(b), n, rows)
			}
		}
		if next != len(pend) {
			t.Fatalf("batches cover %d of %d examples", next, len(pend))
		}
	})
}

// TestGaussLengthKinkBatchesAgree: the corner-aware Gauss length of a
// residual net is the same whether the kinks' one-sided jets are evaluated
// one crossing per batch (Options.Chunk 2) or all in one batch (Chunk
// 1000): batching must not move any example's rows (r0) or drop a kink.
func TestGaussLengthKinkBatchesAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := residualPath(t, "relu")
		if got := p.kinkBatchRows(p.kinkedLayers()); got != 1 {
			t.Fatalf("Chunk 2: kinkBatchRows %d, want 1 (the test needs one crossing per batch)", got)
		}
		opt := p.opt
		opt.Chunk = 1000
		q, err := NewLine(p.Model, p.Line, p.X, p.Targets, opt)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		o := GaussOptions{Intervals: 64, MaxIntervals: 64}
		a, err := p.GaussLength(ctx, 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.GaussLength(ctx, 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.PerExample {
			if a.KinkCount[i] != b.KinkCount[i] {
				t.Fatalf("example %d: %d kinks in batches of one, %d in one batch", i, a.KinkCount[i], b.KinkCount[i])
			}
			if d := math.Abs(a.PerExample[i] - b.PerExample[i]); d > 1e-12*max(1, math.Abs(b.PerExample[i])) {
				t.Fatalf("example %d: Gauss length %.17g in batches of one, %.17g in one batch", i, a.PerExample[i], b.PerExample[i])
			}
		}
	})
}

// TestRowPassRepeatedRows: a per-row pass whose (example, α) pairs repeat
// (evaluated once, copied) gives every row, and every kinked layer's input
// in pre, as the pass that evaluates each row by itself does.
func TestRowPassRepeatedRows(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := residualPath(t, "relu")
		n := rapid.IntRange(1, 12).Draw(t, "rows")
		as := []float64{0, 0.25, rapid.Float64Range(0, 1).Draw(t, "α")}
		rows, alphas := make([]int, n), make([]float64, n)
		for r := range rows {
			rows[r] = rapid.IntRange(0, p.N-1).Draw(t, "row")
			alphas[r] = as[rapid.IntRange(0, len(as)-1).Draw(t, "which α")]
		}
		pre, preD := map[int]*nn.Jet{}, map[int]*nn.Jet{}
		got := p.rowPass(rows, alphas, nil, pre, nil, -1)
		want := p.rowPassDistinct(rows, alphas, nil, preD, nil, -1)
		same := func(what string, a, b *nn.Jet) {
			if a.N != b.N {
				t.Fatalf("%s: %d rows, want %d", what, a.N, b.N)
			}
			ra, ca := a.M.Dims()
			rb, cb := b.M.Dims()
			if ra != rb || ca != cb {
				t.Fatalf("%s: [%d, %d], want [%d, %d]", what, ra, ca, rb, cb)
			}
			for i := 0; i < ra; i++ {
				for k := 0; k < ca; k++ {
					x, y := a.M.At(i, k), b.M.At(i, k)
					if math.Abs(x-y) > 1e-14*max(1, math.Abs(y)) {
						t.Fatalf("%s: entry (%d, %d) %.17g, want %.17g", what, i, k, x, y)
					}
				}
			}
		}
		same("output", got, want)
		if len(pre) != len(preD) {
			t.Fatalf("pre holds %d layers, want %d", len(pre), len(preD))
		}
		for l, j := range preD {
			same(fmt.Sprintf("pre[%d]", l), pre[l], j)
		}
	})
}

// TestSideJetsForkAgrees: on a residual net (not jumpable: both sides of
// every kink are evaluated), the one-sided jets whose rows share the
// layers before the kink's top-level layer (forkedPairs) equal those of
// one full pass per row (noFork), kink by kink, and so does the grid
// Gauss length.
func TestSideJetsForkAgrees(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := residualPath(t, "relu")
		i := rapid.IntRange(0, p.N-1).Draw(t, "example")
		ctx := context.Background()
		ks, err := p.Kinks(ctx, i, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		o := GaussOptions{Intervals: 16, MaxIntervals: 16}
		g, err := p.GaussLength(ctx, 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		p.noFork = true
		ref, err := p.Kinks(ctx, i, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		gref, err := p.GaussLength(ctx, 0, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != len(ref) {
			t.Fatalf("%d kinks forked, %d in full passes", len(ks), len(ref))
		}
		close := func(what string, k int, a, b []float64) {
			for c := range b {
				if math.Abs(a[c]-b[c]) > 1e-13*max(1, math.Abs(b[c])) {
					t.Fatalf("kink %d %s[%d]: %.17g forked, %.17g in full passes", k, what, c, a[c], b[c])
				}
			}
		}
		for k := range ref {
			if ks[k].Alpha != ref[k].Alpha {
				t.Fatalf("kink %d at %v forked, %v in full passes", k, ks[k].Alpha, ref[k].Alpha)
			}
			close("Left", k, ks[k].Left, ref[k].Left)
			close("Right", k, ks[k].Right, ref[k].Right)
			close("LeftAcc", k, ks[k].LeftAcc, ref[k].LeftAcc)
			close("RightAcc", k, ks[k].RightAcc, ref[k].RightAcc)
		}
		for e := range gref.PerExample {
			if g.KinkCount[e] != gref.KinkCount[e] {
				t.Fatalf("example %d: %d kinks forked, %d in full passes", e, g.KinkCount[e], gref.KinkCount[e])
			}
			if d := math.Abs(g.PerExample[e] - gref.PerExample[e]); d > 1e-12*max(1, math.Abs(gref.PerExample[e])) {
				t.Fatalf("example %d: Gauss length %.17g forked, %.17g in full passes", e, g.PerExample[e], gref.PerExample[e])
			}
		}
	})
}
