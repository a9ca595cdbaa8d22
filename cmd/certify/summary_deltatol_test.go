package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestSummaryDeltaTolDigits (issue 12's first-user leftovers): with
// --delta-tol 1e-7 the summary printed Δ ∈ [0.006125, 0.006125]. Now
// the bounds print to the digits the asked width needs (two different
// numbers, each within 2e-8 relative of the certificate's and rounded
// outward) followed by
// the width reached and asked; with the default --delta-tol the line is
// the one the README's recorded blocks show (4 digits, no width).
func TestSummaryDeltaTolDigits(t *testing.T) {
	line := regexp.MustCompile(`certificate        Δ ∈ \[([^,]+), ([^\]]+)\](.*), 50 leaves`)
	summary := func(c *certify.Certificate) []string {
		var b strings.Builder
		printSummary(&b, t.TempDir(), &certify.Report{Loss: []float64{1, 0.5}, Accuracy: []float64{0, 1}, Alphas: []float64{0, 1},
			Verdict: c.Verdict, Certificate: c, Options: certify.Options{LossOnly: true}})
		m := line.FindStringSubmatch(b.String())
		if m == nil {
			t.Fatalf("no certificate line:\n%s", b.String())
		}
		return m[1:]
	}
	lo, hi := 0.00612499953, 0.00612500011
	m := summary(&certify.Certificate{Verdict: certify.NonMonotone, DeltaLower: lo, DeltaUpper: hi, Leaves: 50, DeltaTol: 1e-7, RelWidth: (hi - lo) / hi})
	if m[0] == m[1] {
		t.Fatalf("--delta-tol 1e-7: bounds print equal: %q", m)
	}
	for i, v := range []float64{lo, hi} {
		got, err := strconv.ParseFloat(m[i], 64)
		if err != nil || (got-v)/v > 2e-8 || (v-got)/v > 2e-8 {
			t.Fatalf("--delta-tol 1e-7: %q for %v", m[i], v)
		}
		// rounded outward: the printed interval holds the certified one
		if (i == 0 && got > v) || (i == 1 && got < v) {
			t.Fatalf("--delta-tol 1e-7: %q for %v rounds inward", m[i], v)
		}
	}
	if m[2] != " (relative width 9.5e-08 ≤ 1e-07 asked)" {
		t.Fatalf("--delta-tol 1e-7: width %q", m[2])
	}
	m = summary(&certify.Certificate{Verdict: certify.NonMonotone, DeltaLower: 0.63852, DeltaUpper: 0.63912, Leaves: 50, DeltaTol: certify.DefaultDeltaTol, RelWidth: 9.4e-4})
	if m[0] != "0.6385" || m[1] != "0.6391" || m[2] != "" {
		t.Fatalf("default --delta-tol: %q, want the README's [0.6385, 0.6391] without a width", m)
	}
}
