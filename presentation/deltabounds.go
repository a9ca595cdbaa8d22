package presentation

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

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
// delta_lower, delta_upper; upper says which) with DeltaBoundsDigits(c)
// significant digits (%g), or "null" when v is not finite (the report's
// null). With the default --delta-tol (or none recorded) it rounds to
// nearest, as the summaries the README records do; with another
// (certificate.delta_tol ≠ certify.DefaultDeltaTol, where the digits are
// there to show the width) it rounds outward, down for the lower bound
// and up for the upper, so that the printed interval contains the
// certified one: [0.24999998, 0.25000001] for [0.249999985098837,
// 0.250000002095477] at 1e-7, not [0.24999999, 0.25].
func FormatDeltaBound(v float64, c *certify.Certificate, upper bool) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	d := DeltaBoundsDigits(c)
	if c == nil || c.DeltaTol == certify.DefaultDeltaTol || !(c.DeltaTol > 0) {
		return fmt.Sprintf("%.*g", d, v)
	}
	return formatOutward(v, d, upper)
}

// formatOutward formats v (finite) to d significant digits, %g style,
// rounded toward +∞ when up, else toward −∞: the nearest d-digit decimal,
// stepped by one unit of its last digit when it lies on the wrong side of
// v (compared exactly, as rationals).
func formatOutward(v float64, d int, up bool) string {
	s := strconv.FormatFloat(v, 'e', d-1, 64) // nearest, d digits
	exact := new(big.Rat).SetFloat64(v)
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return s // not reached: FormatFloat of a finite float parses
	}
	if c := r.Cmp(exact); (up && c < 0) || (!up && c > 0) {
		_, e, _ := strings.Cut(s, "e")
		exp, _ := strconv.Atoi(e)
		unit := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp-(d-1)))), nil))
		if exp-(d-1) < 0 {
			unit.Inv(unit)
		}
		if up {
			r.Add(r, unit)
		} else {
			r.Sub(r, unit)
		}
	}
	// r has at most d significant digits (d + 1 after a carry, 9.99 → 10.0,
	// whose last is 0): a 256-bit float formats it back exactly
	return new(big.Float).SetPrec(256).SetRat(r).Text('g', d)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// DeltaBoundsWidth says the relative width of delta_bounds the certificate
// reached against the one asked (certificate.delta_rel_width and
// delta_tol, (upper − lower)/max(|lower|, |upper|, tolerance)): "relative
// width 6.8e-08 ≤ 1e-07 asked" (with --delta-tol ≥ 1, which stops at the
// verdict, "…: the search stopped at the verdict, the bounds not
// refined"), "relative width 0.02, 1e-07 asked: not
// reached within the budget", or "relative width null (the upper bound is
// not finite), 1e-07 asked". "" when c is nil or records no delta_tol (a
// report from before the option).
func DeltaBoundsWidth(c *certify.Certificate) string {
	switch {
	case c == nil || !(c.DeltaTol > 0):
		return ""
	case math.IsNaN(c.RelWidth) || math.IsInf(c.RelWidth, 0):
		return fmt.Sprintf("relative width null (the upper bound is not finite), %g asked", c.DeltaTol)
	case c.RelWidth <= c.DeltaTol && c.DeltaTol >= 1 && (c.Verdict == certify.CertifiedMonotone || c.Verdict == certify.NonMonotone):
		// any decided bounds have relative width ≤ 1: the search stopped at
		// the verdict, and the far bound may be loose by orders of magnitude
		return fmt.Sprintf("relative width %.2g ≤ %g asked: the search stopped at the verdict, the bounds not refined", c.RelWidth, c.DeltaTol)
	case c.RelWidth <= c.DeltaTol:
		return fmt.Sprintf("relative width %.2g ≤ %g asked", c.RelWidth, c.DeltaTol)
	default:
		return fmt.Sprintf("relative width %.2g, %g asked: not reached within the budget", c.RelWidth, c.DeltaTol)
	}
}
