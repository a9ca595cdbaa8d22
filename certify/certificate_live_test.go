package certify_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/rundir"
)

// TestCertifyLiveRun times the certificate on a run directory named by
// CERTIFY_RUN (1000 examples, tolerance 1e-3); skipped when unset.
func TestCertifyLiveRun(t *testing.T) {
	dir := os.Getenv("CERTIFY_RUN")
	if dir == "" {
		t.Skip("CERTIFY_RUN not set")
	}
	run, err := rundir.Read(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{Chunk: 250})
	if err != nil {
		t.Fatal(err)
	}
	st := time.Now()
	c, err := certify.Certify(context.Background(), p, certify.CertifyOptions{Tolerance: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s Δ∈[%g,%g] leaves %d evals %d smooth %.3f settled %.4f unsettled %d witness %+v %.1fs", c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, c.Evaluations, c.SmoothFraction, c.SettledFraction, c.UnsettledCount, c.Witness, time.Since(st).Seconds())
}
