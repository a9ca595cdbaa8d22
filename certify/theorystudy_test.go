package certify

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func fakeTheoryRun(dir, arch, optim string, verdict string, delta, b, c float64) StudyRun {
	ex := map[string]any{"theorem_b_examples_fraction": b, "gauss_below_half_pi_fraction": 1.0,
		"examples_non_monotone_fraction": 0.5, "theorem_b_proven_measure_mean": b, "contradictions": 0.0}
	if !math.IsNaN(c) {
		ex["certificate_examples_fraction"] = c
		ex["certificate_proven_measure_mean"] = c
	}
	return StudyRun{Dir: dir, Config: map[string]any{"arch": arch, "optim": optim},
		Report: &Report{Verdict: verdict, Delta: delta, GaussLengthMean: 1, Conditions: map[string]any{"theorems": map[string]any{"examples": ex}}}}
}

// TestTheoryTableAverages: rows group by the bottleneck width and the
// optimizer; fractions are means over the row's runs, the certificate's
// over the runs that have it, and a run without the per-example theory is
// refused by name.
func TestTheoryTableAverages(t *testing.T) {
	runs := []StudyRun{
		fakeTheoryRun("a", "784-512-2-512-784", "sgd", NonMonotone, 0.2, 0.5, 0.25),
		fakeTheoryRun("b", "784-512-2-512-784", "sgd", CertifiedMonotone, 0, 1, math.NaN()),
		fakeTheoryRun("c", "784-10-784", "adam", MonotoneOnGrid, 0, 0.1, 0.3),
	}
	rows, err := TheoryTable(runs, []string{"bottleneck", "optim"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	r := rows[0] // bottleneck 2 sorts first
	if r.Levels[0] != 2.0 || r.Runs != 2 || r.NonMonotone != 1 || math.Abs(r.MeanDelta-0.1) > 1e-15 ||
		math.Abs(r.TheoremB-0.75) > 1e-15 || math.Abs(r.Certificate-0.25) > 1e-15 {
		t.Errorf("row %+v: want h=2, 2 runs, 1 non-monotone, mean Δ 0.1, Theorem B 0.75, certificate 0.25", r)
	}
	var md bytes.Buffer
	if err := WriteTheoryTable(&md, []string{"bottleneck", "optim"}, rows, "markdown"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| 2 | sgd | 2 | 1/2 | 0.1 |") || !strings.Contains(md.String(), "75.0%") {
		t.Errorf("markdown:\n%s", md.String())
	}
	runs[1].Report.Conditions = map[string]any{}
	if _, err := TheoryTable(runs, []string{"bottleneck"}); err == nil || !strings.Contains(err.Error(), "b:") {
		t.Errorf("a run without conditions.theorems.examples: error %v, want one naming it", err)
	}
}
