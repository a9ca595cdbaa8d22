package certify

import (
	"context"
	"os"
	"testing"

	"pgregory.net/rapid"
)

// TestHalvesEvaluations (measurement, run with CERTIFY_HALVES_MEASURE=1;
// docs/performance.md "halves"): on random small ResNets
// (randomConvResidualPath), the certificate's evaluations to the verdict
// with the half-leaves and without them (Monotonicity.wholeLeaves), both
// from the same path, budget 512, 4 initial leaves, tolerances 10⁻⁷, 10⁻⁵,
// 10⁻³. Fails on conflicting verdicts (one certified_monotone, the other
// non_monotone). Choose the cases with -rapid.seed and -rapid.checks.
func TestHalvesEvaluations(t *testing.T) {
	if os.Getenv("CERTIFY_HALVES_MEASURE") == "" {
		t.Skip("measurement: set CERTIFY_HALVES_MEASURE=1")
	}
	var evals, decided [2]int
	var verdicts [2]map[Verdict]int
	verdicts[0], verdicts[1] = map[Verdict]int{}, map[Verdict]int{}
	rapid.Check(t, func(t *rapid.T) {
		p := randomConvResidualPath(t)
		tol := rapid.SampledFrom([]float64{1e-7, 1e-5, 1e-3}).Draw(t, "tol")
		var got [2]Verdict
		for i, whole := range []bool{true, false} {
			ip, err := NewIntervalPath(p)
			if err != nil {
				t.Fatal(err)
			}
			o := CertifyOptions{Tolerance: tol, MaxIntervals: 512, InitialIntervals: 4, Workers: 1}
			o.defaults()
			m := NewMonotonicity(o)
			m.wholeLeaves = whole
			if err := BranchAndBound(context.Background(), ip, m, o); err != nil {
				t.Fatal(err)
			}
			evals[i] += m.Cert.Evaluations
			verdicts[i][m.Cert.Verdict]++
			if m.Cert.Verdict != Inconclusive {
				decided[i]++
			}
			got[i] = m.Cert.Verdict
		}
		if got[0] != got[1] && got[0] != Inconclusive && got[1] != Inconclusive {
			t.Fatalf("conflicting verdicts: whole leaves %s, halves %s", got[0], got[1])
		}
	})
	t.Logf("evaluations: whole leaves %d, halves %d; decided %d → %d; verdicts whole %v, halves %v", evals[0], evals[1], decided[0], decided[1], verdicts[0], verdicts[1])
}
