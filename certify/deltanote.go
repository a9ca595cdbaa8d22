package certify

import (
	"fmt"
	"math"
	"strings"

	"github.com/certify-mli/certify/functionspace"
)

// deltaOutsideBoundsNote adds a note to r.Notes when a float64 estimate of
// Δ lies outside the certificate's rigorous delta_bounds: delta (the grid's
// Δ, THEORY.md §5) above delta_bounds[1], or delta_continuous above
// delta_bounds[1] or below delta_bounds[0]. delta_bounds bound Δ of the
// exact loss (interval arithmetic, THEORY.md §7); delta and
// delta_continuous are differences of float64 evaluations of it, which can
// rise by a rounding where the exact loss is constant (a flat tail, every
// ReLU dead: 5.8e-15 on 5000 MNIST examples, issue 12's first-user
// check). The note gives each excess against the rounding estimate of
// the float64 loss (RoundingErrorIn, both ends of a rise: at the grid
// pair of delta, and at the grid's largest |L| for delta_continuous, whose
// pair's losses are not kept) and says whether it is within it. The grid
// Δ below delta_bounds[0] is not noted: the grid samples Alphas points
// and misses rises between them (delta_continuous is the estimate of the
// continuous Δ). Nothing happens without delta_bounds (no certificate, or
// an unbounded upper bound) or when both values are null (NaN).
func deltaOutsideBoundsNote(r *Report, precision functionspace.Precision, n int) {
	if r.DeltaBounds == nil {
		return
	}
	lo, hi := r.DeltaBounds[0], r.DeltaBounds[1]
	type excess struct {
		key      string
		val, by  float64
		side     string
		estimate float64
	}
	var out []excess
	if d, i, j := deltaIndex(r.Loss); d > hi && i >= 0 {
		est := RoundingErrorIn(precision, r.Loss[i], n) + RoundingErrorIn(precision, r.Loss[j], n)
		out = append(out, excess{"delta", d, d - hi, fmt.Sprintf("above delta_bounds[1] = %.3g", hi), est})
	}
	scale := 0.0
	for _, l := range r.Loss {
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			scale = max(scale, math.Abs(l))
		}
	}
	est := 2 * RoundingErrorIn(precision, scale, n)
	switch dc := r.DeltaContinuous; {
	case dc > hi:
		out = append(out, excess{"delta_continuous", dc, dc - hi, fmt.Sprintf("above delta_bounds[1] = %.3g", hi), est})
	case dc < lo:
		out = append(out, excess{"delta_continuous", dc, lo - dc, fmt.Sprintf("below delta_bounds[0] = %.3g", lo), est})
	}
	if len(out) == 0 {
		return
	}
	var parts []string
	within := true
	for _, e := range out {
		parts = append(parts, fmt.Sprintf("%s = %.3g is %s by %.3g (rounding estimate %.2g)", e.key, e.val, e.side, e.by, e.estimate))
		within = within && e.by <= e.estimate
	}
	why := "float64 rounding of the evaluated loss, within its estimate (certify.RoundingError, both ends of a rise); delta_bounds bound Δ of the exact loss in interval arithmetic, e.g. 0 where the certificate proves it constant on a tail"
	if !within {
		why = "more than the rounding estimate of the float64 loss (certify.RoundingError, a heuristic that large weights or deep networks can exceed); delta_bounds bound Δ of the exact loss in interval arithmetic, and conditions.witness_check records any float64 rise that interval arithmetic could not prove"
	}
	r.Notes = append(r.Notes, "delta_bounds: "+strings.Join(parts, "; ")+": "+why)
}
