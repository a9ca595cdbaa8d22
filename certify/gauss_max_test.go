package certify

import (
	"context"
	"strings"
	"testing"
)

// TestGaussMaxIntervalsBoundsFirstGrid: gauss_max_intervals bounds the
// corner-aware Gauss length's first grid too (issue 12 leftover: with 11
// report α the first grid was 260 intervals whatever gauss_max_intervals
// said). Below it: the first grid is the largest multiple of alphas − 1 at
// most the cap, and a note says it was lowered; at or above: unchanged and
// no note; below alphas − 1: refused, the error naming the option.
func TestGaussMaxIntervalsBoundsFirstGrid(t *testing.T) {
	p := accuracyPathFixed(t)
	for _, c := range []struct {
		max, want int
		note      bool
	}{{35, 30, true}, {10, 10, true}, {260, 260, false}} {
		r, err := Analyze(context.Background(), p, Options{Alphas: 11, NoPerLayer: true, GaussMaxIntervals: c.max})
		if err != nil {
			t.Fatal(err)
		}
		if r.GaussLengthIntervals == nil || *r.GaussLengthIntervals != c.want {
			t.Errorf("gauss_max_intervals %d: gauss_length_intervals %v, want %d", c.max, r.GaussLengthIntervals, c.want)
		}
		noted := false
		for _, n := range r.Notes {
			noted = noted || strings.Contains(n, "gauss_max_intervals") && strings.Contains(n, "from 260 to")
		}
		if noted != c.note {
			t.Errorf("gauss_max_intervals %d: note %v, want %v (notes %q)", c.max, noted, c.note, r.Notes)
		}
	}
	if _, err := Analyze(context.Background(), p, Options{Alphas: 11, NoPerLayer: true, GaussMaxIntervals: 9}); err == nil || !strings.Contains(err.Error(), "gauss_max_intervals 9") {
		t.Errorf("gauss_max_intervals 9 below the report grid's 10 intervals: error %v, want one naming gauss_max_intervals", err)
	}
	if _, err := Analyze(context.Background(), p, Options{Alphas: 11, LossOnly: true, GaussMaxIntervals: 9}); err != nil {
		t.Errorf("loss_only computes no Gauss length, so gauss_max_intervals 9 is not refused: %v", err)
	}
}
