package certify

import (
	"context"
	"testing"
	"time"

	"github.com/certify-mli/certify/functionspace"
)

// TestCertifyLiveRun times the certificate on a run directory named by
// CERTIFY_RUN (1000 examples, tolerance 1e-3; CERTIFY_BLAS selects the
// BLAS as in liveRun); skipped when unset.
func TestCertifyLiveRun(t *testing.T) {
	run := liveRun(t, "CERTIFY_RUN", 1000)
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{Chunk: 250})
	if err != nil {
		t.Fatal(err)
	}
	st := time.Now()
	c, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s Δ∈[%g,%g] leaves %d evals %d smooth %.3f settled %.4f unsettled %d witness %+v %.1fs", c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, c.Evaluations, c.SmoothFraction, c.SettledFraction, c.UnsettledCount, c.Witness, time.Since(st).Seconds())
}
