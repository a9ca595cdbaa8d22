package functionspace

import (
	"context"
	"math"
	"testing"

	"pgregory.net/rapid"
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
