package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestPrintSummaryNotesAndNulls: the terminal summary shows the report's
// notes (e.g. a checkpoint's key prefix stripped while loading) and prints
// a non-finite Δ, barrier or loss as null, never -Inf or NaN.
func TestPrintSummaryNotesAndNulls(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	r := &certify.Report{Verdict: certify.Inconclusive, LossKind: "mse", Alphas: []float64{0, 1}, Loss: []float64{inf, inf},
		Accuracy: []float64{0.5, 0.5}, Delta: nan, DeltaContinuous: nan, BarrierHeight: math.Inf(-1),
		GaussLengthMean: nan, GaussLengthMeanTrapezoid: nan, Notes: []string{"key prefix module. stripped"}}
	var b bytes.Buffer
	printSummary(&b, "RUN", r)
	out := b.String()
	if !strings.Contains(out, "note               key prefix module. stripped") {
		t.Errorf("load note not printed:\n%s", out)
	}
	if strings.Contains(out, "Inf") || strings.Contains(out, "NaN") {
		t.Errorf("non-finite values printed:\n%s", out)
	}
}
