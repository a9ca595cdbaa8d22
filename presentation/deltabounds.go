package presentation

import (
	"fmt"
	"math"

	"github.com/certify-mli/certify/certify"
)

// DeltaBoundsDigits is the number of significant digits that shows the
// certificate's delta_bounds to the relative width it refined them to
// (certificate.delta_tol, --delta-tol ε; THEORY.md §7): one more than the
// decades of ε, so that two bounds a relative ε apart print differently —
// 4 for the default ε = 1e-3 (and for any wider ε, or a report without
// delta_tol, c nil or DeltaTol 0), 8 for ε = 1e-7 — and at most 17
// (float64's round trip).
func DeltaBoundsDigits(c *certify.Certificate) int {
	tol := certify.DefaultDeltaTol
	if c != nil && c.DeltaTol > 0 {
		tol = c.DeltaTol
	}
	// −1e-9: log10 of a power of ten may come out a rounding above it
	d := int(math.Ceil(-math.Log10(tol)-1e-9)) + 1
	return min(max(d, 4), 17)
}

// FormatDeltaBound formats one end of delta_bounds (or certificate's
// delta_lower, delta_upper) with DeltaBoundsDigits(c) significant digits
// (%g), or "null" when v is not finite (the report's null).
func FormatDeltaBound(v float64, c *certify.Certificate) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	return fmt.Sprintf("%.*g", DeltaBoundsDigits(c), v)
}

// DeltaBoundsWidth says the relative width of delta_bounds the certificate
// reached against the one asked (certificate.delta_rel_width and
// delta_tol, (upper − lower)/max(|lower|, |upper|, tolerance)): "relative
// width 6.8e-08 ≤ 1e-07 asked", "relative width 0.02, 1e-07 asked: not
// reached within the budget", or "relative width null (the upper bound is
// not finite), 1e-07 asked". "" when c is nil or records no delta_tol (a
// report from before the option).
func DeltaBoundsWidth(c *certify.Certificate) string {
	switch {
	case c == nil || !(c.DeltaTol > 0):
		return ""
	case math.IsNaN(c.RelWidth) || math.IsInf(c.RelWidth, 0):
		return fmt.Sprintf("relative width null (the upper bound is not finite), %g asked", c.DeltaTol)
	case c.RelWidth <= c.DeltaTol:
		return fmt.Sprintf("relative width %.2g ≤ %g asked", c.RelWidth, c.DeltaTol)
	default:
		return fmt.Sprintf("relative width %.2g, %g asked: not reached within the budget", c.RelWidth, c.DeltaTol)
	}
}
