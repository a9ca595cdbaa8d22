package certify

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/certify-mli/certify/functionspace"
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

// TestGaussFirstGridHoldsReportAlphas: the corner-aware Gauss length's
// first grid holds every α of the report's grid, where the cumulative
// lengths for Theorem B are recorded, also when alphas − 1 is odd
// (polish2: with 8 α the first grid was 7·37 = 259 intervals, which
// functionspace.Path.GaussLength rounds up to an even 260, so the recorded
// lengths were those at the grid point after each j/7). Checked on
// gaussFirstGrid over a range of alphas, first grids and caps, and end to
// end: the Gauss length on the chosen grid records its cumulative lengths
// at exactly the report's α, and Analyze's gauss_length_intervals is a
// multiple of alphas − 1.
func TestGaussFirstGridHoldsReportAlphas(t *testing.T) {
	for alphas := 2; alphas <= 60; alphas++ {
		for _, iv := range []int{1, 7, 256, 259, 1000} {
			for _, mx := range []int{GaussFirstGridStep(alphas), 300, 4096} {
				if mx < GaussFirstGridStep(alphas) {
					continue
				}
				o := Options{Alphas: alphas, GaussIntervals: iv, GaussMaxIntervals: mx}
				first, uncapped := gaussFirstGrid(o)
				if first%(alphas-1) != 0 || first%2 != 0 || first > mx || first <= 0 || uncapped < iv || uncapped < first {
					t.Fatalf("alphas %d, gauss_intervals %d, gauss_max_intervals %d: first grid %d (uncapped %d): want an even multiple of %d, at most the cap", alphas, iv, mx, first, uncapped, alphas-1)
				}
			}
		}
	}
	p := accuracyPathFixed(t)
	for _, alphas := range []int{4, 8, 11, 50} {
		first, _ := gaussFirstGrid(Options{Alphas: alphas, GaussIntervals: 256, GaussMaxIntervals: 4096})
		g, err := p.GaussLength(context.Background(), 0, 1, functionspace.GaussOptions{Intervals: first, MaxIntervals: first, Tol: 1, Record: Grid(alphas)})
		if err != nil {
			t.Fatal(err)
		}
		if g.Intervals != first || !reflect.DeepEqual(g.CumulativeAlphas, Grid(alphas)) {
			t.Errorf("alphas %d: grid %d intervals (first %d), cumulative lengths recorded at %v, want at the report's α %v", alphas, g.Intervals, first, g.CumulativeAlphas, Grid(alphas))
		}
		r, err := Analyze(context.Background(), p, Options{Alphas: alphas, NoPerLayer: true, GaussTol: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.GaussLengthIntervals == nil || *r.GaussLengthIntervals%(alphas-1) != 0 {
			t.Errorf("alphas %d: gauss_length_intervals %v, want a multiple of %d", alphas, r.GaussLengthIntervals, alphas-1)
		}
	}
	if _, err := Analyze(context.Background(), p, Options{Alphas: 8, NoPerLayer: true, GaussMaxIntervals: 7}); err == nil || !strings.Contains(err.Error(), "gauss_max_intervals 7") {
		t.Errorf("gauss_max_intervals 7 with 8 α (no even grid holds j/7): error %v, want one naming gauss_max_intervals", err)
	}
}
