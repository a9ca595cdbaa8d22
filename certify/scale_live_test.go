package certify

import (
	"context"
	"testing"
	"time"
)

// TestCertifyScaleLive (issue 12, the certificate at scale) logs the
// certificate's leaves, passes, reused rows and CPU seconds on a run
// directory named by CERTIFY_SCALE_RUN: CERTIFY_SCALE_N examples (default
// 300), tolerance CERTIFY_SCALE_TOL (default 0) and --delta-tol
// CERTIFY_SCALE_DELTATOL (default DefaultDeltaTol), as the analysis runs
// it (CERTIFY_BLAS, e.g. auto, selects the BLAS as certify's commands
// do). Skipped when unset; it measures, it asserts only that the bounds are
// ordered and the verdict agrees with them.
func TestCertifyScaleLive(t *testing.T) {
	p := liveScalePath(t)
	o := CertifyOptions{Tolerance: liveEnv(t, "CERTIFY_SCALE_TOL", 0), DeltaTol: liveEnv(t, "CERTIFY_SCALE_DELTATOL", DefaultDeltaTol)}
	c0, w0 := cpuSeconds(t), time.Now()
	c, ip, err := certify(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d examples, tolerance %g, delta-tol %g: %s, Δ ∈ [%.13g, %.13g] (rel width %.3g), %d leaves, %d unsettled, %d passes, %d rows reused, CPU %.2f s, wall %.2f s",
		p.N, o.Tolerance, o.DeltaTol, c.Verdict, c.DeltaLower, c.DeltaUpper, c.RelWidth, c.Leaves, c.UnsettledCount, c.Evaluations, ip.rowsReused, cpuSeconds(t)-c0, time.Since(w0).Seconds())
	if c.DeltaLower > c.DeltaUpper || (c.Verdict == CertifiedMonotone && c.DeltaUpper > o.Tolerance) || (c.Verdict == NonMonotone && !(c.DeltaLower > o.Tolerance)) {
		t.Errorf("bounds and verdict disagree: %s, Δ ∈ [%v, %v]", c.Verdict, c.DeltaLower, c.DeltaUpper)
	}
}
