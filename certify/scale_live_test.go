package certify

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/rundir"
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
	dir := os.Getenv("CERTIFY_SCALE_RUN")
	if dir == "" {
		t.Skip("set CERTIFY_SCALE_RUN to a run directory")
	}
	env := func(k string, d float64) float64 {
		if s := os.Getenv(k); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			return v
		}
		return d
	}
	n := int(env("CERTIFY_SCALE_N", 300))
	run := liveRun(t, dir, n)
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := CertifyOptions{Tolerance: env("CERTIFY_SCALE_TOL", 0), DeltaTol: env("CERTIFY_SCALE_DELTATOL", DefaultDeltaTol)}
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

// liveRun reads the first n examples (0: all) of the run directory dir for
// the env-gated live tests (scale, accuracy, degenerate paths), after
// selecting the BLAS named by CERTIFY_BLAS (e.g. auto) as certify's commands
// do; unset, the tests run on gonum's pure Go.
func liveRun(t *testing.T, dir string, n int) *rundir.Run {
	t.Helper()
	if name := os.Getenv("CERTIFY_BLAS"); name != "" {
		b, note, err := blasbackend.Select(name)
		if err != nil {
			t.Fatal(err)
		}
		b.Use()
		t.Logf("BLAS %v %s", b, note)
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	return run
}
