package certify

import (
	"context"
	"os"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// TestHalvesEvaluations (measurement, run with CERTIFY_HALVES_MEASURE=1;
// docs/performance.md "halves"): on random small ResNets
// (randomConvResidualPath), the certificate's evaluations to the verdict
// with the half-leaves and without them (Monotonicity.wholeLeaves), both
// from the same path, budget 512, 4 initial leaves (CERTIFY_HALVES_INITIAL
// to change), tolerances 10⁻⁷, 10⁻⁵, 10⁻³; totals per tolerance and per
// verdict (the halves' run's) are logged. Fails on conflicting verdicts
// (one certified_monotone, the other non_monotone). Choose the cases with
// -rapid.seed and -rapid.checks.
func TestHalvesEvaluations(t *testing.T) {
	if os.Getenv("CERTIFY_HALVES_MEASURE") == "" {
		t.Skip("measurement: set CERTIFY_HALVES_MEASURE=1")
	}
	initial := 4
	if v, err := strconv.Atoi(os.Getenv("CERTIFY_HALVES_INITIAL")); err == nil && v > 0 {
		initial = v
	}
	var evals, decided [2]int
	byTol, byVerdict := map[float64]*[2]int{}, map[Verdict]*[2]int{}
	var verdicts [2]map[Verdict]int
	verdicts[0], verdicts[1] = map[Verdict]int{}, map[Verdict]int{}
	rapid.Check(t, func(t *rapid.T) {
		p := randomConvResidualPath(t)
		tol := rapid.SampledFrom([]float64{1e-7, 1e-5, 1e-3}).Draw(t, "tol")
		var got [2]Verdict
		var ev [2]int
		for i, whole := range []bool{true, false} {
			ip, err := NewIntervalPath(p)
			if err != nil {
				t.Fatal(err)
			}
			o := CertifyOptions{Tolerance: tol, MaxIntervals: 512, InitialIntervals: initial, Workers: 1}
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
			got[i], ev[i] = m.Cert.Verdict, m.Cert.Evaluations
		}
		if byTol[tol] == nil {
			byTol[tol] = &[2]int{}
		}
		if byVerdict[got[1]] == nil {
			byVerdict[got[1]] = &[2]int{}
		}
		for i := range ev {
			byTol[tol][i] += ev[i]
			byVerdict[got[1]][i] += ev[i]
		}
		if got[0] != got[1] && got[0] != Inconclusive && got[1] != Inconclusive {
			t.Fatalf("conflicting verdicts: whole leaves %s, halves %s", got[0], got[1])
		}
	})
	t.Logf("evaluations: whole leaves %d, halves %d; decided %d → %d; verdicts whole %v, halves %v", evals[0], evals[1], decided[0], decided[1], verdicts[0], verdicts[1])
	for tol, e := range byTol {
		t.Logf("tolerance %g: whole leaves %d, halves %d", tol, e[0], e[1])
	}
	for v, e := range byVerdict {
		t.Logf("%s (halves' verdict): whole leaves %d, halves %d", v, e[0], e[1])
	}
}
