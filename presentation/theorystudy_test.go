package presentation

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

func fakeTheoryRun(dir, arch, optim string, verdict certify.Verdict, delta, b, c float64) certify.StudyRun {
	zero := 0
	ex := &certify.ExampleTheory{TheoremBExamplesFraction: b, GaussBelowHalfPiFraction: 1,
		ExamplesNonMonotoneFraction: 0.5, TheoremBMeasureMean: b, Contradictions: &zero}
	if !math.IsNaN(c) {
		ex.CertificateExamplesFraction = &c
		ex.CertificateMeasureMean = &c
	}
	return certify.StudyRun{Dir: dir, Config: map[string]any{"arch": arch, "optim": optim},
		Report: &certify.Report{Verdict: verdict, Delta: delta, GaussLengthMean: 1,
			Conditions: certify.Conditions{Theorems: &certify.TheoremReport{Examples: ex}}}}
}

// TestTheoryTableAverages: rows group by the bottleneck width and the
// optimizer; fractions are means over the row's runs, the certificate's
// over the runs that have it, and a run without the per-example theory is
// refused by name.
func TestTheoryTableAverages(t *testing.T) {
	runs := []certify.StudyRun{
		fakeTheoryRun("a", "784-512-2-512-784", "sgd", certify.NonMonotone, 0.2, 0.5, 0.25),
		fakeTheoryRun("b", "784-512-2-512-784", "sgd", certify.CertifiedMonotone, 0, 1, math.NaN()),
		fakeTheoryRun("c", "784-10-784", "adam", certify.MonotoneOnGrid, 0, 0.1, 0.3),
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
	runs[1].Report.Conditions = certify.Conditions{}
	if _, err := TheoryTable(runs, []string{"bottleneck"}); err == nil || !strings.Contains(err.Error(), "b:") {
		t.Errorf("a run without conditions.theorems.examples: error %v, want one naming it", err)
	}
}
