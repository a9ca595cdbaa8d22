package functionspace

import (
	"context"
	"testing"
)

// TestGaussMaxIntervalsBoundsFirstGrid: MaxIntervals bounds the first grid
// too (issue 12 leftover: a MaxIntervals of 20 still evaluated the first
// grid of 256 intervals, 257 α). With tolerances no grid meets, the result
// is the largest even grid at most MaxIntervals, and the progress callback
// never plans more than that grid's α.
func TestGaussMaxIntervalsBoundsFirstGrid(t *testing.T) {
	p := deepReLU(t)
	for _, c := range []struct{ max, want int }{{20, 20}, {21, 20}, {1, 2}, {300, 256}} {
		planned := 0
		r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 256, MaxIntervals: c.max, Tol: 1e-300,
			Progress: func(_, total int) { planned = max(planned, total) }})
		if err != nil {
			t.Fatal(err)
		}
		if r.Intervals != c.want {
			t.Errorf("MaxIntervals %d: final grid of %d intervals, want %d", c.max, r.Intervals, c.want)
		}
		if planned > c.want+1 {
			t.Errorf("MaxIntervals %d: a grid of %d α was planned, more than the %d of %d intervals", c.max, planned, c.want+1, c.want)
		}
	}
}
