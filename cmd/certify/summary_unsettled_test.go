package main

import (
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestSummaryUnsettledWording: a certified verdict with unsettled leaves
// says why that is no contradiction, and an inconclusive one prints the
// certificate's reason.
func TestSummaryUnsettledWording(t *testing.T) {
	for _, c := range []struct {
		cert *certify.Certificate
		want string
	}{
		{&certify.Certificate{Verdict: certify.CertifiedMonotone, Leaves: 54, UnsettledCount: 13}, "13 unsettled (L′ ≤ 0 not proven there, but their total rise is ≤ the tolerance)"},
		{&certify.Certificate{Verdict: certify.Inconclusive, Leaves: 4096, UnsettledCount: 10, Reason: "the budget of 4096 leaves (max_intervals) is spent"}, "inconclusive       the budget of 4096 leaves"},
	} {
		var b strings.Builder
		printSummary(&b, t.TempDir(), &certify.Report{Loss: []float64{1, 0.5}, Accuracy: []float64{0, 1}, Alphas: []float64{0, 1}, Verdict: c.cert.Verdict, Certificate: c.cert, Options: certify.Options{LossOnly: true}})
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("summary lacks %q:\n%s", c.want, b.String())
		}
	}
}
