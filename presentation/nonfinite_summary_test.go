package presentation

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestSummaryOverflowedBounds: a certificate whose upper bound on Δ
// overflowed (delta_bounds null) is not reported as "not attempted" in
// summary.tex, and the overflowed loss's Δ is "not computed".
func TestSummaryOverflowedBounds(t *testing.T) {
	inf := math.Inf(1)
	r := &certify.Report{Verdict: certify.Inconclusive, LossKind: "mse", Alphas: []float64{0, 1}, Loss: []float64{inf, inf},
		Accuracy: []float64{1, 1}, Delta: math.NaN(), DeltaContinuous: math.NaN(),
		Certificate: &certify.Certificate{Verdict: certify.Inconclusive, DeltaLower: 0, DeltaUpper: inf}}
	dir := t.TempDir()
	if err := WriteSummary(dir, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, SummaryTeX))
	if err != nil {
		t.Fatal(err)
	}
	tex := string(b)
	if strings.Contains(tex, "not attempted") || !strings.Contains(tex, `$[0, \infty]$ (an enclosure overflowed)`) {
		t.Errorf("summary.tex on overflowed bounds:\n%s", tex)
	}
}
